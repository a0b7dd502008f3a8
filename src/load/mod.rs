//! Stage 1: read the three registry files into position-carrying trees.
//!
//! Loading never panics and never stops at the first bad file: every file that
//! cannot be used is reported, so one run shows all of them.

pub mod compose;
mod origin;

pub use compose::ComposeRead;
pub use origin::{Files, Layout, NotFound, Origin, Request, repo_path};

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use crate::diag::{Diag, FileKind, Sources};
use crate::source::yaml::{self, Node, YamlProblem};
use crate::source::{SourceFile, Span};

/// Gate id under which problems that stop a file from loading are reported.
pub const LOAD_GATE: &str = "V00";

/// One registry file, parsed.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: FileKind,
    pub source: SourceFile,
    pub tree: Node,
    pub json: serde_json::Value,
    /// Duplicate keys (the first definition was kept).
    pub duplicates: Vec<YamlProblem>,
    /// JSON pointers of `key: null` entries in the operator's sections, left
    /// out of `json`: null means "not known yet" and is read as absent.
    pub nulls: Vec<String>,
}

/// The registry as read from disk: the files that loaded, and why others did not.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub origin: String,
    pub docs: BTreeMap<FileKind, Document>,
    pub failures: Vec<Diag>,
    /// The compose files stacks name (`desired.compose.file`), by that value.
    pub compose: BTreeMap<String, ComposeRead>,
}

impl Loaded {
    /// The files this run read, in a fixed order (what every output names).
    pub fn file_names(&self) -> Vec<&str> {
        self.docs
            .values()
            .map(|d| d.source.name.as_str())
            .chain(
                self.compose
                    .values()
                    .filter_map(|c| Some(c.source()?.name.as_str())),
            )
            .collect()
    }

