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

/// Run `body` as root on the host, inside `scripts/apply/root.sh`.
/// Returns the script's combined output and exit status.
pub async fn run_root<C: Conn>(
    conn: &C,
    login_user: &str,
    run: RootRun<'_>,
    body: &Script,
) -> Result<(String, i32), String> {
    let script = root_script(run, body)?;
    let ran = conn.run(script.as_str(), login_user != "root").await?;
    let text = format!("{}{}", ran.stdout, ran.stderr);
    if ran.code == 1 && text.contains("sudo:") && text.contains("password") {
        return Err(format!(
            "apply needs root: {login_user} has no passwordless sudo on this host ({})",
            text.trim()
        ));
    }
    Ok((text, ran.code))
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

pub enum Lock {
    Taken,
    Held(Option<LockInfo>),
}

/// Take the lock, writing `info_json` into it.
pub fn lock_script(info_json: &str) -> Result<Script, ScriptError> {
    shell::render(
        "apply/lock.sh",
        minijinja::context! { state => STATE, lock => LOCK, info => info_json },
    )
}

/// Release the lock if `lock_id` holds it.
pub fn unlock_script(lock_id: &str) -> Result<Script, ScriptError> {
    let needle = format!("\"lock_id\":\"{lock_id}\"");
    shell::render(
        "apply/unlock.sh",
        minijinja::context! { lock => LOCK, needle },
    )
}

/// Print the lock's info, if any.
pub fn read_lock_script() -> Result<Script, ScriptError> {
    shell::render("apply/read-lock.sh", minijinja::context! { lock => LOCK })
}

/// Take the host lock (an atomic `mkdir`).
pub async fn lock<C: Conn>(conn: &C, user: &str, info: &LockInfo) -> Result<Lock, String> {
    let json = serde_json::to_string(info).map_err(|e| e.to_string())?;
    let body = lock_script(&json)?;
    let (out, code) = run_root(conn, user, RootRun::default(), &body).await?;
    if code != 0 {
        return Err(format!("could not take the lock: {}", out.trim()));
    }
    if out.contains("SPINE-LOCK-TAKEN") {
        return Ok(Lock::Taken);
    }
    let held = out
        .lines()
        .find_map(|l| serde_json::from_str::<LockInfo>(l).ok());
    Ok(Lock::Held(held))
}

/// Release the lock if it is still ours.
pub async fn unlock<C: Conn>(conn: &C, user: &str, lock_id: &str) -> Result<bool, String> {
    let body = unlock_script(lock_id)?;
    let (out, _) = run_root(conn, user, RootRun::default(), &body).await?;
    Ok(out.contains("SPINE-UNLOCKED"))
}

/// Read the current lock, if any.
pub async fn read_lock<C: Conn>(conn: &C, user: &str) -> Result<Option<LockInfo>, String> {
    let body = read_lock_script()?;
    let (out, _) = run_root(conn, user, RootRun::default(), &body).await?;
    Ok(out
        .lines()
        .find_map(|l| serde_json::from_str::<LockInfo>(l).ok()))
}
