//! Which files make up the registry: the operator's repository
//! (`docs/governance/`, `ops/bindings/`), a flat folder, single files, or the
//! copy built into spine, and what was looked for when nothing was found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::FileKind;

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

impl std::error::Error for NotFound {}

/// Shown as `spine: no registry found; looked for: ...`.
impl crate::error::StageError for NotFound {}

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
