//! `spine apply`: a saved plan, or plan-then-apply; hosts in parallel.
//! Parse, engine, show, receipt: the report decides output, exit code and
//! receipt alike.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use super::{Error, Global, emit, exit, record, registry, ssh_options};
use crate::apply::Options;
use crate::apply::report::ApplyReport;
use crate::cli::ApplyArgs;
use crate::engine::{self, Engine, PlanInput};
use crate::plan::{self, Plan};
use crate::receipt::{self, DriftSummary, ReceiptBody};
use crate::render::Templates;
use crate::secrets::Provider;

/// The plan file named on the command line, if the one target is a file.
fn plan_file(args: &ApplyArgs) -> Option<std::path::PathBuf> {
    match args.target.as_slice() {
        [one] => std::path::Path::new(one)
            .is_file()
            .then(|| std::path::PathBuf::from(one)),
        _ => None,
    }
}

fn load_or_make(
    args: &ApplyArgs,
    g: Global,
    engine: &Engine,
    loaded: &crate::load::Loaded,
    reg: &crate::model::Registry,
    provider: &dyn Provider,
) -> Result<(Plan, bool), Error> {
    if let Some(path) = plan_file(args) {
        let plan = plan::trust::load(
            &path,
            reg,
            args.templates.templates.as_deref(),
            args.receipt.signing_key.as_deref(),
        )?;
        if plan.registry_hash != loaded.hash() {
            return Err(Error::msg(format!(
                "plan file {} was made from another registry (or the registry changed since): make a new plan with `spine plan -o FILE`",
                path.display()
            )));
        }
        let _ = emit(&plan::show::text(&plan, g.color, g.verbose));
        return Ok((plan, true));
    }
    let templates = Templates::new(args.templates.templates.as_deref())?;
    let input = PlanInput {
        loaded,
        reg,
        hosts: &args.target,
        templates: &templates,
        ssh: ssh_options(&args.ssh),
        parallel: args.ssh.parallel,
        secrets: provider,
        with_health: false,
    };
    let plan = engine.plan(&input)?;
    let _ = emit(&plan::show::text(&plan, g.color, g.verbose));
    Ok((plan, false))
}

