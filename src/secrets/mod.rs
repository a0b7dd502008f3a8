//! Secret values: fetched only when needed (hashing at plan time, filling in
//! at apply time), held in memory, never printed. A [`Secret`] formats as
//! `(sensitive)` everywhere, also in `Debug` output and error messages.
//!
//! Providers: [`env::EnvProvider`] (`SPINE_SECRET_<PROJECT>_<KEY>`) and
//! [`infisical::Infisical`] (machine identity, universal auth), chosen with
//! `--secrets-provider` / `SPINE_SECRETS_PROVIDER`.

pub mod env;
pub mod infisical;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::model::InfisicalProject;

pub use env::EnvProvider;

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(v: String) -> Self {
        remember(&v);
        Self(v)
    }
    /// The value itself, for the one place that must write it (apply).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn sha256(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// Where secret values come from.
pub trait Provider: Send + Sync {
    /// `reference` is `PROJECT/KEY` (or `PROJECT:PATH/KEY`), see [`Reference`].
    fn fetch(&self, reference: &str) -> Result<Secret, String>;

    /// Whether the secret exists, without needing its value where the
    /// provider can avoid it (`spine verify --secrets`).
    fn exists(&self, reference: &str) -> Result<(), String> {
        self.fetch(reference).map(|_| ())
    }
}

/// A reference to a secret as the registry states it: project (a key of
/// `infisical_projects`), key, and optionally a folder path overriding the
/// project's. Written `PROJECT/KEY`, or `PROJECT:/PATH/KEY` with a path
/// (a resource's spec keeps its fields: no secret value is in it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reference {
    pub project: String,
    pub key: String,
    pub path: Option<String>,
}

impl Reference {
    pub fn new(project: &str, key: &str, path: Option<&str>) -> Self {
        Self {
            project: project.to_string(),
            key: key.to_string(),
            path: path.map(str::to_string),
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a secret reference (PROJECT/KEY or PROJECT:/PATH/KEY)");
        if let Some((project, rest)) = s.split_once(':') {
            let (path, key) = rest.rsplit_once('/').ok_or_else(bad)?;
            if project.is_empty() || key.is_empty() || !rest.starts_with('/') {
                return Err(bad());
            }
            let path = if path.is_empty() { "/" } else { path };
            return Ok(Self::new(project, key, Some(path)));
        }
        match s.split_once('/') {
            Some((p, k)) if !p.is_empty() && !k.is_empty() && !k.contains('/') => {
                Ok(Self::new(p, k, None))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            None => write!(f, "{}/{}", self.project, self.key),
            Some(p) => write!(
                f,
                "{}:{}/{}",
                self.project,
                p.trim_end_matches('/'),
                self.key
            ),
        }
    }
}

/// Which provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// `SPINE_SECRET_<PROJECT>_<KEY>` environment variables
    Env,
    /// Infisical, logging in as a machine identity (universal auth)
    Infisical,
}

/// Build the chosen provider. Infisical needs `url` (or `INFISICAL_SITE_URL`)
/// and `INFISICAL_CLIENT_ID` / `INFISICAL_CLIENT_SECRET`; it does not connect
/// until a secret is asked for.
pub fn choose(
    kind: ProviderKind,
    url: Option<&str>,
    timeout: Duration,
    projects: &IndexMap<String, InfisicalProject>,
) -> Result<Arc<dyn Provider>, String> {
    match kind {
        ProviderKind::Env => Ok(Arc::new(EnvProvider)),
        ProviderKind::Infisical => {
            let cfg = infisical::Config::from_env(url, timeout)?;
            Ok(Arc::new(infisical::Infisical::new(cfg, projects.clone())))
        }
    }
}

/// The one secret-key rule, shared by verify (V13), the plan's `.env`
/// comparison and the host-side gather script ([`rule_context`] feeds it).
///
/// A key is split into words at `_` after upper-casing it and turning `-` and
/// `.` into `_`. It is secret when a word is one of [`SECRET_WORDS`], or ends
/// in one of [`SECRET_SUFFIXES`] (`DBPASSWORD`, `TS_AUTHKEY`), unless its last
/// word is one of [`PLAIN_LAST_WORDS`]: `POSTGRES_PASSWORD_FILE` names a file
/// that holds the secret, not the secret. A value is secret when it is a URL
/// carrying a password (`scheme://user:pass@host`), whatever its key.
pub const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "PASS",
    "PASSWD",
    "PASSWORD",
    "PASSPHRASE",
    "TOKEN",
    "KEY",
    "APIKEY",
    "AUTHKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "DSN",
];

