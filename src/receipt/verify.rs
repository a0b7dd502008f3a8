//! `Store::verify`: check every receipt file, every signature and the chain,
//! and report every problem found (not just the first).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use jiff::Timestamp;
use serde_json::Value;
use ssh_key::{PublicKey, SshSig};

use super::allowed::{AllowedSigners, Untrusted};
use super::canonical::{self, sha256_hex};
use super::error::ReceiptError;
use super::model::Receipt;
use super::sign::fingerprint;
use super::store::{Store, TMP_PREFIX};
use super::{ALLOWED_SIGNERS, FORMAT_VERSION, NAMESPACE, SCHEMA};

/// What [`Store::verify`] should insist on.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Treat unsigned receipts as errors rather than warnings.
    pub require_signed: bool,
}

/// How bad a [`Problem`] is. Only errors make [`VerifyReport::is_ok`] false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// What sort of problem; the message says the specifics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One finding of [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub sequence: u64,
    pub run_id: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Receipt files examined.
    pub receipts: usize,
    /// Receipts with a signature file.
    pub signed: usize,
    /// Receipts without a signature and without a recorded key.
    pub unsigned: usize,
    /// Every problem, in file order then chain order.
    pub problems: Vec<Problem>,
    /// The lowest sequence number at which an error was found: receipts before
    /// it are intact.
    pub first_broken: Option<u64>,
    pub head: Option<Head>,
}

impl VerifyReport {
    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }

    /// The first error at [`VerifyReport::first_broken`].
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
struct Item {
    path: PathBuf,
    name_seq: u64,
    /// Sequence from the content if readable there, else from the name.
    seq: u64,
    sha256: Option<String>,
    /// `Some(previous)` if the content had a readable `previous` field.
    previous: Option<Option<String>>,
}

/// Shorthand for building problems.
struct Sink<'a> {
    problems: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    fn add(
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
    fn error(&mut self, kind: ProblemKind, file: &Path, seq: Option<u64>, msg: String) {
        self.add(Severity::Error, kind, file, seq, msg);
    }
}

