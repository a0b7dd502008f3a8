//! Stage 5: diff and plan. Desired against observed, per resource, with the
//! facts fingerprint that binds a saved plan to what was seen.

pub mod file;
pub mod show;
pub mod trust;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gather::HostFacts;
use crate::gather::script::Section;
use crate::gather::ssh::{PathFailure, Route};
use crate::kinds::{self, Action, Desired, SecretHashes, Verdict};

/// Major version of the plan format; readers refuse another major.
/// 2: a typed kind's parameters are its `spec` (JSON), `args` for a kind
/// still on string parameters. 3: every kind's parameters are its `spec`
/// (left out when the kind has none); `args` is gone.
pub const FORMAT_VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePlan {
    pub desired: Desired,
    pub verdict: Verdict,
    /// The normalised facts the verdict was drawn from (no secret values).
    pub observed: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    pub host: String,
    pub route: Option<Route>,
    pub failures: Vec<PathFailure>,
    /// Why the host could not be read, if it could not.
    pub error: Option<String>,
    /// SHA-256 over the observed facts of every resource on this host.
    pub fingerprint: Option<String>,
    pub resources: Vec<ResourcePlan>,
    /// The host's services.health checks, made beside the reading. Left out
    /// when there are none (plans saved before it still load and check).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<crate::health::Check>,
    /// A VM unreachable on every path: what its Proxmox host shows of it.
    /// Left out otherwise (older plans load and check unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<kinds::cloudinit::VmSeen>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub change: usize,
    pub unknown: usize,
    pub in_sync: usize,
    pub unreachable: usize,
    /// Left out when 0, so plans saved before removals existed keep their checksum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remove: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    pub fn changes(&self) -> usize {
        self.create + self.change + self.remove
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to change, {} to create, {} to remove, {} unknown ({} in sync",
            self.change, self.create, self.remove, self.unknown, self.in_sync
        )?;
        if self.unreachable > 0 {
            write!(
                f,
                ", {} host{} unreachable",
                self.unreachable,
                if self.unreachable == 1 { "" } else { "s" }
            )?;
        }
        f.write_str(")")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub tool: String,
    pub created: String,
    /// SHA-256 over the registry files the plan was made from.
    pub registry_hash: String,
    pub hosts: Vec<HostPlan>,
    pub summary: Summary,
}

/// SHA-256 of the canonical JSON of a value.
pub fn hash_json(v: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Fields of observed facts that hold a whole file's text (a compose or
/// netplan file, its parsed form, a crontab, the cron tables apply rewrites):
/// they may hold secrets.
const FILE_TEXT: &[&str] = &["text", "meaning", "crontab", "tables"];

/// Observed facts as a saved plan keeps them: each field of [`FILE_TEXT`]
/// replaced by `{"sha256": HEX}` of its JSON. The verdict keeps the diff that
/// `plan show` prints; apply reads the host again and never uses these.
pub fn stored_observed(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for key in FILE_TEXT {
            if let Some(x) = m.get_mut(*key) {
                *x = serde_json::json!({ "sha256": hash_json(x) });
            }
        }
    }
    v
}

impl Plan {
    /// The plan as a file keeps it: observed file text as hashes only.
    pub fn for_storage(&self) -> Plan {
        let mut p = self.clone();
        for r in p.hosts.iter_mut().flat_map(|h| h.resources.iter_mut()) {
            r.observed = r.observed.as_ref().map(stored_observed);
        }
        p
    }
}

/// Fingerprint of what was observed on one host.
pub fn fingerprint(resources: &[ResourcePlan]) -> String {
    let facts: BTreeMap<&str, (&Option<serde_json::Value>, Option<&str>)> = resources
        .iter()
        .map(|r| {
            let unknown = match &r.verdict {
                Verdict::Unknown { reason } => Some(reason.as_str()),
                _ => None,
            };
            (r.desired.id.as_str(), (&r.observed, unknown))
        })
        .collect();
    hash_json(&facts)
}

/// Mask, in every reason, diff and observed value, each secret value
/// fetched while planning: a value fetched for a later resource or host was
/// not yet known when an earlier one was compared. The hosts' fingerprints
/// were taken before, from the facts as read, as apply's re-check takes
/// them. Reasons and diffs, which quote what hosts sent and are printed,
/// get their control characters escaped ([`crate::safe::printable`]).
pub fn mask_known(hosts: &mut [HostPlan]) {
    let shown = |t: &str| crate::safe::printable(&crate::secrets::mask_known(t));
    fn mask_json(v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => *s = crate::secrets::mask_known(s),
            Value::Array(a) => a.iter_mut().for_each(mask_json),
            Value::Object(m) => m.values_mut().for_each(mask_json),
            _ => {}
        }
    }
    for r in hosts.iter_mut().flat_map(|h| h.resources.iter_mut()) {
        if let Some(o) = &mut r.observed {
            mask_json(o);
        }
        match &mut r.verdict {
            Verdict::Drift { reason, diff, .. } => {
                *reason = shown(reason);
                if let Some(d) = diff {
                    *d = shown(d);
                }
            }
            Verdict::Unknown { reason } => *reason = shown(reason),
            Verdict::InSync => {}
        }
    }
}

