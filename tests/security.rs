//! Issue 13, points 2 and 3: hostile registry values cannot smuggle anything
//! into rendered files, commands or paths, even when verify is bypassed (the
//! render-level half; `tests/corpus/v16-*` holds verify's refusals), and a
//! known secret value never shows in what spine prints or keeps.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use spine::diag::FileKind;
use spine::kinds::{self, Desired};
use spine::kinds::{HostState, render_host, write_out};
use spine::model::Registry;
use spine::render::{self, Templates};
use support::corpus::corpus;
use support::scenario::{SECRET, converged};
use support::{spine, text};

/// The base corpus registry with a case's files in place, loaded and typed
/// WITHOUT verify: what render would see if V16 were bypassed.
fn unverified(case: &str, dir: &Path) -> Registry {
    // The registry in `DIR/reg`, the compose files stacks name in `DIR`
    // (the folder's parent is the repository root).
    let reg = dir.join("reg");
    std::fs::create_dir_all(&reg).unwrap();
    for from in [corpus().join("base"), corpus().join(case)] {
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                std::fs::copy(&p, reg.join(p.file_name().unwrap())).unwrap();
            }
        }
        if from.join("repo").is_dir() {
            support::corpus::copy_tree(&from.join("repo"), dir);
        }
    }
    let loaded = spine::load::load_dir(&reg);
    assert!(loaded.failures.is_empty(), "{case}: the case does not load");
    Registry::from_loaded(&loaded, &FileKind::ALL).unwrap()
}

fn render_case(case: &str) -> Result<HostState, render::RenderError> {
    let tmp = tempfile::tempdir().unwrap();
    let reg = unverified(case, tmp.path());
    render_host(&reg, "immich", &Templates::new(None).unwrap())
}

fn resource<'a>(state: &'a HostState, id: &str) -> &'a Desired {
    state
        .resources
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

#[test]
fn cron_description_cannot_add_a_job_or_end_the_block() {
    let state = render_case("v16-cron-description-newline").unwrap();
    let block = &resource(&state, "cron:ronny").content;
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.len(), 4, "one job, one comment, BEGIN, END:\n{block}");
    assert!(lines[1].starts_with("# spine:immich-pg-dump nightly dump "));
    assert!(lines[1].contains("curl"), "the text stays in the comment");
    let ends = lines
        .iter()
        .filter(|l| l.starts_with(kinds::cron::END))
        .count();
    assert_eq!(ends, 1, "{block}");
    assert!(lines[3].starts_with(kinds::cron::END));
    // The block the host would get ends where spine's END is, nothing after.
    let (before, found, after) = kinds::cron::split_block(block);
    assert!(before.is_empty() && after.is_empty() && found.unwrap().len() == 4);
}

#[test]
fn image_with_newline_stays_one_yaml_value() {
    let state = render_case("v16-image-newline").unwrap();
    let compose = &resource(&state, "compose:/home/ronny/immich/docker-compose.yml").content;
    let meaning = kinds::file::yaml_meaning(compose).expect("the compose file is valid YAML");
    let redis = &meaning["services"]["redis"];
    let keys: Vec<&String> = redis.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["container_name", "image", "healthcheck", "restart"],
        "{compose}"
    );
    assert!(redis.get("privileged").is_none() && redis.get("volumes").is_none());
    assert_eq!(
        redis["image"],
        "docker.io/valkey/valkey:8-bookworm\n    privileged: true\n    volumes: [\"/:/host\"]"
    );
}

#[test]
fn netplan_search_cannot_add_keys() {
    let state = render_case("v16-netplan-search-keys").unwrap();
    let netplan = &resource(&state, "netplan:/etc/netplan/50-cloud-init.yaml").content;
    let m = kinds::file::yaml_meaning(netplan).expect("valid YAML");
    let eth0 = &m["network"]["ethernets"]["eth0"];
    assert_eq!(
        eth0["nameservers"]["search"],
        serde_json::json!(["lan\n            routes: [{to: 0.0.0.0/0, via: 10.203.9.9}]"])
    );
    assert_eq!(eth0["routes"].as_array().unwrap().len(), 1, "{netplan}");
    assert_eq!(eth0["routes"][0]["via"], "10.203.1.1");
}

#[test]
fn env_value_with_newline_is_refused_at_render() {
    let e = render_case("v16-env-newline").unwrap_err();
    let msg = format!("{e}");
    assert!(msg.contains("newline (U+000A)"), "{msg}");
    assert!(msg.contains("compose/env.j2"), "{msg}");
}

