//! What the registry lets doctor check beyond the paths themselves, and the
//! hints built from it: a VM's cloud-init config on its Proxmox host
//! (`qm config VMID`), the guest agent, and, over a path that works, the
//! host's Tailscale state and addresses.

use serde::Serialize;
use serde_json::Value;

use super::PathReport;
use super::probe::{self, StepStatus};
use crate::gather::ssh::{self, FailKind, Route, SshOptions};
use crate::model::{Host, ServiceRegistry, Via};
use crate::shell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Ok,
    Differs,
    Unknown,
}

/// One fact checked against the registry.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `cloud-init`, `guest-agent`, `guest-agent-path`, `tailscale` or `addresses`.
    pub topic: &'static str,
    pub status: FindingStatus,
    /// Where it was read: `qm config 203 on pve (via ...)`.
    pub source: String,
    pub detail: String,
    /// The value seen (`ipconfig0`, Tailscale HostName...), when one was read.
    pub seen: Option<String>,
    pub want: Option<String>,
}

fn finding(topic: &'static str, status: FindingStatus, source: &str, detail: String) -> Finding {
    Finding {
        topic,
        status,
        source: source.to_string(),
        detail,
        seen: None,
        want: None,
    }
}

fn ipconfig_field<'a>(ipconfig: &'a str, key: &str) -> Option<&'a str> {
    ipconfig
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

/// `qm config VMID`, run on the Proxmox host.
pub fn qm_config_script(vmid: u32) -> Result<shell::Script, shell::ScriptError> {
    shell::render(
        "doctor/qm-config.sh",
        minijinja::context! { vmid => vmid.to_string(), agent_mark => AGENT_MARK },
    )
}

/// The host's Tailscale status and global IPv4 addresses.
pub fn host_facts_script() -> Result<shell::Script, shell::ScriptError> {
    shell::render("doctor/host-facts.sh", minijinja::context! {})
}

