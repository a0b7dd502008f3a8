//! compose: a stack's docker-compose.yml (compared by meaning), its .env
//! (secret values compared by hash, computed on the host so they never
//! travel), and its containers (found by compose labels, so compose v1 and v2
//! both count).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Action, Desired, Kind, Observed, SecretHashes, Verdict, text_diff};
use crate::gather::script::{Section, q};
use crate::render::{RenderCx, RenderError, secret_placeholder};

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

    fn probe(&self, d: &Desired) -> String {
        match d.get("part") {
            "env" => env_probe(d),
            "containers" => format!(
                "sp_missing docker || exit 0\n\
                 ids=$(docker ps -aq --filter label=com.docker.compose.project={} 2>&1) || {{ sp_kv unknown \"docker: $ids\"; exit 0; }}\n\
                 [ -z \"$ids\" ] || docker inspect --format '{{{{index .Config.Labels \"com.docker.compose.service\"}}}} {{{{.Config.Image}}}} {{{{.State.Status}}}} {{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{else}}}}none{{{{end}}}}' $ids | sp_b64 ps",
                q(d.get("project"))
            ),
            _ => format!("sp_file f {}", q(d.path.as_deref().unwrap_or_default())),
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
                Ok(super::Change::new(super::put_file(d, &content)))
            }
            "containers" => Ok(super::Change::new(format!(
                "cd {dir} || exit 1\n\
                 docker compose -p {project} up -d --remove-orphans --wait --wait-timeout \"${{SPINE_WAIT_TIMEOUT:-120}}\" 2>&1\n",
                dir = q(d.get("directory")),
                project = q(d.get("project")),
            ))),
            _ => {
                // The directory is created (and given to the user) only when it
                // does not exist: an existing one, perhaps /etc, is never chowned.
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
                Ok(super::Change::new(format!(
                    "[ -d {dir} ] || install -d -o {o} {dir}\n{}",
                    super::put_file(d, &d.content),
                    o = q(d.owner.as_deref().unwrap_or("root")),
                    dir = q(dir)
                )))
            }
        }
    }
}

/// Read .env; values of secret keys are replaced on the host by their SHA-256.
fn env_probe(d: &Desired) -> String {
    let path = q(d.path.as_deref().unwrap_or_default());
    let declared: Vec<String> = d.secrets.iter().map(|k| q(k)).collect();
    let declared_case = if declared.is_empty() {
        String::new()
    } else {
        format!("{}) sp_hash ;;\n", declared.join("|"))
    };
    // The secret-key rule, generated from the Rust one (crate::secrets).
    let rule = crate::secrets::shell_rule();
    format!(
        "{rule}sp_hash() {{ printf '%s=sha256:%s\\n' \"$k\" \"$(printf '%s' \"${{l#*=}}\" | sha256sum | cut -d' ' -f1)\"; }}\n\
         f={path}\n\
         if [ ! -e \"$f\" ]; then sp_kv f.exists 0; exit 0; fi\n\
         sp_kv f.exists 1; sp_kv f.mode \"$(stat -c %a \"$f\")\"; sp_kv f.owner \"$(stat -c %U \"$f\")\"\n\
         [ -r \"$f\" ] || {{ sp_kv f.error \"permission denied reading $f\"; exit 0; }}\n\
         while IFS= read -r l || [ -n \"$l\" ]; do\n\
           k=${{l%%=*}}\n\
           case \"$k\" in\n\
             \\#*|'') printf '%s\\n' \"$l\" ;;\n\
             {declared_case}\
             *) if sp_is_secret \"$k\" \"${{l#*=}}\"; then sp_hash; else printf '%s\\n' \"$l\"; fi ;;\n\
           esac\n\
         done < \"$f\" | sp_b64 f.content"
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
        } else if crate::secrets::is_secret(&k, &v) {
            MATCHES.to_string()
        } else {
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
