//! The README's quick start: `demo/up` builds VM 203 as found (unreachable on
//! every path, GAP-OP-094), `spine doctor` says why and what to run, `spine
//! plan` shows what it can and cannot see, `spine apply` refuses to call that
//! converged, `spine apply --restart-vms` brings the VM back from its Proxmox
//! host and converges it, `demo/down` leaves nothing.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{repo, require_prerequisites, spine, text, unique};

struct Demo {
    dir: std::path::PathBuf,
    name: String,
}

impl Demo {
    fn env(&self, c: &mut Command) {
        c.env("SPINE_DEMO_DIR", &self.dir)
            .env("SPINE_DEMO_NAME", &self.name)
            .env("SPINE", env!("CARGO_BIN_EXE_spine"));
    }

    fn run(&self, script: &str) -> Output {
        let mut c = Command::new(repo().join("demo").join(script));
        self.env(&mut c);
        c.output().expect("run the demo script")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.run("down");
    }
}

fn netns() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn demo_up_plan_apply_down() {
    require_prerequisites();
    let tmp = tempfile::tempdir().unwrap();
    let demo = Demo {
        dir: tmp.path().join("demo"),
        name: unique("dm"),
    };
    let up = demo.run("up");
    let out = text(&up);
    assert!(up.status.success(), "demo/up: {out}");
    let dir = demo.dir.to_str().unwrap();
    for line in [
        format!("export SPINE_SECRET_IMMICH_DB_PASSWORD=\"$(cat {dir}/db_password)\""),
        format!("plan --registry {dir}/registry --ssh-config {dir}/ssh_config"),
        format!("apply --registry {dir}/registry --ssh-config {dir}/ssh_config --yes"),
        "demo/down".to_string(),
    ] {
        assert!(out.contains(&line), "demo/up prints `{line}`:\n{out}");
    }
    readme_quick_start_matches(&out, dir);
    let secret = std::fs::read_to_string(demo.dir.join("db_password")).unwrap();
    assert!(secret.len() >= 16);
    assert!(!out.contains(&secret), "demo/up printed the secret");

    let reg = demo.dir.join("registry");
    let cfg = demo.dir.join("ssh_config");
    let receipts = demo.dir.join("receipts");
    let envs = [("SPINE_SECRET_IMMICH_DB_PASSWORD", secret.as_str())];
    let args = |cmd: &str| -> Vec<String> {
        [
            cmd,
            "--registry",
            reg.to_str().unwrap(),
            "--ssh-config",
            cfg.to_str().unwrap(),
            "--receipts",
            receipts.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let plan = |extra: &[&str]| {
        let mut a = args("plan");
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        spine(&a, &envs)
    };

    let run = |cmd: &str, extra: &[&str]| {
        let mut a = args(cmd);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        spine(&a, &envs)
    };

    // Why every path is dead, and what to run.
    let doctor: Vec<&str> = vec![
        "doctor",
        "--registry",
        reg.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
        "immich",
    ];
    let out = spine(&doctor, &envs);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "doctor: {t}");
    for want in [
        "cloud-init DIFFERS: ipconfig0 is `ip=10.203.212.230/24,gw=10.203.212.1`",
        "the guest agent says the VM has 10.203.212.230/24, not the registry's 10.203.201.203/24",
        "guest agent of VM 203 on pve -> qm guest exec 203 on pve",
        "`uname -srm` through the guest agent: Linux",
        "but none of the 3 SSH paths",
        "spine apply --restart-vms",
    ] {
        assert!(t.contains(want), "doctor says `{want}`:\n{t}");
    }
    assert!(!t.contains("(or `spine apply`)"), "{t}");

    // What the plan can see (pve) and cannot (VM 203, unreachable).
    let out = plan(&["--detailed-exitcode"]);
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "not converged: {t}");
    for want in [
        "host immich: unreachable",
        "ipconfig0 is `ip=10.203.212.230/24,gw=10.203.212.1`, should be `ip=10.203.201.203/24,gw=10.203.201.1`",
        "`spine apply --restart-vms` sets them",
        "? cron cron:ronny: unknown: host unreachable on every access path",
        "summary: 1 to change, 0 to create, 0 to remove, 11 unknown (0 in sync, 1 host unreachable)",
        // VM 203's whole network is among what it cannot see yet.
        "? netplan netplan:eth0/other-files: unknown: host unreachable on every access path",
        "? netplan netplan:eth0/live: unknown: host unreachable on every access path",
        "? cron cron:tables: unknown: host unreachable on every access path",
        "? compose compose:immich/extra: unknown: host unreachable on every access path",
        "? vm 203 on pve: unknown: VM 203 is running on pve; its guest agent says it has 10.203.212.230/24",
        "run `spine apply --restart-vms`",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }
    assert!(!t.contains(&secret));

    // Without --restart-vms: nothing restarts, exit 1 naming VM 203.
    let out = run("apply", &["--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "apply: {t}");
    assert!(
        t.contains("VM 203 (immich) not converged") && t.contains("qm cloudinit update 203"),
        "{t}"
    );
    assert!(!t.contains("apply OK"), "{t}");

    // With it: the VM comes back from pve and converges in the same run.
    let out = run("apply", &["--yes", "--restart-vms", "--wait-timeout", "60"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "apply --restart-vms: {t}");
    for want in [
        "VM 203 (immich) restart from pve: back",
        "qm reboot 203",
        "new SSH host key through the guest agent",
        "immich answered on lan ronny@10.203.201.203",
        "changed     cron cron:ronny",
        "apply OK",
    ] {
        assert!(t.contains(want), "apply says `{want}`:\n{t}");
    }
    // The first read of VM 203 (after the restart) names each of the four
    // things found by hand on the host (issue 16), and the same apply fixes
    // them.
    for want in [
        "- netplan netplan:eth0/other-files: remove: /etc/netplan/00-installer-config.yaml: configures eth0",
        "~ netplan netplan:eth0/live: change: live network differs: eth0 also has 10.203.212.230/24",
        "/etc/cron.d/immich-offsite:2 `30 4 * * * ronny /home/ronny/ronny-ops/immich/scripts/offsite.sh` refers to a legacy root",
        "container immich_microservices: `immich_microservices` is a legacy container of this stack",
        "~ tailscale tailscale:prefs: change: the node is Stopped (`tailscale down`): apply brings it up (`tailscale up`)",
        "removed     netplan netplan:eth0/other-files",
        "changed     netplan netplan:eth0/live",
        "removed     cron cron:tables",
        "removed     compose compose:immich/extra",
        "changed     tailscale tailscale:prefs",
    ] {
        assert!(t.contains(want), "apply --restart-vms says `{want}`:\n{t}");
    }
    assert!(!t.contains(&secret));
    let restart_recorded = std::fs::read_dir(&receipts)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .any(|r| r.contains("\"vm-restart\"") && r.contains("vm 203 on pve; asked by"));
    assert!(restart_recorded, "a receipt records the restart");

    let out = plan(&["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", text(&out));
    assert!(text(&out).contains("12 in sync"), "{}", text(&out));

    // demo/down leaves nothing behind.
    let down = demo.run("down");
    assert!(down.status.success(), "demo/down: {}", text(&down));
    assert!(!demo.dir.exists(), "{} is left", demo.dir.display());
    let ns = netns();
    for h in ["pve", "immich"] {
        let name = format!("{}-{h}", demo.name);
        assert!(
            !ns.lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "netns {name} is left: {ns}"
        );
        let state = Path::new("/tmp/spine-hosts").join(&name);
        assert!(!state.exists(), "{} is left", state.display());
    }
    let bridge = Command::new("ip")
        .args(["-4", "addr", "show"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&bridge.stdout);
    assert!(
        !addrs.contains("10.203.201.1/") && !addrs.contains("10.203.212.1/"),
        "demo gateways are left: {addrs}"
    );
    // Idempotent.
    assert!(demo.run("down").status.success());
}

/// Every command demo/up prints is in the README's quick start, written with
/// `spine`, `$R` and /tmp/spine-demo (comments aside).
fn readme_quick_start_matches(printed: &str, dir: &str) {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("## Quick start")
        .expect("README has a quick start");
    let quick =
        &readme[start..start + readme[start..].find("\nAgainst your own registry").unwrap()];
    let quick: Vec<String> = quick
        .lines()
        .map(|l| l.split("  #").next().unwrap_or_default().trim().to_string())
        .collect();
    let r = format!("--registry {dir}/registry --ssh-config {dir}/ssh_config");
    let mut n = 0;
    for line in printed.lines().filter(|l| l.starts_with("  ")) {
        let cmd = line
            .split("  #")
            .next()
            .unwrap_or_default()
            .trim()
            .replace(env!("CARGO_BIN_EXE_spine"), "spine")
            .replace(&r, "$R")
            .replace(dir, "/tmp/spine-demo");
        let cmd = cmd.split("; echo").next().unwrap_or_default().trim();
        if cmd.is_empty() {
            continue;
        }
        n += 1;
        assert!(
            quick.iter().any(|q| q == cmd),
            "README's quick start lacks `{cmd}` (demo/up prints it):\n{}",
            quick.join("\n")
        );
    }
    assert!(n >= 7, "demo/up printed {n} commands:\n{printed}");
}
