//! spine on the operator's real repository (`../shared/fixtures/agentic-spine`,
//! files copied unchanged from hypnotizedent/agentic-spine, in their real
//! places): found where the operator keeps them, read as they are, and every
//! diagnostic is a real problem (listed below, each with why).
//!
//! The fixture is `$SPINE_FIXTURE_DIR`, else `CARGO_MANIFEST_DIR/../shared/
//! fixtures/agentic-spine` (CI keeps a read-only copy of shared/ beside the
//! clone). A missing fixture fails these tests; it never skips them.

#[path = "support/fixture.rs"]
mod fixture;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::text;

/// A writable copy of the fixture (the original may be read-only).
fn copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("agentic-spine");
    let st = Command::new("cp")
        .arg("-r")
        .arg(fixture::dir())
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success());
    (tmp, dst)
}

fn spine_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spine"))
        .current_dir(cwd)
        .args(args)
        .env("NO_COLOR", "1")
        .env("SSH_AUTH_SOCK", "")
        .env_remove("SPINE_REGISTRY")
        .env_remove("SPINE_REPO")
        .env_remove("SPINE_RECEIPTS")
        .env_remove("SPINE_SIGNING_KEY")
        .output()
        .unwrap()
}

/// `(gate, severity, file, line, column, message contains)`.
type Want = (
    &'static str,
    &'static str,
    &'static str,
    u64,
    u64,
    &'static str,
);

/// Every diagnostic spine gives on the operator's files, exactly.
const EXPECTED: &[Want] = &[
    // SERVICE_REGISTRY says `status: active` for immich-server with
    // `secrets_project: immich`, but `infisical_projects` holds only
    // mint-os-api and infrastructure: the secrets tooling cannot resolve it.
    (
        "V06",
        "error",
        "docs/governance/SERVICE_REGISTRY.yaml",
        696,
        22,
        "service `immich-server` uses secrets project `immich`, which `infisical_projects` does not have",
    ),
    // `stack_id: finance` twice (line 52, the old docker-host era entry with
    // deploy_target proxmox:vm-211, and line 370): stack discovery keyed by
    // id sees one of them only.
    (
        "V07",
        "error",
        "docs/governance/STACK_REGISTRY.yaml",
        370,
        15,
        "stack id `finance` is used by two stacks",
    ),
    // VM 203's login user: `ubuntu` in SERVICE_REGISTRY, `ronny` in
    // ssh.targets.yaml and vm.lifecycle.yaml ("Cloud-init user is ronny").
    // One of them is wrong; tooling reading the other logs in as the wrong user.
    (
        "V12",
        "error",
        "docs/governance/SERVICE_REGISTRY.yaml",
        863,
        15,
        "the ssh user of host `immich` is stated in 3 places with two values: `ubuntu` and `ronny`",
    ),
    // Warning: the enabled `cloudflared` probe uses port 60123, but service
    // `cloudflared` on infra-core declares no port at all: the port is in use
    // on the host (network_mode: host) without the registry knowing, so port
    // clashes there cannot be checked. Cannot tell more: a warning.
    (
        "V05",
        "warning",
        "ops/bindings/services.health.yaml",
        80,
        10,
        "health endpoint `cloudflared` probes port 60123, which service `cloudflared` on host `infra-core` does not declare",
    ),
    // Warning: an active service whose `port: null` (not known yet) cannot be
    // checked for clashes: "could not check" is said, never passed silently.
    (
        "V08",
        "warning",
        "docs/governance/SERVICE_REGISTRY.yaml",
        787,
        11,
        "the port of service `mail-archiver-db-vm214` is not known yet (null)",
    ),
    // Warning: active service `minio` says its compose file is
    // ~/stacks/storage/docker-compose.yml (docker-host's user: /home/docker-host),
    // but docker.compose.targets.yaml, discovered on the host, lists only
    // stacks/mint-os and mint-modules-prod there and says "Legacy standalone
    // storage stack retired; MinIO runs under mint-os compose". One of the two
    // files is stale; spine cannot tell which: a warning naming both.
    (
        "V12",
        "warning",
        "docs/governance/SERVICE_REGISTRY.yaml",
        114,
        14,
        "the compose folder of `minio` (/home/docker-host/stacks/storage) is not one docker.compose.targets.yaml found on host `docker-host`",
    ),
];

