//! The receipts directory: append (locked, atomic), list, show.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::FORMAT_VERSION;
use super::audit::schema_errors;
use super::canonical::{self, sha256_hex};
use super::error::ReceiptError;
use super::model::{Operator, Receipt, ReceiptBody, Tool};
use super::sign::Signer;

/// Name of the lock file held while appending.
const LOCK_FILE: &str = ".lock";
/// Prefix of temporary files; verify reports leftovers.
pub(crate) const TMP_PREFIX: &str = ".tmp-";
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A receipts directory, e.g. `<ops repo>/receipts`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// What [`Store::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The receipt file.
    pub path: PathBuf,
    /// Its signature file, `None` if unsigned.
    pub signature: Option<PathBuf>,
    pub sequence: u64,
    pub run_id: String,
    /// SHA-256 (hex) of the bytes written: the next receipt's `previous`.
    pub sha256: String,
}

/// One receipt file, as [`Store::list`] sees it.
#[derive(Debug, Clone)]
pub struct ListEntry {
    /// Sequence number from the file name.
    pub sequence: u64,
    /// Run id from the file name.
    pub run_id: String,
    pub path: PathBuf,
    /// The `.sig` file, if present (not checked: see [`Store::check`]).
    pub signature: Option<PathBuf>,
    /// The parsed receipt, or why it could not be parsed.
    pub receipt: Result<Receipt, String>,
}

/// One receipt, as [`Store::show`] returns it.
#[derive(Debug, Clone)]
pub struct ShownReceipt {
    pub path: PathBuf,
    pub signature: Option<PathBuf>,
    /// The exact stored bytes.
    pub bytes: Vec<u8>,
    pub receipt: Receipt,
}

/// A `NNNNNN-<run_id>.json` name, split.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptName {
    pub name: String,
    pub sequence: u64,
    pub run_id: String,
}

/// The directory's entries, sorted by name.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub receipts: Vec<ReceiptName>,
    pub signatures: Vec<String>,
    pub others: Vec<String>,
}

