//! What an apply did, as one value: the output, the exit code and the
//! receipt are all read from an [`ApplyReport`], so they cannot disagree.

use serde::Serialize;

use super::HostOutcome;
use crate::kinds::Verdict;
use crate::plan::Plan;
use crate::receipt::{self, ActionResult, ApplySummary};

/// Something the plan wanted to know or change that this apply left as it
/// was: the run is not converged while any is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Left {
    pub host: String,
    /// The resource, or `None` for the whole host.
    pub resource: Option<String>,
    pub why: String,
}

/// One apply run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub run_id: String,
    /// One per host that had something to apply, in plan order; a host whose
    /// task panicked or was cancelled is here as failed, never missing.
    pub hosts: Vec<HostOutcome>,
    /// What the plan could not see and apply did not touch.
    pub left: Vec<Left>,
}

impl ApplyReport {
    /// The report of an apply that had nothing to change: only what the plan
    /// could not see is left.
    pub fn nothing_to_do(run_id: &str, plan: &Plan) -> ApplyReport {
        ApplyReport {
            run_id: run_id.to_string(),
            hosts: Vec::new(),
            left: left_by_plan(plan, &[]),
        }
    }

    /// The report from the hosts' outcomes, plus what the plan left unknown
    /// on hosts apply did not visit.
    pub fn new(run_id: &str, plan: &Plan, hosts: Vec<HostOutcome>) -> ApplyReport {
        let visited: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
        let mut left = left_by_plan(plan, &visited);
        for h in &hosts {
            left.extend(left_on(h));
        }
        ApplyReport {
            run_id: run_id.to_string(),
            hosts,
            left,
        }
    }

    /// Drop what this report says of `host` only where the run never reached
    /// it (an outcome without a route, what the plan left as unreachable or
    /// unknown): a later step of the same run knows better. What the run did
    /// on the host stays.
    pub fn forget_unreached(&mut self, host: &str) {
        self.hosts.retain(|h| h.host != host || h.route.is_some());
        self.left.retain(|l| l.host != host);
    }

    /// Add a later step's report (its hosts and what it left).
    pub fn extend(&mut self, later: ApplyReport) {
        self.hosts.extend(later.hosts);
        self.left.extend(later.left);
    }

    pub fn counts(&self) -> ApplySummary {
        let actions = || self.hosts.iter().flat_map(|h| &h.actions);
        let count = |r: ActionResult| actions().filter(|a| a.result == r).count() as u64;
        let unreachable_now = self.hosts.iter().filter(|h| h.route.is_none()).count();
        let unreachable_at_plan = self.left.iter().filter(|l| l.resource.is_none()).count();
        ApplySummary {
            // A removal changes the host too; receipts name it `removed` per action.
            changed: count(ActionResult::Changed) + count(ActionResult::Removed),
            failed: count(ActionResult::Failed),
            rolled_back: count(ActionResult::RolledBack),
            skipped: count(ActionResult::Skipped),
            unknown: self.left.iter().filter(|l| l.resource.is_some()).count() as u64,
            unreachable: (unreachable_now + unreachable_at_plan) as u64,
        }
    }

    /// Every host applied without error, and nothing is left.
    pub fn converged(&self) -> bool {
        self.hosts.iter().all(HostOutcome::ok) && self.left.is_empty()
    }

    pub fn touched(&self) -> bool {
        let c = self.counts();
        c.changed + c.failed + c.rolled_back > 0
    }

    pub fn status(&self) -> receipt::Status {
        if self.hosts.iter().any(|o| o.rolled_back) {
            receipt::Status::RolledBack
        } else if self.hosts.iter().any(|o| o.interrupted) {
            receipt::Status::Interrupted
        } else if !self.hosts.iter().all(HostOutcome::ok) {
            receipt::Status::Failed
        } else if !self.left.is_empty() {
            receipt::Status::Incomplete
        } else {
            receipt::Status::Ok
        }
    }

    /// 0 only when converged.
    pub fn exit_code(&self) -> u8 {
        if self.converged() { 0 } else { 1 }
    }

    /// The text shown to the operator: each host, its actions, then one line
    /// that says "apply OK" only when converged.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for o in &self.hosts {
            text.push_str(&format!("host {}: {}\n", o.host, o.state()));
            for a in &o.actions {
                let word = format!("{:?}", a.result).to_lowercase();
                text.push_str(&format!(
                    "  {word:<11} {} {}: {}\n",
                    a.kind, a.resource, a.message
                ));
            }
            if let Some(e) = &o.error {
                text.push_str(&format!("  error: {e}\n"));
            }
        }
        let backups = if self.touched() {
            format!(
                "backups of replaced files under /var/lib/spine/backups/{} on each host changed",
                self.run_id
            )
        } else {
            "nothing was changed".to_string()
        };
        if self.converged() {
            text.push_str(&format!(
                "apply OK: {} host(s); {backups}\n",
                self.hosts.len()
            ));
            return text;
        }
        let failed = !self.hosts.iter().all(HostOutcome::ok);
        text.push_str(&format!(
            "apply {}: {} host(s); {backups}\n",
            if failed { "FAILED" } else { "not converged" },
            self.hosts.len()
        ));
        if !self.left.is_empty() {
            text.push_str("not converged, left as it was:\n");
            for l in &self.left {
                match &l.resource {
                    Some(r) => text.push_str(&format!("  {} {r}: {}\n", l.host, l.why)),
                    None => text.push_str(&format!("  {}: {}\n", l.host, l.why)),
                }
            }
        }
        text
    }
}

