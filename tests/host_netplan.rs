//! Issue 16 point 1, netplan as the host sees it (subnets 10.203.190-199):
//! every file netplan merges and the live addresses and default route are
//! compared with the registry. (a) an installer file beside the managed one
//! is planned for removal, removed (backed up) under the confirmed
//! lifecycle, and the next plan is clean; (b) a configuration right on disk
//! but not live is drift of its own, fixed by activating it over the
//! Tailscale path the run came by; (c) a removal whose activation cuts SSH
//! is rolled back by the host, the file put back.

mod support;

use std::time::{Duration, Instant};

use support::scenario::{One, SECRET, converged_host, rendered};
use support::{Alias, TestHost, spine, ssh_config, test_registry, text, unique};

const HOME: &str = "/home/ronny/immich";

/// What Ubuntu's installer (subiquity) leaves beside cloud-init's file: the
/// address the machine had when it was installed.
fn installer_file(address: &str) -> String {
    format!(
        "# This is the network config written by 'subiquity'\nnetwork:\n  ethernets:\n    eth0:\n      addresses:\n      - {address}\n      nameservers:\n        addresses: []\n        search: []\n  version: 2\n"
    )
}

const INSTALLER: &str = "/etc/netplan/00-installer-config.yaml";

fn plan(one: &One) -> (Option<i32>, String) {
    let out = one.spine(&["plan", "--detailed-exitcode"]);
    (out.status.code(), text(&out))
}

fn apply(one: &One) -> (Option<i32>, String) {
    let out = one.spine(&["apply", "--yes", "--confirm-timeout", "30"]);
    (out.status.code(), text(&out))
}

fn receipts(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir.join("receipts"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// (a) A converged host, then the installer's file put back by hand with
/// the old address on eth0: the plan names the file and its removal, apply
/// removes it (kept in the run's backup) and the next plan is clean.
#[test]
fn an_installer_file_beside_the_managed_one_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged_host(tmp.path(), "10.203.190", "52:54:00:19:00:03", HOME, "");
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged before: {t}");
    let h = &one.immich;
    h.write(
        INSTALLER,
        &installer_file("10.203.191.230/24"),
        "root:root",
        "600",
    );

    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    for want in [
        "- netplan netplan:eth0/other-files: remove: /etc/netplan/00-installer-config.yaml: configures eth0",
        "-/etc/netplan/00-installer-config.yaml",
        "0 to change, 0 to create, 1 to remove, 0 unknown",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }

    let (code, t) = apply(&one);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        t.contains("removed     netplan netplan:eth0/other-files")
            && t.contains("applied and confirmed over a fresh connection"),
        "{t}"
    );
    assert!(h.sh(&format!("test -e {INSTALLER}")).status.code() != Some(0));
    assert_eq!(
        h.ok(&format!("cat /var/lib/spine/backups/*{INSTALLER}")),
        installer_file("10.203.191.230/24"),
        "the removed file is kept in the run's backup"
    );
    let addr = h.ok("ip -4 -o addr show dev eth0");
    assert!(
        addr.contains("10.203.190.203/24") && !addr.contains("10.203.191.230"),
        "{addr}"
    );
    let r = receipts(tmp.path());
    assert!(
        r.contains("\"removed\"") && r.contains("netplan:eth0/other-files"),
        "a receipt records the removal"
    );
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged after: {t}");
}

/// The alias `immich-1` (the registry's Tailscale path) reaches the host
/// whatever its LAN address: sshd on the host's stdin through the harness,
/// as the tailnet stand-in has no network.
fn over_the_tailnet(cfg: &std::path::Path, host: &TestHost) {
    let c = std::fs::read_to_string(cfg).unwrap().replacen(
        "Host immich-1\n",
        &format!(
            "Host immich-1\n    ProxyCommand {} exec {} -- /usr/sbin/sshd -i -f /etc/ssh/sshd_config\n",
            support::repo().join("tests/hosts/testhost").display(),
            host.name
        ),
        1,
    );
    std::fs::write(cfg, c).unwrap();
}