impl Store {
    /// Check the whole directory and report every problem (see
    /// `docs/receipts.md`, "What verify checks"). `Err` only if the directory
    /// cannot be listed; a missing directory is an empty, valid chain.
    pub fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, ReceiptError> {
        use ProblemKind as K;
        let _lock = self.read_lock();
        let scan = self.scan()?;
        let mut report = VerifyReport {
            receipts: scan.receipts.len(),
            ..VerifyReport::default()
        };
        let mut problems = Vec::new();
        let mut sink = Sink {
            problems: &mut problems,
        };

        let allowed_path = self.dir().join(ALLOWED_SIGNERS);
        let allowed = match std::fs::read_to_string(&allowed_path) {
            Ok(text) => {
                let a = AllowedSigners::parse(&text);
                for (line, msg) in &a.bad_lines {
                    sink.add(
                        Severity::Warning,
                        K::AllowedSigners,
                        &allowed_path,
                        None,
                        format!("line {line}: {msg}; the line is ignored"),
                    );
                }
                Some(a)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                sink.error(
                    K::AllowedSigners,
                    &allowed_path,
                    None,
                    format!("cannot read: {e}"),
                );
                None
            }
        };

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

        if allowed.is_none() && report.signed > 0 {
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
            let json = sig.trim_end_matches(".sig");
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

struct FileCtx<'a> {
    path: &'a PathBuf,
    name_seq: u64,
    name_run_id: &'a str,
    sig_path: Option<PathBuf>,
    allowed: Option<&'a AllowedSigners>,
    allowed_path: &'a PathBuf,
    opts: &'a VerifyOptions,
}

/// Per-file checks: readable, JSON, version, canonical, schema, name, signature.
fn check_file(ctx: &FileCtx<'_>, sink: &mut Sink<'_>, report: &mut VerifyReport) -> Item {
    use ProblemKind as K;
    let path = ctx.path;
    let mut item = Item {
        path: path.clone(),
        name_seq: ctx.name_seq,
        seq: ctx.name_seq,
        sha256: None,
        previous: None,
    };
    let seq = Some(ctx.name_seq);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            sink.error(K::Unreadable, path, seq, format!("cannot read: {e}"));
            return item;
        }
    };
    item.sha256 = Some(sha256_hex(&bytes));
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            sink.error(
                K::NotJson,
                path,
                seq,
                format!("not valid JSON ({e}): the file is truncated or was edited"),
            );
            return item;
        }
    };
    match value.get("format_version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            sink.error(
                K::UnsupportedVersion,
                path,
                seq,
                format!("format_version {v} is not supported (this spine reads format {FORMAT_VERSION}): use a spine release that knows format {v}"),
            );
            return item;
        }
        None => {
            sink.error(
                K::Schema,
                path,
                seq,
                "format_version is missing or not an integer: not a spine receipt".into(),
            );
            return item;
        }
    }
    if let Some(s) = value.get("sequence").and_then(Value::as_u64) {
        item.seq = s;
    }
    item.previous = match value.get("previous") {
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(Value::Null) => Some(None),
        _ => None,
    };
    let seq = Some(item.seq);

    if let Err(at) = canonical::check(&bytes, &value) {
        sink.error(
            K::NotCanonical,
            path,
            seq,
            format!("not in canonical form (sorted keys, no whitespace, one trailing newline): re-serialising differs from byte {at} on; the file was reformatted or edited"),
        );
    }
    let schema = schema_errors(&value);
    for e in &schema {
        sink.error(
            K::Schema,
            path,
            seq,
            format!("does not match the receipt schema at {e}"),
        );
    }
    if schema.is_empty()
        && let Err(e) = serde_json::from_value::<Receipt>(value.clone())
    {
        sink.error(K::Schema, path, seq, format!("not a valid receipt: {e}"));
    }
    let claims = Claims::read(&value, item.seq);
    if item.seq != ctx.name_seq {
        sink.error(
            K::FileName,
            path,
            seq,
            format!(
                "file name says sequence {:06} but the receipt says {:06}: receipt files were renamed or swapped",
                ctx.name_seq, item.seq
            ),
        );
    }
    if let Some(run_id) = value.get("run_id").and_then(Value::as_str)
        && run_id != ctx.name_run_id
    {
        sink.error(
            K::FileName,
            path,
            seq,
            format!(
                "file name says run id {} but the receipt says {run_id}: receipt files were renamed or swapped",
                ctx.name_run_id
            ),
        );
    }
    check_signature(ctx, &claims, &bytes, sink, report);
    item
}

/// What a receipt says about its signer, read loosely from the JSON so that
/// the signature is checked even when the receipt fails the schema.
struct Claims {
    seq: u64,
    identity: Option<String>,
    /// `None`: no readable `operator.key_fingerprint`; `Some(None)`: null.
    key_fingerprint: Option<Option<String>>,
    finished_at: Option<Timestamp>,
}

