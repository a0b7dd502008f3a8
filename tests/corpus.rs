//! The corpus of broken registries (tests/corpus/README.md): each case is the
//! valid base registry with one or more files replaced, removed or made
//! unreadable, and an `expect` file listing *every* diagnostic `spine verify`
//! must report (gate, file, line, column, text) and the exit code.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FILES: [&str; 3] = [
    "SERVICE_REGISTRY.yaml",
    "STACK_REGISTRY.yaml",
    "services.health.yaml",
];

fn corpus() -> PathBuf {
    support::repo().join("tests/corpus")
}

/// One expected diagnostic: `GATE FILE:LINE:COL TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    gate: String,
    file: String,
    line: u64,
    column: u64,
    text: String,
}

#[derive(Debug, Default)]
struct Case {
    name: String,
    dir: PathBuf,
    exit: Option<i32>,
    remove: Vec<String>,
    unreadable: Vec<String>,
    secrets: Vec<String>,
    want: Vec<Want>,
}

fn parse_expect(name: &str, dir: &Path) -> Case {
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

fn cases() -> Vec<Case> {
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

fn copy_tree(from: &Path, to: &Path) {
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
struct Work {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    receipts: PathBuf,
    drop_privileges: bool,
}

fn build(case: &Case) -> Work {
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

fn run(work: &Work, args: &[&str]) -> Output {
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

fn got(case: &Case, json: &Value) -> Vec<Want> {
    json["diagnostics"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no diagnostics array in {json}", case.name))
        .iter()
        .map(|d| Want {
            gate: d["gate"].as_str().unwrap().to_string(),
            file: d["file"]
                .as_str()
                .unwrap()
                .trim_start_matches("reg/")
                .to_string(),
            line: d["line"].as_u64().unwrap(),
            column: d["column"].as_u64().unwrap(),
            text: format!(
                "{}\n{}",
                d["message"].as_str().unwrap(),
                d["help"].as_str().unwrap()
            ),
        })
        .collect()
}

fn show(ws: &[Want]) -> String {
    ws.iter()
        .map(|w| {
            format!(
                "{} {}:{}:{} {}\n",
                w.gate,
                w.file,
                w.line,
                w.column,
                w.text.replace('\n', " | help: ")
            )
        })
        .collect()
}

/// Runs one case in json and text form; returns what is wrong, if anything.
fn check(case: &Case) -> Result<(), String> {
    let work = build(case);
    let o = run(&work, &["--format", "json"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("not JSON ({e}):\n{}", support::text(&o)))?;
    let mut problems = Vec::new();
    if o.status.code() != case.exit {
        problems.push(format!(
            "exit {:?}, expected {:?}",
            o.status.code(),
            case.exit
        ));
    }
    let got = got(case, &json);
    let same = got.len() == case.want.len()
        && got.iter().zip(&case.want).all(|(g, w)| {
            (&g.gate, &g.file, g.line, g.column) == (&w.gate, &w.file, w.line, w.column)
                && g.text.contains(&w.text)
        });
    if !same {
        problems.push(format!(
            "diagnostics differ\n--- expected\n{}--- got\n{}",
            show(&case.want),
            show(&got)
        ));
    }
    // The verdict agrees with the diagnostics: exactly the gates that
    // reported something fail; after a schema failure the others are skipped.
    let status = json["summary"]["status"].as_str().unwrap_or_default();
    if case.exit == Some(2) {
        if status != "ERROR" || json["gates"].as_array().is_none_or(|g| !g.is_empty()) {
            problems.push(format!(
                "could-not-run must give status ERROR and no gates, got {status}"
            ));
        }
    } else {
        let failing: BTreeSet<&str> = case.want.iter().map(|w| w.gate.as_str()).collect();
        let schema_failed = failing.iter().any(|g| *g <= "V03");
        for g in json["gates"].as_array().unwrap() {
            let id = g["id"].as_str().unwrap();
            let expected = if failing.contains(id) {
                "FAIL"
            } else if schema_failed && id > "V03" {
                "SKIP"
            } else {
                "PASS"
            };
            if g["status"] != expected {
                problems.push(format!("gate {id} is {}, expected {expected}", g["status"]));
            }
        }
    }
    // The text report names the same places and never a secret.
    let t = run(&work, &["--format", "text"]);
    let text = support::text(&t);
    if t.status.code() != case.exit {
        problems.push(format!("text format: exit {:?}", t.status.code()));
    }
    for w in case.want.iter().filter(|w| w.line > 0) {
        let at = format!("reg/{}:{}:{}", w.file, w.line, w.column);
        if !text.contains(&at) {
            problems.push(format!("text output does not name {at}"));
        }
    }
    for s in &case.secrets {
        if text.contains(s.as_str()) || stdout.contains(s.as_str()) {
            problems.push(format!("the secret value `{s}` was printed"));
        }
    }
    if text.contains("panicked") {
        problems.push("spine panicked".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n\ntext output:\n{text}", problems.join("\n")))
    }
}

#[test]
fn every_case_reports_exactly_its_diagnostics() {
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(e) = check(&case) {
            failures.push(format!("== case {}:\n{e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn base_registry_passes_every_gate() {
    let case = Case {
        name: "base".into(),
        dir: corpus().join("base"),
        ..Case::default()
    };
    let work = build(&case);
    let o = run(&work, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", support::text(&o));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["summary"]["pass"], 14, "{json}");
}

#[test]
fn corpus_covers_every_gate() {
    let cases = cases();
    let seen: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.want.iter().map(|w| w.gate.as_str()))
        .collect();
    let mut ids = vec!["V00"];
    ids.extend(spine::verify::catalogue().iter().map(|(id, _, _)| *id));
    let missing: Vec<&str> = ids.into_iter().filter(|id| !seen.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "no corpus case makes these gates fail: {missing:?}"
    );
    // The load problems and schema problems the issue names, each with a case.
    let all: Vec<&Want> = cases.iter().flat_map(|c| c.want.iter()).collect();
    for (what, needle) in [
        ("a missing file", "file not found"),
        ("an unreadable file", "permission denied"),
        ("an empty file", "the file is empty"),
        ("malformed YAML", "malformed YAML"),
        ("a list instead of a mapping", "found a list"),
        ("a duplicate key", "duplicate key"),
        ("a typo in a closed section", "did you mean"),
    ] {
        assert!(
            all.iter().any(|w| w.text.contains(needle)),
            "no corpus case covers {what} (expected text `{needle}`)"
        );
    }
}
