//! `spine health`: check the services.health endpoints, print the table (or
//! JSON), record a receipt. Needs only services.health.yaml to be valid.

use super::{Error, Global, emit, exit, record};
use crate::cli::{HealthArgs, PlanFormat};
use crate::diag::FileKind;
use crate::health::{self, Check, Limits, Tally, show};
use crate::load::{self, Loaded};
use crate::model::{HealthFile, Registry};
use crate::receipt::{self, DriftSummary};
use crate::verify::{self, Status, output, schema};

/// services.health.yaml, typed, or why not (its diagnostics shown here).
fn health_file(loaded: &Loaded, color: bool) -> Result<HealthFile, Error> {
    super::registry::read_whole(loaded, color)?;
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
        return Err(Error::msg(format!(
            "services.health.yaml in {} does not match its schema ({id}); fix it first",
            loaded.origin
        )));
    }
    match Registry::from_loaded(loaded, &[FileKind::Health]) {
        Ok(Registry {
            health: Some(h), ..
        }) => Ok(h),
        Ok(_) => Err(Error::msg(format!(
            "no services.health.yaml in {}",
            loaded.origin
        ))),
        Err(e) => Err(Error::msg(e)),
    }
}

/// Receipt status and drift counts of a set of health checks.
pub fn receipt_fields(checks: &[Check]) -> (receipt::Status, DriftSummary) {
    let t = Tally::of(checks);
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

pub fn run(args: &HealthArgs, g: Global) -> Result<u8, Error> {
    let record::Run {
        mut body,
        origin,
        receipts,
    } = record::start(&args.receipt, &args.registry, receipt::Command::Health, g)?;
    let loaded = load::load(&origin);
    body.registry = record::registry_info(&loaded, &origin);
    let quiet = g.quiet || args.format == PlanFormat::Json;

    let file = match health_file(&loaded, g.color) {
        Ok(f) => f,
        Err(e) => {
            body.status = receipt::Status::Failed;
            body.exit_code = i32::from(e.exit_code());
            if let Err(w) = record::write(&args.receipt, &receipts, body, quiet) {
                eprintln!("spine: {w}");
            }
            return Err(e);
        }
    };
    let endpoints = health::select(&file, &args.host, &args.id);
    let limits = Limits::from(&file.defaults);
    let checks = health::run(&endpoints, limits);
    let tally = Tally::of(&checks);
    // An error is recorded in the receipt first, then said once by main.
    let mut error = None;
    let code = if endpoints.is_empty() {
        let known: Vec<&str> = file.endpoints.iter().map(|e| e.id.as_str()).collect();
        error = Some(Error::msg(format!(
            "no endpoint in {} matches{}{} (endpoints: {})",
            loaded.origin,
            filter_text("--host", &args.host),
            filter_text("--id", &args.id),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
        exit::COULD_NOT_RUN
    } else if tally.failures() > 0 {
        exit::FAILED
    } else {
        exit::OK
    };
    let text = match args.format {
        PlanFormat::Text => show::text(&checks, g.color),
        PlanFormat::Json => show::json(&checks, &loaded.origin, &limits),
    };
    let code = match emit(&text) {
        Ok(()) => code,
        Err(e) => {
            error = error.or(Some(e));
            exit::COULD_NOT_RUN
        }
    };
    (body.status, body.drift) = receipt_fields(&checks);
    body.health = checks;
    body.exit_code = i32::from(code);
    record::write(&args.receipt, &receipts, body, quiet)?;
    match error {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

fn filter_text(flag: &str, values: &[String]) -> String {
    values.iter().map(|v| format!(" {flag} {v}")).collect()
}