/// (b) The files are right but the live address was changed by hand: the
/// plan says "not applied", apply activates the files (confirmed over the
/// Tailscale path, as the LAN address is not live), the next plan is clean.
#[test]
fn a_configuration_right_on_disk_but_not_applied_is_activated() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged_host(tmp.path(), "10.203.192", "52:54:00:19:20:03", HOME, "");
    over_the_tailnet(&one.cfg, &one.immich);
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged before: {t}");
    let h = &one.immich;
    h.ok("ip addr flush dev eth0 scope global && ip addr add 10.203.193.230/24 dev eth0 && ip route replace default via 10.203.193.1 dev eth0");

    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    for want in [
        "~ netplan netplan:eth0/live: change: right on disk but not applied: eth0 does not have 10.203.192.203/24, eth0 also has 10.203.193.230/24, no default route via 10.203.192.1 on eth0, a default route via 10.203.193.1 on eth0",
        "+address 10.203.192.203/24",
        "1 to change, 0 to create, 0 to remove, 0 unknown",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }
    let (code, t) = apply(&one);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        t.contains("changed     netplan netplan:eth0/live")
            && t.contains(
                "applied and confirmed over a fresh connection (tailscale ronny@immich-1)"
            ),
        "{t}"
    );
    let addr = h.ok("ip -4 -o addr show dev eth0");
    assert!(
        addr.contains("10.203.192.203/24") && !addr.contains("10.203.193.230"),
        "{addr}"
    );
    assert!(
        h.ok("ip -4 route show default")
            .contains("via 10.203.192.1 dev eth0")
    );
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged after: {t}");
}

/// (c) The installer file holds the address this machine reaches the host
/// on; the registry's address is on a subnet it cannot reach. Removing the
/// file and activating cuts SSH: no fresh connection comes, the host puts
/// the file back and activates it by itself, and spine says so.
#[test]
fn an_installer_file_removal_that_cuts_ssh_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = "52:54:00:19:40:50";
    let immich = TestHost::up(
        &unique("im"),
        "10.203.194.50/24",
        &[
            "--mac",
            mac,
            "--no-docker",
            "--ts-ip",
            "10.203.100.50",
            "--ts-hostname",
            "immich-1",
        ],
    );
    let reg = test_registry(tmp.path(), "10.203.195", mac, "v2.4.1");
    // cloud-init's file as the registry wants it (10.203.195.203, a subnet
    // this machine has no route to), the installer's with the address the
    // host answers on; both live, as netplan merges them.
    let managed = rendered(
        &reg,
        &tmp.path().join("r"),
        "immich",
        "/etc/netplan/50-cloud-init.yaml",
    );
    immich.write(
        "/etc/netplan/50-cloud-init.yaml",
        &managed,
        "root:root",
        "600",
    );
    immich.write(
        INSTALLER,
        &installer_file("10.203.194.50/24"),
        "root:root",
        "600",
    );
    immich.ok("netplan apply");
    let before = immich.ok("ip -4 -o addr show dev eth0");
    assert!(
        before.contains("10.203.194.50/24") && before.contains("10.203.195.203/24"),
        "{before}"
    );
    let cfg = ssh_config(
        tmp.path(),
        &[
            Alias {
                name: "immich-1",
                hostname: Some(immich.addr()),
                host: &immich,
            },
            Alias {
                name: "10.203.195.203",
                hostname: None,
                host: &immich,
            },
            Alias {
                name: "pve",
                hostname: Some("10.203.196.10"),
                host: &immich,
            },
        ],
        &[&immich],
    );
    let args = |cmd: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            cmd,
            "immich",
            "--registry",
            reg.to_str().unwrap(),
            "--ssh-config",
            cfg.to_str().unwrap(),
            "--receipts",
            tmp.path().join("receipts").to_str().unwrap(),
            "--connect-timeout",
            "2",
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        spine(&a, &[("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET)])
    };
    let o = run(args("plan", &[]));
    let t = text(&o);
    for want in [
        "- netplan netplan:eth0/other-files: remove: /etc/netplan/00-installer-config.yaml: configures eth0",
        "~ netplan netplan:eth0/live: change: live network differs: eth0 also has 10.203.194.50/24",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }

    let started = Instant::now();
    let o = run(args("apply", &["--yes", "--confirm-timeout", "12"]));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("ROLLED BACK") && t.contains("restored the old network by itself"),
        "{t}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
    // The file is back, and live again.
    assert_eq!(
        immich.ok(&format!("cat {INSTALLER}")),
        installer_file("10.203.194.50/24")
    );
    assert_eq!(
        immich
            .ok("stat -c %a /etc/netplan/00-installer-config.yaml")
            .trim(),
        "600"
    );
    assert!(
        immich
            .ok("ip -4 -o addr show dev eth0")
            .contains("10.203.194.50/24")
    );
    let r = receipts(tmp.path());
    assert!(
        r.contains("\"status\":\"rolled_back\"") && r.contains("netplan:eth0/other-files"),
        "{r}"
    );
}
