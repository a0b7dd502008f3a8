//! Every cron table on the host (`cron:tables`): each user's crontab,
//! `/etc/crontab` and `/etc/cron.d/*`. A job that refers to a legacy root
//! can only fail silently: it is reported with file and line and removed
//! (the table backed up first). A job whose script is missing or not
//! executable is reported with file, line and the fix; spine does not
//! deploy scripts, so apply leaves it and fails naming it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::{Action, Verdict};
use super::refers_to;
use crate::gather::script::Section;
use crate::shell::{self, Script, ScriptError};

const SPOOL: &str = "/var/spool/cron/crontabs/";

/// One job line of a table, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The table's path (`/etc/cron.d/x`, `/var/spool/cron/crontabs/USER`).
    pub table: String,
    /// 1-based line number in the table.
    pub line: usize,
    /// The line, secret values masked.
    pub text: String,
    /// The job refers to a legacy root (apply removes it); otherwise its
    /// script is missing or not executable (apply leaves it and fails).
    pub legacy: bool,
    pub why: String,
    /// The exact command that removes the job by hand.
    pub by_hand: String,
}

/// What was found in every cron table of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub findings: Vec<Finding>,
    /// The text of each table with a legacy job: apply rewrites it without them.
    pub tables: BTreeMap<String, String>,
}

/// The job's command, after the schedule (and the user field of system tables).
fn command(line: &str, system: bool) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let first = t.split_whitespace().next()?;
    // An environment line (`MAILTO=x`, `PATH=...`).
    if !first.starts_with('@') && first.contains('=') {
        return None;
    }
    let mut skip = if first.starts_with('@') { 1 } else { 5 };
    if system {
        skip += 1;
    }
    let mut rest = t;
    for _ in 0..skip {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace)?;
        rest = &rest[end..];
    }
    Some(rest.trim())
}

/// The script a command runs: its program when absolute, or the script an
/// absolute or plain shell interpreter is given.
fn script_of(cmd: &str) -> Option<(&str, bool)> {
    let mut words = cmd.split_whitespace();
    let prog = words.next()?;
    let shells = [
        "sh",
        "bash",
        "dash",
        "/bin/sh",
        "/bin/bash",
        "/usr/bin/bash",
        "/bin/dash",
    ];
    if shells.contains(&prog) {
        let arg = words.find(|w| !w.starts_with('-'))?;
        return arg.starts_with('/').then_some((arg, false));
    }
    prog.starts_with('/').then_some((prog, true))
}

/// How many tables the read script read: without a count the host did not
/// answer, and no tables is not the same as tables not read.
fn count(s: &Section) -> Result<usize, String> {
    s.get("count")
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(|| "the host gave no count of its cron tables: they could not be read".into())
}

