//! tailscale: the node's hostname and DNS preference (`tailscale set`).
//! Read from `tailscale status --json` (`Self.HostName`) and
//! `tailscale debug prefs` (`CorpDNS` is accept-dns).

use serde_json::{Value, json};

use super::{Action, Desired, Kind, Observed, SecretHashes, Verdict, text_diff};
use crate::gather::script::Section;
use crate::render::{RenderCx, RenderError};
use crate::shell::{self, Script, ScriptError};

pub struct TailscaleKind;

impl Kind for TailscaleKind {
    fn name(&self) -> &'static str {
        "tailscale"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        let Some(ts) = cx.host.desired.as_ref().and_then(|d| d.tailscale.as_ref()) else {
            return Ok(Vec::new());
        };
        let ctx = minijinja::context! { tailscale => minijinja::value::Serde(ts) };
        let content = cx.templates.render("tailscale/prefs.yaml.j2", ctx)?;
        let mut d = Desired::new(self, "tailscale:prefs", cx.host_id, cx.host_id, content)
            .arg("hostname", &ts.hostname);
        if let Some(a) = ts.accept_dns {
            d = d.arg("accept_dns", a.to_string());
        }
        Ok(vec![d])
    }

    fn read_script(&self, _d: &Desired) -> Result<Script, ScriptError> {
        shell::render("kinds/tailscale/read.sh", minijinja::context! {})
    }

    fn observe(&self, _d: &Desired, s: &Section, _: &dyn SecretHashes) -> Observed {
        if let Some(u) = s.get("unknown") {
            return Err(u.to_string());
        }
        let status: Value =
            serde_json::from_str(s.get("status").unwrap_or_default()).map_err(|_| {
                format!(
                    "`tailscale status --json` did not answer JSON: {}",
                    first_line(s.get("status"))
                )
            })?;
        let me = &status["Self"];
        let hostname = me["HostName"].as_str().map(str::to_string).or_else(|| {
            me["DNSName"]
                .as_str()
                .and_then(|d| d.split('.').next())
                .map(str::to_string)
        });
        let prefs: Option<Value> = s.get("prefs").and_then(|p| serde_json::from_str(p).ok());
        Ok(json!({
            "backend_state": status["BackendState"],
            "hostname": hostname,
            "accept_dns": prefs.as_ref().and_then(|p| p["CorpDNS"].as_bool()),
        }))
    }

    fn compare(&self, d: &Desired, actual: &Value) -> Verdict {
        let mut reasons = Vec::new();
        let have_name = actual["hostname"].as_str().unwrap_or("(none)");
        if have_name != d.get("hostname") {
            reasons.push(format!(
                "hostname is `{have_name}`, should be `{}`",
                d.get("hostname")
            ));
        }
        if let Some(want) = d.args.get("accept_dns") {
            match actual["accept_dns"].as_bool() {
                Some(have) if have.to_string() != *want => {
                    reasons.push(format!("accept-dns is {have}, should be {want}"))
                }
                None => {
                    return Verdict::Unknown {
                        reason: "`tailscale debug prefs` gave no CorpDNS (accept-dns) setting"
                            .into(),
                    };
                }
                _ => {}
            }
        }
        if reasons.is_empty() {
            return Verdict::InSync;
        }
        let have = format!(
            "hostname: {have_name}\n{}",
            actual["accept_dns"]
                .as_bool()
                .map(|a| format!("accept_dns: {a}\n"))
                .unwrap_or_default()
        );
        Verdict::Drift {
            action: Action::Change,
            reason: reasons.join("; "),
            diff: text_diff("tailscale prefs", &have, &d.content),
        }
    }

    fn apply(
        &self,
        d: &Desired,
        _: &Value,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        let script = shell::render(
            "kinds/tailscale/apply.sh",
            minijinja::context! {
                hostname => d.get("hostname"),
                accept_dns => d.args.get("accept_dns").cloned(),
            },
        )?;
        Ok(super::Change::new(script))
    }
}

fn first_line(s: Option<&str>) -> String {
    s.and_then(|t| t.lines().next())
        .unwrap_or("(no output)")
        .chars()
        .take(200)
        .collect()
}
