//! `spine import` on a real test host (subnet 10.203.155.0/24) running a
//! compose stack that is not Immich: two services on the stand-in images, a
//! named volume, an .env with a secret, healthchecks, and a crontab; it is
//! VM 205 of a Proxmox test host (the `qm` stand-in holds its ipconfig0). Import
//! into a repository of the operator's layout; `--dry-run` writes nothing;
//! then `spine plan --detailed-exitcode` exits 0 (in sync), a change on the
//! host shows in the plan, apply converges it. No secret value reaches the
//! repository.

mod support;

use std::path::{Path, PathBuf};

use support::{SshConfig, TestHost, spine, text, unique};

const SECRET: &str = "n0tes-s3cret-Value";

const COMPOSE: &str = "# The notes stack: web and its cache (the operator's file, kept verbatim).
name: notes

services:
  web:
    image: ghcr.io/immich-app/immich-machine-learning:v2.4.1
    container_name: notes-web
    env_file:
      - .env
    volumes:
      - notes-data:/data
    depends_on:
      - cache
    healthcheck:
      test: wget -qO- http://127.0.0.1:3003/ping || exit 1
      interval: 2s
    restart: unless-stopped

  cache:
    image: docker.io/valkey/valkey:latest
    healthcheck:
      test: redis-cli ping || exit 1
      interval: 2s
    restart: unless-stopped

volumes:
  notes-data:
";

const SERVICES: &str = "# The operator's SERVICE_REGISTRY (test copy).
services:
  notes-web:
    host: notes
    container: notes-web
    compose: /opt/stacks/notes/docker-compose.yml
    secrets_project: notes
    status: active

hosts:
  notes:
    # Reached through ssh_config; no desired section yet.
    ssh: notes
    ssh_user: ronny
    os: ubuntu-24.04
    vmid: 205
    proxmox_host: pve
  pve:
    ssh: pve
    ssh_user: root
    desired:
      ssh_user: root
      access:
        - via: ssh_config
          address: pve

infisical_projects:
  notes:
    environment: prod
    path: /notes
";

const STACKS: &str = "# The operator's STACK_REGISTRY (test copy).
version: 1
stacks:
  - stack_id: wiki
    name: Wiki
    deploy_target: elsewhere
    status: parked
";

fn repo(dir: &Path) -> PathBuf {
    let r = dir.join("repo");
    std::fs::create_dir_all(r.join("docs/governance")).unwrap();
    std::fs::create_dir_all(r.join("ops/bindings")).unwrap();
    std::fs::write(r.join("docs/governance/SERVICE_REGISTRY.yaml"), SERVICES).unwrap();
    std::fs::write(r.join("docs/governance/STACK_REGISTRY.yaml"), STACKS).unwrap();
    std::fs::write(
        r.join("ops/bindings/services.health.yaml"),
        "version: 1\nendpoints: []\n",
    )
    .unwrap();
    r
}

fn run(r: &Path, cfg: &Path, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--repo",
        r.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
    ]);
    spine(&all, &[("SPINE_SECRET_NOTES_NOTES_DB_PASSWORD", SECRET)])
}

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            let t = std::fs::read_to_string(&p).unwrap_or_default();
            out.push((p, t));
        }
    }
    out.sort();
    out
}

/// The operator's files under `dir`: all but spine's own `receipts/`.
fn operator_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let receipts = dir.join("receipts");
    files(dir)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&receipts))
        .collect()
}

/// The import receipts in `r/receipts`, oldest first.
fn import_receipts(r: &Path) -> Vec<serde_json::Value> {
    files(&r.join("receipts"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "json"))
        .map(|(_, t)| serde_json::from_str::<serde_json::Value>(&t).unwrap())
        .filter(|v| v["command"] == "import")
        .collect()
}