/// For a VM with a Proxmox host: read `qm config VMID` there over the first
/// path of the Proxmox host that works, and compare `ipconfig0` with the
/// registry's network.
pub async fn proxmox(reg: &ServiceRegistry, host: &str, opts: &SshOptions) -> Vec<Finding> {
    let Some(h) = reg.hosts.get(host) else {
        return Vec::new();
    };
    let (Some(vmid), Some(pve)) = (h.vmid, h.proxmox_host.as_deref()) else {
        return Vec::new();
    };
    let want = h.desired.as_ref().and_then(|d| d.network.as_ref());
    // `cmd` is for people; the script is rendered from its file.
    let cmd = format!("qm config {vmid}");
    let script = match qm_config_script(vmid) {
        Ok(s) => s,
        Err(e) => {
            return vec![finding(
                "cloud-init",
                FindingStatus::Unknown,
                pve,
                e.to_string(),
            )];
        }
    };
    let mut tried = Vec::new();
    for r in ssh::routes(reg, pve) {
        let run = probe::ssh_run(&r, opts, script.as_str()).await;
        if !run.works() {
            let why = run
                .steps
                .iter()
                .find(|s| s.status == StepStatus::Fail)
                .map_or_else(String::new, |s| s.detail.clone());
            tried.push(format!("{}: {why}", r.describe()));
            continue;
        }
        let source = format!("`{cmd}` on {pve} (via {})", r.describe());
        let (config, agent_out) = run
            .stdout
            .split_once(AGENT_MARK)
            .unwrap_or((&run.stdout, ""));
        let mut ip0 = None;
        let mut agent = None;
        for line in config.lines() {
            match line.split_once(':') {
                Some(("ipconfig0", v)) => ip0 = Some(v.trim().to_string()),
                Some(("agent", v)) => agent = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let enabled = agent.as_deref().is_some_and(agent_on);
        let mut out = vec![
            cloud_init(&source, ip0, want),
            guest_agent(&source, vmid, agent),
        ];
        if enabled {
            let source = format!(
                "`qm guest cmd {vmid} network-get-interfaces` on {pve} (via {})",
                r.describe()
            );
            out.push(agent_path(&source, agent_out, want));
        }
        return out;
    }
    let detail = if tried.is_empty() {
        format!("the registry gives no access path for the Proxmox host {pve}")
    } else {
        format!("could not run `{cmd}` on {pve}: {}", tried.join("; "))
    };
    vec![finding("cloud-init", FindingStatus::Unknown, pve, detail)]
}

fn cloud_init(source: &str, ip0: Option<String>, want: Option<&crate::model::Network>) -> Finding {
    let Some(net) = want else {
        let d = format!(
            "ipconfig0 is `{}`; the registry has no desired.network to compare",
            ip0.unwrap_or_default()
        );
        return finding("cloud-init", FindingStatus::Unknown, source, d);
    };
    let want_s = format!("ip={},gw={}", net.address, net.gateway);
    let Some(ip0) = ip0 else {
        let mut f = finding(
            "cloud-init",
            FindingStatus::Differs,
            source,
            format!("the VM has no ipconfig0; the registry says `{want_s}`"),
        );
        f.want = Some(want_s);
        return f;
    };
    let same = ipconfig_field(&ip0, "ip") == Some(net.address.as_str())
        && ipconfig_field(&ip0, "gw") == Some(net.gateway.as_str());
    let (status, detail) = if same {
        (
            FindingStatus::Ok,
            format!("ipconfig0 `{ip0}` agrees with the registry"),
        )
    } else {
        (
            FindingStatus::Differs,
            format!("ipconfig0 is `{ip0}`, the registry says `{want_s}`"),
        )
    };
    let mut f = finding("cloud-init", status, source, detail);
    f.seen = Some(ip0);
    f.want = Some(want_s);
    f
}

const AGENT_MARK: &str = "==spine-guest-agent==";

fn agent_on(a: &str) -> bool {
    a.starts_with('1') || a.contains("enabled=1")
}

/// The guest agent as an access path: does it answer, and which addresses
/// does the VM really have?
fn agent_path(source: &str, out: &str, want: Option<&crate::model::Network>) -> Finding {
    let out = out.trim();
    let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(out) else {
        let why = out.lines().last().unwrap_or("no answer");
        return finding(
            "guest-agent-path",
            FindingStatus::Differs,
            source,
            format!("path through the guest agent does not work: {why}"),
        );
    };
    let have = crate::recover::agent_ipv4(&v);
    let want_addr = want.map(|n| n.address.clone());
    let status = match &want_addr {
        Some(w) if have.contains(w) => FindingStatus::Ok,
        Some(_) => FindingStatus::Differs,
        None => FindingStatus::Unknown,
    };
    let detail = format!(
        "path through the guest agent works: the VM is running and has {}{}",
        if have.is_empty() {
            "no IPv4 address".to_string()
        } else {
            have.join(", ")
        },
        match (&want_addr, status) {
            (Some(w), FindingStatus::Differs) => format!(", not the registry's {w}"),
            _ => String::new(),
        }
    );
    let mut f = finding("guest-agent-path", status, source, detail);
    f.seen = Some(have.join(", "));
    f.want = want_addr;
    f
}

fn guest_agent(source: &str, vmid: u32, agent: Option<String>) -> Finding {
    let on = agent.as_deref().is_some_and(agent_on);
    let detail = if on {
        format!(
            "the guest agent is enabled: `qm agent {vmid} network-get-interfaces` on the Proxmox host shows the addresses the VM really has"
        )
    } else {
        format!(
            "the guest agent is not enabled (`agent` is {}): Proxmox cannot tell which address the VM really has; enable it (`qm set {vmid} --agent 1`, install qemu-guest-agent in the VM)",
            agent.as_deref().unwrap_or("unset")
        )
    };
    let mut f = finding(
        "guest-agent",
        if on {
            FindingStatus::Ok
        } else {
            FindingStatus::Differs
        },
        source,
        detail,
    );
    f.seen = agent;
    f
}

/// What the host itself says, over a path that works: its Tailscale state
/// and its global IPv4 addresses, against the registry.
pub async fn on_host(
    reg: &ServiceRegistry,
    host: &str,
    route: &Route,
    index: usize,
    opts: &SshOptions,
) -> Vec<Finding> {
    let Some(h) = reg.hosts.get(host) else {
        return Vec::new();
    };
    let source = format!("on the host through path {index} ({})", route.describe());
    let script = match host_facts_script() {
        Ok(s) => s,
        Err(e) => {
            return vec![finding(
                "addresses",
                FindingStatus::Unknown,
                &source,
                e.to_string(),
            )];
        }
    };
    let run = probe::ssh_run(route, opts, script.as_str()).await;
    if !run.works() {
        return vec![finding(
            "addresses",
            FindingStatus::Unknown,
            &source,
            "a second connection over the working path failed".into(),
        )];
    }
    let (ts, ip) = run
        .stdout
        .split_once("\n==ip\n")
        .unwrap_or((&run.stdout, ""));
    let ts = ts.trim_start_matches("==ts\n");
    let mut out = Vec::new();
    if let Some(want) = h.desired.as_ref().and_then(|d| d.tailscale.as_ref()) {
        out.push(tailscale(&source, ts, &want.hostname));
    }
    if let Some(net) = h.desired.as_ref().and_then(|d| d.network.as_ref()) {
        out.push(addresses(&source, ip, &net.address));
    }
    out
}

fn tailscale(source: &str, status_json: &str, want: &str) -> Finding {
    let Ok(v) = serde_json::from_str::<Value>(status_json.trim()) else {
        return finding("tailscale", FindingStatus::Unknown, source, "`tailscale status --json` gave nothing readable: is tailscale installed and tailscaled running?".into());
    };
    let state = v["BackendState"].as_str().unwrap_or("unknown");
    let name = v["Self"]["HostName"].as_str().unwrap_or_default();
    let (status, detail) = if state != "Running" {
        (
            FindingStatus::Differs,
            format!(
                "Tailscale is {state} on the host (HostName `{name}`): run `tailscale up` there"
            ),
        )
    } else if name != want {
        (
            FindingStatus::Differs,
            format!(
                "Tailscale calls the host `{name}`, the registry says `{want}`: MagicDNS knows it only as `{name}` (fix: `tailscale set --hostname={want}`, or `spine apply`)"
            ),
        )
    } else {
        (
            FindingStatus::Ok,
            format!("Tailscale is Running as `{name}`"),
        )
    };
    let mut f = finding("tailscale", status, source, detail);
    f.seen = Some(format!("{state} {name}"));
    f.want = Some(want.to_string());
    f
}

fn addresses(source: &str, ip_out: &str, want: &str) -> Finding {
    // `2: ens18    inet 10.203.12.230/24 brd ... scope global ens18`
    let have: Vec<String> = ip_out
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = w.iter().position(|x| *x == "inet")?;
            let ifname = w.get(1)?.trim_end_matches(':');
            // Bridges of docker and friends are not the host's LAN address.
            if ["docker", "br-", "veth", "tailscale", "virbr"]
                .iter()
                .any(|p| ifname.starts_with(p))
            {
                return None;
            }
            Some(format!(
                "{} on {}",
                w.get(at + 1)?,
                w.get(1)?.trim_end_matches(':')
            ))
        })
        .collect();
    let status = if have.iter().any(|a| a.split(' ').next() == Some(want)) {
        FindingStatus::Ok
    } else if have.is_empty() {
        FindingStatus::Unknown
    } else {
        FindingStatus::Differs
    };
    let detail = match status {
        FindingStatus::Ok => format!("the host has the registry's address {want}"),
        FindingStatus::Unknown => "`ip -o -4 addr` showed no global address".into(),
        FindingStatus::Differs => format!(
            "the host has {}, not the registry's {want}",
            have.join(", ")
        ),
    };
    let mut f = finding("addresses", status, source, detail);
    f.seen = Some(have.join(", "));
    f.want = Some(want.to_string());
    f
}

