//! Receipts: one signed, hash-chained JSON record per `verify`, `plan`, `apply`
//! and `health` run.
//!
//! A command fills in a [`ReceiptBody`] (what it did) and hands it to the
//! [`Store`], which adds what only the store can know (run id, sequence number,
//! hash of the previous receipt, operator, finish time, tool version), writes the
//! receipt in canonical JSON and signs those exact bytes:
//!
//! ```no_run
//! use spine::receipt::{Command, ReceiptBody, Signer, Status, Store};
//!
//! # fn main() -> Result<(), spine::receipt::ReceiptError> {
//! let signer = Signer::from_env(None)?; // --signing-key, SPINE_SIGNING_KEY, ssh-agent, or unsigned
//! let mut body = ReceiptBody::new(Command::Verify, std::env::args().collect());
//! body.status = Status::Ok;
//! let written = Store::open("receipts")?.append(body, &signer)?;
//! println!("receipt: {}", written.path.display());
//! # Ok(())
//! # }
//! ```
//!
//! On disk (`receipts/`):
//!
//! - `NNNNNN-<run_id>.json`: the receipt, canonical JSON ([`canonical`]);
//! - `NNNNNN-<run_id>.json.sig`: an OpenSSH SSHSIG signature (PEM) of the file's
//!   exact bytes under the namespace [`NAMESPACE`]; absent for unsigned runs;
//! - `allowed_signers`: the operators' keys, OpenSSH format, written by a person;
//! - `.lock`: held exclusively while a receipt is appended.
//!
//! An auditor needs only OpenSSH to check a receipt:
//! `ssh-keygen -Y verify -f receipts/allowed_signers -I IDENTITY -n spine-receipt@spine -s FILE.json.sig < FILE.json`.
//! [`Store::check`] checks that and the whole chain. `docs/receipts.md` is the
//! auditor's guide; `schemas/receipt.schema.json` is the format.

mod agent;
mod allowed;
mod audit;
pub mod canonical;
mod chain;
mod check;
mod error;
mod model;
mod sign;
mod store;

pub use allowed::allowed_signers_line;
pub use audit::{CheckOptions, CheckReport, Head, Problem, ProblemKind, Severity};
pub use canonical::sha256_hex;
pub use error::ReceiptError;
pub use model::{
    Action, ActionResult, ApplySummary, Command, DriftSummary, GapId, HostRecord, LoopId, Operator,
    Receipt, ReceiptBody, RegistryInfo, Status, Tool,
};
pub use sign::{ENV_OPERATOR, ENV_SIGNING_KEY, Signer, default_identity};
pub use store::{ListEntry, ShownReceipt, Store, Written};

/// The SSHSIG namespace every receipt signature is made under.
///
/// A namespace binds a signature to one purpose, so a receipt signature can never
/// be replayed as, say, a git commit signature (`git`) or a file signature
/// (`file`), and vice versa. It is fixed: changing it would orphan every
/// existing signature and every `namespaces="…"` line in `allowed_signers`.
pub const NAMESPACE: &str = "spine-receipt@spine";

/// The receipt format this code writes.
///
/// Any change to the shape of a receipt (a field added, removed, retyped or
/// given another meaning) bumps it. Format 2: an apply receipt always carries
/// its own `apply` counts and no other receipt does, so `drift` means drift
/// in every receipt (format 1 apply receipts without `apply` counted the apply
/// in `drift`: `in_sync` = changed, `drifted` = failed + rolled back,
/// `unknown` = skipped).
pub const FORMAT_VERSION: u64 = 2;

/// Every format this code reads: the one it writes and the older ones whose
/// receipts still sit in a chain. [`Store::check`] refuses any other
/// version rather than guessing at it.
pub const READ_VERSIONS: &[u64] = &[1, FORMAT_VERSION];

/// The JSON Schema (2020-12) of a receipt file, the same text as
/// `schemas/receipt.schema.json`.
pub const SCHEMA: &str = include_str!("../../schemas/receipt.schema.json");

/// File name of the allowed-signers file inside the receipts directory.
pub const ALLOWED_SIGNERS: &str = "allowed_signers";
