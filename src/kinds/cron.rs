//! cron: a marked block in each user's crontab. Lines outside the block are
//! left alone, except lines that refer to a legacy root (a removed tree: such
//! a job can only fail silently), which are reported and removed.

mod tables;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Desired, Kind, Observed, SecretHashes, Verdict};
use crate::gather::script::Section;
use crate::model::CronJob;
use crate::render::{RenderCx, RenderError};
use crate::shell::{self, Script, ScriptError};

pub struct Cron;

pub const BEGIN: &str = "# BEGIN spine managed block";
pub const END: &str = "# END spine managed block";

/// Split a crontab into (lines before, the managed block or None, lines after).
pub fn split_block(text: &str) -> (Vec<&str>, Option<Vec<&str>>, Vec<&str>) {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.starts_with(BEGIN));
    let end = lines.iter().position(|l| l.starts_with(END));
    match (start, end) {
        (Some(s), Some(e)) if e > s => (
            lines[..s].to_vec(),
            Some(lines[s..=e].to_vec()),
            lines[e + 1..].to_vec(),
        ),
        _ => (lines, None, Vec::new()),
    }
}

/// Whether a crontab line refers to a path under one of `roots`.
pub fn refers_to(line: &str, roots: &[&str]) -> bool {
    if line.trim_start().starts_with('#') {
        return false;
    }
    line.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ';' | '&' | '|' | '<' | '>' | '(' | ')' | '"' | '\'' | '='
            )
    })
    .any(|w| {
        roots
            .iter()
            .any(|r| w == *r || w.starts_with(&format!("{}/", r.trim_end_matches('/'))))
    })
}

