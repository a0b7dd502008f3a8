//! cron: a marked block in each user's crontab; lines outside it are left alone.

use std::collections::BTreeMap;

use super::{Desired, Kind};
use crate::model::CronJob;
use crate::render::{RenderCx, RenderError};

pub struct Cron;

pub const BEGIN: &str = "# BEGIN spine managed block";
pub const END: &str = "# END spine managed block";

impl Kind for Cron {
    fn name(&self) -> &'static str {
        "cron"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        let mut by_user: BTreeMap<&str, Vec<&CronJob>> = BTreeMap::new();
        let mut roots: Vec<String> = Vec::new();
        for st in &cx.stacks.stacks {
            let Some(d) = st.desired.as_ref().filter(|d| d.host == cx.host_id) else {
                continue;
            };
            for job in &d.cron {
                by_user.entry(&job.user).or_default().push(job);
            }
            roots.extend(d.legacy_roots.iter().cloned());
        }
        let mut out = Vec::new();
        for (user, jobs) in by_user {
            let content = cx.templates.render(
                "cron/block.j2",
                minijinja::context! { jobs => minijinja::value::Serde(&jobs) },
            )?;
            let scripts: Vec<String> = jobs
                .iter()
                .flat_map(|j| j.scripts.iter().cloned())
                .collect();
            let expanded: Vec<String> = roots
                .iter()
                .map(|r| crate::model::expand_home(r, user))
                .collect();
            out.push(
                Desired::new(
                    self,
                    format!("cron:{user}"),
                    cx.host_id,
                    cx.host_id,
                    content,
                )
                .arg("user", user)
                .arg("scripts", scripts.join("\n"))
                .arg("legacy_roots", expanded.join("\n")),
            );
        }
        Ok(out)
    }
}
