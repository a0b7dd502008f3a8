//! What apply runs on a host: root scripts (through `sudo -n` when spine logs
//! in as another user), the per-run backup folder, and the host lock.

use openssh::Session;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::gather::script::q;

/// spine's own folder on every host.
pub const STATE: &str = "/var/lib/spine";
pub const LOCK: &str = "/var/lib/spine/lock";

/// Helpers every root script starts with. `$BK` is the run's backup folder.
const PRELUDE: &str = r#"set -eu
umask 077
sp_backup() {
  mkdir -p "$BK$(dirname "$1")"
  if [ -e "$1" ]; then cp -a "$1" "$BK$1"; else : > "$BK$1.absent"; fi
}
sp_put() {
  d=$(dirname "$1"); mkdir -p "$d"
  t=$(mktemp "$d/.spine.XXXXXX") || { echo "cannot create a file in $d"; return 1; }
  if ! printf '%s' "$4" | base64 -d > "$t"; then rm -f "$t"; echo "cannot write $1: no space left or read-only"; return 1; fi
  chmod "$2" "$t"; chown "$3" "$t"
  sync "$t" 2>/dev/null || sync
  mv -f "$t" "$1"
  sync "$d" 2>/dev/null || true
}
"#;

/// The backup folder of one run on a host.
pub fn backup_dir(run_id: &str) -> String {
    format!("{STATE}/backups/{run_id}")
}

/// Run `body` as root on the host, with the prelude and `$BK` set.
/// Returns the script's combined output and exit status.
/// With no `run_id` (lock bookkeeping) no backup folder is made.
pub async fn run_root(
    session: &Session,
    login_user: &str,
    run_id: Option<&str>,
    body: &str,
) -> Result<(String, i32), String> {
    let script = match run_id {
        Some(id) => format!(
            "{PRELUDE}BK={}\nmkdir -p \"$BK\"\n{body}",
            q(&backup_dir(id))
        ),
        None => format!("{PRELUDE}BK=/nonexistent\n{body}"),
    };
    let mut cmd = if login_user == "root" {
        let mut c = session.command("sh");
        c.arg("-s");
        c
    } else {
        let mut c = session.command("sudo");
        c.args(["-n", "sh", "-s"]);
        c
    };
    let mut child = cmd
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await
        .map_err(|e| crate::gather::ssh::error_text(&e))?;
    if let Some(mut stdin) = child.stdin().take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stdin.shutdown().await.map_err(|e| e.to_string())?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| crate::gather::ssh::error_text(&e))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    if code == 1 && text.contains("sudo:") && text.contains("password") {
        return Err(format!(
            "apply needs root: {login_user} has no passwordless sudo on this host ({})",
            text.trim()
        ));
    }
    Ok((text, code))
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

/// Take the host lock (an atomic `mkdir`).
pub async fn lock(session: &Session, user: &str, info: &LockInfo) -> Result<Lock, String> {
    let json = serde_json::to_string(info).map_err(|e| e.to_string())?;
    let body = format!(
        "mkdir -p {STATE}\nif mkdir {LOCK} 2>/dev/null; then printf '%s\\n' {} > {LOCK}/info; echo SPINE-LOCK-TAKEN; else echo SPINE-LOCK-HELD; cat {LOCK}/info 2>/dev/null || true; fi\n",
        q(&json)
    );
    let (out, code) = run_root(session, user, None, &body).await?;
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
pub async fn unlock(session: &Session, user: &str, lock_id: &str) -> Result<bool, String> {
    let body = format!(
        "if grep -q {} {LOCK}/info 2>/dev/null; then rm -rf {LOCK}; echo SPINE-UNLOCKED; fi\n",
        q(&format!("\"lock_id\":\"{lock_id}\""))
    );
    let (out, _) = run_root(session, user, None, &body).await?;
    Ok(out.contains("SPINE-UNLOCKED"))
}

/// Read the current lock, if any.
pub async fn read_lock(session: &Session, user: &str) -> Result<Option<LockInfo>, String> {
    let (out, _) = run_root(
        session,
        user,
        None,
        &format!("cat {LOCK}/info 2>/dev/null || true\n"),
    )
    .await?;
    Ok(out
        .lines()
        .find_map(|l| serde_json::from_str::<LockInfo>(l).ok()))
}
