//! A stack's .env. The read script hashes every value on the host, so no
//! value ever travels: a declared secret is compared with the hash of its
//! value from the secrets provider, any other value with the hash of the
//! desired one. Diffs show key names only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Absent, Exists};
use crate::gather::script::Section;
use crate::kinds::{self, Desired, KindError, SecretHashes, Verdict};
use crate::render::secret_placeholder;
use crate::secrets::Reference;
use crate::shell::{self, Script, ScriptError};

/// A .env that is there, each value as plans may keep it: [`MATCHES`] or
/// [`DIFFERS`] for a secret, `(value HASH16)` for any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub exists: Exists<true>,
    pub mode: String,
    pub owner: String,
    pub vars: Vec<(String, String)>,
}

const MATCHES: &str = "(sensitive)";
const DIFFERS: &str = "(sensitive, differs)";

pub fn read_script(d: &Desired) -> Result<Script, ScriptError> {
    shell::render(
        "kinds/compose/env-read.sh",
        minijinja::context! {
            path => d.path.as_deref().unwrap_or_default(),
            secrets => d.secrets.clone(),
            ..crate::secrets::rule_context()
        },
    )
}

fn env_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A plain `.env` value as plans keep it: compared by hash, never as text
/// (a value not secret by name may still be one).
fn fingerprint(v: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "(value {})",
        &hex::encode(Sha256::digest(v.as_bytes()))[..16]
    )
}

/// The file as read, its values as the read script hashed them.
pub fn observe(
    refs: &BTreeMap<String, Reference>,
    s: &Section,
    secrets: &dyn SecretHashes,
) -> Result<super::Facts, String> {
    let Some((text, mode, owner)) = kinds::file::observed(s, "f")? else {
        return Ok(super::Facts::Absent(Absent { exists: Exists }));
    };
    let vars = env_vars(&text)
        .into_iter()
        .map(|(k, v)| Ok((k.clone(), shown(refs, &k, &v, secrets)?)))
        .collect::<Result<_, String>>()?;
    Ok(super::Facts::Env(Facts {
        exists: Exists,
        mode,
        owner,
        vars,
    }))
}

/// One hashed value from the host as plans keep it.
fn shown(
    refs: &BTreeMap<String, Reference>,
    k: &str,
    v: &str,
    secrets: &dyn SecretHashes,
) -> Result<String, String> {
    if let Some(hash) = v.strip_prefix("sha256:") {
        let Some(reference) = refs.get(k) else {
            // A secret-looking key the registry does not declare: keep it
            // unseen, it is not ours to compare.
            return Ok(MATCHES.to_string());
        };
        let want = secrets
            .hash(reference)
            .map_err(|e| format!("cannot compare secret `{k}`: {e}"))?;
        let same = want == format!("sha256:{hash}");
        return Ok(if same { MATCHES } else { DIFFERS }.to_string());
    }
    Ok(
        match v.strip_prefix("plain-sha256:").filter(|h| h.len() >= 16) {
            // Hashed on the host like every value; compared with the desired
            // value's hash.
            Some(hash) => format!("(value {})", &hash[..16]),
            // The reader hashes every value; anything else is still never kept
            // as text.
            None => fingerprint(v),
        },
    )
}

/// The file against `d`'s content, key by key; `None`: not there.
pub fn compare(d: &Desired, actual: Option<&Facts>) -> Verdict {
    let name = d.path.as_deref().unwrap_or(&d.id);
    let want = wanted(d);
    let have = actual.map(|f| f.vars.as_slice()).unwrap_or_default();
    let want_text = names_only(&want, have, "(desired value)");
    let Some(actual) = actual else {
        let reasons = [format!("{name} does not exist")];
        return kinds::drift(true, &reasons, name, "", &want_text);
    };
    let mut reasons = differences(have, &want);
    kinds::file::attrs_differ(d, &actual.mode, &actual.owner, &mut reasons);
    if reasons.is_empty() {
        return Verdict::InSync;
    }
    let have_text = names_only(have, &want, "(value on host)");
    kinds::drift(false, &reasons, name, &have_text, &want_text)
}

