//! tailscale: the node is alive (BackendState `Running`, logged in,
//! `Self.Online`, holding the registry's `tailscale_ip`), and its hostname
//! and DNS preference (`tailscale set`). Read from `tailscale status --json`
//! and `tailscale debug prefs` (`CorpDNS` is accept-dns). A stopped node is
//! brought up (`tailscale up`); a logged-out one, or one holding another
//! address, is reported with what to run: spine never holds an auth key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Action, Desired, SecretHashes, TypedKind, Verdict, text_diff};
use crate::gather::script::Section;
use crate::render::{RenderCx, RenderError};
use crate::shell::{self, Script, ScriptError};

pub struct TailscaleKind;

/// What the registry wants of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub hostname: String,
    /// The host's `tailscale_ip`, when the registry gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tailscale_ip: Option<String>,
    /// `tailscale set --accept-dns`, when the registry sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_dns: Option<bool>,
}

/// What `tailscale status --json` and `tailscale debug prefs` say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// `BackendState`: `Running`, `Stopped`, `NeedsLogin`, ...
    pub backend_state: Option<String>,
    /// `Self.Online`.
    pub online: Option<bool>,
    pub ips: Vec<String>,
    pub hostname: Option<String>,
    /// `CorpDNS` of the prefs.
    pub accept_dns: Option<bool>,
}

impl TypedKind for TailscaleKind {
    type Spec = Spec;
    type Facts = Facts;

