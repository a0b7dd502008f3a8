//! Stage 6: apply a plan, host by host (hosts in parallel): lock the host,
//! re-read it and refuse a stale plan, apply each drifted resource (files
//! atomically, previous content kept in a per-run backup folder on the host,
//! network changes under a rollback timer), check convergence, unlock.

pub mod network;
pub mod remote;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::gather::ssh::{self, Route, SshOptions};
use crate::gather::{HostFacts, read_facts};
use crate::kinds::{self, Verdict};
use crate::model::Via;
use crate::plan::{self, HostPlan};
use crate::receipt::ActionResult;
use crate::secrets::{Provider, ProviderHashes};
use remote::{Lock, LockInfo};

#[derive(Debug, Clone)]
pub struct Options {
    pub run_id: String,
    pub operator: String,
    /// How long a network change waits for confirmation before the host rolls back.
    pub confirm_timeout: Duration,
    /// Allow changes to bonds and bridges.
    pub force: bool,
    pub lock_ttl: Duration,
    /// Seconds compose waits for containers to be running and healthy.
    pub wait_timeout: u64,
}

/// One action and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub kind: String,
    pub resource: String,
    pub result: ActionResult,
    pub exit_status: Option<i32>,
    pub duration_ms: u64,
    /// What the action printed (kept out of receipts: only its hash goes there).
    #[serde(skip)]
    pub output: String,
    pub message: String,
}

/// One host's apply.
#[derive(Debug, Clone, Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub route: Option<Route>,
    pub facts_before: Option<String>,
    pub facts_after: Option<String>,
    pub actions: Vec<ActionOutcome>,
    /// Why the host was not (fully) applied.
    pub error: Option<String>,
    pub rolled_back: bool,
    pub interrupted: bool,
}

impl HostOutcome {
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.rolled_back && !self.interrupted
    }

    /// Record a failed action and make it the host's error.
    fn failed(&mut self, kind: &str, id: &str, started: Instant, e: String) {
        self.actions
            .push(action(kind, id, ActionResult::Failed, started, e.clone()));
        self.error = Some(format!("{id}: {e}"));
    }
}

fn action(
    kind: &str,
    resource: &str,
    result: ActionResult,
    started: Instant,
    message: impl Into<String>,
) -> ActionOutcome {
    ActionOutcome {
        kind: kind.into(),
        resource: resource.into(),
        result,
        exit_status: None,
        duration_ms: started.elapsed().as_millis() as u64,
        output: String::new(),
        message: message.into(),
    }
}

