//! cron: a marked block in each user's crontab. Lines outside the block are
//! left alone, except lines that refer to a legacy root (a removed tree: such
//! a job can only fail silently), which are reported and removed.

mod tables;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::typed::mismatch;
use super::{Desired, SecretHashes, TypedKind, Verdict};
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

/// What a cron resource is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Spec {
    /// One user's crontab: its managed block is the resource's content.
    User {
        user: String,
        /// The scripts its jobs run (each must exist and be executable).
        scripts: Vec<String>,
        /// Legacy roots as the user sees them (`~` expanded): a line
        /// outside the block that refers to one is removed.
        legacy_roots: Vec<String>,
    },
    /// Every cron table on the host (`cron:tables`, see [`tables`]).
    Tables {
        /// Users with their own `User` resource (their crontab is left to it).
        managed: Vec<String>,
        /// Legacy roots as written in the registry.
        legacy_roots: Vec<String>,
    },
}

/// What was read for a cron resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    User(UserFacts),
    Tables(tables::Facts),
}

/// One user's crontab and the state of each script its jobs run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    /// The whole crontab (`""` when the user has none); plans keep its hash.
    pub crontab: String,
    /// Each script and its state: `executable`, `missing`, `not executable`
    /// (as the read script says) or `unknown`.
    pub scripts: Vec<(String, String)>,
}

impl TypedKind for Cron {
    type Spec = Spec;
    type Facts = Facts;

