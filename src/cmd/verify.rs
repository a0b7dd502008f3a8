//! `spine verify`: load, validate, report. Offline and fast: the CI gate.

use super::{Error, Global, emit, exit, record, registry};
use crate::cli::VerifyArgs;
use crate::diag::FileKind;
use crate::load;
use crate::model::Registry;
use crate::receipt::{self, DriftSummary};
use crate::verify::output::{self, Format};
use crate::verify::{self, Status};

pub fn run(args: &VerifyArgs, g: Global) -> Result<u8, Error> {
    if args.list_gates {
        let mut s = String::new();
        for (id, name, help) in verify::catalogue() {
            s.push_str(&format!("{id}  {name}\n     {help}\n"));
        }
        let p = &verify::provided::ID;
        s.push_str(&format!(
            "{p}  {} (with --secrets)\n     {}\n",
            verify::provided::NAME,
            verify::provided::HELP
        ));
        return finish(emit(&s), exit::OK);
    }
    let record::Run {
        mut body,
        origin,
        receipts,
    } = record::start(&args.receipt, &args.registry, receipt::Command::Verify, g)?;
    let loaded = load::load(&origin);
    body.registry = record::registry_info(&loaded, &origin);
    if !loaded.failures.is_empty() {
        // Could not run: every file that failed to load, then exit 2.
        let text = match args.format {
            Format::Json => output::json_failures(&loaded.origin, &loaded.failures),
            _ => {
                let mut s = String::new();
                for d in &loaded.failures {
                    s.push_str(&output::render_diag(d, g.color));
                    s.push('\n');
                }
                s.push_str(&format!(
                    "status: ERROR ({} of 3 registry files could not be read from {})\n",
                    loaded.failures.len().min(3),
                    loaded.origin
                ));
                s
            }
        };
        if args.format == Format::Json {
            let _ = emit(&text);
        } else {
            eprint!("{text}");
        }
        body.status = receipt::Status::Failed;
        body.exit_code = i32::from(exit::COULD_NOT_RUN);
        if let Err(e) = record::write(&args.receipt, &receipts, body, g.quiet) {
            eprintln!("spine: {e}");
        }
        // Every file that failed was shown above.
        return Err(Error::Reported(exit::COULD_NOT_RUN));
    }
    let mut outcome = verify::run(&loaded);
    if args.secrets {
        // The provider's projects come from SERVICE_REGISTRY.yaml, typed
        // only if it passed its schema (V15 is skipped otherwise).
        let reg = Registry::from_loaded(&loaded, &[FileKind::Services]).unwrap_or_default();
        let provider = match registry::provider(&args.provider, &reg) {
            Ok(p) => p,
            Err(e) => {
                body.status = receipt::Status::Failed;
                body.exit_code = i32::from(e.exit_code());
                if let Err(w) = record::write(&args.receipt, &receipts, body, g.quiet) {
                    eprintln!("spine: {w}");
                }
                return Err(e);
            }
        };
        let v15 = verify::provided::gate(&loaded, &outcome, provider.as_ref());
        outcome.gates.push(v15);
    }
    let text = match args.format {
        Format::Text => output::text(&outcome, args.strict, g.color, g.quiet),
        Format::Json => output::json(&outcome, args.strict),
        Format::Junit => output::junit(&outcome, args.strict),
        Format::Github => output::github(&outcome, args.strict),
    };
    let failed =
        outcome.count(Status::Fail) > 0 || (args.strict && outcome.count(Status::Warn) > 0);
    let emitted = emit(&text);
    let code = match (&emitted, failed) {
        (Err(_), _) => exit::COULD_NOT_RUN,
        (Ok(()), true) => exit::FAILED,
        (Ok(()), false) => exit::OK,
    };
    body.drift = DriftSummary {
        in_sync: outcome.count(Status::Pass) as u64,
        drifted: (outcome.count(Status::Fail) + outcome.count(Status::Warn)) as u64,
        unknown: outcome.count(Status::Skip) as u64,
    };
    body.status = match code {
        exit::OK if outcome.count(Status::Skip) > 0 => receipt::Status::Incomplete,
        exit::OK => receipt::Status::Ok,
        exit::FAILED => receipt::Status::Drift,
        _ => receipt::Status::Failed,
    };
    body.exit_code = i32::from(code);
    let quiet = g.quiet || args.format != Format::Text;
    record::write(&args.receipt, &receipts, body, quiet)?;
    // A failed write is recorded in the receipt, then said once by main.
    finish(emitted, code)
}

fn finish(r: Result<(), Error>, code: u8) -> Result<u8, Error> {
    r?;
    Ok(code)
}
