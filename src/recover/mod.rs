//! Stage 6b: bring a VM back from its Proxmox host (GAP-OP-094).
//!
//! When a VM's cloud-init network (`ipconfig0`, `nameserver`) drifted, the VM
//! is usually unreachable on every path: the fix is made at the hypervisor.
//! Over a connection to the Proxmox host this stage sets the values, rebuilds
//! the cloud-init drive (`qm cloudinit update`), restarts the VM (`qm reboot`
//! when the guest agent answers, else `qm shutdown --timeout`, `qm stop` only
//! after that timeout, then `qm start`) and waits for the VM on its access
//! paths. cloud-init treats the boot as a new instance and regenerates the
//! VM's SSH host keys; the new key is learned through the guest agent (over
//! the Proxmox host, whose key is pinned) or the run stops and shows its
//! fingerprint. It never accepts a key blindly. The caller then gathers,
//! applies and confirms the VM's own resources in the same run.
//!
//! The scripts sent to the Proxmox host are the `*.sh` files beside this
//! one; values reach them only as quoted shell assignments.

pub mod hostkey;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openssh::Session;

use crate::apply::remote::{RootRun, run_root};
pub use crate::gather::guest::{agent_ipv4, last};
use crate::gather::ssh::{self, FailKind, PathFailure, Route, SshOptions};
use crate::kinds::Verdict;
use crate::plan::Plan;
use crate::shell::{self, Script, shown_word as q};

/// A script of `scripts/recover/`, every value quoted.
fn script(name: &str, ctx: minijinja::Value) -> Result<Script, String> {
    shell::render(&format!("recover/{name}"), ctx).map_err(|e| e.to_string())
}

/// Run a script as root on the Proxmox host (no backup folder: nothing is
/// replaced there by a file).
async fn on_pve(
    pve: &Session,
    user: &str,
    s: Result<Script, String>,
) -> Result<(String, i32), String> {
    run_root(
        pve,
        user,
        RootRun {
            run_id: None,
            wait_timeout: None,
        },
        &s?,
    )
    .await
    .map_err(|e| e.to_string())
}

/// A VM whose cloud-init network must be handed to it by a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The VM's host id in the registry.
    pub host: String,
    pub vmid: String,
    /// The Proxmox host's id.
    pub pve: String,
    pub ipconfig0: String,
    pub nameserver: String,
}

impl Target {
    /// What `--restart-vms` would do, for the plan and the refusal.
    pub fn what_would(&self) -> String {
        format!(
            "on {pve}: qm set {v} --ipconfig0 {ip} --nameserver {ns}; qm cloudinit update {v}; \
             qm reboot {v} if its guest agent answers, else qm shutdown {v} (qm stop {v} only after the timeout); \
             qm start {v}; then wait for {h} on its access paths and apply {h}'s own resources",
            pve = self.pve,
            v = self.vmid,
            h = self.host,
            ip = q(&self.ipconfig0),
            ns = q(&self.nameserver),
        )
    }
}

/// The VMs of a plan whose cloud-init settings on their Proxmox host drift
/// (or are set but not yet on the cloud-init drive).
pub fn targets(plan: &Plan) -> Vec<Target> {
    plan.hosts
        .iter()
        .flat_map(|h| &h.resources)
        .filter(|r| matches!(r.verdict, Verdict::Drift { .. }))
        .filter_map(|r| Some((r, crate::kinds::cloudinit::spec_of(&r.desired)?)))
        .map(|(r, spec)| Target {
            host: r.desired.about.clone(),
            vmid: spec.vmid.to_string(),
            pve: r.desired.on.clone(),
            ipconfig0: spec.ipconfig0,
            nameserver: spec.nameserver,
        })
        .collect()
}

/// How to reach the Proxmox host and the VM.
#[derive(Debug, Clone)]
pub struct Access {
    pub pve_routes: Vec<Route>,
    pub pve_user: String,
    pub vm_routes: Vec<Route>,
    pub ssh: SshOptions,
    /// How long the VM may take to come back (and a clean shutdown may take).
    pub wait: Duration,
}

/// What a restart did and did not do.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub asked_by: String,
    pub started: jiff::Timestamp,
    pub done: Vec<String>,
    pub not_done: Vec<String>,
    /// From the first power command until the VM answered again (or until
    /// the run gave up).
    pub down: Option<Duration>,
    pub back: Option<Route>,
    /// `known_hosts` updated with the key read through the guest agent.
    pub key_learned: Option<String>,
    pub error: Option<String>,
    pub interrupted: bool,
    /// Everything the Proxmox host printed (kept out of receipts but hashed).
    pub transcript: String,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.interrupted && self.back.is_some()
    }

    fn fail(mut self, why: String, left: &[&str]) -> Report {
        self.error = Some(why);
        self.not_done.extend(left.iter().map(|s| s.to_string()));
        self
    }
}

