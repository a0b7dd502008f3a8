//! V13: secret-looking keys hold references, never values.
//!
//! Findings here never show the offending line: it holds the secret.

use serde_json::Value;

use super::stack;
use crate::diag::{FileKind, Finding, Place, pointer};
use crate::secrets::is_secret_key;
use crate::verify::{Ctx, Gate};

pub const REFERENCES_ONLY: Gate = Gate {
    id: "V13",
    name: "secrets are references, not values",
    help: "Keys that name a secret (a word SECRET, PASS, PASSWD, PASSWORD, TOKEN, KEY, CREDENTIAL, DSN..., any case) and URLs with a password (`scheme://user:pass@host`) are references (`secrets:` entry with project and key), never literal values; no `env` value holds a `<<spine-secret:…>>` placeholder.",
    subject: "entries that could hold a secret",
    run: references_only,
};

fn literal(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty() && !s.starts_with("${"),
        Value::Number(_) => true,
        _ => false,
    }
}

fn references_only(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    // Plain .env values under a secret-looking name.
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(c) = st.desired.as_ref().and_then(|d| d.compose.as_ref()) else {
            continue;
        };
        for (key, v) in &c.env {
            *n += 1;
            let text = v.as_str().unwrap_or_default();
            if text.contains(crate::secrets::PLACEHOLDER_PREFIX) {
                out.push(redacted(
                    Finding::error("V13", stack(i, &["desired", "compose", "env", key]), format!("`{key}` in `env` holds a secret placeholder (`<<spine-secret:…>>`): apply would write a secret's value into it"))
                        .help(format!("secret values come only from `compose.secrets`: declare `{key}` there as `{{project: <infisical project>, key: <secret name>}}`, or give `env` a plain value")),
                ));
            } else if (is_secret_key(key) && literal(v)) || crate::secrets::is_secret_value(text) {
                out.push(redacted(
                    Finding::error("V13", stack(i, &["desired", "compose", "env", key]), format!("`{key}` holds a literal secret value in `env`"))
                        .help(format!("move it to `compose.secrets` as `{key}: {{project: <infisical project>, key: {key}}}` and store the value in Infisical")),
                ));
            }
        }
    }
    // Anywhere in the operator's own sections.
    for (id, s) in &ctx.services.services {
        *n += 1;
        for (key, v) in &s.other {
            let by_value = v.as_str().is_some_and(crate::secrets::is_secret_value);
            if (is_secret_key(key) && literal(v)) || by_value {
                out.push(redacted(
                    Finding::error("V13", Place::value(FileKind::Services, pointer(["services", id, key])), format!(
                        "service `{id}` holds a literal value for the secret `{key}`"
                    ))
                    .help("store the value in Infisical (the service's `secrets_project`) and remove it from the registry"),
                ));
            }
        }
    }
    out
}

/// Mark a finding so its source line (which holds the secret) is not shown.
fn redacted(f: Finding) -> Finding {
    f.label(crate::diag::REDACTED_LABEL)
}