fn get<'a>(found: &'a [Finding], topic: &str) -> Option<&'a Finding> {
    found.iter().find(|f| f.topic == topic)
}

/// Hints for a path that does not work: the classified failure's hint, then
/// what the registry and the findings say about it.
pub fn hints(reg: &ServiceRegistry, host: &str, p: &PathReport, found: &[Finding]) -> Vec<String> {
    let Some(kind) = p.fail_kind().filter(|_| !p.works) else {
        return Vec::new();
    };
    let h = reg.hosts.get(host).cloned().unwrap_or_default();
    let mut out = vec![kind.hint().to_string()];
    let network_trouble = matches!(
        kind,
        FailKind::Timeout | FailKind::Unreachable | FailKind::Refused
    );
    if network_trouble && matches!(p.route.via, Via::Lan | Via::Jump | Via::SshConfig) {
        out.extend(vm_hints(&h, found));
    }
    if p.route.via == Via::Tailscale {
        out.extend(tailscale_hints(&h, found));
    }
    if kind == FailKind::HostKey {
        out.push(format!(
            "see what is known: `ssh-keygen -F {}`; compare with the host's key out of band (for a VM: its console on the Proxmox host)",
            p.route.address
        ));
    }
    if kind == FailKind::AuthFailed {
        out.push(format!("the registry logs in as `{}`", p.route.user));
    }
    out
}