fn describe_failures(f: &[PathFailure]) -> String {
    f.iter()
        .map(|f| format!("{}: {:?}: {}", f.route, f.kind, f.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Restart one VM from its Proxmox host and wait for it.
pub async fn restart(
    t: &Target,
    a: &Access,
    asked_by: String,
    interrupted: Arc<AtomicBool>,
) -> Report {
    let r = Report {
        target: t.clone(),
        asked_by,
        started: jiff::Timestamp::now(),
        done: Vec::new(),
        not_done: Vec::new(),
        down: None,
        back: None,
        key_learned: None,
        error: None,
        interrupted: false,
        transcript: String::new(),
    };
    let (pve, _) = match ssh::connect(&a.pve_routes, &a.ssh).await {
        Ok(x) => x,
        Err(f) => {
            let why = format!(
                "cannot reach the Proxmox host {}: {}",
                t.pve,
                describe_failures(&f)
            );
            return r.fail(why, &["qm set", "qm cloudinit update", "restart", "wait"]);
        }
    };
    let r = restart_over(&pve, t, a, r, interrupted).await;
    let _ = pve.close().await;
    r
}

async fn restart_over(
    pve: &Session,
    t: &Target,
    a: &Access,
    mut r: Report,
    interrupted: Arc<AtomicBool>,
) -> Report {
    let set = script(
        "set-and-update.sh",
        minijinja::context! {
            vmid => &t.vmid,
            ipconfig0 => &t.ipconfig0,
            nameserver => &t.nameserver,
        },
    );
    match on_pve(pve, &a.pve_user, set).await {
        Ok((out, 0)) => {
            r.transcript.push_str(&out);
            r.done.push(format!(
                "qm set {v} --ipconfig0 {} --nameserver {}; qm cloudinit update {v}",
                q(&t.ipconfig0),
                q(&t.nameserver),
                v = t.vmid
            ));
        }
        Ok((out, code)) => {
            r.transcript.push_str(&out);
            let why = format!(
                "setting the cloud-init network failed (exit {code}): {}",
                last(&out)
            );
            return r.fail(why, &["restart", "wait"]);
        }
        Err(e) => return r.fail(e, &["qm set", "restart", "wait"]),
    }
    if interrupted.load(Ordering::SeqCst) {
        r.interrupted = true;
        r.not_done
            .push(format!("restart of VM {} (interrupted before it)", t.vmid));
        return r;
    }
    let down_from = Instant::now();
    let secs = a.wait.as_secs().max(1).to_string();
    let power = script(
        "power.sh",
        minijinja::context! { vmid => &t.vmid, timeout => &secs },
    );
    let result = on_pve(pve, &a.pve_user, power).await;
    let (out, code) = match result {
        Ok(x) => x,
        Err(e) => return r.fail(e, &["restart", "wait"]),
    };
    r.transcript.push_str(&out);
    r.done.extend(
        out.lines()
            .filter_map(|l| l.strip_prefix("step: "))
            .map(String::from),
    );
    if code != 0 {
        r.down = Some(down_from.elapsed());
        let why = format!(
            "restarting VM {} failed (exit {code}): {}",
            t.vmid,
            last(&out)
        );
        return r.fail(why, &["wait"]);
    }
    wait_back(pve, t, a, r, down_from, interrupted).await
}

/// Wait for the VM on its access paths; learn a new host key on the way.
async fn wait_back(
    pve: &Session,
    t: &Target,
    a: &Access,
    mut r: Report,
    down_from: Instant,
    interrupted: Arc<AtomicBool>,
) -> Report {
    let deadline = down_from + a.wait;
    loop {
        if interrupted.load(Ordering::SeqCst) {
            r.interrupted = true;
            r.down = Some(down_from.elapsed());
            r.not_done.push(format!(
                "waiting for {} (interrupted after {}s; VM {} was restarted and may still come back)",
                t.host,
                down_from.elapsed().as_secs(),
                t.vmid
            ));
            return r;
        }
        let last_fail = match ssh::connect(&a.vm_routes, &a.ssh).await {
            Ok((s, route)) => {
                let _ = s.close().await;
                r.down = Some(down_from.elapsed());
                r.done.push(format!(
                    "{} answered on {} after {}s",
                    t.host,
                    route.describe(),
                    down_from.elapsed().as_secs()
                ));
                r.back = Some(route);
                return r;
            }
            Err(f) => {
                if let Some(hk) = f.iter().position(|f| f.kind == FailKind::HostKey) {
                    let route = &a.vm_routes[hk.min(a.vm_routes.len() - 1)];
                    match hostkey::learn(pve, &a.pve_user, &t.vmid, route, &a.ssh).await {
                        Ok(msg) => {
                            r.done.push(msg.clone());
                            r.key_learned = Some(msg);
                            continue;
                        }
                        Err(msg) => {
                            r.down = Some(down_from.elapsed());
                            return r.fail(msg, &[]);
                        }
                    }
                }
                describe_failures(&f)
            }
        };
        if Instant::now() >= deadline {
            r.down = Some(down_from.elapsed());
            let why = format!(
                "VM {} did not come back on any access path within {}s (--wait-timeout): {last_fail}; {}",
                t.vmid,
                a.wait.as_secs(),
                agent_addresses(pve, &a.pve_user, &t.vmid).await
            );
            return r.fail(why, &[]);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What the guest agent says about the VM's addresses, for the operator.
async fn agent_addresses(pve: &Session, user: &str, vmid: &str) -> String {
    let s = script("agent-addresses.sh", minijinja::context! { vmid });
    match on_pve(pve, user, s).await {
        Ok((out, 0)) => {
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
            let have = agent_ipv4(&v);
            if have.is_empty() {
                "the guest agent answers but the VM has no IPv4 address (its network did not come up)".into()
            } else {
                format!(
                    "the guest agent says the VM has {} (not on any of its access paths)",
                    have.join(", ")
                )
            }
        }
        Ok((out, _)) => format!("the guest agent does not answer either: {}", last(&out)),
        Err(e) => format!("could not ask the guest agent: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_addresses_leave_out_loopback_and_container_bridges() {
        let v: serde_json::Value = serde_json::from_str(
            r#"[{"name":"lo","ip-addresses":[{"ip-address":"127.0.0.1","prefix":8,"ip-address-type":"ipv4"}]},
                {"name":"eth0","ip-addresses":[{"ip-address":"10.0.0.3","prefix":24,"ip-address-type":"ipv4"},
                                               {"ip-address":"fe80::1","prefix":64,"ip-address-type":"ipv6"}]},
                {"name":"docker0","ip-addresses":[{"ip-address":"172.17.0.1","prefix":16,"ip-address-type":"ipv4"}]}]"#,
        )
        .unwrap();
        assert_eq!(agent_ipv4(&v), vec!["10.0.0.3/24".to_string()]);
    }

    #[test]
    fn hostile_values_reach_the_scripts_as_plain_strings() {
        let evil = "ip=1.2.3.4/24'; touch /tmp/pwned; echo '$(id)`x`";
        // The real script, with `qm` a function that prints its arguments.
        let s = script(
            "set-and-update.sh",
            minijinja::context! { vmid => "203", ipconfig0 => evil, nameserver => evil },
        )
        .unwrap();
        let run = format!("qm() {{ printf '%s|' \"$@\"; echo; }}\n{}", s.as_str());
        let out = std::process::Command::new("sh")
            .args(["-c", &run])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.starts_with(&format!(
                "set|203|--ipconfig0|{evil}|--nameserver|{evil}|\n"
            )),
            "{out}"
        );
    }

    #[test]
    fn the_refusal_names_every_step_with_quoted_values() {
        let t = Target {
            host: "immich".into(),
            vmid: "203".into(),
            pve: "pve".into(),
            ipconfig0: "ip=10.0.0.3/24,gw=10.0.0.1".into(),
            nameserver: "10.0.0.4 10.0.0.5".into(),
        };
        let w = t.what_would();
        for step in [
            "on pve: qm set 203 --ipconfig0 ip=10.0.0.3/24,gw=10.0.0.1 --nameserver '10.0.0.4 10.0.0.5'",
            "qm cloudinit update 203",
            "qm reboot 203 if its guest agent answers",
            "qm stop 203 only after the timeout",
            "qm start 203",
            "apply immich's own resources",
        ] {
            assert!(w.contains(step), "{w}");
        }
    }

    #[test]
    fn the_power_script_is_valid_sh_and_stops_only_after_a_failed_shutdown() {
        let power = script(
            "power.sh",
            minijinja::context! { vmid => "203", timeout => "60" },
        )
        .unwrap();
        let power = power.as_str();
        crate::shell::assert_parses("sh", power);
        let shutdown = power.find("qm shutdown").unwrap();
        let stop = power.find("qm stop").unwrap();
        assert!(shutdown < stop && power.contains("if ! qm shutdown"));
    }
}
