//! Issue 16: the whole host, not only the files spine writes. Each case is
//! made by hand on a converged test host (subnets 10.203.170-189, and
//! 10.203.190-196 for the network): `spine plan --detailed-exitcode` exits 2
//! naming it, `spine apply` fixes it, the next plan exits 0.
//!
//! Netplan as the host sees it (point 1): every file netplan merges and the
//! live addresses and default route are compared with the registry. (a) an
//! installer file beside the managed one is planned for removal, removed
//! (backed up) under the confirmed lifecycle, and the next plan is clean;
//! (b) a configuration right on disk but not live is drift of its own, fixed
//! by activating it over the Tailscale path the run came by; (c) a removal
//! whose activation cuts SSH is rolled back by the host, the file put back.

mod support;

use std::time::Duration;

use support::scenario::{One, converged, immich_vm, installer_config, rendered, spine_on};
use support::{SshConfig, assert_rolled_back, test_registry, text};

const IMAGE: &str = "ghcr.io/immich-app/immich-server:v2.4.1";

fn plan(one: &One) -> (Option<i32>, String) {
    let out = one.spine(&["plan", "--detailed-exitcode"]);
    (out.status.code(), text(&out))
}

fn apply(one: &One) -> (Option<i32>, String) {
    let out = one.spine(&["apply", "--yes", "--confirm-timeout", "30"]);
    (out.status.code(), text(&out))
}

/// Case 4: an orphan of the compose project, a legacy Immich v1 container
/// and a container publishing the stack's port are planned for removal
/// (`- remove`, counted), removed by apply (configuration kept in the
/// run's backup), and the next plan is clean.
#[test]
fn extra_containers_are_planned_for_removal_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.170", "52:54:00:17:02:03").up();
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged before: {t}");

    let h = &one.immich;
    h.ok(&format!(
        "docker run -d --name immich_old --label com.docker.compose.project=immich \
         --label com.docker.compose.service=immich-web {IMAGE} >/dev/null"
    ));
    h.ok(&format!(
        "docker run -d --name immich_microservices {IMAGE} >/dev/null"
    ));
    // Created, not started: it would take port 2283 as soon as it starts.
    h.ok(&format!(
        "docker create --name squatter -p 2283:2283 {IMAGE} >/dev/null"
    ));
    // The orphan carries the project's label, so its health is among the
    // facts a plan is bound to: plan once it has settled (a health check
    // going from `starting` to `healthy` between plan and apply makes the
    // plan stale, as it should).
    h.ok("for i in $(seq 120); do \
          s=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' immich_old); \
          [ \"$s\" != starting ] && break; sleep 0.5; done");

    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    for want in [
        "- compose compose:immich/extra: remove: ",
        "container immich_old: compose service `immich-web` of project immich is not in the registry (orphan)",
        "container immich_microservices: `immich_microservices` is a legacy container of this stack",
        "container squatter: publishes port 2283, which the stack's compose file publishes",
        "0 to change, 0 to create, 1 to remove, 0 unknown",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }

    let (code, t) = apply(&one);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        t.contains("removed     compose compose:immich/extra"),
        "{t}"
    );
    let names = h.ok("docker ps -a --format '{{.Names}}'");
    for gone in ["immich_old", "immich_microservices", "squatter"] {
        assert!(!names.lines().any(|n| n == gone), "{gone} left:\n{names}");
    }
    assert!(names.contains("immich_server"), "{names}");
    let kept = h.ok("ls /var/lib/spine/backups/*/containers");
    assert!(
        kept.contains("squatter.json") && kept.contains("immich_old.json"),
        "{kept}"
    );
    let receipts = std::fs::read_dir(tmp.path().join("receipts"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .any(|r| r.contains("\"removed\"") && r.contains("compose:immich/extra"));
    assert!(receipts, "a receipt records the removal");

    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged after: {t}");
}

/// Case 2: every cron table is read. A job under the legacy root in
/// /etc/cron.d and in another user's crontab is reported with file and line
/// and removed (backed up); a job calling a missing script is reported with
/// the fix, and apply, which does not deploy scripts, fails naming it.
#[test]
fn every_cron_table_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.171", "52:54:00:17:12:03").up();
    let h = &one.immich;
    h.write(
        "/etc/cron.d/old-backup",
        "MAILTO=root\n0 4 * * * ronny /home/ronny/ronny-ops/immich/backup.sh >/dev/null 2>&1\n15 4 * * * root /bin/true\n",
        "root:root",
        "644",
    );
    h.ok("printf '5 5 * * * sh ~/ronny-ops/sync.sh\\n7 7 * * * /bin/true\\n' | crontab -u root -");

    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    for want in [
        "- cron cron:tables: remove: ",
        "/etc/cron.d/old-backup:2 `0 4 * * * ronny /home/ronny/ronny-ops/immich/backup.sh >/dev/null 2>&1` refers to a legacy root that no longer exists (apply removes it; by hand: sudo sed -i '2d' '/etc/cron.d/old-backup')",
        "/var/spool/cron/crontabs/root:",
        "sudo crontab -u 'root' -e (delete the job `5 5 * * * sh ~/ronny-ops/sync.sh`)",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }
    let (code, t) = apply(&one);
    assert_eq!(code, Some(0), "{t}");
    assert!(t.contains("removed     cron cron:tables"), "{t}");
    assert_eq!(
        h.ok("cat /etc/cron.d/old-backup"),
        "MAILTO=root\n15 4 * * * root /bin/true\n"
    );
    assert_eq!(
        h.ok("stat -c '%a %U' /etc/cron.d/old-backup").trim(),
        "644 root"
    );
    let root_tab = h.ok("crontab -l -u root");
    assert_eq!(
        h.ok("grep -c 'DO NOT EDIT' /var/spool/cron/crontabs/root")
            .trim(),
        "1",
        "one header, not two"
    );
    assert!(
        !root_tab.contains("ronny-ops") && root_tab.contains("/bin/true"),
        "{root_tab}"
    );
    assert!(
        h.ok("cat /var/lib/spine/backups/*/etc/cron.d/old-backup")
            .contains("ronny-ops"),
        "the old table is kept"
    );
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged after: {t}");

    // A job whose script is missing: named with the fix; apply fails on it.
    h.ok("printf '9 9 * * * /usr/local/bin/not-there.sh\\n' | crontab -u root -");
    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    assert!(
        t.contains("`9 9 * * * /usr/local/bin/not-there.sh` its script /usr/local/bin/not-there.sh is missing (spine does not deploy scripts: deploy it, or remove the job: sudo crontab -u 'root' -e (delete the job `9 9 * * * /usr/local/bin/not-there.sh`))")
            && t.contains("/var/spool/cron/crontabs/root:"),
        "{t}"
    );
    let (code, t) = apply(&one);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("not-there.sh is missing"), "{t}");
}