/// Words that make a key secret also at the end of a longer word (`DBPASSWORD`).
pub const SECRET_SUFFIXES: &[&str] = &[
    "SECRET",
    "PASSWD",
    "PASSWORD",
    "PASSPHRASE",
    "TOKEN",
    "APIKEY",
    "AUTHKEY",
    "CREDENTIAL",
    "CREDENTIALS",
];

/// A key whose last word is one of these names where a secret is, not the secret.
pub const PLAIN_LAST_WORDS: &[&str] = &["FILE", "PATH", "DIR"];

/// Whether a key names a secret (`DB_PASSWORD`, `client_secret`, `SMTP_PASS`,
/// `JWT_SIGNING_KEY`, `SENTRY_DSN`; not `secrets_project`, `TOKENIZER`,
/// `PASSWORD_FILE`). Case-insensitive.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    let words: Vec<&str> = k.split('_').collect();
    if words.last().is_some_and(|w| PLAIN_LAST_WORDS.contains(w)) {
        return false;
    }
    words
        .iter()
        .any(|w| SECRET_WORDS.contains(w) || SECRET_SUFFIXES.iter().any(|s| w.ends_with(s)))
}

/// Whether a value is secret by itself: a URL with a password
/// (`postgres://app:hunter2@db/app`). The user part is what lies between the
/// first `://` and the first `@`; it holds a `:` and no `/`.
pub fn is_secret_value(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let Some((user, _)) = rest.split_once('@') else {
        return false;
    };
    user.contains(':') && !user.contains('/')
}

/// Whether a `KEY=value` pair must be treated as secret.
pub fn is_secret(key: &str, value: &str) -> bool {
    is_secret_key(key) || is_secret_value(value)
}

/// What a masked value is shown as.
pub const MASKED: &str = "(sensitive)";

/// One line of a file that may hold secrets (a compose file, a crontab), as
/// it may be shown and stored: every value the secret-key rule flags is
/// [`MASKED`]. Recognised: a YAML entry `KEY: VALUE`, an assignment
/// `KEY=VALUE` anywhere (an `environment:` item, a cron job's
/// `API_TOKEN=... cmd`, `--token=...`), a flag and its value (`--password
/// VALUE`), `Bearer VALUE`, and the password of a URL. A value that only
/// refers to another (`${DB_PASSWORD}`, `$TOKEN`) is no secret and stays.
/// And wherever it stands, any value a provider gave this process
/// ([`remember`]): a bare word no rule can see, once spine knows it.
pub fn mask_line(line: &str) -> String {
    let mut spans = Vec::new();
    known_values(line, &mut spans);
    yaml_entry(line, &mut spans);
    assignments(line, &mut spans);
    flag_values(line, &mut spans);
    url_passwords(line, &mut spans);
    masked(line, spans)
}

/// `text` with each span replaced by [`MASKED`] (overlapping spans as one).
fn masked(line: &str, mut spans: Vec<(usize, usize)>) -> String {
    if spans.is_empty() {
        return line.to_string();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (start, end) in spans {
        if start < at {
            at = at.max(end);
            continue;
        }
        out.push_str(&line[at..start]);
        out.push_str(MASKED);
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

/// Values shorter than this are not remembered: masking every `abc` in a
/// diff would hide more than it protects.
const KNOWN_MIN: usize = 4;

/// Every secret value this process holds (each [`Secret`] made), so that
/// [`mask_line`] masks it wherever it appears, also where no rule would see
/// a secret (`mysqldump -pVALUE`, a bare argument). A weak secret that is
/// also a common word (`postgres`) masks that word too.
static KNOWN: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Remember `value` as secret for the rest of the process.
pub fn remember(value: &str) {
    if value.len() < KNOWN_MIN {
        return;
    }
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
    }
}

/// [`mask_line`] on every line of `text` (a host's output that is shown).
pub fn mask_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|l| match l.strip_suffix('\n') {
            Some(body) => format!("{}\n", mask_line(body)),
            None => mask_line(l),
        })
        .collect()
}

