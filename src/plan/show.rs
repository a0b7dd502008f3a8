//! How a plan reads: per host the path used, each action with its reason and
//! diff, unknowns listed, then a summary.

use std::fmt::Write as _;

use super::{HostPlan, Plan};
use crate::gather::ssh::FailKind;
use crate::kinds::{Action, Verdict};

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn diff_lines(diff: &str, color: bool) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let l = if line.starts_with('+') && !line.starts_with("+++") {
            paint(line, "32", color)
        } else if line.starts_with('-') && !line.starts_with("---") {
            paint(line, "31", color)
        } else if line.starts_with("@@") {
            paint(line, "36", color)
        } else {
            line.to_string()
        };
        let _ = writeln!(out, "      {l}");
    }
    out
}

pub fn host(h: &HostPlan, color: bool, verbose: bool) -> String {
    let mut out = String::new();
    match &h.route {
        Some(r) => {
            let _ = writeln!(
                out,
                "host {} (via {})",
                paint(&h.host, "1", color),
                r.describe()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "host {}: {}",
                paint(&h.host, "1", color),
                paint("unreachable", "31", color)
            );
        }
    }
    for f in &h.failures {
        let _ = writeln!(out, "  path {} failed: {:?}: {}", f.route, f.kind, f.detail);
        if f.kind != FailKind::Other {
            let _ = writeln!(out, "    hint: {}", f.kind.hint());
        }
    }
    if let Some(e) = &h.error {
        let _ = writeln!(out, "  error: {e}");
    }
    if let Some(vm) = &h.vm {
        let _ = writeln!(
            out,
            "  {} vm {} on {}: unknown: {}; run `{}`",
            paint("?", "33", color),
            vm.vmid,
            vm.proxmox_host,
            vm.reason,
            vm.run
        );
    }
    for p in &h.health {
        let status = crate::health::show::paint(p.status.as_str(), p.status, color);
        let time = match p.status {
            crate::health::Status::Skip => String::new(),
            _ => format!(" {}", crate::health::show::time(p.time_ms)),
        };
        let note = if p.note.is_empty() {
            String::new()
        } else {
            format!(": {}", p.note)
        };
        let _ = writeln!(out, "  health {} {status}{time} {}{note}", p.id, p.path);
    }
    for r in &h.resources {
        let name = r
            .desired
            .path
            .clone()
            .unwrap_or_else(|| r.desired.id.clone());
        let on = if r.desired.about != h.host {
            format!(" (for {})", r.desired.about)
        } else {
            String::new()
        };
        match &r.verdict {
            Verdict::InSync => {
                if verbose {
                    let _ = writeln!(
                        out,
                        "  {} {} {name}{on}: in sync",
                        paint("=", "2", color),
                        r.desired.kind
                    );
                }
            }
            Verdict::Unknown { reason } => {
                let _ = writeln!(
                    out,
                    "  {} {} {name}{on}: unknown: {reason}",
                    paint("?", "33", color),
                    r.desired.kind
                );
            }
            Verdict::Drift {
                action,
                reason,
                diff,
            } => {
                let (sym, code, word) = match action {
                    Action::Create => ("+", "32", "create"),
                    Action::Change => ("~", "33", "change"),
                    Action::Remove => ("-", "31", "remove"),
                };
                let _ = writeln!(
                    out,
                    "  {} {} {name}{on}: {word}: {reason}",
                    paint(sym, code, color),
                    r.desired.kind
                );
                if let Some(d) = diff {
                    out.push_str(&diff_lines(d, color));
                }
            }
        }
    }
    out
}

pub fn text(plan: &Plan, color: bool, verbose: bool) -> String {
    let mut out = String::new();
    for h in &plan.hosts {
        out.push_str(&host(h, color, verbose));
        out.push('\n');
    }
    let _ = writeln!(out, "summary: {}", plan.summary);
    out
}

/// The plan as JSON, in the form a saved plan keeps: observed file text
/// (compose, netplan, crontab) as hashes only, since it may hold secrets.
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(&plan.for_storage()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::health::{Check, Status};

    #[test]
    fn json_output_keeps_observed_file_text_as_hashes() {
        let kind: &dyn crate::kinds::Kind = &crate::kinds::cron::Cron;
        let resource = crate::plan::ResourcePlan {
            desired: crate::kinds::Desired::new(
                kind,
                "cron:ronny",
                "immich",
                "immich",
                String::new(),
            ),
            verdict: crate::kinds::Verdict::InSync,
            observed: Some(serde_json::json!({"crontab": "0 3 * * * TOKEN=hunter2 /x"})),
        };
        let plan = crate::plan::Plan {
            format_version: crate::plan::FORMAT_VERSION,
            tool: "spine test".into(),
            created: "2026-01-01T00:00:00Z".into(),
            registry_hash: String::new(),
            summary: crate::plan::Summary::default(),
            hosts: vec![crate::plan::HostPlan {
                host: "immich".into(),
                route: None,
                failures: Vec::new(),
                error: None,
                fingerprint: None,
                resources: vec![resource],
                health: Vec::new(),
                vm: None,
            }],
        };
        let out = super::json(&plan);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("sha256"), "{out}");
    }
    use crate::plan::HostPlan;

    #[test]
    fn health_beside_the_host_and_old_plans_unchanged() {
        let old = serde_json::json!({"host": "immich", "route": null, "failures": [],
            "error": null, "fingerprint": null, "resources": []});
        let mut h: HostPlan = serde_json::from_value(old.clone()).unwrap();
        assert!(h.health.is_empty());
        // A plan saved before `health` existed serialises to the same bytes,
        // so its checksum still holds.
        assert_eq!(serde_json::to_value(&h).unwrap(), old);
        h.health.push(Check {
            id: "immich-ping".into(),
            host: "immich".into(),
            url: "http://10.203.1.203:2283/api/server/ping".into(),
            path: "/api/server/ping".into(),
            status: Status::Timeout,
            http_status: None,
            time_ms: 5000,
            note: "no connection within 5.0s".into(),
        });
        let text = super::host(&h, false, false);
        assert_eq!(
            text,
            "host immich: unreachable\n  \
             health immich-ping TIMEOUT 5.00s /api/server/ping: no connection within 5.0s\n"
        );
    }
}
