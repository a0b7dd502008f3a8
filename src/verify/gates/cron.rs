//! V09-V10: cron jobs that can run, and that run what still exists.

use std::collections::BTreeMap;

use croner::parser::{CronParser, Seconds, Year};

use super::stack;
use crate::diag::Finding;
use crate::model::expand_home;
use crate::verify::{Ctx, Gate};

pub const SCHEDULES: Gate = Gate {
    id: "V09",
    name: "cron schedules are valid and can fire",
    help: "Each cron job's `schedule` is a 5-field expression or @hourly/@daily/@weekly/@monthly/@yearly/@reboot that fires at least once (e.g. `0 3 31 2 *` never does); job ids are unique.",
    subject: "cron jobs (stacks' `desired.cron`)",
    run: schedules,
};

pub const PATHS: Gate = Gate {
    id: "V10",
    name: "cron scripts are absolute and outside legacy roots",
    help: "Each cron job's `scripts` are absolute paths, and neither they nor the command refer to a path under any stack's `legacy_roots` (a removed tree makes the job fail silently).",
    subject: "cron jobs (stacks' `desired.cron`)",
    run: paths,
};

/// Why a schedule is unusable, or `None` when it fires.
pub fn schedule_problem(spec: &str) -> Option<(String, String)> {
    let spec = spec.trim();
    if spec.starts_with('@') {
        return match spec {
            "@reboot" | "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily"
            | "@midnight" | "@hourly" => None,
            _ => Some((
                format!("`{spec}` is not a cron nickname"),
                "use @hourly, @daily, @weekly, @monthly, @yearly or @reboot".into(),
            )),
        };
    }
    let fields = spec.split_whitespace().count();
    if fields != 5 {
        return Some((
            format!(
                "a cron schedule has 5 fields (minute hour day-of-month month day-of-week), this one has {fields}"
            ),
            "write e.g. `0 3 * * *` for 03:00 daily".into(),
        ));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let cron = match parser.parse(spec) {
        Ok(c) => c,
        Err(e) => {
            return Some((
                format!("invalid cron schedule: {e}"),
                "see crontab(5) for the field ranges".into(),
            ));
        }
    };
    // Search a leap-year cycle from a fixed instant: a schedule that fires at all
    // fires within four years.
    let start = jiff::civil::date(2024, 1, 1).at(0, 0, 0, 0);
    let horizon = jiff::civil::date(2028, 1, 2).at(0, 0, 0, 0);
    match cron.find_next_occurrence(&start, true) {
        Ok(next) if next < horizon => None,
        _ => Some((
            format!("cron schedule `{spec}` never fires (no such date)"),
            "check the day-of-month and month fields: e.g. February has no 30th or 31st".into(),
        )),
    }
}

fn schedules(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut ids: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(d) = &st.desired else { continue };
        for (j, job) in d.cron.iter().enumerate() {
            *n += 1;
            let idx = j.to_string();
            if let Some((message, help)) = schedule_problem(&job.schedule) {
                out.push(
                    Finding::error(
                        "V09",
                        stack(i, &["desired", "cron", &idx, "schedule"]),
                        message,
                    )
                    .label("this schedule")
                    .help(help),
                );
            }
            if let Some(&(fi, fj)) = ids.get(job.id.as_str()) {
                out.push(
                    Finding::error(
                        "V09",
                        stack(i, &["desired", "cron", &idx, "id"]),
                        format!("cron job id `{}` is used twice", job.id),
                    )
                    .label("second use")
                    .help("job ids mark the managed crontab lines: make each one unique")
                    .related(
                        stack(fi, &["desired", "cron", &fj.to_string(), "id"]),
                        "first used here",
                    ),
                );
            } else {
                ids.insert(&job.id, (i, j));
            }
        }
    }
    out
}

/// Whether `path` is `root` or below it.
fn under(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn paths(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    // Legacy roots hold everywhere: a removed tree is gone for every stack.
    let roots: Vec<(usize, usize, &str)> = ctx
        .stacks
        .stacks
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.desired.iter().flat_map(move |d| {
                d.legacy_roots
                    .iter()
                    .enumerate()
                    .map(move |(k, r)| (i, k, r.as_str()))
            })
        })
        .collect();
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(d) = &st.desired else { continue };
        for (j, job) in d.cron.iter().enumerate() {
            *n += 1;
            let idx = j.to_string();
            for (k, script) in job.scripts.iter().enumerate() {
                let place = stack(i, &["desired", "cron", &idx, "scripts", &k.to_string()]);
                if !script.starts_with('/') {
                    out.push(
                        Finding::error("V10", place.clone(), format!("cron script `{script}` is not an absolute path"))
                            .label("relative path")
                            .help("cron runs with a minimal environment and the user's home as working directory: write the full path, e.g. /home/USER/bin/script.sh"),
                    );
                }
            }
            // Expanded once per job, not once per (job, root): a large
            // registry has hundreds of each.
            let scripts: Vec<String> = job
                .scripts
                .iter()
                .map(|sc| expand_home(sc, &job.user))
                .collect();
            let words: Vec<String> = job
                .command
                .split(|c: char| {
                    c.is_whitespace()
                        || matches!(
                            c,
                            ';' | '&' | '|' | '<' | '>' | '(' | ')' | '"' | '\'' | '='
                        )
                })
                .filter(|w| !w.is_empty())
                .map(|w| expand_home(w, &job.user))
                .collect();
            for &(ri, rk, root) in &roots {
                let expanded = expand_home(root, &job.user);
                let root_place = || stack(ri, &["desired", "legacy_roots", &rk.to_string()]);
                for (k, script) in job.scripts.iter().enumerate() {
                    if under(&scripts[k], &expanded) {
                        out.push(
                            Finding::error("V10", stack(i, &["desired", "cron", &idx, "scripts", &k.to_string()]), format!(
                                "cron job `{}` runs `{script}`, under the legacy root `{root}`", job.id
                            ))
                            .label("under a removed tree")
                            .help("move the script into a live path and update the job; the legacy tree is gone, so the job would fail silently")
                            .related(root_place(), "legacy root declared here"),
                        );
                    }
                }
                if words.iter().any(|w| under(w, &expanded)) {
                    out.push(
                        Finding::error(
                            "V10",
                            stack(i, &["desired", "cron", &idx, "command"]),
                            format!("cron job `{}` refers to the legacy root `{root}`", job.id),
                        )
                        .label("refers to a removed tree")
                        .help("point the command at the script's new home")
                        .related(root_place(), "legacy root declared here"),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert!(schedule_problem("0 3 * * *").is_none());
        assert!(schedule_problem("@daily").is_none());
        assert!(schedule_problem("*/15 * * * 1-5").is_none());
        assert!(schedule_problem("0 0 29 2 *").is_none(), "leap day fires");
        assert!(
            schedule_problem("0 3 31 2 *")
                .unwrap()
                .0
                .contains("never fires")
        );
        assert!(
            schedule_problem("0 3 30 2 *")
                .unwrap()
                .0
                .contains("never fires")
        );
        assert!(
            schedule_problem("61 3 * * *")
                .unwrap()
                .0
                .contains("invalid")
        );
        assert!(schedule_problem("0 3 * *").unwrap().0.contains("5 fields"));
        assert!(schedule_problem("@dayly").is_some());
    }

    #[test]
    fn under_is_by_component() {
        assert!(under("/home/r/ronny-ops/x.sh", "/home/r/ronny-ops"));
        assert!(under("/home/r/ronny-ops", "/home/r/ronny-ops/"));
        assert!(!under("/home/r/ronny-ops2/x", "/home/r/ronny-ops"));
    }
}
