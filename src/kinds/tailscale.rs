//! tailscale: the node's hostname and DNS preference (`tailscale set`).

use super::{Desired, Kind};
use crate::render::{RenderCx, RenderError};

pub struct TailscaleKind;

impl Kind for TailscaleKind {
    fn name(&self) -> &'static str {
        "tailscale"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        let Some(ts) = cx.host.desired.as_ref().and_then(|d| d.tailscale.as_ref()) else {
            return Ok(Vec::new());
        };
        let content = cx.templates.render(
            "tailscale/prefs.yaml.j2",
            minijinja::context! { tailscale => minijinja::value::Serde(ts) },
        )?;
        let mut d = Desired::new(self, "tailscale:prefs", cx.host_id, cx.host_id, content)
            .arg("hostname", &ts.hostname);
        if let Some(a) = ts.accept_dns {
            d = d.arg("accept_dns", a.to_string());
        }
        Ok(vec![d])
    }
}
