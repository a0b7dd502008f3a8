//! netplan: the guest's network file, in the shape cloud-init writes it.

use super::{Desired, Kind};
use crate::render::{RenderCx, RenderError};

pub struct Netplan;

impl Kind for Netplan {
    fn name(&self) -> &'static str {
        "netplan"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        let Some(net) = cx.host.desired.as_ref().and_then(|d| d.network.as_ref()) else {
            return Ok(Vec::new());
        };
        let content = cx.templates.render(
            "netplan/cloud-init.yaml.j2",
            minijinja::context! { host => minijinja::context!{ id => cx.host_id }, network => minijinja::value::Serde(net) },
        )?;
        Ok(vec![
            Desired::new(
                self,
                format!("netplan:{}", net.file),
                cx.host_id,
                cx.host_id,
                content,
            )
            .file(&net.file, 0o600, "root")
            .arg("interface", &net.interface)
            .arg("address", &net.address)
            .arg("kind", format!("{:?}", net.kind).to_lowercase()),
        ])
    }
}