fn vm_hints(h: &Host, found: &[Finding]) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(vmid), Some(pve)) = (h.vmid, h.proxmox_host.as_deref()) {
        match get(found, "cloud-init") {
            Some(f) if f.status == FindingStatus::Differs => out.push(format!(
                "{}: the VM kept an old cloud-init address (GAP-OP-094). Fix it at the hypervisor: `spine apply --restart-vms` sets ipconfig0 on {pve}, rebuilds the cloud-init drive, restarts VM {vmid} and applies its resources (by hand: `qm set {vmid} --ipconfig0 {}`, `qm cloudinit update {vmid}`, `qm shutdown {vmid}`, `qm start {vmid}`)",
                f.detail,
                f.want.as_deref().unwrap_or("ip=...,gw=...")
            )),
            Some(f) if f.status == FindingStatus::Ok => out.push(format!(
                "cloud-init on {pve} agrees with the registry; check the guest's netplan and the LAN (`qm agent {vmid} network-get-interfaces`)"
            )),
            _ => out.push(format!(
                "check `qm config {vmid}` (ipconfig0) on {pve} against the registry's address"
            )),
        }
    }
    if let Some(f) = get(found, "addresses").filter(|f| f.status == FindingStatus::Differs) {
        out.push(format!("{} ({})", f.detail, f.source));
    }
    if let Some(f) = get(found, "guest-agent-path").filter(|f| f.status != FindingStatus::Ok) {
        out.push(format!("{} ({})", f.detail, f.source));
    }
    out
}

fn tailscale_hints(h: &Host, found: &[Finding]) -> Vec<String> {
    match get(found, "tailscale") {
        Some(f) if f.status != FindingStatus::Ok => vec![format!("{} ({})", f.detail, f.source)],
        Some(_) => vec!["Tailscale on the host is fine: check `tailscale status` on this machine (logged in? MagicDNS on?)".into()],
        None => {
            let name = h.desired.as_ref().and_then(|d| d.tailscale.as_ref()).map(|t| t.hostname.clone());
            vec![format!(
                "check `tailscale status` on this machine: is `{}` listed and online?{}",
                name.unwrap_or_default(),
                h.tailscale_ip.as_deref().map(|ip| format!(" (the registry's tailscale_ip is {ip})")).unwrap_or_default()
            )]
        }
    }
}
