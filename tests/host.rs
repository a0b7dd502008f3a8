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