/// `text` with every remembered secret value [`MASKED`] (only those: the
/// rules of [`mask_line`] want a line at a time).
pub fn mask_known(text: &str) -> String {
    let mut spans = Vec::new();
    known_values(text, &mut spans);
    masked(text, spans)
}

fn known_values(line: &str, spans: &mut Vec<(usize, usize)>) {
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for v in known.iter() {
        spans.extend(
            line.match_indices(v.as_str())
                .map(|(i, _)| (i, i + v.len())),
        );
    }
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// `${NAME}`, `$NAME` or `${NAME:-default}`: a reference, not a value.
fn is_reference(v: &str) -> bool {
    let v = v.trim_matches(|c| c == '"' || c == '\'');
    let Some(rest) = v.strip_prefix('$') else {
        return false;
    };
    match rest.strip_prefix('{') {
        Some(inner) => inner.ends_with('}') && !inner[..inner.len() - 1].contains('}'),
        None => !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
    }
}

/// Whether `v` starts with what spine shows in place of a value (a `.env`
/// diff's `(value on host)`, `(desired value)`, `(sensitive)`, or a plain
/// value's `(value HEX)` fingerprint): already no value.
fn is_marker(v: &str) -> bool {
    const MARKERS: &[&str] = &[
        "(sensitive)",
        "(sensitive, differs)",
        "(value on host)",
        "(desired value)",
    ];
    if MARKERS.iter().any(|m| v.starts_with(m)) {
        return true;
    }
    v.strip_prefix("(value ")
        .and_then(|r| r.get(..17))
        .is_some_and(|h| h.ends_with(')') && h[..16].chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('-');
    !name.is_empty() && is_secret_key(name)
}

/// `KEY: VALUE` (a YAML mapping entry, perhaps a list item or quoted key).
fn yaml_entry(line: &str, spans: &mut Vec<(usize, usize)>) {
    let t = line.trim_start();
    let body = t
        .strip_prefix("- ")
        .unwrap_or(t)
        .trim_start_matches(['"', '\'']);
    let start = line.len() - body.len();
    let Some(colon) = body.find(':') else {
        return;
    };
    let key = body[..colon].trim_end_matches(['"', '\'']);
    if !key.chars().all(key_char) || !is_secret_name(key) {
        return;
    }
    let rest = &body[colon + 1..];
    if !rest.starts_with(' ') {
        return;
    }
    let value = rest.trim();
    if value.is_empty()
        || is_reference(value)
        || is_marker(value)
        || value.starts_with(['|', '>', '#'])
    {
        return;
    }
    let vstart = start + colon + 1 + (rest.len() - rest.trim_start().len());
    spans.push((vstart, vstart + value.len()));
}

/// `KEY=VALUE`, the value up to whitespace or a shell separator, or the
/// whole quoted value.
fn assignments(line: &str, spans: &mut Vec<(usize, usize)>) {
    for (i, _) in line.match_indices('=') {
        let key_start = line[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| key_char(*c))
            .last()
            .map_or(i, |(k, _)| k);
        if !is_secret_name(&line[key_start..i]) {
            continue;
        }
        let rest = &line[i + 1..];
        let len = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].find(q).map_or(rest.len(), |e| e + 2),
            _ => rest
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, ';' | '&' | '|' | ')' | '"' | '\'')
                })
                .unwrap_or(rest.len()),
        };
        let value = &rest[..len];
        if !value.is_empty() && !is_reference(value) && !is_marker(rest) {
            spans.push((i + 1, i + 1 + len));
        }
    }
}

/// The word after `--password`, `--token`, `-api-key`... and after `Bearer`.
fn flag_values(line: &str, spans: &mut Vec<(usize, usize)>) {
    let mut words = line
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
        .peekable();
    while let Some((_, w)) = words.next() {
        let flag = w.starts_with('-') && !w.contains('=') && is_secret_name(w);
        let bearer = w
            .trim_start_matches(['"', '\''])
            .eq_ignore_ascii_case("bearer");
        if !(flag || bearer) {
            continue;
        }
        if let Some(&(at, next)) = words.peek() {
            let v = next.trim_end_matches(['"', '\'', ';']);
            if !v.is_empty() && !v.starts_with('-') && !is_reference(v) && !is_marker(next) {
                spans.push((at, at + v.len()));
            }
        }
    }
}

