//! `spine apply` against real test hosts: the VM 203 scenario fixed by one
//! apply, the second apply a no-op, and the fault cases.

mod support;

use support::scenario::{SECRET, Vm203, spine_on, vm203_as_found};
use support::text;

fn apply(reg: &std::path::Path, cfg: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "--yes", "--confirm-timeout", "30"];
    args.extend_from_slice(extra);
    spine_on(reg, cfg, &args)
}

#[test]
fn vm203_is_fixed_by_one_apply_and_a_second_apply_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Vm203 {
        pve,
        immich,
        reg,
        cfg,
    } = vm203_as_found(tmp.path());
    // The VM's network is owned by cloud-init: the fix is a restart from pve,
    // with the guest agent there to learn the VM's new host key (issue 14).
    pve.ok(&format!(
        "qm set 203 --agent 1 --net0 virtio={},bridge=vmbr0 && qm standin-guest 203 --guest {}",
        support::scenario::MAC,
        immich.name
    ));

    // The operator comes by the tailnet (`immich-1`, a path that does not
    // depend on the LAN address): the VM answers there before and after the
    // restart, and the network change dropping the old address the
    // installer's netplan file kept live is confirmed there.
    support::over_the_tailnet(&cfg, "immich-1", &immich);
    let out = apply(&reg, &cfg, &["--restart-vms"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("VM 203 (immich) restart from pve: back")
            && t.contains("immich answered on tailscale ronny@immich-1"),
        "{t}"
    );
    assert!(
        t.contains("applied and confirmed over a fresh connection (tailscale ronny@immich-1)"),
        "{t}"
    );
    assert!(!t.contains(SECRET));

    // The host is where the registry says, and so is everything on it.
    let addrs = immich.ok("ip -4 -o addr show dev eth0");
    assert!(
        addrs.contains("10.203.1.203/24") && !addrs.contains("10.203.12.230"),
        "{addrs}"
    );
    assert!(immich.ok("ip route").contains("default via 10.203.1.1"));
    // The installer's netplan file is gone (kept in the run's backup).
    assert!(
        immich
            .sh("test -e /etc/netplan/00-installer-config.yaml")
            .status
            .code()
            != Some(0)
    );
    assert!(
        t.contains("removed     netplan netplan:eth0/other-files"),
        "{t}"
    );
    assert!(
        pve.ok("qm config 203")
            .contains("ipconfig0: ip=10.203.1.203/24,gw=10.203.1.1")
    );
    assert!(
        immich
            .ok("tailscale status --json")
            .contains("\"HostName\": \"immich-1\"")
    );
    assert!(
        immich
            .ok("tailscale status --json")
            .contains("\"BackendState\": \"Running\""),
        "the stopped node is up again"
    );
    let cron = immich.ok("crontab -l -u ronny");
    assert!(
        cron.contains("# BEGIN spine managed block") && !cron.contains("ronny-ops"),
        "{cron}"
    );
    assert!(
        !immich
            .ok("cat /etc/cron.d/immich-offsite")
            .contains("ronny-ops"),
        "the legacy job in /etc/cron.d is gone"
    );
    let ps = immich.ok("docker ps --format '{{.Names}} {{.Image}} {{.Status}}'");
    assert!(
        ps.contains("immich_machine_learning ghcr.io/immich-app/immich-machine-learning:v2.4.1"),
        "{ps}"
    );
    assert!(
        ps.contains("immich_server ghcr.io/immich-app/immich-server:v2.4.1"),
        "{ps}"
    );
    assert!(!ps.contains("immich_microservices"), "{ps}");
    assert!(
        t.contains("removed     compose compose:immich/extra"),
        "{t}"
    );
    assert!(
        immich
            .ok("cat /home/ronny/immich/.env")
            .contains(&format!("DB_PASSWORD={SECRET}"))
    );
    assert_eq!(
        immich.ok("stat -c '%a %U' /home/ronny/immich/.env").trim(),
        "600 ronny"
    );
    // What was replaced is kept on the host; the lock is gone.
    let backups = immich.ok("ls /var/lib/spine/backups");
    assert_eq!(backups.lines().count(), 1, "{backups}");
    assert!(
        !immich
            .ok("find /var/lib/spine/backups -type f")
            .contains("/etc/netplan/50-cloud-init.yaml"),
        "cloud-init wrote the netplan file, spine did not touch it"
    );
    assert!(immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0));

    // The second apply finds nothing to do and touches nothing.
    let again = apply(&reg, &cfg, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to apply"),
        "{}",
        text(&again)
    );
    assert_eq!(immich.ok("ls /var/lib/spine/backups"), backups);

    // Every run left a receipt; none holds the secret.
    let receipts = tmp.path().join("receipts");
    let n = std::fs::read_dir(&receipts)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(n, 2);
    for e in std::fs::read_dir(&receipts).unwrap() {
        assert!(
            !std::fs::read_to_string(e.unwrap().path())
                .unwrap_or_default()
                .contains(SECRET)
        );
    }
}

/// A host the plan could not reach is never "apply OK": apply exits 1, says
/// "not converged" and names the host; the receipt agrees (issue 14, point 1).
#[test]
fn an_unreachable_host_leaves_apply_not_converged() {
    let tmp = tempfile::tempdir().unwrap();
    let one = support::scenario::converged(tmp.path(), "10.203.101", "52:54:00:65:02:03").up();
    // Only this host's sshd: the ones in its network namespace.
    one.immich
        .ok("pkill -KILL --ns $$ --nslist net -x sshd || true");
    let receipts = tmp.path().join("receipts");
    let o = one.spine(&[
        "apply",
        "--yes",
        "--connect-timeout",
        "3",
        "--receipts",
        receipts.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(!t.contains("apply OK"), "{t}");
    assert!(
        t.contains("not converged") && t.contains("immich: unreachable"),
        "{t}"
    );
    let receipt = std::fs::read_dir(&receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a receipt");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(receipt).unwrap()).unwrap();
    assert_eq!(r["status"], "incomplete", "{r}");
    assert_eq!(r["exit_code"], 1, "{r}");
    assert_eq!(r["apply"]["unreachable"], 1, "{r}");
    assert_eq!(r["apply"]["changed"], 0, "{r}");
}
