//! What the registry lets doctor check beyond the paths themselves, and the
//! hints built from it: a VM's cloud-init config on its Proxmox host
//! (`qm config VMID`), the guest agent, and, over a path that works, the
//! host's Tailscale state and addresses.

use serde::Serialize;
use serde_json::Value;

use super::PathReport;
use super::trace::{self, Step, StepStatus};
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
    /// `cloud-init`, `tailscale` or `addresses`.
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

/// The guest agent as an access path: how far it got.
#[derive(Debug, Clone)]
pub struct AgentAnswer {
    pub describe: String,
    pub target: String,
    pub steps: Vec<Step>,
    pub works: bool,
    pub hints: Vec<String>,
}

/// The parts of the qm-config script's output.
#[derive(Debug, Default)]
struct QmOut<'a> {
    config: &'a str,
    status: &'a str,
    addresses: &'a str,
    exec: &'a str,
}

fn split_qm(out: &str) -> QmOut<'_> {
    let mut q = QmOut {
        config: out,
        ..QmOut::default()
    };
    let mut parts = out.split(AGENT_MARK);
    q.config = parts.next().unwrap_or_default();
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        match name.trim() {
            "status" => q.status = body,
            "addresses" => q.addresses = body,
            "exec" => q.exec = body,
            _ => {}
        }
    }
    q
}

/// For a VM with a Proxmox host: read `qm config VMID` there over the first
/// path of the Proxmox host that works, and compare `ipconfig0` with the
/// registry's network; then try the guest agent as an access path.
pub async fn proxmox(
    reg: &ServiceRegistry,
    host: &str,
    opts: &SshOptions,
) -> (Vec<Finding>, Option<AgentAnswer>) {
    let Some(h) = reg.hosts.get(host) else {
        return (Vec::new(), None);
    };
    let (Some(vmid), Some(pve)) = (h.vmid, h.proxmox_host.as_deref()) else {
        return (Vec::new(), None);
    };
    let want = h.desired.as_ref().and_then(|d| d.network.as_ref());
    // `cmd` is for people; the script is rendered from its file.
    let cmd = format!("qm config {vmid}");
    let mut agent = AgentAnswer {
        describe: format!("guest agent of VM {vmid} on {pve}"),
        target: format!("qm guest exec {vmid} on {pve}"),
        steps: Vec::new(),
        works: false,
        hints: Vec::new(),
    };
    let script = match qm_config_script(vmid) {
        Ok(s) => s,
        Err(e) => {
            agent.steps = agent_not_reached(FailKind::Other, e.to_string());
            return (
                vec![finding(
                    "cloud-init",
                    FindingStatus::Unknown,
                    pve,
                    e.to_string(),
                )],
                Some(agent),
            );
        }
    };
    let mut tried = Vec::new();
    let mut kind = FailKind::Other;
    for r in ssh::routes(reg, pve) {
        let run = trace::ssh_run(&r, opts, script.as_str()).await;
        if !run.works() {
            let failed = run.steps.iter().find(|s| s.status == StepStatus::Fail);
            kind = failed.and_then(|s| s.kind).unwrap_or(FailKind::Other);
            let why = failed.map_or_else(String::new, |s| s.detail.clone());
            tried.push(format!("{}: {why}", r.describe()));
            continue;
        }
        let source = format!("`{cmd}` on {pve} (via {})", r.describe());
        let q = split_qm(&run.stdout);
        let mut ip0 = None;
        let mut agent_opt = None;
        for line in q.config.lines() {
            match line.split_once(':') {
                Some(("ipconfig0", v)) => ip0 = Some(v.trim().to_string()),
                Some(("agent", v)) => agent_opt = Some(v.trim().to_string()),
                _ => {}
            }
        }
        agent.steps = agent_steps(&source, vmid, pve, agent_opt.as_deref(), &q, want);
        agent.works = agent.steps.iter().all(|s| s.status == StepStatus::Ok);
        agent.hints = agent_hints(&agent.steps);
        return (vec![cloud_init(&source, ip0, want)], Some(agent));
    }
    let detail = if tried.is_empty() {
        format!("the registry gives no access path for the Proxmox host {pve}")
    } else {
        format!("could not run `{cmd}` on {pve}: {}", tried.join("; "))
    };
    agent.steps = agent_not_reached(kind, detail.clone());
    agent.hints = vec![format!(
        "the guest agent is reached through {pve}: run `spine doctor {pve}`"
    )];
    (
        vec![finding("cloud-init", FindingStatus::Unknown, pve, detail)],
        Some(agent),
    )
}

