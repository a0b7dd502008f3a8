//! Issue 15, points 1 and 4: a stack that is not Immich, from the operator's
//! own compose file in the repository (`desired.compose.file`), on a real
//! test host (subnet 10.203.150.0/24; 10.203.150-154 are this change's): two
//! services on the stand-in images, a named volume, a `.env` with a secret,
//! healthchecks. Plan from nothing, apply converges, the next plan exits 0; a
//! reformatted file is still in sync; a changed file, a stopped container and
//! an orphan of the project show in the plan and apply converges again; a
//! plan saved before the repository's file changed is refused.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{SshConfig, TestHost, spine, text, unique};

const TOKEN: &str = "Notes-T0ken-Value-77";
const DIR: &str = "/opt/stacks/notes";

/// The operator's compose file as kept in the repository. `web` names its
/// container, `cache` takes compose's default (`notes-cache-1`).
const COMPOSE: &str = r#"# notes: a small stack (not Immich) on the stand-in images.
services:
  web:
    image: ghcr.io/immich-app/immich-server:v2.4.1
    container_name: notes-web
    env_file: [.env]
    depends_on:
      cache:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:2283/api/server/ping"]
      interval: 2s
      timeout: 2s
      retries: 10
  cache:
    image: docker.io/valkey/valkey:8-bookworm
    volumes:
      - cache-data:/data
    healthcheck:
      test: ["CMD-SHELL", "redis-cli ping || exit 1"]
      interval: 2s
      timeout: 2s
      retries: 10
volumes:
  cache-data: {}
"#;

/// A repository: the registry in `registry/` (flat layout: `file` is
/// relative to its parent) and the compose file under `ops/staged/`.
fn repository(dir: &Path, compose: &str) -> PathBuf {
    let reg = dir.join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    let staged = dir.join("ops/staged/notes");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("docker-compose.yml"), compose).unwrap();
    std::fs::write(
        reg.join("SERVICE_REGISTRY.yaml"),
        "services: {}\nhosts:\n  web:\n    ssh: web\n    ssh_user: root\n    desired:\n      ssh_user: root\n      access:\n        - via: ssh_config\n          address: web\ninfisical_projects:\n  notes:\n    environment: prod\n    path: /notes\n",
    )
    .unwrap();
    std::fs::write(
        reg.join("STACK_REGISTRY.yaml"),
        format!(
            "version: 1\nstacks:\n  - stack_id: notes\n    desired:\n      host: web\n      compose:\n        project: notes\n        directory: {DIR}\n        file: ops/staged/notes/docker-compose.yml\n        env: {{TZ: UTC}}\n        secrets:\n          NOTES_TOKEN: {{project: notes, key: NOTES_TOKEN}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        reg.join("services.health.yaml"),
        "version: 1\nendpoints: []\n",
    )
    .unwrap();
    reg
}

fn run(reg: &Path, cfg: &Path, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--registry",
        reg.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
    ]);
    spine(&all, &[("SPINE_SECRET_NOTES_NOTES_TOKEN", TOKEN)])
}

fn plan(reg: &Path, cfg: &Path) -> (Value, Option<i32>, String) {
    let out = run(
        reg,
        cfg,
        &["plan", "--format", "json", "--detailed-exitcode"],
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan JSON: {e}\n{}", text(&out)));
    (v, out.status.code(), text(&out))
}

/// `id -> (status, reason, diff)` of every resource in a JSON plan.
fn verdicts(plan: &Value) -> Vec<(String, String, String, String)> {
    plan["hosts"][0]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources in {plan:#}"))
        .iter()
        .map(|r| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&r["desired"]["id"]),
                s(&r["verdict"]["status"]),
                s(&r["verdict"]["reason"]),
                s(&r["verdict"]["diff"]),
            )
        })
        .collect()
}

fn verdict(plan: &Value, id: &str) -> (String, String, String) {
    verdicts(plan)
        .into_iter()
        .find(|v| v.0 == id)
        .map(|(_, s, r, d)| (s, r, d))
        .unwrap_or_else(|| panic!("no resource {id} in {plan:#}"))
}

