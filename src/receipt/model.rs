//! The receipt's data: what a command supplies ([`ReceiptBody`]) and what is
//! stored ([`Receipt`]). Field names here are the JSON keys; keep them in step
//! with `schemas/receipt.schema.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::error::ReceiptError;
use crate::health::Check;

/// The command a receipt records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Verify,
    Plan,
    Apply,
    Health,
    /// `spine import`: the files it wrote into the operator's repository.
    Import,
}

impl Command {
    /// The lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Verify => "verify",
            Command::Plan => "plan",
            Command::Apply => "apply",
            Command::Health => "health",
            Command::Import => "import",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Overall outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything checked is as desired, or everything applied succeeded.
    Ok,
    /// A plan has changes to make.
    Changes,
    /// Verification found drift.
    Drift,
    /// Health: some endpoints answered, some did not.
    Degraded,
    /// Something could not be checked; never counted as ok.
    Incomplete,
    /// The run failed.
    Failed,
    /// An apply was rolled back.
    RolledBack,
    /// The operator interrupted the run (Ctrl-C); the action in flight finished.
    Interrupted,
}

/// Outcome of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    Ok,
    Changed,
    /// Something extra on the host was removed (a plan's `- remove`).
    Removed,
    Failed,
    Skipped,
    /// Could not be checked or its outcome is not known.
    Unknown,
    RolledBack,
}

/// One thing a run did or checked on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub host: String,
    /// What sort of action, e.g. `check`, `write-file`, `restart`.
    pub kind: String,
    /// What it acted on, e.g. a path or a service id.
    pub resource: String,
    pub result: ActionResult,
    /// Exit status of the remote command, `None` if nothing was run.
    pub exit_status: Option<i32>,
    pub duration_ms: u64,
    /// SHA-256 (lowercase hex) of the action's output; the output itself is
    /// never stored, so a receipt cannot leak it.
    pub output_sha256: String,
}

impl Action {
    /// An action record, hashing `output` so only its digest is kept.
    pub fn new(
        host: impl Into<String>,
        kind: impl Into<String>,
        resource: impl Into<String>,
        result: ActionResult,
        exit_status: Option<i32>,
        duration_ms: u64,
        output: &[u8],
    ) -> Self {
        Action {
            host: host.into(),
            kind: kind.into(),
            resource: resource.into(),
            result,
            exit_status,
            duration_ms,
            output_sha256: super::sha256_hex(output),
        }
    }
}

/// A host the run touched, how it was reached and what it looked like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    pub host: String,
    /// The access path used, e.g. `ssh ubuntu@100.114.101.50` or `local`.
    pub access: String,
    /// SHA-256 (hex) fingerprint of the facts observed before the run.
    pub facts_before: Option<String>,
    /// SHA-256 (hex) fingerprint of the facts observed after the run.
    pub facts_after: Option<String>,
}

/// Drift counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSummary {
    pub in_sync: u64,
    pub drifted: u64,
    /// Could not be checked; never folded into `in_sync`.
    pub unknown: u64,
}

/// What an apply did (apply receipts only). `drift` in the same receipt
/// keeps its own meaning: the plan's counts before applying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplySummary {
    /// Resources changed (and confirmed, for network changes).
    pub changed: u64,
    pub failed: u64,
    pub rolled_back: u64,
    /// Not tried: an earlier action failed, or the run was interrupted.
    pub skipped: u64,
    /// Resources that could not be checked, so were not changed.
    pub unknown: u64,
    /// Hosts that could not be reached, at plan or at apply time.
    pub unreachable: u64,
}

/// Which registry content a run read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryInfo {
    /// `git rev-parse HEAD` of the registry directory, `None` outside a git repo.
    pub git_commit: Option<String>,
    /// SHA-256 (hex) of each registry file, keyed by its path relative to the
    /// registry directory.
    pub files: BTreeMap<String, String>,
}

