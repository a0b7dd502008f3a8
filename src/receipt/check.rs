//! Per-file checks of `Store::check`: readable, JSON, format version,
//! canonical form, schema, file name, signature and allowed_signers.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::Value;
use ssh_key::{PublicKey, SshSig};

use super::allowed::{AllowedSigners, Untrusted};
use super::audit::{CheckOptions, CheckReport, Item, ProblemKind, Severity, Sink, schema_errors};
use super::canonical::{self, sha256_hex};
use super::model::Receipt;
use super::sign::fingerprint;
use super::{NAMESPACE, READ_VERSIONS};

/// What the checks of one file need to know.
pub(super) struct FileCtx<'a> {
    pub(super) path: &'a PathBuf,
    pub(super) name_seq: u64,
    pub(super) name_run_id: &'a str,
    pub(super) sig_path: Option<PathBuf>,
    pub(super) allowed: Option<&'a AllowedSigners>,
    pub(super) allowed_path: &'a PathBuf,
    pub(super) opts: &'a CheckOptions,
}

/// Per-file checks: readable, JSON, version, canonical, schema, name, signature.
pub(super) fn check_file(ctx: &FileCtx<'_>, sink: &mut Sink<'_>, report: &mut CheckReport) -> Item {
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
        Some(v) if READ_VERSIONS.contains(&v) => {}
        Some(v) => {
            sink.error(
                K::UnsupportedVersion,
                path,
                seq,
                format!(
                    "format_version {v} is not supported (this spine reads formats {}): use a spine release that knows format {v}",
                    versions_read()
                ),
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
    // The chain goes by the signed content; a sequence of 0 (invalid, the
    // schema says so) falls back to the file name's.
    let content_seq = value.get("sequence").and_then(Value::as_u64);
    if let Some(s) = content_seq.filter(|&s| s >= 1) {
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
    if let Some(s) = content_seq
        && s != ctx.name_seq
    {
        sink.error(
            K::FileName,
            path,
            seq,
            format!(
                "file name says sequence {:06} but the receipt says {s:06}: receipt files were renamed or swapped",
                ctx.name_seq
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
    report: &mut CheckReport,
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

fn sig_path_name(path: &Path) -> String {
    format!(
        "{}.sig",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// `1 and 2`: the formats this spine reads, for messages.
fn versions_read() -> String {
    let all: Vec<String> = READ_VERSIONS.iter().map(u64::to_string).collect();
    match all.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}
