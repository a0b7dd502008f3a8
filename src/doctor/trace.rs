//! A path trace: one access path, step by step, each on a fresh connection (no connection
//! sharing, no ControlMaster): what ssh's config makes of it, DNS, a TCP
//! connect, the SSH banner, then one `ssh -v` run whose log tells host key,
//! authentication and the command apart.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::gather::ssh::{FailKind, Route, SshOptions, classify};

/// The command run on the host once logged in.
pub const TRACE_COMMAND: &str = "uname -srm";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Fail,
    NotTried,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `dns`, `tcp`, `banner`, (`forward` through a jump host), `host_key`, `auth`, `command`.
    pub step: &'static str,
    pub status: StepStatus,
    pub kind: Option<FailKind>,
    pub detail: String,
}

impl Step {
    pub(super) fn ok(step: &'static str, detail: impl Into<String>) -> Step {
        Step {
            step,
            status: StepStatus::Ok,
            kind: None,
            detail: detail.into(),
        }
    }
    pub(super) fn fail(step: &'static str, kind: FailKind, detail: impl Into<String>) -> Step {
        Step {
            step,
            status: StepStatus::Fail,
            kind: Some(kind),
            detail: detail.into(),
        }
    }
    pub(super) fn not_tried(step: &'static str, why: &str) -> Step {
        Step {
            step,
            status: StepStatus::NotTried,
            kind: None,
            detail: why.to_string(),
        }
    }
}

/// Where ssh would really connect for a path (`ssh -G`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    pub hostname: String,
    pub port: u16,
    /// `ProxyJump` from the command line or the ssh_config, if any.
    pub proxyjump: Option<String>,
    /// `HostKeyAlias`, if set: the name known_hosts is searched for.
    pub hostkeyalias: Option<String>,
}

fn ssh_base(opts: &SshOptions) -> Command {
    let mut c = Command::new("ssh");
    if let Some(cfg) = &opts.config {
        c.arg("-F").arg(cfg);
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// Ask ssh what it would do for `dest` (user, port, jump as the route says).
pub async fn effective(
    dest: &str,
    port: Option<u16>,
    jump: Option<&str>,
    opts: &SshOptions,
) -> Result<Effective, String> {
    let mut c = ssh_base(opts);
    c.arg("-G");
    if let Some(p) = port {
        c.arg("-p").arg(p.to_string());
    }
    if let Some(j) = jump {
        c.arg("-J").arg(j);
    }
    let out = c
        .arg("--")
        .arg(dest)
        .output()
        .await
        .map_err(|e| format!("cannot run ssh -G: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " "));
    }
    let mut e = Effective::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split_once(' ') {
            Some(("hostname", v)) => e.hostname = v.to_string(),
            Some(("port", v)) => e.port = v.parse().unwrap_or(22),
            Some(("proxyjump", v)) if v != "none" => e.proxyjump = Some(v.to_string()),
            Some(("hostkeyalias", v)) => e.hostkeyalias = Some(v.to_string()),
            _ => {}
        }
    }
    Ok(e)
}

/// `user@host:port` (or an alias) of the first hop of a ProxyJump list.
fn first_hop(jump: &str) -> (String, Option<u16>) {
    let first = jump.split(',').next().unwrap_or(jump);
    let first = first.strip_prefix("ssh://").unwrap_or(first);
    let host = first.rsplit_once('@').map_or(first, |(_, h)| h);
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (host.to_string(), None),
    }
}

async fn dns(host: &str, port: u16, timeout: Duration) -> Result<(Vec<SocketAddr>, String), Step> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((
            vec![SocketAddr::new(ip, port)],
            format!("{host} is an address"),
        ));
    }
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(Step::fail(
            "dns",
            FailKind::Timeout,
            format!("no answer for {host} in {}s", timeout.as_secs()),
        )),
        Ok(Err(e)) => Err(Step::fail(
            "dns",
            FailKind::NameNotResolved,
            format!("{host}: {e}"),
        )),
        Ok(Ok(addrs)) => {
            let mut v: Vec<SocketAddr> = addrs.collect();
            v.sort_by_key(|a| !a.is_ipv4());
            let shown: Vec<String> = v.iter().map(|a| a.ip().to_string()).collect();
            Ok((v, format!("{host} -> {}", shown.join(", "))))
        }
    }
}

