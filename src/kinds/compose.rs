//! compose: a stack's docker-compose.yml and .env, and its running containers.

use super::{Desired, Kind};
use crate::render::{RenderCx, RenderError};

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
            let env = cx.templates.render("compose/env.j2", ctx.clone())?;
            let services: Vec<String> = c
                .services
                .iter()
                .map(|(name, s)| format!("{name}={}", s.image))
                .collect();
            let base = |d: Desired| {
                d.arg("project", &c.project)
                    .arg("directory", dir)
                    .arg("stack", &st.stack_id)
            };
            out.push(base(
                Desired::new(
                    self,
                    format!("compose:{}/docker-compose.yml", dir),
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
                    format!("compose:{}/.env", dir),
                    cx.host_id,
                    cx.host_id,
                    env,
                )
                .file(&format!("{dir}/.env"), 0o600, &user)
                .arg("part", "env"),
            );
            env_d.secrets = c.secrets.keys().cloned().collect();
            for (key, r) in &c.secrets {
                env_d = env_d.arg(&format!("secret.{key}"), format!("{}/{}", r.project, r.key));
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
}
