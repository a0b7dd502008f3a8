//! The operator's own compose files a stack names (`desired.compose.file`):
//! a path relative to the repository root, checked as a path before anything
//! is opened, read with a size limit, parsed with positions. What a compose
//! file must hold (a `services:` mapping, safe names) is gate V17's to say.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::source::SourceFile;
use crate::source::yaml::{self, Node, YamlProblem};

/// A compose file is a few kilobytes; a larger one is refused unread.
pub const MAX_COMPOSE_BYTES: usize = 1 << 20;

/// One compose file named by `desired.compose.file` (key: the value as written).
#[derive(Debug, Clone)]
pub enum ComposeRead {
    /// Read and parsed.
    Loaded { source: SourceFile, tree: Node },
    /// The name itself, or the file it names, is unusable: said at the
    /// registry's `file:` value.
    Refused { message: String, help: String },
    /// The path is well formed, but no file is there.
    Missing { message: String, help: String },
    /// Read, but not YAML: said in the compose file.
    NotYaml {
        source: SourceFile,
        problem: YamlProblem,
    },
}

impl ComposeRead {
    /// The file's text as read (what plans and receipts are bound to).
    pub fn source(&self) -> Option<&SourceFile> {
        match self {
            ComposeRead::Loaded { source, .. } | ComposeRead::NotYaml { source, .. } => {
                Some(source)
            }
            ComposeRead::Refused { .. } | ComposeRead::Missing { .. } => None,
        }
    }
}

/// Why `file` is not a normalised path relative to the repository root.
pub fn name_problem(file: &str) -> Option<(String, String)> {
    let shown = crate::safe::shown(file);
    let help_rel = "write the path relative to the repository root, e.g. `ops/staged/pihole/docker-compose.yml`";
    if file.is_empty() {
        return Some(("compose.file is empty".into(), help_rel.into()));
    }
    if let Some(c) = crate::safe::control_char(file, false) {
        return Some((
            format!("compose.file `{shown}` holds {}", crate::safe::char_name(c)),
            "remove it: a path holds no control characters".into(),
        ));
    }
    if file.starts_with('/') || file.starts_with('~') {
        return Some((
            format!("compose.file `{shown}` is not relative to the repository"),
            format!(
                "{help_rel}; spine reads compose files only from the repository, never from elsewhere on this machine"
            ),
        ));
    }
    if file.len() > 1024 {
        return Some((
            "compose.file is longer than 1024 bytes".into(),
            help_rel.into(),
        ));
    }
    let parts: Vec<&str> = file.split('/').collect();
    let normal: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if normal.contains(&"..") {
        return Some((
            format!("compose.file `{shown}` has a `..` component"),
            format!("{help_rel}; a compose file must lie inside the repository"),
        ));
    }
    if normal.len() != parts.len() {
        return Some((
            format!("compose.file `{shown}` is not normalised (`.`, `//` or a trailing `/`)"),
            format!("write it as `{}`", normal.join("/")),
        ));
    }
    None
}

/// Read every compose file the stacks name, relative to `root` (`None`: no
/// repository, as for the built-in registry).
pub fn read_all(stacks: &serde_json::Value, root: Option<&Path>) -> BTreeMap<String, ComposeRead> {
    let mut out = BTreeMap::new();
    for file in named_files(stacks) {
        if out.contains_key(&file) {
            continue;
        }
        let read = match root {
            Some(root) => read_one(root, &file),
            None => ComposeRead::Refused {
                message: format!(
                    "compose.file `{}`: this registry has no repository to read it from",
                    crate::safe::shown(&file)
                ),
                help: "load the registry from the operator's repository (--repo DIR) or a folder (--registry DIR)".into(),
            },
        };
        out.insert(file, read);
    }
    out
}

