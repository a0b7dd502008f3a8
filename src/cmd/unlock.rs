//! `spine unlock HOST LOCK_ID`: break a lock left by a run that is gone.

use super::{Error, Global, exit, registry};
use crate::apply::remote::{self, Holder};
use crate::cli::UnlockArgs;
use crate::engine::Engine;
use crate::gather::ssh;

pub fn run(args: &UnlockArgs, g: Global) -> Result<u8, Error> {
    let (_, reg) = registry::checked(&args.registry, g.color)?;
    let services = reg.services.unwrap_or_default();
    let routes = ssh::routes(&services, &args.host);
    if routes.is_empty() {
        return Err(Error::msg(format!(
            "host `{}` has no access paths in the registry",
            args.host
        )));
    }
    let user = routes[0].user.clone();
    let opts = super::ssh_options(&args.ssh);
    Engine::new()?.block_on(async {
        let (session, _) = match ssh::connect(&routes, &opts).await {
            Ok(x) => x,
            Err(f) => {
                let why: Vec<String> = f
                    .iter()
                    .map(|f| format!("{}: {:?}: {}", f.route, f.kind, f.detail))
                    .collect();
                return Err(Error::msg(why.join("\nspine: ")));
            }
        };
        let code = match remote::read_lock(&session, &user).await {
            Err(e) => Err(e.into()),
            Ok(holder) => match decide(args, holder) {
                Err((code, msg)) => {
                    eprintln!("{msg}");
                    Ok(code)
                }
                Ok((id, what)) => match remote::unlock(&session, &user, id.as_deref()).await {
                    Ok(true) => {
                        eprintln!("unlocked {} ({what})", args.host);
                        Ok(exit::OK)
                    }
                    Ok(false) => {
                        eprintln!("spine: the lock changed while unlocking; nothing broken");
                        Ok(exit::FAILED)
                    }
                    Err(e) => Err(e.into()),
                },
            },
        };
        let _ = session.close().await;
        code
    })
}

/// Whether to break the lock found: the lock id to release (`None`: the lock
/// without info) and what it was, or the exit code and why not.
fn decide(
    args: &UnlockArgs,
    holder: Option<Holder>,
) -> Result<(Option<String>, String), (u8, String)> {
    let host = &args.host;
    match (holder, args.lock_id.as_deref()) {
        (None, _) => Err((exit::OK, format!("host {host} is not locked"))),
        (Some(Holder::NoInfo { age_secs }), want) => {
            let ttl = args.lock_ttl;
            let aged = age_secs > ttl;
            if !aged && !args.force {
                return Err((
                    exit::FAILED,
                    format!(
                        "spine: host {host} has a lock without info ({}, {age_secs} s old): a run died while taking it, or one is taking it now. It counts as expired after --lock-ttl ({ttl} s); pass --force if you know no run is going on",
                        remote::LOCK
                    ),
                ));
            }
            let why = if aged {
                format!("older than the lock TTL of {ttl} s")
            } else {
                "--force".into()
            };
            let note = want
                .map(|w| format!("; it had no id, so not {w}"))
                .unwrap_or_default();
            Ok((
                None,
                format!("a lock without info, {age_secs} s old, cleared: {why}{note}"),
            ))
        }
        (Some(Holder::Info(info)), None) => Err((
            exit::FAILED,
            format!(
                "spine: host {host} is locked by {} (lock {}): name the lock to break it: spine unlock {host} {}",
                info.operator, info.lock_id, info.lock_id
            ),
        )),
        (Some(Holder::Info(info)), Some(want)) if info.lock_id != want => Err((
            exit::FAILED,
            format!(
                "spine: host {host} is locked by {} (lock {}), not by {want}: nothing broken",
                info.operator, info.lock_id
            ),
        )),
        (Some(Holder::Info(info)), Some(_)) => {
            let expired = info
                .expires
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t < jiff::Timestamp::now());
            if !expired && !args.force {
                return Err((
                    exit::FAILED,
                    format!(
                        "spine: the lock of {} (run {}, pid {}) expires at {}: it may still be running. Wait, or pass --force if you know it is gone",
                        info.operator, info.run_id, info.pid, info.expires
                    ),
                ));
            }
            Ok((
                Some(info.lock_id.clone()),
                format!("lock {} of {}", info.lock_id, info.operator),
            ))
        }
    }
}