impl RegistryInfo {
    /// Hash `files` (paths relative to `dir`, or absolute under it) and look up
    /// the git commit of `dir`.
    pub fn collect(dir: &Path, files: &[&Path]) -> Result<RegistryInfo, ReceiptError> {
        let mut hashes = BTreeMap::new();
        for file in files {
            let full = dir.join(file);
            let bytes = std::fs::read(&full).map_err(|source| ReceiptError::Io {
                action: "read registry file",
                path: full.clone(),
                source,
            })?;
            let name = full
                .strip_prefix(dir)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned();
            hashes.insert(name, super::sha256_hex(&bytes));
        }
        Ok(RegistryInfo {
            git_commit: git_commit(dir),
            files: hashes,
        })
    }
}

/// `git rev-parse --verify HEAD` in `dir`; `None` if git is missing, `dir` is
/// not in a repository, or the repository has no commit yet.
fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    let is_hex = !commit.is_empty() && commit.bytes().all(|b| b.is_ascii_hexdigit());
    is_hex.then_some(commit)
}

/// Who ran the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// The signer identity, `user@host` by default; the `-I` of
    /// `ssh-keygen -Y verify` and the principal in `allowed_signers`.
    pub identity: String,
    /// `SHA256:…` fingerprint of the signing key, `None` for unsigned runs.
    pub key_fingerprint: Option<String>,
}

