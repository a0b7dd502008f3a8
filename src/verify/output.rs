//! How `spine verify` reports: text (one line per gate, then diagnostics),
//! JSON (versioned), JUnit XML and GitHub workflow annotations.

use std::fmt::Write as _;

use miette::{GraphicalReportHandler, GraphicalTheme};
use serde_json::json;

use super::{Outcome, Status};
use crate::diag::{Diag, Severity};

/// Major version of the JSON shape; consumers must reject an unknown major.
pub const JSON_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
    Github,
}

/// The overall verdict: PASS, FAIL, or ERROR when the registry could not be read.
pub fn verdict(outcome: &Outcome, strict: bool) -> &'static str {
    if outcome.count(Status::Fail) > 0 || (strict && outcome.count(Status::Warn) > 0) {
        "FAIL"
    } else {
        "PASS"
    }
}

/// Render diagnostics the way miette draws them, in colour or not.
pub fn render_diag(d: &Diag, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("{}: {}\n", d.file, d.message);
    }
    // A redacted finding has no source: still say where it is.
    if d.at.line > 0 && !out.contains(&format!("{}:{}", d.file, d.at.line)) {
        out.push_str(&format!("  at {}:{}:{}\n", d.file, d.at.line, d.at.column));
    }
    out
}

fn paint(s: &str, status: Status, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "31",
        Status::Warn => "33",
        Status::Skip => "36",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The short report that leads the text output: the verdict, each problem
/// on one line (`GATE FILE:LINE:COL message`), and the files read.
fn lead(outcome: &Outcome, strict: bool, color: bool) -> String {
    let mut out = String::new();
    let verdict = verdict(outcome, strict);
    let shown = if verdict == "PASS" {
        Status::Pass
    } else {
        Status::Fail
    };
    let _ = writeln!(
        out,
        "verify: {} ({} fail, {} warn, {} skip, {} pass of {} gates)",
        paint(verdict, shown, color),
        outcome.count(Status::Fail),
        outcome.count(Status::Warn),
        outcome.count(Status::Skip),
        outcome.count(Status::Pass),
        outcome.gates.len(),
    );
    let mut diags: Vec<&Diag> = outcome.gates.iter().flat_map(|g| g.diags.iter()).collect();
    // Errors first, then warnings; each in gate order.
    diags.sort_by_key(|d| std::cmp::Reverse(d.severity));
    for d in diags {
        let (word, status) = match d.severity {
            Severity::Error => ("error", Status::Fail),
            Severity::Warning => ("warn ", Status::Warn),
        };
        let at = if d.at.line > 0 {
            format!("{}:{}:{}", d.file, d.at.line, d.at.column)
        } else {
            d.file.clone()
        };
        let _ = writeln!(
            out,
            "  {} {} {at} {}",
            d.gate,
            paint(word, status, color),
            d.message
        );
    }
    if !outcome.files.is_empty() {
        let _ = writeln!(out, "read: {}", outcome.files.join(", "));
    }
    out.push('\n');
    out
}

pub fn text(outcome: &Outcome, strict: bool, color: bool, quiet: bool) -> String {
    let mut out = lead(outcome, strict, color);
    for g in &outcome.gates {
        if quiet && g.status == Status::Pass {
            continue;
        }
        let status = paint(g.status.as_str(), g.status, color);
        let _ = write!(out, "{} {status} {}", g.id, g.name);
        if let Some(r) = &g.reason {
            let _ = write!(out, " ({r})");
        } else if g.checked > 0 {
            let _ = write!(out, " [{} checked]", g.checked);
        }
        out.push('\n');
    }
    let diags: Vec<&Diag> = outcome.gates.iter().flat_map(|g| g.diags.iter()).collect();
    if !diags.is_empty() {
        out.push('\n');
        for d in diags {
            out.push_str(&render_diag(d, color));
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "summary: {} gates, {} pass, {} fail, {} warn, {} skip ({})",
        outcome.gates.len(),
        outcome.count(Status::Pass),
        outcome.count(Status::Fail),
        outcome.count(Status::Warn),
        outcome.count(Status::Skip),
        outcome.origin
    );
    let verdict = verdict(outcome, strict);
    let failing = outcome.failing_ids();
    if failing.is_empty() {
        let _ = writeln!(out, "status: {verdict}");
    } else {
        let _ = writeln!(out, "status: {verdict} ({})", failing.join(", "));
    }
    out
}

fn diag_json(d: &Diag) -> serde_json::Value {
    json!({
        "gate": d.gate,
        "code": format!("spine::{}", d.gate),
        "severity": d.severity,
        "file": d.file,
        "line": d.at.line,
        "column": d.at.column,
        "pointer": d.pointer,
        "message": d.message,
        "help": d.help,
        "related": d.others().iter().map(|o| json!({
            "file": o.file, "line": o.at.line, "column": o.at.column, "pointer": o.pointer, "message": o.message,
        })).collect::<Vec<_>>(),
    })
}

pub fn json(outcome: &Outcome, strict: bool) -> String {
    let diags: Vec<_> = outcome
        .gates
        .iter()
        .flat_map(|g| g.diags.iter())
        .map(diag_json)
        .collect();
    let v = json!({
        "format_version": JSON_FORMAT_VERSION,
        "tool": format!("spine {}", env!("CARGO_PKG_VERSION")),
        "registry": outcome.origin,
        "files": outcome.files,
        "gates": outcome.gates.iter().map(|g| json!({
            "id": g.id, "name": g.name, "status": g.status, "reason": g.reason, "help": g.help,
            "diagnostics": g.diags.len(), "checked": g.checked,
        })).collect::<Vec<_>>(),
        "diagnostics": diags,
        "summary": {
            "total": outcome.gates.len(),
            "pass": outcome.count(Status::Pass),
            "fail": outcome.count(Status::Fail),
            "warn": outcome.count(Status::Warn),
            "skip": outcome.count(Status::Skip),
            "failing_ids": outcome.failing_ids(),
            "status": verdict(outcome, strict),
        },
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// The registry could not be read: the same JSON shape, status ERROR.
pub fn json_failures(origin: &str, failures: &[Diag]) -> String {
    let v = json!({
        "format_version": JSON_FORMAT_VERSION,
        "tool": format!("spine {}", env!("CARGO_PKG_VERSION")),
        "registry": origin,
        "gates": [],
        "diagnostics": failures.iter().map(diag_json).collect::<Vec<_>>(),
        "summary": {"total": 0, "pass": 0, "fail": 0, "warn": 0, "skip": 0, "failing_ids": [], "status": "ERROR"},
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(outcome: &Outcome, strict: bool) -> String {
    let failures = outcome
        .gates
        .iter()
        .filter(|g| g.status == Status::Fail || (strict && g.status == Status::Warn))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"spine verify\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">",
        outcome.gates.len(),
        outcome.count(Status::Skip)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">",
        xml(&outcome.origin),
        outcome.gates.len(),
        outcome.count(Status::Skip)
    );
    if !outcome.files.is_empty() {
        out.push_str("    <properties>\n");
        for f in &outcome.files {
            let _ = writeln!(out, "      <property name=\"file\" value=\"{}\"/>", xml(f));
        }
        out.push_str("    </properties>\n");
    }
    for g in &outcome.gates {
        let _ = write!(
            out,
            "    <testcase classname=\"spine.verify\" name=\"{} {}\"",
            g.id,
            xml(g.name)
        );
        let failed = g.status == Status::Fail || (strict && g.status == Status::Warn);
        if g.status == Status::Pass || (g.status == Status::Warn && !failed) && g.diags.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        let body: String = g
            .diags
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{}: {}{}\n",
                    d.file,
                    d.at.line,
                    d.at.column,
                    d.message,
                    if d.help.is_empty() {
                        String::new()
                    } else {
                        format!(" (help: {})", d.help)
                    }
                )
            })
            .collect();
        if g.status == Status::Skip {
            let _ = writeln!(
                out,
                "      <skipped message=\"{}\"/>",
                xml(g.reason.as_deref().unwrap_or(""))
            );
        } else if failed {
            let first = g.diags.first().map_or(String::new(), |d| d.message.clone());
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                xml(&first),
                g.id,
                xml(&body)
            );
        } else {
            let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&body));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: one annotation per diagnostic.
pub fn github(outcome: &Outcome, strict: bool) -> String {
    let mut out = String::new();
    for d in outcome.gates.iter().flat_map(|g| g.diags.iter()) {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning if strict => "error",
            Severity::Warning => "warning",
        };
        let msg = if d.help.is_empty() {
            d.message.clone()
        } else {
            format!("{}\nhelp: {}", d.message, d.help)
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            gh_prop(&d.file),
            d.at.line,
            d.at.column,
            gh_prop(&format!("spine {}", d.gate)),
            gh_data(&msg)
        );
    }
    for g in &outcome.gates {
        let _ = writeln!(out, "{} {} {}", g.id, g.status.as_str(), g.name);
    }
    if !outcome.files.is_empty() {
        let _ = writeln!(out, "read: {}", outcome.files.join(", "));
    }
    let _ = writeln!(out, "status: {}", verdict(outcome, strict));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes() {
        assert_eq!(gh_prop("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(gh_data("x\ny"), "x%0Ay");
    }
}
