//! Import without hosts: a recorded host answer, parsed, proposed and
//! placed into registry text. (The operator's real repository is in
//! tests/import.rs; a real host in tests/import_host.rs.)

use std::collections::BTreeMap;

use super::propose::{Facts, propose};
use super::read::{self, EnvKey};
use super::*;
use crate::gather::script::{Report, Section};

/// A host's answer as gather hands it over: (section, key, value).
pub fn report(user: &str, values: &[(&str, &str, &str)]) -> Report {
    let mut sections: BTreeMap<String, Section> = BTreeMap::new();
    for id in ["compose", "cron", "netplan", "tailscale"] {
        sections.entry(id.into()).or_default().exit = Some(0);
    }
    for (s, k, v) in values {
        sections
            .entry((*s).into())
            .or_default()
            .values
            .insert((*k).into(), (*v).into());
    }
    Report {
        user: user.into(),
        hostname: "h".into(),
        sections,
    }
}

const REG: &str = "hosts:\n  box:\n    ssh: box\n    ssh_user: ops\n    notes: a host\n  other:\n    ssh: other\n";
const STACKS: &str = "stacks:\n  - stack_id: web\n    deploy_target: box\n    notes: >\n      folded\n\n  - stack_id: old\n    deploy_target: box\n    desired:\n      host: box\n      legacy_roots: [~/ronny-ops]\n";

fn registry() -> (Loaded, Registry) {
    let loaded = crate::load::load_texts(
        "t",
        [
            (FileKind::Services, "SERVICE_REGISTRY.yaml".to_string(), REG),
            (FileKind::Stacks, "STACK_REGISTRY.yaml".to_string(), STACKS),
        ],
    );
    let reg = Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
    (loaded, reg)
}