fn findings(managed: &[String], roots: &[String], s: &Section, n: usize) -> Vec<Finding> {
    let paths: BTreeMap<&str, &str> = s
        .get("paths")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit_once('|'))
        .collect();
    let mut out = Vec::new();
    for i in 1..=n {
        let name = s
            .get(&format!("t.{i}.name"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let owner = s.get(&format!("t.{i}.user")).unwrap_or_default().trim();
        let system = owner.is_empty();
        if !system && managed.iter().any(|m| m == owner) {
            continue; // the user's own cron:USER resource looks after it
        }
        for (no, line) in s
            .get(&format!("t.{i}.text"))
            .unwrap_or_default()
            .lines()
            .enumerate()
        {
            let Some(cmd) = command(line, system) else {
                continue;
            };
            let user = if system {
                line.split_whitespace()
                    .nth(if line.trim_start().starts_with('@') {
                        1
                    } else {
                        5
                    })
                    .unwrap_or("root")
            } else {
                owner
            };
            // A root as written (`~/ronny-ops`) and as the job's user sees it.
            let expanded: Vec<String> = roots
                .iter()
                .flat_map(|r| [r.to_string(), crate::model::expand_home(r, user)])
                .collect();
            let expanded: Vec<&str> = expanded.iter().map(String::as_str).collect();
            // The line as plans and output show it: secret values masked.
            let shown = crate::secrets::mask_line(line);
            let mut f = |legacy: bool, why: String| {
                out.push(Finding {
                    table: name.clone(),
                    line: no + 1,
                    by_hand: by_hand(&name, no + 1, &shown),
                    text: shown.clone(),
                    legacy,
                    why,
                })
            };
            if refers_to(line, &expanded) {
                f(true, "refers to a legacy root that no longer exists".into());
                continue;
            }
            let Some((script, must_exec)) = script_of(cmd) else {
                continue;
            };
            match paths.get(script).copied() {
                Some("-") => f(false, format!("its script {script} is missing")),
                Some("f") if must_exec => {
                    f(false, format!("its script {script} is not executable"))
                }
                _ => {}
            }
        }
    }
    out
}

/// The exact command that removes line `line` of `table` by hand.
fn by_hand(table: &str, line: usize, text: &str) -> String {
    match table.strip_prefix(SPOOL) {
        Some(user) => format!(
            "sudo crontab -u {} -e (delete the job `{}`)",
            shell::quote(user),
            text.trim()
        ),
        None => format!("sudo sed -i '{line}d' {}", shell::quote(table)),
    }
}

/// The findings of the host's tables (`managed`: users whose crontab has its
/// own resource; `roots`: the legacy roots as written).
pub fn observe(managed: &[String], roots: &[String], s: &Section) -> Result<Facts, String> {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    let n = count(s)?;
    let findings = findings(managed, roots, s, n);
    // The text of each table with a legacy job: apply rewrites it without them.
    let mut tables = BTreeMap::new();
    for i in 1..=n {
        let name = s.get(&format!("t.{i}.name")).unwrap_or_default().trim();
        if findings.iter().any(|f| f.legacy && f.table == name) {
            tables.insert(
                name.to_string(),
                s.get(&format!("t.{i}.text"))
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    Ok(Facts { findings, tables })
}

pub fn compare(facts: &Facts) -> Verdict {
    let found = &facts.findings;
    if found.is_empty() {
        return Verdict::InSync;
    }
    let reasons: Vec<String> = found
        .iter()
        .map(|f| {
            let fix = if f.legacy {
                format!("apply removes it; by hand: {}", f.by_hand)
            } else {
                format!(
                    "spine does not deploy scripts: deploy it, or remove the job: {}",
                    f.by_hand
                )
            };
            format!(
                "{}:{} `{}` {} ({fix})",
                f.table,
                f.line,
                f.text.trim(),
                f.why
            )
        })
        .collect();
    let legacy = found.iter().any(|f| f.legacy);
    Verdict::Drift {
        action: if legacy {
            Action::Remove
        } else {
            Action::Change
        },
        reason: reasons.join("; "),
        diff: None,
    }
}

/// Rewrite each table without its legacy lines; list what stays unfixed.
pub fn apply(facts: &Facts) -> Result<Script, ScriptError> {
    let found = &facts.findings;
    let (mut crontabs, mut files) = (Vec::new(), Vec::new());
    for (table, text) in &facts.tables {
        let drop: Vec<usize> = found
            .iter()
            .filter(|f| f.legacy && f.table == *table)
            .map(|f| f.line)
            .collect();
        let spool = table.starts_with(SPOOL);
        let lines: Vec<&str> = text.lines().collect();
        // Debian's crontab writes a 3-line header into the spool file and
        // writes it again on install: leave it out of what is installed.
        let header = if spool
            && lines
                .first()
                .is_some_and(|l| l.starts_with("# DO NOT EDIT THIS FILE"))
        {
            lines
                .iter()
                .take(3)
                .take_while(|l| l.starts_with('#'))
                .count()
        } else {
            0
        };
        let kept: String = lines
            .iter()
            .enumerate()
            .skip(header)
            .filter(|(i, _)| !drop.contains(&(i + 1)))
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        match table.strip_prefix(SPOOL) {
            Some(user) => crontabs.push(json!({"user": user, "b64": shell::b64(&kept)})),
            None => files.push(json!({"path": table, "b64": shell::b64(&kept)})),
        }
    }
    let unfixed: Vec<String> = found
        .iter()
        .filter(|f| !f.legacy)
        .map(|f| {
            format!(
                "{}:{}: {}: deploy it, or remove the job: {}",
                f.table, f.line, f.why, f.by_hand
            )
        })
        .collect();
    shell::render(
        "kinds/cron/tables-apply.sh",
        minijinja::context! {
            crontabs => minijinja::value::Serde(&crontabs),
            files => minijinja::value::Serde(&files),
            unfixed,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_scripts() {
        assert_eq!(command("0 3 * * * /a.sh x", false), Some("/a.sh x"));
        assert_eq!(command("0 3 * * * root /a.sh", true), Some("/a.sh"));
        assert_eq!(command("@daily root sh /b.sh", true), Some("sh /b.sh"));
        assert_eq!(command("MAILTO=x", false), None);
        assert_eq!(command("# 0 3 * * * /a.sh", false), None);
        assert_eq!(script_of("/a.sh x"), Some(("/a.sh", true)));
        assert_eq!(script_of("sh -e /b.sh"), Some(("/b.sh", false)));
        assert_eq!(script_of("echo hi"), None);
    }

    #[test]
    fn findings_by_table_and_line() {
        let (managed, roots) = (["ronny".to_string()], ["~/ronny-ops".to_string()]);
        let mut s = Section::default();
        let v = &mut s.values;
        v.insert("count".into(), "3".into());
        v.insert("t.1.name".into(), "/etc/cron.d/old".into());
        v.insert("t.1.user".into(), String::new());
        v.insert("t.1.text".into(), "SHELL=/bin/sh\n0 3 * * * ronny /home/ronny/ronny-ops/b.sh\n5 * * * * root /usr/local/bin/gone\n".into());
        v.insert("t.2.name".into(), "/var/spool/cron/crontabs/ronny".into());
        v.insert("t.2.user".into(), "ronny".into());
        v.insert(
            "t.2.text".into(),
            "0 3 * * * /home/ronny/ronny-ops/x\n".into(),
        );
        v.insert("t.3.name".into(), "/var/spool/cron/crontabs/bob".into());
        v.insert("t.3.user".into(), "bob".into());
        v.insert(
            "t.3.text".into(),
            "1 1 * * * /home/bob/ronny-ops/y.sh\n2 2 * * * /opt/ok.sh\n".into(),
        );
        v.insert(
            "paths".into(),
            "/usr/local/bin/gone|-\n/opt/ok.sh|x\n/bin/sh|x\n".into(),
        );
        let obs = observe(&managed, &roots, &s).unwrap();
        let f = &obs.findings;
        let got: Vec<String> = f
            .iter()
            .map(|f| format!("{}:{} {}", f.table, f.line, f.legacy))
            .collect();
        assert_eq!(
            got,
            [
                "/etc/cron.d/old:2 true",
                "/etc/cron.d/old:3 false",
                "/var/spool/cron/crontabs/bob:1 true"
            ]
        );
        assert_eq!(f[0].by_hand, "sudo sed -i '2d' '/etc/cron.d/old'");
        let Verdict::Drift { action, reason, .. } = compare(&obs) else {
            panic!()
        };
        assert_eq!(action, Action::Remove);
        assert!(reason.contains("/etc/cron.d/old:3 `5 * * * * root /usr/local/bin/gone` its script /usr/local/bin/gone is missing"), "{reason}");
        let script = apply(&obs).unwrap();
        assert!(script.as_str().contains("exit 3"));
    }

    /// A section without the count of tables (the read was cut short) is
    /// unknown, never "no tables, in sync"; a count of 0 is in sync.
    #[test]
    fn no_count_is_unknown_and_zero_tables_in_sync() {
        let e = observe(&[], &[], &Section::default()).unwrap_err();
        assert!(e.contains("no count of its cron tables"), "{e}");
        let mut s = Section::default();
        s.values.insert("count".into(), "0".into());
        assert_eq!(compare(&observe(&[], &[], &s).unwrap()), Verdict::InSync);
    }
}