fn diagnostics(json: &Value) -> Vec<(String, String, String, u64, u64, String)> {
    json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["gate"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_diagnostic_on_the_operators_repository_is_a_real_problem() {
    let (_tmp, repo) = copy();
    // Run at the root of the checkout: the files are found where they are.
    let o = spine_in(&repo, &["verify", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    let got = diagnostics(&json);
    let mut want: Vec<&Want> = EXPECTED.iter().collect();
    want.sort_by_key(|w| (w.0, w.2, w.3, w.4));
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| (&a.0, &a.2, a.3, a.4).cmp(&(&b.0, &b.2, b.3, b.4)));
    let same = got_sorted.len() == want.len()
        && got_sorted.iter().zip(&want).all(|(g, w)| {
            (g.0.as_str(), g.1.as_str(), g.2.as_str(), g.3, g.4) == (w.0, w.1, w.2, w.3, w.4)
                && g.5.contains(w.5)
        });
    assert!(
        same,
        "diagnostics differ:\n{got_sorted:#?}\nwant:\n{want:#?}"
    );

    // The operator's files pass their schemas unchanged; each gate says how
    // much it checked; the ones with nothing to look at are SKIP, never PASS.
    let gate = |id: &str| {
        json["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .unwrap_or_else(|| panic!("no gate {id}"))
            .clone()
    };
    for id in ["V01", "V02", "V03", "V04", "V13", "V14"] {
        assert_eq!(gate(id)["status"], "PASS", "{id}: {}", gate(id));
    }
    for (id, status) in [
        ("V05", "WARN"),
        ("V06", "FAIL"),
        ("V07", "FAIL"),
        ("V08", "WARN"),
        ("V12", "FAIL"),
    ] {
        assert_eq!(gate(id)["status"], status, "{id}");
    }
    for id in ["V04", "V05", "V06", "V07", "V08", "V12", "V13", "V14"] {
        assert!(
            gate(id)["checked"].as_u64().unwrap() > 0,
            "{id} checked nothing"
        );
    }
    // 94 services and 15 hosts; 52 enabled probes (the 10 disabled are not checked as live).
    assert_eq!(gate("V04")["checked"], 94 + 15);
    assert_eq!(gate("V05")["checked"], 52);
    for id in ["V09", "V10", "V11"] {
        assert_eq!(gate(id)["status"], "SKIP", "{id}");
        assert!(
            gate(id)["reason"]
                .as_str()
                .unwrap()
                .starts_with("checked nothing"),
            "{id}"
        );
    }
    // Every output names the files it read.
    assert_eq!(
        json["files"],
        serde_json::json!([
            "docs/governance/SERVICE_REGISTRY.yaml",
            "docs/governance/STACK_REGISTRY.yaml",
            "ops/bindings/services.health.yaml",
            "ops/bindings/ssh.targets.yaml",
            "ops/bindings/vm.lifecycle.yaml",
            "ops/bindings/secrets.binding.yaml",
            "ops/bindings/docker.compose.targets.yaml",
        ])
    );
    // Receipts go to receipts/ at the repository root.
    let receipts: Vec<_> = std::fs::read_dir(repo.join("receipts"))
        .expect("receipts/ at the repository root")
        .collect();
    assert!(!receipts.is_empty());
}

#[test]
fn the_text_output_leads_with_one_line_per_problem_and_the_files_read() {
    let (_tmp, repo) = copy();
    let sub = repo.join("surfaces/verify");
    // From a folder inside the checkout too.
    let o = spine_in(&sub, &["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lead: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(
        lead[0],
        "verify: FAIL (3 fail, 2 warn, 4 skip, 7 pass of 16 gates)"
    );
    assert_eq!(lead.len(), 1 + EXPECTED.len() + 1, "{out}");
    assert!(lead[1].starts_with("  V06 error "), "errors first: {out}");
    assert!(lead[4].starts_with("  V05 warn "), "{out}");
    assert!(
        lead[7].starts_with("read: ") && lead[7].contains("ops/bindings/ssh.targets.yaml"),
        "{out}"
    );
}

#[test]
fn the_operators_files_are_found_by_repo_by_option_and_flat() {
    let (tmp, repo) = copy();
    let r = repo.to_str().unwrap();
    let elsewhere = tmp.path();
    let rc = tmp.path().join("rc");
    let rc = rc.to_str().unwrap();
    // --repo from anywhere.
    let o = spine_in(elsewhere, &["verify", "--repo", r, "--receipts", rc]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("ops/bindings/vm.lifecycle.yaml"));
    // --registry DIR keeps the flat layout (the bindings too when present).
    let flat = tmp.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    for f in [
        "docs/governance/SERVICE_REGISTRY.yaml",
        "docs/governance/STACK_REGISTRY.yaml",
        "ops/bindings/services.health.yaml",
        "ops/bindings/ssh.targets.yaml",
        "ops/bindings/vm.lifecycle.yaml",
        "ops/bindings/docker.compose.targets.yaml",
    ] {
        let name = Path::new(f).file_name().unwrap();
        std::fs::copy(repo.join(f), flat.join(name)).unwrap();
    }
    let o = spine_in(
        elsewhere,
        &[
            "verify",
            "--registry",
            flat.to_str().unwrap(),
            "--receipts",
            rc,
            "--format",
            "json",
        ],
    );
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(diagnostics(&json).len(), EXPECTED.len(), "{}", text(&o));
    // A per-file option overrides one file: an ssh.targets.yaml that agrees
    // with SERVICE_REGISTRY's `ubuntu` leaves vm.lifecycle's `ronny` against it.
    let targets = std::fs::read_to_string(repo.join("ops/bindings/ssh.targets.yaml")).unwrap();
    let other = tmp.path().join("targets.yaml");
    std::fs::write(
        &other,
        targets.replace("user: \"ronny\"", "user: \"ubuntu\""),
    )
    .unwrap();
    let o = spine_in(
        elsewhere,
        &[
            "verify",
            "--repo",
            r,
            "--ssh-targets",
            other.to_str().unwrap(),
            "--receipts",
            rc,
        ],
    );
    let t = text(&o);
    assert!(t.contains(other.to_str().unwrap()), "{t}");
    assert!(
        t.contains("the ssh user of host `immich` is stated in 3 places with two values: `ubuntu` and `ronny`"),
        "{t}"
    );
}

#[test]
fn nothing_found_is_exit_2_saying_what_was_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let o = spine_in(tmp.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("no registry found; looked for:"), "{t}");
    assert!(
        t.contains(&format!(
            "{}/docs/governance/SERVICE_REGISTRY.yaml",
            tmp.path().display()
        )),
        "{t}"
    );
    assert!(t.contains("registry/SERVICE_REGISTRY.yaml"), "{t}");
    assert!(t.contains("--builtin"), "{t}");
    assert!(!t.contains("PASS"), "{t}");
    // The built-in registry only when asked for by name.
    let rc = tmp.path().join("rc");
    let o = spine_in(
        tmp.path(),
        &["verify", "--builtin", "--receipts", rc.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("<embedded>/SERVICE_REGISTRY.yaml"));
    // --repo at a folder that is not the operator's repository: exit 2 naming the files.
    let o = spine_in(
        tmp.path(),
        &["verify", "--repo", tmp.path().to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("docs/governance/SERVICE_REGISTRY.yaml: file not found"),
        "{}",
        text(&o)
    );
}

/// The fixes the three errors call for leave only warnings: exit 0.
#[test]
fn with_the_three_errors_fixed_the_repository_passes() {
    let (_tmp, repo) = copy();
    let edit = |rel: &str, from: &str, to: &str| {
        let p = repo.join(rel);
        let s = std::fs::read_to_string(&p).unwrap();
        let i = s.rfind(from).unwrap_or_else(|| panic!("{from} in {rel}"));
        std::fs::write(&p, format!("{}{to}{}", &s[..i], &s[i + from.len()..])).unwrap();
    };
    edit(
        "docs/governance/SERVICE_REGISTRY.yaml",
        "    ssh_user: ubuntu\n",
        "    ssh_user: ronny\n",
    );
    edit(
        "docs/governance/SERVICE_REGISTRY.yaml",
        "  infrastructure: 01ddd93a-e0f8-4c7c-ad9f-903d76ef94d9",
        "  infrastructure: 01ddd93a-e0f8-4c7c-ad9f-903d76ef94d9\n  immich: 01ddd93a-e0f8-4c7c-ad9f-903d76ef94d9",
    );
    edit(
        "docs/governance/STACK_REGISTRY.yaml",
        "stack_id: finance\n",
        "stack_id: finance-stack\n",
    );
    let o = spine_in(&repo, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with("verify: PASS (0 fail, 3 warn, 4 skip, 9 pass of 16 gates)"),
        "{}",
        text(&o)
    );
}

fn gate_script(root: &Path, path_dir: &Path) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/agentic-spine/d378-spine-registry-verify.sh");
    Command::new("bash")
        .arg(script)
        .env("SPINE_ROOT", root)
        .env("PATH", format!("{}:/usr/bin:/bin", path_dir.display()))
        .env("SSH_AUTH_SOCK", "")
        .env_remove("SPINE_BIN")
        .output()
        .unwrap()
}

#[test]
fn the_operators_gate_script_prints_their_format() {
    let (tmp, repo) = copy();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_spine"), bin.join("spine")).unwrap();
    let o = gate_script(&repo, &bin);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines.len() <= 60, "{t}");
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "D378 FAIL: spine verify: 3 error(s) in V06, V07, V12 (details: cd {} && spine verify)",
                repo.display()
            )
            .as_str()
        ),
        "{t}"
    );
    assert!(
        t.contains("  V12 error docs/governance/SERVICE_REGISTRY.yaml:863:15 "),
        "{t}"
    );
    // Line 2 is the TRIAGE line.
    let src = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("contrib/agentic-spine/d378-spine-registry-verify.sh"),
    )
    .unwrap();
    assert!(src.lines().nth(1).unwrap().starts_with("# TRIAGE: "));
    // spine missing: a FAIL line saying so, exit 1.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = gate_script(&repo, &empty);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.lines()
            .last()
            .unwrap()
            .starts_with("D378 FAIL: spine not found"),
        "{t}"
    );
    // A registry file spine cannot read: FAIL, exit 1 (never 2).
    std::fs::write(repo.join("ops/bindings/services.health.yaml"), "- [").unwrap();
    let o = gate_script(&repo, &bin);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .lines()
            .last()
            .unwrap()
            .starts_with("D378 FAIL: spine could not run (exit 2)"),
        "{}",
        text(&o)
    );
}
