//! The resource "nothing extra beside the stack": no container of the
//! project that no wanted service names (an orphan), none with a legacy
//! name of the stack, none publishing one of the stack's ports or holding
//! one of its container names. Each is planned for removal (`remove`), its
//! configuration kept in the run's backup, its volumes left alone.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Stack;
use crate::gather::script::Section;
use crate::kinds::{self, Verdict};
use crate::model::{Compose, StackService};
use crate::shell::{self, Script, ScriptError};

/// Containers the stack knows by name as left over from an older layout of
/// its template (Immich v1's web and microservices containers): wherever
/// they run, they are the stack's and must go.
const LEGACY_CONTAINERS: &[(&str, &[&str])] =
    &[("immich", &["immich_web", "immich_microservices"])];

/// What the stack holds, to tell its containers from extra ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: Stack,
    /// The wanted services.
    pub services: Vec<String>,
    /// The container names its services take.
    pub containers: Vec<String>,
    /// Legacy container names of its template.
    pub legacy: Vec<String>,
    /// The host ports its compose file publishes.
    pub ports: Vec<String>,
}

/// The extra containers found, each with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub extra: Vec<Extra>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    pub name: String,
    pub why: String,
}

impl Spec {
    /// The spec of stack `c` with its `services` and rendered `compose` file.
    pub fn of(stack: Stack, c: &Compose, services: &[StackService], compose: &str) -> Spec {
        let legacy = LEGACY_CONTAINERS
            .iter()
            .find(|(t, _)| c.template.as_deref() == Some(*t))
            .map(|(_, names)| names.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default();
        Spec {
            stack,
            services: services.iter().map(|s| s.name.clone()).collect(),
            containers: services
                .iter()
                .filter_map(|s| s.container.clone())
                .collect(),
            legacy,
            ports: published_ports(compose),
        }
    }

    /// The resource's content (what `spine render` shows).
    pub fn content(&self) -> String {
        format!(
            "no container of project {} but: {}\n",
            self.stack.project,
            self.services.join(", ")
        )
    }
}

/// The host ports a rendered compose file publishes (`HOST:CONTAINER`,
/// `IP:HOST:CONTAINER`, `/proto`, or the long form's `published`).
fn published_ports(compose: &str) -> Vec<String> {
    let meaning = kinds::file::yaml_meaning(compose).unwrap_or_default();
    let mut out = Vec::new();
    for svc in meaning["services"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for p in svc["ports"].as_array().into_iter().flatten() {
            if let Some(h) = host_port(p).filter(|h| !h.is_empty() && !out.contains(h)) {
                out.push(h);
            }
        }
    }
    out
}

/// The host port of one `ports:` entry, if it publishes one.
fn host_port(p: &Value) -> Option<String> {
    match p {
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
    }
}

pub fn read_script() -> Result<Script, ScriptError> {
    shell::render("kinds/compose/extra-read.sh", minijinja::context! {})
}

/// Every container on the host (`name|project|service|ports,`): the ones
/// that are extra for this stack, each with why.
pub fn observe(spec: &Spec, s: &Section) -> Result<Facts, String> {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    let mut extra = Vec::new();
    for line in s.get("all").unwrap_or_default().lines() {
        let f: Vec<&str> = line.splitn(4, '|').collect();
        let [name, project, service, published] = f[..] else {
            continue;
        };
        let name = name.trim_start_matches('/');
        if let Some(why) = why_extra(spec, name, project, service, published) {
            extra.push(Extra {
                name: name.to_string(),
                why,
            });
        }
    }
    extra.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Facts { extra })
}

/// Why one container is extra beside the stack, if it is.
fn why_extra(
    spec: &Spec,
    name: &str,
    project: &str,
    service: &str,
    published: &str,
) -> Option<String> {
    let ours_project = project == spec.stack.project;
    let ours = ours_project && spec.services.iter().any(|s| s == service);
    let has = |list: &[String], x: &str| list.iter().any(|l| l == x);
    if ours_project && !ours {
        return Some(format!(
            "compose service `{service}` of project {project} is not in the registry (orphan)"
        ));
    }
    if has(&spec.legacy, name) {
        return Some(format!("`{name}` is a legacy container of this stack"));
    }
    if ours {
        return None;
    }
    if let Some(p) = published.split(',').find(|p| has(&spec.ports, p)) {
        return Some(format!(
            "publishes port {p}, which the stack's compose file publishes"
        ));
    }
    has(&spec.containers, name).then(|| {
        format!("holds the name of the stack's container `{name}` but is not the project's")
    })
}

pub fn compare(project: &str, actual: &Facts) -> Verdict {
    let extra: Vec<(String, String)> = actual
        .extra
        .iter()
        .map(|e| (e.name.clone(), e.why.clone()))
        .collect();
    kinds::removal_of(
        &extra,
        "container ",
        &format!("extra containers beside compose project {project}"),
        "",
    )
}

/// Remove the extra containers seen at apply time, each one's configuration
/// (`docker inspect`) kept under `$BK`; volumes are left alone.
pub fn remove(actual: &Facts) -> Result<Script, ScriptError> {
    let names: Vec<String> = actual.extra.iter().map(|e| e.name.clone()).collect();
    shell::render(
        "kinds/compose/extra-remove.sh",
        minijinja::context! { names },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Action;

    #[test]
    fn published_ports_of_every_form() {
        let yml = "services:\n  a:\n    ports:\n      - '2283:2283'\n      - 127.0.0.1:8080:80/tcp\n      - '3000'\n      - {target: 80, published: 9000}\n  b: {image: x}\n";
        assert_eq!(published_ports(yml), vec!["2283", "8080", "9000"]);
    }

    fn spec() -> Spec {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Spec {
            stack: Stack {
                id: "immich".into(),
                project: "immich".into(),
                directory: "/home/ronny/immich".into(),
            },
            services: v(&["immich-server", "redis"]),
            containers: v(&["immich_server", "immich_redis"]),
            legacy: v(&["immich_web", "immich_microservices"]),
            ports: v(&["2283"]),
        }
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
        let got = observe(&spec(), &s).unwrap();
        let names: Vec<&str> = got.extra.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["immich_microservices", "immich_redis", "old", "squatter"]
        );
        match compare("immich", &got) {
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
            compare("immich", &observe(&spec(), &s).unwrap()),
            Verdict::InSync
        );
    }
}
