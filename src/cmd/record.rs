//! Writing the receipt of a run (stage 6). Every verify, plan and apply run
//! records one, signed when a key is available.

use std::path::{Path, PathBuf};

use super::Error;
use crate::cli::{ReceiptArgs, RegistryArg};
use crate::load::{Loaded, Origin};
use crate::receipt::{self, GapId, LoopId, ReceiptBody, RegistryInfo, Signer, Store};

/// A host as a receipt records it: how it was reached (`unreachable` when
/// no path answered) and the fingerprints of its facts before and after.
pub fn host_record(
    host: &str,
    route: Option<&crate::gather::ssh::Route>,
    facts_before: Option<String>,
    facts_after: Option<String>,
) -> receipt::HostRecord {
    receipt::HostRecord {
        host: host.to_string(),
        access: route.map_or_else(|| "unreachable".to_string(), |r| r.describe()),
        facts_before,
        facts_after,
    }
}

/// The start of a recorded run: its receipt so far, the registry's origin
/// and the folder its receipt goes to.
pub struct Run {
    pub body: ReceiptBody,
    pub origin: Origin,
    pub receipts: Place,
}

/// Start a recorded run of `command`: the receipt ids are checked, the
/// registry found. When no registry is found the attempt is still recorded
/// if `--receipts` names a folder (without a registry there is no default
/// place).
pub fn start(
    args: &ReceiptArgs,
    registry: &RegistryArg,
    command: receipt::Command,
    g: super::Global,
) -> Result<Run, Error> {
    start_coded(args, registry, command, g.quiet, |e| e)
}

/// [`start`] for a command whose exit codes differ (`plan
/// --detailed-exitcode`): `coded` gives an error the code the process
/// exits with, which a failed receipt records.
pub fn start_coded(
    args: &ReceiptArgs,
    registry: &RegistryArg,
    command: receipt::Command,
    quiet: bool,
    coded: impl Fn(Error) -> Error,
) -> Result<Run, Error> {
    ids(args).map_err(&coded)?;
    let body = ReceiptBody::new(command, std::env::args().collect());
    match super::registry::origin(registry) {
        Ok(origin) => Ok(Run {
            receipts: receipts_dir(args, &origin),
            origin,
            body,
        }),
        Err(e) => Err(failed(args, &args.receipts, body, coded(e), quiet)),
    }
}

/// Where a run's receipt goes: a folder, or nowhere.
pub type Place = Option<PathBuf>;

/// The receipts folder: `--receipts`, else `receipts/` at the repository
/// root (beside a `--registry` folder). Nowhere when the registry folder or
/// repository the command line names does not exist: a mistyped path gets
/// its error, not a new `receipts/` folder (and parents) beside it.
pub fn receipts_dir(args: &ReceiptArgs, origin: &Origin) -> Place {
    match &args.receipts {
        Some(d) => Some(d.clone()),
        None => origin
            .root()
            .is_none_or(Path::is_dir)
            .then(|| origin.receipts_default()),
    }
}

/// The registry as the run read it: the hash of each file's exact bytes and
/// the git commit of its folder.
pub fn registry_info(loaded: &Loaded, origin: &Origin) -> RegistryInfo {
    let git_commit = origin
        .root()
        .and_then(|dir| RegistryInfo::collect(dir, &[]).ok())
        .and_then(|r| r.git_commit);
    let files = loaded
        .docs
        .iter()
        .map(|(kind, doc)| {
            (
                relative_name(origin, *kind, &doc.source.name),
                receipt::sha256_hex(doc.source.text.as_bytes()),
            )
        })
        // The compose files stacks name, by their path in the repository.
        .chain(loaded.compose.iter().filter_map(|(name, read)| {
            let src = read.source()?;
            Some((name.clone(), receipt::sha256_hex(src.text.as_bytes())))
        }))
        .collect();
    RegistryInfo { git_commit, files }
}

/// A file's name relative to the registry folder or repository root.
fn relative_name(origin: &Origin, kind: crate::diag::FileKind, name: &str) -> String {
    match origin.root() {
        Some(root) => Path::new(name)
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| name.to_string()),
        None => kind.file_name().to_string(),
    }
}

/// Check `--loop`/`--gap` before the run starts (a bad id must not cost a run).
pub fn ids(args: &ReceiptArgs) -> Result<(Option<LoopId>, Option<GapId>), Error> {
    let l = args.loop_id.as_deref().map(LoopId::parse).transpose()?;
    let g = args.gap_id.as_deref().map(GapId::parse).transpose()?;
    Ok((l, g))
}

/// The receipt of a run that could not go on (a refused plan file, a host
/// that cannot be read, a registry that does not pass): status `failed`,
/// the error's exit code; then the error itself, for `main` to print. An
/// auditor sees the attempt, not only the runs that went through.
pub fn failed(
    args: &ReceiptArgs,
    dir: &Place,
    mut body: ReceiptBody,
    e: Error,
    quiet: bool,
) -> Error {
    body.status = crate::receipt::Status::Failed;
    body.exit_code = i32::from(e.exit_code());
    if let Err(w) = write(args, dir, body, quiet) {
        // A second problem met while handling the first: said here.
        if let Some(shown) = w.shown() {
            eprintln!("{shown}");
        }
    }
    e
}

/// Append the receipt; say where it went (stderr). An error means the run
/// could not be recorded ("could not write the receipt: ..."). With no
/// place for it ([`receipts_dir`]) nothing is written.
pub fn write(
    args: &ReceiptArgs,
    dir: &Place,
    mut body: ReceiptBody,
    quiet: bool,
) -> Result<(), Error> {
    let Some(dir) = dir else {
        if !quiet {
            eprintln!(
                "no receipt: without a registry folder there is no place for it (pass --receipts DIR to keep one)"
            );
        }
        return Ok(());
    };
    let not_written =
        |e: &dyn std::fmt::Display| Error::msg(format!("could not write the receipt: {e}"));
    let (l, g) = ids(args)?;
    body.loop_id = l;
    body.gap_id = g;
    let signer = Signer::from_env(args.signing_key.as_deref()).map_err(|e| not_written(&e))?;
    let store = Store::open(dir).map_err(|e| not_written(&e))?;
    let written = store.append(body, &signer).map_err(|e| not_written(&e))?;
    if !quiet {
        let how = if written.signature.is_some() {
            "signed"
        } else {
            "unsigned"
        };
        eprintln!(
            "receipt {} ({how}): {}",
            written.sequence,
            written.path.display()
        );
        if let Some(note) = signer.note()
            && written.signature.is_none()
        {
            eprintln!("  {note}");
        }
    }
    Ok(())
}