/// The crontab the registry wants, given the current one.
pub fn desired_crontab(current: &str, block: &str, roots: &[&str]) -> String {
    let (before, _, after) = split_block(current);
    let keep = |v: Vec<&str>| {
        v.into_iter()
            .filter(|l| !refers_to(l, roots))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    format!("{}{}{}", keep(before), block, keep(after))
}

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
        let managed: Vec<&str> = by_user.keys().copied().collect();
        let any_stack = cx
            .stacks
            .stacks
            .iter()
            .any(|st| st.desired.as_ref().is_some_and(|d| d.host == cx.host_id));
        let tables = any_stack.then(|| {
            Desired::new(
                self,
                "cron:tables",
                cx.host_id,
                cx.host_id,
                "no job under a legacy root or with a missing script in any cron table\n".into(),
            )
            .arg("part", "tables")
            .arg("managed", managed.join("\n"))
            .arg("legacy_roots", roots.join("\n"))
        });
        for (user, jobs) in by_user {
            let ctx = minijinja::context! { jobs => minijinja::value::Serde(&jobs) };
            let content = cx.templates.render("cron/block.j2", ctx)?;
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
        out.extend(tables);
        Ok(out)
    }

    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError> {
        if d.get("part") == "tables" {
            return shell::render("kinds/cron/tables-read.sh", minijinja::context! {});
        }
        let scripts: Vec<String> = d.get("scripts").lines().map(String::from).collect();
        shell::render(
            "kinds/cron/read.sh",
            minijinja::context! { user => d.get("user"), scripts },
        )
    }

    fn observe(&self, d: &Desired, s: &Section, _: &dyn SecretHashes) -> Observed {
        if d.get("part") == "tables" {
            return tables::observe(d, s);
        }
        if let Some(u) = s.get("unknown") {
            return Err(u.to_string());
        }
        let text = s.get("crontab").unwrap_or_default();
        let crontab = match s.get("rc") {
            // The shell's $(...) drops trailing newlines: restore the last one.
            Some("0") if text.trim().is_empty() => String::new(),
            Some("0") => format!("{}\n", text.trim_end_matches('\n')),
            // `crontab -l` exits 1 with "no crontab for USER" when there is none.
            Some("1") if text.contains("no crontab for") => String::new(),
            Some("126") => return Err("permission denied reading another user's crontab (run as root or allow passwordless sudo)".into()),
            _ => return Err(format!("`crontab -l` failed: {}", text.lines().next().unwrap_or("(no output)"))),
        };
        let scripts: Vec<Value> = d
            .get("scripts")
            .lines()
            .enumerate()
            .map(|(i, p)| json!([p, s.get(&format!("script.{i}")).unwrap_or("unknown")]))
            .collect();
        Ok(json!({ "crontab": crontab, "scripts": scripts }))
    }

    fn compare(&self, d: &Desired, actual: &Value) -> Verdict {
        if d.get("part") == "tables" {
            return tables::compare(actual);
        }
        let current = actual["crontab"].as_str().unwrap_or_default();
        let roots: Vec<&str> = d.get("legacy_roots").lines().collect();
        let want = desired_crontab(current, &d.content, &roots);
        let mut reasons = Vec::new();
        let (_, block, _) = split_block(current);
        if block.is_none() {
            reasons.push("the managed block is missing".to_string());
        } else if want != current && !current.is_empty() {
            let have_block: String = block
                .unwrap_or_default()
                .iter()
                .map(|l| format!("{l}\n"))
                .collect();
            if have_block != d.content {
                reasons.push("the managed block differs".to_string());
            }
        }
        for line in current.lines().filter(|l| refers_to(l, &roots)) {
            reasons.push(format!(
                "`{line}` refers to a legacy root that no longer exists"
            ));
        }
        let mut unknown = Vec::new();
        for pair in actual["scripts"].as_array().into_iter().flatten() {
            let (path, state) = (
                pair[0].as_str().unwrap_or_default(),
                pair[1].as_str().unwrap_or_default(),
            );
            match state {
                "executable" => {}
                "unknown" => unknown.push(path.to_string()),
                other => reasons.push(format!(
                    "script {path} is {other} (spine does not create scripts: deploy it)"
                )),
            }
        }
        if want == current && reasons.is_empty() {
            if !unknown.is_empty() {
                return Verdict::Unknown {
                    reason: format!("could not check scripts: {}", unknown.join(", ")),
                };
            }
            return Verdict::InSync;
        }
        super::drift(
            current.is_empty(),
            &reasons,
            &format!("crontab of {}", d.get("user")),
            current,
            &want,
        )
    }

    fn apply(
        &self,
        d: &Desired,
        actual: &Value,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        if d.get("part") == "tables" {
            return Ok(super::Change::new(tables::apply(actual)?));
        }
        let current = actual["crontab"].as_str().unwrap_or_default();
        let roots: Vec<&str> = d.get("legacy_roots").lines().collect();
        let crontab = desired_crontab(current, &d.content, &roots);
        // A job whose script is missing would fail silently every night: the
        // script refuses before changing anything.
        let scripts: Vec<String> = d.get("scripts").lines().map(String::from).collect();
        let script = shell::render(
            "kinds/cron/apply.sh",
            minijinja::context! {
                user => d.get("user"),
                scripts,
                crontab_b64 => shell::b64(&crontab),
            },
        )?;
        Ok(super::Change::new(script))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str =
        "# BEGIN spine managed block (x)\n0 3 * * * /new.sh\n# END spine managed block\n";

    #[test]
    fn keeps_foreign_lines_and_drops_legacy_ones() {
        let cur = "MAILTO=a\n0 3 * * * /home/r/ronny-ops/backup.sh\n5 * * * * /other\n";
        let want = desired_crontab(cur, BLOCK, &["/home/r/ronny-ops"]);
        assert_eq!(want, format!("MAILTO=a\n5 * * * * /other\n{BLOCK}"));
        // Converged: applying again changes nothing.
        assert_eq!(desired_crontab(&want, BLOCK, &["/home/r/ronny-ops"]), want);
    }

    #[test]
    fn refers_to_by_path_component() {
        assert!(refers_to("0 3 * * * /x/ronny-ops/a.sh", &["/x/ronny-ops"]));
        assert!(!refers_to(
            "0 3 * * * /x/ronny-ops2/a.sh",
            &["/x/ronny-ops"]
        ));
        assert!(!refers_to(
            "# 0 3 * * * /x/ronny-ops/a.sh",
            &["/x/ronny-ops"]
        ));
    }
}