/// What the plan could not see on hosts apply did not visit: unreachable
/// hosts and unknown resources.
fn left_by_plan(plan: &Plan, visited: &[&str]) -> Vec<Left> {
    let mut left = Vec::new();
    for h in plan
        .hosts
        .iter()
        .filter(|h| !visited.contains(&h.host.as_str()))
    {
        if h.fingerprint.is_none() {
            let why = h.error.clone().unwrap_or_else(|| {
                let paths: Vec<String> = h
                    .failures
                    .iter()
                    .map(|f| format!("{}: {}", f.route, f.detail))
                    .collect();
                if paths.is_empty() {
                    "unreachable".to_string()
                } else {
                    format!("unreachable ({})", paths.join("; "))
                }
            });
            left.push(Left {
                host: h.host.clone(),
                resource: None,
                why: format!(
                    "{why}; {} resource(s) not checked and not applied",
                    h.resources.len()
                ),
            });
            continue;
        }
        for r in &h.resources {
            if let Verdict::Unknown { reason } = &r.verdict {
                left.push(Left {
                    host: h.host.clone(),
                    resource: Some(r.desired.id.clone()),
                    why: format!("unknown, not changed: {reason}"),
                });
            }
        }
    }
    left
}

/// Resources a visited host skipped because they were unknown.
fn left_on(h: &HostOutcome) -> Vec<Left> {
    h.actions
        .iter()
        .filter(|a| a.result == ActionResult::Unknown)
        .map(|a| Left {
            host: h.host.clone(),
            resource: Some(a.resource.clone()),
            why: a.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Desired, Kind};
    use crate::plan::{HostPlan, ResourcePlan, Summary};

    fn resource(id: &str, verdict: Verdict) -> ResourcePlan {
        let kind: &dyn Kind = &crate::kinds::cron::Cron;
        ResourcePlan {
            desired: Desired::new(kind, id, "immich", "immich", String::new()),
            verdict,
            observed: None,
        }
    }

    fn host(name: &str, fingerprint: Option<&str>, resources: Vec<ResourcePlan>) -> HostPlan {
        HostPlan {
            host: name.into(),
            route: None,
            failures: Vec::new(),
            error: None,
            fingerprint: fingerprint.map(String::from),
            resources,
            health: Vec::new(),
            vm: None,
        }
    }

    fn plan(hosts: Vec<HostPlan>) -> Plan {
        Plan {
            format_version: crate::plan::FORMAT_VERSION,
            tool: "spine test".into(),
            created: "2026-01-01T00:00:00Z".into(),
            registry_hash: String::new(),
            summary: Summary::default(),
            hosts,
        }
    }

    #[test]
    fn an_unreachable_planned_host_is_not_converged() {
        let unknown = Verdict::Unknown {
            reason: "host unreachable on every access path".into(),
        };
        let p = plan(vec![
            host(
                "pve",
                Some("fp"),
                vec![resource("cloudinit:vm-203", Verdict::InSync)],
            ),
            host("immich", None, vec![resource("cron:ronny", unknown)]),
        ]);
        let r = ApplyReport::nothing_to_do("run", &p);
        assert!(!r.converged());
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.status(), receipt::Status::Incomplete);
        assert_eq!(r.counts().unreachable, 1);
        let t = r.text();
        assert!(!t.contains("apply OK"), "{t}");
        assert!(
            t.contains("not converged") && t.contains("immich: unreachable"),
            "{t}"
        );
    }

    #[test]
    fn an_unknown_resource_is_left_and_named() {
        let unknown = Verdict::Unknown {
            reason: "tailscale is not installed on this host".into(),
        };
        let p = plan(vec![host(
            "immich",
            Some("fp"),
            vec![resource("tailscale:prefs", unknown)],
        )]);
        let r = ApplyReport::nothing_to_do("run", &p);
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.counts().unknown, 1);
        assert!(
            r.text()
                .contains("immich tailscale:prefs: unknown, not changed"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn outcome_exit_code_and_receipt_agree() {
        let p = plan(vec![host(
            "immich",
            Some("fp"),
            vec![resource("cron:ronny", Verdict::InSync)],
        )]);
        let ok = ApplyReport::new("run", &p, vec![HostOutcome::new("immich")]);
        assert!(ok.converged());
        assert_eq!((ok.exit_code(), ok.status()), (0, receipt::Status::Ok));
        assert!(ok.text().contains("apply OK"), "{}", ok.text());

        let failed = ApplyReport::new(
            "run",
            &p,
            vec![HostOutcome::failed_host(
                "immich",
                "the apply of this host panicked",
            )],
        );
        assert_eq!(
            (failed.exit_code(), failed.status()),
            (1, receipt::Status::Failed)
        );
        assert!(failed.text().contains("apply FAILED"), "{}", failed.text());
        assert!(
            failed.text().contains("host immich: FAILED"),
            "{}",
            failed.text()
        );
    }
}
