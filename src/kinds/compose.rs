//! compose: a stack's docker-compose.yml (compared by meaning), its .env
//! (secret values compared by hash, computed on the host so they never
//! travel), and its containers (found by compose labels, so compose v1 and v2
//! both count).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Action, Desired, Kind, Observed, SecretHashes, Verdict, text_diff};
use crate::gather::script::Section;
use crate::render::{RenderCx, RenderError, secret_placeholder};
use crate::shell::{self, Script, ScriptError};

pub struct ComposeKind;

impl Kind for ComposeKind {
    fn name(&self) -> &'static str {
        "compose"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        let user = cx.ssh_user();
        let mut out = Vec::new();
        for st in &cx.stacks.stacks {
            let Some(d) = st.desired.as_ref().filter(|d| d.host == cx.host_id) else {
                continue;
            };
            let Some(c) = &d.compose else { continue };
            let template = format!("compose/{}.yml.j2", c.template);
            if !cx.templates.has(&template) {
                return Err(RenderError::Template {
                    name: template,
                    line: 0,
                    message: format!("stack `{}` names compose template `{}`, which does not exist", st.stack_id, c.template),
                    help: "add the template under templates/compose/ or fix `desired.compose.template`".into(),
                });
            }
            let ctx = minijinja::context! {
                stack => minijinja::context! { id => &st.stack_id },
                compose => minijinja::value::Serde(c),
            };
            let dir = c.directory.trim_end_matches('/');
            let compose = cx.templates.render(&template, ctx.clone())?;
            let env = cx.templates.render("compose/env.j2", ctx)?;
            let services: Vec<String> = c
                .services
                .iter()
                .map(|(name, s)| format!("{name} {}", s.image))
                .collect();
            let base = |d: Desired| {
                d.arg("project", &c.project)
                    .arg("directory", dir)
                    .arg("stack", &st.stack_id)
            };
            out.push(base(
                Desired::new(
                    self,
                    format!("compose:{dir}/docker-compose.yml"),
                    cx.host_id,
                    cx.host_id,
                    compose,
                )
                .file(&format!("{dir}/docker-compose.yml"), 0o644, &user)
                .arg("part", "file"),
            ));
            let mut env_d = base(
                Desired::new(
                    self,
                    format!("compose:{dir}/.env"),
                    cx.host_id,
                    cx.host_id,
                    env,
                )
                .file(&format!("{dir}/.env"), 0o600, &user)
                .arg("part", "env"),
            );
            env_d.secrets = c.secrets.keys().cloned().collect();
            for (key, r) in &c.secrets {
                env_d = env_d.arg(
                    &format!("secret.{key}"),
                    crate::secrets::Reference::new(&r.project, &r.key, r.path.as_deref())
                        .to_string(),
                );
            }
            out.push(env_d);
            out.push(base(
                Desired::new(
                    self,
                    format!("compose:{}/containers", c.project),
                    cx.host_id,
                    cx.host_id,
                    services.join("\n") + "\n",
                )
                .arg("part", "containers"),
            ));
        }
        Ok(out)
    }

    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError> {
        match d.get("part") {
            "env" => shell::render(
                "kinds/compose/env-read.sh",
                minijinja::context! {
                    path => d.path.as_deref().unwrap_or_default(),
                    secrets => d.secrets.clone(),
                    ..crate::secrets::rule_context()
                },
            ),
            "containers" => shell::render(
                "kinds/compose/containers-read.sh",
                minijinja::context! { project => d.get("project") },
            ),
            _ => super::read_file_script(d),
        }
    }

    fn observe(&self, d: &Desired, s: &Section, secrets: &dyn SecretHashes) -> Observed {
        match d.get("part") {
            "env" => observe_env(d, s, secrets),
            "containers" => {
                if let Some(u) = s.get("unknown") {
                    return Err(u.to_string());
                }
                let mut services = BTreeMap::new();
                for line in s.get("ps").unwrap_or_default().lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if let [service, image, state, health] = f[..] {
                        services.insert(
                            service.to_string(),
                            json!({"image": image, "state": state, "health": health}),
                        );
                    }
                }
                Ok(json!({ "services": services }))
            }
            _ => super::observe_yaml_file(s),
        }
    }

    fn compare(&self, d: &Desired, actual: &Value) -> Verdict {
        match d.get("part") {
            "env" => compare_env(d, actual),
            "containers" => compare_containers(d, actual),
            _ => super::compare_yaml_file(d, actual),
        }
    }

    fn apply(
        &self,
        d: &Desired,
        _: &Value,
        secrets: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        match d.get("part") {
            "env" => {
                let mut content = d.content.clone();
                for key in &d.secrets {
                    let reference = d
                        .args
                        .get(&format!("secret.{key}"))
                        .ok_or_else(|| format!("`{key}` has no secret reference"))?;
                    let value = secrets.fetch(reference)?;
                    content = content.replace(&secret_placeholder(key), value.expose());
                }
                Ok(super::Change::new(super::put_file(d, &content)?))
            }
            "containers" => Ok(super::Change::new(shell::render(
                "kinds/compose/up.sh",
                minijinja::context! {
                    directory => d.get("directory"),
                    project => d.get("project"),
                },
            )?)),
            _ => {
                // The directory is created (and given to the user) only when
                // it does not exist: an existing one, perhaps /etc, is never
                // chowned; a system or odd directory is refused outright.
                let dir = d.get("directory");
                if let Some(why) = crate::safe::path_problem(dir) {
                    return Err(format!(
                        "compose directory `{}` {why}: refused",
                        crate::safe::shown(dir)
                    ));
                }
                if crate::safe::system_dir(dir) {
                    return Err(format!(
                        "compose directory `{dir}` is a system directory: refused (spine verify gate V16)"
                    ));
                }
                let ctx = super::file_context(d, &d.content);
                let ctx = minijinja::context! { directory => d.get("directory"), ..ctx };
                Ok(super::Change::new(shell::render(
                    "kinds/compose/file-apply.sh",
                    ctx,
                )?))
            }
        }
    }
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