fn io_kind(e: &std::io::Error) -> FailKind {
    match (e.kind(), e.raw_os_error()) {
        (std::io::ErrorKind::ConnectionRefused, _) => FailKind::Refused,
        (_, Some(113 | 101)) => FailKind::Unreachable,
        (std::io::ErrorKind::TimedOut, _) => FailKind::Timeout,
        _ => classify(&e.to_string()),
    }
}

/// TCP connect, then read the server's identification line.
async fn tcp_and_banner(addr: SocketAddr, timeout: Duration) -> (Step, Step) {
    let t0 = Instant::now();
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => {
            let s = Step::fail(
                "tcp",
                FailKind::Timeout,
                format!("{addr}: no answer in {}s", timeout.as_secs()),
            );
            return (s, Step::not_tried("banner", "no TCP connection"));
        }
        Ok(Err(e)) => {
            let s = Step::fail("tcp", io_kind(&e), format!("{addr}: {e}"));
            return (s, Step::not_tried("banner", "no TCP connection"));
        }
        Ok(Ok(s)) => s,
    };
    let tcp = Step::ok(
        "tcp",
        format!("{addr} connected in {} ms", t0.elapsed().as_millis()),
    );
    let mut buf = Vec::new();
    let read = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < 1024 {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .await;
    let line = String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let banner = match read {
        Err(_) => Step::fail(
            "banner",
            FailKind::Timeout,
            format!("connected, but no SSH banner in {}s", timeout.as_secs()),
        ),
        Ok(Err(e)) => Step::fail("banner", io_kind(&e), format!("reading the banner: {e}")),
        Ok(Ok(())) if line.starts_with("SSH-") => Step::ok("banner", line),
        Ok(Ok(())) if line.is_empty() => Step::fail(
            "banner",
            FailKind::Other,
            "the server closed the connection before sending a banner (sshd MaxStartups or a TCP wrapper?)",
        ),
        Ok(Ok(())) => Step::fail(
            "banner",
            FailKind::Other,
            format!(
                "not an SSH server: it says `{}`",
                line.chars().take(80).collect::<String>()
            ),
        ),
    };
    (tcp, banner)
}

/// What one `ssh -v` run showed.
#[derive(Debug, Clone)]
pub struct SshRun {
    pub steps: Vec<Step>,
    pub stdout: String,
}

impl SshRun {
    pub fn works(&self) -> bool {
        self.steps.iter().all(|s| s.status == StepStatus::Ok)
    }
}

/// Run `command` over a fresh connection (no multiplexing) and split the
/// outcome into host key, auth and command steps.
pub async fn ssh_run(route: &Route, opts: &SshOptions, command: &str) -> SshRun {
    // With a jump host the log holds both hops: only lines naming the target count.
    let target = effective(&route.address, route.port, route.jump.as_deref(), opts)
        .await
        .unwrap_or_default();
    let mut names = vec![target.hostname];
    names.extend(target.hostkeyalias);
    let mut c = ssh_base(opts);
    let t = crate::gather::ssh::connect_timeout(route, opts.connect_timeout)
        .as_secs()
        .max(1);
    c.args([
        "-v",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
    .args(["-o", &format!("ConnectTimeout={t}")])
    .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"])
    .arg("-l")
    .arg(&route.user);
    if let Some(p) = route.port {
        c.arg("-p").arg(p.to_string());
    }
    if let Some(j) = &route.jump {
        c.arg("-J").arg(j);
    }
    c.arg("--").arg(&route.address).arg(command);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let limit = Duration::from_secs(t * 3 + 20);
    let out = match c.spawn() {
        Err(e) => {
            return SshRun {
                steps: vec![Step::fail(
                    "host_key",
                    FailKind::Other,
                    format!("cannot run ssh: {e}"),
                )],
                stdout: String::new(),
            };
        }
        Ok(child) => tokio::time::timeout(limit, child.wait_with_output()).await,
    };
    let out = match out {
        Err(_) => {
            let why = format!("ssh did not finish in {}s", limit.as_secs());
            return SshRun {
                steps: vec![Step::fail("host_key", FailKind::Timeout, why)],
                stdout: String::new(),
            };
        }
        Ok(Err(e)) => {
            return SshRun {
                steps: vec![Step::fail("host_key", FailKind::Other, e.to_string())],
                stdout: String::new(),
            };
        }
        Ok(Ok(o)) => o,
    };
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    SshRun {
        steps: read_log(&log, out.status.code(), &stdout, &names),
        stdout,
    }
}

/// The error lines of an ssh log (not the debug chatter).
fn errors(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("debug")
                && !l.starts_with("OpenSSH_")
                && !l.starts_with("Transferred:")
        })
        .collect();
    let tail = lines.len().saturating_sub(4);
    lines[tail..].join(" ")
}

