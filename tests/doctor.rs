//! `spine doctor` on real test hosts: a healthy path, a dead address, a
//! refused port, a wrong host key, a name that does not resolve, and the
//! Proxmox hint for VM 203 as found. Subnets 10.203.70.0/24 to 10.203.79.0/24.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::scenario::{immich_vm, proxmox};
use support::{SshConfig, closed_port, spine, test_registry, text, wrong_host_key};

const MAC: &str = "52:54:00:70:02:30";

fn doctor(reg: &Path, cfg: &Path, format: &str) -> Output {
    spine(
        &[
            "doctor",
            "immich",
            "--registry",
            reg.to_str().unwrap(),
            "--ssh-config",
            cfg.to_str().unwrap(),
            "--connect-timeout",
            "3",
            "--format",
            format,
        ],
        &[],
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor JSON: {e}\n{}", text(out)))
}

fn step<'a>(path: &'a Value, name: &str) -> &'a Value {
    path["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {path:#}"))
}

fn finding<'a>(report: &'a Value, topic: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["topic"] == topic)
        .unwrap_or_else(|| panic!("no finding {topic} in {report:#}"))
}

fn hints(path: &Value) -> String {
    path["hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn vm203_as_found_one_path_works_and_the_hint_points_at_cloud_init() {
    let tmp = tempfile::tempdir().unwrap();
    // The Proxmox host on the new LAN; the VM still on the old one, under
    // its old Tailscale name.
    let pve = proxmox(
        "dp",
        "10.203.70.10/24",
        "--ipconfig0 ip=10.203.71.230/24,gw=10.203.71.1 --nameserver 10.203.70.204",
    );
    let immich = immich_vm("10.203.71.230/24", MAC)
        .prefix("di")
        .no_docker()
        .ts_hostname("immich")
        .up();
    let reg = test_registry(tmp.path(), "10.203.70", MAC, "v2.4.1");
    // Tailscale (MagicDNS) still reaches the VM; the registry's LAN address
    // 10.203.70.203 is held by nobody.
    let cfg = SshConfig::new()
        .alias("immich-1", &immich)
        .direct("10.203.70.203", &immich)
        .alias("pve", &pve)
        .write(tmp.path());

    let out = doctor(&reg, &cfg, "json");
    let r = json(&out);
    assert_eq!(out.status.code(), Some(0), "one path works: {}", text(&out));
    assert_eq!(r["format_version"], 1);
    assert_eq!(r["summary"]["status"], "OK");
    assert_eq!(r["summary"]["working"], 1, "{r:#}");
    assert_eq!(r["summary"]["ssh_paths"], 3, "{r:#}");
    let paths = r["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 4, "three SSH paths and the guest agent: {r:#}");

    // Path 1, tailscale: every step passes, each with what it saw.
    let ts = &paths[0];
    assert_eq!(ts["works"], true, "{ts:#}");
    for s in ["dns", "tcp", "banner", "host_key", "auth", "command"] {
        assert_eq!(step(ts, s)["status"], "ok", "{s}: {ts:#}");
    }
    assert!(
        step(ts, "banner")["detail"]
            .as_str()
            .unwrap()
            .starts_with("SSH-2.0-OpenSSH"),
        "{ts:#}"
    );
    assert!(
        step(ts, "command")["detail"]
            .as_str()
            .unwrap()
            .contains("Linux"),
        "{ts:#}"
    );
    assert!(
        step(ts, "tcp")["detail"]
            .as_str()
            .unwrap()
            .contains(immich.addr()),
        "{ts:#}"
    );

    // Path 2, LAN at the registry's address: dead, and the hint names the
    // stale cloud-init config read from the Proxmox host.
    let lan = &paths[1];
    assert_eq!(lan["works"], false);
    let tcp = step(lan, "tcp");
    assert_eq!(tcp["status"], "fail", "{lan:#}");
    assert!(
        matches!(tcp["kind"].as_str(), Some("timeout" | "unreachable")),
        "{lan:#}"
    );
    assert_eq!(step(lan, "command")["status"], "not_tried");
    let h = hints(lan);
    assert!(
        h.contains("ipconfig0 is `ip=10.203.71.230/24,gw=10.203.71.1`, the registry says `ip=10.203.70.203/24,gw=10.203.70.1`"),
        "{h}"
    );
    assert!(
        h.contains("qm set 203 --ipconfig0 ip=10.203.70.203/24,gw=10.203.70.1"),
        "{h}"
    );
    assert!(
        h.contains("the host has 10.203.71.230/24 on eth0, not the registry's 10.203.70.203/24"),
        "{h}"
    );

    // Path 3, through the Proxmox host: the first hop answers, the VM does not.
    let jump = &paths[2];
    assert_eq!(jump["works"], false, "{jump:#}");
    assert_eq!(
        step(jump, "banner")["status"],
        "ok",
        "the jump host answers: {jump:#}"
    );

    // What the registry lets doctor check.
    assert_eq!(finding(&r, "cloud-init")["status"], "differs");
    assert_eq!(
        finding(&r, "cloud-init")["seen"],
        "ip=10.203.71.230/24,gw=10.203.71.1"
    );
    // Path 4, the guest agent on pve: pve answers, the agent is not enabled.
    let agent = &paths[3];
    assert_eq!(agent["kind"], "guest_agent", "{agent:#}");
    assert_eq!(agent["works"], false, "{agent:#}");
    assert_eq!(step(agent, "proxmox")["status"], "ok", "{agent:#}");
    assert_eq!(step(agent, "agent")["status"], "fail", "{agent:#}");
    assert!(
        step(agent, "agent")["detail"]
            .as_str()
            .unwrap()
            .contains("qm set 203 --agent 1"),
        "{agent:#}"
    );
    assert_eq!(step(agent, "command")["status"], "not_tried", "{agent:#}");
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["topic"] != "guest-agent"),
        "the agent is a path, not a finding: {r:#}"
    );
    let tsf = finding(&r, "tailscale");
    assert_eq!(tsf["status"], "differs", "{tsf:#}");
    assert!(
        tsf["detail"]
            .as_str()
            .unwrap()
            .contains("calls the host `immich`, the registry says `immich-1`"),
        "{tsf:#}"
    );
    assert_eq!(finding(&r, "addresses")["status"], "differs");

    // The same as text, for a person.
    let out = doctor(&reg, &cfg, "text");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("path 1: tailscale ronny@immich-1"), "{t}");
    assert!(
        t.contains("  => works") && t.contains("  => does not work"),
        "{t}"
    );
    assert!(
        t.contains("hint: ") && t.contains("cloud-init DIFFERS: ipconfig0 is"),
        "{t}"
    );
    assert!(
        t.contains("status: OK (1 of 4 paths work: 1 (tailscale"),
        "{t}"
    );

    // Once the hypervisor agrees, the hint says so instead.
    pve.ok("qm set 203 --ipconfig0 ip=10.203.70.203/24,gw=10.203.70.1");
    let r = json(&doctor(&reg, &cfg, "json"));
    assert_eq!(finding(&r, "cloud-init")["status"], "ok", "{r:#}");
    assert!(
        hints(&r["paths"][1]).contains("cloud-init on pve agrees with the registry"),
        "{r:#}"
    );
}