const MATCHES: &str = "(sensitive)";
const DIFFERS: &str = "(sensitive, differs)";

fn observe_env(d: &Desired, s: &Section, secrets: &dyn SecretHashes) -> Observed {
    let Some((text, mode, owner)) = super::observed_file(s, "f")? else {
        return Ok(json!({ "exists": false }));
    };
    let mut vars = Vec::new();
    for (k, v) in env_vars(&text) {
        let shown = if let Some(hash) = v.strip_prefix("sha256:") {
            if d.secrets.contains(&k) {
                let want = secrets
                    .hash(d, &k)
                    .map_err(|e| format!("cannot compare secret `{k}`: {e}"))?;
                if want == format!("sha256:{hash}") {
                    MATCHES
                } else {
                    DIFFERS
                }
                .to_string()
            } else {
                // A secret-looking key the registry does not declare: keep it
                // unseen, it is not ours to compare.
                MATCHES.to_string()
            }
        } else if let Some(hash) = v.strip_prefix("plain-sha256:").filter(|h| h.len() >= 16) {
            // Hashed on the host like every value; compared with the desired
            // value's hash.
            format!("(value {})", &hash[..16])
        } else {
            // The reader hashes every value; anything else is still never
            // kept as text.
            fingerprint(&v)
        };
        vars.push(json!([k, shown]));
    }
    Ok(json!({ "exists": true, "mode": mode, "owner": owner, "vars": vars }))
}

fn compare_env(d: &Desired, actual: &Value) -> Verdict {
    let name = d.path.as_deref().unwrap_or(&d.id);
    let want: Vec<(String, String)> = env_vars(&d.content)
        .into_iter()
        .map(|(k, v)| {
            if v == secret_placeholder(&k) {
                (k, MATCHES.to_string())
            } else {
                let f = fingerprint(&v);
                (k, f)
            }
        })
        .collect();
    let want_text = names_only(&want, &have_of(actual), "(desired value)");
    if actual["exists"] != Value::Bool(true) {
        return Verdict::Drift {
            action: Action::Create,
            reason: format!("{name} does not exist"),
            diff: text_diff(name, "", &want_text),
        };
    }
    let have = have_of(actual);
    let have_text = names_only(&have, &want, "(value on host)");
    let (mut hm, wm): (BTreeMap<_, _>, BTreeMap<_, _>) = (
        have.iter().cloned().collect(),
        want.iter().cloned().collect(),
    );
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
    super::file_attrs(d, actual, &mut reasons);
    if reasons.is_empty() {
        return Verdict::InSync;
    }
    Verdict::Drift {
        action: Action::Change,
        reason: reasons.join("; "),
        diff: text_diff(name, &have_text, &want_text),
    }
}

/// The observed `.env` pairs (secret values already masked).
fn have_of(actual: &Value) -> Vec<(String, String)> {
    actual["vars"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or_default().to_string(),
                        p[1].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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

fn compare_containers(d: &Desired, actual: &Value) -> Verdict {
    let mut reasons = Vec::new();
    let mut have_lines = String::new();
    let mut want_lines = String::new();
    let services = actual["services"].as_object().cloned().unwrap_or_default();
    for (name, svc) in &services {
        have_lines.push_str(&format!(
            "{name} {} {} {}\n",
            svc["image"].as_str().unwrap_or("?"),
            svc["state"].as_str().unwrap_or("?"),
            svc["health"].as_str().unwrap_or("?")
        ));
    }
    let mut wanted = Vec::new();
    for line in d.content.lines() {
        let Some((name, image)) = line.split_once(' ') else {
            continue;
        };
        wanted.push(name.to_string());
        let have = services.get(name);
        let health = have
            .and_then(|s| s["health"].as_str())
            .filter(|h| *h != "unhealthy")
            .unwrap_or("healthy");
        let health = if have.and_then(|s| s["health"].as_str()) == Some("none") {
            "none"
        } else {
            health
        };
        want_lines.push_str(&format!("{name} {image} running {health}\n"));
        match have {
            None => reasons.push(format!("{name} is not there")),
            Some(s) => {
                if s["image"].as_str() != Some(image) {
                    reasons.push(format!(
                        "{name} runs {}, should run {image}",
                        s["image"].as_str().unwrap_or("?")
                    ));
                }
                if s["state"].as_str() != Some("running") {
                    reasons.push(format!("{name} is {}", s["state"].as_str().unwrap_or("?")));
                }
                if s["health"].as_str() == Some("unhealthy") {
                    reasons.push(format!("{name} is unhealthy"));
                }
            }
        }
    }
    let mut sorted = want_lines.lines().collect::<Vec<_>>();
    sorted.sort();
    let want_sorted = sorted.join("\n") + "\n";
    for name in services.keys().filter(|n| !wanted.contains(n)) {
        reasons.push(format!("{name} is not in the registry"));
    }
    if reasons.is_empty() {
        return Verdict::InSync;
    }
    super::drift(
        services.is_empty(),
        &reasons,
        &format!("containers of compose project {}", d.get("project")),
        &have_lines,
        &want_sorted,
    )
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