fn box_answer(env: &str) -> Report {
    report(
        "ops",
        &[
            ("compose", "count", "2"),
            ("compose", "ls.rc", "0"),
            (
                "compose",
                "ls",
                r#"[{"Name":"web","Status":"running(1)","ConfigFiles":"/opt/stacks/web/docker-compose.yml"},{"Name":"cache","Status":"exited(1)","ConfigFiles":"/srv/cache/docker-compose.yml"}]"#,
            ),
            ("compose", "p.1.name", "web"),
            ("compose", "p.1.dir", "/opt/stacks/web"),
            ("compose", "p.1.files", "1"),
            (
                "compose",
                "p.1.f.1.path",
                "/opt/stacks/web/docker-compose.yml",
            ),
            ("compose", "p.1.f.1.exists", "1"),
            ("compose", "p.1.f.1.mode", "644"),
            ("compose", "p.1.f.1.owner", "ops"),
            (
                "compose",
                "p.1.f.1.content",
                "services:\n  app:\n    image: nginx\n",
            ),
            ("compose", "p.1.env.exists", "1"),
            ("compose", "p.1.env.mode", "600"),
            ("compose", "p.1.env.owner", "ops"),
            ("compose", "p.1.env.keys", env),
            ("compose", "p.2.name", "cache"),
            ("compose", "p.2.dir", "/srv/cache"),
            ("compose", "p.2.files", "1"),
            ("compose", "p.2.f.1.path", "/srv/cache/docker-compose.yml"),
            ("compose", "p.2.f.1.exists", "1"),
            ("compose", "p.2.f.1.mode", "644"),
            ("compose", "p.2.f.1.owner", "root"),
            (
                "compose",
                "p.2.f.1.content",
                "services:\n  redis:\n    image: redis\n",
            ),
            ("compose", "p.2.env.exists", "0"),
            ("cron", "count", "2"),
            ("cron", "t.1.name", "/var/spool/cron/crontabs/ops"),
            ("cron", "t.1.user", "ops"),
            (
                "cron",
                "t.1.text",
                "MAILTO=x\n0 3 * * * /opt/stacks/web/backup.sh --keep 7\n5 4 * * * /home/ops/ronny-ops/old.sh\n@reboot /usr/local/bin/warm\n",
            ),
            ("cron", "t.2.name", "/etc/cron.d/e2scrub"),
            ("cron", "t.2.user", ""),
            ("cron", "t.2.text", "30 3 * * 0 root /sbin/e2scrub_all\n"),
            ("netplan", "count", "0"),
            ("tailscale", "status", r#"{"Self": {"HostName": "box-1"}}"#),
            ("tailscale", "prefs", r#"{"CorpDNS": false}"#),
        ],
    )
}

fn facts(reg: &Registry) -> Facts<'_> {
    Facts {
        reg,
        host: "box",
        binding_project: None,
    }
}

#[test]
fn the_answer_parses_into_projects_env_keys_and_tables() {
    let r = read::parse(&box_answer("P TZ=UTC\nS DB_PASSWORD\n"));
    assert_eq!(r.user, "ops");
    assert_eq!(r.projects.len(), 2);
    assert_eq!(
        r.projects[0].env.as_deref().unwrap(),
        [
            EnvKey::Plain("TZ".into(), "UTC".into()),
            EnvKey::Secret("DB_PASSWORD".into())
        ]
    );
    assert_eq!(r.projects[1].env, None);
    assert_eq!(r.tables.len(), 2);
    assert_eq!(r.tailscale, Some(("box-1".into(), Some(false))));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn a_missing_section_is_a_problem_said_not_passed_over() {
    let mut rep = box_answer("");
    rep.sections.remove("tailscale");
    let r = read::parse(&rep);
    assert_eq!(r.problems, ["tailscale: the host sent no answer for it"]);
}

#[test]
fn the_proposal_matches_stacks_refers_secrets_and_reports_cron() {
    let (_, reg) = registry();
    let mut r = read::parse(&box_answer("P TZ=UTC\nS DB_PASSWORD\nP URL=https://x\n"));
    r.route = routes(&reg, "box").first().cloned();
    let p = propose(&facts(&reg), &r).unwrap();
    let host = p.host.clone().unwrap().join("\n");
    assert!(
        host.starts_with("ssh_user: ops\naccess:\n  - via: ssh_config\n    address: box\n"),
        "{host}"
    );
    assert!(
        host.contains("tailscale:\n  hostname: box-1\n  accept_dns: false"),
        "{host}"
    );
    assert_eq!(p.stacks.len(), 2);
    let web = &p.stacks[0];
    assert_eq!((web.stack_id.as_str(), web.existing), ("web", Some(0)));
    let body = web.desired.join("\n");
    assert!(
        body.contains("  env:\n    TZ: UTC\n    URL: \"https://x\""),
        "{body}"
    );
    assert!(
        body.contains("  secrets:\n    DB_PASSWORD: {project: web, key: DB_PASSWORD}"),
        "{body}"
    );
    assert!(body.contains("# cron:\n#   - id: ops-1\n#     user: ops\n#     schedule: \"0 3 * * *\"\n#     command: \"/opt/stacks/web/backup.sh --keep 7\""), "{body}");
    assert!(
        !body.contains("ronny-ops"),
        "a legacy-root job is not proposed: {body}"
    );
    let cache = &p.stacks[1];
    assert_eq!((cache.stack_id.as_str(), cache.existing), ("cache", None));
    let notes = p.notes.join("\n");
    for want in [
        "cron: `5 4 * * * /home/ops/ronny-ops/old.sh` (ops) refers to a legacy root: reported, not imported",
        "cron: /etc/cron.d/e2scrub is not imported",
        "cron: `MAILTO=x` (ops) is not a job line",
        "stack `web`: compose project `web` in /opt/stacks/web imported into the existing entry 1",
        "stack `cache`: compose project `cache` in /srv/cache imported as a new entry",
        "/srv/cache/docker-compose.yml is mode 644 owned by root; spine keeps it 0644 owned by ops",
        "1 secret key(s) (DB_PASSWORD) imported as references to Infisical project `web`",
        "network: no netplan file on the host",
        "compose project `cache` on box: `docker compose ls` says `exited(1)`",
    ] {
        assert!(notes.contains(want), "missing `{want}` in:\n{notes}");
    }
    assert!(
        !notes.contains("compose project `web` on box: `docker compose ls`"),
        "{notes}"
    );
    assert!(!notes.contains("DB_PASSWORD=") && !body.contains("hunter"));
}

#[test]
fn a_value_with_a_control_character_is_refused() {
    let (_, reg) = registry();
    let r = read::parse(&box_answer("P TZ=UTC\u{1b}[2J\n"));
    let e = propose(&facts(&reg), &r).unwrap_err();
    assert!(
        e.contains("compose project `web` on box") && e.contains("TZ") && e.contains("U+001B"),
        "{e}"
    );
}

#[test]
fn the_sections_go_in_as_added_lines_only() {
    let (loaded, reg) = registry();
    let r = read::parse(&box_answer("P TZ=UTC\n"));
    let p = propose(&facts(&reg), &r).unwrap();
    let root = tempfile::tempdir().unwrap();
    let changes = changes(&loaded, &reg, root.path(), "box", &p).unwrap();
    let shown: Vec<&str> = changes.iter().map(|c| c.shown.as_str()).collect();
    assert_eq!(
        shown,
        [
            "SERVICE_REGISTRY.yaml",
            "STACK_REGISTRY.yaml",
            "ops/staged/web/docker-compose.yml",
            "ops/staged/cache/docker-compose.yml"
        ]
    );
    for c in &changes[..2] {
        let old = c.old.as_deref().unwrap();
        for op in similar::TextDiff::from_lines(old, &c.new).ops() {
            assert!(
                matches!(op.tag(), similar::DiffTag::Equal | similar::DiffTag::Insert),
                "{}: {op:?}\n{}",
                c.shown,
                c.new
            );
        }
        let (tree, problems) = crate::source::yaml::parse(&c.new).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let _ = tree;
    }
    let (stacks, _) = crate::source::yaml::parse(&changes[1].new).unwrap();
    let j = stacks.to_json();
    assert_eq!(j["stacks"][0]["notes"], "folded\n");
    assert_eq!(
        j["stacks"][0]["desired"]["compose"]["file"],
        "ops/staged/web/docker-compose.yml"
    );
    assert_eq!(j["stacks"][2]["stack_id"], "cache");
    assert_eq!(
        j["stacks"][2]["desired"]["compose"]["directory"],
        "/srv/cache"
    );
    let (services, _) = crate::source::yaml::parse(&changes[0].new).unwrap();
    let j = services.to_json();
    assert_eq!(j["hosts"]["box"]["notes"], "a host");
    assert_eq!(
        j["hosts"]["box"]["desired"]["tailscale"]["hostname"],
        "box-1"
    );
    assert_eq!(j["hosts"]["other"]["ssh"], "other");
}

#[test]
fn a_file_changed_meanwhile_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    std::fs::write(&a, "x: 1\n").unwrap();
    let b = dir.path().join("new/b.yml");
    let change = |path: &std::path::Path, old: Option<&str>| Change {
        path: path.to_path_buf(),
        shown: path.display().to_string(),
        old: old.map(String::from),
        new: "y: 2\n".into(),
    };
    std::fs::write(&a, "x: 3\n").unwrap();
    let e = write(&[change(&b, None), change(&a, Some("x: 1\n"))]).unwrap_err();
    assert!(e.contains("changed while import ran"), "{e}");
    assert!(!b.exists(), "nothing written");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "x: 3\n");
    write(&[change(&b, None), change(&a, Some("x: 3\n"))]).unwrap();
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "y: 2\n");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "y: 2\n");
}