#[test]
fn import_then_plan_is_in_sync_and_a_change_is_planned_and_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let pve = TestHost::up(&unique("ipv"), "10.203.155.10/24", &["--no-docker"]);
    let host = TestHost::up(
        &unique("imp"),
        "10.203.155.20/24",
        &["--dns", "10.203.155.1"],
    );
    pve.ok("qm create 205 --name notes --ipconfig0 ip=10.203.155.20/24,gw=10.203.155.1 --nameserver 10.203.155.1");
    host.write(
        "/opt/stacks/notes/docker-compose.yml",
        COMPOSE,
        "ronny:ronny",
        "644",
    );
    host.write(
        "/opt/stacks/notes/.env",
        &format!("# notes settings\nTZ=UTC\nNOTES_DB_PASSWORD={SECRET}\n"),
        "ronny:ronny",
        "600",
    );
    host.write(
        "/opt/stacks/notes/check.sh",
        "#!/bin/sh\nexit 0\n",
        "ronny:ronny",
        "755",
    );
    host.ok("chown ronny:ronny /opt/stacks/notes");
    // `cache` runs a moving tag, as hosts often do: the stand-in tagged
    // `latest` (loaded, not pulled: it has no registry digest).
    host.ok("docker tag docker.io/valkey/valkey:8-bookworm docker.io/valkey/valkey:latest");
    let cache_id = host
        .ok("docker image inspect --format '{{.Id}}' docker.io/valkey/valkey:latest")
        .trim()
        .to_string();
    host.ok("cd /opt/stacks/notes && docker compose up -d --quiet-pull --wait 2>&1");
    host.ok("printf '*/5 * * * * /opt/stacks/notes/check.sh\\n' | crontab -u ronny -");
    let cfg = SshConfig::new()
        .alias("notes", &host)
        .alias("pve", &pve)
        .write(tmp.path());
    let r = repo(tmp.path());
    let before = operator_files(&r);

    // --dry-run: the diffs, and nothing written.
    let out = run(&r, &cfg, &["import", "notes", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("+++ b/docs/governance/STACK_REGISTRY.yaml"),
        "{shown}"
    );
    assert!(
        shown.contains("+++ b/ops/staged/notes/docker-compose.yml"),
        "{shown}"
    );
    assert!(
        shown.contains("dry run: 3 file(s) would be written; nothing written"),
        "{shown}"
    );
    assert_eq!(operator_files(&r), before, "--dry-run wrote something");
    // Its receipt: the three files it would write, none written.
    let rec = import_receipts(&r);
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0]["status"], "changes", "{}", rec[0]);
    assert_eq!(rec[0]["hosts"][0]["host"], "notes", "{}", rec[0]);
    let acts = rec[0]["actions"].as_array().unwrap();
    assert_eq!(acts.len(), 3, "{}", rec[0]);
    assert!(
        acts.iter()
            .all(|a| a["result"] == "skipped" && a["kind"] == "write-file")
    );

    let out = run(&r, &cfg, &["import", "notes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Its receipt: each file written, with the SHA-256 of what is there now.
    let rec = import_receipts(&r);
    assert_eq!(rec.len(), 2, "{rec:?}");
    assert_eq!(rec[1]["status"], "ok", "{}", rec[1]);
    let acts = rec[1]["actions"].as_array().unwrap();
    assert_eq!(acts.len(), 3, "{}", rec[1]);
    for a in acts {
        assert_eq!(a["result"], "changed", "{a}");
        let now = std::fs::read(r.join(a["resource"].as_str().unwrap())).unwrap();
        assert_eq!(a["output_sha256"], spine::receipt::sha256_hex(&now), "{a}");
    }
    let said = text(&out);
    for want in [
        "import: stack `notes`: compose project `notes` in /opt/stacks/notes imported as a new entry of STACK_REGISTRY",
        "import: compose project `notes` on notes: 1 secret key(s) (NOTES_DB_PASSWORD) imported as references to Infisical project `notes`",
        "import: cron: `*/5 * * * * /opt/stacks/notes/check.sh` (ronny) proposed commented out under `cron:`",
        "import: network: 10.203.155.20/24 10.203.155.1 on eth0 imported (/etc/netplan/50-cloud-init.yaml)",
        "import: tailscale: hostname `",
        // The moving tag, and the image running now (which has no digest).
        &format!(
            "import: compose project `notes` on notes: service `cache`: image `docker.io/valkey/valkey:latest` uses the moving tag `latest` (spine verify warns, V17); the container runs image {}, which has no registry digest (built or loaded on the host): pin a version tag in ops/staged/notes/docker-compose.yml; import copied the file as it runs",
            &cache_id[..19]
        ),
        "wrote 3 file(s)",
    ] {
        assert!(said.contains(want), "missing `{want}` in:\n{said}");
    }
    assert!(!said.contains("service `web`"), "web is pinned: {said}");
    assert!(!said.contains(SECRET), "the secret in the output:\n{said}");
    for (p, t) in files(&r) {
        assert!(!t.contains(SECRET), "the secret value in {}", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(r.join("ops/staged/notes/docker-compose.yml")).unwrap(),
        COMPOSE
    );
    // The operator's lines are all still there, in order.
    for (f, old) in [
        ("docs/governance/SERVICE_REGISTRY.yaml", SERVICES),
        ("docs/governance/STACK_REGISTRY.yaml", STACKS),
    ] {
        let new = std::fs::read_to_string(r.join(f)).unwrap();
        let mut rest = new.lines();
        for line in old.lines() {
            assert!(
                rest.any(|l| l == line),
                "{f}: `{line}` lost or moved:\n{new}"
            );
        }
    }
    let services =
        std::fs::read_to_string(r.join("docs/governance/SERVICE_REGISTRY.yaml")).unwrap();
    assert!(
        services.contains("      network:\n        owner: cloud-init\n"),
        "ipconfig0 was read: {said}\n{services}"
    );
    // The imported file's moving tag is a warning (V17, at its line in the
    // staged file), not an error: verify still passes, --strict does not.
    let verify = spine(&["verify", "--repo", r.to_str().unwrap()], &[]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let warned = text(&verify);
    assert!(
        warned.contains(&format!("V17 warn  {}/ops/staged/notes/docker-compose.yml:20:12 compose service `cache`: image `docker.io/valkey/valkey:latest` uses the moving tag `latest`", r.display()))
            && warned.matches("V17 warn").count() == 1,
        "{warned}"
    );
    let strict = spine(&["verify", "--repo", r.to_str().unwrap(), "--strict"], &[]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));

    // In sync right after the import.
    let plan = run(
        &r,
        &cfg,
        &[
            "plan",
            "notes",
            "--detailed-exitcode",
            "--no-health",
            "--format",
            "json",
        ],
    );
    let written = files(&r)
        .iter()
        .map(|(p, t)| format!("== {}\n{t}", p.display()))
        .collect::<String>();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan after import:\n{}\nimport said:\n{said}\n{written}",
        text(&plan)
    );
    // Every kind the import wrote was compared, and each is in sync.
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let mut seen: Vec<String> = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["resources"].as_array().unwrap().iter())
        .map(|r| {
            assert_eq!(r["verdict"]["status"], "in_sync", "{r:#}");
            r["desired"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    seen.sort();
    for want in [
        "cloudinit:vm-205",
        "compose:/opt/stacks/notes/.env",
        "compose:/opt/stacks/notes/docker-compose.yml",
        "compose:notes/containers",
        "netplan:/etc/netplan/50-cloud-init.yaml",
        "tailscale:prefs",
    ] {
        assert!(seen.iter().any(|s| s == want), "no {want} in {seen:?}");
    }

    // A change on the host shows in the plan; apply converges it.
    host.ok("sed -i 's/^TZ=UTC$/TZ=Europe\\/Berlin/' /opt/stacks/notes/.env");
    let plan = run(
        &r,
        &cfg,
        &["plan", "notes", "--detailed-exitcode", "--no-health"],
    );
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(text(&plan).contains("TZ differs"), "{}", text(&plan));
    let apply = run(&r, &cfg, &["apply", "notes", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let plan = run(
        &r,
        &cfg,
        &["plan", "notes", "--detailed-exitcode", "--no-health"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(host.ok("cat /opt/stacks/notes/.env").contains("TZ=UTC\n"));
}

#[test]
fn an_unknown_or_unreachable_host_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path());
    let cfg = tmp.path().join("ssh_config");
    // Nothing listens there (a subnet of this test's, no host up).
    std::fs::write(
        &cfg,
        "Host notes\n    HostName 10.203.156.99\n    BatchMode yes\n",
    )
    .unwrap();
    let before = operator_files(&r);
    let out = run(&r, &cfg, &["import", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no host `nosuch` in SERVICE_REGISTRY.yaml (hosts: notes, pve)"),
        "{}",
        text(&out)
    );
    let out = run(&r, &cfg, &["import", "notes", "--connect-timeout", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("host `notes` is unreachable on every path; nothing was written"),
        "{}",
        text(&out)
    );
    assert_eq!(operator_files(&r), before);
    // Both refusals are recorded: a failed receipt each, exit code 2, no
    // file written.
    let rec = import_receipts(&r);
    assert_eq!(rec.len(), 2, "{rec:?}");
    for x in &rec {
        assert_eq!(x["status"], "failed", "{x}");
        assert_eq!(x["exit_code"], 2, "{x}");
        assert_eq!(x["actions"], serde_json::json!([]), "{x}");
    }
}
