//! Stage 6: apply a plan, host by host (hosts in parallel): lock the host,
//! re-read it and refuse a stale plan, apply each drifted resource (files
//! atomically, previous content kept in a per-run backup folder on the host,
//! network changes under a rollback timer), check convergence, unlock.

pub mod network;
pub mod remote;
pub mod report;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::gather::ssh::{Route, SshOptions};
use crate::gather::transport::{Conn, Connect};
use crate::gather::{HostFacts, read_facts};
use crate::kinds::{self, ProviderHashes, Verdict};
use crate::plan::{self, HostPlan};
use crate::receipt::ActionResult;
use crate::secrets::Provider;
use remote::{Holder, Lock, LockInfo};

#[derive(Debug, Clone)]
pub struct Options {
    pub run_id: String,
    pub operator: String,
    /// How long a network change waits for confirmation before the host rolls back.
    pub confirm_timeout: Duration,
    /// Allow changes to bonds and bridges.
    pub force: bool,
    /// How long the lock holds without being renewed; a run renews it every
    /// third of this while it works.
    pub lock_ttl: Duration,
    /// Seconds compose waits for containers to be running and healthy.
    pub wait_timeout: u64,
    /// Backup folders kept on each host: the last N runs', this one's included.
    pub keep_backups: u32,
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
    /// A host nothing has happened on yet.
    pub fn new(host: &str) -> HostOutcome {
        HostOutcome {
            host: host.to_string(),
            route: None,
            facts_before: None,
            facts_after: None,
            actions: Vec::new(),
            error: None,
            rolled_back: false,
            interrupted: false,
        }
    }

