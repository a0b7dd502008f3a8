//! The `hosts` kind (managed `/etc/hosts` entries) on a real test host
//! (subnet 10.203.110.0/24; 10.203.100-119 are this change's): the plan
//! shows the missing block, apply writes it with a backup, the next plan is
//! in sync, the operator's own lines are untouched; a changed entry is
//! replaced in place.

mod support;

use serde_json::Value;
use support::{SshConfig, TestHost, spine, text, unique};

const OPERATOR_LINES: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.203.110.77\tbuildbox # the operator's own\n";

fn registry(dir: &std::path::Path, pihole: &str) -> std::path::PathBuf {
    let reg = dir.join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    std::fs::write(
        reg.join("SERVICE_REGISTRY.yaml"),
        format!(
            "services: {{}}\nhosts:\n  web:\n    ssh: web\n    ssh_user: root\n    desired:\n      ssh_user: root\n      access:\n        - via: ssh_config\n          address: web\n      hosts_entries:\n        - address: {pihole}\n          names: [pihole, pihole.lan]\n        - address: \"fd00::10\"\n          names: [nas]\n"
        ),
    )
    .unwrap();
    std::fs::write(reg.join("STACK_REGISTRY.yaml"), "version: 1\nstacks: []\n").unwrap();
    std::fs::write(
        reg.join("services.health.yaml"),
        "version: 1\nendpoints: []\n",
    )
    .unwrap();
    reg
}

fn run(reg: &std::path::Path, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--registry",
        reg.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
    ]);
    spine(&all, &[])
}

/// The `hosts:/etc/hosts` resource of a JSON plan.
fn resource(plan: &Value) -> &Value {
    plan["hosts"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["desired"]["id"] == "hosts:/etc/hosts")
        .unwrap_or_else(|| panic!("no hosts resource in {plan:#}"))
}

fn plan(reg: &std::path::Path, cfg: &std::path::Path) -> (Value, Option<i32>) {
    let out = run(
        reg,
        cfg,
        &["plan", "--format", "json", "--detailed-exitcode"],
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan JSON: {e}\n{}", text(&out)));
    (v, out.status.code())
}

#[test]
fn hosts_entries_are_planned_applied_and_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let web = TestHost::up(&unique("hk"), "10.203.110.20/24", &["--no-docker"]);
    web.write("/etc/hosts", OPERATOR_LINES, "root:root", "644");
    let cfg = SshConfig::new().alias("web", &web).write(tmp.path());
    let reg = registry(tmp.path(), "10.203.110.53");

    // 1. The plan shows the missing block as a change, with the lines to add.
    let (p, code) = plan(&reg, &cfg);
    assert_eq!(code, Some(2), "changes to make: {p:#}");
    let r = resource(&p);
    assert_eq!(r["verdict"]["status"], "drift", "{r:#}");
    assert_eq!(r["verdict"]["reason"], "the managed block is missing");
    let diff = r["verdict"]["diff"].as_str().unwrap();
    assert!(diff.contains("+10.203.110.53\tpihole pihole.lan"), "{diff}");
    assert!(diff.contains("+fd00::10\tnas"), "{diff}");
    assert_eq!(
        web.ok("cat /etc/hosts"),
        OPERATOR_LINES,
        "plan changed nothing"
    );

    // 2. Apply writes it: the operator's lines first and unchanged, then the block.
    let out = run(&reg, &cfg, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let hosts = web.ok("cat /etc/hosts");
    assert_eq!(
        hosts,
        format!(
            "{OPERATOR_LINES}# BEGIN spine managed block (edit the registry, not these lines)\n10.203.110.53\tpihole pihole.lan\nfd00::10\tnas\n# END spine managed block\n"
        )
    );
    assert_eq!(web.ok("stat -c '%a %U' /etc/hosts").trim(), "644 root");
    // The names resolve through the file (getent reads /etc/hosts).
    assert!(
        web.ok("getent hosts pihole.lan")
            .starts_with("10.203.110.53")
    );
    // The old file is kept in the run's backup folder (its mode beside it,
    // in `hosts.mode`).
    let backups = web
        .ok("find /var/lib/spine/backups -type f -name '*hosts*' ! -name '*.mode' -exec cat {} +");
    assert_eq!(backups, OPERATOR_LINES);

    // 3. The next plan is in sync (exit 0: converged).
    let (p, code) = plan(&reg, &cfg);
    assert_eq!(resource(&p)["verdict"]["status"], "in_sync", "{p:#}");
    assert_eq!(code, Some(0), "{p:#}");

    // 4. The operator adds a line after the block, the registry changes an
    //    address: the block is replaced in place, the new line stays.
    web.ok("printf '10.203.110.88\\tlate-line\\n' >> /etc/hosts");
    let reg = registry(tmp.path(), "10.203.110.54");
    let (p, _) = plan(&reg, &cfg);
    assert_eq!(
        resource(&p)["verdict"]["reason"],
        "the managed block differs"
    );
    let out = run(&reg, &cfg, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let hosts = web.ok("cat /etc/hosts");
    assert!(hosts.starts_with(OPERATOR_LINES), "{hosts}");
    assert!(
        hosts.contains("10.203.110.54\tpihole pihole.lan\n"),
        "{hosts}"
    );
    assert!(!hosts.contains("10.203.110.53"), "{hosts}");
    assert!(
        hosts.ends_with("# END spine managed block\n10.203.110.88\tlate-line\n"),
        "{hosts}"
    );
    let (_, code) = plan(&reg, &cfg);
    assert_eq!(code, Some(0));
}