    fn name(&self) -> &'static str {
        "cron"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, Spec)>, RenderError> {
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
        let managed: Vec<String> = by_user.keys().map(|u| u.to_string()).collect();
        let any_stack = cx
            .stacks
            .stacks
            .iter()
            .any(|st| st.desired.as_ref().is_some_and(|d| d.host == cx.host_id));
        let tables = any_stack.then(|| {
            let d = Desired::new(
                self,
                "cron:tables",
                cx.host_id,
                cx.host_id,
                "no job under a legacy root or with a missing script in any cron table\n".into(),
            );
            let spec = Spec::Tables {
                managed,
                legacy_roots: roots.clone(),
            };
            (d, spec)
        });
        for (user, jobs) in by_user {
            let ctx = minijinja::context! { jobs => minijinja::value::Serde(&jobs) };
            let content = cx.templates.render("cron/block.j2", ctx)?;
            let scripts: Vec<String> = jobs
                .iter()
                .flat_map(|j| j.scripts.iter().cloned())
                .collect();
            let legacy_roots: Vec<String> = roots
                .iter()
                .map(|r| crate::model::expand_home(r, user))
                .collect();
            let d = Desired::new(
                self,
                format!("cron:{user}"),
                cx.host_id,
                cx.host_id,
                content,
            );
            let spec = Spec::User {
                user: user.to_string(),
                scripts,
                legacy_roots,
            };
            out.push((d, spec));
        }
        out.extend(tables);
        Ok(out)
    }

    fn read_script(&self, _: &Desired, spec: &Spec) -> Result<Script, ScriptError> {
        match spec {
            Spec::Tables { .. } => tables_read_script(),
            Spec::User { user, scripts, .. } => {
                shell::render("kinds/cron/read.sh", minijinja::context! { user, scripts })
            }
        }
    }

    fn observe(
        &self,
        _: &Desired,
        spec: &Spec,
        s: &Section,
        _: &dyn SecretHashes,
    ) -> Result<Facts, String> {
        let scripts = match spec {
            Spec::Tables {
                managed,
                legacy_roots,
            } => return tables::observe(managed, legacy_roots, s).map(Facts::Tables),
            Spec::User { scripts, .. } => scripts,
        };
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
        let scripts = scripts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let state = s.get(&format!("script.{i}")).unwrap_or("unknown");
                (p.clone(), state.to_string())
            })
            .collect();
        Ok(Facts::User(UserFacts { crontab, scripts }))
    }

    fn compare(&self, d: &Desired, spec: &Spec, actual: &Facts) -> Verdict {
        let (user, roots, facts) = match (spec, actual) {
            (Spec::Tables { .. }, Facts::Tables(f)) => return tables::compare(f),
            (
                Spec::User {
                    user, legacy_roots, ..
                },
                Facts::User(f),
            ) => (user, legacy_roots, f),
            _ => {
                return Verdict::Unknown {
                    reason: mismatch(d),
                };
            }
        };
        let current = facts.crontab.as_str();
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
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
                "`{}` refers to a legacy root that no longer exists",
                crate::secrets::mask_line(line)
            ));
        }
        let mut unknown = Vec::new();
        for (path, state) in &facts.scripts {
            match state.as_str() {
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
        // Only the lines that change: the operator's other jobs stay out
        // of plans and receipts.
        let what = format!("crontab of {user}");
        let diff = super::changed_lines_diff(&what, current, &want);
        super::drift_with(current.is_empty(), &reasons, diff)
    }

    fn apply(
        &self,
        d: &Desired,
        spec: &Spec,
        actual: &Facts,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, super::KindError> {
        let (user, scripts, roots, facts) = match (spec, actual) {
            (Spec::Tables { .. }, Facts::Tables(f)) => {
                return Ok(super::Change::new(tables::apply(f)?));
            }
            (
                Spec::User {
                    user,
                    scripts,
                    legacy_roots,
                },
                Facts::User(f),
            ) => (user, scripts, legacy_roots, f),
            _ => return Err(super::KindError::Shape(mismatch(d))),
        };
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        let crontab = desired_crontab(&facts.crontab, &d.content, &roots);
        // A job whose script is missing would fail silently every night: the
        // script refuses before changing anything.
        let script = shell::render(
            "kinds/cron/apply.sh",
            minijinja::context! {
                user,
                scripts,
                crontab_b64 => shell::b64(&crontab),
            },
        )?;
        Ok(super::Change::new(script))
    }
}

/// The read script of every cron table on the host (`cron:tables`, also
/// read by `spine import`): `tables-read.sh`, which runs `tables-root.sh`
/// as root in one sudo call (passed to `sh -c` quoted, as any value).
pub fn tables_read_script() -> Result<Script, ScriptError> {
    let root = shell::render("kinds/cron/tables-root.sh", minijinja::context! {})?;
    let root = root.as_str();
    shell::render("kinds/cron/tables-read.sh", minijinja::context! { root })
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

    /// A crontab diff shows only the lines that change: the operator's own
    /// jobs around the block (one with a bare-word password no masking
    /// rule can see) stay out of plans and receipts.
    #[test]
    fn diff_shows_only_changed_lines() {
        let desired = Desired::new(&Cron, "cron:ronny", "h", "h", BLOCK.into());
        let spec = Spec::User {
            user: "ronny".into(),
            scripts: Vec::new(),
            legacy_roots: Vec::new(),
        };
        let crontab = "MAILTO=a\n15 2 * * * mysqldump -phunter2 db > /b.sql\n5 * * * * /other\n\
            # BEGIN spine managed block (x)\n0 3 * * * /old.sh\n# END spine managed block\n";
        let facts = Facts::User(UserFacts {
            crontab: crontab.into(),
            scripts: Vec::new(),
        });
        let Verdict::Drift { action, diff, .. } =
            TypedKind::compare(&Cron, &desired, &spec, &facts)
        else {
            panic!("a changed block is drift")
        };
        let diff = diff.unwrap();
        assert_eq!(action, crate::kinds::Action::Change);
        assert!(
            diff.contains("-0 3 * * * /old.sh\n") && diff.contains("+0 3 * * * /new.sh\n"),
            "{diff}"
        );
        for unchanged in ["hunter2", "MAILTO", "/other", "BEGIN spine"] {
            assert!(!diff.contains(unchanged), "{unchanged} in\n{diff}");
        }
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
