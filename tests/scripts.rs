//! Every script spine would send to a host, rendered for the shipped
//! registry, the test registry (tests/support) and a hostile copy of it,
//! passes shellcheck: gather scripts, every resource's apply script inside
//! the root wrapper, the network arm/rollback/confirm scripts, the lock
//! scripts and doctor's. The hostile registry's values also stay inert when
//! the gather script really runs.
//!
//! Needs `shellcheck` (.ci/install-deps installs it); fails when it is missing.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use spine::apply::{network, remote};
use spine::diag::FileKind;
use spine::doctor::findings;
use spine::kinds;
use spine::load::{self, Files, Origin};
use spine::model::Registry;
use spine::render::{self, Templates};
use spine::secrets::{Provider, Secret};
use spine::shell::Script;

/// Hands out a fixed value for every secret reference.
struct Fixed;

impl Provider for Fixed {
    fn fetch(&self, _: &str) -> Result<Secret, String> {
        Ok(Secret::new("p'a$s w\"d".into()))
    }
}

/// shellcheck one rendered script; the findings as text when there are any.
/// SC2016 ("expressions don't expand in single quotes") is what a quoted
/// hostile value looks like, so it is off here; tests/run checks the script
/// files themselves with every check on.
fn shellcheck(script: &str) -> Option<String> {
    let mut child = Command::new("shellcheck")
        .args(["-s", "sh", "-e", "SC2016", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shellcheck is not installed: run .ci/install-deps (tests/run does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        None
    } else {
        Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn registry(origin: &Origin) -> Registry {
    let loaded = load::load(origin);
    Registry::from_loaded(&loaded, &FileKind::ALL).expect("registry loads")
}

/// What apply is given when nothing is there yet: each typed kind's facts
/// of an empty host (the old-path kinds read what they need by key).
fn nothing_there(d: &kinds::Desired) -> serde_json::Value {
    use serde_json::json;
    match (d.kind.as_str(), d.id.as_str()) {
        ("cron", "cron:tables") => json!({ "findings": [], "tables": {} }),
        ("cron", _) => json!({ "crontab": "", "scripts": [] }),
        ("hosts", _) => json!({ "exists": false, "text": "" }),
        ("netplan", id) if id.ends_with("/other-files") => json!({ "extra": [] }),
        ("netplan", id) if id.ends_with("/live") => json!({ "why": "no such device" }),
        ("netplan", _) => json!({ "exists": false, "text": "" }),
        ("tailscale", _) => json!({ "backend_state": "Stopped", "online": false, "ips": [],
                                    "hostname": null, "accept_dns": null }),
        ("cloudinit", _) => json!({ "ipconfig0": null, "nameserver": null, "pending": [],
                                    "vm": { "status": "running", "agent": null } }),
        // compose's removals get one thing each, so their scripts' loops are checked too.
        ("compose", id) if id.ends_with("/extra") => {
            json!({ "extra": [{ "name": "old-web", "why": "orphan" }] })
        }
        ("compose", id) if id.ends_with("/other-compose-files") => {
            json!({ "files": [{ "path": "/srv/stack/compose.yaml", "why": "read instead" }] })
        }
        ("compose", id) if id.ends_with("/containers") => json!({ "services": {} }),
        _ => json!({ "exists": false, "crontab": "" }),
    }
}

/// Every script for every managed host of `reg`, named.
fn all_scripts(reg: &Registry) -> Vec<(String, Script)> {
    let templates = Templates::new(None).unwrap();
    let wrap = |run_id: Option<&str>, wait: Option<u64>, body: &Script| {
        let run = remote::RootRun {
            run_id,
            wait_timeout: wait,
        };
        remote::root_script(run, body).unwrap()
    };
    let mut out = Vec::new();
    let services = reg.services.as_ref().unwrap();
    for host in render::managed_hosts(services) {
        let state = kinds::render_host(reg, &host, &templates).unwrap();
        let reads = kinds::read_scripts(&state.resources).unwrap();
        let gather = spine::gather::script::build(&reads, "==spine-0123").unwrap();
        out.push((format!("{host}: gather"), gather));
        for d in &state.resources {
            let kind = kinds::by_name(&d.kind).unwrap();
            let actual = nothing_there(d);
            let change = kind.apply(d, &actual, &Fixed).unwrap();
            let name = format!("{host}: apply {}", d.id);
            if let kinds::Lifecycle::Confirmed(c) = &change.lifecycle {
                let armed = network::arm_and_apply(&change.script, c, "run-1", 120).unwrap();
                out.push((format!("{name} (armed)"), wrap(Some("run-1"), None, &armed)));
            } else {
                out.push((name, wrap(Some("run-1"), Some(120), &change.script)));
            }
        }
        if let Some(vmid) = services.hosts[&host].vmid {
            let s = findings::qm_config_script(vmid).unwrap();
            out.push((format!("{host}: doctor qm config"), s));
        }
    }
    let lock = remote::lock_script(r#"{"lock_id":"l-1","run_id":"r 1"}"#).unwrap();
    out.push(("lock".into(), wrap(None, None, &lock)));
    let unlock = remote::unlock_script(Some("l-1")).unwrap();
    out.push(("unlock".into(), wrap(None, None, &unlock)));
    let unlock = remote::unlock_script(None).unwrap();
    out.push(("unlock without info".into(), wrap(None, None, &unlock)));
    let info = serde_json::from_str(
        r#"{"lock_id":"l-1","run_id":"r 1","operator":"o","started":"s","expires":"e","pid":1}"#,
    )
    .unwrap();
    let renew = remote::renew_script(&info).unwrap();
    out.push(("renew lock".into(), wrap(None, None, &renew)));
    let prune = remote::prune_script("r-1", 5).unwrap();
    out.push(("prune backups".into(), wrap(None, None, &prune)));
    let read = remote::read_lock_script().unwrap();
    out.push(("read lock".into(), wrap(None, None, &read)));
    out.push((
        "doctor host facts".into(),
        findings::host_facts_script().unwrap(),
    ));
    out
}

fn check_all(label: &str, reg: &Registry) -> usize {
    let scripts = all_scripts(reg);
    let mut bad = Vec::new();
    for (name, s) in &scripts {
        if let Some(findings) = shellcheck(s.as_str()) {
            bad.push(format!("== {label}, {name}:\n{findings}\n{}", s.as_str()));
        }
    }
    assert!(bad.is_empty(), "shellcheck findings:\n{}", bad.join("\n"));
    scripts.len()
}

#[test]
fn shipped_registry_scripts_pass_shellcheck() {
    let n = check_all("shipped registry", &registry(&Origin::Embedded));
    // gather + apply for two hosts, lock scripts, doctor: far more than a handful.
    assert!(n >= 10, "only {n} scripts rendered");
}

#[test]
fn test_registry_scripts_pass_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    let reg = support::test_registry(dir.path(), "10.203.1", "52:54:00:12:02:30", "v2.5.0");
    check_all(
        "test registry",
        &registry(&Origin::Files(Files::flat(&reg))),
    );
}

const HOSTILE: &str = "/home/ronny/im'mi $(touch /tmp/spine-pwned-XX) `id` ch";

fn hostile(dir: &Path) -> std::path::PathBuf {
    let reg = support::test_registry(dir, "10.203.1", "52:54:00:12:02:30", "v2.5.0");
    let p = reg.join("STACK_REGISTRY.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    // Plain (unquoted) YAML scalars: the value goes in as it is.
    let evil = HOSTILE.replace("XX", &std::process::id().to_string());
    let text = text.replace("/home/ronny/immich", &evil);
    std::fs::write(&p, text).unwrap();
    reg
}

/// Registry values with quotes, `$(...)` and backticks: the scripts still
/// pass shellcheck, and running the gather script runs none of it.
#[test]
fn hostile_registry_values_stay_inert() {
    let dir = tempfile::tempdir().unwrap();
    let reg_dir = hostile(dir.path());
    let reg = registry(&Origin::Files(Files::flat(&reg_dir)));
    let stacks = reg.stacks.as_ref().unwrap();
    let dirs: Vec<String> = stacks
        .stacks
        .iter()
        .filter_map(|s| s.desired.as_ref()?.compose.as_ref())
        .map(|c| c.directory.clone())
        .collect();
    assert!(
        dirs.iter().any(|d| d.contains("$(touch")),
        "the hostile value did not reach the registry: {dirs:?}"
    );
    check_all("hostile registry", &reg);

    let pwned = format!("/tmp/spine-pwned-{}", std::process::id());
    let _ = std::fs::remove_file(&pwned);
    let templates = Templates::new(None).unwrap();
    for host in render::managed_hosts(reg.services.as_ref().unwrap()) {
        let state = kinds::render_host(&reg, &host, &templates).unwrap();
        let reads = kinds::read_scripts(&state.resources).unwrap();
        let script = spine::gather::script::build(&reads, "==spine-0123").unwrap();
        let out = Command::new("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(script.as_str().as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let report =
            spine::gather::script::parse(&String::from_utf8_lossy(&out.stdout), "==spine-0123");
        assert!(!report.user.is_empty(), "{host}: the script did not run");
        assert_eq!(
            report.sections.len(),
            state.resources.len(),
            "{host}: every resource answers in its own section"
        );
    }
    assert!(
        !Path::new(&pwned).exists(),
        "a registry value was run by the shell"
    );
}
