//! netplan: the guest's network file, in the shape cloud-init writes it.
//! Compared by meaning (parsed YAML), mode 0600 and owner root.

use super::{Desired, Kind, Observed, SecretHashes, Verdict};
use crate::gather::script::Section;
use crate::render::{RenderCx, RenderError};
use crate::shell::{self, Script, ScriptError};

pub struct Netplan;

impl Kind for Netplan {
    fn name(&self) -> &'static str {
        "netplan"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        let Some(net) = cx.host.desired.as_ref().and_then(|d| d.network.as_ref()) else {
            return Ok(Vec::new());
        };
        let ctx = minijinja::context! {
            host => minijinja::context! { id => cx.host_id },
            network => minijinja::value::Serde(net),
        };
        let content = cx.templates.render("netplan/cloud-init.yaml.j2", ctx)?;
        let d = Desired::new(
            self,
            format!("netplan:{}", net.file),
            cx.host_id,
            cx.host_id,
            content,
        )
        .file(&net.file, 0o600, "root")
        .arg("interface", &net.interface)
        .arg("address", &net.address)
        .arg("kind", format!("{:?}", net.kind).to_lowercase());
        // cloud-init generates this file: spine never edits it (the fix is at the
        // hypervisor, handed to the VM by a restart: `spine apply --restart-vms`).
        Ok(vec![
            if net.owner == crate::model::NetworkOwner::CloudInit {
                d.arg("owner", "cloud-init")
            } else {
                d
            },
        ])
    }

    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError> {
        super::read_file_script(d)
    }

    fn observe(&self, _d: &Desired, s: &Section, _: &dyn SecretHashes) -> Observed {
        super::observe_yaml_file(s)
    }

    fn compare(&self, d: &Desired, actual: &serde_json::Value) -> Verdict {
        super::compare_yaml_file(d, actual)
    }

    fn apply(
        &self,
        d: &Desired,
        _: &serde_json::Value,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        let mut c = super::Change::new(super::put_file(d, &d.content)?);
        let kind = d.get("kind");
        if kind != "ethernet" {
            c.needs_force = Some(format!("changing a {kind} needs --force"));
        }
        let none = minijinja::context! {};
        c.lifecycle = super::Lifecycle::Confirmed(super::Confirmed {
            confirm_address: d
                .get("address")
                .split('/')
                .next()
                .unwrap_or_default()
                .into(),
            files: d.path.iter().cloned().collect(),
            check: shell::render("kinds/netplan/check.sh", none.clone())?,
            activate: shell::render("kinds/netplan/activate.sh", none)?,
        });
        Ok(c)
    }
}
