//! `Store::check`: check every receipt file, every signature and the chain,
//! and report every problem found (not just the first).

//!
//! The per-file checks are in `check.rs`, the chain checks in `chain.rs`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;

use super::allowed::AllowedSigners;
use super::chain::{check_chain, check_head, head};
use super::check::{FileCtx, check_file};
use super::error::ReceiptError;
use super::store::{Store, TMP_PREFIX};
use super::{ALLOWED_SIGNERS, SCHEMA};

/// What [`Store::check`] should insist on.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Treat unsigned receipts as errors rather than warnings.
    pub require_signed: bool,
    /// The trust anchor: an `allowed_signers` file kept outside the receipts
    /// folder. `None` reads the folder's own `allowed_signers`, which whoever
    /// can rewrite the receipts can rewrite too (reported as a warning).
    pub allowed_signers: Option<PathBuf>,
    /// SHA-256 of a receipt known earlier to be the head (pinned outside, e.g.
    /// in a signed git tag): it must still be in the chain, so receipts
    /// removed from the end (or a rewritten chain) are caught.
    pub expect_head: Option<String>,
}

/// How bad a [`Problem`] is. Only errors make [`CheckReport::is_ok`] false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// What sort of problem; the message says the specifics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file could not be read.
    Unreadable,
    /// Not UTF-8 JSON.
    NotJson,
    /// `format_version` is not one this spine reads.
    UnsupportedVersion,
    /// Does not match the receipt schema (missing field, wrong type, bad id…).
    Schema,
    /// Re-serialising does not give the exact bytes.
    NotCanonical,
    /// File name disagrees with the content (sequence or run id).
    FileName,
    /// No `.sig` and no key recorded.
    Unsigned,
    /// The receipt records a signing key but its `.sig` is gone.
    SignatureMissing,
    /// The `.sig` is truncated or not an SSH signature.
    SignatureMalformed,
    /// The signature was made under another namespace.
    SignatureNamespace,
    /// The signature does not verify over the stored bytes.
    SignatureInvalid,
    /// The signature's key is not the key the receipt records.
    KeyMismatch,
    /// The signing key is not in `allowed_signers`.
    UntrustedKey,
    /// The key is in `allowed_signers` but not for the receipt's identity.
    WrongIdentity,
    /// `allowed_signers` does not allow the key this namespace.
    NamespaceNotAllowed,
    /// The key was outside its `valid-after`/`valid-before` window.
    KeyNotValid,
    /// `allowed_signers` is missing or has lines that were skipped.
    AllowedSigners,
    /// The `allowed_signers` in use sits inside the folder it checks.
    AnchorInside,
    /// The receipt pinned with `--expect-head` is not in the chain.
    HeadMissing,
    /// A sequence number is missing.
    Gap,
    /// Two receipts have the same sequence number.
    Fork,
    /// `previous` is not the hash of the receipt before.
    PreviousMismatch,
    /// A `.sig` file without its receipt.
    OrphanSignature,
    /// A file that does not belong in the directory.
    StrayFile,
}

/// One finding of [`Store::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub kind: ProblemKind,
    /// The file the problem is in, when there is one.
    pub file: Option<PathBuf>,
    /// The sequence number of the receipt concerned, when known.
    pub sequence: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    /// `receipts/000003-….json: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {}", file.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The last receipt of the chain: publish or remember `sha256` elsewhere to
/// detect later removal of receipts from the end, which no chain can show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub sequence: u64,
    pub run_id: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// The result of [`Store::check`]; serialisable for a `--json` output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Receipt files examined.
    pub receipts: usize,
    /// Receipts with a signature file.
    pub signed: usize,
    /// Receipts without a signature and without a recorded key.
    pub unsigned: usize,
    /// Every problem: allowed_signers, then each receipt file in order, then
    /// the directory, then the chain.
    pub problems: Vec<Problem>,
    /// The lowest sequence number at which an error was found: receipts before
    /// it are intact.
    pub first_broken: Option<u64>,
    pub head: Option<Head>,
    /// The `allowed_signers` file signatures were checked against.
    pub allowed_signers: Option<PathBuf>,
}

impl CheckReport {
    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The problems of severity error.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// The problems of severity warning.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }

    /// The first error at [`CheckReport::first_broken`].
    pub fn first_broken_problem(&self) -> Option<&Problem> {
        let seq = self.first_broken?;
        self.errors().find(|p| p.sequence == Some(seq))
    }
}

static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    let schema: Value =
        serde_json::from_str(SCHEMA).map_err(|e| format!("receipt schema is not JSON: {e}"))?;
    jsonschema::draft202012::new(&schema).map_err(|e| format!("receipt schema is invalid: {e}"))
});

/// Schema violations of a receipt value, as `"/json/pointer: message"`.
pub(crate) fn schema_errors(value: &Value) -> Vec<String> {
    match &*VALIDATOR {
        Ok(v) => v
            .iter_errors(value)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect(),
        Err(e) => vec![e.clone()],
    }
}

/// One receipt file, as far as it could be understood.
pub(super) struct Item {
    pub(super) path: PathBuf,
    pub(super) name_seq: u64,
    /// Sequence from the content if readable there, else from the name.
    pub(super) seq: u64,
    pub(super) sha256: Option<String>,
    /// `Some(previous)` if the content had a readable `previous` field.
    pub(super) previous: Option<Option<String>>,
}

