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

/// `spine import` into the operator's files (a copy), from a recorded answer
/// of infra-core (VM 204; never connected to): every original line stays,
/// in order (the diff only adds lines), and `spine verify` says exactly what
/// it said before, each diagnostic still on the same line of text, plus one
/// warning: the imported pihole file's moving tag (no new error).
#[test]
fn import_adds_desired_sections_without_damage_and_every_gate_stays_as_it_was() {
    use spine::import::{self, propose, read};
    let (_tmp, repo) = copy();
    let before = spine_in(&repo, &["verify", "--format", "json"]);
    let before_json: Value = serde_json::from_slice(&before.stdout).unwrap();
    let originals: Vec<(String, String)> = [
        "docs/governance/SERVICE_REGISTRY.yaml",
        "docs/governance/STACK_REGISTRY.yaml",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            std::fs::read_to_string(repo.join(f)).unwrap(),
        )
    })
    .collect();
    let pihole =
        std::fs::read_to_string(repo.join("ops/staged/pihole/docker-compose.yml")).unwrap();
    let pihole_digest = format!("pihole/pihole@sha256:{}", "5e".repeat(32));
    let pihole_image = format!(
        "pihole\tpihole/pihole:latest\tsha256:{}\t{pihole_digest}\n",
        "c4".repeat(32)
    );
    let netplan = "network:\n    version: 2\n    ethernets:\n        eth0:\n            addresses:\n            - 192.168.1.204/24\n            nameservers:\n                addresses:\n                - 1.1.1.1\n            routes:\n            -   to: default\n                via: 192.168.1.1\n";
    let kv: Vec<(&str, &str, &str)> = vec![
        ("compose", "count", "2"),
        (
            "compose",
            "ls",
            r#"[{"Name":"pihole","Status":"running(1)"},{"Name":"whoami","Status":"running(1)"}]"#,
        ),
        ("compose", "p.1.name", "pihole"),
        ("compose", "p.1.dir", "/opt/stacks/pihole"),
        ("compose", "p.1.files", "1"),
        (
            "compose",
            "p.1.f.1.path",
            "/opt/stacks/pihole/docker-compose.yml",
        ),
        ("compose", "p.1.f.1.exists", "1"),
        ("compose", "p.1.f.1.mode", "644"),
        ("compose", "p.1.f.1.owner", "ubuntu"),
        ("compose", "p.1.f.1.content", &pihole),
        ("compose", "p.1.env.exists", "1"),
        ("compose", "p.1.env.mode", "600"),
        ("compose", "p.1.env.owner", "ubuntu"),
        (
            "compose",
            "p.1.env.keys",
            "P TZ=America/New_York\nS PIHOLE_PASSWORD\n",
        ),
        // The image pihole runs (a recorded answer: the id and digest are made up).
        ("compose", "p.1.images", &pihole_image),
        ("compose", "p.2.name", "whoami"),
        ("compose", "p.2.dir", "/opt/stacks/whoami"),
        ("compose", "p.2.files", "1"),
        (
            "compose",
            "p.2.f.1.path",
            "/opt/stacks/whoami/docker-compose.yml",
        ),
        ("compose", "p.2.f.1.exists", "1"),
        ("compose", "p.2.f.1.mode", "644"),
        ("compose", "p.2.f.1.owner", "ubuntu"),
        (
            "compose",
            "p.2.f.1.content",
            "services:\n  whoami:\n    image: traefik/whoami:v1.10\n",
        ),
        ("compose", "p.2.env.exists", "0"),
        ("cron", "count", "1"),
        ("cron", "t.1.name", "/var/spool/cron/crontabs/ubuntu"),
        ("cron", "t.1.user", "ubuntu"),
        (
            "cron",
            "t.1.text",
            "15 2 * * * /opt/stacks/pihole/backup.sh\n",
        ),
        ("netplan", "count", "1"),
        ("netplan", "n.1.path", "/etc/netplan/50-cloud-init.yaml"),
        ("netplan", "n.1.exists", "1"),
        ("netplan", "n.1.mode", "600"),
        ("netplan", "n.1.owner", "root"),
        ("netplan", "n.1.content", netplan),
        (
            "tailscale",
            "status",
            r#"{"Self": {"HostName": "infra-core"}}"#,
        ),
        ("tailscale", "prefs", r#"{"CorpDNS": true}"#),
    ];
    let mut sections = std::collections::BTreeMap::new();
    for (s, k, v) in kv {
        let sec: &mut spine::gather::script::Section = sections.entry(s.to_string()).or_default();
        sec.values.insert(k.to_string(), v.to_string());
    }
    let report = spine::gather::script::Report {
        user: "ubuntu".into(),
        hostname: "infra-core".into(),
        sections,
    };
    let mut reading = read::parse(&report);
    reading.ipconfig0 = Some("ip=192.168.1.204/24,gw=192.168.1.1".into());

    let loaded = spine::load::load(&spine::load::Origin::Files(spine::load::Files::repo(&repo)));
    let reg = spine::model::Registry::from_loaded(&loaded, &spine::diag::FileKind::ALL).unwrap();
    reading.route = import::routes(&reg, "infra-core").first().cloned();
    let facts = propose::Facts {
        reg: &reg,
        host: "infra-core",
        binding_project: Some("01ddd93a-e0f8-4c7c-ad9f-903d76ef94d9"),
    };
    let p = propose::propose(&facts, &reading).unwrap();
    let notes = p.notes.join("\n");
    for want in [
        "stack `pihole`: compose project `pihole` in /opt/stacks/pihole imported into the existing entry",
        "stack `whoami`: compose project `whoami` in /opt/stacks/whoami imported as a new entry",
        "1 secret key(s) (PIHOLE_PASSWORD) imported as references to Infisical project `infrastructure`",
        "network: 192.168.1.204/24 192.168.1.1 on eth0 imported",
        // The moving tag it copies, and what runs now to pin it to.
        &format!(
            "compose project `pihole` on infra-core: service `pihole`: image `pihole/pihole:latest` uses the moving tag `latest` (spine verify warns, V17); the container runs image sha256:c4c4c4c4c4c4, pulled as `{pihole_digest}`: to pin what runs now, write `{pihole_digest}` (or its version tag) as the image in ops/staged/pihole/docker-compose.yml"
        ),
    ] {
        assert!(notes.contains(want), "missing `{want}` in:\n{notes}");
    }
    assert!(!notes.contains("service `whoami`"), "{notes}");
    let changes = import::changes(&loaded, &reg, &repo, "infra-core", &p).unwrap();
    let shown: Vec<&str> = changes.iter().map(|c| c.shown.as_str()).collect();
    // The operator's staged pihole file is the host's: not rewritten.
    assert_eq!(
        shown,
        [
            "docs/governance/SERVICE_REGISTRY.yaml",
            "docs/governance/STACK_REGISTRY.yaml",
            "ops/staged/whoami/docker-compose.yml"
        ]
    );
    import::write(&changes).unwrap();

    // Every original line, in order: the diff adds lines and nothing else.
    for (f, old) in &originals {
        let new = std::fs::read_to_string(repo.join(f)).unwrap();
        assert!(new.len() > old.len(), "{f} unchanged");
        for op in similar::TextDiff::from_lines(old.as_str(), new.as_str()).ops() {
            assert!(
                matches!(op.tag(), similar::DiffTag::Equal | similar::DiffTag::Insert),
                "{f}: {op:?}"
            );
        }
    }
    let stacks = std::fs::read_to_string(repo.join("docs/governance/STACK_REGISTRY.yaml")).unwrap();
    assert!(stacks.contains("    desired:\n      host: infra-core\n      compose:\n        project: pihole\n        directory: /opt/stacks/pihole\n        file: ops/staged/pihole/docker-compose.yml\n        env:\n          TZ: America/New_York\n        secrets:\n          PIHOLE_PASSWORD: {project: infrastructure, key: PIHOLE_PASSWORD}\n"), "{stacks}");

    // The same diagnostics, each still pointing at the same text.
    let after = spine_in(&repo, &["verify", "--format", "json"]);
    let after_json: Value = serde_json::from_slice(&after.stdout).unwrap();
    let line_of = |texts: &dyn Fn(&str) -> String,
                   d: &(String, String, String, u64, u64, String)| {
        texts(&d.2)
            .lines()
            .nth(d.3 as usize - 1)
            .unwrap_or_default()
            .to_string()
    };
    let old_text = |f: &str| {
        originals.iter().find(|(n, _)| n == f).map_or_else(
            || std::fs::read_to_string(repo.join(f)).unwrap(),
            |(_, t)| t.clone(),
        )
    };
    let new_text = |f: &str| std::fs::read_to_string(repo.join(f)).unwrap();
    let key = |texts: &dyn Fn(&str) -> String, d: &(String, String, String, u64, u64, String)| {
        (
            d.0.clone(),
            d.1.clone(),
            d.2.clone(),
            d.4,
            d.5.clone(),
            line_of(texts, d),
        )
    };
    let mut was: Vec<_> = diagnostics(&before_json)
        .iter()
        .map(|d| key(&old_text, d))
        .collect();
    let mut now: Vec<_> = diagnostics(&after_json)
        .iter()
        .map(|d| key(&new_text, d))
        .collect();
    assert_eq!(was.len(), EXPECTED.len());
    // Importing the pihole stack adds exactly one diagnostic, a warning: its
    // compose file, as it runs on infra-core, uses `pihole/pihole:latest`
    // (V17, at the image in the operator's file). No new error: the
    // operator's gate stays as it was (a warning passes without --strict).
    let pin = diagnostics(&after_json)
        .into_iter()
        .filter(|d| d.0 == "V17")
        .collect::<Vec<_>>();
    assert_eq!(
        pin,
        [(
            "V17".to_string(),
            "warning".to_string(),
            "ops/staged/pihole/docker-compose.yml".to_string(),
            8,
            12,
            "compose service `pihole`: image `pihole/pihole:latest` uses the moving tag `latest`"
                .to_string()
        )]
    );
    was.push(key(&new_text, &pin[0]));
    was.sort();
    now.sort();
    assert_eq!(now, was);
    assert_eq!(
        after.status.code(),
        before.status.code(),
        "{}",
        text(&after)
    );
}
