//! tailscale: the node is alive (BackendState `Running`, logged in,
//! `Self.Online`, holding the registry's `tailscale_ip`), and its hostname
//! and DNS preference (`tailscale set`). Read from `tailscale status --json`
//! and `tailscale debug prefs` (`CorpDNS` is accept-dns). A stopped node is
//! brought up (`tailscale up`); a logged-out one, or one holding another
//! address, is reported with what to run: spine never holds an auth key.

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
        if let Some(ip) = &cx.host.tailscale_ip {
            d = d.arg("tailscale_ip", ip);
        }
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
        let ips: Vec<&str> = status["TailscaleIPs"]
            .as_array()
            .or_else(|| me["TailscaleIPs"].as_array())
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Ok(json!({
            "backend_state": status["BackendState"],
            "online": me["Online"].as_bool(),
            "ips": ips,
            "hostname": hostname,
            "accept_dns": prefs.as_ref().and_then(|p| p["CorpDNS"].as_bool()),
        }))
    }

    fn compare(&self, d: &Desired, actual: &Value) -> Verdict {
        let mut reasons = alive(d, actual);
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
        actual: &Value,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, String> {
        let state = actual["backend_state"].as_str().unwrap_or_default();
        if let Some(why) = needs_operator(d, actual) {
            return Err(why);
        }
        let script = shell::render(
            "kinds/tailscale/apply.sh",
            minijinja::context! {
                up => state != "Running" || actual["online"] != Value::Bool(true),
                hostname => d.get("hostname"),
                accept_dns => d.args.get("accept_dns").cloned(),
            },
        )?;
        Ok(super::Change::new(script))
    }
}

/// What keeps the node from being alive, each with what apply or the
/// operator does about it.
fn alive(d: &Desired, actual: &Value) -> Vec<String> {
    let state = actual["backend_state"].as_str().unwrap_or("(none)");
    let mut out = Vec::new();
    match state {
        "Running" if actual["online"] != Value::Bool(true) => {
            out.push("the node is Running but not online (the tailnet does not see it; apply runs `tailscale up`)".into());
        }
        "Stopped" => out.push(
            "the node is Stopped (`tailscale down`): apply brings it up (`tailscale up`)".into(),
        ),
        _ => {}
    }
    if let Some(why) = needs_operator(d, actual) {
        out.push(why);
    }
    out
}

/// What apply cannot do: log a node in (that takes an auth key, which
/// spine never holds) or give it another address.
fn needs_operator(d: &Desired, actual: &Value) -> Option<String> {
    match actual["backend_state"].as_str().unwrap_or("Running") {
        "NeedsLogin" => {
            return Some(format!(
                "the node is logged out (NeedsLogin): log it in on the host with an auth key from your secrets provider, never written down: `sudo tailscale up --auth-key=\"$(infisical secrets get TS_AUTHKEY --plain)\" --hostname={}` (or `sudo tailscale up` and open the URL it prints); spine holds no auth key",
                shell::quote(d.get("hostname"))
            ));
        }
        "NeedsMachineAuth" => {
            return Some("the node waits for approval (NeedsMachineAuth): approve it in the Tailscale admin console (Machines)".into());
        }
        "Running" | "Stopped" => {}
        other => {
            return Some(format!(
                "the node's BackendState is {other}, not Running: check `tailscale status` on the host"
            ));
        }
    }
    let want = d.get("tailscale_ip");
    let ips: Vec<&str> = actual["ips"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !want.is_empty() && !ips.is_empty() && !ips.contains(&want) {
        return Some(format!(
            "the node holds {}, the registry's tailscale_ip is {want}: the tailnet assigns the address, so fix the registry (or the node's address in the admin console)",
            ips.join(", ")
        ));
    }
    None
}

fn first_line(s: Option<&str>) -> String {
    s.and_then(|t| t.lines().next())
        .unwrap_or("(no output)")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        let kind: &dyn Kind = &TailscaleKind;
        Desired::new(
            kind,
            "tailscale:prefs",
            "h",
            "h",
            "hostname: immich-1\n".into(),
        )
        .arg("hostname", "immich-1")
        .arg("tailscale_ip", "100.64.0.7")
    }

    fn actual(state: &str, online: bool, ip: &str) -> Value {
        json!({"backend_state": state, "online": online, "ips": [ip], "hostname": "immich-1"})
    }

    #[test]
    fn alive_running_online_with_its_address() {
        let d = desired();
        assert_eq!(
            TailscaleKind.compare(&d, &actual("Running", true, "100.64.0.7")),
            Verdict::InSync
        );
        let stopped = actual("Stopped", false, "100.64.0.7");
        let Verdict::Drift { reason, .. } = TailscaleKind.compare(&d, &stopped) else {
            panic!()
        };
        assert!(
            reason.contains("Stopped") && reason.contains("tailscale up"),
            "{reason}"
        );
        let provider = crate::secrets::env::EnvProvider;
        let c = TailscaleKind.apply(&d, &stopped, &provider).unwrap();
        assert!(
            c.script.as_str().contains("\ntailscale up\n"),
            "{}",
            c.script.as_str()
        );
        let out = actual("NeedsLogin", false, "100.64.0.7");
        let e = TailscaleKind.apply(&d, &out, &provider).unwrap_err();
        assert!(
            e.contains("NeedsLogin") && e.contains("--auth-key=\"$(") && !e.contains("tskey-"),
            "{e}"
        );
        let moved = actual("Running", true, "100.64.0.9");
        let Verdict::Drift { reason, .. } = TailscaleKind.compare(&d, &moved) else {
            panic!()
        };
        assert!(
            reason.contains("100.64.0.9") && reason.contains("100.64.0.7"),
            "{reason}"
        );
    }
}
