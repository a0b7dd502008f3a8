//! Stage 1: read the three registry files into position-carrying trees.
//!
//! Loading never panics and never stops at the first bad file: every file that
//! cannot be used is reported, so one run shows all of them.

pub mod source;
pub mod yaml;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::diag::{Diag, FileKind, Sources};
use source::{SourceFile, Span};
use yaml::{Node, YamlProblem};

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
}

impl Loaded {
    /// The files this run read, in a fixed order (what every output names).
    pub fn file_names(&self) -> Vec<&str> {
        self.docs.values().map(|d| d.source.name.as_str()).collect()
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

/// Where the registry comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Files on disk: the operator's repository, a flat folder, or single files.
    Files(Files),
    /// The shipped registry compiled into the binary (only when asked for by name).
    Embedded,
}

/// How the files on disk are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The operator's repository: `docs/governance/` and `ops/bindings/`.
    Repo,
    /// One folder holding every file (`--registry DIR`).
    Flat,
    /// Only files named one by one (`--service-registry FILE` ...).
    Single,
}

/// The files of an on-disk registry.
#[derive(Debug, Clone)]
pub struct Files {
    pub layout: Layout,
    /// The repository root (Repo), the registry folder (Flat) or `.` (Single).
    pub root: PathBuf,
    /// Each file to read: the three registry files always, a binding only
    /// when it exists or was named.
    pub paths: BTreeMap<FileKind, PathBuf>,
}

/// Where the operator's repository keeps each file, relative to its root.
pub fn repo_path(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Services => "docs/governance/SERVICE_REGISTRY.yaml",
        FileKind::Stacks => "docs/governance/STACK_REGISTRY.yaml",
        FileKind::Health => "ops/bindings/services.health.yaml",
        FileKind::SshTargets => "ops/bindings/ssh.targets.yaml",
        FileKind::VmLifecycle => "ops/bindings/vm.lifecycle.yaml",
        FileKind::SecretsBinding => "ops/bindings/secrets.binding.yaml",
        FileKind::ComposeTargets => "ops/bindings/docker.compose.targets.yaml",
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--builtin`: the registry compiled into spine.
    pub builtin: bool,
    /// `--registry DIR`: the flat layout.
    pub registry: Option<PathBuf>,
    /// `--repo DIR`: the operator's repository layout.
    pub repo: Option<PathBuf>,
    /// Per-file options; each overrides that one file of any layout.
    pub files: BTreeMap<FileKind, PathBuf>,
}

/// No registry was named and none was found: what was looked for.
#[derive(Debug, Clone)]
pub struct NotFound {
    pub looked: Vec<PathBuf>,
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "no registry found; looked for:")?;
        for p in &self.looked {
            writeln!(f, "  {}", p.display())?;
        }
        write!(
            f,
            "run inside the operator's repository, or name it: --repo DIR (docs/governance/ + ops/bindings/), \
             --registry DIR (one folder with SERVICE_REGISTRY.yaml, STACK_REGISTRY.yaml, services.health.yaml), \
             or --builtin for the registry built into spine"
        )
    }
}

impl Origin {
    /// The registry the request names; with nothing named, the repository
    /// holding the working directory (`docs/governance/SERVICE_REGISTRY.yaml`
    /// here or in a parent), else `./registry`. Never the built-in copy unless
    /// asked for: a CI gate must not pass on files it did not read.
    pub fn choose(req: &Request) -> Result<Self, NotFound> {
        if req.builtin {
            return Ok(Origin::Embedded);
        }
        let mut files = if let Some(dir) = &req.registry {
            Files::flat(dir)
        } else if let Some(dir) = &req.repo {
            Files::repo(dir)
        } else {
            match discover() {
                Ok(f) => f,
                Err(_) if FileKind::ALL.iter().all(|k| req.files.contains_key(k)) => Files {
                    layout: Layout::Single,
                    root: PathBuf::from("."),
                    paths: BTreeMap::new(),
                },
                Err(e) => return Err(e),
            }
        };
        for (kind, path) in &req.files {
            files.paths.insert(*kind, path.clone());
        }
        Ok(Origin::Files(files))
    }

    /// The repository root or registry folder, when the registry is on disk.
    pub fn root(&self) -> Option<&Path> {
        match self {
            Origin::Files(f) => Some(&f.root),
            Origin::Embedded => None,
        }
    }

    /// Where receipts go by default: `receipts/` at the repository root;
    /// beside a flat registry folder; else in the working directory.
    pub fn receipts_default(&self) -> PathBuf {
        match self {
            Origin::Files(f) if f.layout == Layout::Repo => f.root.join("receipts"),
            Origin::Files(f) if f.layout == Layout::Flat => match f.root.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.join("receipts"),
                _ => PathBuf::from("receipts"),
            },
            _ => PathBuf::from("receipts"),
        }
    }
}

impl Files {
    fn at(layout: Layout, root: &Path, rel: fn(FileKind) -> String) -> Self {
        let join = |r: String| {
            if root == Path::new(".") {
                PathBuf::from(r)
            } else {
                root.join(r)
            }
        };
        let mut paths: BTreeMap<FileKind, PathBuf> =
            FileKind::ALL.iter().map(|&k| (k, join(rel(k)))).collect();
        for k in FileKind::BINDINGS {
            let p = join(rel(k));
            if p.is_file() {
                paths.insert(k, p);
            }
        }
        Files {
            layout,
            root: root.to_path_buf(),
            paths,
        }
    }

    pub fn flat(dir: &Path) -> Self {
        Self::at(Layout::Flat, dir, |k| k.file_name().to_string())
    }

    pub fn repo(dir: &Path) -> Self {
        Self::at(Layout::Repo, dir, |k| repo_path(k).to_string())
    }
}

/// The operator's repository holding the working directory, else `./registry`.
fn discover() -> Result<Files, NotFound> {
    let marker = repo_path(FileKind::Services);
    let mut looked = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        for (depth, dir) in cwd.ancestors().enumerate() {
            if dir.join(marker).is_file() {
                return Ok(Files::repo(if depth == 0 { Path::new(".") } else { dir }));
            }
            if depth == 0 {
                looked.push(dir.join(marker));
            }
        }
        looked.push(PathBuf::from(format!(
            "{marker} in each parent of {}",
            cwd.display()
        )));
        let flat = Path::new("registry");
        if flat.join(FileKind::Services.file_name()).is_file() {
            return Ok(Files::flat(flat));
        }
        looked.push(cwd.join(flat).join(FileKind::Services.file_name()));
    }
    Err(NotFound { looked })
}

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
    loaded
}

fn read(path: &Path, layout: Layout) -> Result<String, (String, String)> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
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
