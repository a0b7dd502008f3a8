//! `spine plan`: render, gather, compare (the engine); show and optionally
//! save the plan; receipt.

use super::{Error, Global, emit, exit, record, registry, ssh_options};
use crate::cli::{PlanArgs, PlanFormat};
use crate::engine::{Engine, PlanInput};
use crate::load::Loaded;
use crate::load::Origin;
use crate::plan::{self, Plan};
use crate::receipt::{self, DriftSummary, ReceiptBody};
use crate::render::Templates;

/// With `--detailed-exitcode` 2 means "changes to make", so a run that
/// could not go on exits 1 there (and its receipt says 1 too).
pub fn run(args: &PlanArgs, g: Global) -> Result<u8, Error> {
    let coded = |e: Error| {
        if args.detailed_exitcode {
            e.with_code(exit::FAILED)
        } else {
            e
        }
    };
    let record::Run {
        body,
        origin,
        receipts,
    } = record::start_coded(
        &args.receipt,
        &args.registry,
        receipt::Command::Plan,
        g.quiet,
        coded,
    )?;
    match make(args, g) {
        Ok((plan, loaded, code)) => {
            let body = receipt_body(body, &plan, &loaded, &origin, code);
            record::write(&args.receipt, &receipts, body, g.quiet).map_err(coded)?;
            Ok(code)
        }
        // A plan that could not be made is recorded too.
        Err(e) => Err(record::failed(
            &args.receipt,
            &receipts,
            body,
            coded(e),
            g.quiet,
        )),
    }
}

/// Make, show and (with `-o`) save the plan; its exit code.
fn make(args: &PlanArgs, g: Global) -> Result<(Plan, Loaded, u8), Error> {
    let (loaded, reg) = registry::checked(&args.registry, g.color)?;
    let templates = Templates::new(args.templates.templates.as_deref())?;
    let provider = registry::provider(&args.secrets, &reg)?;
    let engine = Engine::new()?;
    let input = PlanInput {
        loaded: &loaded,
        reg: &reg,
        hosts: &args.hosts,
        templates: &templates,
        ssh: ssh_options(&args.ssh),
        parallel: args.ssh.parallel,
        secrets: provider.as_ref(),
        with_health: !args.no_health,
    };
    g.progress("spine: reading the hosts over SSH...");
    let plan = engine.plan(&input)?;
    let text = match args.format {
        PlanFormat::Text => plan::show::text(&plan, g.color, g.verbose),
        PlanFormat::Json => plan::show::json(&plan),
    };
    emit(&text)?;
    if let Some(path) = &args.out {
        let signed = plan::trust::save(&plan, path, args.receipt.signing_key.as_deref())?;
        if !g.quiet {
            eprintln!(
                "plan saved to {} ({}); apply it with `spine apply {}`",
                path.display(),
                if signed {
                    "signed"
                } else {
                    "unsigned: no signing key"
                },
                path.display()
            );
        }
    }
    let code = if !args.detailed_exitcode {
        exit::OK
    } else {
        match (plan.summary.changes(), plan.summary.unknown) {
            (0, 0) => 0,
            (0, _) => 3,
            _ => 2,
        }
    };
    Ok((plan, loaded, code))
}

/// What a plan run records: hosts and paths, facts fingerprints, plan hash, drift.
fn receipt_body(
    mut body: ReceiptBody,
    plan: &Plan,
    loaded: &Loaded,
    origin: &Origin,
    code: u8,
) -> ReceiptBody {
    body.registry = record::registry_info(loaded, origin);
    body.hosts = plan
        .hosts
        .iter()
        .map(|h| record::host_record(&h.host, h.route.as_ref(), h.fingerprint.clone(), None))
        .collect();
    body.plan_hash = Some(plan::hash_json(plan));
    body.health = plan.hosts.iter().flat_map(|h| h.health.clone()).collect();
    body.drift = DriftSummary {
        in_sync: plan.summary.in_sync as u64,
        drifted: plan.summary.changes() as u64,
        unknown: plan.summary.unknown as u64,
    };
    body.status = match (plan.summary.changes(), plan.summary.unknown) {
        (0, 0) => receipt::Status::Ok,
        (0, _) => receipt::Status::Incomplete,
        _ => receipt::Status::Changes,
    };
    body.exit_code = i32::from(code);
    body
}
