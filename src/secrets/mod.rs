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
        String::deserialize(d).map(Secret)
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
/// project's. Written `PROJECT/KEY`, or `PROJECT:/PATH/KEY` with a path.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Key words that make a key secret (REFERENCE.md: PASSWORD, TOKEN, API_KEY, SECRET).
const WORDS: [&str; 7] = [
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "SECRET",
    "PRIVATE_KEY",
];

/// Whether a key names a secret (`DB_PASSWORD`, `client_secret`; not `secrets_project`).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase().replace('-', "_");
    WORDS
        .iter()
        .any(|w| k == *w || k.ends_with(&format!("_{w}")))
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
