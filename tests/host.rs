//! Issue 16: the whole host, not only the files spine writes. Each case is
//! made by hand on a converged test host (subnets 10.203.170-189): `spine
//! plan --detailed-exitcode` exits 2 naming it, `spine apply` fixes it, the
//! next plan exits 0.

mod support;

use support::scenario::{One, converged_host};
use support::text;

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
    let one = converged_host(
        tmp.path(),
        "10.203.170",
        "52:54:00:17:02:03",
        "/home/ronny/immich",
        "",
    );
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
    let one = converged_host(
        tmp.path(),
        "10.203.171",
        "52:54:00:17:12:03",
        "/home/ronny/immich",
        "",
    );
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
    let one = converged_host(
        tmp.path(),
        "10.203.172",
        "52:54:00:17:22:03",
        "/home/ronny/immich",
        "",
    );
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