/// Split an `ssh -v` log into host key, auth and command steps.
pub fn read_log(log: &str, code: Option<i32>, stdout: &str, names: &[String]) -> Vec<Step> {
    let err = errors(log);
    let about_target = |l: &str| {
        names.iter().all(String::is_empty)
            || names
                .iter()
                .any(|n| !n.is_empty() && l.contains(n.as_str()))
    };
    let last = |needle: &str| {
        log.lines()
            .rev()
            .find(|l| l.contains(needle) && (needle == "Server host key:" || about_target(l)))
            .map(|l| l.trim_start_matches("debug1: ").trim().to_string())
    };
    let key_ok = last("is known and matches the");
    let auth_ok = last("Authenticated to ");
    let mut steps = Vec::new();
    // Through a jump host: the jump host could not reach the target.
    if key_ok.is_none()
        && (log.contains("open failed: connect failed") || log.contains("stdio forwarding failed"))
    {
        steps.push(Step::fail(
            "forward",
            classify(&err),
            format!("the jump host cannot reach the target: {err}"),
        ));
        steps.push(Step::not_tried("host_key", "the target was not reached"));
        steps.push(Step::not_tried("auth", "not logged in"));
        steps.push(Step::not_tried("command", "not logged in"));
        return steps;
    }
    match &key_ok {
        Some(line) => {
            let fp = last("Server host key:")
                .map(|l| format!(" ({})", l.trim_start_matches("Server host key: ")))
                .unwrap_or_default();
            steps.push(Step::ok("host_key", format!("{line}{fp}")));
        }
        None => {
            let kind = match classify(&err) {
                FailKind::Other if log.contains("Server host key:") => FailKind::HostKey,
                k => k,
            };
            let detail = if err.is_empty() {
                "ssh stopped before checking the host key".to_string()
            } else {
                err
            };
            steps.push(Step::fail("host_key", kind, detail));
            steps.push(Step::not_tried("auth", "host key not accepted"));
            steps.push(Step::not_tried("command", "not logged in"));
            return steps;
        }
    }
    match &auth_ok {
        Some(line) => steps.push(Step::ok("auth", line.clone())),
        None => {
            let kind = match classify(&err) {
                FailKind::Other => FailKind::AuthFailed,
                k => k,
            };
            steps.push(Step::fail(
                "auth",
                kind,
                if err.is_empty() {
                    "not authenticated".into()
                } else {
                    err
                },
            ));
            steps.push(Step::not_tried("command", "not logged in"));
            return steps;
        }
    }
    match code {
        Some(0) => steps.push(Step::ok(
            "command",
            format!(
                "`{TRACE_COMMAND}`: {}",
                stdout.lines().next().unwrap_or_default().trim()
            ),
        )),
        Some(c) => steps.push(Step::fail(
            "command",
            FailKind::Other,
            format!("exit {c}: {err}"),
        )),
        None => steps.push(Step::fail(
            "command",
            FailKind::Other,
            "ssh was killed by a signal",
        )),
    }
    steps
}

