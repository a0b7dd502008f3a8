//! Changes that may cut the connection (a kind's [`Lifecycle::Confirmed`],
//! e.g. netplan), run so they never lock the operator out (REFERENCE.md
//! section 5): back up, stage and check, arm a rollback timer on the host
//! that is detached from the SSH session, activate, then confirm over a
//! **fresh** connection to the new address (no connection sharing) and
//! disarm. The confirmation goes the way the operator reached the host
//! ([`confirm_route`]): a Tailscale path as it is, a LAN or jump path (and an
//! ssh_config alias that names a LAN address) re-pointed at the new address.
//! It counts only once the activation has finished. If the confirmation does not come in time, the host restores the
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
use crate::model::Via;
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
        activated => format!("{STATE}/activated-{run_id}"),
        rollback_file => format!("{STATE}/rollback-{run_id}.sh"),
        log => format!("{STATE}/activate-{run_id}.log"),
    }
}

/// Where to confirm a change that moves the host to `new_address`: the path
/// that worked (`worked`), re-pointed at the new address where it depends on
/// the LAN address. A Tailscale path does not (its address is the tailnet's);
/// a LAN path and a jump path's target are the LAN address; an ssh_config
/// alias depends on it when ssh resolves it (`ssh -G`) to an IP address
/// outside Tailscale's ranges, and is then re-pointed with the alias's port
/// and ProxyJump (the user is the registry's, as for every path). An alias
/// that resolves to a name is kept as it is.
pub fn confirm_route(worked: &Route, new_address: &str, opts: &SshOptions) -> Route {
    let moved = |r: &Route| Route {
        address: new_address.to_string(),
        ..r.clone()
    };
    match worked.via {
        Via::Tailscale => worked.clone(),
        Via::Lan | Via::Jump => moved(worked),
        Via::SshConfig => match resolve_alias(&worked.address, opts) {
            Some(r) if is_lan_ip(&r.address) => moved(&Route {
                via: if r.jump.is_some() {
                    Via::Jump
                } else {
                    Via::Lan
                },
                user: worked.user.clone(),
                port: worked.port.or(r.port),
                ..r
            }),
            _ => worked.clone(),
        },
    }
}

/// An IP address that is not in Tailscale's ranges (100.64.0.0/10,
/// fd7a:115c:a1e0::/48).
fn is_lan_ip(a: &str) -> bool {
    match a.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            !(o[0] == 100 && (64..128).contains(&o[1]))
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            !(s[0] == 0xfd7a && s[1] == 0x115c && s[2] == 0xa1e0)
        }
        Err(_) => false,
    }
}

/// What ssh makes of an alias (`ssh -G`, offline): host name, user, port
/// and ProxyJump, as a route.
fn resolve_alias(alias: &str, opts: &SshOptions) -> Option<Route> {
    let mut cmd = std::process::Command::new("ssh");
    cmd.arg("-G");
    if let Some(c) = &opts.config {
        cmd.arg("-F").arg(c);
    }
    let out = cmd.arg("--").arg(alias).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' '))
            .map(str::to_string)
    };
    Some(Route {
        via: Via::SshConfig,
        address: get("hostname")?,
        user: get("user")?,
        port: get("port").and_then(|p| p.parse().ok()),
        jump: get("proxyjump").filter(|j| j != "none"),
    })
}

