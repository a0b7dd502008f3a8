//! cloud-init: the Proxmox settings (`ipconfig0`, `nameserver`) that
//! regenerate a VM's netplan file. They live on the Proxmox host (read with
//! `qm config VMID`): GAP-OP-094 was these drifting while nobody looked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, Desired, SecretHashes, TypedKind, Verdict, text_diff};
use crate::gather::script::Section;
use crate::model::NetworkOwner;
use crate::render::{RenderCx, RenderError};
use crate::shell::{self, Script, ScriptError};

pub struct CloudInit;

/// `ip=1.2.3.4/24,gw=1.2.3.1` as an order-free map.
fn ipconfig(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn nameservers(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .split([' ', ','])
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// The VM's cloud-init network settings as the registry wants them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub vmid: u32,
    /// `ip=ADDRESS/PREFIX,gw=GATEWAY`.
    pub ipconfig0: String,
    /// Space-separated resolvers.
    pub nameserver: String,
}

/// What `qm config`, `qm cloudinit pending` and `qm status` say of the VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub ipconfig0: Option<String>,
    pub nameserver: Option<String>,
    /// Settings made with `qm set` but not yet on the VM's cloud-init drive.
    pub pending: Vec<String>,
    pub vm: VmState,
}

/// The VM's run state and what its guest agent said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    /// `qm status`: `running`, `stopped`, ...
    pub status: Option<String>,
    /// Absent when the agent was not asked (the VM is not running or has no agent).
    pub agent: Option<Agent>,
}

/// The guest agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Agent {
    /// The IPv4 addresses it reports (`ADDRESS/PREFIX`).
    Addresses { addresses: Vec<String> },
    /// Why it did not answer.
    Error { error: String },
}

/// The cloud-init spec of a resource, when it is one of this kind's.
pub fn spec_of(d: &Desired) -> Option<Spec> {
    (d.kind == TypedKind::name(&CloudInit))
        .then(|| super::typed::spec(&CloudInit, d).ok())
        .flatten()
}

impl TypedKind for CloudInit {
    type Spec = Spec;
    type Facts = Facts;

    fn name(&self) -> &'static str {
        "cloudinit"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, Spec)>, RenderError> {
        let Some(net) = cx.host.desired.as_ref().and_then(|d| d.network.as_ref()) else {
            return Ok(Vec::new());
        };
        let (NetworkOwner::CloudInit, Some(vmid), Some(pve)) =
            (net.owner, cx.host.vmid, cx.host.proxmox_host.as_ref())
        else {
            return Ok(Vec::new());
        };
        let ctx = minijinja::context! { network => minijinja::value::Serde(net) };
        let ipconfig0 = cx
            .templates
            .render("cloudinit/ipconfig0.j2", ctx.clone())?
            .trim()
            .to_string();
        let nameserver = cx
            .templates
            .render("cloudinit/nameserver.j2", ctx)?
            .trim()
            .to_string();
        let content = format!("ipconfig0: {ipconfig0}\nnameserver: {nameserver}\n");
        let d = Desired::new(
            self,
            format!("cloudinit:vm-{vmid}"),
            pve,
            cx.host_id,
            content,
        );
        let spec = Spec {
            vmid,
            ipconfig0,
            nameserver,
        };
        Ok(vec![(d, spec)])
    }

    fn read_script(&self, _: &Desired, spec: &Spec) -> Result<Script, ScriptError> {
        shell::render(
            "kinds/cloudinit/read.sh",
            minijinja::context! { vmid => spec.vmid.to_string() },
        )
    }

    fn observe(
        &self,
        _: &Desired,
        spec: &Spec,
        s: &Section,
        _: &dyn SecretHashes,
    ) -> Result<Facts, String> {
        if let Some(u) = s.get("unknown") {
            return Err(u.to_string());
        }
        let config = s.get("config").unwrap_or_default();
        if s.get("rc") != Some("0") {
            return Err(format!(
                "`qm config {}` failed: {}",
                spec.vmid,
                config.trim()
            ));
        }
        let mut fields = BTreeMap::new();
        for line in config.lines() {
            if let Some((k, v)) = line.split_once(": ")
                && (k == "ipconfig0" || k == "nameserver")
            {
                fields.insert(k.to_string(), v.trim().to_string());
            }
        }
        // Set with `qm set` but not yet on the cloud-init drive the VM boots from.
        let pending: Vec<String> = s
            .get("pending")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("new ").or_else(|| l.strip_prefix("del ")))
            .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_string()))
            .filter(|k| k == "ipconfig0" || k == "nameserver")
            .collect();
        Ok(Facts {
            ipconfig0: fields.remove("ipconfig0"),
            nameserver: fields.remove("nameserver"),
            pending,
            vm: vm_state(s),
        })
    }

    fn compare(&self, d: &Desired, spec: &Spec, actual: &Facts) -> Verdict {
        let have_ip = actual.ipconfig0.as_deref().unwrap_or_default();
        let have_ns = actual.nameserver.as_deref().unwrap_or_default();
        let mut reasons = Vec::new();
        if ipconfig(have_ip) != ipconfig(&spec.ipconfig0) {
            reasons.push(format!(
                "ipconfig0 is `{have_ip}`, should be `{}`",
                spec.ipconfig0
            ));
        }
        if nameservers(have_ns) != nameservers(&spec.nameserver) {
            reasons.push(format!(
                "nameserver is `{have_ns}`, should be `{}`",
                spec.nameserver
            ));
        }
        if reasons.is_empty() && !actual.pending.is_empty() {
            reasons.push(format!(
                "{} set but not yet on VM {}'s cloud-init drive (`qm cloudinit pending`)",
                actual.pending.join(", "),
                spec.vmid
            ));
        }
        if reasons.is_empty() {
            return Verdict::InSync;
        }
        let have = format!("ipconfig0: {have_ip}\nnameserver: {have_ns}\n");
        Verdict::Drift {
            action: Action::Change,
            reason: format!(
                "{} (cloud-init regenerates the guest's netplan from these only when the VM restarts from its Proxmox host: `spine apply --restart-vms` sets them, runs `qm cloudinit update {vmid}`, restarts VM {vmid} and applies its own resources; without the flag apply only sets them and exits 1)",
                reasons.join("; "),
                vmid = spec.vmid
            ),
            diff: text_diff(&format!("qm config {}", spec.vmid), &have, &d.content),
        }
    }

    fn apply(
        &self,
        _: &Desired,
        spec: &Spec,
        _: &Facts,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, super::KindError> {
        let mut c = super::Change::new(shell::render(
            "kinds/cloudinit/apply.sh",
            minijinja::context! {
                vmid => spec.vmid.to_string(),
                ipconfig0 => &spec.ipconfig0,
                nameserver => &spec.nameserver,
            },
        )?);
        c.note = Some(format!(
            "set on the Proxmox host; VM {} picks it up only when restarted from there (`spine apply --restart-vms`)",
            spec.vmid
        ));
        Ok(c)
    }
}

