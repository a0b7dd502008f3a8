//! `spine plan`: render, gather, compare (the engine); show and optionally
//! save the plan; receipt.

use super::{Global, emit, exit, record, registry, ssh_options};
use crate::cli::{PlanArgs, PlanFormat};
use crate::engine::{Engine, PlanInput};
use crate::load::Loaded;
use crate::load::Origin;
use crate::plan::{self, Plan};
use crate::receipt::{self, DriftSummary, HostRecord, ReceiptBody};
use crate::render::Templates;

pub fn run(args: &PlanArgs, g: Global) -> u8 {
    let err_code = if args.detailed_exitcode {
        1
    } else {
        exit::COULD_NOT_RUN
    };
    if let Err(e) = record::ids(&args.receipt) {
        eprintln!("spine: {e}");
        return err_code;
    }
    let body = ReceiptBody::new(receipt::Command::Plan, std::env::args().collect());
    let (loaded, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(_) => return err_code,
    };
    let templates = match Templates::new(args.templates.templates.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return err_code;
        }
    };
    let Ok(provider) = registry::provider(&args.secrets, &reg) else {
        return err_code;
    };
    let engine = match Engine::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("spine: cannot start: {e}");
            return err_code;
        }
    };
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
    let plan = match engine.plan(&input) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return err_code;
        }
    };
    let text = match args.format {
        PlanFormat::Text => plan::show::text(&plan, g.color, g.verbose),
        PlanFormat::Json => plan::show::json(&plan),
    };
    if let Err(e) = emit(&text) {
        eprintln!("spine: cannot write output: {e}");
        return err_code;
    }
    if let Some(path) = &args.out {
        let signed = match plan::trust::save(&plan, path, args.receipt.signing_key.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return err_code;
            }
        };
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
    let Ok(origin) = super::registry::origin(&args.registry) else {
        return err_code;
    };
    let receipts = record::receipts_dir(&args.receipt, &origin);
    let body = receipt_body(body, &plan, &loaded, &origin, code);
    if let Err(e) = record::write(&args.receipt, &receipts, body, g.quiet) {
        eprintln!("spine: could not write the receipt: {e}");
        return err_code;
    }
    code
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
        .map(|h| HostRecord {
            host: h.host.clone(),
            access: h
                .route
                .as_ref()
                .map_or_else(|| "unreachable".to_string(), |r| r.describe()),
            facts_before: h.fingerprint.clone(),
            facts_after: None,
        })
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