/// Every step of one path. The DNS, TCP and banner steps go to the first
/// hop: the jump host when there is one.
pub async fn trace(route: &Route, opts: &SshOptions) -> (Vec<Step>, String, bool) {
    let timeout = opts.connect_timeout;
    let eff = match effective(&route.address, route.port, route.jump.as_deref(), opts).await {
        Ok(e) => e,
        Err(e) => {
            let mut steps = vec![Step::fail(
                "dns",
                FailKind::Other,
                format!("ssh cannot use its config: {e}"),
            )];
            for s in ["tcp", "banner", "host_key", "auth", "command"] {
                steps.push(Step::not_tried(s, "ssh config unusable"));
            }
            return (steps, String::new(), false);
        }
    };
    let (hop, target) = match &eff.proxyjump {
        None => (eff.clone(), format!("{}:{}", eff.hostname, eff.port)),
        Some(j) => {
            let (h, p) = first_hop(j);
            let hop = effective(&h, p, None, opts).await.unwrap_or(Effective {
                hostname: h,
                port: p.unwrap_or(22),
                ..Effective::default()
            });
            let target = format!(
                "{}:{} through {}:{}",
                eff.hostname, eff.port, hop.hostname, hop.port
            );
            (hop, target)
        }
    };
    let mut steps = Vec::new();
    let addrs = match dns(&hop.hostname, hop.port, timeout).await {
        Ok((addrs, detail)) => {
            steps.push(Step::ok("dns", detail));
            addrs
        }
        Err(s) => {
            steps.push(s);
            for s in ["tcp", "banner", "host_key", "auth", "command"] {
                steps.push(Step::not_tried(s, "the name does not resolve"));
            }
            return (steps, target, false);
        }
    };
    let (tcp, banner) = tcp_and_banner(addrs[0], timeout).await;
    let reached = banner.status == StepStatus::Ok;
    steps.push(tcp);
    steps.push(banner);
    if !reached {
        for s in ["host_key", "auth", "command"] {
            steps.push(Step::not_tried(s, "no SSH server reached"));
        }
        return (steps, target, false);
    }
    let run = ssh_run(route, opts, TRACE_COMMAND).await;
    let works = run.works();
    steps.extend(run.steps);
    (steps, target, works)
}

/// Shown for a path the registry gives with this ssh_config file.
pub fn config_name(opts: &SshOptions) -> String {
    opts.config.as_deref().map_or_else(
        || "~/.ssh/config".to_string(),
        |p: &Path| p.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_log_gives_three_ok_steps() {
        let log = "debug1: Server host key: ssh-ed25519 SHA256:abc\n\
debug1: Host '10.0.0.1' is known and matches the ED25519 host key.\n\
debug1: Authenticated to 10.0.0.1 ([10.0.0.1]:22) using \"publickey\".\n";
        let s = read_log(log, Some(0), "Linux 6.1 x86_64\n", &["10.0.0.1".into()]);
        assert!(s.iter().all(|s| s.status == StepStatus::Ok), "{s:#?}");
        assert!(s[0].detail.contains("SHA256:abc"));
        assert_eq!(s[2].detail, "`uname -srm`: Linux 6.1 x86_64");
    }

    #[test]
    fn failures_land_on_the_right_step() {
        let key = read_log(
            "debug1: Server host key: ssh-ed25519 SHA256:abc\nHost key verification failed.\n",
            Some(255),
            "",
            &[],
        );
        assert_eq!(
            (key[0].status, key[0].kind),
            (StepStatus::Fail, Some(FailKind::HostKey))
        );
        assert_eq!(key[1].status, StepStatus::NotTried);
        let auth = read_log(
            "debug1: Host 'x' is known and matches the ED25519 host key.\nronny@x: Permission denied (publickey).\n",
            Some(255),
            "",
            &[],
        );
        assert_eq!(
            (auth[1].status, auth[1].kind),
            (StepStatus::Fail, Some(FailKind::AuthFailed))
        );
        let cmd = read_log(
            "debug1: Host 'x' is known and matches the ED25519 host key.\ndebug1: Authenticated to x\nsh: uname: not found\n",
            Some(127),
            "",
            &[],
        );
        assert_eq!(cmd[2].status, StepStatus::Fail);
        assert!(cmd[2].detail.contains("exit 127"), "{cmd:#?}");
    }

    #[test]
    fn a_jump_hosts_lines_do_not_count_for_the_target() {
        let log = "debug1: Host 'pve' is known and matches the ED25519 host key.\n\
debug1: Authenticated to pve ([10.0.0.10]:22) using \"publickey\".\n\
channel 0: open failed: connect failed: No route to host\n\
stdio forwarding failed\n";
        let s = read_log(log, Some(255), "", &["10.0.0.203".into()]);
        assert_eq!(
            (s[0].step, s[0].status),
            ("forward", StepStatus::Fail),
            "{s:#?}"
        );
        assert_eq!(s[0].kind, Some(FailKind::Unreachable), "{s:#?}");
    }

    #[test]
    fn first_hop_of_a_jump_list() {
        assert_eq!(
            first_hop("root@10.0.0.1:2222,b"),
            ("10.0.0.1".into(), Some(2222))
        );
        assert_eq!(first_hop("pve"), ("pve".into(), None));
    }
}
