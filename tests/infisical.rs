//! The Infisical secrets provider against a loopback stand-in server
//! (tests/support/infisical.rs): happy path, v3 fallback, token renewal,
//! every error case, and that no secret value ever shows.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use spine::model::InfisicalProject;
use spine::secrets::Provider;
use spine::secrets::infisical::{Config, Infisical};
use support::http::closed_port;
use support::infisical::{
    self as standin, CLIENT_ID, CLIENT_SECRET, Folder, MALFORMED_BODY, Options, PROJECT_ID,
};
use support::{spine, test_registry, text};

const DB_PASSWORD: &str = "Kq7vRz2pLm9wXy4tNb6c";
const API_KEY: &str = "imk_8hF2jD9sA0pQ3wE6rT1y";
const IMPORTED: &str = "Imp0rtedValue5Zx";
const PATH: &str = "/spine/services/immich";

fn folders() -> Vec<Folder> {
    let mut f = Folder::new(
        PATH,
        &[("DB_PASSWORD", DB_PASSWORD), ("IMMICH_API_KEY", API_KEY)],
    );
    f.imports = vec![(
        "/shared".to_string(),
        [("SMTP_PASSWORD".to_string(), IMPORTED.to_string())].into(),
    )];
    vec![
        f,
        Folder::new("/other", &[("OTHER_TOKEN", "0therT0kenValue")]),
    ]
}

/// The stand-in with `folders()`, its options changed by `change`.
fn server(change: impl FnOnce(&mut Options)) -> standin::Infisical {
    let mut opts = Options::default();
    change(&mut opts);
    standin::Infisical::start(folders(), opts)
}

fn projects(project_id: &str) -> IndexMap<String, InfisicalProject> {
    [(
        "immich".to_string(),
        InfisicalProject {
            project_id: Some(project_id.into()),
            environment: Some("prod".into()),
            path: Some(PATH.into()),
        },
    )]
    .into()
}

fn provider(url: &str, secret: &str, timeout: Duration) -> Infisical {
    let cfg = Config {
        site_url: url.to_string(),
        client_id: CLIENT_ID.into(),
        client_secret: spine::secrets::Secret::new(secret.into()),
        timeout,
    };
    Infisical::new(cfg, projects(PROJECT_ID))
}

fn good(s: &standin::Infisical) -> Infisical {
    provider(&s.url(), CLIENT_SECRET, Duration::from_secs(5))
}

#[test]
fn happy_path_v4_reads_each_folder_once() {
    let s = server(|_| ());
    let p = good(&s);
    assert_eq!(p.fetch("immich/DB_PASSWORD").unwrap().expose(), DB_PASSWORD);
    assert_eq!(p.fetch("immich/IMMICH_API_KEY").unwrap().expose(), API_KEY);
    assert_eq!(
        p.fetch("immich/SMTP_PASSWORD").unwrap().expose(),
        IMPORTED,
        "imported secret"
    );
    assert_eq!(
        p.fetch("immich:/other/OTHER_TOKEN").unwrap().expose(),
        "0therT0kenValue",
        "a reference's own path wins over the project's"
    );
    assert_eq!(
        s.server.hits(),
        [
            "POST /api/v1/auth/universal-auth/login",
            "GET /api/v4/secrets",
            "GET /api/v4/secrets"
        ],
        "one login, one listing per folder"
    );
    let first = &s.server.requests()[1];
    assert_eq!(first.query["projectId"], PROJECT_ID);
    assert_eq!(first.query["environment"], "prod");
    assert_eq!(first.query["secretPath"], PATH);
    assert_eq!(first.query["viewSecretValue"], "true");
    assert!(first.headers["authorization"].starts_with("Bearer "));
    // Names only: exists() asks for no values.
    p.exists("immich:/other/OTHER_TOKEN").unwrap();
    assert_eq!(
        s.server.requests().last().unwrap().query["viewSecretValue"],
        "false"
    );
}

#[test]
fn older_server_falls_back_to_v3_raw() {
    let s = server(|o| o.v4 = false);
    let p = good(&s);
    assert_eq!(p.fetch("immich/DB_PASSWORD").unwrap().expose(), DB_PASSWORD);
    assert_eq!(
        p.fetch("immich:/other/OTHER_TOKEN").unwrap().expose(),
        "0therT0kenValue"
    );
    assert_eq!(
        s.server.hits(),
        [
            "POST /api/v1/auth/universal-auth/login",
            "GET /api/v4/secrets",
            "GET /api/v3/secrets/raw",
            "GET /api/v3/secrets/raw"
        ],
        "v4 is tried once; after its 404 the v3 route is used"
    );
    assert_eq!(s.server.requests()[2].query["workspaceId"], PROJECT_ID);
}