/// Case 3: Tailscale alive. A stopped node is planned and brought up; a
/// logged-out one is reported with what to run (the auth key only as a
/// reference to the secrets provider) and apply fails naming it.
#[test]
fn tailscale_is_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.172", "52:54:00:17:22:03").up();
    let h = &one.immich;
    h.ok("tailscale down");
    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    assert!(
        t.contains("~ tailscale tailscale:prefs: change: the node is Stopped (`tailscale down`): apply brings it up (`tailscale up`)"),
        "{t}"
    );
    let (code, t) = apply(&one);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        h.ok("tailscale status --json")
            .contains("\"BackendState\": \"Running\"")
    );
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged after: {t}");

    h.ok("tailscale standin-set-state NeedsLogin");
    let (code, t) = plan(&one);
    assert_eq!(code, Some(2), "{t}");
    for want in [
        "the node is logged out (NeedsLogin)",
        "sudo tailscale up --auth-key=\"$(infisical secrets get TS_AUTHKEY --plain)\" --hostname='immich-1'",
        "spine holds no auth key",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }
    let (code, t) = apply(&one);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("NeedsLogin"), "{t}");
    assert!(
        h.ok("tailscale status --json")
            .contains("\"BackendState\": \"NeedsLogin\"")
    );
}

const INSTALLER: &str = "/etc/netplan/00-installer-config.yaml";

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
    let one = converged(tmp.path(), "10.203.190", "52:54:00:19:00:03").up();
    let (code, t) = plan(&one);
    assert_eq!(code, Some(0), "converged before: {t}");
    let h = &one.immich;
    h.write(
        INSTALLER,
        &installer_config("10.203.191.230/24", "10.203.191.1", "10.203.191.1"),
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
        installer_config("10.203.191.230/24", "10.203.191.1", "10.203.191.1"),
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

/// (b) The files are right but the live address was changed by hand: the
/// plan says "not applied", apply activates the files (confirmed over the
/// Tailscale path, as the LAN address is not live), the next plan is clean.
#[test]
fn a_configuration_right_on_disk_but_not_applied_is_activated() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.192", "52:54:00:19:20:03").up();
    support::over_the_tailnet(&one.cfg, "immich-1", &one.immich);
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
    let immich = immich_vm("10.203.194.50/24", mac).no_docker().up();
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
        &installer_config("10.203.194.50/24", "10.203.194.1", "10.203.194.1"),
        "root:root",
        "600",
    );
    immich.ok("netplan apply");
    let before = immich.ok("ip -4 -o addr show dev eth0");
    assert!(
        before.contains("10.203.194.50/24") && before.contains("10.203.195.203/24"),
        "{before}"
    );
    let cfg = SshConfig::new()
        .alias("immich-1", &immich)
        .direct("10.203.195.203", &immich)
        .alias_at("pve", "10.203.196.10", &immich)
        .write(tmp.path());
    let receipts_dir = tmp.path().join("receipts");
    let run = |cmd: &str, extra: &[&str]| {
        let mut a = vec![
            cmd,
            "immich",
            "--receipts",
            receipts_dir.to_str().unwrap(),
            "--connect-timeout",
            "2",
        ];
        a.extend_from_slice(extra);
        spine_on(&reg, &cfg, &a)
    };
    let o = run("plan", &[]);
    let t = text(&o);
    for want in [
        "- netplan netplan:eth0/other-files: remove: /etc/netplan/00-installer-config.yaml: configures eth0",
        "~ netplan netplan:eth0/live: change: live network differs: eth0 also has 10.203.194.50/24",
    ] {
        assert!(t.contains(want), "plan shows `{want}`:\n{t}");
    }

    assert_rolled_back(Duration::from_secs(90), || {
        run("apply", &["--yes", "--confirm-timeout", "12"])
    });
    // The file is back, and live again.
    assert_eq!(
        immich.ok(&format!("cat {INSTALLER}")),
        installer_config("10.203.194.50/24", "10.203.194.1", "10.203.194.1")
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