/// The desired pairs as the observed ones are kept: a secret as
/// [`MATCHES`], any other value as its fingerprint.
fn wanted(d: &Desired) -> Vec<(String, String)> {
    env_vars(&d.content)
        .into_iter()
        .map(|(k, v)| {
            let shown = if v == secret_placeholder(&k) {
                MATCHES.to_string()
            } else {
                fingerprint(&v)
            };
            (k, shown)
        })
        .collect()
}

/// Why the pairs on the host are not the desired ones, key by key.
fn differences(have: &[(String, String)], want: &[(String, String)]) -> Vec<String> {
    let mut hm: BTreeMap<_, _> = have.iter().cloned().collect();
    let wm: BTreeMap<_, _> = want.iter().cloned().collect();
    let mut reasons = Vec::new();
    for (k, v) in &wm {
        match hm.remove(k) {
            None => reasons.push(format!("{k} missing")),
            Some(h) if h != *v => reasons.push(if h == DIFFERS {
                format!("{k} (sensitive) differs")
            } else {
                format!("{k} differs")
            }),
            Some(_) => {}
        }
    }
    for k in hm.keys() {
        reasons.push(format!("{k} not in the registry"));
    }
    reasons
}

/// One side of a `.env` diff with key names only: no value is ever shown
/// (a value that is not secret by name may still be one), just whether it
/// agrees with the other side.
fn names_only(side: &[(String, String)], other: &[(String, String)], label: &str) -> String {
    side.iter()
        .map(|(k, v)| {
            let same = other.iter().any(|(ok, ov)| ok == k && ov == v);
            format!("{k}={}\n", if same { "(unchanged)" } else { label })
        })
        .collect()
}

/// Write the file with each secret's value filled in from `secrets`.
pub fn apply(
    d: &Desired,
    refs: &BTreeMap<String, Reference>,
    secrets: &dyn crate::secrets::Provider,
) -> Result<Script, KindError> {
    let mut content = d.content.clone();
    for key in &d.secrets {
        let secret = |why: String| KindError::Secret {
            key: key.clone(),
            why,
        };
        let reference = refs
            .get(key)
            .ok_or_else(|| secret("the resource has no reference for it".into()))?;
        let value = secrets.fetch(&reference.to_string()).map_err(secret)?;
        content = content.replace(&secret_placeholder(key), value.expose());
    }
    Ok(kinds::file::put(d, &content)?)
}

#[cfg(test)]
mod secret_rule_tests {
    /// The host-side rule (`scripts/lib/secret-rule.sh`, rendered from the
    /// lists of `crate::secrets`) and the Rust rule agree on every case.
    #[test]
    fn shell_rule_agrees() {
        let cases = [
            ("DB_PASSWORD", "x"),
            ("db_password", "x"),
            ("PGPASSWORD", "x"),
            ("SMTP_PASS", "x"),
            ("SECRET_KEY", "x"),
            ("JWT_SIGNING_KEY", "x"),
            ("SENTRY_DSN", "x"),
            ("ssh-private-key", "x"),
            ("smtp.passwd", "x"),
            ("POSTGRES_PASSWORD_FILE", "/run/secrets/x"),
            ("TOKENIZER", "x"),
            ("secrets_project", "x"),
            ("KEYBOARD", "x"),
            ("DB_USERNAME", "postgres"),
            ("A__KEY", "x"),
            ("PASSWORD_FILE_", "x"),
            ("DATABASE_URL", "postgres://app:hunter2@db/app"),
            ("DATABASE_URL", "postgres://app@db/app"),
            ("LINK", "https://h:443/a@b"),
            ("LINK", "https://u:p@h/x@y"),
        ];
        // The rule as the host gets it: the real script file, rendered.
        let mut script = crate::shell::render("lib/secret-rule.sh", crate::secrets::rule_context())
            .unwrap()
            .as_str()
            .to_string();
        for (k, v) in &cases {
            script.push_str(&format!(
                "if sp_is_secret {} {}; then echo yes; else echo no; fi\n",
                crate::shell::quote(k),
                crate::shell::quote(v)
            ));
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let want: Vec<String> = cases
            .iter()
            .map(|(k, v)| {
                if crate::secrets::is_secret(k, v) {
                    "yes"
                } else {
                    "no"
                }
                .to_string()
            })
            .collect();
        assert_eq!(got, want, "{cases:?}");
        assert!(want.contains(&"yes".to_string()) && want.contains(&"no".to_string()));
    }
}