/// The password of `scheme://user:PASSWORD@host`.
fn url_passwords(line: &str, spans: &mut Vec<(usize, usize)>) {
    for (i, _) in line.match_indices("://") {
        let from = i + 3;
        let token = line[from..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\''))
            .map_or(&line[from..], |e| &line[from..from + e]);
        let Some(at) = token.find('@') else {
            continue;
        };
        let user = &token[..at];
        if let Some(colon) = user.find(':')
            && !user.contains('/')
            && colon + 1 < at
        {
            spans.push((from + colon + 1, from + at));
        }
    }
}

/// The lists of the secret-key rule, for `scripts/lib/secret-rule.sh`, which
/// renders the same rule as [`is_secret`] as a POSIX sh function for scripts
/// that run on hosts (`sp_is_secret KEY VALUE`): the host hashes such values
/// before they leave it. `kinds::compose` tests that both sides agree.
pub fn rule_context() -> minijinja::Value {
    minijinja::context! {
        secret_words => SECRET_WORDS.to_vec(),
        secret_suffixes => SECRET_SUFFIXES.to_vec(),
        plain_last_words => PLAIN_LAST_WORDS.to_vec(),
    }
}

/// The placeholder prefix standing for a secret in rendered files; a registry
/// value holding it would make apply write a secret where it does not belong.
pub const PLACEHOLDER_PREFIX: &str = "<<spine-secret:";

