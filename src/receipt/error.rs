//! Errors of the receipts stage. Each message names the file involved and says
//! what to do about it. (Problems found by [`Store::check`](super::Store::check)
//! are not errors: they are collected in a [`CheckReport`](super::CheckReport).)

use std::path::PathBuf;

/// An error appending, listing or showing receipts, or loading a signing key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a directory: give the receipts directory (e.g. ./receipts)", .0.display())]
    NotADirectory(PathBuf),

    #[error(
        "timed out after {secs} s waiting for the lock {}: another spine run is appending a receipt; retry when it has finished",
        path.display()
    )]
    LockTimeout { path: PathBuf, secs: u64 },

    #[error(
        "receipts {} and {} both claim sequence {seq}: the chain is forked; run `spine receipts check` and move the receipt that should not exist out of the directory",
        first.display(), second.display()
    )]
    Forked {
        seq: u64,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("the receipt to write is invalid (this is a bug in the command that built it): {0}")]
    InvalidBody(String),

    #[error(
        "operator identity {0:?} cannot be used: it must be one word without blanks, commas, quotes or * ? ! (e.g. ronny@pve); set SPINE_OPERATOR"
    )]
    InvalidIdentity(String),

    #[error("{0:?} is not a loop id: expected LOOP-<NAME>-YYYYMMDD, e.g. LOOP-IMMICH-NET-20250214")]
    InvalidLoopId(String),

    #[error("{0:?} is not a gap id: expected GAP-OP-NNN, e.g. GAP-OP-094")]
    InvalidGapId(String),

    #[error(
        "cannot load signing key {}: {source}; pass an OpenSSH ed25519 private key (ssh-keygen -t ed25519) or its .pub with the key in ssh-agent",
        path.display()
    )]
    KeyRead {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },

    #[error(
        "signing key {} is passphrase-protected and not in ssh-agent: run `ssh-add {}` (spine never asks for a passphrase)",
        path.display(), path.display()
    )]
    KeyEncrypted { path: PathBuf },

    #[error("cannot decrypt signing key {} with the passphrase given: {source}", path.display())]
    KeyDecrypt {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },

    #[error(
        "signing key {what} is {algorithm}: receipts are signed with ed25519 keys only; create one with `ssh-keygen -t ed25519`"
    )]
    UnsupportedKey { what: String, algorithm: String },

    #[error("ssh-agent at {}: {message}", socket.display())]
    Agent { socket: PathBuf, message: String },

    #[error(
        "ssh-agent at {} does not hold the key {fingerprint}: load it with `ssh-add`",
        socket.display()
    )]
    AgentKeyMissing {
        socket: PathBuf,
        fingerprint: String,
    },

    #[error("cannot sign the receipt: {0}")]
    Sign(#[source] ssh_key::Error),

    #[error("cannot serialise the receipt: {0}")]
    Serialize(#[from] serde_json::Error),

    #[error(
        "no receipt matches {0:?} in {1}: give a sequence number (e.g. 3), a run id or a file name; `spine receipts list` shows them"
    )]
    NotFound(String, String),

    #[error("{query:?} matches several receipts ({}): give the full run id or the sequence number", matches.join(", "))]
    Ambiguous { query: String, matches: Vec<String> },

    #[error("{}: {message}", path.display())]
    BadReceipt { path: PathBuf, message: String },
}

/// Shown as `spine: MESSAGE` (each message names the file and the fix).
impl crate::error::StageError for ReceiptError {}

impl ReceiptError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ReceiptError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
