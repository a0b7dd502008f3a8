//! Secret values: fetched only when needed (hashing at plan time, filling in
//! at apply time), held in memory, never printed. A [`Secret`] formats as
//! `(sensitive)` everywhere.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::kinds::{Desired, SecretHashes};

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

/// Where secret values come from.
pub trait Provider: Send + Sync {
    /// `reference` is `PROJECT/KEY` as the registry names it.
    fn fetch(&self, reference: &str) -> Result<Secret, String>;
}

/// Secrets from the environment: `PROJECT/KEY` is read from
/// `SPINE_SECRET_<PROJECT>_<KEY>` (upper case, other characters as `_`).
pub struct EnvProvider;

impl EnvProvider {
    pub fn var_name(reference: &str) -> String {
        let flat: String = reference
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("SPINE_SECRET_{flat}")
    }
}

impl Provider for EnvProvider {
    fn fetch(&self, reference: &str) -> Result<Secret, String> {
        let var = Self::var_name(reference);
        match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(format!(
                "secret {reference} is not available: set {var} (environment provider)"
            )),
        }
    }
}

/// Hashes for comparing, from a provider.
pub struct ProviderHashes<'a>(pub &'a dyn Provider);

impl SecretHashes for ProviderHashes<'_> {
    fn hash(&self, d: &Desired, key: &str) -> Result<String, String> {
        let reference = d
            .args
            .get(&format!("secret.{key}"))
            .ok_or_else(|| format!("`{key}` has no secret reference"))?;
        self.0.fetch(reference).map(|s| s.sha256())
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
    }

    #[test]
    fn env_names() {
        assert_eq!(
            EnvProvider::var_name("immich/DB_PASSWORD"),
            "SPINE_SECRET_IMMICH_DB_PASSWORD"
        );
    }
}
