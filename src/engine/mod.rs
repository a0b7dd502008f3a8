//! The engine: `plan` and `apply` as library functions on one tokio runtime.
//! A command parses its arguments, asks the engine, shows the result and
//! writes the receipt; no command calls another.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::apply::report::ApplyReport;
use crate::apply::{self, HostJob, HostOutcome, Options};
use crate::error::Error;
use crate::gather::transport::Ssh;
use crate::gather::{self, ssh, ssh::SshOptions};
use crate::health;
use crate::kinds::{self, Desired, ProviderHashes, Verdict};
use crate::load::Loaded;
use crate::model::{Registry, ServiceRegistry};
use crate::plan::{self, FORMAT_VERSION, HostPlan, Plan};
use crate::render::{self, Templates};
use crate::secrets::Provider;

/// What a plan is made from.
pub struct PlanInput<'a> {
    pub loaded: &'a Loaded,
    pub reg: &'a Registry,
    /// Hosts to plan; all managed hosts when empty.
    pub hosts: &'a [String],
    pub templates: &'a Templates,
    pub ssh: SshOptions,
    /// Hosts read at once.
    pub parallel: usize,
    pub secrets: &'a dyn Provider,
    /// Check the hosts' services.health endpoints while reading them.
    pub with_health: bool,
}

/// One run's engine: the tokio runtime every stage runs on, and the
/// Ctrl-C flag.
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    interrupted: Arc<AtomicBool>,
}

impl Engine {
    /// The engine of one command (every command that reaches hosts makes
    /// one, and only one, runtime: here).
    pub fn new() -> Result<Engine, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}")))?;
        Ok(Engine {
            runtime,
            interrupted: Arc::new(AtomicBool::new(false)),
        })
    }

    /// From now on Ctrl-C sets the interrupted flag (and says so) instead of
    /// ending the process: while applying, the action in flight finishes (or
    /// rolls back) and the locks are released.
    pub fn catch_interrupt(&self) {
        let flag = self.interrupted.clone();
        self.runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                eprintln!(
                    "\ninterrupted: finishing the action in flight, then releasing the locks"
                );
            }
        });
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// The Ctrl-C flag, for a stage that watches it while it waits.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupted.clone()
    }

    /// Run one stage's future on the engine's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Render, gather (hosts in parallel) and compare.
    pub fn plan(&self, input: &PlanInput) -> Result<Plan, render::RenderError> {
        let services = input.reg.services.clone().unwrap_or_default();
        let hosts = if input.hosts.is_empty() {
            render::managed_hosts(&services)
        } else {
            input.hosts.to_vec()
        };
        let by_on = desired_by_host(input.reg, &hosts, input.templates)?;
        let mut reads = BTreeMap::new();
        for (host, resources) in &by_on {
            reads.insert(host.clone(), kinds::read_scripts(resources)?);
        }
        let health_file = input.reg.health.as_ref().filter(|_| input.with_health);
        let (facts, mut health) = std::thread::scope(|s| {
            let probing =
                s.spawn(|| health_file.map_or_else(Vec::new, |f| health::check_hosts(f, &hosts)));
            let facts = self.runtime.block_on(gather::gather_all(
                &services,
                &reads,
                &input.ssh,
                input.parallel,
            ));
            (facts, probing.join().unwrap_or_default())
        });
        let hashes = ProviderHashes(input.secrets);
        let mut host_plans: Vec<_> = facts
            .iter()
            .map(|f| {
                let mut hp = plan::plan_host(
                    by_on.get(&f.host).map_or(&[][..], Vec::as_slice),
                    f,
                    &hashes,
                );
                let (mine, rest) = health.drain(..).partition(|p| p.host == hp.host);
                (hp.health, health) = (mine, rest);
                hp
            })
            .collect();
        plan::explain_lost_vms(&mut host_plans);
        plan::mask_known(&mut host_plans);
        Ok(Plan {
            format_version: FORMAT_VERSION,
            tool: format!("spine {}", env!("CARGO_PKG_VERSION")),
            created: plan::now_rfc3339(),
            registry_hash: input.loaded.hash(),
            summary: plan::summarize(&host_plans),
            hosts: host_plans,
        })
    }

    /// Apply every host of `plan` that has drift, hosts in parallel. The
    /// report names every such host, also one whose task panicked.
    pub fn apply(
        &self,
        plan: &Plan,
        services: &ServiceRegistry,
        opts: &Options,
        ssh: &SshOptions,
        provider: Arc<dyn Provider>,
    ) -> ApplyReport {
        let todo = hosts_to_apply(plan);
        if todo.is_empty() {
            return ApplyReport::nothing_to_do(&opts.run_id, plan);
        }
        let outcomes = self.runtime.block_on(async {
            let mut tasks = Vec::new();
            for h in todo {
                let routes = ssh::routes(services, &h.host);
                let user = routes
                    .first()
                    .map_or_else(|| "root".to_string(), |r| r.user.clone());
                let host = h.host.clone();
                let task = tokio::spawn(apply::apply_host(HostJob {
                    connector: Ssh,
                    planned: h,
                    routes,
                    user,
                    opts: opts.clone(),
                    ssh: ssh.clone(),
                    provider: provider.clone(),
                    interrupted: self.interrupted.clone(),
                }));
                tasks.push((host, task));
            }
            let mut out = Vec::new();
            for (host, task) in tasks {
                out.push(joined(&host, task.await));
            }
            out
        });
        ApplyReport::new(&opts.run_id, plan, outcomes)
    }
}

/// A host task's outcome; a panicked or cancelled task is a failed host.
fn joined(host: &str, r: Result<HostOutcome, tokio::task::JoinError>) -> HostOutcome {
    match r {
        Ok(o) => o,
        Err(e) => {
            let what = if e.is_panic() {
                "panicked (a bug in spine)"
            } else {
                "was cancelled"
            };
            HostOutcome::failed_host(
                host,
                format!(
                    "the apply of this host {what}: what it changed is not known; its lock may still be held (see `spine unlock`); make a new plan"
                ),
            )
        }
    }
}

/// Hosts with at least one drifted resource, in plan order.
pub fn hosts_to_apply(plan: &Plan) -> Vec<HostPlan> {
    plan.hosts
        .iter()
        .filter(|h| {
            h.resources
                .iter()
                .any(|r| matches!(r.verdict, Verdict::Drift { .. }))
        })
        .cloned()
        .collect()
}

/// Render the hosts and group their resources by the host they live on.
pub fn desired_by_host(
    reg: &Registry,
    hosts: &[String],
    templates: &Templates,
) -> Result<BTreeMap<String, Vec<Desired>>, render::RenderError> {
    let mut by_on: BTreeMap<String, Vec<Desired>> = BTreeMap::new();
    for h in hosts {
        for r in kinds::render_host(reg, h, templates)?.resources {
            by_on.entry(r.on.clone()).or_default().push(r);
        }
    }
    Ok(by_on)
}

/// A run id for locks and backup folders: sortable time, then random.
pub fn run_id() -> String {
    let mut r = [0u8; 6];
    let _ = getrandom::fill(&mut r);
    format!(
        "{}-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ"),
        hex::encode(r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicked_host_task_is_a_failed_host() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt.block_on(async {
            tokio::spawn(async {
                if true {
                    panic!("boom");
                }
                HostOutcome::new("immich")
            })
            .await
        });
        let o = joined("immich", r);
        assert_eq!(o.host, "immich");
        assert!(!o.ok());
        assert!(o.error.unwrap().contains("panicked"));
    }
}