const FILE: &str = "compose:/opt/stacks/notes/docker-compose.yml";
const ENV: &str = "compose:/opt/stacks/notes/.env";
const CONTAINERS: &str = "compose:notes/containers";
const EXTRA: &str = "compose:notes/extra";
const OTHERS: &str = "compose:/opt/stacks/notes/other-compose-files";

fn assert_converged(reg: &Path, cfg: &Path) {
    let (p, code, out) = plan(reg, cfg);
    let left: Vec<_> = verdicts(&p)
        .into_iter()
        .filter(|v| v.1 != "in_sync")
        .collect();
    assert_eq!(code, Some(0), "converged: {left:#?}\n{out}");
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn a_stack_from_the_operators_compose_file_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = repository(tmp.path(), COMPOSE);
    let v = spine(&["verify", "--registry", reg.to_str().unwrap()], &[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(
        text(&v).contains("V17 PASS") && text(&v).contains("ops/staged/notes/docker-compose.yml"),
        "{}",
        text(&v)
    );
    let web = TestHost::up(&unique("cf"), "10.203.150.20/24", &[]);
    let cfg = SshConfig::new().alias("web", &web).write(tmp.path());
    // 1. From nothing: the file, .env and both containers are to create.
    let (p, code, out) = plan(&reg, &cfg);
    assert_eq!(code, Some(2), "changes to make:\n{out}");
    let (status, _, diff) = verdict(&p, FILE);
    assert_eq!(status, "drift");
    assert!(
        diff.contains("+    container_name: notes-web"),
        "the file's own text: {diff}"
    );
    let (status, reason, _) = verdict(&p, CONTAINERS);
    assert_eq!(status, "drift");
    assert!(
        reason.contains("web is not there") && reason.contains("cache is not there"),
        "{reason}"
    );
    assert!(!out.contains(TOKEN), "the secret is never in a plan");

    // 2. Apply converges: the file verbatim, .env with the secret, both
    // services running and healthy, the named volume made.
    let a = run(&reg, &cfg, &["apply", "--yes"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert!(!text(&a).contains(TOKEN));
    assert_eq!(web.ok(&format!("cat {DIR}/docker-compose.yml")), COMPOSE);
    let env = web.ok(&format!("cat {DIR}/.env"));
    assert!(
        env.contains("TZ=UTC\n") && env.contains(&format!("NOTES_TOKEN={TOKEN}\n")),
        "{env}"
    );
    assert_eq!(web.ok(&format!("stat -c %a {DIR}/.env")).trim(), "600");
    let ps = web.ok("docker ps --format '{{.Names}} {{.Status}}' --filter label=com.docker.compose.project=notes | sort");
    assert!(
        ps.contains("notes-cache-1 Up")
            && ps.contains("notes-web Up")
            && ps.matches("(healthy)").count() == 2,
        "{ps}"
    );
    assert!(
        web.ok("docker volume ls -q")
            .lines()
            .any(|v| v == "notes_cache-data")
    );
    // The container sees the .env (env_file), secret included.
    assert_eq!(
        web.ok("docker exec notes-web sh -c 'printf %s \"$NOTES_TOKEN\"'"),
        TOKEN
    );
    assert_converged(&reg, &cfg);

    // 3. Formatting is not meaning: the same file reformatted is in sync.
    web.ok(&format!(
        "sed -i -e 's/^# notes.*/# reformatted by hand/' -e 's/env_file: \\[.env\\]/env_file:\\n      - .env/' {DIR}/docker-compose.yml"
    ));
    assert_ne!(web.ok(&format!("cat {DIR}/docker-compose.yml")), COMPOSE);
    let (p, _, _) = plan(&reg, &cfg);
    assert_eq!(verdict(&p, FILE).0, "in_sync", "{p:#}");

    // 4. The host changes: the file edited by hand, a container stopped, an
    // orphan of the project started beside it, and a compose.yaml left in
    // the folder, which `docker compose` run there by hand reads instead of
    // docker-compose.yml.
    web.ok(&format!(
        "sed -i 's/retries: 10/retries: 3/' {DIR}/docker-compose.yml && docker stop notes-cache-1 >/dev/null"
    ));
    web.ok("docker run -d --name notes-old --label com.docker.compose.project=notes --label com.docker.compose.service=old docker.io/valkey/valkey:8-bookworm >/dev/null");
    web.write(
        &format!("{DIR}/compose.yaml"),
        "services:\n  stray:\n    image: docker.io/valkey/valkey:8-bookworm\n",
        "root",
        "644",
    );
    let by_hand = web.ok(&format!(
        "cd {DIR} && docker compose config --services 2>/dev/null"
    ));
    assert_eq!(
        by_hand.trim(),
        "stray",
        "docker compose by hand reads compose.yaml"
    );
    let (p, code, out) = plan(&reg, &cfg);
    assert_eq!(code, Some(2), "{out}");
    let (status, reason, diff) = verdict(&p, FILE);
    assert_eq!(status, "drift", "{reason}");
    assert!(
        diff.contains("-      retries: 3") && diff.contains("+      retries: 10"),
        "a text diff of the file: {diff}"
    );
    let (status, reason, _) = verdict(&p, CONTAINERS);
    assert_eq!(status, "drift");
    assert!(reason.contains("cache is exited"), "{reason}");
    let (status, reason, _) = verdict(&p, EXTRA);
    assert_eq!(status, "drift");
    assert!(
        reason.contains("notes-old") && reason.contains("orphan"),
        "{reason}"
    );
    assert_eq!(verdict(&p, ENV).0, "in_sync");
    let (status, reason, diff) = verdict(&p, OTHERS);
    assert_eq!(status, "drift");
    assert_eq!(
        reason,
        format!(
            "{DIR}/compose.yaml: `docker compose` run in {DIR} reads it instead of docker-compose.yml (spine itself runs -f docker-compose.yml; each file is kept in the run's backup)"
        )
    );
    assert!(diff.contains(&format!("-{DIR}/compose.yaml\n")), "{diff}");
    assert_eq!(
        p["hosts"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["desired"]["id"] == OTHERS && r["verdict"]["action"] == "remove")
            .count(),
        1,
        "{p:#}"
    );

    // 5. Apply converges again: compose.yaml is gone, kept in the run's
    // backup, and `docker compose` by hand reads the managed file.
    let a = run(&reg, &cfg, &["apply", "--yes"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(web.ok(&format!("cat {DIR}/docker-compose.yml")), COMPOSE);
    assert!(
        !web.ok("docker ps -a --format '{{.Names}}'")
            .contains("notes-old")
    );
    assert_eq!(
        web.sh(&format!("test -e {DIR}/compose.yaml")).status.code(),
        Some(1)
    );
    let kept = web.ok(&format!(
        "find /var/lib/spine/backups -path '*{DIR}/compose.yaml'"
    ));
    assert_eq!(kept.lines().count(), 1, "kept in the backup: {kept}");
    assert!(web.ok(&format!("cat {}", kept.trim())).contains("stray:"));
    let by_hand = web.ok(&format!(
        "cd {DIR} && docker compose config --services 2>/dev/null | sort"
    ));
    assert_eq!(by_hand, "cache\nweb\n");
    assert_converged(&reg, &cfg);

    // 6. The file changes in the repository: the plan shows it, apply
    // installs it (the image of `web` moves back one version).
    // A plan saved before the change is stale after it: the compose file is
    // part of the registry the plan is bound to.
    let saved = tmp.path().join("before.plan");
    let o = run(&reg, &cfg, &["plan", "-o", saved.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let older = COMPOSE.replace("immich-server:v2.4.1", "immich-server:v2.3.0");
    repository(tmp.path(), &older);
    let o = run(&reg, &cfg, &["apply", saved.to_str().unwrap(), "--yes"]);
    assert_eq!(o.status.code(), Some(2), "a stale plan: {}", text(&o));
    assert_eq!(web.ok(&format!("cat {DIR}/docker-compose.yml")), COMPOSE);
    let (p, code, out) = plan(&reg, &cfg);
    assert_eq!(code, Some(2), "{out}");
    let (_, _, diff) = verdict(&p, FILE);
    assert!(
        diff.contains("+    image: ghcr.io/immich-app/immich-server:v2.3.0"),
        "{diff}"
    );
    let (_, reason, _) = verdict(&p, CONTAINERS);
    assert!(
        reason.contains("should run ghcr.io/immich-app/immich-server:v2.3.0"),
        "{reason}"
    );
    let a = run(&reg, &cfg, &["apply", "--yes"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_converged(&reg, &cfg);
}