/// The program that wrote the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    /// This build of spine.
    pub fn current() -> Tool {
        Tool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

macro_rules! validated_id {
    ($(#[$doc:meta])* $name:ident, $check:path, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validate and wrap an id.
            pub fn parse(s: &str) -> Result<Self, ReceiptError> {
                if $check(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(ReceiptError::$variant(s.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ReceiptError;
            fn try_from(s: String) -> Result<Self, ReceiptError> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = ReceiptError;
            fn from_str(s: &str) -> Result<Self, ReceiptError> {
                $name::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_id!(
    /// A loop id, `LOOP-<NAME>-YYYYMMDD` (NAME: `A-Z`, `0-9`, inner `-`; a real date).
    LoopId,
    is_loop_id,
    InvalidLoopId
);
validated_id!(
    /// A gap id, `GAP-OP-NNN` (three or more digits).
    GapId,
    is_gap_id,
    InvalidGapId
);

fn is_loop_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("LOOP-") else {
        return false;
    };
    let Some((name, date)) = rest.rsplit_once('-') else {
        return false;
    };
    let name_ok = !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    name_ok && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) && is_real_date(date)
}

/// `YYYYMMDD` (eight ASCII digits) names a day that exists.
fn is_real_date(date: &str) -> bool {
    let num = |r: std::ops::Range<usize>| date.get(r).and_then(|s| s.parse::<i16>().ok());
    match (num(0..4), num(4..6), num(6..8)) {
        (Some(y), Some(m), Some(d)) => i8::try_from(m)
            .is_ok_and(|m| i8::try_from(d).is_ok_and(|d| jiff::civil::Date::new(y, m, d).is_ok())),
        _ => false,
    }
}

fn is_gap_id(s: &str) -> bool {
    s.strip_prefix("GAP-OP-")
        .is_some_and(|n| n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What a command supplies for its receipt. The [`Store`](super::Store) adds the
/// rest (see [`Receipt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptBody {
    pub command: Command,
    /// The command line as run. Do not put secrets on a command line.
    pub argv: Vec<String>,
    pub started_at: Timestamp,
    pub registry: RegistryInfo,
    pub hosts: Vec<HostRecord>,
    /// SHA-256 (hex) of the plan acted on or produced.
    pub plan_hash: Option<String>,
    pub actions: Vec<Action>,
    pub drift: DriftSummary,
    /// What an apply did; `None` for other commands.
    pub apply: Option<ApplySummary>,
    /// Health checks the run made (`spine health`, `spine plan`).
    pub health: Vec<Check>,
    pub loop_id: Option<LoopId>,
    pub gap_id: Option<GapId>,
    pub exit_code: i32,
    pub status: Status,
}

impl ReceiptBody {
    /// An empty body for `command`, started now, status `ok`, exit code 0.
    pub fn new(command: Command, argv: Vec<String>) -> ReceiptBody {
        ReceiptBody {
            command,
            argv,
            started_at: Timestamp::now(),
            registry: RegistryInfo::default(),
            hosts: Vec::new(),
            plan_hash: None,
            actions: Vec::new(),
            drift: DriftSummary::default(),
            // An apply receipt always has its counts, all zero until it acts.
            apply: (command == Command::Apply).then(ApplySummary::default),
            health: Vec::new(),
            loop_id: None,
            gap_id: None,
            exit_code: 0,
            status: Status::Ok,
        }
    }
}

/// A stored receipt, format version 2 (and 1, read back). Every field is
/// always present (absent values are `null`) but `apply` and `health`; the
/// file is this struct in canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub format_version: u64,
    /// `YYYYMMDDTHHMMSS.mmmZ-<12 hex>`: start time (UTC) then 48 random bits.
    pub run_id: String,
    /// 1-based position in the chain, without gaps.
    pub sequence: u64,
    /// SHA-256 (hex) of the exact bytes of receipt `sequence - 1`; `None` for 1.
    pub previous: Option<String>,
    pub command: Command,
    pub argv: Vec<String>,
    pub tool: Tool,
    pub operator: Operator,
    #[serde(with = "rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub finished_at: Timestamp,
    pub registry: RegistryInfo,
    pub hosts: Vec<HostRecord>,
    pub plan_hash: Option<String>,
    pub actions: Vec<Action>,
    pub drift: DriftSummary,
    /// Apply receipts: what the apply did. Format 2: present exactly in apply
    /// receipts. Format 1 receipts may lack it (written before it existed);
    /// they keep their exact bytes and verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplySummary>,
    /// Health checks: the one field left out when empty, so receipts written
    /// before it existed keep their exact bytes and still verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<Check>,
    #[serde(rename = "loop")]
    pub loop_id: Option<LoopId>,
    #[serde(rename = "gap")]
    pub gap_id: Option<GapId>,
    pub exit_code: i32,
    pub status: Status,
}

/// Timestamps as RFC 3339 UTC with milliseconds: `2026-04-23T10:15:02.123Z`.
pub(crate) mod rfc3339 {
    use jiff::{Timestamp, Unit};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn format(ts: Timestamp) -> String {
        let ms = ts.round(Unit::Millisecond).unwrap_or(ts);
        format!("{ms:.3}")
    }

    pub(crate) fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ts))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        if !s.ends_with('Z') {
            return Err(D::Error::custom(format!(
                "timestamp {s:?} is not UTC (must end in Z)"
            )));
        }
        s.parse()
            .map_err(|e| D::Error::custom(format!("timestamp {s:?} is not RFC 3339: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_ids() {
        for ok in ["LOOP-IMMICH-20250214", "LOOP-VM-203-NET-20240229"] {
            assert!(LoopId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "LOOP-immich-20250214",
            "LOOP--20250214",
            "LOOP-X-2025021",
            "LOOP-X-20250230",
            "LOOP-X--20250214",
            "LOOP-20250214",
            "loop-X-20250214",
            "GAP-OP-094",
        ] {
            let err = LoopId::parse(bad).unwrap_err().to_string();
            assert!(err.contains("LOOP-<NAME>-YYYYMMDD"), "{bad}: {err}");
        }
    }

    #[test]
    fn gap_ids() {
        assert!(GapId::parse("GAP-OP-094").is_ok());
        assert!(GapId::parse("GAP-OP-1234").is_ok());
        for bad in [
            "GAP-OP-94",
            "GAP-OP-09a",
            "gap-op-094",
            "GAP-094",
            "GAP-OP-",
        ] {
            assert!(GapId::parse(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<GapId>("\"GAP-X\"").unwrap_err();
        assert!(err.to_string().contains("GAP-OP-NNN"), "{err}");
    }

    #[test]
    fn timestamps_are_utc_millis() {
        let ts: Timestamp = "2026-04-23T10:15:02.123456Z".parse().unwrap();
        assert_eq!(rfc3339::format(ts), "2026-04-23T10:15:02.123Z");
        let ts: Timestamp = "2026-04-23T10:15:02Z".parse().unwrap();
        assert_eq!(rfc3339::format(ts), "2026-04-23T10:15:02.000Z");
    }
}