/// Run spine with /etc/resolv.conf pointing at loopback, where nothing
/// listens (a mount namespace of its own): a name that is not in /etc/hosts
/// fails at once and no query leaves the machine.
fn spine_without_dns(args: &[&str], dir: &Path) -> Output {
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(&resolv)
        .arg(env!("CARGO_BIN_EXE_spine"))
        .args(args)
        .current_dir(&cwd)
        .env("NO_COLOR", "1")
        .env_remove("SPINE_REGISTRY")
        .output()
        .expect("unshare")
}

/// The registry with the host's access paths replaced.
fn with_access(reg: &Path, access: &str) -> PathBuf {
    let f = reg.join("SERVICE_REGISTRY.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    let start = text.find("      access:\n").unwrap();
    let end = start + text[start..].find("      network:\n").unwrap();
    std::fs::write(
        &f,
        format!("{}      access:\n{access}{}", &text[..start], &text[end..]),
    )
    .unwrap();
    reg.to_path_buf()
}

#[test]
fn refused_wrong_key_unresolved_and_dead_paths_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = "52:54:00:72:00:50";
    let immich = immich_vm("10.203.72.50/24", mac)
        .prefix("di")
        .no_docker()
        .harness_ts_ip()
        .harness_ts_hostname()
        .up();
    let reg = test_registry(tmp.path(), "10.203.72", mac, "v2.4.1");
    let reg = with_access(
        &reg,
        "        - {via: ssh_config, address: im-refused}\n\
         \x20       - {via: ssh_config, address: im-wrongkey}\n\
         \x20       - {via: ssh_config, address: im-nodns.spine.invalid}\n\
         \x20       - {via: ssh_config, address: 10.203.79.9}\n\
         \x20       - {via: ssh_config, address: im-ok}\n",
    );
    let cfg = SshConfig::new()
        .alias("im-refused", &immich)
        .alias("im-ok", &immich)
        // The Proxmox host is at a dead address too (the harness's
        // unreachable route for 10.203.0.0/16).
        .alias_at("pve", "10.203.79.10", &immich)
        .write(tmp.path());
    closed_port(&cfg, "im-refused");
    // A key that is not the host's, known under the alias im-wrongkey uses.
    wrong_host_key(&cfg, "im-wrongkey", &immich, "");

    let args = [
        "doctor",
        "immich",
        "--registry",
        reg.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
        "--connect-timeout",
        "3",
        "--format",
        "json",
    ];
    let out = spine_without_dns(&args, tmp.path());
    let r = json(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the last path works: {}",
        text(&out)
    );
    let p = r["paths"].as_array().unwrap();
    let failed = |i: usize| {
        let s = p[i]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["status"] == "fail")
            .cloned();
        let s = s.unwrap_or_else(|| panic!("path {} has no failed step: {:#}", i + 1, p[i]));
        (
            s["step"].as_str().unwrap().to_string(),
            s["kind"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(failed(0), ("tcp".into(), "refused".into()), "{:#}", p[0]);
    assert_eq!(step(&p[0], "dns")["status"], "ok");
    assert_eq!(
        failed(1),
        ("host_key".into(), "host_key".into()),
        "{:#}",
        p[1]
    );
    assert_eq!(
        step(&p[1], "banner")["status"],
        "ok",
        "the server answered: {:#}",
        p[1]
    );
    assert!(
        hints(&p[1]).contains("ssh-keygen -F im-wrongkey"),
        "{:#}",
        p[1]
    );
    assert_eq!(
        failed(2),
        ("dns".into(), "name_not_resolved".into()),
        "{:#}",
        p[2]
    );
    assert_eq!(
        failed(3),
        ("tcp".into(), "unreachable".into()),
        "{:#}",
        p[3]
    );
    assert_eq!(p[4]["works"], true, "{:#}", p[4]);
    // The guest agent path goes through pve, which is dead too.
    assert_eq!(p.len(), 6, "{r:#}");
    assert_eq!(p[5]["kind"], "guest_agent", "{:#}", p[5]);
    assert_eq!(failed(5).0, "proxmox", "{:#}", p[5]);
    assert_eq!(step(&p[5], "command")["status"], "not_tried");
    assert!(hints(&p[5]).contains("spine doctor pve"), "{:#}", p[5]);
    // The Proxmox host could not be asked: the hint says what to check by hand.
    assert_eq!(finding(&r, "cloud-init")["status"], "unknown", "{r:#}");
    assert!(
        hints(&p[3]).contains("check `qm config 203` (ipconfig0) on pve"),
        "{:#}",
        p[3]
    );

    // No path works: exit 1.
    closed_port(&cfg, "im-ok");
    let out = spine_without_dns(&args, tmp.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(json(&out)["summary"]["status"], "FAIL");

    // An unknown host cannot be diagnosed: exit 2.
    let out = spine(
        &["doctor", "nosuchhost", "--registry", reg.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no host `nosuchhost`"),
        "{}",
        text(&out)
    );
}