    /// A host whose apply could not even start (or whose task was lost).
    pub fn failed_host(host: &str, why: impl Into<String>) -> HostOutcome {
        HostOutcome {
            error: Some(why.into()),
            ..HostOutcome::new(host)
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.rolled_back && !self.interrupted
    }

    /// One word for the host's line in the output.
    pub fn state(&self) -> &'static str {
        if self.rolled_back {
            "ROLLED BACK"
        } else if self.interrupted {
            "INTERRUPTED"
        } else if self.error.is_some() {
            "FAILED"
        } else {
            "OK"
        }
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

/// What every step of one host's apply needs.
pub struct HostJob<K: Connect> {
    pub connector: K,
    pub planned: HostPlan,
    /// The host's access paths from the registry.
    pub routes: Vec<Route>,
    /// The login user (root scripts go through `sudo -n` for anyone else).
    pub user: String,
    pub opts: Options,
    pub ssh: SshOptions,
    pub provider: Arc<dyn Provider>,
    pub interrupted: Arc<AtomicBool>,
}

/// An open connection, the path it took, and the lock held through it
/// (its info, and when it was last renewed).
struct Held<C> {
    conn: C,
    route: Route,
    lock: LockInfo,
    renewed: Mutex<Instant>,
}

/// Apply one host's part of a plan, in steps: connect, lock, re-check
/// (refuse a stale plan), act (each drifted resource), converge (re-read),
/// release the lock.
pub async fn apply_host<K: Connect>(job: HostJob<K>) -> HostOutcome {
    let host = job.planned.host.clone();
    let Some(planned_fp) = job.planned.fingerprint.clone() else {
        return HostOutcome::failed_host(
            &host,
            "the plan could not read this host; make a new plan when it is reachable",
        );
    };
    let mut out = HostOutcome::new(&host);
    let (conn, route) = match connect(&job).await {
        Ok(x) => x,
        Err(e) => return HostOutcome::failed_host(&host, e),
    };
    out.route = Some(route.clone());
    let lock = match lock(&job, &conn).await {
        Ok(info) => info,
        Err(e) => {
            out.error = Some(e);
            conn.close().await;
            return out;
        }
    };
    let held = Held {
        conn,
        route,
        lock,
        renewed: Mutex::new(Instant::now()),
    };
    let fresh = match recheck(&job, &held, &planned_fp).await {
        Ok(fresh) => fresh,
        Err((e, facts)) => {
            out.facts_before = facts;
            out.error = Some(e);
            release(&job, held, &mut out).await;
            return out;
        }
    };
    out.facts_before = fresh.fingerprint.clone();
    let Some((held, applied)) = act(&job, held, &fresh, &mut out).await else {
        return out;
    };
    out.interrupted = job.interrupted.load(Ordering::SeqCst);
    if !applied.is_empty() {
        converge(&job, &held, &applied, &mut out).await;
    }
    release(&job, held, &mut out).await;
    out
}

/// Step connect: the path that worked at plan time first, then the others.
async fn connect<K: Connect>(job: &HostJob<K>) -> Result<(K::Conn, Route), String> {
    let planned = job.planned.route.as_ref();
    let mut order: Vec<Route> = planned.into_iter().cloned().collect();
    order.extend(job.routes.iter().filter(|r| Some(*r) != planned).cloned());
    job.connector.connect(&order, &job.ssh).await.map_err(|f| {
        let why: Vec<String> = f
            .iter()
            .map(|f| format!("{}: {:?}: {}", f.route, f.kind, f.detail))
            .collect();
        format!("unreachable: {}", why.join("; "))
    })
}

/// The lock's info for this run and host, expiring one TTL from now.
fn lock_info(opts: &Options, host: &str) -> LockInfo {
    let now = jiff::Timestamp::now();
    let ttl = jiff::SignedDuration::from_secs(opts.lock_ttl.as_secs() as i64);
    LockInfo {
        lock_id: format!("{}-{host}", opts.run_id),
        run_id: opts.run_id.clone(),
        operator: opts.operator.clone(),
        started: now.to_string(),
        expires: (now + ttl).to_string(),
        pid: std::process::id(),
    }
}

/// Step lock: take the host lock; its info, or who holds it.
async fn lock<K: Connect>(job: &HostJob<K>, conn: &K::Conn) -> Result<LockInfo, String> {
    let host = &job.planned.host;
    let info = lock_info(&job.opts, host);
    match remote::lock(conn, &job.user, &info)
        .await
        .map_err(|e| e.to_string())?
    {
        Lock::Taken => Ok(info),
        Lock::Held(Some(Holder::Info(h))) => Err(format!(
            "host is locked by {} (run {}, since {}, pid {}, expires {}); if that run is gone and the lock has expired: spine unlock {host} {}",
            h.operator, h.run_id, h.started, h.pid, h.expires, h.lock_id
        )),
        Lock::Held(Some(Holder::NoInfo { age_secs })) => Err(format!(
            "host is locked by a lock without info ({}, {age_secs} s old: a run died while taking it); once it is older than the lock TTL, or with --force if you know no run is going on: spine unlock {host}",
            remote::LOCK
        )),
        Lock::Held(None) => {
            Err("host was locked, and the lock was gone a moment later: try again".into())
        }
    }
}

/// How often a run renews its lock: every third of the TTL.
fn renew_every(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_secs(1))
}

/// Renew the lock if a third of its TTL has passed since the last try.
/// A failed renewal is not an error here: releasing the lock at the end
/// says whether it was still ours.
async fn keep_lock<K: Connect>(job: &HostJob<K>, held: &Held<K::Conn>) {
    let last = *held.renewed.lock().expect("renewal time");
    if last.elapsed() < renew_every(job.opts.lock_ttl) {
        return;
    }
    let mut info = lock_info(&job.opts, &job.planned.host);
    info.started = held.lock.started.clone();
    // Tried, whatever came of it: the next try is a third of the TTL later.
    let _ = remote::renew(&held.conn, &job.user, &info).await;
    *held.renewed.lock().expect("renewal time") = Instant::now();
}

/// Run `work` on the host while renewing the lock over the same connection
/// (a long action: compose waiting for health).
async fn renewing<K: Connect, T>(
    job: &HostJob<K>,
    held: &Held<K::Conn>,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    loop {
        let due = *held.renewed.lock().expect("renewal time") + renew_every(job.opts.lock_ttl);
        tokio::select! {
            done = &mut work => return done,
            _ = tokio::time::sleep_until(due.into()) => keep_lock(job, held).await,
        }
    }
}

fn desired(planned: &HostPlan) -> Vec<kinds::Desired> {
    planned
        .resources
        .iter()
        .map(|r| r.desired.clone())
        .collect()
}

/// Read the host through `held` and compare, as the plan did.
async fn read_plan<K: Connect>(job: &HostJob<K>, held: &Held<K::Conn>) -> Result<HostPlan, String> {
    let resources = desired(&job.planned);
    let reads = kinds::read_scripts(&resources).map_err(|e| e.to_string())?;
    let rep = read_facts(&held.conn, &job.planned.host, &reads).await?;
    let hashes = ProviderHashes(job.provider.as_ref());
    let facts = facts(&job.planned.host, &held.route, rep);
    Ok(plan::plan_host(&resources, &facts, &hashes))
}

/// Step re-check: re-read the host; a plan made from other facts is stale
/// and nothing is changed (the error, and the fresh fingerprint if any).
async fn recheck<K: Connect>(
    job: &HostJob<K>,
    held: &Held<K::Conn>,
    planned_fp: &str,
) -> Result<HostPlan, (String, Option<String>)> {
    let fresh = read_plan(job, held).await.map_err(|e| (e, None))?;
    if fresh.fingerprint.as_deref() == Some(planned_fp) {
        return Ok(fresh);
    }
    let changed: Vec<String> = job
        .planned
        .resources
        .iter()
        .zip(&fresh.resources)
        .filter(|(a, b)| {
            let stored = |o: &Option<serde_json::Value>| o.as_ref().map(plan::stored_observed);
            stored(&a.observed) != stored(&b.observed) || a.verdict != b.verdict
        })
        .map(|(a, _)| a.desired.id.clone())
        .collect();
    let e = format!(
        "stale plan: the host changed since the plan was made ({}); nothing was changed: make a new plan",
        if changed.is_empty() {
            "facts differ".to_string()
        } else {
            changed.join(", ")
        }
    );
    Err((e, fresh.fingerprint))
}

/// Step act: each drifted resource in plan order. Unknown resources are
/// recorded as such; after a failure, a rollback or Ctrl-C the rest are
/// skipped. The confirmed changes of consecutive resources of one kind
/// (a network's file, the files removed beside it, the live activation) are
/// activated together, once, and rolled back together. `None` when the
/// host was lost (after a network change).
async fn act<'p, K: Connect>(
    job: &HostJob<K>,
    mut held: Held<K::Conn>,
    fresh: &'p HostPlan,
    out: &mut HostOutcome,
) -> Option<(Held<K::Conn>, Vec<String>)> {
    let mut applied = Vec::new();
    let mut handed_off: Vec<(String, kinds::HandOff)> = Vec::new();
    let waiting = waiting_for_hand_off(fresh);
    let mut group: Vec<(&'p plan::ResourcePlan, kinds::Change)> = Vec::new();
    for r in &fresh.resources {
        let (kind_name, id) = (r.desired.kind.as_str(), r.desired.id.as_str());
        if group
            .first()
            .is_some_and(|(g, _)| g.desired.kind != r.desired.kind)
        {
            held = act_confirmed(job, held, std::mem::take(&mut group), out, &mut applied).await?;
        }
        let started = Instant::now();
        if let Verdict::Unknown { reason } = &r.verdict {
            let why = format!("unknown, not changed: {reason}");
            out.actions
                .push(action(kind_name, id, ActionResult::Unknown, started, why));
            continue;
        }
        if !matches!(r.verdict, Verdict::Drift { .. }) {
            continue;
        }
        if skip_rest(job, out, kind_name, id, started) {
            continue;
        }
        let Some(kind) = kinds::by_name(kind_name) else {
            continue;
        };
        if let Some(h) = kind.hand_off(&r.desired) {
            let msg = format!(
                "generated by {}: not edited here; {} (`spine apply {}`)",
                h.generator,
                h.route.how(),
                h.route.flag()
            );
            out.actions
                .push(action(kind_name, id, ActionResult::Skipped, started, msg));
            handed_off.push((id.to_string(), h));
            continue;
        }
        keep_lock(job, &held).await;
        let observed = r.observed.clone().unwrap_or_default();
        let change = match kind.apply(&r.desired, &observed, job.provider.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                out.failed(kind_name, id, started, e.to_string());
                continue;
            }
        };
        if let Some(why) = change.needs_force.as_ref().filter(|_| !job.opts.force) {
            let msg = format!("{id}: {why}");
            out.actions.push(action(
                kind_name,
                id,
                ActionResult::Skipped,
                started,
                msg.clone(),
            ));
            out.error = Some(msg);
            continue;
        }
        if let kinds::Lifecycle::Confirmed(_) = &change.lifecycle {
            if let Some((_, waits, h)) = waiting.iter().find(|(k, _, _)| k == kind_name) {
                let msg = format!(
                    "not activated: {waits} waits for {} (`spine apply {}`); activating the network now would make the stale file live",
                    h.generator,
                    h.route.flag()
                );
                out.actions
                    .push(action(kind_name, id, ActionResult::Skipped, started, msg));
                continue;
            }
            group.push((r, change));
            continue;
        }
        if !group.is_empty() {
            held = act_confirmed(job, held, std::mem::take(&mut group), out, &mut applied).await?;
            if skip_rest(job, out, kind_name, id, started) {
                continue;
            }
        }
        act_one(job, &held, r, change, out, &mut applied).await;
    }
    if !group.is_empty() {
        held = act_confirmed(job, held, group, out, &mut applied).await?;
    }
    if let Some(e) = not_converged(&handed_off) {
        out.error.get_or_insert(e);
    }
    Some((held, applied))
}

