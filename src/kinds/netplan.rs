//! netplan: the guest's network as the host sees it. Three resources per
//! managed interface:
//! - the managed file, in the shape cloud-init writes it, compared by
//!   meaning (parsed YAML), mode 0600 and owner root;
//! - the other files netplan reads that configure the interface too
//!   (`others`, planned for removal);
//! - the live addresses and default route (`live`: right on disk but not
//!   applied is drift of its own).
//!
//! Each change is [`Lifecycle::Confirmed`](super::Lifecycle::Confirmed):
//! the engine activates the changes of one run together and rolls them
//! back together.

mod config;
mod live;
mod others;

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
        let common = |d: Desired| {
            d.arg("interface", &net.interface)
                .arg("address", &net.address)
                .arg("kind", format!("{:?}", net.kind).to_lowercase())
        };
        let d = common(
            Desired::new(
                self,
                format!("netplan:{}", net.file),
                cx.host_id,
                cx.host_id,
                content,
            )
            .file(&net.file, 0o600, "root"),
        );
        let iface = &net.interface;
        let mac = net.mac.as_deref().unwrap_or_default().to_lowercase();
        let others = common(Desired::new(
            self,
            format!("netplan:{iface}/other-files"),
            cx.host_id,
            cx.host_id,
            format!("no netplan file but {} configures {iface}\n", net.file),
        ))
        .arg("part", "others")
        .arg("managed", &net.file)
        .arg("mac", &mac);
        let live = common(Desired::new(
            self,
            format!("netplan:{iface}/live"),
            cx.host_id,
            cx.host_id,
            format!(
                "{iface} address {}\n{iface} default via {}\n",
                net.address, net.gateway
            ),
        ))
        .arg("part", "live")
        .arg("gateway", &net.gateway)
        .arg("mac", &mac);
        // cloud-init generates the managed file: spine never edits it (the fix
        // is at the hypervisor, handed to the VM by a restart: `spine apply
        // --restart-vms`).
        let d = if net.owner == crate::model::NetworkOwner::CloudInit {
            d.arg("owner", "cloud-init")
        } else {
            d
        };
        Ok(vec![d, others, live])
    }

    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError> {
        let files = || shell::render("kinds/netplan/files.sh", minijinja::context! {});
        match d.get("part") {
            "others" => shell::render(
                "kinds/netplan/others-read.sh",
                minijinja::context! { files => files()? },
            ),
            "live" => shell::render(
                "kinds/netplan/live-read.sh",
                minijinja::context! {
                    interface => d.get("interface"),
                    family => live::ip_family(d.get("address")),
                    files => files()?,
                },
            ),
            _ => super::read_file_script(d),
        }
    }

    fn observe(&self, d: &Desired, s: &Section, _: &dyn SecretHashes) -> Observed {
        match d.get("part") {
            "others" => others::observe(d, s),
            "live" => live::observe(d, s),
            _ => super::observe_yaml_file(s),
        }
    }

    fn compare(&self, d: &Desired, actual: &serde_json::Value) -> Verdict {
        match d.get("part") {
            "others" => others::compare(d, actual),
            "live" => live::compare(d, actual),
            _ => super::compare_yaml_file(d, actual),
        }
    }

    fn apply(
        &self,
        d: &Desired,
        actual: &serde_json::Value,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        let (script, files) = match d.get("part") {
            "others" => others::remove(actual)?,
            "live" => (
                shell::render(
                    "kinds/netplan/live-apply.sh",
                    minijinja::context! { interface => d.get("interface") },
                )?,
                Vec::new(),
            ),
            _ => (
                super::put_file(d, &d.content)?,
                d.path.iter().cloned().collect(),
            ),
        };
        let mut c = super::Change::new(script);
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
            files,
            check: shell::render("kinds/netplan/check.sh", none.clone())?,
            activate: shell::render("kinds/netplan/activate.sh", none)?,
        });
        Ok(c)
    }
}