impl Store {
    /// A store over `dir`. The directory need not exist yet (the first append
    /// creates it), but if it exists it must be a directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, ReceiptError> {
        let dir = dir.into();
        match fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => Err(ReceiptError::NotADirectory(dir)),
            Ok(_) => Ok(Store { dir }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store { dir }),
            Err(e) => Err(ReceiptError::io("open receipts directory", dir, e)),
        }
    }

    /// The receipts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write the next receipt for `body`, signed by `signer`, and return where.
    ///
    /// Holds an exclusive lock on `.lock` while it reads the tail and writes,
    /// so concurrent appends (threads or processes) form one linear chain. The
    /// signature is made before anything is written; each file is written to a
    /// temporary file, fsynced and renamed into place (signature first, receipt
    /// last), then the directory is fsynced. On error nothing new is left
    /// behind but, at worst, a leftover `.tmp-*` file that verify reports.
    pub fn append(&self, body: ReceiptBody, signer: &Signer) -> Result<Written, ReceiptError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| ReceiptError::io("create receipts directory", &self.dir, e))?;
        let identity = signer.identity();
        if identity.is_empty()
            || identity.contains(|c: char| c.is_whitespace() || ",\"*?!".contains(c))
        {
            return Err(ReceiptError::InvalidIdentity(identity.to_owned()));
        }
        let _lock = self.lock()?;

        let (sequence, previous) = match self.tail()? {
            Some((seq, sha)) => match seq.checked_add(1) {
                Some(next) => (next, Some(sha)),
                None => {
                    return Err(ReceiptError::BadReceipt {
                        path: self.dir.clone(),
                        message: format!(
                            "the last receipt claims sequence {seq}, which cannot be followed: run `spine receipts check`"
                        ),
                    });
                }
            },
            None => (1, None),
        };
        let run_id = new_run_id(body.started_at);
        let receipt = Receipt {
            format_version: FORMAT_VERSION,
            run_id: run_id.clone(),
            sequence,
            previous,
            command: body.command,
            argv: body.argv,
            tool: Tool::current(),
            operator: Operator {
                identity: signer.identity().to_owned(),
                key_fingerprint: signer.fingerprint(),
            },
            started_at: body.started_at,
            finished_at: Timestamp::now(),
            registry: body.registry,
            hosts: body.hosts,
            plan_hash: body.plan_hash,
            actions: body.actions,
            drift: body.drift,
            apply: body.apply,
            health: body.health,
            loop_id: body.loop_id,
            gap_id: body.gap_id,
            exit_code: body.exit_code,
            status: body.status,
        };
        let value = serde_json::to_value(&receipt)?;
        let problems = schema_errors(&value);
        if !problems.is_empty() {
            return Err(ReceiptError::InvalidBody(problems.join("; ")));
        }
        let bytes = canonical::value_to_bytes(&value);
        let pem = signer.sign(&bytes)?;

        let name = format!("{sequence:06}-{run_id}.json");
        let path = self.dir.join(&name);
        let sig_path = self.dir.join(format!("{name}.sig"));
        if let Some(pem) = &pem {
            write_atomic(&self.dir, &sig_path, pem.as_bytes())?;
        }
        if let Err(e) = write_atomic(&self.dir, &path, &bytes) {
            if pem.is_some() {
                let _ = fs::remove_file(&sig_path);
            }
            return Err(e);
        }
        sync_dir(&self.dir)?;
        Ok(Written {
            path,
            signature: pem.map(|_| sig_path),
            sequence,
            run_id,
            sha256: sha256_hex(&bytes),
        })
    }

    /// Every receipt file in sequence order (by file name), parsed if possible.
    /// An absent directory lists as empty.
    pub fn list(&self) -> Result<Vec<ListEntry>, ReceiptError> {
        let scan = self.scan()?;
        let mut out = Vec::with_capacity(scan.receipts.len());
        for r in scan.receipts {
            let path = self.dir.join(&r.name);
            let signature = self.signature_of(&scan.signatures, &r.name);
            let receipt = fs::read(&path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            out.push(ListEntry {
                sequence: r.sequence,
                run_id: r.run_id,
                path,
                signature,
                receipt,
            });
        }
        Ok(out)
    }

    /// The receipt named by `query`: a sequence number (`3` or `000003`), a run
    /// id or a unique prefix of one, or a file name.
    pub fn show(&self, query: &str) -> Result<ShownReceipt, ReceiptError> {
        let scan = self.scan()?;
        let q = query.trim();
        let q_name = Path::new(q)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let matches: Vec<&ReceiptName> = if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) {
            let seq = q.parse::<u64>().ok();
            scan.receipts
                .iter()
                .filter(|r| Some(r.sequence) == seq)
                .collect()
        } else if let Some(exact) = scan
            .receipts
            .iter()
            .find(|r| r.name == q_name || r.run_id == q)
        {
            vec![exact]
        } else if q.is_empty() {
            Vec::new()
        } else {
            scan.receipts
                .iter()
                .filter(|r| r.run_id.starts_with(q))
                .collect()
        };
        let r = match matches.as_slice() {
            [one] => *one,
            [] => {
                return Err(ReceiptError::NotFound(
                    query.to_owned(),
                    self.dir.display().to_string(),
                ));
            }
            many => {
                return Err(ReceiptError::Ambiguous {
                    query: query.to_owned(),
                    matches: many.iter().map(|r| r.name.clone()).collect(),
                });
            }
        };
        let path = self.dir.join(&r.name);
        let bytes = fs::read(&path).map_err(|e| ReceiptError::io("read receipt", &path, e))?;
        let receipt = serde_json::from_slice(&bytes).map_err(|e| ReceiptError::BadReceipt {
            path: path.clone(),
            message: format!("not a valid receipt ({e}); `spine receipts check` says more"),
        })?;
        Ok(ShownReceipt {
            signature: self.signature_of(&scan.signatures, &r.name),
            path,
            bytes,
            receipt,
        })
    }

    fn signature_of(&self, signatures: &[String], name: &str) -> Option<PathBuf> {
        let sig = format!("{name}.sig");
        signatures.contains(&sig).then(|| self.dir.join(sig))
    }

    /// Sequence number and SHA-256 of the last receipt, by file name.
    fn tail(&self) -> Result<Option<(u64, String)>, ReceiptError> {
        let scan = self.scan()?;
        let Some(last) = scan.receipts.iter().map(|r| r.sequence).max() else {
            return Ok(None);
        };
        let tails: Vec<&ReceiptName> = scan
            .receipts
            .iter()
            .filter(|r| r.sequence == last)
            .collect();
        if let [a, b, ..] = tails.as_slice() {
            return Err(ReceiptError::Forked {
                seq: last,
                first: self.dir.join(&a.name),
                second: self.dir.join(&b.name),
            });
        }
        let path = self.dir.join(&tails[0].name);
        let bytes = fs::read(&path).map_err(|e| ReceiptError::io("read last receipt", &path, e))?;
        Ok(Some((last, sha256_hex(&bytes))))
    }

    fn lock(&self) -> Result<File, ReceiptError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ReceiptError::io("open lock file", &path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) if start.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(ReceiptError::LockTimeout {
                        path,
                        secs: LOCK_TIMEOUT.as_secs(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(ReceiptError::io("lock", path, e)),
            }
        }
    }

    /// A shared hold on `.lock`, so verify never sees an append half done
    /// (signature in place, receipt not yet). Best effort: `None` if the lock
    /// file cannot be opened (e.g. a read-only copy) or stays locked.
    pub(crate) fn read_lock(&self) -> Option<File> {
        let file = File::open(self.dir.join(LOCK_FILE)).ok()?;
        let start = Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Some(file),
                Err(TryLockError::WouldBlock) if start.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return None,
            }
        }
    }

    pub(crate) fn scan(&self) -> Result<Scan, ReceiptError> {
        let mut scan = Scan::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(ReceiptError::io("list receipts directory", &self.dir, e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| ReceiptError::io("list receipts directory", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(r) = parse_name(&name) {
                scan.receipts.push(r);
            } else if name.ends_with(".json.sig") {
                scan.signatures.push(name);
            } else {
                scan.others.push(name);
            }
        }
        scan.receipts
            .sort_by(|a, b| (a.sequence, &a.name).cmp(&(b.sequence, &b.name)));
        scan.signatures.sort();
        scan.others.sort();
        Ok(scan)
    }
}

/// Split `NNNNNN-<run_id>.json` (at least six digits).
pub(crate) fn parse_name(name: &str) -> Option<ReceiptName> {
    let stem = name.strip_suffix(".json")?;
    let (digits, run_id) = stem.split_once('-')?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) || run_id.is_empty() {
        return None;
    }
    Some(ReceiptName {
        name: name.to_owned(),
        sequence: digits.parse().ok()?,
        run_id: run_id.to_owned(),
    })
}

