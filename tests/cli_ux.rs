//! CLI conventions: help with examples for every command, completions, the
//! man page, NO_COLOR, progress never on stdout, broken pipes.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use spine::cli::Cli;
use support::{spine, text};

/// Every command path: ["verify"], ["receipts", "list"], ...
fn commands() -> Vec<Vec<String>> {
    fn walk(c: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in c.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    out
}

fn top_level() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn every_command_has_help_with_examples() {
    let cmds = commands();
    for expected in [
        "verify",
        "plan",
        "apply",
        "doctor",
        "completions",
        "man",
        "unlock",
    ] {
        assert!(
            cmds.iter().any(|c| c == &[expected]),
            "{expected} missing: {cmds:?}"
        );
    }
    for c in &cmds {
        let mut args: Vec<&str> = c.iter().map(String::as_str).collect();
        args.push("--help");
        let out = spine(&args, &[]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "spine {}: {t}", c.join(" "));
        assert!(
            t.contains("Example"),
            "spine {} --help has no examples:\n{t}",
            c.join(" ")
        );
        assert!(
            t.contains("--quiet") && t.contains("--verbose"),
            "global options on {c:?}:\n{t}"
        );
    }
    let out = spine(&["--help"], &[]);
    assert!(text(&out).contains("Exit codes"), "{}", text(&out));
    // A usage mistake is "could not run", on stderr.
    let out = spine(&["plan", "--no-such-option"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn completions_cover_every_command_and_bash_parses_them() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = spine(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for c in top_level() {
            assert!(script.contains(&c), "{shell} completion lacks `{c}`");
        }
        // fish spells options `-l registry`, the others `--registry`.
        for opt in [
            "registry",
            "ssh-config",
            "connect-timeout",
            "detailed-exitcode",
        ] {
            assert!(script.contains(opt), "{shell} completion lacks --{opt}");
        }
    }
    let bash = spine(&["completions", "bash"], &[]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("spine.bash");
    std::fs::write(&f, &bash).unwrap();
    let check = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", text(&check));
    // Loaded into bash, it completes the commands.
    let probe = format!(
        "source {}; COMP_WORDS=(spine do); COMP_CWORD=1; COMP_LINE='spine do'; COMP_POINT=8; _spine spine do spine; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        f.display()
    );
    let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "doctor"),
        "{}",
        text(&out)
    );
    let out = spine(&["completions", "tcsh"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_are_generated_from_the_cli() {
    let out = spine(&["man"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH spine 1"), "{page}");
    assert!(page.contains(".SH SYNOPSIS") && page.contains(".SH OPTIONS"));
    for c in top_level() {
        assert!(
            page.contains(&format!("spine\\-{c}(1)")) || page.contains(&c),
            "man page lacks {c}"
        );
    }
    let plan = String::from_utf8(spine(&["man", "plan"], &[]).stdout).unwrap();
    assert!(plan.contains(".TH spine-plan 1"), "{plan}");
    assert!(plan.contains("detailed\\-exitcode"), "{plan}");
    assert!(
        plan.contains("Examples"),
        "the examples are in the page: {plan}"
    );
    // groff renders it without warnings.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("spine-plan.1");
    std::fs::write(&f, &plan).unwrap();
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&f)
        .output()
        .expect("groff (groff-base) renders man pages");
    assert!(
        groff.status.success() && groff.stderr.is_empty(),
        "groff: {}",
        text(&groff)
    );

    let out = spine(&["man", "--out", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for c in top_level() {
        let p = dir.path().join(format!("spine-{c}.1"));
        assert!(p.exists(), "{} not written", p.display());
    }
    assert!(dir.path().join("spine.1").exists());
    assert_eq!(spine(&["man", "nosuch"], &[]).status.code(), Some(2));
}

/// Run spine with stdout a pipe whose reader is already gone (like
/// `spine verify | head -c0` after head exited).
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_spine"))
        .current_dir(dir.path())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SPINE_REGISTRY")
        .env_remove("SPINE_RECEIPTS")
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn broken_pipes_end_quietly() {
    let cases: &[(&[&str], i32)] = &[
        (&["verify", "--builtin", "--format", "json"], 0),
        (&["verify", "--builtin"], 0),
        (&["verify", "--list-gates"], 0),
        (&["render", "--builtin", "immich"], 0),
        (&["completions", "bash"], 0),
        (&["man"], 0),
    ];
    for (args, code) in cases {
        let out = with_closed_stdout(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
    }
    // And as a shell pipeline: head takes one byte and leaves.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .current_dir(dir.path())
        .arg("-c")
        .arg(format!(
            "{} verify --builtin --format json | head -c1; echo \" rc=${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_spine")
        ))
        .env_remove("SPINE_REGISTRY")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{ rc=0\n",
        "{}",
        text(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    // A partly read pipe: the reader takes a little, then closes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_spine"))
        .current_dir(dir.path())
        .args(["man"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 4];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn no_color_and_progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // `script` gives spine a terminal; NO_COLOR turns colour off there too.
    let run = |no_color: bool| {
        let mut c = Command::new("script");
        c.current_dir(dir.path())
            .args([
                "-qec",
                &format!("{} verify --builtin", env!("CARGO_BIN_EXE_spine")),
                "/dev/null",
            ])
            .env_remove("SPINE_REGISTRY")
            .env("TERM", "xterm");
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        c.output()
            .expect("script (bsdutils) gives spine a terminal")
    };
    let tty = run(false);
    assert!(
        String::from_utf8_lossy(&tty.stdout).contains("\x1b["),
        "colour on a terminal: {}",
        text(&tty)
    );
    let no = run(true);
    assert!(
        String::from_utf8_lossy(&no.stdout).contains("PASS"),
        "{}",
        text(&no)
    );
    assert!(
        !String::from_utf8_lossy(&no.stdout).contains("\x1b["),
        "NO_COLOR: {}",
        text(&no)
    );
    // Not a terminal: no colour, and nothing but the report on stdout.
    let out = spine(&["verify", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is pure JSON");
    assert_eq!(v["summary"]["status"], "PASS");
    assert!(!text(&out).contains("\x1b["));
    // --quiet leaves only what failed and the summary.
    let q = spine(&["verify", "--quiet"], &[]);
    assert!(
        !String::from_utf8_lossy(&q.stdout).contains("V01 PASS"),
        "{}",
        text(&q)
    );
    assert!(
        String::from_utf8_lossy(&q.stdout).contains("status: PASS"),
        "{}",
        text(&q)
    );
}
