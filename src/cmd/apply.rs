//! `spine apply`: a saved plan, or plan-then-apply; hosts in parallel.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Global, emit, exit, record, registry};
use crate::apply::{self, HostOutcome, Options};
use crate::cli::ApplyArgs;
use crate::gather::ssh;
use crate::kinds::Verdict;
use crate::load::Origin;
use crate::plan::{self, Plan};
use crate::receipt::{self, ActionResult, DriftSummary, HostRecord, ReceiptBody};
use crate::render::Templates;
use crate::secrets::Provider;

/// A run id for locks and backup folders: sortable time, then random.
fn run_id() -> String {
    let mut r = [0u8; 6];
    let _ = getrandom::fill(&mut r);
    format!(
        "{}-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ"),
        hex::encode(r)
    )
}

fn load_or_make(
    args: &ApplyArgs,
    g: Global,
    loaded: &crate::load::Loaded,
    reg: &crate::model::Registry,
    provider: &dyn Provider,
) -> Result<(Plan, bool), u8> {
    let as_file = match args.target.as_slice() {
        [one] => std::path::Path::new(one)
            .is_file()
            .then(|| std::path::PathBuf::from(one)),
        _ => None,
    };
    if let Some(path) = as_file {
        let plan = plan::file::load(&path).map_err(|e| {
            eprintln!("{:?}", miette::Report::new(e));
            exit::COULD_NOT_RUN
        })?;
        if plan.registry_hash != loaded.hash() {
            eprintln!(
                "spine: plan file {} was made from another registry (or the registry changed since): make a new plan with `spine plan -o FILE`",
                path.display()
            );
            return Err(exit::COULD_NOT_RUN);
        }
        return Ok((plan, true));
    }
    let templates = Templates::new(args.templates.templates.as_deref()).map_err(|e| {
        eprintln!("{:?}", miette::Report::new(e));
        exit::COULD_NOT_RUN
    })?;
    let plan = super::plan::make(
        loaded,
        reg,
        &args.target,
        &templates,
        &args.ssh,
        provider,
        false,
    )
    .map_err(|e| {
        eprintln!("{:?}", miette::Report::new(e));
        exit::COULD_NOT_RUN
    })?;
    let _ = emit(&plan::show::text(&plan, g.color, g.verbose));
    Ok((plan, false))
}