/// The VM's run state (`qm status`) and, when its guest agent was asked,
/// the IPv4 addresses it reports or why it did not answer.
fn vm_state(s: &Section) -> VmState {
    let status = s
        .get("status")
        .and_then(|st| st.trim().strip_prefix("status:"))
        .map(|st| st.trim().to_string());
    let agent = match (s.get("agent_rc"), s.get("agent")) {
        (None, _) => None,
        (Some(rc), Some(out)) if rc.trim() == "0" => Some(
            match serde_json::from_str::<serde_json::Value>(out.trim()) {
                Ok(v) => Agent::Addresses {
                    addresses: crate::gather::guest::agent_ipv4(&v),
                },
                Err(_) => Agent::Error {
                    error: crate::gather::guest::last(out),
                },
            },
        ),
        (Some(_), out) => Some(Agent::Error {
            error: crate::gather::guest::last(out.unwrap_or_default()),
        }),
    };
    VmState { status, agent }
}

/// What a VM's Proxmox host shows of a VM that is unreachable on every
/// access path: read by the VM's cloudinit resource on that host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSeen {
    pub vmid: String,
    pub proxmox_host: String,
    /// `qm status`: `running`, `stopped`; none when the host could not be read.
    pub status: Option<String>,
    /// The IPv4 addresses the guest agent reports, when it answered.
    pub agent_addresses: Option<Vec<String>>,
    /// `in_sync`, `drift` or `unknown`.
    pub cloud_init: String,
    pub reason: String,
    /// The command that helps next.
    pub run: String,
}

