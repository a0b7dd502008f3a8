//! Who signs a receipt and with what: an ed25519 key file, a key held by
//! ssh-agent, or nobody (an unsigned receipt, still chained).

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::NAMESPACE;
use super::agent::Agent;
use super::error::ReceiptError;

/// Environment variable naming the signing key when `--signing-key` is not given.
pub const ENV_SIGNING_KEY: &str = "SPINE_SIGNING_KEY";
/// Environment variable overriding the operator identity (default `user@host`).
pub const ENV_OPERATOR: &str = "SPINE_OPERATOR";

/// Signs receipts as one operator identity.
///
/// The identity is recorded in each receipt and must be the principal of the
/// key's line in `receipts/allowed_signers`.
pub struct Signer {
    identity: String,
    backend: Backend,
    note: Option<String>,
}

enum Backend {
    Unsigned,
    Key(Box<PrivateKey>),
    Agent { socket: PathBuf, key: PublicKey },
}

impl Signer {
    /// Write receipts without a signature (reported as "unsigned" by verify).
    pub fn unsigned(identity: impl Into<String>) -> Signer {
        Signer {
            identity: identity.into(),
            backend: Backend::Unsigned,
            note: None,
        }
    }

    /// Sign with an OpenSSH ed25519 private key file. A passphrase-protected key
    /// needs `passphrase`; without one, see [`Signer::from_env`] (ssh-agent).
    pub fn from_key_file(
        path: &Path,
        passphrase: Option<&str>,
        identity: impl Into<String>,
    ) -> Result<Signer, ReceiptError> {
        let key = read_private_key(path)?;
        let key = if key.is_encrypted() {
            let Some(pass) = passphrase else {
                return Err(ReceiptError::KeyEncrypted {
                    path: path.to_owned(),
                });
            };
            key.decrypt(pass)
                .map_err(|source| ReceiptError::KeyDecrypt {
                    path: path.to_owned(),
                    source,
                })?
        } else {
            key
        };
        check_algorithm(&path.display().to_string(), key.algorithm())?;
        Ok(Signer {
            identity: identity.into(),
            backend: Backend::Key(Box::new(key)),
            note: None,
        })
    }

    /// Sign through the ssh-agent at `socket`, with `key` if given (it must be
    /// loaded) or else the agent's first ed25519 key.
    pub fn from_agent(
        socket: &Path,
        key: Option<&PublicKey>,
        identity: impl Into<String>,
    ) -> Result<Signer, ReceiptError> {
        let agent_err = |message: String| ReceiptError::Agent {
            socket: socket.to_owned(),
            message,
        };
        let keys = Agent::connect(socket)
            .and_then(|mut a| a.identities())
            .map_err(agent_err)?;
        let chosen = match key {
            Some(want) => {
                check_algorithm(&fingerprint(want), want.algorithm())?;
                keys.into_iter()
                    .find(|k| k.key_data() == want.key_data())
                    .ok_or_else(|| ReceiptError::AgentKeyMissing {
                        socket: socket.to_owned(),
                        fingerprint: fingerprint(want),
                    })?
            }
            None => keys
                .into_iter()
                .find(|k| k.algorithm() == Algorithm::Ed25519)
                .ok_or_else(|| {
                    agent_err("holds no ed25519 key: `ssh-add` one, or pass --signing-key".into())
                })?,
        };
        Ok(Signer {
            identity: identity.into(),
            backend: Backend::Agent {
                socket: socket.to_owned(),
                key: chosen,
            },
            note: None,
        })
    }

    /// The signer a command should use, in this order:
    ///
    /// 1. `signing_key` (`--signing-key PATH`), else `$SPINE_SIGNING_KEY`:
    ///    a private key file, or a `.pub` file whose key is in ssh-agent. A
    ///    passphrase-protected private key is used through ssh-agent if loaded
    ///    there. Any problem with an explicitly named key is an error.
    /// 2. else `$SSH_AUTH_SOCK`: the agent's first ed25519 key. If the agent
    ///    cannot be used the run is unsigned and [`Signer::note`] says why.
    /// 3. else unsigned.
    ///
    /// The identity is `$SPINE_OPERATOR`, else [`default_identity`].
    pub fn from_env(signing_key: Option<&Path>) -> Result<Signer, ReceiptError> {
        let identity = std::env::var(ENV_OPERATOR)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(default_identity);
        let env_key = std::env::var_os(ENV_SIGNING_KEY)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let agent = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);