/// `YYYYMMDDTHHMMSS.mmmZ-` then 12 random hex digits.
fn new_run_id(started: Timestamp) -> String {
    let mut random = [0u8; 6];
    if getrandom::fill(&mut random).is_err() {
        // No OS randomness: fall back to the clock and pid, still unique enough
        // for a name that the sequence number already orders.
        let nanos =
            (Timestamp::now().as_nanosecond() as u64) ^ (u64::from(std::process::id()) << 40);
        random.copy_from_slice(&nanos.to_be_bytes()[2..]);
    }
    let t = super::model::rfc3339::format(started); // 2026-04-23T10:15:02.123Z
    let compact: String = t.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    format!("{compact}-{}", hex::encode(random))
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), ReceiptError> {
    let err = |action, e| ReceiptError::io(action, path, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| ReceiptError::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes).map_err(|e| err("write", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| err("set permissions of", e))?;
    }
    tmp.as_file().sync_all().map_err(|e| err("fsync", e))?;
    tmp.persist_noclobber(path)
        .map_err(|e| err("move into place", e.error))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), ReceiptError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ReceiptError::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let r = parse_name("000012-20260423T101502.123Z-0a1b2c3d4e5f.json").unwrap();
        assert_eq!(r.sequence, 12);
        assert_eq!(r.run_id, "20260423T101502.123Z-0a1b2c3d4e5f");
        assert!(parse_name("12-x.json").is_none());
        assert!(parse_name("000012-.json").is_none());
        assert!(parse_name("000012-x.json.sig").is_none());
        assert!(parse_name("1234567-x.json").is_some());
    }

    #[test]
    fn run_ids_sort_by_time() {
        let t: Timestamp = "2026-04-23T10:15:02.123Z".parse().unwrap();
        let id = new_run_id(t);
        assert!(id.starts_with("20260423T101502.123Z-"), "{id}");
        assert_eq!(id.len(), "20260423T101502.123Z-".len() + 12);
        assert_ne!(new_run_id(t), id);
    }
}
