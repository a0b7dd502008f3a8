//! compose: one stack's compose project, five resources per stack:
//! - its docker-compose.yml, compared by meaning ([`file`]);
//! - the compose files beside it that `docker compose` run by hand in the
//!   folder would read instead ([`others`], planned for removal);
//! - its .env, every value compared by hash, computed on the host so none
//!   travels ([`env`]);
//! - its containers, found by compose labels, so compose v1 and v2 both
//!   count ([`containers`]);
//! - the containers that are extra beside it: orphans of the project,
//!   legacy names, holders of its ports or container names ([`extra`]).

mod containers;
mod env;
mod extra;
mod file;
mod others;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::typed::mismatch;
use super::{Change, Desired, KindError, SecretHashes, TypedKind, Verdict};
use crate::gather::script::Section;
use crate::model::Compose;
use crate::render::{RenderCx, RenderError};
use crate::secrets::Reference;
use crate::shell::{Script, ScriptError};

pub struct ComposeKind;

/// The stack a compose resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// The stack's `stack_id`.
    pub id: String,
    /// The compose project name (`-p`).
    pub project: String,
    /// The folder holding docker-compose.yml and .env (no trailing `/`).
    pub directory: String,
}

/// What a compose resource is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Spec {
    /// docker-compose.yml: the resource's content.
    File { stack: Stack },
    /// No compose file beside docker-compose.yml that `docker compose`
    /// prefers.
    Others { stack: Stack },
    /// .env: the resource's content, each secret as its placeholder.
    Env {
        stack: Stack,
        /// Each secret key of the file and where its value comes from.
        secrets: BTreeMap<String, Reference>,
    },
    /// The project's containers, one per wanted service.
    Containers {
        stack: Stack,
        services: Vec<containers::Wanted>,
    },
    /// Nothing extra beside the stack.
    Extra(extra::Spec),
}

/// What was read for a compose resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    File(file::Facts),
    Env(env::Facts),
    Containers(containers::Facts),
    Extra(extra::Facts),
    Others(others::Facts),
    /// docker-compose.yml or .env is not there.
    Absent(Absent),
}

/// A file part's file that is not there: `{"exists": false}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absent {
    pub exists: Exists<false>,
}

/// The `exists` of a file part's facts, `THERE` and nothing else, so that
/// facts read back from a plan as what they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "bool", into = "bool")]
pub struct Exists<const THERE: bool>;

impl<const THERE: bool> TryFrom<bool> for Exists<THERE> {
    type Error = String;
    fn try_from(b: bool) -> Result<Self, String> {
        (b == THERE)
            .then_some(Exists)
            .ok_or_else(|| format!("`exists` is {b}, expected {THERE}"))
    }
}

impl<const THERE: bool> From<Exists<THERE>> for bool {
    fn from(_: Exists<THERE>) -> bool {
        THERE
    }
}

impl TypedKind for ComposeKind {
    type Spec = Spec;
    type Facts = Facts;

    fn name(&self) -> &'static str {
        "compose"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, Spec)>, RenderError> {
        let mut out = Vec::new();
        for st in &cx.stacks.stacks {
            let Some(d) = st.desired.as_ref().filter(|d| d.host == cx.host_id) else {
                continue;
            };
            if let Some(c) = &d.compose {
                out.extend(self.render_stack(cx, &st.stack_id, c)?);
            }
        }
        Ok(out)
    }

    fn read_script(&self, d: &Desired, spec: &Spec) -> Result<Script, ScriptError> {
        match spec {
            Spec::File { .. } => super::file::read_script(d),
            Spec::Others { stack } => others::read_script(&stack.directory),
            Spec::Env { .. } => env::read_script(d),
            Spec::Containers { stack, .. } => containers::read_script(&stack.project),
            Spec::Extra(_) => extra::read_script(),
        }
    }

    fn observe(
        &self,
        _: &Desired,
        spec: &Spec,
        s: &Section,
        secrets: &dyn SecretHashes,
    ) -> Result<Facts, String> {
        match spec {
            Spec::File { .. } => file::observe(s),
            Spec::Others { stack } => others::observe(&stack.directory, s).map(Facts::Others),
            Spec::Env { secrets: refs, .. } => env::observe(refs, s, secrets),
            Spec::Containers { .. } => containers::observe(s).map(Facts::Containers),
            Spec::Extra(x) => extra::observe(x, s).map(Facts::Extra),
        }
    }

    fn compare(&self, d: &Desired, spec: &Spec, facts: &Facts) -> Verdict {
        match (spec, facts) {
            (Spec::File { .. }, Facts::File(f)) => file::compare(d, Some(f)),
            (Spec::File { .. }, Facts::Absent(_)) => file::compare(d, None),
            (Spec::Others { stack }, Facts::Others(f)) => others::compare(&stack.directory, f),
            (Spec::Env { .. }, Facts::Env(f)) => env::compare(d, Some(f)),
            (Spec::Env { .. }, Facts::Absent(_)) => env::compare(d, None),
            (Spec::Containers { stack, services }, Facts::Containers(f)) => {
                containers::compare(&stack.project, services, f)
            }
            (Spec::Extra(x), Facts::Extra(f)) => extra::compare(&x.stack.project, f),
            _ => Verdict::Unknown {
                reason: mismatch(d),
            },
        }
    }

    fn apply(
        &self,
        d: &Desired,
        spec: &Spec,
        facts: &Facts,
        secrets: &dyn crate::secrets::Provider,
    ) -> Result<Change, KindError> {
        let script = match (spec, facts) {
            (Spec::File { stack }, _) => file::apply(d, &stack.directory)?,
            (Spec::Env { secrets: refs, .. }, _) => env::apply(d, refs, secrets)?,
            (Spec::Containers { stack, .. }, _) => containers::up(stack)?,
            (Spec::Extra(_), Facts::Extra(f)) => extra::remove(f)?,
            (Spec::Others { stack }, Facts::Others(f)) => {
                file::refuse_odd(&stack.directory)?;
                others::remove(f)?
            }
            (Spec::Extra(_) | Spec::Others { .. }, _) => {
                return Err(KindError::Shape(mismatch(d)));
            }
        };
        Ok(Change::new(script))
    }
}