#[test]
fn routes_for_a_host_without_desired_access_come_from_its_facts() {
    let (_, reg) = registry();
    let r = routes(&reg, "box");
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].via, r[0].user.as_str(), r[0].address.as_str()),
        (Via::SshConfig, "ops", "box")
    );
}

/// The rendered read scripts, framed as gather sends them, pass shellcheck.
#[test]
fn the_import_script_passes_shellcheck_rendered() {
    let reads = read::host_reads().unwrap();
    let script = crate::gather::script::build(&reads, "B").unwrap();
    let qm = crate::gather::script::build(&read::qm_read(204).unwrap(), "B").unwrap();
    for s in [script, qm] {
        let mut child = std::process::Command::new("shellcheck")
            .args(["-s", "sh", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("shellcheck is not installed: run .ci/install-deps");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), s.as_str().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            s.as_str()
        );
    }
}

#[test]
fn a_folder_or_stack_id_that_could_escape_is_not_imported() {
    let stacks = "stacks:\n  - stack_id: ../../etc\n    deploy_target: box\n";
    let loaded = crate::load::load_texts(
        "t",
        [
            (FileKind::Services, "S.yaml".to_string(), REG),
            (FileKind::Stacks, "T.yaml".to_string(), stacks),
        ],
    );
    let reg = Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
    let mut rep = box_answer("");
    let c = rep.sections.get_mut("compose").unwrap();
    c.values.insert("p.1.name".into(), "../../etc".into());
    c.values.insert("p.2.dir".into(), "srv/cache".into());
    let p = propose(&facts(&reg), &read::parse(&rep)).unwrap();
    assert!(p.stacks.is_empty(), "{:?}", p.stacks);
    let notes = p.notes.join("\n");
    assert!(
        notes.contains("its name is not a compose project name"),
        "{notes}"
    );
    assert!(
        notes.contains("its folder `srv/cache` is not absolute: not imported"),
        "{notes}"
    );
}