    /// SHA-256 over the registry files (name and exact bytes, in a fixed order):
    /// what a saved plan and a receipt are bound to.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (kind, doc) in &self.docs {
            h.update(kind.file_name().as_bytes());
            h.update([0]);
            h.update((doc.source.text.len() as u64).to_le_bytes());
            h.update(doc.source.text.as_bytes());
        }
        // The compose files stacks name are registry too: a plan made before
        // one of them changed is stale.
        for (name, read) in &self.compose {
            if let Some(src) = read.source() {
                h.update(b"compose:");
                h.update(name.as_bytes());
                h.update([0]);
                h.update((src.text.len() as u64).to_le_bytes());
                h.update(src.text.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

impl Sources for Loaded {
    fn source(&self, file: FileKind) -> Option<(&SourceFile, &Node)> {
        self.docs.get(&file).map(|d| (&d.source, &d.tree))
    }
}

/// The shipped registry, compiled into the binary.
pub const EMBEDDED: [(FileKind, &str); 3] = [
    (
        FileKind::Services,
        include_str!("../../registry/SERVICE_REGISTRY.yaml"),
    ),
    (
        FileKind::Stacks,
        include_str!("../../registry/STACK_REGISTRY.yaml"),
    ),
    (
        FileKind::Health,
        include_str!("../../registry/services.health.yaml"),
    ),
];

pub fn load(origin: &Origin) -> Loaded {
    match origin {
        Origin::Files(files) => load_files(files),
        Origin::Embedded => load_texts(
            "<embedded registry>",
            EMBEDDED.map(|(kind, text)| (kind, format!("<embedded>/{}", kind.file_name()), text)),
        ),
    }
}

/// A registry held in memory (the embedded copy, fuzzing, benchmarks):
/// `(file, name shown in diagnostics, text)`. Checked exactly as files on disk.
pub fn load_texts<I, T>(origin: &str, files: I) -> Loaded
where
    I: IntoIterator<Item = (FileKind, String, T)>,
    T: Into<std::sync::Arc<str>>,
{
    let mut loaded = Loaded {
        origin: origin.into(),
        ..Default::default()
    };
    for (kind, name, text) in files {
        let src = SourceFile::new(Path::new(&name), name.clone(), text);
        add(&mut loaded, kind, src);
    }
    if let Some(doc) = loaded.docs.get(&FileKind::Stacks) {
        loaded.compose = compose::read_all(&doc.json, None);
    }
    loaded
}

/// A flat registry folder (`--registry DIR`).
pub fn load_dir(dir: &Path) -> Loaded {
    load_files(&Files::flat(dir))
}

fn load_files(files: &Files) -> Loaded {
    let dir = &files.root;
    let shown = match std::env::current_dir() {
        Ok(cwd) if dir == Path::new(".") => cwd,
        _ => dir.clone(),
    };
    let mut loaded = Loaded {
        origin: shown.display().to_string(),
        ..Default::default()
    };
    if files.layout != Layout::Single && !dir.is_dir() {
        let what = if files.layout == Layout::Repo {
            "repository"
        } else {
            "registry directory"
        };
        loaded.failures.push(Diag::without_source(
            LOAD_GATE,
            dir.display().to_string(),
            format!("{what} `{}` does not exist or is not a directory", dir.display()),
            "pass --repo DIR with the operator's repository (docs/governance/SERVICE_REGISTRY.yaml), or --registry DIR with the folder holding SERVICE_REGISTRY.yaml, STACK_REGISTRY.yaml and services.health.yaml".into(),
        ));
        return loaded;
    }
    for (&kind, path) in &files.paths {
        let name = path.display().to_string();
        match read(path, files.layout) {
            Ok(text) => add(&mut loaded, kind, SourceFile::new(path, name, text)),
            Err((message, help)) => loaded
                .failures
                .push(Diag::without_source(LOAD_GATE, name, message, help)),
        }
    }
    if let Some(doc) = loaded.docs.get(&FileKind::Stacks) {
        let root = compose::root_of(files);
        loaded.compose = compose::read_all(&doc.json, Some(&root));
    }
    loaded
}

fn read(path: &Path, layout: Layout) -> Result<String, (String, String)> {
    let shown = path.display();
    let bytes = read_at_most(path, yaml::MAX_FILE_BYTES).map_err(|e| match e.kind() {
        ErrorKind::NotFound => (
            format!("{shown}: file not found"),
            match layout {
                Layout::Repo => "the operator's repository keeps docs/governance/SERVICE_REGISTRY.yaml, docs/governance/STACK_REGISTRY.yaml and ops/bindings/services.health.yaml; point --repo at its root, or name the file with its own option (e.g. --services-health FILE)",
                Layout::Flat => "a registry directory holds SERVICE_REGISTRY.yaml, STACK_REGISTRY.yaml and services.health.yaml; create the missing one or point --registry at the right folder",
                Layout::Single => "check the path given for this file",
            }
            .to_string(),
        ),
        ErrorKind::PermissionDenied => (
            format!("{shown}: permission denied"),
            "make the file readable by this user (chmod a+r)".to_string(),
        ),
        ErrorKind::IsADirectory => (
            format!("{shown}: is a directory, not a file"),
            "replace it with the registry file".to_string(),
        ),
        _ => (format!("{shown}: cannot read: {e}"), "check the file and the disk".to_string()),
    })?;
    if bytes.len() > yaml::MAX_FILE_BYTES {
        let p = yaml::too_large();
        return Err((format!("{shown}: {}", p.message), p.help));
    }
    String::from_utf8(bytes).map_err(|e| {
        (
            format!(
                "{shown}: not valid UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            "save the file as UTF-8".to_string(),
        )
    })
}

/// At most `limit + 1` bytes of a file: enough to tell that it is too large
/// without reading a huge (or endless) file into memory.
fn read_at_most(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn add(loaded: &mut Loaded, kind: FileKind, src: SourceFile) {
    match yaml::parse(&src.text) {
        Err(p) => loaded.failures.push(problem_diag(&src, &p)),
        Ok((tree, duplicates)) => {
            if tree.as_map().is_none() {
                let what = tree.type_name();
                let span = Span::new(tree.span.start, tree.span.start);
                loaded.failures.push(Diag::at_span(
                    LOAD_GATE,
                    &src,
                    span,
                    format!("{} must be a YAML mapping at the top level, found {what}", kind.file_name()),
                    format!("{what} starts here"),
                    "the file's top level holds keys such as `services:` and `hosts:`; see schemas/ for the shape",
                ));
                return;
            }
            let mut json = tree.to_json();
            let mut nulls = Vec::new();
            strip_nulls(&mut json, &mut String::new(), &mut nulls);
            loaded.docs.insert(
                kind,
                Document {
                    kind,
                    source: src,
                    tree,
                    json,
                    duplicates,
                    nulls,
                },
            );
        }
    }
}

/// Remove `key: null` from mappings, except inside spine's own `desired:`
/// sections (closed and strict: a null there is a schema error). Records the
/// pointer of each removed key.
fn strip_nulls(v: &mut serde_json::Value, at: &mut String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, v| {
                let keep = !v.is_null();
                if !keep {
                    out.push(format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")));
                }
                keep
            });
            for (k, child) in map.iter_mut() {
                if k == "desired" {
                    continue;
                }
                let len = at.len();
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                strip_nulls(child, at, out);
                at.truncate(len);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                strip_nulls(child, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// A YAML problem as a diagnostic.
pub fn problem_diag(src: &SourceFile, p: &YamlProblem) -> Diag {
    let mut d = Diag::at_span(
        LOAD_GATE,
        src,
        p.span,
        p.message.clone(),
        "here",
        p.help.clone(),
    );
    if let Some((span, label)) = &p.other {
        d = d.with_other(*span, label.clone());
    }
    d
}
