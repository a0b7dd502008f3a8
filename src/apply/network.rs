//! Network changes that never lock the operator out (REFERENCE.md section 5):
//! back up, stage and check, arm a rollback timer on the host that is detached
//! from the SSH session, apply, then confirm over a **fresh** connection to
//! the new address (no connection sharing) and disarm. If the confirmation
//! does not come in time, the host restores the old file and re-applies it by
//! itself; spine reconnects on the old address, reports the rollback and the
//! apply fails.

use std::time::{Duration, Instant};

use base64::Engine;
use openssh::Session;

use super::remote::{STATE, run_root};
use crate::gather::script::q;
use crate::gather::ssh::{self, Route, SshOptions};
use crate::kinds::Desired;

pub enum Outcome {
    /// Confirmed over a fresh connection on this route; the timer is disarmed.
    Confirmed(Route),
    /// The host restored the old configuration by itself.
    RolledBack(String),
    /// Refused before anything changed (the staged file did not validate).
    Refused(String),
    /// Neither confirmed nor seen rolled back: the operator must look.
    Lost(String),
}

fn rollback_script(d: &Desired, run_id: &str, secs: u64) -> String {
    let path = q(d.path.as_deref().unwrap_or_default());
    let bk = q(&format!("{}/backups/{run_id}", STATE));
    let armed = q(&format!("{STATE}/armed-{run_id}"));
    let done = q(&format!("{STATE}/rolledback-{run_id}"));
    format!(
        "sleep {secs}\n[ -e {armed} ] || exit 0\n\
         if [ -e {bk}{path} ]; then cp -a {bk}{path} {path}; elif [ -e {bk}{path}.absent ]; then rm -f {path}; fi\n\
         netplan apply\nrm -f {armed}\ndate > {done}\n"
    )
}

/// Stage, check, arm and apply on the host (one root script).
fn arm_and_apply(change: &str, d: &Desired, run_id: &str, secs: u64) -> String {
    let path = q(d.path.as_deref().unwrap_or_default());
    let rb = format!("{STATE}/rollback-{run_id}.sh");
    let b64 = base64::engine::general_purpose::STANDARD.encode(rollback_script(d, run_id, secs));
    format!(
        "{change}\
         if ! out=$(netplan generate 2>&1); then\n\
           if [ -e \"$BK\"{path} ]; then cp -a \"$BK\"{path} {path}; else rm -f {path}; fi\n\
           echo \"netplan generate rejects the new file: $out\"; exit 4\n\
         fi\n\
         : > {armed}\n\
         printf '%s' {b64} | base64 -d > {rb}\n\
         setsid sh {rb} </dev/null >/dev/null 2>&1 &\n\
         setsid sh -c 'sleep 1; netplan apply' </dev/null >{log} 2>&1 &\n\
         echo SPINE-ARMED\n",
        armed = q(&format!("{STATE}/armed-{run_id}")),
        b64 = q(&b64),
        rb = q(&rb),
        log = q(&format!("{STATE}/netplan-apply-{run_id}.log")),
    )
}

/// Run the network change on `session` (consumed: the change may cut it).
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    session: Session,
    user: &str,
    run_id: &str,
    change: &str,
    d: &Desired,
    confirm: Route,
    old: &[Route],
    opts: &SshOptions,
    timeout: Duration,
) -> Outcome {
    let secs = timeout.as_secs().max(10);
    let started = Instant::now();
    match run_root(
        &session,
        user,
        Some(run_id),
        &arm_and_apply(change, d, run_id, secs),
    )
    .await
    {
        Ok((out, 0)) if out.contains("SPINE-ARMED") => {}
        Ok((out, 4)) => return Outcome::Refused(out.trim().to_string()),
        Ok((out, code)) => {
            return Outcome::Refused(format!("staging failed (exit {code}): {}", out.trim()));
        }
        Err(e) => return Outcome::Lost(format!("the change may or may not have been armed: {e}")),
    }
    let _ = session.close().await;

    // Confirm over fresh connections until shortly before the host's timer.
    let deadline = started + Duration::from_secs(secs.saturating_sub(5));
    let mut fresh = opts.clone();
    fresh.connect_timeout = Duration::from_secs(3);
    let disarm = format!(
        "rm -f {} && echo SPINE-DISARMED\n",
        q(&format!("{STATE}/armed-{run_id}"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    while Instant::now() < deadline {
        if let Ok((s, route)) = ssh::connect(std::slice::from_ref(&confirm), &fresh).await {
            let ok = matches!(run_root(&s, user, None, &disarm).await, Ok((out, 0)) if out.contains("SPINE-DISARMED"));
            let _ = s.close().await;
            if ok {
                return Outcome::Confirmed(route);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Not confirmed: wait for the host to roll back, then look on the old address.
    let wait_until = started + Duration::from_secs(secs + 15);
    let done = format!(
        "cat {} 2>/dev/null || true\n",
        q(&format!("{STATE}/rolledback-{run_id}"))
    );
    while Instant::now() < wait_until + Duration::from_secs(30) {
        if Instant::now() >= wait_until
            && let Ok((s, route)) = ssh::connect(old, &fresh).await
        {
            let seen = run_root(&s, user, None, &done).await;
            let _ = s.close().await;
            return match seen {
                Ok((out, _)) if !out.trim().is_empty() => Outcome::RolledBack(format!(
                    "no fresh connection to {} within {secs}s; the host restored the old network by itself and answers on {}",
                    confirm.describe(),
                    route.describe()
                )),
                _ => Outcome::Lost(format!(
                    "the host answers on {} but shows no rollback record",
                    route.describe()
                )),
            };
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Outcome::Lost(format!(
        "no answer on the new address ({}) nor on the old one after the rollback time: check the console",
        confirm.describe()
    ))
}