/// Asks on the terminal; a Ctrl-C while waiting counts as "no".
fn confirmed(prompt: &str, yes: bool, interrupted: &AtomicBool) -> Result<bool, String> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err("refusing to apply without a terminal to ask on: pass --yes".into());
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let r = std::io::stdin().lock().read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
    });
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => return r.map(|l| l.trim() == "yes").map_err(|e| e.to_string()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

pub fn run(args: &ApplyArgs, g: Global) -> u8 {
    if let Err(e) = record::ids(&args.receipt) {
        eprintln!("spine: {e}");
        return exit::COULD_NOT_RUN;
    }
    let mut body = ReceiptBody::new(receipt::Command::Apply, std::env::args().collect());
    // Ctrl-C is caught from the start: while planning nothing is held, so it
    // ends the run before applying; while applying, the action in flight
    // finishes (or rolls back) and the locks are released.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupted: finishing the action in flight, then releasing the locks");
        }
    });
    let (loaded, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let origin = Origin::choose(args.registry.registry.clone());
    let receipts = record::receipts_dir(&args.receipt, &origin);
    body.registry = record::registry_info(&loaded, &origin);
    let Ok(provider) = super::registry::provider(&args.secrets, &reg) else {
        return exit::COULD_NOT_RUN;
    };
    let (plan, from_file) = match load_or_make(args, g, &loaded, &reg, provider.as_ref()) {
        Ok(p) => p,
        Err(c) => return c,
    };
    body.plan_hash = Some(plan::hash_json(&plan));
    let todo = drifted(&plan);
    if todo.is_empty() && crate::recover::targets(&plan).is_empty() {
        eprintln!("nothing to apply: {}", plan.summary);
        body.status = receipt::Status::Ok;
        return finish(args, &receipts, body, exit::OK, g);
    }
    if !todo.is_empty() && (!from_file || !args.yes) {
        match confirmed(
            "Apply these changes? Only `yes` is accepted: ",
            args.yes,
            &interrupted,
        ) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("not applied: nothing was changed");
                body.status = if interrupted.load(Ordering::SeqCst) {
                    receipt::Status::Interrupted
                } else {
                    receipt::Status::Changes
                };
                return finish(args, &receipts, body, exit::FAILED, g);
            }
            Err(e) => {
                eprintln!("spine: {e}");
                return exit::COULD_NOT_RUN;
            }
        }
    }

    let services = reg.services.clone().unwrap_or_default();
    let opts = Options {
        run_id: run_id(),
        operator: receipt::default_identity(),
        confirm_timeout: Duration::from_secs(args.confirm_timeout),
        force: args.force,
        lock_ttl: Duration::from_secs(args.lock_ttl),
        wait_timeout: args.wait_timeout,
    };
    let ssh_opts = super::plan::ssh_options(&args.ssh);
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("interrupted before anything was applied");
        body.status = receipt::Status::Interrupted;
        return finish(args, &receipts, body, exit::FAILED, g);
    }
    let apply_plan = |p: &Plan| {
        apply_todo(
            &runtime,
            drifted(p),
            &services,
            &opts,
            &ssh_opts,
            &provider,
            &interrupted,
        )
    };
    let mut outcomes = apply_plan(&plan);

    // --- VM restarts (issue 14): the one call site of the restart stage. ---
    let ask = |q: &str| confirmed(q, args.yes, &interrupted);
    let stage = super::restart_vms::run(
        &super::restart_vms::Cx {
            args,
            loaded: &loaded,
            reg: &reg,
            provider: &provider,
            runtime: &runtime,
            interrupted: &interrupted,
            opts: &opts,
            ask: &ask,
            apply_plan: &apply_plan,
        },
        &plan,
    );
    outcomes.retain(|o| !stage.replaces(&o.host));
    outcomes.extend(stage.outcomes.iter().cloned());
    // --- end of the restart stage ---

    let mut text = String::new();
    for o in &outcomes {
        let state = if o.rolled_back {
            "ROLLED BACK"
        } else if o.interrupted {
            "INTERRUPTED"
        } else if o.error.is_some() {
            "FAILED"
        } else {
            "OK"
        };
        text.push_str(&format!("host {}: {state}\n", o.host));
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
    text.push_str(&stage.text);
    let all_ok = outcomes.iter().all(HostOutcome::ok) && stage.ok();
    let touched = outcomes.iter().flat_map(|o| &o.actions).any(|a| {
        matches!(
            a.result,
            ActionResult::Changed | ActionResult::Failed | ActionResult::RolledBack
        )
    });
    text.push_str(&format!(
        "apply {}: {} host(s); {}\n",
        if all_ok { "OK" } else { "FAILED" },
        outcomes.len(),
        if touched {
            format!(
                "backups of replaced files under /var/lib/spine/backups/{} on each host changed",
                opts.run_id
            )
        } else {
            "nothing was changed".to_string()
        }
    ));
    let _ = emit(&text);

    body.hosts = outcomes
        .iter()
        .map(|o| HostRecord {
            host: o.host.clone(),
            access: o
                .route
                .as_ref()
                .map_or_else(|| "unreachable".into(), |r| r.describe()),
            facts_before: o.facts_before.clone(),
            facts_after: o.facts_after.clone(),
        })
        .collect();
    body.actions = outcomes
        .iter()
        .flat_map(|o| {
            o.actions.iter().map(|a| {
                receipt::Action::new(
                    o.host.clone(),
                    a.kind.clone(),
                    a.resource.clone(),
                    a.result,
                    a.exit_status,
                    a.duration_ms,
                    a.output.as_bytes(),
                )
            })
        })
        .collect();
    body.actions.extend(stage.receipt_actions());
    let count = |r: ActionResult| {
        outcomes
            .iter()
            .flat_map(|o| &o.actions)
            .filter(|a| a.result == r)
            .count() as u64
    };
    body.drift = DriftSummary {
        in_sync: count(ActionResult::Changed),
        drifted: count(ActionResult::Failed) + count(ActionResult::RolledBack),
        unknown: count(ActionResult::Skipped),
    };
    body.status = if outcomes.iter().any(|o| o.rolled_back) {
        receipt::Status::RolledBack
    } else if outcomes.iter().any(|o| o.interrupted) || stage.reports.iter().any(|r| r.interrupted)
    {
        receipt::Status::Interrupted
    } else if all_ok {
        receipt::Status::Ok
    } else {
        receipt::Status::Failed
    };
    finish(
        args,
        &receipts,
        body,
        if all_ok { exit::OK } else { exit::FAILED },
        g,
    )
}

/// The hosts of a plan with something to change.
fn drifted(plan: &Plan) -> Vec<plan::HostPlan> {
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

/// Apply hosts in parallel.
fn apply_todo(
    runtime: &tokio::runtime::Runtime,
    todo: Vec<plan::HostPlan>,
    services: &crate::model::ServiceRegistry,
    opts: &Options,
    ssh_opts: &ssh::SshOptions,
    provider: &Arc<dyn Provider>,
    interrupted: &Arc<AtomicBool>,
) -> Vec<HostOutcome> {
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for h in todo {
            let routes = ssh::routes(services, &h.host);
            let user = routes
                .first()
                .map_or_else(|| "root".to_string(), |r| r.user.clone());
            tasks.push(tokio::spawn(apply::apply_host(
                h,
                routes,
                user,
                opts.clone(),
                ssh_opts.clone(),
                provider.clone(),
                interrupted.clone(),
            )));
        }
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(o) = t.await {
                out.push(o);
            }
        }
        out
    })
}

fn finish(
    args: &ApplyArgs,
    dir: &std::path::Path,
    mut body: ReceiptBody,
    code: u8,
    g: Global,
) -> u8 {
    body.exit_code = i32::from(code);
    if let Err(e) = record::write(&args.receipt, dir, body, g.quiet) {
        eprintln!("spine: could not write the receipt: {e}");
        return exit::COULD_NOT_RUN.max(code);
    }
    code
}