impl ComposeKind {
    /// The five resources of one stack on the host in `cx`.
    fn render_stack(
        &self,
        cx: &RenderCx,
        stack_id: &str,
        c: &Compose,
    ) -> Result<Vec<(Desired, Spec)>, RenderError> {
        let user = cx.ssh_user();
        let ctx = minijinja::context! {
            stack => minijinja::context! { id => stack_id },
            compose => minijinja::value::Serde(c),
        };
        let stack = Stack {
            id: stack_id.to_string(),
            project: c.project.clone(),
            directory: c.directory.trim_end_matches('/').to_string(),
        };
        let dir = &stack.directory;
        let compose = compose_text(cx, stack_id, c, ctx.clone())?;
        let env = cx.templates.render("compose/env.j2", ctx)?;
        let services = c.stack_services();
        let resource =
            |id: String, content: String| Desired::new(self, id, cx.host_id, cx.host_id, content);
        let file = resource(format!("compose:{dir}/docker-compose.yml"), compose.clone()).file(
            &format!("{dir}/docker-compose.yml"),
            0o644,
            &user,
        );
        let mut env_d =
            resource(format!("compose:{dir}/.env"), env).file(&format!("{dir}/.env"), 0o600, &user);
        env_d.secrets = c.secrets.keys().cloned().collect();
        let refs = c
            .secrets
            .iter()
            .map(|(key, r)| {
                let reference = Reference::new(&r.project, &r.key, r.path.as_deref());
                (key.clone(), reference)
            })
            .collect();
        let others = resource(
            format!("compose:{dir}/other-compose-files"),
            others::content(dir),
        );
        let extra = extra::Spec::of(stack.clone(), c, &services, &compose);
        let wanted = containers::wanted(&services);
        Ok(vec![
            (
                file,
                Spec::File {
                    stack: stack.clone(),
                },
            ),
            (
                others,
                Spec::Others {
                    stack: stack.clone(),
                },
            ),
            (
                env_d,
                Spec::Env {
                    stack: stack.clone(),
                    secrets: refs,
                },
            ),
            (
                resource(format!("compose:{}/extra", c.project), extra.content()),
                Spec::Extra(extra),
            ),
            (
                resource(
                    format!("compose:{}/containers", c.project),
                    containers::content(&wanted),
                ),
                Spec::Containers {
                    stack,
                    services: wanted,
                },
            ),
        ])
    }
}

/// The desired docker-compose.yml: the template rendered, or the operator's
/// own file verbatim.
fn compose_text(
    cx: &RenderCx,
    stack: &str,
    c: &Compose,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ComposeText;
    use serde_json::json;

    fn file_stack() -> Compose {
        let text = "services:\n  web:\n    image: nginx:1.27\n    container_name: front\n  cache:\n    image: valkey/valkey:${TAG:-8}\n  job:\n    build: .\n";
        let json = super::super::file::yaml_meaning(text).unwrap();
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

    /// Each part's facts read back from their JSON as that part's (an
    /// absent docker-compose.yml or .env as absent), in today's shape.
    #[test]
    fn facts_read_back_as_what_they_were() {
        let cases = [
            json!({"exists": false}),
            json!({"exists": true, "mode": "644", "owner": "u", "text": "a: 1\n", "meaning": {"a": 1}}),
            json!({"exists": true, "mode": "600", "owner": "u", "vars": [["TZ", "(value 0123456789abcdef)"]]}),
            json!({"services": {"web": {"image": "nginx", "state": "running", "health": "none"}}}),
            json!({"extra": [{"name": "old", "why": "orphan"}]}),
            json!({"files": [{"path": "/d/compose.yaml", "why": "read instead"}]}),
        ];
        let parts: Vec<&str> = cases
            .iter()
            .map(|v| {
                let f: Facts = serde_json::from_value(v.clone()).unwrap();
                assert_eq!(&serde_json::to_value(&f).unwrap(), v);
                match f {
                    Facts::Absent(_) => "absent",
                    Facts::File(_) => "file",
                    Facts::Env(_) => "env",
                    Facts::Containers(_) => "containers",
                    Facts::Extra(_) => "extra",
                    Facts::Others(_) => "others",
                }
            })
            .collect();
        assert_eq!(
            parts,
            ["absent", "file", "env", "containers", "extra", "others"]
        );
        assert!(serde_json::from_value::<Facts>(json!({"exists": true})).is_err());
    }
}
