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
            let ctx = minijinja::context! {
                stack => minijinja::context! { id => &st.stack_id },
                compose => minijinja::value::Serde(c),
            };
            let dir = c.directory.trim_end_matches('/');
            let compose = compose_text(cx, &st.stack_id, c, ctx.clone())?;
            let env = cx.templates.render("compose/env.j2", ctx)?;
            let stack_services = c.stack_services();
            let extra = extra_containers(self, cx.host_id, c, &stack_services, &compose);
            // One line per service: `NAME IMAGE`, or `NAME` alone when the
            // image is not compared (compose resolves it from variables).
            let services: Vec<String> = stack_services
                .iter()
                .map(|s| match &s.image {
                    Some(image) => format!("{} {image}", s.name),
                    None => s.name.clone(),
                })
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
            out.push(base(extra));
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
            "extra" => shell::render("kinds/compose/extra-read.sh", minijinja::context! {}),
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
            "extra" => observe_extra(d, s),
            _ => super::observe_yaml_file(s),
        }
    }

    fn compare(&self, d: &Desired, actual: &Value) -> Verdict {
        match d.get("part") {
            "env" => compare_env(d, actual),
            "containers" => compare_containers(d, actual),
            "extra" => compare_extra(d, actual),
            _ => super::compare_yaml_file(d, actual),
        }
    }

    fn apply(
        &self,
        d: &Desired,
        actual: &Value,
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
            "extra" => Ok(super::Change::new(remove_extra(actual)?)),
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

/// The desired docker-compose.yml: the template rendered, or the operator's
/// own file verbatim.
fn compose_text(
    cx: &RenderCx,
    stack: &str,
    c: &crate::model::Compose,
    ctx: minijinja::Value,
) -> Result<String, RenderError> {
    if let Some(file) = &c.file {
        return match &c.loaded {
            Some(f) => Ok(f.text.to_string()),
            None => Err(RenderError::Template {
                name: file.clone(),
                line: 0,
                message: format!(
                    "stack `{stack}` names compose file `{}`, which was not read",
                    crate::safe::shown(file)
                ),
                help: "run `spine verify`: gate V17 says why the file cannot be used".into(),
            }),
        };
    }
    let name = c.template.as_deref().unwrap_or_default();
    let template = format!("compose/{name}.yml.j2");
    if !cx.templates.has(&template) {
        return Err(RenderError::Template {
            name: template,
            line: 0,
            message: format!(
                "stack `{stack}` names compose template `{name}`, which does not exist"
            ),
            help: "add the template under templates/compose/ or fix `desired.compose.template`"
                .into(),
        });
    }
    cx.templates.render(&template, ctx)
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
    for line in d.content.lines().filter(|l| !l.is_empty()) {
        // `NAME IMAGE`, or `NAME` alone: its image is whatever compose
        // resolves (not compared).
        let (name, image) = match line.split_once(' ') {
            Some((n, i)) => (n, Some(i)),
            None => (line, None),
        };
        wanted.push(name.to_string());
        let have = services.get(name);
        let shown_image = image
            .or_else(|| have.and_then(|s| s["image"].as_str()))
            .unwrap_or("(image as compose resolves it)");
        let health = have
            .and_then(|s| s["health"].as_str())
            .filter(|h| *h != "unhealthy")
            .unwrap_or("healthy");
        let health = if have.and_then(|s| s["health"].as_str()) == Some("none") {
            "none"
        } else {
            health
        };
        want_lines.push_str(&format!("{name} {shown_image} running {health}\n"));
        match have {
            None => reasons.push(format!("{name} is not there")),
            Some(s) => {
                if let Some(image) = image.filter(|i| s["image"].as_str() != Some(i)) {
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
    // Containers no desired service names are the `extra` resource's
    // (planned for removal there), not a change here.
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

/// Containers the stack knows by name as left over from an older layout of
/// its template (Immich v1's web and microservices containers): wherever
/// they run, they are the stack's and must go.
const LEGACY_CONTAINERS: &[(&str, &[&str])] =
    &[("immich", &["immich_web", "immich_microservices"])];

/// The resource "nothing extra in the stack": no container of the project
/// that no desired service names, none with a legacy name, none publishing
/// one of the stack's ports or holding one of its container names.
fn extra_containers(
    kind: &ComposeKind,
    host: &str,
    c: &crate::model::Compose,
    stack_services: &[crate::model::StackService],
    compose: &str,
) -> Desired {
    let services: Vec<&str> = stack_services.iter().map(|s| s.name.as_str()).collect();
    let containers: Vec<&str> = stack_services
        .iter()
        .filter_map(|s| s.container.as_deref())
        .collect();
    let legacy = LEGACY_CONTAINERS
        .iter()
        .find(|(t, _)| c.template.as_deref() == Some(*t))
        .map(|(_, names)| names.join("\n"))
        .unwrap_or_default();
    let ports = published_ports(compose);
    let content = format!(
        "no container of project {} but: {}\n",
        c.project,
        services.join(", ")
    );
    Desired::new(
        kind,
        format!("compose:{}/extra", c.project),
        host,
        host,
        content,
    )
    .arg("part", "extra")
    .arg("services", services.join("\n"))
    .arg("containers", containers.join("\n"))
    .arg("legacy", legacy)
    .arg("ports", ports.join("\n"))
}

/// The host ports a rendered compose file publishes (`HOST:CONTAINER`,
/// `IP:HOST:CONTAINER`, `/proto`, or the long form's `published`).
fn published_ports(compose: &str) -> Vec<String> {
    let meaning = super::yaml_meaning(compose).unwrap_or_default();
    let mut out = Vec::new();
    for svc in meaning["services"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for p in svc["ports"].as_array().into_iter().flatten() {
            let host = match p {
                Value::String(t) => {
                    let t = t.split('/').next().unwrap_or_default();
                    let f: Vec<&str> = t.rsplitn(3, ':').collect();
                    (f.len() >= 2).then(|| f[1].to_string())
                }
                Value::Number(_) => None,
                other => other["published"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| other["published"].as_u64().map(|n| n.to_string())),
            };
            if let Some(h) = host.filter(|h| !h.is_empty() && !out.contains(h)) {
                out.push(h);
            }
        }
    }
    out
}

/// Every container on the host (`name|project|service|ports,`): the ones
/// that are extra for this stack, each with why.
fn observe_extra(d: &Desired, s: &Section) -> Observed {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    let lines = |k: &str| -> Vec<String> { d.get(k).lines().map(String::from).collect() };
    let (services, containers, legacy, ports) = (
        lines("services"),
        lines("containers"),
        lines("legacy"),
        lines("ports"),
    );
    let project = d.get("project");
    let mut extra = Vec::new();
    for line in s.get("all").unwrap_or_default().lines() {
        let f: Vec<&str> = line.splitn(4, '|').collect();
        let [name, proj, service, published] = f[..] else {
            continue;
        };
        let name = name.trim_start_matches('/');
        let ours = proj == project && services.iter().any(|s| s == service);
        let why = if proj == project && !ours {
            format!(
                "compose service `{service}` of project {project} is not in the registry (orphan)"
            )
        } else if legacy.iter().any(|l| l == name) {
            format!("`{name}` is a legacy container of this stack")
        } else if ours {
            continue;
        } else if let Some(p) = published.split(',').find(|p| ports.iter().any(|w| w == p)) {
            format!("publishes port {p}, which the stack's compose file publishes")
        } else if containers.iter().any(|c| c == name) {
            format!("holds the name of the stack's container `{name}` but is not the project's")
        } else {
            continue;
        };
        extra.push(json!({ "name": name, "why": why }));
    }
    extra.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!({ "extra": extra }))
}

fn compare_extra(d: &Desired, actual: &Value) -> Verdict {
    super::removal(
        &actual["extra"],
        "name",
        "container ",
        &format!(
            "extra containers beside compose project {}",
            d.get("project")
        ),
        "",
    )
}

/// Remove the extra containers seen at apply time, each one's configuration
/// (`docker inspect`) kept under `$BK`; volumes are left alone.
fn remove_extra(actual: &Value) -> Result<Script, ScriptError> {
    let names: Vec<String> = actual["extra"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect();
    shell::render(
        "kinds/compose/extra-remove.sh",
        minijinja::context! { names },
    )
}

#[cfg(test)]
mod extra_tests {
    use super::*;

    #[test]
    fn published_ports_of_every_form() {
        let yml = "services:\n  a:\n    ports:\n      - '2283:2283'\n      - 127.0.0.1:8080:80/tcp\n      - '3000'\n      - {target: 80, published: 9000}\n  b: {image: x}\n";
        assert_eq!(published_ports(yml), vec!["2283", "8080", "9000"]);
    }

    fn desired() -> Desired {
        let kind: &dyn Kind = &ComposeKind;
        Desired::new(kind, "compose:immich/extra", "h", "h", String::new())
            .arg("part", "extra")
            .arg("project", "immich")
            .arg("services", "immich-server\nredis")
            .arg("containers", "immich_server\nimmich_redis")
            .arg("legacy", "immich_web\nimmich_microservices")
            .arg("ports", "2283")
    }

    #[test]
    fn orphans_legacy_and_port_holders_are_extra_and_ours_are_not() {
        let all = "/immich_server|immich|immich-server|2283,\n\
                   /immich_redis|immich|redis|\n\
                   /old|immich|immich-web|\n\
                   /immich_microservices|||\n\
                   /squatter|other|web|2283,\n\
                   /immich_redis|other|redis|\n\
                   /unrelated|other|x|8080,\n";
        let mut s = Section::default();
        s.values.insert("all".into(), all.into());
        let got = observe_extra(&desired(), &s).unwrap();
        let names: Vec<&str> = got["extra"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["immich_microservices", "immich_redis", "old", "squatter"]
        );
        match compare_extra(&desired(), &got) {
            Verdict::Drift { action, reason, .. } => {
                assert_eq!(action, Action::Remove);
                assert!(
                    reason.contains("orphan")
                        && reason.contains("legacy")
                        && reason.contains("port 2283"),
                    "{reason}"
                );
            }
            v => panic!("{v:?}"),
        }
        s.values.insert(
            "all".into(),
            "/immich_server|immich|immich-server|2283,\n".into(),
        );
        assert_eq!(
            compare_extra(&desired(), &observe_extra(&desired(), &s).unwrap()),
            Verdict::InSync
        );
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use crate::model::{Compose, ComposeText};

    fn file_stack() -> Compose {
        let text = "services:\n  web:\n    image: nginx:1.27\n    container_name: front\n  cache:\n    image: valkey/valkey:${TAG:-8}\n  job:\n    build: .\n";
        let json = super::super::yaml_meaning(text).unwrap();
        let mut c: Compose = serde_json::from_value(json!({
            "project": "notes", "directory": "/opt/stacks/notes",
            "file": "ops/staged/notes/docker-compose.yml"
        }))
        .unwrap();
        c.loaded = Some(ComposeText::parse("f", text.into(), &json));
        c
    }

    #[test]
    fn a_file_stack_takes_its_services_and_container_names_from_the_file() {
        let got: Vec<(String, Option<String>, Option<String>)> = file_stack()
            .stack_services()
            .into_iter()
            .map(|s| (s.name, s.container, s.image))
            .collect();
        let o = |s: &str| Some(s.to_string());
        assert_eq!(
            got,
            vec![
                ("web".into(), o("front"), o("nginx:1.27")),
                // compose's default name; an image from variables is not compared
                ("cache".into(), o("notes-cache-1"), None),
                ("job".into(), o("notes-job-1"), None),
            ]
        );
    }

    #[test]
    fn a_service_whose_image_is_not_compared_is_still_checked_for_state() {
        let kind: &dyn Kind = &ComposeKind;
        let d = Desired::new(
            kind,
            "compose:notes/containers",
            "h",
            "h",
            "web nginx:1.27\ncache\n".into(),
        )
        .arg("part", "containers")
        .arg("project", "notes");
        let have = |cache_state: &str| {
            json!({"services": {
                "web": {"image": "nginx:1.27", "state": "running", "health": "healthy"},
                "cache": {"image": "valkey/valkey:8", "state": cache_state, "health": "none"},
            }})
        };
        assert_eq!(compare_containers(&d, &have("running")), Verdict::InSync);
        match compare_containers(&d, &have("exited")) {
            Verdict::Drift { reason, .. } => assert_eq!(reason, "cache is exited"),
            v => panic!("{v:?}"),
        }
    }
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
