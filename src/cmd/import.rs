//! `spine import HOST`: read a host (read-only), propose the registry
//! sections describing it, show them as diffs and write them (not with
//! `--dry-run`). The registry need not pass every gate: importing is how an
//! operator's files get their first `desired:` sections.

use super::{Error, Global, emit, record, registry};
use crate::cli::ImportArgs;
use crate::diag::FileKind;
use crate::engine::Engine;
use crate::import::{self, propose};
use crate::load::{self, Loaded, Origin};
use crate::model::Registry;
use crate::receipt::{self, Action, ActionResult, DriftSummary, ReceiptBody};
use crate::verify::output;

pub fn run(args: &ImportArgs, g: Global) -> Result<u8, Error> {
    let record::Run {
        body,
        origin,
        receipts,
    } = record::start(&args.receipt, &args.registry, receipt::Command::Import, g)?;
    match import(args, g, &origin) {
        Ok((loaded, reading, changes)) => {
            let mut body = receipt_body(body, args, &reading, &changes);
            body.registry = record::registry_info(&loaded, &origin);
            record::write(&args.receipt, &receipts, body, g.quiet)?;
            Ok(super::exit::OK)
        }
        // A refused import (unknown or unreachable host, a file changed
        // meanwhile) is recorded too, with nothing written.
        Err(e) => Err(record::failed(&args.receipt, &receipts, body, e, g.quiet)),
    }
}

/// Read the host, propose, show and (not with `--dry-run`) write: what was
/// read and the files (to be) written.
fn import(
    args: &ImportArgs,
    g: Global,
    origin: &Origin,
) -> Result<(Loaded, import::read::Reading, Vec<import::Change>), Error> {
    let Origin::Files(files) = origin else {
        return Err(Error::msg(
            "import writes into the operator's files: name them with --repo DIR or --registry DIR, not --builtin",
        ));
    };
    let loaded = load::load(origin);
    if !loaded.failures.is_empty() {
        for d in &loaded.failures {
            eprint!("{}", output::render_diag(d, g.color));
        }
        return Err(Error::msg(format!(
            "the registry in {} could not be read; nothing was written",
            loaded.origin
        )));
    }
    let reg = Registry::from_loaded(&loaded, &FileKind::ALL)
        .map_err(|e| Error::msg(format!("{e}; nothing was written")))?;
    let services = reg.services.clone().unwrap_or_default();
    registry::known_host(
        &services,
        &args.host,
        "; add it there (`ssh:` naming its ssh_config entry) and run import again",
    )?;
    let opts = super::ssh_options(&args.ssh);
    g.progress(&format!("spine: reading {} (read-only)", args.host));
    let reading = Engine::new()?
        .block_on(import::read_host(&reg, &args.host, &opts))
        .map_err(Error::msg)?;
    let binding_project = loaded
        .docs
        .get(&FileKind::SecretsBinding)
        .and_then(|d| d.json["infisical"]["project"].as_str().map(String::from));
    let facts = propose::Facts {
        reg: &reg,
        host: &args.host,
        binding_project: binding_project.as_deref(),
    };
    let proposal = propose::propose(&facts, &reading)
        .map_err(|e| Error::msg(format!("{e}; nothing was written")))?;
    let root = crate::load::compose::root_of(files);
    let changes = import::changes(&loaded, &reg, &root, &args.host, &proposal)
        .map_err(|e| Error::msg(format!("{e}; nothing was written")))?;
    let mut out = String::new();
    for n in &proposal.notes {
        out.push_str(&format!("import: {n}\n"));
    }
    out.push_str(&import::diff(&changes));
    if args.dry_run {
        out.push_str(&format!(
            "dry run: {} file(s) would be written; nothing written\n",
            changes.len()
        ));
    }
    // Notes and diff quote what the host sent: no control character
    // reaches the terminal.
    emit(&crate::safe::printable(&out))?;
    if !args.dry_run {
        import::write(&changes).map_err(Error::msg)?;
        let names: Vec<&str> = changes.iter().map(|c| c.shown.as_str()).collect();
        emit(&format!(
            "wrote {} file(s): {}\nnext: review them, `spine plan {}`, then commit\n",
            changes.len(),
            names.join(", "),
            args.host
        ))?;
    }
    Ok((loaded, reading, changes))
}

/// What an import records: the host and how it was read, and one
/// `write-file` action per file (skipped with `--dry-run`), whose
/// `output_sha256` is the SHA-256 of the text written (or that would be).
fn receipt_body(
    mut body: ReceiptBody,
    args: &ImportArgs,
    reading: &import::read::Reading,
    changes: &[import::Change],
) -> ReceiptBody {
    body.hosts = vec![record::host_record(
        &args.host,
        reading.route.as_ref(),
        None,
        None,
    )];
    let result = if args.dry_run {
        ActionResult::Skipped
    } else {
        ActionResult::Changed
    };
    body.actions = changes
        .iter()
        .map(|c| {
            let written = c.new.as_bytes();
            Action::new(&args.host, "write-file", &c.shown, result, None, 0, written)
        })
        .collect();
    body.drift = DriftSummary {
        in_sync: 0,
        drifted: changes.len() as u64,
        unknown: 0,
    };
    body.status = if args.dry_run && !changes.is_empty() {
        receipt::Status::Changes
    } else {
        receipt::Status::Ok
    };
    body
}
