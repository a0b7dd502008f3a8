//! What apply runs on a host: root scripts (through `sudo -n` when spine logs
//! in as another user), the per-run backup folder, and the host lock.

use serde::{Deserialize, Serialize};

use crate::gather::transport::Conn;
use crate::shell::{self, Script, ScriptError};

/// spine's own folder on every host.
pub const STATE: &str = "/var/lib/spine";
pub const LOCK: &str = "/var/lib/spine/lock";

/// The backup folder of one run on a host.
pub fn backup_dir(run_id: &str) -> String {
    format!("{STATE}/backups/{run_id}")
}

/// How a root script runs: with this run's backup folder (`run_id`) or none
/// (lock bookkeeping), and the wait timeout compose is given.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootRun<'a> {
    pub run_id: Option<&'a str>,
    pub wait_timeout: Option<u64>,
}

/// The whole root script: `scripts/apply/root.sh` (helpers, `$BK`) around `body`.
pub fn root_script(run: RootRun, body: &Script) -> Result<Script, ScriptError> {
    shell::render(
        "apply/root.sh",
        minijinja::context! {
            backup => run.run_id.map(backup_dir),
            wait_timeout => run.wait_timeout,
            body,
        },
    )
}

/// Why a root script could not run on a host (its own non-zero exit is an
/// answer, not this error: [`run_root`] returns it with the output).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The script did not render (a bug in spine, named).
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The connection failed while the script ran.
    #[error("{0}")]
    Transport(String),
    /// The login user cannot become root without a password.
    #[error("apply needs root: {user} has no passwordless sudo on this host ({said})")]
    NoSudo { user: String, said: String },
    /// The script ran and said no.
    #[error("{what} (exit {code}): {said}")]
    Refused {
        what: &'static str,
        code: i32,
        said: String,
    },
}

impl crate::error::StageError for RemoteError {}

/// Run `body` as root on the host, inside `scripts/apply/root.sh`.
/// Returns the script's combined output and exit status.
pub async fn run_root<C: Conn>(
    conn: &C,
    login_user: &str,
    run: RootRun<'_>,
    body: &Script,
) -> Result<(String, i32), RemoteError> {
    let script = root_script(run, body)?;
    let ran = conn
        .run(script.as_str(), login_user != "root")
        .await
        .map_err(RemoteError::Transport)?;
    let text = format!("{}{}", ran.stdout, ran.stderr);
    if ran.code == 1 && text.contains("sudo:") && text.contains("password") {
        return Err(RemoteError::NoSudo {
            user: login_user.to_string(),
            said: text.trim().to_string(),
        });
    }
    Ok((text, ran.code))
}

/// Keep the backup folders of the last `keep` runs (this one's always).
pub fn prune_script(run_id: &str, keep: u32) -> Result<Script, ScriptError> {
    shell::render(
        "apply/prune-backups.sh",
        minijinja::context! { backups => format!("{STATE}/backups"), current => run_id, keep },
    )
}

/// Remove the host's backup folders older than the last `keep` runs.
pub async fn prune_backups<C: Conn>(
    conn: &C,
    user: &str,
    run_id: &str,
    keep: u32,
) -> Result<(), RemoteError> {
    let (out, code) =
        run_root(conn, user, RootRun::default(), &prune_script(run_id, keep)?).await?;
    if code != 0 {
        return Err(RemoteError::Refused {
            what: "pruning the backups failed",
            code,
            said: out.trim().to_string(),
        });
    }
    Ok(())
}

/// Who holds a host, written into the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub lock_id: String,
    pub run_id: String,
    pub operator: String,
    pub started: String,
    /// RFC 3339; after it the lock may be broken with `spine unlock`.
    pub expires: String,
    pub pid: u32,
}

/// Who holds a host's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A lock with its info.
    Info(LockInfo),
    /// A lock without (readable) info: left by an older spine that died
    /// between making the lock and writing its info. Its age in seconds.
    NoInfo { age_secs: u64 },
}

pub enum Lock {
    Taken,
    /// Held; `None` when it was released between the two looks.
    Held(Option<Holder>),
}

/// Take the lock with `info_json` in it (written aside, then linked into place).
pub fn lock_script(info_json: &str) -> Result<Script, ScriptError> {
    shell::render(
        "apply/lock.sh",
        minijinja::context! { state => STATE, lock => LOCK, info => info_json },
    )
}

