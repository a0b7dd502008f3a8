//! The doctor report as text (for people) or JSON (for scripts).

use std::fmt::Write;

use super::findings::FindingStatus;
use super::trace::StepStatus;
use super::{FORMAT_VERSION, Report};

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub fn text(r: &Report, color: bool, quiet: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "doctor {} (ssh config: {})", r.host, r.ssh_config);
    for p in &r.paths {
        if quiet && p.works {
            continue;
        }
        let _ = writeln!(o, "path {}: {} -> {}", p.index, p.describe, p.target);
        for s in &p.steps {
            let (mark, code) = match s.status {
                StepStatus::Ok => ("ok  ", "32"),
                StepStatus::Fail => ("FAIL", "31"),
                StepStatus::NotTried => ("-   ", "2"),
            };
            let kind = s
                .kind
                .map(|k| {
                    format!(
                        "{}: ",
                        serde_json::to_value(k)
                            .unwrap_or_default()
                            .as_str()
                            .unwrap_or("")
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} {:<9} {kind}{}",
                paint(mark, code, color),
                s.step.replace('_', " "),
                s.detail
            );
        }
        for h in &p.hints {
            let _ = writeln!(o, "  hint: {h}");
        }
        let verdict = if p.works {
            paint("works", "32", color)
        } else {
            paint("does not work", "31", color)
        };
        let _ = writeln!(o, "  => {verdict}");
    }
    for f in &r.findings {
        let mark = match f.status {
            FindingStatus::Ok => "ok",
            FindingStatus::Differs => "DIFFERS",
            FindingStatus::Unknown => "unknown",
        };
        if quiet && f.status == FindingStatus::Ok {
            continue;
        }
        let _ = writeln!(o, "{} {mark}: {} [{}]", f.topic, f.detail, f.source);
    }
    let working: Vec<String> = r
        .paths
        .iter()
        .filter(|p| p.works)
        .map(|p| format!("{} ({})", p.index, p.describe))
        .collect();
    let s = &r.summary;
    let status = if working.is_empty() {
        format!("status: FAIL (none of {} paths works)", s.paths)
    } else if s.ssh_working == 0 {
        format!(
            "status: FAIL ({} of {} paths work: {}; but none of the {} SSH paths, and spine plans and applies over SSH)",
            working.len(),
            s.paths,
            working.join(", "),
            s.ssh_paths
        )
    } else {
        format!(
            "status: OK ({} of {} paths work: {})",
            working.len(),
            s.paths,
            working.join(", ")
        )
    };
    let _ = writeln!(o, "{status}");
    o
}

pub fn json(r: &Report) -> String {
    debug_assert_eq!(r.format_version, FORMAT_VERSION);
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