/// Every `stacks[].desired.compose.file` string, in order.
pub fn named_files(stacks: &serde_json::Value) -> Vec<String> {
    stacks["stacks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.pointer("/desired/compose/file")?.as_str())
        .map(str::to_string)
        .collect()
}

fn refused(message: String, help: impl Into<String>) -> ComposeRead {
    ComposeRead::Refused {
        message,
        help: help.into(),
    }
}

fn read_one(root: &Path, file: &str) -> ComposeRead {
    if let Some((message, help)) = name_problem(file) {
        return refused(message, help);
    }
    let path = if root == Path::new(".") {
        PathBuf::from(file)
    } else {
        root.join(file)
    };
    let shown = path.display().to_string();
    let missing = || {
        ComposeRead::Missing {
        message: format!("compose.file `{file}`: {shown} does not exist"),
        help: "the path is relative to the repository root (with --registry DIR: to DIR's parent); add the file there (e.g. under ops/staged/STACK/) or fix the path".into(),
    }
    };
    // The file, symbolic links followed, must stay inside the repository.
    let (Ok(canon_root), canon) = (root.canonicalize(), path.canonicalize()) else {
        return refused(
            format!(
                "compose.file `{file}`: the repository root {} cannot be read",
                root.display()
            ),
            "check the repository folder",
        );
    };
    let canon = match canon {
        Ok(c) => c,
        Err(_) => return missing(),
    };
    if !canon.starts_with(&canon_root) || canon.components().any(|c| c == Component::ParentDir) {
        return refused(
            format!(
                "compose.file `{file}` leaves the repository through a symbolic link (to {})",
                crate::safe::shown(&canon.display().to_string())
            ),
            "put the compose file itself in the repository",
        );
    }
    match std::fs::metadata(&canon) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return refused(
                format!("compose.file `{file}`: {shown} is not a regular file"),
                "name the compose file itself, e.g. ops/staged/STACK/docker-compose.yml",
            );
        }
        Err(_) => return missing(),
    }
    let bytes = match super::read_at_most(&canon, MAX_COMPOSE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            return refused(
                format!("compose.file `{file}`: cannot read {shown}: {e}"),
                "make the file readable by this user",
            );
        }
    };
    if bytes.len() > MAX_COMPOSE_BYTES {
        return refused(
            format!(
                "compose.file `{file}`: {shown} is larger than {} KiB",
                MAX_COMPOSE_BYTES >> 10
            ),
            "a compose file is a few kilobytes; name the right file",
        );
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return refused(
                format!(
                    "compose.file `{file}`: {shown} is not valid UTF-8 (first bad byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
                "save the file as UTF-8",
            );
        }
    };
    let source = SourceFile::new(&path, shown, text);
    match yaml::parse(&source.text) {
        Ok((tree, duplicates)) => match duplicates.into_iter().next() {
            // docker compose refuses a duplicate key too.
            Some(problem) => ComposeRead::NotYaml { source, problem },
            None => ComposeRead::Loaded { source, tree },
        },
        Err(problem) => ComposeRead::NotYaml { source, problem },
    }
}

/// Where `file:` values are relative to: the repository root; the parent of
/// a `--registry DIR` folder (a repository keeps its registry folder beside
/// its other files, as this one keeps `registry/`); the working directory
/// for single files.
pub fn root_of(files: &super::Files) -> PathBuf {
    match files.layout {
        super::Layout::Flat => {
            let named = files
                .root
                .components()
                .next_back()
                .is_some_and(|c| matches!(c, Component::Normal(_)));
            match files.root.parent() {
                Some(p) if named && p.as_os_str().is_empty() => PathBuf::from("."),
                Some(p) if named => p.to_path_buf(),
                _ => files
                    .root
                    .canonicalize()
                    .ok()
                    .and_then(|c| c.parent().map(Path::to_path_buf))
                    .unwrap_or_else(|| files.root.clone()),
            }
        }
        _ => files.root.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_normalised_and_plain() {
        assert_eq!(name_problem("ops/staged/pihole/docker-compose.yml"), None);
        for (bad, says) in [
            ("/opt/stacks/x/docker-compose.yml", "not relative"),
            ("~/stacks/x.yml", "not relative"),
            ("ops/../../etc/passwd", "`..`"),
            ("./ops/x.yml", "not normalised"),
            ("ops//x.yml", "not normalised"),
            ("ops/x/", "not normalised"),
            ("ops/x\n.yml", "newline"),
            ("ops/\u{1b}[2Jx.yml", "escape"),
            ("", "empty"),
        ] {
            let (m, _) = name_problem(bad).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(m.contains(says), "{bad:?}: {m}");
        }
        assert!(
            name_problem("./ops/x.yml")
                .unwrap()
                .1
                .contains("`ops/x.yml`")
        );
    }

    #[test]
    fn files_are_read_from_inside_the_repository_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("ops")).unwrap();
        std::fs::write(root.join("ops/c.yml"), "services:\n  a: {image: x}\n").unwrap();
        std::fs::write(tmp.path().join("outside.yml"), "services: {}\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside.yml"), root.join("ops/link.yml"))
            .unwrap();
        std::fs::write(root.join("ops/big.yml"), "#".repeat(MAX_COMPOSE_BYTES + 1)).unwrap();
        std::fs::write(root.join("ops/bad.yml"), "services: [\n").unwrap();
        let refused = |f: &str| match read_one(&root, f) {
            ComposeRead::Refused { message, .. } | ComposeRead::Missing { message, .. } => message,
            other => panic!("{f}: {other:?}"),
        };
        assert!(matches!(
            read_one(&root, "ops/c.yml"),
            ComposeRead::Loaded { .. }
        ));
        assert!(refused("ops/link.yml").contains("symbolic link"));
        assert!(refused("ops/none.yml").contains("does not exist"));
        assert!(refused("ops").contains("not a regular file"));
        assert!(refused("ops/big.yml").contains("larger than"));
        assert!(refused("../outside.yml").contains("`..`"));
        assert!(matches!(
            read_one(&root, "ops/bad.yml"),
            ComposeRead::NotYaml { .. }
        ));
    }

    #[test]
    fn a_registry_folder_is_relative_to_its_parent() {
        let flat = |p: &str| super::super::Files::flat(Path::new(p));
        assert_eq!(root_of(&flat("registry")), PathBuf::from("."));
        assert_eq!(root_of(&flat("/tmp/x/reg")), PathBuf::from("/tmp/x"));
        let repo = super::super::Files::repo(Path::new("/r"));
        assert_eq!(root_of(&repo), PathBuf::from("/r"));
    }
}
