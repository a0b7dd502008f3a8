//! A stack's containers: one per wanted service, running, not unhealthy,
//! on the wanted image where the registry pins one. Found by their compose
//! labels (compose v1 and v2 both count); brought up with `docker compose
//! up --wait`. Containers no wanted service names are [`super::extra`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Stack;
use crate::gather::script::Section;
use crate::kinds::{self, Verdict};
use crate::model::StackService;
use crate::shell::{self, Script, ScriptError};

/// A service the stack wants running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub name: String,
    /// Its image, or `None` when not compared (compose resolves it from
    /// variables).
    pub image: Option<String>,
}

/// The project's containers by service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub services: BTreeMap<String, Container>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub image: String,
    /// Docker's state (`running`, `exited`, ...).
    pub state: String,
    /// Its health check's status, `none` without one.
    pub health: String,
}

pub fn wanted(services: &[StackService]) -> Vec<Wanted> {
    services
        .iter()
        .map(|s| Wanted {
            name: s.name.clone(),
            image: s.image.clone(),
        })
        .collect()
}

/// The resource's content (what `spine render` shows): one line per
/// service, `NAME IMAGE`, or `NAME` alone when the image is not compared.
pub fn content(wanted: &[Wanted]) -> String {
    let lines: Vec<String> = wanted
        .iter()
        .map(|w| match &w.image {
            Some(image) => format!("{} {image}", w.name),
            None => w.name.clone(),
        })
        .collect();
    lines.join("\n") + "\n"
}

pub fn read_script(project: &str) -> Result<Script, ScriptError> {
    shell::render(
        "kinds/compose/containers-read.sh",
        minijinja::context! { project },
    )
}

/// The containers as `docker inspect` printed them (`SERVICE IMAGE STATE HEALTH`).
pub fn observe(s: &Section) -> Result<Facts, String> {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    let mut services = BTreeMap::new();
    for line in s.get("ps").unwrap_or_default().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [service, image, state, health] = f[..] {
            let c = Container {
                image: image.into(),
                state: state.into(),
                health: health.into(),
            };
            services.insert(service.to_string(), c);
        }
    }
    Ok(Facts { services })
}

/// The wanted services against the containers.
pub fn compare(project: &str, wanted: &[Wanted], actual: &Facts) -> Verdict {
    let services = &actual.services;
    let have_lines: String = services
        .iter()
        .map(|(name, c)| format!("{name} {} {} {}\n", c.image, c.state, c.health))
        .collect();
    let mut reasons = Vec::new();
    let mut want_lines: Vec<String> = Vec::new();
    for w in wanted {
        let have = services.get(&w.name);
        want_lines.push(wanted_line(w, have));
        match have {
            None => reasons.push(format!("{} is not there", w.name)),
            Some(c) => reasons.extend(problems(w, c)),
        }
    }
    // Containers no wanted service names are the `extra` resource's
    // (planned for removal there), not a change here.
    if reasons.is_empty() {
        return Verdict::InSync;
    }
    want_lines.sort();
    kinds::drift(
        services.is_empty(),
        &reasons,
        &format!("containers of compose project {project}"),
        &have_lines,
        &(want_lines.join("\n") + "\n"),
    )
}

/// The diff line of a wanted service: its image (the one it runs when not
/// compared), running, and its health as it is unless unhealthy.
fn wanted_line(w: &Wanted, have: Option<&Container>) -> String {
    let image = w
        .image
        .as_deref()
        .or(have.map(|c| c.image.as_str()))
        .unwrap_or("(image as compose resolves it)");
    let health = have
        .map(|c| c.health.as_str())
        .filter(|h| *h != "unhealthy")
        .unwrap_or("healthy");
    format!("{} {image} running {health}", w.name)
}

/// What is wrong with the container of a wanted service.
fn problems(w: &Wanted, c: &Container) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(image) = w.image.as_ref().filter(|i| **i != c.image) {
        out.push(format!("{} runs {}, should run {image}", w.name, c.image));
    }
    if c.state != "running" {
        out.push(format!("{} is {}", w.name, c.state));
    }
    if c.health == "unhealthy" {
        out.push(format!("{} is unhealthy", w.name));
    }
    out
}

/// Bring the project up and wait for its health checks.
pub fn up(stack: &Stack) -> Result<Script, ScriptError> {
    shell::render(
        "kinds/compose/up.sh",
        minijinja::context! {
            directory => &stack.directory,
            project => &stack.project,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_whose_image_is_not_compared_is_still_checked_for_state() {
        let wanted = [
            Wanted {
                name: "web".into(),
                image: Some("nginx:1.27".into()),
            },
            Wanted {
                name: "cache".into(),
                image: None,
            },
        ];
        assert_eq!(content(&wanted), "web nginx:1.27\ncache\n");
        let have = |cache_state: &str| {
            let c = |image: &str, state: &str, health: &str| Container {
                image: image.into(),
                state: state.into(),
                health: health.into(),
            };
            Facts {
                services: BTreeMap::from([
                    ("web".into(), c("nginx:1.27", "running", "healthy")),
                    ("cache".into(), c("valkey/valkey:8", cache_state, "none")),
                ]),
            }
        };
        assert_eq!(compare("notes", &wanted, &have("running")), Verdict::InSync);
        match compare("notes", &wanted, &have("exited")) {
            Verdict::Drift { reason, diff, .. } => {
                assert_eq!(reason, "cache is exited");
                let diff = diff.unwrap();
                assert!(
                    diff.contains("-cache valkey/valkey:8 exited none\n")
                        && diff.contains("+cache valkey/valkey:8 running none\n"),
                    "{diff}"
                );
            }
            v => panic!("{v:?}"),
        }
    }
}