#[test]
fn compose_directory_is_never_a_system_directory_nor_chowned_when_it_exists() {
    let state = render_case("v16-system-directory").unwrap();
    let file = resource(&state, "compose:/etc/docker-compose.yml");
    let compose = kinds::by_name("compose").unwrap();
    let provider = spine::secrets::EnvProvider;
    // The file is not there yet (the facts as the compose kind reads them).
    let absent = serde_json::json!({ "exists": false });
    let e = compose
        .apply(file, &absent, &provider)
        .map(|c| c.script)
        .expect_err("apply refuses /etc");
    assert!(
        matches!(e, kinds::KindError::Refused(_)) && e.to_string().contains("system directory"),
        "{e}"
    );

    let state = render_case("base").unwrap();
    let file = resource(&state, "compose:/home/ronny/immich/docker-compose.yml");
    let script = compose.apply(file, &absent, &provider).unwrap().script;
    let script = script.as_str();
    assert!(
        script.contains(
            "\n[ -d '/home/ronny/immich' ] || install -d -o 'ronny' -- '/home/ronny/immich'\n"
        ),
        "an existing directory is left as it is:\n{script}"
    );
}

#[test]
fn render_out_stays_in_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let state = render_case("base").unwrap();
    // A host id and a path that climb out (as if verify were bypassed).
    let mut climbing = state.resources[0].clone();
    climbing.on = "../x".into();
    let mut dotdot = state.resources[1].clone();
    dotdot.path = Some("/home/../../../escaped".into());
    for r in [climbing, dotdot] {
        let one = HostState {
            host: r.on.clone(),
            resources: vec![r],
        };
        let e = write_out(&one, &out).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
    }
    assert!(!tmp.path().join("x").exists() && !tmp.path().join("escaped").exists());

    // A symlink planted in the folder does not lead the write elsewhere.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("immich")).unwrap();
    // The base registry in `reg/`, the compose file it names beside it.
    let base = support::corpus::build(&support::corpus::case("base"));
    let reg = base.root.join("reg");
    let o = spine(
        &[
            "render",
            "--registry",
            reg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("outside"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn infisical_needs_https_except_on_loopback() {
    // The base registry in `reg/`, the compose file it names beside it.
    let base = support::corpus::build(&support::corpus::case("base"));
    let reg = base.root.join("reg");
    let receipts = tempfile::tempdir().unwrap();
    let run = |url: &str| {
        spine(
            &[
                "verify",
                "--registry",
                reg.to_str().unwrap(),
                "--secrets",
                "--secrets-provider",
                "infisical",
                "--infisical-url",
                url,
                "--receipts",
                receipts.path().to_str().unwrap(),
            ],
            &[
                ("INFISICAL_CLIENT_ID", "id-1"),
                ("INFISICAL_CLIENT_SECRET", "cs.never-sent-77"),
            ],
        )
    };
    let o = run("http://10.203.130.9:8080");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("plain http"), "{}", text(&o));
    assert!(!text(&o).contains("cs.never-sent-77"));
    // Loopback over http is accepted (a closed port: the run gets as far as connecting).
    let o = run("http://127.0.0.1:9");
    assert!(!text(&o).contains("plain http"), "{}", text(&o));
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A file's text plus every `KEY=BASE64` value decoded (gather output frames
/// file contents in base64: a secret there would otherwise hide from a scan).
fn readable(p: &Path) -> String {
    use base64::Engine;
    let t = String::from_utf8_lossy(&std::fs::read(p).unwrap()).to_string();
    let mut all = t.clone();
    for l in t.lines() {
        if let Some((_, v)) = l.split_once('=')
            && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(v.trim())
        {
            all.push('\n');
            all.push_str(&String::from_utf8_lossy(&b));
        }
    }
    all
}

/// A known secret (the stack's DB_PASSWORD, from the provider) and values the
/// secret-key rule flags on the host's `.env` (keys the registry does not
/// declare, any case, a URL with a password) go through plan (json and text),
/// a saved plan, receipts and SPINE_GATHER_DUMP: none of them shows a value,
/// the dump files are 0600, and the `.env` diff names keys only.
#[test]
fn leak_scan_plan_outputs_plan_file_receipts_and_dumps() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.130", "52:54:00:13:01:30").up();
    let leaks = [
        "LeakOldDbPassw0rd",
        "LeakSmtpPass41",
        "LeakLowerPw42",
        "LeakUrlPass43",
        "LeakJwt44",
        "LeakTzValue45",
    ];
    one.immich.ok(
        "cd /home/ronny/immich && sed -i 's|^DB_PASSWORD=.*|DB_PASSWORD=LeakOldDbPassw0rd|; s|^TZ=.*|TZ=LeakTzValue45|' .env && \
         printf 'SMTP_PASS=LeakSmtpPass41\\ndb_password=LeakLowerPw42\\nDATABASE_URL=postgres://app:LeakUrlPass43@db/app\\nJWT_SIGNING_KEY=LeakJwt44\\n' >> .env",
    );
    // The compose directory exists and belongs to root; the compose file
    // drifts too, so apply rewrites it (and must not chown the directory).
    // Someone wrote the database password into it in clear: the diff shows
    // that line changing, its value masked.
    one.immich.ok(
        "chown root:root /home/ronny/immich && sed -i 's/restart: always/restart: \"no\"/; s/POSTGRES_PASSWORD: .*/POSTGRES_PASSWORD: LeakComposePw47/' /home/ronny/immich/docker-compose.yml",
    );
    // A line of the operator's own beside spine's block, holding a token,
    // a job slipped into the block, and a job under a legacy root with the
    // database password as a bare word (no rule sees it): the crontab's
    // diff shows only the lines that change (not the operator's own), the
    // legacy job with the password masked because spine knows that value;
    // the observed crontab is kept as a hash.
    one.immich.ok(&format!(
        "(crontab -u ronny -l | sed '/^# END spine managed block/i 0 1 * * * /usr/bin/false'; echo '0 4 * * * BACKUP_TOKEN=LeakCronTok46 /usr/bin/true'; echo '0 6 * * * /home/ronny/ronny-ops/sync.sh {SECRET}') | crontab -u ronny -",
    ));
    let dump = tmp.path().join("dump");
    let receipts = tmp.path().join("receipts");
    let plan_file = tmp.path().join("immich.plan");
    let mut outputs = String::new();
    for format in ["json", "text"] {
        let o = spine(
            &[
                "plan",
                "--registry",
                one.reg.to_str().unwrap(),
                "--ssh-config",
                one.cfg.to_str().unwrap(),
                "--receipts",
                receipts.to_str().unwrap(),
                "--format",
                format,
                "--no-health",
                "-o",
                plan_file.to_str().unwrap(),
            ],
            &[
                ("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET),
                ("SPINE_GATHER_DUMP", dump.to_str().unwrap()),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        outputs.push_str(&text(&o));
        if format == "json" {
            let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
            let env = plan["hosts"][0]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["desired"]["id"] == "compose:/home/ronny/immich/.env")
                .expect("the .env resource");
            let diff = env["verdict"]["diff"].as_str().expect("a diff");
            for line in [
                "-TZ=(value on host)",
                "+TZ=(desired value)",
                "-SMTP_PASS=(value on host)",
                "-DB_PASSWORD=(value on host)",
            ] {
                assert!(diff.contains(line), "{line} in\n{diff}");
            }
        }
    }
    assert!(
        outputs.contains("DB_PASSWORD (sensitive) differs"),
        "{outputs}"
    );
    // The lines with secrets were in the diffs, masked.
    for shown in [
        "-      POSTGRES_PASSWORD: (sensitive)",
        "-0 6 * * * /home/ronny/ronny-ops/sync.sh (sensitive)",
    ] {
        assert!(outputs.contains(shown), "{shown} in\n{outputs}");
    }
    assert!(
        !outputs.contains("BACKUP_TOKEN"),
        "the operator's unchanged cron line shown:\n{outputs}"
    );
    // Apply: the secret is written on the host, and shown nowhere else.
    let o = one.spine(&["apply", "--receipts", receipts.to_str().unwrap(), "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    outputs.push_str(&text(&o));
    assert_eq!(
        one.immich
            .ok("grep -c '^DB_PASSWORD=' /home/ronny/immich/.env")
            .trim(),
        "1"
    );
    assert_eq!(
        one.immich.ok("stat -c %U /home/ronny/immich").trim(),
        "root",
        "apply never chowns an existing directory"
    );
    let dumped = files(&dump);
    assert!(dumped.len() >= 2, "dump files: {dumped:?}");
    let mut kept = String::new();
    for f in dumped.iter() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", f.display());
        kept.push_str(&readable(f));
    }
    // The dump holds what the host sent, decoded (the drifted compose file):
    // proof that the scan reads inside the base64 framing. Every `.env`
    // value, secret by name or not (TZ), was hashed on the host.
    assert!(
        kept.contains("restart: \"no\""),
        "the scan sees decoded content"
    );
    assert!(kept.contains("TZ=plain-sha256:"), "TZ hashed on the host");
    // A saved plan keeps observed file text (crontab, compose file) as hashes.
    assert!(kept.contains("LeakCronTok46"), "the host sent its crontab");
    let saved = readable(&plan_file);
    assert!(
        !saved.contains("LeakCronTok46"),
        "observed crontab text in the plan file"
    );
    assert!(
        saved.contains("\"crontab\": {\n"),
        "the crontab kept as a hash"
    );
    let rule_flagged = &leaks[..];
    for f in files(&receipts).iter().chain([&plan_file]) {
        kept.push_str(&readable(f));
    }
    // Values in files the host sends whole (the dump holds them): shown in
    // diffs masked, kept in no plan or receipt.
    let mut stored = String::new();
    for f in files(&receipts).iter().chain([&plan_file]) {
        stored.push_str(&readable(f));
    }
    for leak in ["LeakComposePw47", "LeakCronTok46", SECRET] {
        assert!(kept.contains(leak), "{leak} was sent by the host");
        assert!(!outputs.contains(leak), "{leak} printed:\n{outputs}");
        assert!(!stored.contains(leak), "{leak} in a plan or receipt");
    }
    for leak in rule_flagged {
        assert!(!outputs.contains(leak), "{leak} printed:\n{outputs}");
        assert!(
            !kept.contains(leak),
            "{leak} in a plan, receipt or dump file"
        );
    }
    assert!(
        !outputs.contains("LeakTzValue45"),
        "a .env value in plan output"
    );

    // Host backups outlive the run and the old `.env` in them holds its
    // values: they are root's alone (folders 0700, files 0600) and pruned
    // to the last --keep-backups runs.
    let bk = "/var/lib/spine/backups";
    let env_backup = one
        .immich
        .ok(&format!("find {bk} -path '*/home/ronny/immich/.env'"));
    assert_eq!(env_backup.lines().count(), 1, "{env_backup}");
    assert!(
        one.immich
            .ok(&format!("cat {}", env_backup.trim()))
            .contains("LeakSmtpPass41"),
        "the backup is where the old values are"
    );
    let modes = one.immich.ok(&format!(
        "stat -c '%a %n' /var/lib/spine/backups; find {bk} -mindepth 1 -printf '%m %y %p\\n'"
    ));
    for line in modes.lines() {
        let ok = line.starts_with("700 ") && (line.contains(" d ") || !line.contains(" f "))
            || line.starts_with("600 f ");
        assert!(ok, "not root-only: {line}\n{modes}");
    }
    assert_eq!(
        one.immich
            .ok(&format!("cat {}.mode", env_backup.trim()))
            .trim(),
        "600",
        "the file's own mode is kept beside it"
    );
    // The next run (the compose file drifts again) keeps only its own backup.
    one.immich
        .ok("sed -i 's/restart: always/restart: \"no\"/' /home/ronny/immich/docker-compose.yml");
    let o = one.spine(&[
        "apply",
        "--receipts",
        receipts.to_str().unwrap(),
        "--yes",
        "--keep-backups",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let runs = one.immich.ok(&format!("ls {bk}"));
    assert_eq!(runs.lines().count(), 1, "{runs}");
    assert_ne!(
        runs.trim(),
        env_backup
            .trim()
            .trim_start_matches(&format!("{bk}/"))
            .split('/')
            .next()
            .unwrap()
    );
    let left = one.immich.sh(&format!("grep -rlE 'Leak|{SECRET}' {bk}"));
    assert_ne!(
        left.status.code(),
        Some(0),
        "a pruned backup's secret survives: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// Render never fetches a secret: with the provider's value at hand, the
/// printed and written `.env` hold the placeholder shown as `(sensitive)`.
#[test]
fn render_never_holds_a_secret_value() {
    let tmp = tempfile::tempdir().unwrap();
    // The base registry in `reg/`, the compose file it names beside it.
    let base = support::corpus::build(&support::corpus::case("base"));
    let reg = base.root.join("reg");
    let out = tmp.path().join("out");
    let envs = [("SPINE_SECRET_IMMICH_DB_PASSWORD", "RenderLeak-Val-51")];
    let printed = spine(&["render", "--registry", reg.to_str().unwrap()], &envs);
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
    assert!(text(&printed).contains("DB_PASSWORD=(sensitive)"));
    let o = spine(
        &[
            "render",
            "--registry",
            reg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &envs,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut all = text(&printed) + &text(&o);
    for f in files(&out) {
        all.push_str(&std::fs::read_to_string(f).unwrap());
    }
    assert!(all.contains("DB_PASSWORD=(sensitive)"));
    assert!(!all.contains("RenderLeak-Val-51"));
}