/// The lock's info as the lock file holds it (one JSON line).
fn info_json(script: &str, info: &LockInfo) -> Result<String, ScriptError> {
    serde_json::to_string(info).map_err(|e| ScriptError {
        name: script.into(),
        message: e.to_string(),
    })
}

fn needle(lock_id: &str) -> String {
    format!("\"lock_id\":\"{lock_id}\"")
}

/// Release the lock if `lock_id` holds it; `None`: if it is a lock without info.
pub fn unlock_script(lock_id: Option<&str>) -> Result<Script, ScriptError> {
    shell::render(
        "apply/unlock.sh",
        minijinja::context! { lock => LOCK, needle => lock_id.map(needle) },
    )
}

/// Replace the lock's info with `info` if `info.lock_id` still holds it.
pub fn renew_script(info: &LockInfo) -> Result<Script, ScriptError> {
    let json = info_json("apply/renew-lock.sh", info)?;
    shell::render(
        "apply/renew-lock.sh",
        minijinja::context! { state => STATE, lock => LOCK, needle => needle(&info.lock_id), info => json },
    )
}

/// Print the lock's age and info, if there is a lock.
pub fn read_lock_script() -> Result<Script, ScriptError> {
    shell::render("apply/read-lock.sh", minijinja::context! { lock => LOCK })
}

/// What `scripts/apply/read-lock.sh` printed: no lock, or who holds it.
pub fn parse_holder(out: &str) -> Option<Holder> {
    let age = out
        .lines()
        .find_map(|l| l.strip_prefix("SPINE-LOCK-AGE "))?;
    if let Some(info) = out
        .lines()
        .find_map(|l| serde_json::from_str::<LockInfo>(l).ok())
    {
        return Some(Holder::Info(info));
    }
    let age_secs = age.trim().parse::<i64>().unwrap_or(0).max(0) as u64;
    Some(Holder::NoInfo { age_secs })
}

/// Take the host lock (an atomic `ln`); if it is held, who holds it.
pub async fn lock<C: Conn>(conn: &C, user: &str, info: &LockInfo) -> Result<Lock, RemoteError> {
    let body = lock_script(&info_json("apply/lock.sh", info)?)?;
    let (out, code) = run_root(conn, user, RootRun::default(), &body).await?;
    if code != 0 || !out.contains("SPINE-LOCK-") {
        return Err(RemoteError::Refused {
            what: "could not take the lock",
            code,
            said: out.trim().to_string(),
        });
    }
    if out.contains("SPINE-LOCK-TAKEN") {
        return Ok(Lock::Taken);
    }
    Ok(Lock::Held(read_lock(conn, user).await?))
}

/// Release the lock if it is still `lock_id`'s (`None`: if it has no info).
pub async fn unlock<C: Conn>(
    conn: &C,
    user: &str,
    lock_id: Option<&str>,
) -> Result<bool, RemoteError> {
    let body = unlock_script(lock_id)?;
    let (out, _) = run_root(conn, user, RootRun::default(), &body).await?;
    Ok(out.contains("SPINE-UNLOCKED"))
}

/// Push the lock's expiry on while this run holds it; false if it is no
/// longer ours.
pub async fn renew<C: Conn>(conn: &C, user: &str, info: &LockInfo) -> Result<bool, RemoteError> {
    let body = renew_script(info)?;
    let (out, _) = run_root(conn, user, RootRun::default(), &body).await?;
    Ok(out.contains("SPINE-LOCK-RENEWED"))
}