#[test]
fn a_host_only_ssh_targets_knows_is_reached_at_its_address_there() {
    let loaded = crate::load::load_texts(
        "t",
        [
            (FileKind::Services, "S.yaml".to_string(), REG),
            (FileKind::Stacks, "T.yaml".to_string(), STACKS),
            (
                FileKind::SshTargets,
                "ssh.targets.yaml".to_string(),
                "ssh:\n  defaults:\n    user: ubuntu\n  targets:\n    - id: pve\n      host: 10.203.155.10\n      user: root\n      tailscale_ip: 10.203.200.1\n",
            ),
        ],
    );
    let reg = Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
    let r: Vec<(Via, String, String)> = routes(&reg, "pve")
        .into_iter()
        .map(|r| (r.via, r.user, r.address))
        .collect();
    assert_eq!(
        r,
        [
            (Via::Lan, "root".into(), "10.203.155.10".into()),
            (Via::Tailscale, "root".into(), "10.203.200.1".into())
        ]
    );
    assert!(routes(&reg, "nosuch").is_empty());
}

#[test]
fn a_section_that_would_change_the_operators_values_is_refused() {
    // A kept block scalar's trailing blank lines are part of its value.
    let reg_text = "hosts:\n  box:\n    ssh: box\n    notes: |+\n      a\n\n  other:\n    ssh: o\n";
    let loaded = crate::load::load_texts(
        "t",
        [
            (FileKind::Services, "S.yaml".to_string(), reg_text),
            (FileKind::Stacks, "T.yaml".to_string(), "stacks: []\n"),
        ],
    );
    let reg = Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
    let mut rep = box_answer("");
    rep.sections.get_mut("compose").unwrap().values.clear();
    let p = propose(&facts(&reg), &read::parse(&rep)).unwrap();
    let e = changes(&loaded, &reg, Path::new("/nonexistent"), "box", &p).unwrap_err();
    assert!(
        e.contains("S.yaml: adding the section here would change the operator's values"),
        "{e}"
    );
}

/// A moving tag found live is said with the digest running now; the file is
/// staged as it runs (import never rewrites it). A line the host sent that
/// is not what docker sends is dropped, never shown.
#[test]
fn a_moving_tag_is_said_with_the_digest_running_now() {
    let (_, reg) = registry();
    let id = format!("sha256:{}", "0f".repeat(32));
    let digest = format!("nginx@sha256:{}", "a1".repeat(32));
    let mirror = format!("mirror.example/nginx@sha256:{}", "b2".repeat(32));
    let images = format!(
        "app\tdocker.io/library/nginx\t{id}\t{mirror} {digest} bad@digest\nevil\u{1b}]0;x\tnginx\t{id}\t\n"
    );
    let mut rep = box_answer("");
    rep.sections
        .get_mut("compose")
        .unwrap()
        .values
        .insert("p.1.images".into(), images);
    let r = read::parse(&rep);
    let run = r.projects[0].running.as_deref().unwrap();
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(run[0].digests, [mirror.clone(), digest.clone()]);
    assert_eq!(r.projects[1].running, None);
    let p = propose(&facts(&reg), &r).unwrap();
    let notes = p.notes.join("\n");
    for want in [
        format!(
            "compose project `web` on box: service `app`: image `docker.io/library/nginx` has no tag, so it means `latest` (spine verify warns, V17); the container runs image sha256:0f0f0f0f0f0f, pulled as `{digest}`: to pin what runs now, write `{digest}` (or its version tag) as the image in ops/staged/web/docker-compose.yml; import copied the file as it runs"
        ),
        "compose project `cache` on box: service `redis`: image `redis` has no tag, so it means `latest` (spine verify warns, V17); its containers could not be read, so no digest can be named: pin a version tag or digest in ops/staged/cache/docker-compose.yml".to_string(),
    ] {
        assert!(notes.contains(&want), "missing `{want}` in:\n{notes}");
    }
    assert!(
        !notes.contains("evil") && !notes.contains("bad@digest"),
        "{notes}"
    );
    // The staged file is the host's text, unchanged.
    assert_eq!(
        p.stacks[0].staged.1,
        "services:\n  app:\n    image: nginx\n"
    );
}