    fn name(&self) -> &'static str {
        "tailscale"
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, Spec)>, RenderError> {
        let Some(ts) = cx.host.desired.as_ref().and_then(|d| d.tailscale.as_ref()) else {
            return Ok(Vec::new());
        };
        let ctx = minijinja::context! { tailscale => minijinja::value::Serde(ts) };
        let content = cx.templates.render("tailscale/prefs.yaml.j2", ctx)?;
        let d = Desired::new(self, "tailscale:prefs", cx.host_id, cx.host_id, content);
        let spec = Spec {
            hostname: ts.hostname.clone(),
            tailscale_ip: cx.host.tailscale_ip.clone(),
            accept_dns: ts.accept_dns,
        };
        Ok(vec![(d, spec)])
    }

    fn read_script(&self, _: &Desired, _: &Spec) -> Result<Script, ScriptError> {
        shell::render("kinds/tailscale/read.sh", minijinja::context! {})
    }

    fn observe(
        &self,
        _: &Desired,
        _: &Spec,
        s: &Section,
        _: &dyn SecretHashes,
    ) -> Result<Facts, String> {
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
        let ips = status["TailscaleIPs"]
            .as_array()
            .or_else(|| me["TailscaleIPs"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Facts {
            backend_state: status["BackendState"].as_str().map(String::from),
            online: me["Online"].as_bool(),
            ips,
            hostname,
            accept_dns: prefs.as_ref().and_then(|p| p["CorpDNS"].as_bool()),
        })
    }

    fn compare(&self, d: &Desired, spec: &Spec, actual: &Facts) -> Verdict {
        let mut reasons = alive(spec, actual);
        let have_name = actual.hostname.as_deref().unwrap_or("(none)");
        if have_name != spec.hostname {
            reasons.push(format!(
                "hostname is `{have_name}`, should be `{}`",
                spec.hostname
            ));
        }
        if let Some(want) = spec.accept_dns {
            match actual.accept_dns {
                Some(have) if have != want => {
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
            actual
                .accept_dns
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
        _: &Desired,
        spec: &Spec,
        actual: &Facts,
        _: &dyn crate::secrets::Provider,
    ) -> Result<super::Change, super::KindError> {
        if let Some(why) = needs_operator(spec, actual) {
            return Err(super::KindError::NeedsOperator(why));
        }
        let script = shell::render(
            "kinds/tailscale/apply.sh",
            minijinja::context! {
                up => actual.backend_state.as_deref() != Some("Running") || actual.online != Some(true),
                hostname => &spec.hostname,
                accept_dns => spec.accept_dns.map(|a| a.to_string()),
            },
        )?;
        Ok(super::Change::new(script))
    }
}

/// What keeps the node from being alive, each with what apply or the
/// operator does about it.
fn alive(spec: &Spec, actual: &Facts) -> Vec<String> {
    let state = actual.backend_state.as_deref().unwrap_or("(none)");
    let mut out = Vec::new();
    match state {
        "Running" if actual.online != Some(true) => {
            out.push("the node is Running but not online (the tailnet does not see it; apply runs `tailscale up`)".into());
        }
        "Stopped" => out.push(
            "the node is Stopped (`tailscale down`): apply brings it up (`tailscale up`)".into(),
        ),
        _ => {}
    }
    if let Some(why) = needs_operator(spec, actual) {
        out.push(why);
    }
    out
}

/// What apply cannot do: log a node in (that takes an auth key, which
/// spine never holds) or give it another address.
fn needs_operator(spec: &Spec, actual: &Facts) -> Option<String> {
    match actual.backend_state.as_deref().unwrap_or("Running") {
        "NeedsLogin" => {
            return Some(format!(
                "the node is logged out (NeedsLogin): log it in on the host with an auth key from your secrets provider, never written down: `sudo tailscale up --auth-key=\"$(infisical secrets get TS_AUTHKEY --plain)\" --hostname={}` (or `sudo tailscale up` and open the URL it prints); spine holds no auth key",
                shell::quote(&spec.hostname)
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
    let want = spec.tailscale_ip.as_deref().unwrap_or_default();
    let ips = &actual.ips;
    if !want.is_empty() && !ips.is_empty() && !ips.iter().any(|i| i == want) {
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
    use crate::kinds::Kind;

    fn desired() -> Desired {
        Desired::new(
            &TailscaleKind,
            "tailscale:prefs",
            "h",
            "h",
            "hostname: immich-1\n".into(),
        )
        .with_spec(
            &TailscaleKind,
            &Spec {
                hostname: "immich-1".into(),
                tailscale_ip: Some("100.64.0.7".into()),
                accept_dns: None,
            },
        )
        .unwrap()
    }

    fn actual(state: &str, online: bool, ip: &str) -> Value {
        serde_json::json!({"backend_state": state, "online": online, "ips": [ip], "hostname": "immich-1"})
    }

    #[test]
    fn alive_running_online_with_its_address() {
        let d = desired();
        let kind: &dyn Kind = &TailscaleKind;
        assert_eq!(
            kind.compare(&d, &actual("Running", true, "100.64.0.7")),
            Verdict::InSync
        );
        let stopped = actual("Stopped", false, "100.64.0.7");
        let Verdict::Drift { reason, .. } = kind.compare(&d, &stopped) else {
            panic!()
        };
        assert!(
            reason.contains("Stopped") && reason.contains("tailscale up"),
            "{reason}"
        );
        let provider = crate::secrets::env::EnvProvider;
        let c = kind.apply(&d, &stopped, &provider).unwrap();
        assert!(
            c.script.as_str().contains("\ntailscale up\n"),
            "{}",
            c.script.as_str()
        );
        let out = actual("NeedsLogin", false, "100.64.0.7");
        let Err(crate::kinds::KindError::NeedsOperator(e)) = kind.apply(&d, &out, &provider) else {
            panic!("a logged-out node is the operator's to log in")
        };
        assert!(
            e.contains("NeedsLogin") && e.contains("--auth-key=\"$(") && !e.contains("tskey-"),
            "{e}"
        );
        let moved = actual("Running", true, "100.64.0.9");
        let Verdict::Drift { reason, .. } = kind.compare(&d, &moved) else {
            panic!()
        };
        assert!(
            reason.contains("100.64.0.9") && reason.contains("100.64.0.7"),
            "{reason}"
        );
    }
}
