//! The corpus of broken registries (tests/corpus/README.md): reading a case
//! and building its registry in a scratch folder, for the corpus test and the
//! snapshot tests of verify's output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const FILES: [&str; 3] = [
    "SERVICE_REGISTRY.yaml",
    "STACK_REGISTRY.yaml",
    "services.health.yaml",
];

pub fn corpus() -> PathBuf {
    super::repo().join("tests/corpus")
}

/// One expected diagnostic: `GATE FILE:LINE:COL TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub gate: String,
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub exit: Option<i32>,
    pub remove: Vec<String>,
    pub unreadable: Vec<String>,
    pub secrets: Vec<String>,
    pub want: Vec<Want>,
}

pub fn parse_expect(name: &str, dir: &Path) -> Case {
    let path = dir.join("expect");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: every case needs an expect file: {e}", path.display()));
    let mut case = Case {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        ..Case::default()
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || -> String { format!("{}:{}: cannot read `{line}`", path.display(), n + 1) };
        let (word, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{}", bad()));
        match word {
            "exit" => case.exit = Some(rest.trim().parse().unwrap_or_else(|_| panic!("{}", bad()))),
            "remove" => case.remove.push(rest.trim().to_string()),
            "unreadable" => case.unreadable.push(rest.trim().to_string()),
            "secret" => case.secrets.push(rest.trim().to_string()),
            gate if gate.starts_with('V') && gate.len() == 3 => {
                let (place, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let mut parts = place.rsplitn(3, ':');
                let column = parts.next().and_then(|c| c.parse().ok());
                let line_no = parts.next().and_then(|c| c.parse().ok());
                let file = parts.next();
                let (Some(column), Some(line_no), Some(file)) = (column, line_no, file) else {
                    panic!("{}", bad())
                };
                case.want.push(Want {
                    gate: gate.to_string(),
                    file: file.to_string(),
                    line: line_no,
                    column,
                    text: text.trim().to_string(),
                });
            }
            _ => panic!("{}", bad()),
        }
    }
    assert!(case.exit.is_some(), "{}: no `exit` line", path.display());
    assert!(
        !case.want.is_empty(),
        "{}: a broken registry must expect at least one diagnostic",
        path.display()
    );
    case
}

pub fn cases() -> Vec<Case> {
    let mut out: Vec<Case> = std::fs::read_dir(corpus())
        .expect("tests/corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap() != "base")
        .map(|p| parse_expect(p.file_name().unwrap().to_str().unwrap(), &p))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 20,
        "the corpus is missing (found {})",
        out.len()
    );
    out
}

pub fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// A working folder with the case's registry in `reg/` (so every path spine
/// prints is `reg/FILE`) and a receipts folder of its own.
pub struct Work {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub receipts: PathBuf,
    pub drop_privileges: bool,
}

pub fn build(case: &Case) -> Work {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let reg = root.join("reg");
    std::fs::create_dir_all(&reg).unwrap();
    for f in FILES {
        let replaced = case.dir.join(f);
        let src = if replaced.exists() {
            replaced
        } else {
            corpus().join("base").join(f)
        };
        copy_tree(&src, &reg.join(f));
    }
    // Files of the repository around the registry folder (compose files a
    // stack names): the base's, then the case's own `repo/` over them.
    for dir in [corpus().join("base/repo"), case.dir.join("repo")] {
        if dir.is_dir() {
            copy_tree(&dir, &root);
        }
    }
    for f in &case.remove {
        let p = reg.join(f);
        assert!(p.is_file(), "{}: remove {f}: no such file", case.name);
        std::fs::remove_file(p).unwrap();
    }
    let receipts = root.join("receipts");
    std::fs::create_dir_all(&receipts).unwrap();
    let mut drop_privileges = false;
    if !case.unreadable.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        for f in &case.unreadable {
            std::fs::set_permissions(reg.join(f), std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        // root reads any file: run spine as `nobody` instead, who must be able
        // to reach the folder and write receipts.
        drop_privileges = nix_euid() == 0;
        for (p, mode) in [(&root, 0o755), (&reg, 0o755), (&receipts, 0o777)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    Work {
        _tmp: tmp,
        root,
        receipts,
        drop_privileges,
    }
}

fn nix_euid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

pub fn run(work: &Work, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_spine");
    let mut cmd = if work.drop_privileges {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    cmd.current_dir(&work.root)
        .args(["verify", "--registry", "reg"])
        .args(args)
        .env("SPINE_RECEIPTS", &work.receipts)
        .env("NO_COLOR", "1")
        .env_remove("SPINE_REGISTRY")
        .env_remove("SPINE_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run spine (and setpriv, from util-linux, when running as root)")
}

/// One case of the corpus, by folder name (`base` is the valid registry).
pub fn case(name: &str) -> Case {
    if name == "base" {
        return Case {
            name: "base".into(),
            dir: corpus().join("base"),
            ..Case::default()
        };
    }
    parse_expect(name, &corpus().join(name))
}