/// Why the host is not converged when resources were left to whoever
/// generates them: per generator and route, the ids and what they need.
fn not_converged(handed_off: &[(String, kinds::HandOff)]) -> Option<String> {
    let mut by: Vec<(kinds::HandOff, Vec<&str>)> = Vec::new();
    for (id, h) in handed_off {
        match by.iter_mut().find(|(x, _)| x == h) {
            Some((_, ids)) => ids.push(id),
            None => by.push((*h, vec![id])),
        }
    }
    let parts: Vec<String> = by
        .iter()
        .map(|(h, ids)| {
            format!(
                "{} is generated by {} and needs {} ({})",
                ids.join(", "),
                h.generator,
                h.route.needs(),
                h.route.flag()
            )
        })
        .collect();
    (!parts.is_empty()).then(|| format!("not converged: {}", parts.join("; ")))
}

/// After Ctrl-C, a failure or a rollback: record the action as skipped.
fn skip_rest<K: Connect>(
    job: &HostJob<K>,
    out: &mut HostOutcome,
    kind_name: &str,
    id: &str,
    started: Instant,
) -> bool {
    let stop = job.interrupted.load(Ordering::SeqCst);
    if !(stop || out.error.is_some() || out.rolled_back) {
        return false;
    }
    let why = if stop {
        "interrupted before this action"
    } else {
        "an earlier action failed"
    };
    out.actions
        .push(action(kind_name, id, ActionResult::Skipped, started, why));
    true
}

