//! Embeds every file under `templates/` and `scripts/` by folder: adding a
//! template or a script is adding a file, with no list to keep.
//! Writes `$OUT_DIR/templates.rs` and `$OUT_DIR/scripts.rs`, each a
//! `&[(&str, &str)]` of (path under the folder, contents), sorted.

use std::path::{Path, PathBuf};

fn files(dir: &Path, under: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, under, out);
        } else {
            out.push(
                p.strip_prefix(under)
                    .expect("under the folder")
                    .to_path_buf(),
            );
        }
    }
}

fn embed(folder: &str, out_name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    println!("cargo::rerun-if-changed={folder}");
    let mut found = Vec::new();
    files(&root, &root, &mut found);
    let mut code = String::from("&[\n");
    for rel in found {
        let name = rel.to_str().expect("a UTF-8 file name");
        let abs = root.join(&rel);
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            abs.to_str().expect("a UTF-8 path")
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join(out_name);
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn main() {
    embed("templates", "templates.rs");
    embed("scripts", "scripts.rs");
}
