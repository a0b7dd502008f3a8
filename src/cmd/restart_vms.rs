//! `spine apply --restart-vms`: the VM-restart stage of an apply (issue 14).
//! Called once from `cmd::apply::run` after the hosts were applied: VMs whose
//! cloud-init network drifts are restarted from their Proxmox host
//! (`recover`), then their own resources are planned and applied by the
//! engine in the same run. Without the flag nothing restarts: it says what
//! would, and the run is not converged.

use std::sync::Arc;
use std::time::Duration;

use super::ssh_options;
use crate::apply::report::{ApplyReport, Left};
use crate::apply::{HostOutcome, Options};
use crate::cli::ApplyArgs;
use crate::engine::{Engine, PlanInput};
use crate::gather::ssh;
use crate::plan::Plan;
use crate::receipt::{self, ActionResult};
use crate::recover::{self, Access, Report, Target};

/// What the stage did, for the summary, the receipt and the exit code.
#[derive(Default)]
pub struct Stage {
    /// The restarted VMs' own apply (it speaks for them instead of the
    /// earlier one, which could not reach them).
    pub applied: Vec<ApplyReport>,
    pub reports: Vec<Report>,
    /// VMs that need a restart which did not happen (no flag, or "no").
    pub not_restarted: Vec<Target>,
    /// Hosts (Proxmox hosts among them) read in sync after a restart.
    pub in_sync_after: Vec<String>,
    pub text: String,
}

impl Stage {
    /// Fold the stage into the run's report: a restarted VM's own apply
    /// replaces what the earlier apply said of it; a VM not restarted, or
    /// not back, leaves the run not converged.
    pub fn merge_into(&self, report: &mut ApplyReport) {
        // What the earlier apply could not reach is now known; what it did
        // on a VM it reached (before the restart) stays recorded.
        for r in &self.reports {
            report.forget_unreached(&r.target.host);
        }
        for a in &self.applied {
            report.extend(a.clone());
        }
        // The Proxmox host's `qm set` could not converge before the restart
        // (the values wait for the VM's cloud-init drive); read in sync
        // after it, it has.
        for o in report
            .hosts
            .iter_mut()
            .filter(|o| self.settled_by_restart(o))
        {
            o.error = None;
        }
        for t in &self.not_restarted {
            report.forget_unreached(&t.host);
            report.left.push(Left {
                host: t.host.clone(),
                resource: Some(format!("vm {} on {}", t.vmid, t.pve)),
                why: "its cloud-init network reaches it only through a restart from the Proxmox host (`spine apply --restart-vms`): not restarted".into(),
            });
        }
        for r in self.reports.iter().filter(|r| !r.ok()) {
            let mut o = HostOutcome::failed_host(
                &r.target.host,
                r.error.clone().unwrap_or_else(|| {
                    format!("VM {} did not come back after the restart", r.target.vmid)
                }),
            );
            o.interrupted = r.interrupted;
            report.hosts.push(o);
        }
    }

    /// `o` is a Proxmox host, or a VM itself, whose only trouble was that
    /// the new cloud-init network waited for the restart (its values pending
    /// on the drive, its netplan file left to cloud-init); the VM came back,
    /// and the host read in sync after the restart.
    fn settled_by_restart(&self, o: &HostOutcome) -> bool {
        let restarted = self
            .reports
            .iter()
            .any(|r| r.ok() && (r.target.pve == o.host || r.target.host == o.host));
        restarted
            && self.in_sync_after.contains(&o.host)
            && !o.rolled_back
            && !o.interrupted
            && o.error.as_deref().is_some_and(|e| {
                e.starts_with("did not converge:") || e.starts_with("not converged:")
            })
            && o.actions.iter().all(|a| {
                matches!(
                    a.result,
                    ActionResult::Changed
                        | ActionResult::Ok
                        | ActionResult::Removed
                        | ActionResult::Skipped
                )
            })
    }

    /// Receipt actions: which VM, asked by whom, when, how long it was down.
    pub fn receipt_actions(&self) -> Vec<receipt::Action> {
        self.reports
            .iter()
            .map(|r| {
                let down = r.down.unwrap_or_default();
                let mut output = r.transcript.clone();
                for d in &r.done {
                    output.push_str(&format!("done: {d}\n"));
                }
                for n in &r.not_done {
                    output.push_str(&format!("not done: {n}\n"));
                }
                receipt::Action::new(
                    r.target.host.clone(),
                    "vm-restart",
                    format!(
                        "vm {} on {}; asked by {}; at {}; down {:.1}s",
                        r.target.vmid,
                        r.target.pve,
                        r.asked_by,
                        r.started,
                        down.as_secs_f64()
                    ),
                    if r.ok() {
                        ActionResult::Changed
                    } else {
                        ActionResult::Failed
                    },
                    None,
                    down.as_millis() as u64,
                    output.as_bytes(),
                )
            })
            .collect()
    }
}

/// Everything the stage needs from the apply command.
pub struct Cx<'a> {
    pub args: &'a ApplyArgs,
    pub engine: &'a Engine,
    pub loaded: &'a crate::load::Loaded,
    pub reg: &'a crate::model::Registry,
    pub provider: &'a Arc<dyn crate::secrets::Provider>,
    pub opts: &'a Options,
    /// Asks on the terminal (or answers with --yes); Err: cannot ask.
    pub ask: &'a dyn Fn(&str) -> Result<bool, String>,
}

