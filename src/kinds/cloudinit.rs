//! cloud-init: the Proxmox settings (`ipconfig0`, `nameserver`) that
//! regenerate a VM's netplan file. They live on the Proxmox host (read with
//! `qm config VMID`): GAP-OP-094 was these drifting while nobody looked.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Action, Desired, Kind, Observed, SecretHashes, Verdict, text_diff};
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

impl Kind for CloudInit {
    fn name(&self) -> &'static str {
        "cloudinit"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
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
        Ok(vec![
            Desired::new(
                self,
                format!("cloudinit:vm-{vmid}"),
                pve,
                cx.host_id,
                content,
            )
            .arg("vmid", vmid.to_string())
            .arg("ipconfig0", ipconfig0)
            .arg("nameserver", nameserver),
        ])
    }

    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError> {
        shell::render(
            "kinds/cloudinit/read.sh",
            minijinja::context! { vmid => d.get("vmid") },
        )
    }

    fn observe(&self, d: &Desired, s: &Section, _: &dyn SecretHashes) -> Observed {
        if let Some(u) = s.get("unknown") {
            return Err(u.to_string());
        }
        let config = s.get("config").unwrap_or_default();
        if s.get("rc") != Some("0") {
            return Err(format!(
                "`qm config {}` failed: {}",
                d.get("vmid"),
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
        Ok(json!({
            "ipconfig0": fields.get("ipconfig0"),
            "nameserver": fields.get("nameserver"),
            "pending": pending,
        }))
    }

    fn compare(&self, d: &Desired, actual: &serde_json::Value) -> Verdict {
        let have_ip = actual["ipconfig0"].as_str().unwrap_or_default();
        let have_ns = actual["nameserver"].as_str().unwrap_or_default();
        let mut reasons = Vec::new();
        if ipconfig(have_ip) != ipconfig(d.get("ipconfig0")) {
            reasons.push(format!(
                "ipconfig0 is `{have_ip}`, should be `{}`",
                d.get("ipconfig0")
            ));
        }
        if nameservers(have_ns) != nameservers(d.get("nameserver")) {
            reasons.push(format!(
                "nameserver is `{have_ns}`, should be `{}`",
                d.get("nameserver")
            ));
        }
        let pending: Vec<&str> = actual["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if reasons.is_empty() && !pending.is_empty() {
            reasons.push(format!(
                "{} set but not yet on VM {}'s cloud-init drive (`qm cloudinit pending`)",
                pending.join(", "),
                d.get("vmid")
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
                vmid = d.get("vmid")
            ),
            diff: text_diff(&format!("qm config {}", d.get("vmid")), &have, &d.content),
        }
    }

    fn apply(
        &self,
        d: &Desired,
        _: &serde_json::Value,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        let mut c = super::Change::new(shell::render(
            "kinds/cloudinit/apply.sh",
            minijinja::context! {
                vmid => d.get("vmid"),
                ipconfig0 => d.get("ipconfig0"),
                nameserver => d.get("nameserver"),
            },
        )?);
        c.note = Some(format!(
            "set on the Proxmox host; VM {} picks it up only when restarted from there (`spine apply --restart-vms`)",
            d.get("vmid")
        ));
        Ok(c)
    }
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
}
