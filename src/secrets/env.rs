//! The environment provider: `PROJECT/KEY` is read from
//! `SPINE_SECRET_<PROJECT>_<KEY>` (upper case, other characters as `_`). A
//! folder path in the reference does not change the name.

use super::{Provider, Reference, Secret};

pub struct EnvProvider;

impl EnvProvider {
    pub fn var_name(reference: &str) -> String {
        let flat = match Reference::parse(reference) {
            Ok(r) => format!("{}_{}", r.project, r.key),
            Err(_) => reference.to_string(),
        };
        let flat: String = flat
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

#[cfg(test)]
mod tests {
    use super::EnvProvider;

    #[test]
    fn env_names() {
        assert_eq!(
            EnvProvider::var_name("immich/DB_PASSWORD"),
            "SPINE_SECRET_IMMICH_DB_PASSWORD"
        );
        assert_eq!(
            EnvProvider::var_name("immich:/spine/services/immich/DB_PASSWORD"),
            "SPINE_SECRET_IMMICH_DB_PASSWORD"
        );
        assert_eq!(
            EnvProvider::var_name("my-app/api.key"),
            "SPINE_SECRET_MY_APP_API_KEY"
        );
    }
}