/// Asks on the terminal; a Ctrl-C while waiting counts as "no".
fn confirmed(prompt: &str, yes: bool, engine: &Engine) -> Result<bool, String> {
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
        if engine.interrupted() {
            return Ok(false);
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => return r.map(|l| l.trim() == "yes").map_err(|e| e.to_string()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

pub fn run(args: &ApplyArgs, g: Global) -> Result<u8, Error> {
    let record::Run {
        mut body,
        origin,
        receipts,
    } = record::start(&args.receipt, &args.registry, receipt::Command::Apply, g)?;
    let engine = Engine::new()?;
    // Ctrl-C is caught from the start: while planning nothing is held, so it
    // ends the run before applying.
    engine.catch_interrupt();
    // A registry that cannot be used is recorded too (nothing was applied).
    let (loaded, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(e) => return Err(record::failed(&args.receipt, &receipts, body, e, g.quiet)),
    };
    body.registry = record::registry_info(&loaded, &origin);
    let provider = registry::provider(&args.secrets, &reg)?;
    let (plan, from_file) = match load_or_make(args, g, &engine, &loaded, &reg, provider.as_ref()) {
        Ok(p) => p,
        // A plan refused (forged, tampered, another registry's) or one that
        // could not be made is recorded too: an auditor sees the attempt.
        Err(e) => return Err(record::failed(&args.receipt, &receipts, body, e, g.quiet)),
    };
    body.plan_hash = Some(plan::hash_json(&plan));
    body.drift = plan_drift(&plan);
    let run_id = engine::run_id();
    body.apply = Some(not_applied(&run_id, &plan));
    let opts = Options {
        run_id,
        operator: receipt::default_identity(),
        confirm_timeout: Duration::from_secs(args.confirm_timeout),
        force: args.force,
        lock_ttl: Duration::from_secs(args.lock_ttl),
        wait_timeout: args.wait_timeout,
        keep_backups: args.keep_backups,
    };
    let todo = engine::hosts_to_apply(&plan);
    if todo.is_empty() && crate::recover::targets(&plan).is_empty() {
        eprintln!("nothing to apply: {}", plan.summary);
        let report = ApplyReport::nothing_to_do(&opts.run_id, &plan);
        if !report.converged() {
            let _ = emit(&report.text());
        }
        return finish(args, &receipts, body, &report, g);
    }
    if !todo.is_empty() && (!from_file || !args.yes) {
        match confirmed(
            "Apply these changes? Only `yes` is accepted: ",
            args.yes,
            &engine,
        ) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("not applied: nothing was changed");
                body.status = if engine.interrupted() {
                    receipt::Status::Interrupted
                } else {
                    receipt::Status::Changes
                };
                return write(args, &receipts, body, exit::FAILED, g);
            }
            Err(e) => {
                return Err(record::failed(
                    &args.receipt,
                    &receipts,
                    body,
                    Error::msg(e),
                    g.quiet,
                ));
            }
        }
    }
    if engine.interrupted() {
        eprintln!("interrupted before anything was applied");
        body.status = receipt::Status::Interrupted;
        return write(args, &receipts, body, exit::FAILED, g);
    }
    let services = reg.services.clone().unwrap_or_default();
    let mut report = engine.apply(
        &plan,
        &services,
        &opts,
        &ssh_options(&args.ssh),
        provider.clone(),
    );

    // --- VM restarts (issue 14): the one call site of the restart stage. ---
    let ask = |q: &str| confirmed(q, args.yes, &engine);
    let stage = super::restart_vms::run(
        &super::restart_vms::Cx {
            args,
            engine: &engine,
            loaded: &loaded,
            reg: &reg,
            provider: &provider,
            opts: &opts,
            ask: &ask,
        },
        &plan,
    );
    stage.merge_into(&mut report);
    body.actions = stage.receipt_actions();
    // --- end of the restart stage ---

    let _ = emit(&format!("{}{}", stage.text, report.text()));
    finish(args, &receipts, body, &report, g)
}

/// The plan's own counts: what was in sync, drifted or unknown before applying.
fn plan_drift(plan: &Plan) -> DriftSummary {
    DriftSummary {
        in_sync: plan.summary.in_sync as u64,
        drifted: plan.summary.changes() as u64,
        unknown: plan.summary.unknown as u64,
    }
}

/// The counts of an apply that changed nothing: every planned change
/// skipped (not confirmed, or interrupted before it began), what the plan
/// could not see left unknown or unreachable.
fn not_applied(run_id: &str, plan: &Plan) -> receipt::ApplySummary {
    receipt::ApplySummary {
        skipped: plan.summary.changes() as u64,
        ..ApplyReport::nothing_to_do(run_id, plan).counts()
    }
}

/// The receipt of an apply, from its report.
fn finish(
    args: &ApplyArgs,
    dir: &record::Place,
    mut body: ReceiptBody,
    report: &ApplyReport,
    g: Global,
) -> Result<u8, Error> {
    body.hosts = report
        .hosts
        .iter()
        .map(|o| {
            record::host_record(
                &o.host,
                o.route.as_ref(),
                o.facts_before.clone(),
                o.facts_after.clone(),
            )
        })
        .collect();
    // Actions recorded before (the VM restarts) stay, after the hosts'.
    let earlier = std::mem::take(&mut body.actions);
    body.actions = report
        .hosts
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
    body.actions.extend(earlier);
    body.apply = Some(report.counts());
    body.status = report.status();
    write(args, dir, body, report.exit_code(), g)
}

fn write(
    args: &ApplyArgs,
    dir: &record::Place,
    mut body: ReceiptBody,
    code: u8,
    g: Global,
) -> Result<u8, Error> {
    body.exit_code = i32::from(code);
    record::write(&args.receipt, dir, body, g.quiet)
        .map_err(|e| e.with_code(exit::COULD_NOT_RUN.max(code)))?;
    Ok(code)
}