/// Apply one host's part of a plan.
pub async fn apply_host(
    planned: HostPlan,
    routes: Vec<Route>,
    user: String,
    opts: Options,
    ssh_opts: SshOptions,
    provider: Arc<dyn Provider>,
    interrupted: Arc<AtomicBool>,
) -> HostOutcome {
    let mut out = HostOutcome {
        host: planned.host.clone(),
        route: None,
        facts_before: None,
        facts_after: None,
        actions: Vec::new(),
        error: None,
        rolled_back: false,
        interrupted: false,
    };
    let Some(planned_fp) = planned.fingerprint.clone() else {
        out.error =
            Some("the plan could not read this host; make a new plan when it is reachable".into());
        return out;
    };
    // The path that worked at plan time first, then the others.
    let mut order: Vec<Route> = planned.route.iter().cloned().collect();
    order.extend(
        routes
            .into_iter()
            .filter(|r| Some(r) != planned.route.as_ref()),
    );
    let (mut session, route) = match ssh::connect(&order, &ssh_opts).await {
        Ok(x) => x,
        Err(f) => {
            let why: Vec<String> = f
                .iter()
                .map(|f| format!("{}: {:?}: {}", f.route, f.kind, f.detail))
                .collect();
            out.error = Some(format!("unreachable: {}", why.join("; ")));
            return out;
        }
    };
    out.route = Some(route.clone());

    let lock_id = format!("{}-{}", opts.run_id, planned.host);
    let now = jiff::Timestamp::now();
    let info = LockInfo {
        lock_id: lock_id.clone(),
        run_id: opts.run_id.clone(),
        operator: opts.operator.clone(),
        started: now.to_string(),
        expires: (now + jiff::SignedDuration::from_secs(opts.lock_ttl.as_secs() as i64))
            .to_string(),
        pid: std::process::id(),
    };
    match remote::lock(&session, &user, &info).await {
        Ok(Lock::Taken) => {}
        Ok(Lock::Held(h)) => {
            out.error = Some(match h {
                Some(h) => format!(
                    "host is locked by {} (run {}, since {}, pid {}, expires {}); if that run is gone and the lock has expired: spine unlock {} {}",
                    h.operator, h.run_id, h.started, h.pid, h.expires, planned.host, h.lock_id
                ),
                None => format!(
                    "host is locked ({}/info unreadable); see spine unlock",
                    remote::LOCK
                ),
            });
            let _ = session.close().await;
            return out;
        }
        Err(e) => {
            out.error = Some(e);
            let _ = session.close().await;
            return out;
        }
    }

    let resources: Vec<kinds::Desired> = planned
        .resources
        .iter()
        .map(|r| r.desired.clone())
        .collect();
    let hashes = ProviderHashes(provider.as_ref());
    // Stale plan? Re-read the host and compare fingerprints of what was seen.
    let fresh = match read_facts(&session, &planned.host, &resources).await {
        Ok(rep) => plan::plan_host(&resources, &facts(&planned.host, &route, rep), &hashes),
        Err(e) => {
            out.error = Some(e);
            release(session, &user, &lock_id, &mut out).await;
            return out;
        }
    };
    out.facts_before = fresh.fingerprint.clone();
    if fresh.fingerprint.as_deref() != Some(planned_fp.as_str()) {
        let changed: Vec<String> = planned
            .resources
            .iter()
            .zip(&fresh.resources)
            .filter(|(a, b)| a.observed != b.observed || a.verdict != b.verdict)
            .map(|(a, _)| a.desired.id.clone())
            .collect();
        out.error = Some(format!(
            "stale plan: the host changed since the plan was made ({}); nothing was changed: make a new plan",
            if changed.is_empty() {
                "facts differ".to_string()
            } else {
                changed.join(", ")
            }
        ));
        release(session, &user, &lock_id, &mut out).await;
        return out;
    }

    let mut current_route = route.clone();
    let mut applied = Vec::new();
    let mut left_to_cloud_init: Vec<String> = Vec::new();
    for r in &fresh.resources {
        let (kind_name, id) = (r.desired.kind.clone(), r.desired.id.clone());
        let started = Instant::now();
        if !matches!(r.verdict, Verdict::Drift { .. }) {
            if let Verdict::Unknown { reason } = &r.verdict {
                out.actions.push(action(
                    &kind_name,
                    &id,
                    ActionResult::Skipped,
                    started,
                    format!("unknown, not changed: {reason}"),
                ));
            }
            continue;
        }
        if interrupted.load(Ordering::SeqCst) || out.error.is_some() || out.rolled_back {
            let why = if interrupted.load(Ordering::SeqCst) {
                "interrupted before this action"
            } else {
                "an earlier action failed"
            };
            out.actions
                .push(action(&kind_name, &id, ActionResult::Skipped, started, why));
            continue;
        }
        if r.desired.get("owner") == "cloud-init" {
            let msg = "generated by cloud-init: not edited here; changed at the Proxmox host and handed to the VM by a restart (`spine apply --restart-vms`)";
            out.actions
                .push(action(&kind_name, &id, ActionResult::Skipped, started, msg));
            left_to_cloud_init.push(id.clone());
            continue;
        }
        let Some(kind) = kinds::by_name(&kind_name) else {
            continue;
        };
        let observed = r.observed.clone().unwrap_or_default();
        let change = match kind.apply(&r.desired, &observed, provider.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                out.failed(&kind_name, &id, started, e);
                continue;
            }
        };
        if change.network {
            if r.desired.get("kind") != "ethernet" && !opts.force {
                let msg = format!("{id}: changing a {} needs --force", r.desired.get("kind"));
                out.actions.push(action(
                    &kind_name,
                    &id,
                    ActionResult::Skipped,
                    started,
                    msg.clone(),
                ));
                out.error = Some(msg);
                continue;
            }
            let ip = r
                .desired
                .get("address")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let confirm = Route {
                via: Via::Lan,
                user: user.clone(),
                address: ip,
                port: None,
                jump: None,
            };
            let outcome = network::apply(
                session,
                &user,
                &opts.run_id,
                &change.script,
                &r.desired,
                confirm,
                &order,
                &ssh_opts,
                opts.confirm_timeout,
            )
            .await;
            let (result, msg) = match outcome {
                network::Outcome::Confirmed(route) => {
                    current_route = route.clone();
                    applied.push(id.clone());
                    (
                        ActionResult::Changed,
                        format!(
                            "applied and confirmed over a fresh connection ({})",
                            route.describe()
                        ),
                    )
                }
                network::Outcome::RolledBack(m) => {
                    out.rolled_back = true;
                    (ActionResult::RolledBack, m)
                }
                network::Outcome::Refused(m) => {
                    out.error = Some(format!("{id}: {m}"));
                    (ActionResult::Failed, m)
                }
                network::Outcome::Lost(m) => {
                    out.error = Some(format!("{id}: {m}"));
                    (ActionResult::Failed, m)
                }
            };
            out.actions
                .push(action(&kind_name, &id, result, started, msg));
            // The old connection is gone with the old address: reconnect.
            let mut again = vec![current_route.clone()];
            again.extend(order.iter().cloned());
            match ssh::connect(&again, &ssh_opts).await {
                Ok((s, rt)) => {
                    session = s;
                    current_route = rt;
                }
                Err(_) => {
                    out.error
                        .get_or_insert_with(|| "lost the host after the network change".into());
                    return out;
                }
            }
            continue;
        }
        let body = format!(
            "export SPINE_WAIT_TIMEOUT={}\n{}",
            opts.wait_timeout, change.script
        );
        match remote::run_root(&session, &user, Some(&opts.run_id), &body).await {
            Ok((output, 0)) => {
                let mut a = action(
                    &kind_name,
                    &id,
                    ActionResult::Changed,
                    started,
                    change.note.unwrap_or_else(|| "applied".into()),
                );
                a.exit_status = Some(0);
                a.output = output;
                out.actions.push(a);
                applied.push(id.clone());
            }
            Ok((output, code)) => {
                let last = output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("(no output)")
                    .to_string();
                let mut a = action(
                    &kind_name,
                    &id,
                    ActionResult::Failed,
                    started,
                    format!("exit {code}: {last}"),
                );
                a.exit_status = Some(code);
                a.output = output;
                out.actions.push(a);
                out.error = Some(format!(
                    "{id} failed (exit {code}): {last}; the previous files are in {} on the host",
                    remote::backup_dir(&opts.run_id)
                ));
            }
            Err(e) => out.failed(&kind_name, &id, started, e),
        }
    }
    out.interrupted = interrupted.load(Ordering::SeqCst);
    if !left_to_cloud_init.is_empty() {
        out.error.get_or_insert_with(|| {
            format!(
                "not converged: {} is generated by cloud-init and needs a restart from the Proxmox host (--restart-vms)",
                left_to_cloud_init.join(", ")
            )
        });
    }

    // Convergence: every applied resource must now show no drift.
    if !applied.is_empty() {
        match read_facts(&session, &planned.host, &resources).await {
            Ok(rep) => {
                let after = plan::plan_host(
                    &resources,
                    &facts(&planned.host, &current_route, rep),
                    &hashes,
                );
                out.facts_after = after.fingerprint.clone();
                let not: Vec<String> = after
                    .resources
                    .iter()
                    .filter(|r| applied.contains(&r.desired.id) && r.verdict != Verdict::InSync)
                    .map(|r| match &r.verdict {
                        Verdict::Drift { reason, .. } | Verdict::Unknown { reason } => {
                            format!("{} ({reason})", r.desired.id)
                        }
                        Verdict::InSync => r.desired.id.clone(),
                    })
                    .collect();
                if !not.is_empty() && out.error.is_none() {
                    out.error = Some(format!("did not converge: {}", not.join("; ")));
                }
            }
            Err(e) => {
                out.error
                    .get_or_insert(format!("could not check convergence: {e}"));
            }
        }
    }
    release(session, &user, &lock_id, &mut out).await;
    out
}

fn facts(host: &str, route: &Route, report: crate::gather::script::Report) -> HostFacts {
    HostFacts {
        host: host.into(),
        route: Some(route.clone()),
        failures: Vec::new(),
        report: Some(report),
        error: None,
    }
}

async fn release(session: openssh::Session, user: &str, lock_id: &str, out: &mut HostOutcome) {
    match remote::unlock(&session, user, lock_id).await {
        Ok(true) => {}
        Ok(false) => {
            out.error.get_or_insert_with(|| {
                "the host lock was no longer ours at the end of the run".into()
            });
        }
        Err(e) => {
            out.error
                .get_or_insert(format!("could not release the host lock: {e}"));
        }
    }
    let _ = session.close().await;
}