/// Shorthand for building problems.
pub(super) struct Sink<'a> {
    pub(super) problems: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    pub(super) fn add(
        &mut self,
        sev: Severity,
        kind: ProblemKind,
        file: &Path,
        seq: Option<u64>,
        msg: String,
    ) {
        self.problems.push(Problem {
            severity: sev,
            kind,
            file: Some(file.to_path_buf()),
            sequence: seq,
            message: msg,
        });
    }
    pub(super) fn error(&mut self, kind: ProblemKind, file: &Path, seq: Option<u64>, msg: String) {
        self.add(Severity::Error, kind, file, seq, msg);
    }
}

impl Store {
    /// Check the whole directory and report every problem (see
    /// `docs/receipts.md`, "What verify checks"). `Err` only if the directory
    /// cannot be listed; a missing directory is an empty, valid chain.
    pub fn check(&self, opts: &CheckOptions) -> Result<CheckReport, ReceiptError> {
        use ProblemKind as K;
        let _lock = self.read_lock();
        let scan = self.scan()?;
        let mut report = CheckReport {
            receipts: scan.receipts.len(),
            ..CheckReport::default()
        };
        let mut problems = Vec::new();
        let mut sink = Sink {
            problems: &mut problems,
        };

        let allowed_path = opts
            .allowed_signers
            .clone()
            .unwrap_or_else(|| self.dir().join(ALLOWED_SIGNERS));
        let allowed = read_allowed(&allowed_path, opts.allowed_signers.is_some(), &mut sink);
        if allowed.is_some() {
            report.allowed_signers = Some(allowed_path.clone());
            if inside(&allowed_path, self.dir()) {
                sink.add(
                    Severity::Warning,
                    K::AnchorInside,
                    &allowed_path,
                    None,
                    "the trust anchor sits inside the receipts folder it checks: whoever can rewrite the receipts can rewrite it and re-sign the chain; pass --allowed-signers FILE (or SPINE_ALLOWED_SIGNERS) from a reviewed copy outside it, and --expect-head (docs/receipts.md)".into(),
                );
            }
        }

        let mut items = Vec::new();
        for r in &scan.receipts {
            let path = self.dir().join(&r.name);
            let sig_name = format!("{}.sig", r.name);
            let sig_path = scan
                .signatures
                .contains(&sig_name)
                .then(|| self.dir().join(&sig_name));
            let ctx = FileCtx {
                path: &path,
                name_seq: r.sequence,
                name_run_id: &r.run_id,
                sig_path,
                allowed: allowed.as_ref(),
                allowed_path: &allowed_path,
                opts,
            };
            items.push(check_file(&ctx, &mut sink, &mut report));
        }

        if allowed.is_none() && report.signed > 0 && opts.allowed_signers.is_none() {
            sink.error(
                K::AllowedSigners,
                &allowed_path,
                None,
                format!(
                    "missing: the {} signed receipt(s) cannot be checked against trusted keys; add each operator's key (docs/receipts.md)",
                    report.signed
                ),
            );
        }
        for sig in &scan.signatures {
            let json = sig.strip_suffix(".sig").unwrap_or(sig);
            if !scan.receipts.iter().any(|r| r.name == json) {
                let seq = super::store::parse_name(json).map(|r| r.sequence);
                sink.error(
                    K::OrphanSignature,
                    &self.dir().join(sig),
                    seq,
                    format!("signature without its receipt {json}: the receipt was deleted (or an append was interrupted; then delete this .sig)"),
                );
            }
        }
        for other in &scan.others {
            if other == ALLOWED_SIGNERS || other == ".lock" {
                continue;
            }
            let msg = if other.starts_with(TMP_PREFIX) {
                "temporary file left by an interrupted append: safe to delete".to_owned()
            } else {
                "not a receipt (NNNNNN-<run id>.json), signature or allowed_signers: move it elsewhere".to_owned()
            };
            sink.add(
                Severity::Warning,
                K::StrayFile,
                &self.dir().join(other),
                None,
                msg,
            );
        }

        check_chain(&items, &mut sink);
        if let Some(expected) = &opts.expect_head {
            check_head(&items, expected, self.dir(), &mut sink);
        }
        report.head = head(&items, &scan.receipts);
        report.first_broken = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .filter_map(|p| p.sequence)
            .min();
        report.problems = problems;
        Ok(report)
    }
}

/// Read the `allowed_signers` file; its bad lines are warnings. A missing
/// folder copy is `None` (reported later if anything is signed); a missing
/// file the auditor named is an error.
fn read_allowed(path: &Path, named: bool, sink: &mut Sink<'_>) -> Option<AllowedSigners> {
    use ProblemKind as K;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let a = AllowedSigners::parse(&text);
            for (line, msg) in &a.bad_lines {
                sink.add(
                    Severity::Warning,
                    K::AllowedSigners,
                    path,
                    None,
                    format!("line {line}: {msg}; the line is ignored"),
                );
            }
            Some(a)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => None,
        Err(e) => {
            sink.error(K::AllowedSigners, path, None, format!("cannot read: {e}"));
            None
        }
    }
}

/// Whether `file` is inside `dir` (symlinks resolved where they exist).
fn inside(file: &Path, dir: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    real(file).starts_with(real(dir))
}