/// Kinds with a drifted resource handed off to whoever generates it (by
/// kind: the resource id and its hand-off): their confirmed changes wait
/// for the fix too, as activating them would make the stale file live.
fn waiting_for_hand_off(plan: &HostPlan) -> Vec<(String, String, kinds::HandOff)> {
    plan.resources
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Drift { .. }))
        .filter_map(|r| {
            let h = kinds::by_name(&r.desired.kind)?.hand_off(&r.desired)?;
            Some((r.desired.kind.clone(), r.desired.id.clone(), h))
        })
        .collect()
}

/// One ordinary change: a root script with this run's backup folder.
async fn act_one<K: Connect>(
    job: &HostJob<K>,
    held: &Held<K::Conn>,
    r: &plan::ResourcePlan,
    change: kinds::Change,
    out: &mut HostOutcome,
    applied: &mut Vec<String>,
) {
    let (kind_name, id) = (r.desired.kind.as_str(), r.desired.id.as_str());
    let started = Instant::now();
    let run = remote::RootRun {
        run_id: Some(&job.opts.run_id),
        wait_timeout: Some(job.opts.wait_timeout),
    };
    let ran = remote::run_root(&held.conn, &job.user, run, &change.script);
    match renewing(job, held, ran).await {
        Ok((output, 0)) => {
            let (result, done) = if removal(r) {
                (ActionResult::Removed, "removed")
            } else {
                (ActionResult::Changed, "applied")
            };
            let note = change.note.unwrap_or_else(|| done.into());
            let mut a = action(kind_name, id, result, started, note);
            a.exit_status = Some(0);
            a.output = output;
            out.actions.push(a);
            applied.push(id.to_string());
        }
        Ok((output, code)) => {
            // The host's last line is printed: secret values masked and
            // control characters escaped (the whole output is kept only as
            // a hash).
            let last = crate::safe::printable(&crate::secrets::mask_line(
                output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("(no output)"),
            ));
            let msg = format!("exit {code}: {last}");
            let mut a = action(kind_name, id, ActionResult::Failed, started, msg);
            a.exit_status = Some(code);
            a.output = output;
            out.actions.push(a);
            out.error = Some(format!(
                "{id} failed (exit {code}): {last}; the previous files are in {} on the host",
                remote::backup_dir(&job.opts.run_id)
            ));
        }
        Err(e) => out.failed(kind_name, id, started, e.to_string()),
    }
}

