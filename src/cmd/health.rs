//! `spine health`: probe the services.health endpoints, print the table (or
//! JSON), record a receipt. Needs only services.health.yaml to be valid.

use super::{Global, emit, exit, record};
use crate::cli::{HealthArgs, PlanFormat};
use crate::diag::FileKind;
use crate::health::{self, Limits, Probe, Tally, show};
use crate::load::{self, Loaded};
use crate::model::{HealthFile, Registry};
use crate::receipt::{self, DriftSummary, ReceiptBody};
use crate::verify::{self, Status, output, schema};

/// services.health.yaml, typed, or why not (already reported).
fn health_file(loaded: &Loaded, color: bool) -> Result<HealthFile, ()> {
    if !loaded.failures.is_empty() {
        for d in &loaded.failures {
            eprint!("{}", output::render_diag(d, color));
        }
        eprintln!("spine: the registry in {} could not be read", loaded.origin);
        return Err(());
    }
    let outcome = verify::run(loaded);
    let id = schema::gate_id(FileKind::Health);
    if let Some(g) = outcome
        .gates
        .iter()
        .find(|g| g.id == id && g.status != Status::Pass)
    {
        for d in &g.diags {
            eprint!("{}", output::render_diag(d, color));
        }
        eprintln!(
            "spine: services.health.yaml in {} does not match its schema ({id}); fix it first",
            loaded.origin
        );
        return Err(());
    }
    match Registry::from_loaded(loaded, &[FileKind::Health]) {
        Ok(Registry {
            health: Some(h), ..
        }) => Ok(h),
        Ok(_) => {
            eprintln!("spine: no services.health.yaml in {}", loaded.origin);
            Err(())
        }
        Err(e) => {
            eprintln!("spine: {e}");
            Err(())
        }
    }
}

/// Receipt status and drift counts of a set of probes.
pub fn receipt_fields(probes: &[Probe]) -> (receipt::Status, DriftSummary) {
    let t = Tally::of(probes);
    let status = if t.total == 0 {
        receipt::Status::Failed
    } else if t.failures() == 0 {
        receipt::Status::Ok
    } else if t.ok > 0 {
        receipt::Status::Degraded
    } else {
        receipt::Status::Failed
    };
    let drift = DriftSummary {
        in_sync: t.ok as u64,
        drifted: t.failures() as u64,
        unknown: t.skip as u64,
    };
    (status, drift)
}

pub fn run(args: &HealthArgs, g: Global) -> u8 {
    if let Err(e) = record::ids(&args.receipt) {
        eprintln!("spine: {e}");
        return exit::COULD_NOT_RUN;
    }
    let mut body = ReceiptBody::new(receipt::Command::Health, std::env::args().collect());
    let Ok(origin) = super::registry::origin(&args.registry) else {
        return exit::COULD_NOT_RUN;
    };
    let loaded = load::load(&origin);
    let receipts = record::receipts_dir(&args.receipt, &origin);
    body.registry = record::registry_info(&loaded, &origin);
    let quiet = g.quiet || args.format == PlanFormat::Json;

    let Ok(file) = health_file(&loaded, g.color) else {
        body.status = receipt::Status::Failed;
        body.exit_code = i32::from(exit::COULD_NOT_RUN);
        if let Err(e) = record::write(&args.receipt, &receipts, body, quiet) {
            eprintln!("spine: could not write the receipt: {e}");
        }
        return exit::COULD_NOT_RUN;
    };
    let endpoints = health::select(&file, &args.host, &args.id);
    let limits = Limits::from(&file.defaults);
    let probes = health::run(&endpoints, limits);
    let tally = Tally::of(&probes);
    let code = if endpoints.is_empty() {
        let known: Vec<&str> = file.endpoints.iter().map(|e| e.id.as_str()).collect();
        eprintln!(
            "spine: no endpoint in {} matches{}{} (endpoints: {})",
            loaded.origin,
            filter_text("--host", &args.host),
            filter_text("--id", &args.id),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        exit::COULD_NOT_RUN
    } else if tally.failures() > 0 {
        exit::FAILED
    } else {
        exit::OK
    };
    let text = match args.format {
        PlanFormat::Text => show::text(&probes, g.color),
        PlanFormat::Json => show::json(&probes, &loaded.origin, &limits),
    };
    let code = match emit(&text) {
        Ok(()) => code,
        Err(e) => {
            eprintln!("spine: cannot write output: {e}");
            exit::COULD_NOT_RUN
        }
    };
    (body.status, body.drift) = receipt_fields(&probes);
    body.health = probes;
    body.exit_code = i32::from(code);
    if let Err(e) = record::write(&args.receipt, &receipts, body, quiet) {
        eprintln!("spine: could not write the receipt: {e}");
        return exit::COULD_NOT_RUN;
    }
    code
}

fn filter_text(flag: &str, values: &[String]) -> String {
    values.iter().map(|v| format!(" {flag} {v}")).collect()
}
