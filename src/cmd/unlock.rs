//! `spine unlock HOST LOCK_ID`: break a lock left by a run that is gone.

use super::{Global, exit, registry};
use crate::apply::remote;
use crate::cli::UnlockArgs;
use crate::gather::ssh;

pub fn run(args: &UnlockArgs, g: Global) -> u8 {
    let (_, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let services = reg.services.unwrap_or_default();
    let routes = ssh::routes(&services, &args.host);
    if routes.is_empty() {
        eprintln!(
            "spine: host `{}` has no access paths in the registry",
            args.host
        );
        return exit::COULD_NOT_RUN;
    }
    let user = routes[0].user.clone();
    let opts = super::ssh_options(&args.ssh);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let (session, _) = match ssh::connect(&routes, &opts).await {
            Ok(x) => x,
            Err(f) => {
                for f in f {
                    eprintln!("spine: {}: {:?}: {}", f.route, f.kind, f.detail);
                }
                return exit::COULD_NOT_RUN;
            }
        };
        let code = match remote::read_lock(&session, &user).await {
            Err(e) => {
                eprintln!("spine: {e}");
                exit::COULD_NOT_RUN
            }
            Ok(None) => {
                eprintln!("host {} is not locked", args.host);
                exit::OK
            }
            Ok(Some(info)) if info.lock_id != args.lock_id => {
                eprintln!("spine: host {} is locked by {} (lock {}), not by {}: nothing broken", args.host, info.operator, info.lock_id, args.lock_id);
                exit::FAILED
            }
            Ok(Some(info)) => {
                let expired = info.expires.parse::<jiff::Timestamp>().is_ok_and(|t| t < jiff::Timestamp::now());
                if !expired && !args.force {
                    eprintln!(
                        "spine: the lock of {} (run {}, pid {}) expires at {}: it may still be running. Wait, or pass --force if you know it is gone",
                        info.operator, info.run_id, info.pid, info.expires
                    );
                    exit::FAILED
                } else {
                    match remote::unlock(&session, &user, &args.lock_id).await {
                        Ok(true) => {
                            eprintln!("unlocked {} (lock {} of {})", args.host, info.lock_id, info.operator);
                            exit::OK
                        }
                        Ok(false) => {
                            eprintln!("spine: the lock changed while unlocking; nothing broken");
                            exit::FAILED
                        }
                        Err(e) => {
                            eprintln!("spine: {e}");
                            exit::COULD_NOT_RUN
                        }
                    }
                }
            }
        };
        let _ = session.close().await;
        code
    })
}
