//! Writing the receipt of a run (stage 6). Every verify, plan and apply run
//! records one, signed when a key is available.

use std::path::{Path, PathBuf};

use crate::cli::ReceiptArgs;
use crate::load::{Loaded, Origin};
use crate::receipt::{self, GapId, LoopId, ReceiptBody, RegistryInfo, Signer, Store};

/// The receipts folder: `--receipts`, else `receipts/` beside the registry folder.
pub fn receipts_dir(args: &ReceiptArgs, origin: &Origin) -> PathBuf {
    if let Some(d) = &args.receipts {
        return d.clone();
    }
    match origin {
        Origin::Dir(dir) => match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join("receipts"),
            _ => PathBuf::from("receipts"),
        },
        Origin::Embedded => PathBuf::from("receipts"),
    }
}

/// The registry as the run read it: the hash of each file's exact bytes and
/// the git commit of its folder.
pub fn registry_info(loaded: &Loaded, origin: &Origin) -> RegistryInfo {
    let git_commit = match origin {
        Origin::Dir(dir) => RegistryInfo::collect(dir, &[])
            .ok()
            .and_then(|r| r.git_commit),
        Origin::Embedded => None,
    };
    let files = loaded
        .docs
        .iter()
        .map(|(kind, doc)| {
            (
                kind.file_name().to_string(),
                receipt::sha256_hex(doc.source.text.as_bytes()),
            )
        })
        .collect();
    RegistryInfo { git_commit, files }
}

/// Check `--loop`/`--gap` before the run starts (a bad id must not cost a run).
pub fn ids(args: &ReceiptArgs) -> Result<(Option<LoopId>, Option<GapId>), String> {
    let l = args
        .loop_id
        .as_deref()
        .map(LoopId::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let g = args
        .gap_id
        .as_deref()
        .map(GapId::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((l, g))
}

/// Append the receipt; say where it went (stderr). An error means the run
/// could not be recorded.
pub fn write(
    args: &ReceiptArgs,
    dir: &Path,
    mut body: ReceiptBody,
    quiet: bool,
) -> Result<(), String> {
    let (l, g) = ids(args)?;
    body.loop_id = l;
    body.gap_id = g;
    let signer = Signer::from_env(args.signing_key.as_deref()).map_err(|e| e.to_string())?;
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    let written = store.append(body, &signer).map_err(|e| e.to_string())?;
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