pub fn run(cx: &Cx, plan: &Plan) -> Stage {
    let mut st = Stage::default();
    for t in recover::targets(plan) {
        if cx.engine.interrupted() {
            st.text.push_str(&format!(
                "VM {} ({}) not restarted: interrupted before it; not converged\n",
                t.vmid, t.host
            ));
            st.not_restarted.push(t);
            continue;
        }
        if !cx.args.restart_vms {
            st.text.push_str(&format!(
                "VM {} ({}) not converged: its new cloud-init network reaches it only through a restart, \
                 and nothing was restarted (no --restart-vms).\n  `spine apply --restart-vms` would: {}\n",
                t.vmid,
                t.host,
                t.what_would()
            ));
            st.not_restarted.push(t);
            continue;
        }
        let question = format!(
            "Restart VM {} ({}) on {} now? Only `yes` is accepted: ",
            t.vmid, t.host, t.pve
        );
        match (cx.ask)(&question) {
            Ok(true) => {}
            Ok(false) => {
                st.text.push_str(&format!(
                    "VM {} ({}) not restarted: not confirmed; not converged\n",
                    t.vmid, t.host
                ));
                st.not_restarted.push(t);
                continue;
            }
            Err(e) => {
                st.text
                    .push_str(&format!("VM {} ({}) not restarted: {e}\n", t.vmid, t.host));
                st.not_restarted.push(t);
                continue;
            }
        }
        let r = restart_one(cx, &t);
        st.text.push_str(&describe(&r));
        if r.ok() {
            st.applied
                .extend(apply_vm(cx, &t, &mut st.text, &mut st.in_sync_after));
        }
        st.reports.push(r);
    }
    st
}

fn restart_one(cx: &Cx, t: &Target) -> Report {
    let services = cx.reg.services.clone().unwrap_or_default();
    let pve_routes = ssh::routes(&services, &t.pve);
    let access = Access {
        pve_user: pve_routes
            .first()
            .map_or_else(|| "root".to_string(), |r| r.user.clone()),
        pve_routes,
        vm_routes: ssh::routes(&services, &t.host),
        ssh: ssh_options(&cx.args.ssh),
        wait: Duration::from_secs(cx.args.wait_timeout),
    };
    let asked_by = format!(
        "{} ({})",
        cx.opts.operator,
        if cx.args.yes {
            "--restart-vms --yes"
        } else {
            "--restart-vms, answered yes on the terminal"
        }
    );
    eprintln!("restarting VM {} ({}) from {}", t.vmid, t.host, t.pve);
    cx.engine.block_on(recover::restart(
        t,
        &access,
        asked_by,
        cx.engine.interrupt_flag(),
    ))
}

/// Plan, apply and confirm the VM's own resources now that it is back.
fn apply_vm(
    cx: &Cx,
    t: &Target,
    text: &mut String,
    in_sync_after: &mut Vec<String>,
) -> Option<ApplyReport> {
    if cx.engine.interrupted() {
        text.push_str(&format!("  not done: applying {} (interrupted)\n", t.host));
        return None;
    }
    let templates = match crate::render::Templates::new(cx.args.templates.templates.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            text.push_str(&format!("  not done: planning {}: {e}\n", t.host));
            return None;
        }
    };
    let input = PlanInput {
        loaded: cx.loaded,
        reg: cx.reg,
        hosts: std::slice::from_ref(&t.host),
        templates: &templates,
        ssh: ssh_options(&cx.args.ssh),
        parallel: cx.args.ssh.parallel,
        secrets: cx.provider.as_ref(),
        with_health: false,
    };
    let plan = match cx.engine.plan(&input) {
        Ok(p) => p,
        Err(e) => {
            text.push_str(&format!("  not done: planning {}: {e}\n", t.host));
            return None;
        }
    };
    text.push_str(&format!(
        "  {} read again after the restart: {}\n",
        t.host, plan.summary
    ));
    // What the first read of the VM found (it was unreachable before): the
    // plan's lines for it, applied next.
    for h in &plan.hosts {
        text.push_str(&crate::plan::show::host(h, false, false));
    }
    let in_sync: Vec<String> = plan
        .hosts
        .iter()
        .filter(|h| {
            h.error.is_none()
                && h.resources
                    .iter()
                    .all(|r| matches!(r.verdict, crate::kinds::Verdict::InSync))
        })
        .map(|h| h.host.clone())
        .collect();
    for h in &in_sync {
        text.push_str(&format!(
            "  {h}: in sync when read again after the restart\n"
        ));
    }
    in_sync_after.extend(in_sync);
    let services = cx.reg.services.clone().unwrap_or_default();
    let report = cx.engine.apply(
        &plan,
        &services,
        cx.opts,
        &ssh_options(&cx.args.ssh),
        cx.provider.clone(),
    );
    // A VM whose own apply after the restart converged is settled too (its
    // network waited for the restart; what else it found is applied now).
    for o in report.hosts.iter().filter(|o| o.ok()) {
        if !in_sync_after.contains(&o.host) {
            in_sync_after.push(o.host.clone());
        }
    }
    Some(report)
}

fn describe(r: &Report) -> String {
    let t = &r.target;
    let mut s = format!(
        "VM {} ({}) restart from {}: {}\n",
        t.vmid,
        t.host,
        t.pve,
        if r.ok() {
            "back".to_string()
        } else if r.interrupted {
            "INTERRUPTED".to_string()
        } else {
            "FAILED".to_string()
        }
    );
    for d in &r.done {
        s.push_str(&format!("  done: {d}\n"));
    }
    for n in &r.not_done {
        s.push_str(&format!("  not done: {n}\n"));
    }
    if !r.ok() {
        s.push_str(&format!(
            "  not done: applying {}'s own resources\n",
            t.host
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("  error: {e}\n"));
    }
    if let Some(d) = r.down {
        s.push_str(&format!("  down for {:.1}s\n", d.as_secs_f64()));
    }
    s
}
