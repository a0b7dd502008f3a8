//! `spine doctor HOST`: why can't I reach this host? Every access path the
//! registry gives is tried on its own, step by step (DNS, TCP, SSH banner,
//! host key, auth, command), and failures get a hint that uses what the
//! registry knows: the Proxmox host's cloud-init config for a VM, the
//! host's Tailscale state and addresses when some path works.
//!
//! Sits beside gather: it reads hosts (never writes) and reuses the ssh
//! failure classification of [`crate::gather::ssh`].

pub mod findings;
pub mod show;
pub mod trace;

use serde::Serialize;

use crate::gather::ssh::{self, FailKind, Route, SshOptions};
use crate::model::ServiceRegistry;
pub use findings::Finding;
use trace::{Step, StepStatus};

pub const FORMAT_VERSION: u32 = 1;

/// What kind of access path a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// One of the registry's `desired.access` paths, over SSH.
    Ssh,
    /// A VM's guest agent on its Proxmox host (`qm guest exec`): it needs
    /// no network in the VM, but spine cannot plan or apply over it.
    GuestAgent,
}

/// One access path and how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    /// 1-based: the registry's `desired.access` in order, then the guest agent.
    pub index: usize,
    pub kind: PathKind,
    /// The registry's route (none for the guest agent path).
    pub route: Option<Route>,
    pub describe: String,
    /// Where ssh really connects (after the ssh_config), `host:port`.
    pub target: String,
    pub steps: Vec<Step>,
    pub works: bool,
    pub hints: Vec<String>,
}

impl PathReport {
    /// The first step that failed.
    pub fn failed(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.status == StepStatus::Fail)
    }

    pub fn fail_kind(&self) -> Option<FailKind> {
        self.failed().and_then(|s| s.kind)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Every path tried, the guest agent's included.
    pub paths: usize,
    pub working: usize,
    /// Of them over SSH: spine plans and applies over these only.
    pub ssh_paths: usize,
    pub ssh_working: usize,
    /// `OK` (some SSH path works) or `FAIL`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub tool: String,
    pub host: String,
    pub ssh_config: String,
    pub paths: Vec<PathReport>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// Diagnose `host`: every path concurrently (each on its own connection),
/// the Proxmox check beside them, then what a working path can tell.
pub async fn diagnose(reg: &ServiceRegistry, host: &str, opts: &SshOptions) -> Report {
    let routes = ssh::routes(reg, host);
    let tasks: Vec<_> = routes
        .iter()
        .map(|r| {
            let (r, o) = (r.clone(), opts.clone());
            tokio::spawn(async move { trace::trace(&r, &o).await })
        })
        .collect();
    let (pve, agent) = findings::proxmox(reg, host, opts).await;
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| {
            let step = Step {
                step: "dns",
                status: StepStatus::Fail,
                kind: Some(FailKind::Other),
                detail: format!("the path trace failed: {e}"),
            };
            (vec![step], String::new(), false)
        }));
    }
    let mut paths: Vec<PathReport> = routes
        .iter()
        .zip(results)
        .enumerate()
        .map(|(i, (r, (steps, target, works)))| PathReport {
            index: i + 1,
            kind: PathKind::Ssh,
            route: Some(r.clone()),
            describe: r.describe(),
            target,
            steps,
            works,
            hints: Vec::new(),
        })
        .collect();
    let mut found: Vec<Finding> = pve;
    if let Some((p, r)) = paths
        .iter()
        .find_map(|p| Some((p, p.route.as_ref().filter(|_| p.works)?)))
    {
        found.extend(findings::on_host(reg, host, r, p.index, opts).await);
    }
    if let Some(a) = agent {
        paths.push(PathReport {
            index: paths.len() + 1,
            kind: PathKind::GuestAgent,
            route: None,
            describe: a.describe,
            target: a.target,
            works: a.works,
            steps: a.steps,
            hints: a.hints,
        });
    }
    let agent_path = paths
        .iter()
        .find(|p| p.kind == PathKind::GuestAgent)
        .cloned();
    for p in paths.iter_mut().filter(|p| p.kind == PathKind::Ssh) {
        p.hints = findings::hints(reg, host, p, &found, agent_path.as_ref());
    }
    let working = paths.iter().filter(|p| p.works).count();
    let ssh = paths.iter().filter(|p| p.kind == PathKind::Ssh);
    let ssh_paths = ssh.clone().count();
    let ssh_working = ssh.filter(|p| p.works).count();
    Report {
        format_version: FORMAT_VERSION,
        tool: format!("spine {}", env!("CARGO_PKG_VERSION")),
        host: host.to_string(),
        ssh_config: trace::config_name(opts),
        summary: Summary {
            paths: paths.len(),
            working,
            ssh_paths,
            ssh_working,
            status: if ssh_working > 0 { "OK" } else { "FAIL" },
        },
        paths,
        findings: found,
    }
}