const AGENT_STEPS: [&str; 4] = ["agent", "vm_status", "addresses", "command"];

fn agent_not_reached(kind: FailKind, detail: String) -> Vec<Step> {
    let mut steps = vec![Step::fail("proxmox", kind, detail)];
    for s in AGENT_STEPS {
        steps.push(Step::not_tried(s, "the Proxmox host was not reached"));
    }
    steps
}

/// The guest agent path step by step: the Proxmox host reached, the agent
/// enabled in the VM's config, the VM running, the agent answering (with the
/// addresses the VM really has), a command run through it.
fn agent_steps(
    source: &str,
    vmid: u32,
    pve: &str,
    agent: Option<&str>,
    q: &QmOut,
    want: Option<&crate::model::Network>,
) -> Vec<Step> {
    let mut steps = vec![Step::ok("proxmox", source.to_string())];
    let rest = |steps: &mut Vec<Step>, from: usize, why: &str| {
        for s in &AGENT_STEPS[from..] {
            steps.push(Step::not_tried(s, why));
        }
    };
    if !agent.is_some_and(agent_on) {
        steps.push(Step::fail(
            "agent",
            FailKind::Other,
            format!(
                "the guest agent is not enabled (`agent` is {}): Proxmox cannot tell which address the VM really has; enable it (`qm set {vmid} --agent 1`, install qemu-guest-agent in the VM)",
                agent.unwrap_or("unset")
            ),
        ));
        rest(&mut steps, 1, "the guest agent is not enabled");
        return steps;
    }
    steps.push(Step::ok(
        "agent",
        format!("enabled (`agent: {}`)", agent.unwrap_or_default()),
    ));
    let status = q.status.trim();
    let state = status.strip_prefix("status:").map(str::trim);
    if state != Some("running") {
        steps.push(Step::fail(
            "vm_status",
            FailKind::Other,
            match state {
                Some(s) => format!("VM {vmid} is {s} on {pve}: start it (`qm start {vmid}` there)"),
                None => format!(
                    "`qm status {vmid}` on {pve}: {}",
                    crate::gather::guest::last(status)
                ),
            },
        ));
        rest(&mut steps, 2, "the VM is not running");
        return steps;
    }
    steps.push(Step::ok("vm_status", format!("VM {vmid} is running")));
    let out = q.addresses.trim();
    let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(out) else {
        steps.push(Step::fail(
            "addresses",
            FailKind::Timeout,
            format!(
                "the guest agent does not answer (`qm guest cmd {vmid} network-get-interfaces`): {}",
                crate::gather::guest::last(out)
            ),
        ));
        rest(&mut steps, 3, "the guest agent does not answer");
        return steps;
    };
    let have = crate::gather::guest::agent_ipv4(&v);
    let want_addr = want.map(|n| n.address.as_str());
    let differs = want_addr.is_some_and(|w| !have.iter().any(|h| h == w));
    steps.push(Step::ok(
        "addresses",
        format!(
            "the guest agent says the VM has {}{}",
            if have.is_empty() {
                "no IPv4 address".to_string()
            } else {
                have.join(", ")
            },
            match want_addr {
                Some(w) if differs => format!(", not the registry's {w}"),
                _ => String::new(),
            }
        ),
    ));
    steps.push(exec_step(q.exec));
    steps
}

/// `qm guest exec VMID -- uname -srm`: its JSON answer.
fn exec_step(out: &str) -> Step {
    let v: Value = match serde_json::from_str(out.trim()) {
        Ok(v) => v,
        Err(_) => {
            return Step::fail(
                "command",
                FailKind::Other,
                format!("`qm guest exec`: {}", crate::gather::guest::last(out)),
            );
        }
    };
    let said = v["out-data"].as_str().unwrap_or_default();
    match (v["exited"].as_i64(), v["exitcode"].as_i64()) {
        (Some(1), Some(0)) => Step::ok(
            "command",
            format!(
                "`{}` through the guest agent: {}",
                trace::TRACE_COMMAND,
                said.lines().next().unwrap_or_default().trim()
            ),
        ),
        (Some(1), Some(c)) => Step::fail(
            "command",
            FailKind::Other,
            format!(
                "exit {c}: {}",
                crate::gather::guest::last(v["err-data"].as_str().unwrap_or_default())
            ),
        ),
        _ => Step::fail(
            "command",
            FailKind::Timeout,
            "the command did not finish through the guest agent",
        ),
    }
}

