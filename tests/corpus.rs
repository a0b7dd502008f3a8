//! The corpus of broken registries (tests/corpus/README.md): each case is the
//! valid base registry with one or more files replaced, removed or made
//! unreadable, and an `expect` file listing *every* diagnostic `spine verify`
//! must report (gate, file, line, column, text) and the exit code.

mod support;

use support::corpus::{Case, Want, build, cases, corpus, run};

use std::collections::BTreeSet;

use serde_json::Value;

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
        let schema_failed = case.exit != Some(0) && failing.iter().any(|g| *g <= "V03");
        for g in json["gates"].as_array().unwrap() {
            let id = g["id"].as_str().unwrap();
            let expected = if failing.contains(id) && case.exit == Some(0) {
                // exit 0 with diagnostics: they are warnings.
                "WARN"
            } else if failing.contains(id) {
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
        // Registry files live in `reg/`; a compose file a stack names is
        // named from the repository root.
        let dir = if support::corpus::FILES.contains(&w.file.as_str()) {
            "reg/"
        } else {
            ""
        };
        let at = format!("{dir}{}:{}:{}", w.file, w.line, w.column);
        if !text.contains(&at) {
            problems.push(format!("text output does not name {at}"));
        }
    }
    for s in &case.secrets {
        if text.contains(s.as_str()) || stdout.contains(s.as_str()) {
            problems.push(format!("the secret value `{s}` was printed"));
        }
    }
    // NO_COLOR is set: an escape character in the output came from a file
    // (a compose file's line shown as it is) and could rewrite the terminal.
    if text.contains('\u{1b}') || stdout.contains('\u{1b}') {
        problems.push("an escape character reached the output".into());
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
    assert_eq!(json["summary"]["pass"], 16, "{json}");
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