/// Compare one host's desired resources with what it reported.
pub fn plan_host(resources: &[Desired], facts: &HostFacts, secrets: &dyn SecretHashes) -> HostPlan {
    let mut out = Vec::new();
    for d in resources {
        let Some(kind) = kinds::by_name(&d.kind) else {
            continue;
        };
        let (verdict, observed) = match (&facts.report, &facts.error) {
            (Some(rep), _) => {
                let empty = Section::default();
                let section = rep.sections.get(&d.id).unwrap_or(&empty);
                match kind.observe(d, section, secrets) {
                    Ok(v) => (kind.compare(d, &v), Some(v)),
                    Err(reason) => (Verdict::Unknown { reason }, None),
                }
            }
            (None, Some(e)) => (Verdict::Unknown { reason: e.clone() }, None),
            (None, None) => (
                Verdict::Unknown {
                    reason: "host unreachable on every access path".into(),
                },
                None,
            ),
        };
        out.push(ResourcePlan {
            desired: d.clone(),
            verdict,
            observed,
        });
    }
    let fingerprint = facts.report.as_ref().map(|_| fingerprint(&out));
    HostPlan {
        host: facts.host.clone(),
        route: facts.route.clone(),
        failures: facts.failures.clone(),
        error: facts.error.clone(),
        fingerprint,
        resources: out,
        health: Vec::new(),
        vm: None,
    }
}

/// For every host unreachable on every path that is a VM with a cloudinit
/// resource on its Proxmox host: what that host shows of it.
pub fn explain_lost_vms(hosts: &mut [HostPlan]) {
    let seen: Vec<(usize, kinds::cloudinit::VmSeen)> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.route.is_none())
        .filter_map(|(i, h)| {
            let r = hosts
                .iter()
                .flat_map(|p| &p.resources)
                .find(|r| r.desired.kind == "cloudinit" && r.desired.about == h.host)?;
            let v = kinds::cloudinit::seen_from_pve(
                &h.host,
                &r.desired,
                &r.verdict,
                r.observed.as_ref(),
            );
            Some((i, v))
        })
        .collect();
    for (i, v) in seen {
        hosts[i].vm = Some(v);
    }
}

pub fn summarize(hosts: &[HostPlan]) -> Summary {
    let mut s = Summary::default();
    for h in hosts {
        if h.route.is_none() {
            s.unreachable += 1;
        }
        for r in &h.resources {
            match &r.verdict {
                Verdict::InSync => s.in_sync += 1,
                Verdict::Unknown { .. } => s.unknown += 1,
                Verdict::Drift {
                    action: Action::Create,
                    ..
                } => s.create += 1,
                Verdict::Drift {
                    action: Action::Change,
                    ..
                } => s.change += 1,
                Verdict::Drift {
                    action: Action::Remove,
                    ..
                } => s.remove += 1,
            }
        }
    }
    s
}

/// Current time as RFC 3339 UTC (seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[test]
    fn a_stored_plan_keeps_observed_file_text_as_hashes() {
        let observed = serde_json::json!({
            "exists": true,
            "mode": "644",
            "text": "services:\n  x:\n    image: a # token s3cr3t\n",
            "meaning": {"services": {"x": {"image": "a"}}},
            "crontab": "0 4 * * * curl -H 'Bearer s3cr3t' x\n",
        });
        let stored = stored_observed(&observed);
        let text = stored.to_string();
        assert!(
            !text.contains("s3cr3t") && !text.contains("image"),
            "{text}"
        );
        assert_eq!(stored["mode"], "644");
        assert_eq!(stored["text"]["sha256"].as_str().unwrap().len(), 64);
        assert_ne!(stored["text"], stored["crontab"]);
        // The same text, the same hash: a stale check can compare them.
        assert_eq!(stored, stored_observed(&observed));
    }

    /// A value a provider gave is masked in reasons, diffs and observed
    /// facts of the whole plan, whichever resource fetched it, and the
    /// fingerprint taken from the facts as read stays.
    #[test]
    fn known_values_are_masked_in_the_whole_plan() {
        let d = kinds::Desired::new(&kinds::cron::Cron, "cron:ronny", "h", "h", String::new());
        let line = "0 4 * * * /opt/x.sh Pk7-unseen-9";
        let mut hosts = [HostPlan {
            host: "h".into(),
            route: None,
            failures: Vec::new(),
            error: None,
            fingerprint: Some("f".into()),
            resources: vec![ResourcePlan {
                desired: d,
                verdict: Verdict::Drift {
                    action: kinds::Action::Change,
                    reason: format!("`{line}` refers to a legacy root"),
                    diff: Some(format!("-{line}\n")),
                },
                observed: Some(serde_json::json!({"findings": [{"text": line}]})),
            }],
            health: Vec::new(),
            vm: None,
        }];
        let before = serde_json::to_string(&hosts[0]).unwrap();
        mask_known(&mut hosts);
        assert_eq!(serde_json::to_string(&hosts[0]).unwrap(), before);
        let _s = crate::secrets::Secret::new("Pk7-unseen-9".into());
        mask_known(&mut hosts);
        let after = serde_json::to_string(&hosts[0]).unwrap();
        assert!(!after.contains("Pk7-unseen-9"), "{after}");
        assert_eq!(after.matches("(sensitive)").count(), 3, "{after}");
        assert_eq!(hosts[0].fingerprint.as_deref(), Some("f"));
        // A host's text cannot drive the terminal: escapes are escaped.
        if let Verdict::Drift { diff, .. } = &mut hosts[0].resources[0].verdict {
            *diff = Some("-x \u{1b}[2J\ty\n".into());
        }
        mask_known(&mut hosts);
        let Verdict::Drift { diff, .. } = &hosts[0].resources[0].verdict else {
            panic!()
        };
        assert_eq!(diff.as_deref(), Some("-x \\u{1b}[2J\ty\n"));
    }
}