/// Changes of one run activated together: their scripts one after the
/// other, every file any of them writes (restored together on rollback),
/// each distinct check and activation once. They must agree on the address
/// that confirms them.
pub fn join(changes: &[&crate::kinds::Change]) -> Result<(Script, Confirmed), String> {
    let mut scripts = Vec::new();
    let mut joined: Option<Confirmed> = None;
    let mut checks: Vec<Script> = Vec::new();
    let mut activations: Vec<Script> = Vec::new();
    for ch in changes {
        let crate::kinds::Lifecycle::Confirmed(c) = &ch.lifecycle else {
            return Err("a change that does not need confirming was joined to network changes (a bug in spine)".into());
        };
        scripts.push(minijinja::Value::from(&ch.script));
        if !checks.contains(&c.check) {
            checks.push(c.check.clone());
        }
        if !activations.contains(&c.activate) {
            activations.push(c.activate.clone());
        }
        let j = joined.get_or_insert_with(|| Confirmed {
            files: Vec::new(),
            ..c.clone()
        });
        if j.confirm_address != c.confirm_address {
            return Err(format!(
                "network changes of one run confirm on different addresses ({} and {}): not applied",
                j.confirm_address, c.confirm_address
            ));
        }
        for f in &c.files {
            if !j.files.contains(f) {
                j.files.push(f.clone());
            }
        }
    }
    let mut c = joined.ok_or("no network change to apply")?;
    let all = |v: Vec<Script>| {
        shell::render(
            "apply/joined.sh",
            minijinja::context! { scripts => v.iter().map(minijinja::Value::from).collect::<Vec<_>>() },
        )
    };
    c.check = all(checks)?;
    c.activate = all(activations)?;
    let script = shell::render("apply/joined.sh", minijinja::context! { scripts })?;
    Ok((script, c))
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
        // netplan's complaint may quote a line of the file (a Wi-Fi
        // password): shown with secret values masked.
        Ok((out, 4)) => {
            return Outcome::Refused(crate::safe::printable(&crate::secrets::mask_lines(
                out.trim(),
            )));
        }
        Ok((out, code)) => {
            let said = crate::safe::printable(&crate::secrets::mask_lines(out.trim()));
            return Outcome::Refused(format!("staging failed (exit {code}): {said}"));
        }
        Err(e) => return Outcome::Lost(format!("the change may or may not have been armed: {e}")),
    }
    session.close().await;

    // Confirm over fresh connections until shortly before the host's timer.
    let deadline = started + Duration::from_secs(secs.saturating_sub(5));
    let mut fresh = opts.clone();
    // Short, so that several tries fit before the host's timer (per hop: a
    // jump path gets it twice, gather::ssh).
    fresh.connect_timeout = opts
        .connect_timeout
        .clamp(Duration::from_secs(3), Duration::from_secs(10));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(via: Via, address: &str, jump: Option<&str>) -> Route {
        Route {
            via,
            user: "ronny".into(),
            address: address.into(),
            port: None,
            jump: jump.map(String::from),
        }
    }

    #[test]
    fn confirmation_goes_the_way_the_operator_came() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("ssh_config");
        std::fs::write(
            &cfg,
            "Host by-lan\n  HostName 10.203.12.230\n  User ops\n  Port 2222\n  ProxyJump root@pve\n\
             Host by-ts\n  HostName 100.114.101.50\n\
             Host by-name\n  HostName immich.example.org\n",
        )
        .unwrap();
        let opts = SshOptions {
            config: Some(cfg),
            connect_timeout: Duration::from_secs(1),
        };
        let new = "10.203.1.203";
        // Tailscale does not depend on the LAN address: as it is.
        let ts = route(Via::Tailscale, "immich-1", None);
        assert_eq!(confirm_route(&ts, new, &opts), ts);
        // A LAN path and a jump path's target: the new address, same jump host.
        let lan = route(Via::Lan, "10.203.12.230", None);
        assert_eq!(confirm_route(&lan, new, &opts), route(Via::Lan, new, None));
        let jump = route(Via::Jump, "10.203.12.230", Some("root@10.203.1.10"));
        assert_eq!(
            confirm_route(&jump, new, &opts),
            route(Via::Jump, new, Some("root@10.203.1.10"))
        );
        // An alias naming a LAN address: re-pointed, with its user, port and jump.
        let got = confirm_route(&route(Via::SshConfig, "by-lan", None), new, &opts);
        assert_eq!(
            got,
            Route {
                via: Via::Jump,
                user: "ronny".into(),
                address: new.into(),
                port: Some(2222),
                jump: Some("root@pve".into()),
            }
        );
        // An alias naming a tailnet address or a host name: as it is.
        for alias in ["by-ts", "by-name"] {
            let r = route(Via::SshConfig, alias, None);
            assert_eq!(confirm_route(&r, new, &opts), r);
        }
    }

    #[test]
    fn network_changes_of_one_run_are_joined() {
        let script = |text: &str| {
            shell::render(
                "kinds/netplan/live-apply.sh",
                minijinja::context! { interface => text },
            )
            .unwrap()
        };
        let change = |s: &str, files: &[&str], address: &str| {
            let mut c = crate::kinds::Change::new(script(s));
            c.lifecycle = crate::kinds::Lifecycle::Confirmed(Confirmed {
                confirm_address: address.into(),
                files: files.iter().map(|f| f.to_string()).collect(),
                check: script("check"),
                activate: script("activate"),
            });
            c
        };
        let a = change("one", &["/etc/netplan/50-cloud-init.yaml"], "10.0.0.1");
        let b = change(
            "two",
            &[
                "/etc/netplan/00-installer-config.yaml",
                "/etc/netplan/50-cloud-init.yaml",
            ],
            "10.0.0.1",
        );
        let (joined, c) = join(&[&a, &b]).unwrap();
        let (one, two) = (
            joined.as_str().find("'one'").unwrap(),
            joined.as_str().find("'two'").unwrap(),
        );
        assert!(one < two, "in order: {}", joined.as_str());
        assert_eq!(
            c.files,
            [
                "/etc/netplan/50-cloud-init.yaml",
                "/etc/netplan/00-installer-config.yaml"
            ]
        );
        assert_eq!(c.check.as_str().matches("'check'").count(), 1);
        assert_eq!(c.activate.as_str().matches("'activate'").count(), 1);
        // The whole armed script is sh.
        let armed = arm_and_apply(&joined, &c, "run-1", 30).unwrap();
        crate::shell::assert_parses("sh", armed.as_str());
        let elsewhere = change("three", &[], "10.0.0.2");
        assert!(
            join(&[&a, &elsewhere])
                .unwrap_err()
                .contains("different addresses")
        );
        assert!(join(&[&crate::kinds::Change::new(script("x"))]).is_err());
    }

    #[test]
    fn tailscale_ranges_are_not_lan() {
        assert!(!is_lan_ip("100.64.0.1") && !is_lan_ip("100.127.255.254"));
        assert!(is_lan_ip("100.128.0.1") && is_lan_ip("192.168.1.203"));
        assert!(!is_lan_ip("fd7a:115c:a1e0::1") && is_lan_ip("fd00::1"));
        assert!(!is_lan_ip("immich-1"));
    }
}
