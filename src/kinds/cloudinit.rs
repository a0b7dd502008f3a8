//! cloud-init: the Proxmox settings (`ipconfig0`, `nameserver`) that
//! regenerate a VM's netplan file. They live on the Proxmox host (read with
//! `qm config VMID`): GAP-OP-094 was these drifting while nobody looked.

use super::{Desired, Kind};
use crate::model::NetworkOwner;
use crate::render::{RenderCx, RenderError};

pub struct CloudInit;

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
            .render("cloudinit/nameserver.j2", ctx.clone())?
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
}