/// Changes that may cut the connection, activated together: armed,
/// activated, confirmed over a fresh connection (or rolled back by the host,
/// all of them), then a new connection for what follows.
async fn act_confirmed<K: Connect>(
    job: &HostJob<K>,
    held: Held<K::Conn>,
    group: Vec<(&plan::ResourcePlan, kinds::Change)>,
    out: &mut HostOutcome,
    applied: &mut Vec<String>,
) -> Option<Held<K::Conn>> {
    let started = Instant::now();
    let ids: Vec<&str> = group.iter().map(|(r, _)| r.desired.id.as_str()).collect();
    let record = |out: &mut HostOutcome,
                  result: &dyn Fn(&plan::ResourcePlan) -> ActionResult,
                  msg: &str| {
        for (r, _) in &group {
            let others: Vec<&str> = ids.iter().copied().filter(|i| *i != r.desired.id).collect();
            let msg = if others.is_empty() {
                msg.to_string()
            } else {
                format!("{msg}; activated together with {}", others.join(", "))
            };
            out.actions.push(action(
                &r.desired.kind,
                &r.desired.id,
                result(r),
                started,
                msg,
            ));
        }
    };
    let changes: Vec<&kinds::Change> = group.iter().map(|(_, c)| c).collect();
    let (script, c) = match network::join(&changes) {
        Ok(x) => x,
        Err(e) => {
            record(out, &|_| ActionResult::Failed, &e);
            out.error = Some(format!("{}: {e}", ids.join(", ")));
            return Some(held);
        }
    };
    let confirm = network::confirm_route(&held.route, &c.confirm_address, &job.ssh);
    let Held {
        conn,
        route: mut current,
        lock,
        renewed,
    } = held;
    let outcome = network::apply(
        &job.connector,
        conn,
        &job.user,
        &job.opts.run_id,
        &script,
        &c,
        confirm,
        &job.routes,
        &job.ssh,
        job.opts.confirm_timeout,
    )
    .await;
    match outcome {
        network::Outcome::Confirmed(route) => {
            current = route.clone();
            applied.extend(ids.iter().map(|i| i.to_string()));
            let msg = format!(
                "applied and confirmed over a fresh connection ({})",
                route.describe()
            );
            record(
                out,
                &|r| {
                    if removal(r) {
                        ActionResult::Removed
                    } else {
                        ActionResult::Changed
                    }
                },
                &msg,
            );
        }
        network::Outcome::RolledBack(m) => {
            out.rolled_back = true;
            record(out, &|_| ActionResult::RolledBack, &m);
        }
        network::Outcome::Refused(m) | network::Outcome::Lost(m) => {
            out.error = Some(format!("{}: {m}", ids.join(", ")));
            record(out, &|_| ActionResult::Failed, &m);
        }
    }
    // The old connection is gone with the old address: reconnect.
    let mut again = vec![current];
    again.extend(job.routes.iter().cloned());
    match job.connector.connect(&again, &job.ssh).await {
        Ok((conn, route)) => Some(Held {
            conn,
            route,
            lock,
            renewed,
        }),
        Err(_) => {
            out.error
                .get_or_insert_with(|| "lost the host after the network change".into());
            None
        }
    }
}

/// A drift whose action is a removal.
fn removal(r: &plan::ResourcePlan) -> bool {
    matches!(
        r.verdict,
        Verdict::Drift {
            action: kinds::Action::Remove,
            ..
        }
    )
}

/// Step converge: every applied resource must now show no drift.
async fn converge<K: Connect>(
    job: &HostJob<K>,
    held: &Held<K::Conn>,
    applied: &[String],
    out: &mut HostOutcome,
) {
    let after = match read_plan(job, held).await {
        Ok(after) => after,
        Err(e) => {
            out.error
                .get_or_insert(format!("could not check convergence: {e}"));
            return;
        }
    };
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

fn facts(host: &str, route: &Route, report: crate::gather::script::Report) -> HostFacts {
    HostFacts {
        host: host.into(),
        route: Some(route.clone()),
        failures: Vec::new(),
        report: Some(report),
        error: None,
    }
}

/// Prune the host's backup folders (keeping this run's and the last ones),
/// release the lock if it is still ours, and close the connection.
async fn release<K: Connect>(job: &HostJob<K>, held: Held<K::Conn>, out: &mut HostOutcome) {
    let (run_id, keep) = (&job.opts.run_id, job.opts.keep_backups);
    if let Err(e) = remote::prune_backups(&held.conn, &job.user, run_id, keep).await {
        out.error
            .get_or_insert(format!("could not prune the host's backups: {e}"));
    }
    match remote::unlock(&held.conn, &job.user, Some(&held.lock.lock_id)).await {
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
    held.conn.close().await;
}

#[cfg(test)]
mod tests;