/// Whether an Infisical (or other secrets server) URL is acceptable: https,
/// or plain http only to a loopback address (a local test or a tunnel).
pub fn https_or_loopback(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "the secrets server URL `{url}` must start with https://"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "the secrets server URL `{url}` uses plain http to `{host}`: credentials and secret values would cross the network in clear; use https:// (plain http is accepted only for a loopback address such as http://127.0.0.1:PORT)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_itself() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert!(s.sha256().starts_with("sha256:"));
        let parsed: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(format!("{parsed:?}"), "(sensitive)");
        assert_eq!(parsed.expose(), "hunter2");
    }

    #[test]
    fn secret_keys() {
        for k in [
            "DB_PASSWORD",
            "password",
            "db_password",
            "IMMICH_API_KEY",
            "client_secret",
            "TS_AUTH_TOKEN",
            "ssh-private-key",
            "SECRET_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "SMTP_PASS",
            "JWT_SIGNING_KEY",
            "PGPASSWORD",
            "dbPassword",
            "SENTRY_DSN",
            "GOOGLE_CREDENTIALS",
            "TS_AUTHKEY",
            "smtp.passwd",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "secrets_project",
            "DB_USERNAME",
            "TOKENIZER",
            "PASSWORD_FILE",
            "POSTGRES_PASSWORD_FILE",
            "KEYBOARD",
            "PASSENGER",
            "BYPASS_CACHE",
            "DATABASE_URL",
            "UPLOAD_LOCATION",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn secret_values() {
        for v in [
            "postgres://app:hunter2@db:5432/app",
            "redis://:pw@redis:6379",
            "https://u:p@h/x@y",
        ] {
            assert!(is_secret_value(v), "{v}");
            assert!(is_secret("DATABASE_URL", v), "{v}");
        }
        for v in [
            "postgres://app@db/app",
            "https://h:443/a@b",
            "plain text: x@y",
            "/mnt/immich",
            "",
        ] {
            assert!(!is_secret_value(v), "{v}");
        }
    }

    /// The host-side rule is generated from the same lists and agrees with
    /// the Rust rule, checked by running it under the system `sh`.
    #[test]
    fn https_unless_loopback() {
        for ok in [
            "https://app.infisical.com",
            "http://127.0.0.1:8080",
            "http://localhost:80/",
            "http://[::1]:9/",
            "http://127.0.0.5",
        ] {
            assert!(https_or_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://infisical.example",
            "http://10.0.0.5:8080",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example/",
            "ftp://x",
        ] {
            let e = https_or_loopback(bad).unwrap_err();
            assert!(e.contains("https://"), "{bad}: {e}");
        }
    }

    #[test]
    fn secret_values_in_lines_are_masked() {
        for (line, shown) in [
            (
                "      - POSTGRES_PASSWORD=hunter2",
                "      - POSTGRES_PASSWORD=(sensitive)",
            ),
            (
                "      POSTGRES_PASSWORD: hunter2",
                "      POSTGRES_PASSWORD: (sensitive)",
            ),
            (
                "      \"db_password\": 'hunter2'",
                "      \"db_password\": (sensitive)",
            ),
            (
                "0 3 * * * API_TOKEN=tok123 /opt/backup.sh --quiet",
                "0 3 * * * API_TOKEN=(sensitive) /opt/backup.sh --quiet",
            ),
            (
                "0 3 * * * curl --token=tok123 -H 'Authorization: Bearer tok456' https://x",
                "0 3 * * * curl --token=(sensitive) -H 'Authorization: Bearer (sensitive)' https://x",
            ),
            (
                "@daily /opt/push.sh --password hunter2 --user bob",
                "@daily /opt/push.sh --password (sensitive) --user bob",
            ),
            ("SMTP_PASS=\"two words\"; run", "SMTP_PASS=(sensitive); run"),
            (
                "      DATABASE_URL: postgres://app:hunter2@db/app",
                "      DATABASE_URL: postgres://app:(sensitive)@db/app",
            ),
        ] {
            assert_eq!(mask_line(line), shown, "{line}");
        }
        for plain in [
            "      POSTGRES_PASSWORD: ${DB_PASSWORD}",
            "      - DB_PASSWORD=$DB_PASSWORD",
            "      POSTGRES_PASSWORD_FILE: /run/secrets/db",
            "    image: ghcr.io/immich-app/immich-server:v2.4.1",
            "0 3 * * * /opt/backup.sh --key-file /etc/k > /dev/null 2>&1",
            "      - '2283:2283'",
            "if [ \"$a\" == b ]; then KEYBOARD=us; fi",
            "postgres://app@db/app",
            "-DB_PASSWORD=(value on host)",
            "+DB_PASSWORD=(desired value)",
            "SMTP_PASS=(sensitive, differs)",
            "TOKEN=(value 0123456789abcdef)",
        ] {
            assert_eq!(mask_line(plain), plain);
        }
    }

    /// A value a provider gave is masked wherever it stands, also as a bare
    /// word no rule sees; short values are not remembered.
    #[test]
    fn known_values_are_masked_anywhere() {
        let line = "15 2 * * * mysqldump -pkw7-Qz9x db; echo kw7-Qz9x";
        assert_eq!(mask_line(line), line);
        let s = Secret::new("kw7-Qz9x".into());
        assert_eq!(
            mask_line(line),
            "15 2 * * * mysqldump -p(sensitive) db; echo (sensitive)"
        );
        drop(s);
        assert_eq!(
            mask_lines("a\n  password: hunter2\necho kw7-Qz9x"),
            "a\n  password: (sensitive)\necho (sensitive)"
        );
        let _short = Secret::new("ab1".into());
        assert_eq!(mask_line("x ab1 y"), "x ab1 y");
        let parsed: Secret = serde_json::from_str("\"Zq8-from-json\"").unwrap();
        assert_eq!(mask_line("a Zq8-from-json b"), format!("a {MASKED} b"));
        drop(parsed);
    }

    #[test]
    fn references() {
        let r = Reference::parse("immich/DB_PASSWORD").unwrap();
        assert_eq!(r, Reference::new("immich", "DB_PASSWORD", None));
        assert_eq!(r.to_string(), "immich/DB_PASSWORD");
        let r = Reference::parse("immich:/spine/services/immich/DB_PASSWORD").unwrap();
        assert_eq!(r.path.as_deref(), Some("/spine/services/immich"));
        assert_eq!(r.to_string(), "immich:/spine/services/immich/DB_PASSWORD");
        assert_eq!(
            Reference::parse("immich:/KEY").unwrap().path.as_deref(),
            Some("/")
        );
        for bad in [
            "immich", "/KEY", "immich/", "a/b/c", "p:KEY", ":/x/K", "p:/x/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