#[test]
fn a_401_renews_the_token_once() {
    let s = server(|o| o.revoke_first_token = true);
    let p = good(&s);
    assert_eq!(p.fetch("immich/DB_PASSWORD").unwrap().expose(), DB_PASSWORD);
    assert_eq!(
        s.server.hits(),
        [
            "POST /api/v1/auth/universal-auth/login",
            "GET /api/v4/secrets",
            "POST /api/v1/auth/universal-auth/login",
            "GET /api/v4/secrets"
        ]
    );
    let reqs = s.server.requests();
    assert_ne!(
        reqs[1].headers["authorization"],
        reqs[3].headers["authorization"]
    );
}

#[test]
fn bad_credentials_say_which_variables_to_check() {
    let s = server(|_| ());
    let p = provider(&s.url(), "cs.wrong-secret-0000", Duration::from_secs(5));
    let e = p.fetch("immich/DB_PASSWORD").unwrap_err();
    assert!(
        e.starts_with("secret immich/DB_PASSWORD: Infisical login failed"),
        "{e}"
    );
    assert!(e.contains("HTTP 401: Invalid credentials"), "{e}");
    assert!(
        e.contains("INFISICAL_CLIENT_ID") && e.contains("INFISICAL_CLIENT_SECRET"),
        "{e}"
    );
    assert!(!e.contains("cs.wrong-secret-0000"), "{e}");
    // The failure is remembered: a second key costs no second login.
    assert!(p.fetch("immich/IMMICH_API_KEY").is_err());
    assert_eq!(s.server.hits().len(), 1);
}

#[test]
fn a_missing_key_is_named_with_its_folder_and_a_suggestion() {
    let s = server(|_| ());
    let p = good(&s);
    let e = p.fetch("immich/DB_PASSWRD").unwrap_err();
    assert_eq!(
        e,
        format!(
            "secret immich/DB_PASSWRD: key DB_PASSWRD not found in Infisical project immich \
             (id {PROJECT_ID}, environment prod, path {PATH}) (did you mean DB_PASSWORD?)"
        )
    );
    let e = p.exists("immich/NOT_THERE").unwrap_err();
    assert!(e.contains("key NOT_THERE not found"), "{e}");
}

#[test]
fn an_unknown_project_is_a_clear_error() {
    let s = server(|_| ());
    let cfg = Config {
        site_url: s.url(),
        client_id: CLIENT_ID.into(),
        client_secret: spine::secrets::Secret::new(CLIENT_SECRET.into()),
        timeout: Duration::from_secs(5),
    };
    let p = Infisical::new(cfg, projects("000000000000000000000000"));
    let e = p.fetch("immich/DB_PASSWORD").unwrap_err();
    assert!(e.contains("was not found"), "{e}");
    assert!(
        e.contains("HTTP 404: Project with ID '000000000000000000000000' not found"),
        "{e}"
    );
    assert!(
        e.contains("infisical_projects.immich in SERVICE_REGISTRY.yaml"),
        "{e}"
    );
    // A project the registry does not list at all.
    let e = good(&s).fetch("photos/DB_PASSWORD").unwrap_err();
    assert!(e.contains("unknown secrets project `photos`"), "{e}");
}

#[test]
fn a_slow_server_times_out_and_a_dead_one_is_refused() {
    let s = server(|o| o.delay = Duration::from_secs(4));
    let p = provider(&s.url(), CLIENT_SECRET, Duration::from_millis(700));
    let t = Instant::now();
    let e = p.fetch("immich/DB_PASSWORD").unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.contains("did not answer within 0.7s"), "{e}");
    assert!(e.contains("timeout"), "{e}");

    let down = provider(
        &format!("http://127.0.0.1:{}", closed_port()),
        CLIENT_SECRET,
        Duration::from_secs(2),
    );
    let e = down.fetch("immich/DB_PASSWORD").unwrap_err();
    assert!(
        e.starts_with("secret immich/DB_PASSWORD: cannot reach Infisical"),
        "{e}"
    );
    assert!(e.contains("connection refused"), "{e}");
}

#[test]
fn a_malformed_answer_is_reported_without_quoting_it() {
    let s = server(|o| o.malformed = true);
    let e = good(&s).fetch("immich/DB_PASSWORD").unwrap_err();
    assert!(
        e.contains("malformed response from Infisical (GET /api/v4/secrets)"),
        "{e}"
    );
    assert!(
        e.contains("truncated JSON") || e.contains("not valid JSON"),
        "{e}"
    );
    assert!(!e.contains("LeakedFromBrokenBody77"), "{e}");
    assert!(MALFORMED_BODY.contains("LeakedFromBrokenBody77"));
}

/// The shipped registry at test addresses, with an Infisical project id and a
/// second secret.
fn registry(dir: &Path, project_id: &str, key: &str) -> PathBuf {
    let reg = test_registry(dir, "10.203.1", "52:54:00:12:02:30", "v2.4.1");
    let f = reg.join("SERVICE_REGISTRY.yaml");
    let t = std::fs::read_to_string(&f).unwrap().replace(
        "    environment: prod\n",
        &format!("    project_id: \"{project_id}\"\n    environment: prod\n"),
    );
    std::fs::write(&f, t).unwrap();
    let f = reg.join("STACK_REGISTRY.yaml");
    let t = std::fs::read_to_string(&f).unwrap().replace(
        "            key: DB_PASSWORD\n",
        &format!("            key: {key}\n          IMMICH_API_KEY:\n            project: immich\n            key: IMMICH_API_KEY\n"),
    );
    std::fs::write(&f, t).unwrap();
    reg
}

