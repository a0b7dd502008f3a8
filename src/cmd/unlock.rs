//! `spine unlock HOST LOCK_ID`: break a lock left by a run that is gone.

use super::{Error, Global, exit, registry};
use crate::apply::remote;
use crate::cli::UnlockArgs;
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
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
            Err(e) => Err(Error::msg(e)),
            Ok(None) => {
                eprintln!("host {} is not locked", args.host);
                Ok(exit::OK)
            }
            Ok(Some(info)) if info.lock_id != args.lock_id => {
                eprintln!("spine: host {} is locked by {} (lock {}), not by {}: nothing broken", args.host, info.operator, info.lock_id, args.lock_id);
                Ok(exit::FAILED)
            }
            Ok(Some(info)) => {
                let expired = info.expires.parse::<jiff::Timestamp>().is_ok_and(|t| t < jiff::Timestamp::now());
                if !expired && !args.force {
                    eprintln!(
                        "spine: the lock of {} (run {}, pid {}) expires at {}: it may still be running. Wait, or pass --force if you know it is gone",
                        info.operator, info.run_id, info.pid, info.expires
                    );
                    Ok(exit::FAILED)
                } else {
                    match remote::unlock(&session, &user, &args.lock_id).await {
                        Ok(true) => {
                            eprintln!("unlocked {} (lock {} of {})", args.host, info.lock_id, info.operator);
                            Ok(exit::OK)
                        }
                        Ok(false) => {
                            eprintln!("spine: the lock changed while unlocking; nothing broken");
                            Ok(exit::FAILED)
                        }
                        Err(e) => Err(Error::msg(e)),
                    }
                }
            }
        };
        let _ = session.close().await;
        code
    })
}
