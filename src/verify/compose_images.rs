//! V17's look at the images of an operator's compose file: each must be
//! pinned by V11's rule ([`gates::unpinned`]). A moving tag here is a
//! **warning**, at the image's own line and column in the compose file: the
//! file is the operator's and often runs as it is (`spine import` copies
//! what runs), so a gate that turned red on adoption would be switched off;
//! `spine verify --strict` makes it fail. An image compose fills in from
//! variables is read with the stack's `compose.env` (what spine writes to
//! `.env`) and the defaults written in the file; one that cannot be filled
//! in is a warning too (could not check is never a pass).

use serde_json::Value;

use super::gates;
use crate::diag::{Diag, Severity};
use crate::model::Compose;
use crate::source::SourceFile;
use crate::source::yaml::Node;

/// Warnings for the unpinned images of the compose file `src` (parsed as
/// `tree`, already checked to hold a `services:` mapping) of stack compose
/// section `c`.
pub fn warnings(id: &'static str, c: &Compose, src: &SourceFile, tree: &Node) -> Vec<Diag> {
    let services = tree
        .as_map()
        .and_then(|m| m.iter().find(|e| e.key == "services"))
        .and_then(|s| s.value.as_map())
        .unwrap_or_default();
    let mut out = Vec::new();
    for e in services {
        let image = e
            .value
            .as_map()
            .and_then(|m| m.iter().find(|f| f.key == "image"))
            .and_then(|f| Some((f.value.to_json().as_str()?.to_string(), f.value.span)));
        let Some((image, span)) = image else { continue };
        let Some((message, help, label)) = problem(&e.key, &image, &|k| env_value(c, k)) else {
            continue;
        };
        let mut d = Diag::at_span(id, src, span, message, label, help);
        d.severity = Severity::Warning;
        out.push(d);
    }
    out
}

/// What is wrong with the image `image` of compose service `service`, and
/// the help and the label: `None` when it is pinned.
fn problem(
    service: &str,
    image: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, String, &'static str)> {
    let help = format!(
        "{}: write it in the compose file (`spine import` names the digest running now). Only a warning: `spine verify --strict` fails on it",
        gates::PIN_HELP
    );
    match interpolate(image, env) {
        Ok(full) => {
            let why = gates::unpinned(&full)?;
            let with_env = if full == image {
                String::new()
            } else {
                format!(
                    " (`{image}` filled in from the stack's compose.env and the file's defaults)"
                )
            };
            Some((
                format!("compose service `{service}`: {why}{with_env}"),
                help,
                "not pinned",
            ))
        }
        Err(var) => Some((
            format!(
                "compose service `{service}`: image `{image}` is filled in from `{var}`, which the stack's compose.env does not give: whether it is pinned cannot be told"
            ),
            format!(
                "give `{var}` under the stack's compose.env (spine writes it to .env), or write the image with its version in the compose file; {}",
                gates::PIN_HELP
            ),
            "cannot tell",
        )),
    }
}

/// A plain value of the stack's `compose.env` as `.env` holds it.
fn env_value(c: &Compose, key: &str) -> Option<String> {
    match c.env.get(key)? {
        Value::String(s) => Some(s.clone()),
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

/// `text` with compose's interpolation filled in from `env`: `$$`, `$VAR`,
/// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
/// `${VAR+alt}`, `${VAR:?error}`, `${VAR?error}` (defaults may hold
/// variables again). `Err(VAR)`: a variable `env` does not give that has no
/// default to fall back on.
fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).ok_or_else(|| format!("${{{inner}"))?;
            out.push_str(&braced(&inner[..end], env)?);
            rest = &inner[end + 1..];
        } else {
            let n = name_len(after);
            if n == 0 {
                out.push('$');
            } else {
                let name = &after[..n];
                out.push_str(&env(name).ok_or_else(|| name.to_string())?);
            }
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, counting nested braces.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 1;
    for (j, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn name_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// The inside of one `${...}`.
fn braced(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, op) = inner.split_at(name_len(inner));
    let value = env(name);
    let set = value.is_some();
    let filled = value.as_deref().is_some_and(|v| !v.is_empty());
    let missing = || name.to_string();
    if op.is_empty() {
        return value.ok_or_else(missing);
    }
    for (sign, need) in [(":-", filled), ("-", set)] {
        if let Some(default) = op.strip_prefix(sign) {
            return match value {
                Some(v) if need => Ok(v),
                _ => interpolate(default, env),
            };
        }
    }
    for (sign, need) in [(":+", filled), ("+", set)] {
        if let Some(alt) = op.strip_prefix(sign) {
            return if need {
                interpolate(alt, env)
            } else {
                Ok(String::new())
            };
        }
    }
    for (sign, need) in [(":?", filled), ("?", set)] {
        if op.starts_with(sign) {
            return value.filter(|_| need).ok_or_else(missing);
        }
    }
    Err(missing())
}

#[cfg(test)]
mod tests {
    use super::{interpolate, problem};

    fn env(k: &str) -> Option<String> {
        match k {
            "TAG" => Some("1.27".into()),
            "EMPTY" => Some(String::new()),
            "LATEST" => Some("latest".into()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_follows_compose() {
        let i = |t: &str| interpolate(t, &env);
        assert_eq!(i("nginx:${TAG}").unwrap(), "nginx:1.27");
        assert_eq!(i("nginx:$TAG").unwrap(), "nginx:1.27");
        assert_eq!(i("a$$b").unwrap(), "a$b");
        assert_eq!(i("nginx:${NOPE:-1.2}").unwrap(), "nginx:1.2");
        assert_eq!(i("nginx:${EMPTY:-1.2}").unwrap(), "nginx:1.2");
        assert_eq!(i("nginx${EMPTY-:1.2}").unwrap(), "nginx");
        assert_eq!(i("nginx:${NOPE:-${TAG}}").unwrap(), "nginx:1.27");
        assert_eq!(i("nginx${TAG:+:x}").unwrap(), "nginx:x");
        assert_eq!(i("nginx${NOPE+:x}").unwrap(), "nginx");
        assert_eq!(i("nginx:${NOPE}"), Err("NOPE".into()));
        assert_eq!(i("nginx:${NOPE:?must be set}"), Err("NOPE".into()));
        assert_eq!(i("nginx:${EMPTY:?must be set}"), Err("EMPTY".into()));
        assert_eq!(i("nginx:${EMPTY?must be set}").unwrap(), "nginx:");
        assert!(i("nginx:${TAG").is_err());
    }

    #[test]
    fn images_by_v11s_rule() {
        let p = |i: &str| problem("web", i, &env).map(|(m, _, _)| m);
        assert_eq!(p("nginx:1.27"), None);
        assert_eq!(p("nginx:${TAG}"), None);
        assert_eq!(p("nginx@sha256:ab"), None);
        assert_eq!(
            p("nginx").as_deref(),
            Some("compose service `web`: image `nginx` has no tag, so it means `latest`")
        );
        assert_eq!(
            p("nginx:${LATEST}").as_deref(),
            Some(
                "compose service `web`: image `nginx:latest` uses the moving tag `latest` (`nginx:${LATEST}` filled in from the stack's compose.env and the file's defaults)"
            )
        );
        assert!(
            p("${IMAGE}")
                .unwrap()
                .contains("filled in from `IMAGE`, which the stack's compose.env does not give")
        );
    }
}
