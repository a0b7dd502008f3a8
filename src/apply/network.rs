//! Changes that may cut the connection (a kind's [`Lifecycle::Confirmed`],
//! e.g. netplan), run so they never lock the operator out (REFERENCE.md
//! section 5): back up, stage and check, arm a rollback timer on the host
//! that is detached from the SSH session, activate, then confirm over a
//! **fresh** connection to the new address (no connection sharing) and
//! disarm. If the confirmation does not come in time, the host restores the
//! old files and activates them by itself; spine reconnects on the old
//! address, reports the rollback and the apply fails. Nothing here knows
//! which kind the change is: the kind gives the check and the activation.
//!
//! [`Lifecycle::Confirmed`]: crate::kinds::Lifecycle::Confirmed

use std::time::{Duration, Instant};

use super::remote::{RootRun, STATE, run_root};
use crate::gather::ssh::{Route, SshOptions};
use crate::gather::transport::{Conn, Connect};
use crate::kinds::Confirmed;
use crate::shell::{self, Script, ScriptError};

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

/// The paths one confirmed change uses on the host.
fn paths(c: &Confirmed, run_id: &str) -> minijinja::Value {
    minijinja::context! {
        files => c.files.clone(),
        backup => format!("{STATE}/backups/{run_id}"),
        armed => format!("{STATE}/armed-{run_id}"),
        record => format!("{STATE}/rolledback-{run_id}"),
        rollback_file => format!("{STATE}/rollback-{run_id}.sh"),
        log => format!("{STATE}/activate-{run_id}.log"),
    }
}

/// Stage, check, arm and apply on the host (one root script around `change`;
/// the rollback script travels inside it, base64).
/// `check` and `activate_later` go in as plain strings (quoted, for `sh -c`);
/// `activate` is embedded in the rollback script as the script it is.
pub fn arm_and_apply(
    change: &Script,
    c: &Confirmed,
    run_id: &str,
    secs: u64,
) -> Result<Script, ScriptError> {
    let p = paths(c, run_id);
    let rollback = shell::render(
        "apply/network-rollback.sh",
        minijinja::context! { secs, activate => &c.activate, ..p.clone() },
    )?;
    shell::render(
        "apply/network-arm.sh",
        minijinja::context! {
            change,
            check => c.check.as_str(),
            activate_later => format!("sleep 1\n{}", c.activate.as_str()),
            rollback_b64 => shell::b64(rollback.as_str()),
            ..p
        },
    )
}

/// Run the network change on `session` (consumed: the change may cut it).
#[allow(clippy::too_many_arguments)]
pub async fn apply<K: Connect>(
    k: &K,
    session: K::Conn,
    user: &str,
    run_id: &str,
    change: &Script,
    c: &Confirmed,
    confirm: Route,
    old: &[Route],
    opts: &SshOptions,
    timeout: Duration,
) -> Outcome {
    let secs = timeout.as_secs().max(10);
    let started = Instant::now();
    let armed = match arm_and_apply(change, c, run_id, secs) {
        Ok(s) => s,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let run = RootRun {
        run_id: Some(run_id),
        wait_timeout: None,
    };
    match run_root(&session, user, run, &armed).await {
        Ok((out, 0)) if out.contains("SPINE-ARMED") => {}
        Ok((out, 4)) => return Outcome::Refused(out.trim().to_string()),
        Ok((out, code)) => {
            return Outcome::Refused(format!("staging failed (exit {code}): {}", out.trim()));
        }
        Err(e) => return Outcome::Lost(format!("the change may or may not have been armed: {e}")),
    }
    session.close().await;

    // Confirm over fresh connections until shortly before the host's timer.
    let deadline = started + Duration::from_secs(secs.saturating_sub(5));
    let mut fresh = opts.clone();
    fresh.connect_timeout = Duration::from_secs(3);
    let (disarm, done) = match (
        shell::render("apply/network-disarm.sh", paths(c, run_id)),
        shell::render("apply/network-rolledback.sh", paths(c, run_id)),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Outcome::Lost(e.to_string()),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    while Instant::now() < deadline {
        if let Ok((s, route)) = k.connect(std::slice::from_ref(&confirm), &fresh).await {
            let ok = matches!(run_root(&s, user, RootRun::default(), &disarm).await, Ok((out, 0)) if out.contains("SPINE-DISARMED"));
            s.close().await;
            if ok {
                return Outcome::Confirmed(route);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Not confirmed: wait for the host to roll back, then look on the old address.
    let wait_until = started + Duration::from_secs(secs + 15);
    while Instant::now() < wait_until + Duration::from_secs(30) {
        if Instant::now() >= wait_until
            && let Ok((s, route)) = k.connect(old, &fresh).await
        {
            let seen = run_root(&s, user, RootRun::default(), &done).await;
            s.close().await;
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