        if let Some(path) = signing_key.map(Path::to_path_buf).or(env_key) {
            return Signer::from_named_key(&path, agent.as_deref(), identity);
        }
        match agent {
            Some(socket) => match Signer::from_agent(&socket, None, identity.clone()) {
                Ok(s) => Ok(s),
                Err(e) => {
                    let mut s = Signer::unsigned(identity);
                    s.note = Some(format!("receipt left unsigned: {e}"));
                    Ok(s)
                }
            },
            None => {
                let mut s = Signer::unsigned(identity);
                s.note = Some(
                    "receipt left unsigned: no --signing-key, SPINE_SIGNING_KEY or SSH_AUTH_SOCK"
                        .into(),
                );
                Ok(s)
            }
        }
    }

    fn from_named_key(
        path: &Path,
        agent: Option<&Path>,
        identity: String,
    ) -> Result<Signer, ReceiptError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReceiptError::io("read signing key", path, e))?;
        if let Ok(public) = PublicKey::from_openssh(text.trim()) {
            let Some(socket) = agent else {
                return Err(ReceiptError::Agent {
                    socket: PathBuf::from("$SSH_AUTH_SOCK"),
                    message: format!(
                        "not set, but {} is a public key: its private key must be in ssh-agent",
                        path.display()
                    ),
                });
            };
            return Signer::from_agent(socket, Some(&public), identity);
        }
        let key = read_private_key(path)?;
        if key.is_encrypted() {
            // Like ssh-keygen -Y sign: use the agent's copy of the key if there is one.
            let Some(socket) = agent else {
                return Err(ReceiptError::KeyEncrypted {
                    path: path.to_owned(),
                });
            };
            return Signer::from_agent(socket, Some(key.public_key()), identity).map_err(
                |e| match e {
                    ReceiptError::AgentKeyMissing { .. } => ReceiptError::KeyEncrypted {
                        path: path.to_owned(),
                    },
                    other => other,
                },
            );
        }
        Signer::from_key_file(path, None, identity)
    }

    /// The identity recorded as `operator.identity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Why [`Signer::from_env`] fell back to unsigned, if it did.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The public key, `None` when unsigned.
    pub fn public_key(&self) -> Option<&PublicKey> {
        match &self.backend {
            Backend::Unsigned => None,
            Backend::Key(k) => Some(k.public_key()),
            Backend::Agent { key, .. } => Some(key),
        }
    }

    /// `SHA256:…` fingerprint of the key, `None` when unsigned.
    pub fn fingerprint(&self) -> Option<String> {
        self.public_key().map(fingerprint)
    }

    /// Whether receipts will carry a signature.
    pub fn is_signing(&self) -> bool {
        !matches!(self.backend, Backend::Unsigned)
    }

    /// The SSHSIG signature (PEM, `\n` line endings) of exactly `bytes` under
    /// [`NAMESPACE`]; `None` when unsigned.
    pub fn sign(&self, bytes: &[u8]) -> Result<Option<String>, ReceiptError> {
        self.sign_in(NAMESPACE, bytes)
    }

    /// The same under another namespace (saved plans: `spine-plan@spine`), so
    /// a signature made for one use never passes for another.
    pub fn sign_in(&self, namespace: &str, bytes: &[u8]) -> Result<Option<String>, ReceiptError> {
        let sig = match &self.backend {
            Backend::Unsigned => return Ok(None),
            Backend::Key(key) => key
                .sign(namespace, HashAlg::Sha512, bytes)
                .map_err(ReceiptError::Sign)?,
            Backend::Agent { socket, key } => {
                let data = SshSig::signed_data(namespace, HashAlg::Sha512, bytes)
                    .map_err(ReceiptError::Sign)?;
                let agent_err = |message: String| ReceiptError::Agent {
                    socket: socket.clone(),
                    message,
                };
                let signature = Agent::connect(socket)
                    .and_then(|mut a| a.sign(key, &data))
                    .map_err(agent_err)?;
                let sig = SshSig::new(
                    key.key_data().clone(),
                    namespace,
                    HashAlg::Sha512,
                    signature,
                )
                .map_err(ReceiptError::Sign)?;
                // Never write a signature that does not verify (e.g. a confused agent).
                key.verify(namespace, bytes, &sig).map_err(|e| {
                    agent_err(format!("returned a signature that does not verify: {e}"))
                })?;
                sig
            }
        };
        sig.to_pem(LineEnding::LF)
            .map(Some)
            .map_err(ReceiptError::Sign)
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let kind = match &self.backend {
            Backend::Unsigned => "unsigned",
            Backend::Key(_) => "key file",
            Backend::Agent { .. } => "ssh-agent",
        };
        f.debug_struct("Signer")
            .field("identity", &self.identity)
            .field("backend", &kind)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// `$USER@hostname` (`$LOGNAME`, then `unknown` for the user; `localhost` if
/// the host name cannot be read).
pub fn default_identity() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned());
    // Identities are patterns in allowed_signers: keep them free of blanks.
    format!("{}@{}", user.trim(), host).replace(char::is_whitespace, "_")
}

pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn read_private_key(path: &Path) -> Result<PrivateKey, ReceiptError> {
    let text = std::fs::read(path).map_err(|e| ReceiptError::io("read signing key", path, e))?;
    PrivateKey::from_openssh(text).map_err(|source| match source {
        // This build only knows ed25519 (ssh-key without ecdsa/rsa features).
        ssh_key::Error::AlgorithmUnknown => ReceiptError::UnsupportedKey {
            what: path.display().to_string(),
            algorithm: "not ed25519".to_owned(),
        },
        source => ReceiptError::KeyRead {
            path: path.to_owned(),
            source,
        },
    })
}

fn check_algorithm(what: &str, algorithm: Algorithm) -> Result<(), ReceiptError> {
    if algorithm == Algorithm::Ed25519 {
        Ok(())
    } else {
        Err(ReceiptError::UnsupportedKey {
            what: what.to_owned(),
            algorithm: algorithm.to_string(),
        })
    }
}