/// Read the current lock, if any.
pub async fn read_lock<C: Conn>(conn: &C, user: &str) -> Result<Option<Holder>, RemoteError> {
    let body = read_lock_script()?;
    let (out, _) = run_root(conn, user, RootRun::default(), &body).await?;
    Ok(parse_holder(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a lock script under `sh` as apply would (`set -eu`, umask 077)
    /// with spine's folder moved to `dir`; `pre` runs first.
    fn run(dir: &std::path::Path, s: &Script, pre: &str) -> String {
        let body = s.as_str().replace(STATE, &dir.display().to_string());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -eu\numask 077\n{pre}\n{body}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn info(id: &str) -> LockInfo {
        LockInfo {
            lock_id: id.into(),
            run_id: "R".into(),
            operator: "o".into(),
            started: "s".into(),
            expires: "2001-01-01T00:00:00Z".into(),
            pid: 1,
        }
    }

    fn json(i: &LockInfo) -> String {
        serde_json::to_string(i).unwrap()
    }

    #[test]
    fn a_lock_never_exists_without_its_info() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("lock");
        // Writing the info fails (no byte may be written): no lock is left.
        let full = "ulimit -f 0; trap '' XFSZ";
        run(tmp.path(), &lock_script(&json(&info("A"))).unwrap(), full);
        assert!(!lock.exists(), "a lock without info was left behind");
        // Taken, with its info, mode 0600; a second run finds it held.
        let out = run(tmp.path(), &lock_script(&json(&info("A"))).unwrap(), "");
        assert!(out.contains("SPINE-LOCK-TAKEN"), "{out}");
        let out = run(tmp.path(), &lock_script(&json(&info("B"))).unwrap(), "");
        assert!(out.contains("SPINE-LOCK-HELD"), "{out}");
        let held = parse_holder(&run(tmp.path(), &read_lock_script().unwrap(), ""));
        assert_eq!(held, Some(Holder::Info(info("A"))));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Renewed only by its holder; released only by its holder.
        let mut later = info("A");
        later.expires = "2999-01-01T00:00:00Z".into();
        assert!(!run(tmp.path(), &renew_script(&info("B")).unwrap(), "").contains("RENEWED"));
        assert!(run(tmp.path(), &renew_script(&later).unwrap(), "").contains("RENEWED"));
        let held = parse_holder(&run(tmp.path(), &read_lock_script().unwrap(), ""));
        assert_eq!(held, Some(Holder::Info(later)));
        assert!(!run(tmp.path(), &unlock_script(None).unwrap(), "").contains("UNLOCKED"));
        assert!(!run(tmp.path(), &unlock_script(Some("B")).unwrap(), "").contains("UNLOCKED"));
        assert!(run(tmp.path(), &unlock_script(Some("A")).unwrap(), "").contains("UNLOCKED"));
        assert!(!lock.exists());
        assert_eq!(
            parse_holder(&run(tmp.path(), &read_lock_script().unwrap(), "")),
            None
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "no temporary file left"
        );
    }

    #[test]
    fn backups_of_the_last_runs_are_kept_and_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("backups");
        let names = |d: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        for r in ["r1", "r2", "r3", "r4", "r5", "r6", "r7"] {
            std::fs::create_dir_all(d.join(r)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = run(tmp.path(), &prune_script("r6", 3).unwrap(), "");
        assert!(out.contains("pruned r1"), "{out}");
        // This run's folder stays even when it sorts before newer ones.
        assert_eq!(names(&d), ["r5", "r6", "r7"]);
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Without a folder of this run, the last `keep` others stay.
        run(tmp.path(), &prune_script("r9", 2).unwrap(), "");
        assert_eq!(names(&d), ["r6", "r7"]);
    }

    #[test]
    fn an_old_style_lock_folder_without_info_is_seen_and_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("lock");
        std::fs::create_dir(&lock).unwrap();
        let out = run(tmp.path(), &lock_script(&json(&info("A"))).unwrap(), "");
        assert!(out.contains("SPINE-LOCK-HELD"), "{out}");
        assert!(lock.is_dir() && std::fs::read_dir(&lock).unwrap().count() == 0);
        let held = parse_holder(&run(tmp.path(), &read_lock_script().unwrap(), ""));
        assert!(
            matches!(held, Some(Holder::NoInfo { age_secs }) if age_secs < 60),
            "{held:?}"
        );
        assert!(!run(tmp.path(), &unlock_script(Some("A")).unwrap(), "").contains("UNLOCKED"));
        assert!(run(tmp.path(), &unlock_script(None).unwrap(), "").contains("UNLOCKED"));
        assert!(!lock.exists());
        // An old-style folder with its info is a lock with info.
        std::fs::create_dir(&lock).unwrap();
        std::fs::write(lock.join("info"), json(&info("A")) + "\n").unwrap();
        let held = parse_holder(&run(tmp.path(), &read_lock_script().unwrap(), ""));
        assert_eq!(held, Some(Holder::Info(info("A"))));
        assert!(!run(tmp.path(), &unlock_script(None).unwrap(), "").contains("UNLOCKED"));
        assert!(run(tmp.path(), &unlock_script(Some("A")).unwrap(), "").contains("UNLOCKED"));
        assert!(!lock.exists());
    }
}