fn verify(reg: &Path, url: &str, secret: &str, extra: &[&str]) -> std::process::Output {
    let receipts = reg.parent().unwrap().join("receipts");
    let mut args = vec![
        "verify",
        "--registry",
        reg.to_str().unwrap(),
        "--secrets",
        "--secrets-provider",
        "infisical",
    ];
    args.extend_from_slice(extra);
    spine(
        &args,
        &[
            ("INFISICAL_SITE_URL", url),
            ("INFISICAL_CLIENT_ID", CLIENT_ID),
            ("INFISICAL_CLIENT_SECRET", secret),
            ("SPINE_RECEIPTS", receipts.to_str().unwrap()),
        ],
    )
}

#[test]
fn verify_secrets_gate_passes_and_fails_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_| ());
    let reg = registry(dir.path(), PROJECT_ID, "DB_PASSWORD");
    let o = verify(&reg, &s.url(), CLIENT_SECRET, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("V15 PASS referenced secrets exist in the provider"),
        "{}",
        text(&o)
    );
    assert!(
        s.server
            .requests()
            .iter()
            .skip(1)
            .all(|r| r.query["viewSecretValue"] == "false")
    );

    let reg = registry(&dir.path().join("b"), PROJECT_ID, "DB_PASSWD");
    let o = verify(&reg, &s.url(), CLIENT_SECRET, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["failing_ids"], serde_json::json!(["V15"]));
    let d = &v["diagnostics"][0];
    assert_eq!(d["gate"], "V15");
    assert_eq!(
        d["file"].as_str().unwrap().rsplit('/').next(),
        Some("STACK_REGISTRY.yaml")
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("key DB_PASSWD not found"),
        "{d}"
    );

    // Timeout through the command line flag, and a server that is down.
    let slow = server(|o| o.delay = Duration::from_secs(4));
    let o = verify(
        &reg,
        &slow.url(),
        CLIENT_SECRET,
        &["--infisical-timeout", "0.5", "--format", "github"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("title=spine V15::secret immich/DB_PASSWD: Infisical at"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("did not answer within 0.5s"),
        "{}",
        text(&o)
    );

    // Provider not configured: could not run.
    let o = spine(
        &[
            "verify",
            "--registry",
            reg.to_str().unwrap(),
            "--secrets",
            "--secrets-provider",
            "infisical",
        ],
        &[("INFISICAL_SITE_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("INFISICAL_CLIENT_ID is not set"),
        "{}",
        text(&o)
    );
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_secret_value_appears_in_any_output_or_file() {
    let dir = tempfile::tempdir().unwrap();
    // An older server that ignores viewSecretValue=false: values do come back.
    let s = server(|o| {
        o.honour_view_secret_value = false;
        o.revoke_first_token = true;
    });
    let reg = registry(dir.path(), PROJECT_ID, "DB_PASSWORD");
    let mut outputs = String::new();
    for fmt in ["text", "json", "junit", "github"] {
        let o = verify(
            &reg,
            &s.url(),
            CLIENT_SECRET,
            &["--format", fmt, "--verbose"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        outputs.push_str(&text(&o));
    }
    let bad = server(|o| o.malformed = true);
    let o = verify(&reg, &bad.url(), CLIENT_SECRET, &[]);
    assert_eq!(o.status.code(), Some(1));
    outputs.push_str(&text(&o));
    let o = verify(&reg, &s.url(), "cs.some-other-secret-9", &[]);
    assert_eq!(o.status.code(), Some(1));
    outputs.push_str(&text(&o));
    // Library side: values fetched, then every error and Debug output.
    let p = good(&s);
    let v = p.fetch("immich/DB_PASSWORD").unwrap();
    outputs.push_str(&format!("{v} {v:?} {p:?}"));
    outputs.push_str(&p.fetch("immich/NOPE").unwrap_err());

    let mut secrets: Vec<String> = vec![
        DB_PASSWORD.into(),
        API_KEY.into(),
        IMPORTED.into(),
        CLIENT_SECRET.into(),
        "cs.some-other-secret-9".into(),
        "LeakedFromBrokenBody77".into(),
    ];
    secrets.extend(s.tokens());
    assert!(s.tokens().len() >= 2);
    let mut written = String::new();
    for f in files(dir.path()) {
        written.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
    }
    assert!(
        written.contains("\"command\":\"verify\""),
        "receipts were written"
    );
    for secret in &secrets {
        assert!(
            !outputs.contains(secret.as_str()),
            "{secret} in output:\n{outputs}"
        );
        assert!(
            !written.contains(secret.as_str()),
            "{secret} in a file written"
        );
    }
    assert!(outputs.contains("(sensitive)"));
}