/// `host` (a VM) answered on no path: what its Proxmox host says of it, from
/// its cloudinit resource `d` there (its verdict and what was observed), and
/// which command helps: `spine apply --restart-vms` when the VM's cloud-init
/// network must still be handed to it, else `spine doctor HOST`.
pub fn seen_from_pve(
    host: &str,
    d: &Desired,
    verdict: &Verdict,
    observed: Option<&serde_json::Value>,
) -> VmSeen {
    let vmid = spec_of(d).map_or_else(|| "?".to_string(), |s| s.vmid.to_string());
    let pve = d.on.clone();
    let facts: Option<Facts> = observed.and_then(|o| serde_json::from_value(o.clone()).ok());
    let doctor = format!("spine doctor {host}");
    let mut seen = VmSeen {
        vmid: vmid.clone(),
        proxmox_host: pve.clone(),
        status: None,
        agent_addresses: None,
        cloud_init: "unknown".into(),
        reason: String::new(),
        run: doctor.clone(),
    };
    let (Some(o), false) = (facts, matches!(verdict, Verdict::Unknown { .. })) else {
        let why = match verdict {
            Verdict::Unknown { reason } => reason.clone(),
            _ => "nothing was read".into(),
        };
        seen.reason = format!("its Proxmox host {pve} could not be asked either: {why}");
        return seen;
    };
    seen.status = o.vm.status.clone();
    let mut said = vec![match seen.status.as_deref() {
        Some("running") => format!("VM {vmid} is running on {pve}"),
        Some(s) => format!("VM {vmid} is {s} on {pve} (start it there: `qm start {vmid}`)"),
        None => format!("`qm status {vmid}` on {pve} said nothing readable"),
    }];
    match o.vm.agent {
        Some(Agent::Addresses { addresses: have }) => {
            said.push(if have.is_empty() {
                "its guest agent says it has no IPv4 address (its network did not come up)".into()
            } else {
                format!("its guest agent says it has {}", have.join(", "))
            });
            seen.agent_addresses = Some(have);
        }
        Some(Agent::Error { error }) => {
            said.push(format!("its guest agent does not answer: {error}"))
        }
        None if seen.status.as_deref() == Some("running") => {
            said.push("its guest agent is not enabled".into())
        }
        None => {}
    }
    if matches!(verdict, Verdict::Drift { .. }) {
        seen.cloud_init = "drift".into();
        said.push(format!(
            "its cloud-init network on {pve} is not yet the VM's (cloudinit:vm-{vmid}): a restart from {pve} hands it over"
        ));
        seen.run = "spine apply --restart-vms".into();
    } else {
        seen.cloud_init = "in_sync".into();
        said.push(format!(
            "cloud-init on {pve} is in sync with the registry, yet the VM is reachable on none of its access paths (a restart would not change its network)"
        ));
    }
    seen.reason = said.join("; ");
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipconfig_is_order_free() {
        assert_eq!(
            ipconfig("gw=1.1.1.1,ip=1.1.1.2/24"),
            ipconfig("ip=1.1.1.2/24,gw=1.1.1.1")
        );
        assert_ne!(
            ipconfig("ip=1.1.1.2/24"),
            ipconfig("ip=1.1.1.2/24,gw=1.1.1.1")
        );
    }

    struct NoSecrets;
    impl crate::kinds::SecretHashes for NoSecrets {
        fn hash(&self, _: &crate::secrets::Reference) -> Result<String, String> {
            Err("none".into())
        }
    }

    fn section(pairs: &[(&str, &str)]) -> Section {
        let mut s = Section::default();
        for (k, v) in pairs {
            s.values.insert(k.to_string(), v.to_string());
        }
        s
    }

    #[test]
    fn a_lost_vm_in_sync_points_at_doctor_and_one_drifting_at_restart() {
        let mut d = Desired::new(
            &CloudInit,
            "cloudinit:vm-203",
            "pve",
            "immich",
            String::new(),
        );
        d.spec = serde_json::json!({
            "vmid": 203, "ipconfig0": "ip=10.0.0.3/24,gw=10.0.0.1", "nameserver": "10.0.0.1"
        });
        let s = section(&[
            ("rc", "0"),
            (
                "config",
                "ipconfig0: ip=10.0.0.3/24,gw=10.0.0.1\nnameserver: 10.0.0.1\n",
            ),
            ("status", "status: running\n"),
            ("agent_rc", "0"),
            (
                "agent",
                r#"[{"name":"eth0","ip-addresses":[{"ip-address-type":"ipv4","ip-address":"10.9.9.9","prefix":24}]}]"#,
            ),
        ]);
        let kind: &dyn crate::kinds::Kind = &CloudInit;
        let o = kind.observe(&d, &s, &NoSecrets).unwrap();
        let v = kind.compare(&d, &o);
        assert_eq!(v, Verdict::InSync);
        let seen = seen_from_pve("immich", &d, &v, Some(&o));
        assert_eq!(seen.status.as_deref(), Some("running"));
        assert_eq!(seen.agent_addresses, Some(vec!["10.9.9.9/24".to_string()]));
        assert_eq!(seen.run, "spine doctor immich");
        assert!(
            seen.reason
                .contains("in sync with the registry, yet the VM is reachable on none"),
            "{seen:?}"
        );
        let drift = Verdict::Drift {
            action: Action::Change,
            reason: String::new(),
            diff: None,
        };
        assert_eq!(
            seen_from_pve("immich", &d, &drift, Some(&o)).run,
            "spine apply --restart-vms"
        );
        let unknown = Verdict::Unknown {
            reason: "pve unreachable".into(),
        };
        let seen = seen_from_pve("immich", &d, &unknown, None);
        assert!(
            seen.reason
                .contains("pve could not be asked either: pve unreachable"),
            "{seen:?}"
        );
        assert_eq!(seen.status, None);
    }
}