impl Claims {
    fn read(value: &Value, seq: u64) -> Claims {
        let operator = value.get("operator");
        let key_fingerprint = match operator.and_then(|o| o.get("key_fingerprint")) {
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(Value::Null) => Some(None),
            _ => None,
        };
        Claims {
            seq,
            identity: operator
                .and_then(|o| o.get("identity"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            key_fingerprint,
            finished_at: value
                .get("finished_at")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok()),
        }
    }
}

fn check_signature(
    ctx: &FileCtx<'_>,
    claims: &Claims,
    bytes: &[u8],
    sink: &mut Sink<'_>,
    report: &mut VerifyReport,
) {
    use ProblemKind as K;
    let (path, seq) = (ctx.path, Some(claims.seq));
    let Some(recorded) = claims.key_fingerprint.as_ref().map(Option::as_deref) else {
        // No readable operator: the schema error says so; check a .sig if any.
        if let Some(sig_path) = &ctx.sig_path {
            report.signed += 1;
            check_sig_file(ctx, claims, None, sig_path, bytes, sink);
        }
        return;
    };
    let Some(sig_path) = &ctx.sig_path else {
        match recorded {
            None => {
                report.unsigned += 1;
                let sev = if ctx.opts.require_signed {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                sink.add(
                    sev,
                    K::Unsigned,
                    path,
                    seq,
                    "unsigned: no .sig and no signing key recorded (the run had no --signing-key, SPINE_SIGNING_KEY or ssh-agent key)".into(),
                );
            }
            Some(fp) => sink.error(
                K::SignatureMissing,
                path,
                seq,
                format!("signature file {} is missing but the receipt records signing key {fp}: the signature was deleted", sig_path_name(path)),
            ),
        }
        return;
    };
    report.signed += 1;
    check_sig_file(ctx, claims, Some(recorded), sig_path, bytes, sink);
}

/// Check one `.sig` against the receipt bytes, the recorded key (`None` if
/// unreadable) and allowed_signers.
fn check_sig_file(
    ctx: &FileCtx<'_>,
    claims: &Claims,
    recorded: Option<Option<&str>>,
    sig_path: &Path,
    bytes: &[u8],
    sink: &mut Sink<'_>,
) {
    use ProblemKind as K;
    let seq = Some(claims.seq);
    let sig = match std::fs::read(sig_path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|pem| SshSig::from_pem(pem).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            sink.error(
                K::SignatureMalformed,
                sig_path,
                seq,
                format!("signature truncated or not valid PEM ({e}): restore it from a backup or re-sign the receipt"),
            );
            return;
        }
    };
    let key = PublicKey::from(sig.public_key().clone());
    let fp = fingerprint(&key);
    if sig.namespace() != NAMESPACE {
        sink.error(
            K::SignatureNamespace,
            sig_path,
            seq,
            format!(
                "signature namespace is {}, expected {NAMESPACE}: it was made for another purpose",
                sig.namespace()
            ),
        );
    }
    match key.verify(sig.namespace(), bytes, &sig) {
        Ok(()) => {}
        Err(ssh_key::Error::Crypto) => sink.error(
            K::SignatureInvalid,
            sig_path,
            seq,
            "signature does not match the receipt's bytes: the receipt was changed after it was signed".into(),
        ),
        Err(e) => sink.error(
            K::SignatureInvalid,
            sig_path,
            seq,
            format!("signature cannot be checked ({e}): only ed25519 signatures are supported"),
        ),
    }
    match recorded {
        Some(Some(r)) if r != fp => sink.error(
            K::KeyMismatch,
            sig_path,
            seq,
            format!("signature made by key {fp}, but the receipt records key {r}: it was re-signed by another key"),
        ),
        Some(None) => sink.add(
            Severity::Warning,
            K::KeyMismatch,
            sig_path,
            seq,
            format!("signed by key {fp}, but the receipt records no signing key: it was signed after the run"),
        ),
        _ => {}
    }
    let (Some(allowed), Some(identity)) = (ctx.allowed, &claims.identity) else {
        return; // a missing allowed_signers or identity is reported elsewhere
    };
    let at = claims.finished_at.unwrap_or_else(Timestamp::now);
    let a = ctx.allowed_path.display();
    let (kind, msg) = match allowed.check(identity, &key, at) {
        Ok(_) => return,
        Err(Untrusted::UnknownKey) => (
            K::UntrustedKey,
            format!(
                "signature made by a key not in allowed_signers ({fp}): if it is an operator's key, add it to {a}"
            ),
        ),
        Err(Untrusted::WrongIdentity { principals }) => (
            K::WrongIdentity,
            format!(
                "signature key {fp} is in allowed_signers for {} but not for {identity}, the identity recorded in the receipt",
                principals.join(" / ")
            ),
        ),
        Err(Untrusted::NamespaceNotAllowed { line, namespaces }) => (
            K::NamespaceNotAllowed,
            format!(
                "{a} line {line} limits key {fp} to namespaces=\"{namespaces}\", which excludes {NAMESPACE}"
            ),
        ),
        Err(Untrusted::NotValidAt { line, why }) => (
            K::KeyNotValid,
            format!(
                "key {fp} was not valid when the receipt was finished ({}): {a} line {line} has {why}",
                super::model::rfc3339::format(at)
            ),
        ),
    };
    sink.error(kind, sig_path, seq, msg);
}

fn sig_path_name(path: &std::path::Path) -> String {
    format!(
        "{}.sig",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Chain checks: no gap, no fork, each `previous` is the hash of the one before.
fn check_chain(items: &[Item], sink: &mut Sink<'_>) {
    use ProblemKind as K;
    let mut by_seq: BTreeMap<u64, Vec<&Item>> = BTreeMap::new();
    for it in items {
        by_seq.entry(it.seq).or_default().push(it);
    }

    let mut expected = 1u64;
    for (&seq, group) in &by_seq {
        let first = group[0];
        if seq == 0 {
            // Schema already rejects 0; it cannot take part in the chain.
            continue;
        }
        if seq > expected {
            let msg = if seq - expected == 1 {
                format!(
                    "receipt {expected:06} is missing: the sequence jumps from {:06} to {seq:06}; a receipt was removed",
                    expected.saturating_sub(1)
                )
            } else {
                format!(
                    "receipts {expected:06} to {:06} are missing before {seq:06}; receipts were removed",
                    seq - 1
                )
            };
            sink.error(K::Gap, &first.path, Some(expected), msg);
        }
        expected = seq + 1;
        if let [a, rest @ ..] = group.as_slice() {
            for b in rest {
                sink.error(
                    K::Fork,
                    &b.path,
                    Some(seq),
                    format!(
                        "fork: this receipt and {} both have sequence {seq:06}: two runs appended without the lock, or a receipt was copied in",
                        a.path.display()
                    ),
                );
            }
        }
        for it in group {
            check_previous(it, by_seq.get(&(seq - 1)), sink);
        }
    }
}

fn check_previous(it: &Item, before: Option<&Vec<&Item>>, sink: &mut Sink<'_>) {
    use ProblemKind as K;
    let Some(previous) = &it.previous else {
        return; // content unreadable: already reported
    };
    let seq = it.seq;
    match (seq, previous) {
        (1, None) => {}
        (1, Some(p)) => sink.error(
            K::PreviousMismatch,
            &it.path,
            Some(seq),
            format!("previous must be null for the first receipt, found {p}: receipts before it were removed or renumbered"),
        ),
        (_, None) => sink.error(
            K::PreviousMismatch,
            &it.path,
            Some(seq),
            format!("previous is null but this is receipt {seq:06}: the chain was restarted or its start removed"),
        ),
        (_, Some(p)) => {
            let Some(before) = before else {
                return; // the gap is reported
            };
            let hashes: Vec<&str> = before.iter().filter_map(|b| b.sha256.as_deref()).collect();
            if hashes.is_empty() || hashes.contains(&p.as_str()) {
                return;
            }
            sink.error(
                K::PreviousMismatch,
                &it.path,
                Some(seq),
                format!(
                    "previous hash does not match receipt {:06} (expected {}, found {p}): a receipt was altered or removed",
                    seq - 1,
                    hashes.join(" or ")
                ),
            );
        }
    }
}

fn head(items: &[Item], names: &[super::store::ReceiptName]) -> Option<Head> {
    let last = items.iter().max_by_key(|i| (i.seq, i.name_seq))?;
    let name = names
        .iter()
        .find(|n| Some(n.name.as_str()) == last.path.file_name().and_then(|f| f.to_str()))?;
    Some(Head {
        sequence: last.seq,
        run_id: name.run_id.clone(),
        path: last.path.clone(),
        sha256: last.sha256.clone()?,
    })
}