/// What to do when the guest agent path stopped somewhere; when it works,
/// that spine itself still needs an SSH path.
fn agent_hints(steps: &[Step]) -> Vec<String> {
    if steps.iter().all(|s| s.status == StepStatus::Ok) {
        return vec!["the VM runs and its guest agent answers, but spine plans and applies over SSH only: make one of the SSH paths work (see their hints)".into()];
    }
    match steps.iter().find(|s| s.status == StepStatus::Fail) {
        Some(s) if s.step == "addresses" => vec![
            "is qemu-guest-agent installed and running in the VM? (`systemctl status qemu-guest-agent` on its console)".into(),
        ],
        _ => Vec::new(),
    }
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
    let run = trace::ssh_run(route, opts, script.as_str()).await;
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
pub fn hints(
    reg: &ServiceRegistry,
    host: &str,
    p: &PathReport,
    found: &[Finding],
    agent: Option<&PathReport>,
) -> Vec<String> {
    let (Some(kind), Some(route)) = (p.fail_kind().filter(|_| !p.works), &p.route) else {
        return Vec::new();
    };
    let h = reg.hosts.get(host).cloned().unwrap_or_default();
    let mut out = vec![kind.hint().to_string()];
    let network_trouble = matches!(
        kind,
        FailKind::Timeout | FailKind::Unreachable | FailKind::Refused
    );
    if network_trouble && matches!(route.via, Via::Lan | Via::Jump | Via::SshConfig) {
        out.extend(vm_hints(&h, found, agent));
    }
    if route.via == Via::Tailscale {
        out.extend(tailscale_hints(&h, found));
    }
    if kind == FailKind::HostKey {
        out.push(format!(
            "see what is known: `ssh-keygen -F {}`; compare with the host's key out of band (for a VM: its console on the Proxmox host)",
            route.address
        ));
    }
    if kind == FailKind::AuthFailed {
        out.push(format!("the registry logs in as `{}`", route.user));
    }
    out
}

fn vm_hints(h: &Host, found: &[Finding], agent: Option<&PathReport>) -> Vec<String> {
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
    // What the guest agent path saw of the VM's addresses.
    if let Some(a) = agent {
        let seen = a
            .steps
            .iter()
            .find(|s| s.step == "addresses" && s.status == StepStatus::Ok);
        if let Some(s) = seen.filter(|s| s.detail.contains("not the registry's")) {
            out.push(format!("{} (path {}, {})", s.detail, a.index, a.describe));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qm_output_splits_into_its_parts_and_the_exec_answer_reads() {
        let out = format!(
            "agent: 1\nipconfig0: ip=10.0.0.2/24\n{AGENT_MARK} status\nstatus: running\n\
             {AGENT_MARK} addresses\n[]\n{AGENT_MARK} exec\n{{\"exitcode\": 0, \"exited\": 1, \"out-data\": \"Linux 6.1 x86_64\\n\"}}\n"
        );
        let q = split_qm(&out);
        assert!(q.config.contains("ipconfig0: ip=10.0.0.2/24"), "{q:?}");
        assert_eq!(q.status.trim(), "status: running");
        assert_eq!(q.addresses.trim(), "[]");
        let s = exec_step(q.exec);
        assert_eq!(s.status, StepStatus::Ok, "{s:?}");
        assert!(s.detail.ends_with("Linux 6.1 x86_64"), "{s:?}");
        let s = exec_step("{\"exitcode\": 127, \"exited\": 1, \"err-data\": \"sh: nope\"}");
        assert_eq!(
            (s.status, s.detail.as_str()),
            (StepStatus::Fail, "exit 127: sh: nope")
        );
        let s = exec_step("QEMU guest agent is not running\n");
        assert_eq!(s.status, StepStatus::Fail);
        assert!(s.detail.contains("not running"), "{s:?}");
    }

    #[test]
    fn a_stopped_vm_stops_the_agent_path_at_its_status() {
        let q = QmOut {
            status: "status: stopped\n",
            ..QmOut::default()
        };
        let steps = agent_steps("src", 203, "pve", Some("1"), &q, None);
        let names: Vec<_> = steps.iter().map(|s| (s.step, s.status)).collect();
        assert_eq!(
            names,
            [
                ("proxmox", StepStatus::Ok),
                ("agent", StepStatus::Ok),
                ("vm_status", StepStatus::Fail),
                ("addresses", StepStatus::NotTried),
                ("command", StepStatus::NotTried),
            ]
        );
        assert!(steps[2].detail.contains("qm start 203"), "{steps:?}");
    }
}
