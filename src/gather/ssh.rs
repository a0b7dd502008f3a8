//! Reaching a host over SSH with the system `ssh` (through the `openssh`
//! crate): ~/.ssh/config, the agent and ProxyJump all apply. Host keys are
//! checked strictly. Access paths are tried in registry order; failures are
//! classified with a hint.

use std::path::PathBuf;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder};
use serde::{Deserialize, Serialize};

use crate::model::{ServiceRegistry, Via};

/// How spine's ssh is set up.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// An ssh_config file (`ssh -F`), e.g. for test hosts.
    pub config: Option<PathBuf>,
    /// Per hop: a path through a jump host gets it once per hop.
    pub connect_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            config: std::env::var_os("SPINE_SSH_CONFIG").map(PathBuf::from),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// One way to reach a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub via: Via,
    pub user: String,
    pub address: String,
    pub port: Option<u16>,
    /// `user@address[:port]` of the jump host, for `via: jump`.
    pub jump: Option<String>,
}

impl Route {
    pub fn describe(&self) -> String {
        let via = match self.via {
            Via::Tailscale => "tailscale",
            Via::Lan => "lan",
            Via::Jump => "jump",
            Via::SshConfig => "ssh_config",
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        match &self.jump {
            Some(j) => format!("{via} {}@{}{port} through {j}", self.user, self.address),
            None => format!("{via} {}@{}{port}", self.user, self.address),
        }
    }
}

fn user_of(reg: &ServiceRegistry, host: &str) -> String {
    reg.hosts
        .get(host)
        .and_then(|h| {
            h.desired
                .as_ref()
                .and_then(|d| d.ssh_user.clone())
                .or_else(|| h.ssh_user.clone())
        })
        .unwrap_or_else(|| "root".into())
}

/// The host's access paths, in registry order.
pub fn routes(reg: &ServiceRegistry, host: &str) -> Vec<Route> {
    let Some(h) = reg.hosts.get(host) else {
        return Vec::new();
    };
    let user = user_of(reg, host);
    let mut out = Vec::new();
    for a in h.desired.iter().flat_map(|d| d.access.iter()) {
        let jump = a.jump.as_ref().and_then(|j| {
            let first = routes(reg, j).into_iter().find(|r| r.jump.is_none())?;
            let port = first.port.map(|p| format!(":{p}")).unwrap_or_default();
            Some(format!("{}@{}{port}", first.user, first.address))
        });
        out.push(Route {
            via: a.via,
            user: user.clone(),
            address: a.address.clone(),
            port: a.port,
            jump,
        });
    }
    out
}

/// Why a path did not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    NameNotResolved,
    Refused,
    Timeout,
    Unreachable,
    AuthFailed,
    HostKey,
    Other,
}

impl FailKind {
    pub fn hint(self) -> &'static str {
        match self {
            FailKind::NameNotResolved => {
                "the name does not resolve: check MagicDNS / tailscale status on this machine, or use an address"
            }
            FailKind::Refused => {
                "the host answers but nothing listens on the ssh port: is sshd running, is the port right?"
            }
            FailKind::Timeout => {
                "no answer in time: the host may be down or on another network (GAP-OP-094: an old cloud-init address)"
            }
            FailKind::Unreachable => {
                "no route to the host: check the address and the LAN (and the VM's cloud-init ipconfig0)"
            }
            FailKind::AuthFailed => {
                "the host refused the login: check the ssh user in the registry and that your key is in its authorized_keys"
            }
            FailKind::HostKey => {
                "the host key is unknown or changed: verify it out of band, then update known_hosts (spine never accepts keys blindly)"
            }
            FailKind::Other => "see the ssh message above",
        }
    }
}

/// Classify an ssh failure from its message.
pub fn classify(msg: &str) -> FailKind {
    let m = msg.to_ascii_lowercase();
    if m.contains("could not resolve")
        || m.contains("name or service not known")
        || m.contains("temporary failure in name resolution")
    {
        FailKind::NameNotResolved
    } else if m.contains("host key verification failed")
        || m.contains("remote host identification has changed")
        || m.contains("no ed25519 host key is known")
        || m.contains("host key is known")
        || m.contains("no matching host key")
    {
        FailKind::HostKey
    } else if m.contains("permission denied") || m.contains("too many authentication failures") {
        FailKind::AuthFailed
    } else if m.contains("connection refused") {
        FailKind::Refused
    } else if m.contains("no route to host") || m.contains("network is unreachable") {
        FailKind::Unreachable
    } else if m.contains("timed out") || m.contains("timeout") {
        FailKind::Timeout
    } else {
        FailKind::Other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFailure {
    pub route: String,
    pub kind: FailKind,
    pub detail: String,
}

/// How long ssh may take to connect over `route`: the timeout once per
/// hop. With ProxyJump, ssh's ConnectTimeout covers the wait for the far
/// host's banner, which comes only after the whole handshake with the jump
/// host; one hop's time for both made jump paths fail first on a slow day.
pub fn connect_timeout(route: &Route, per_hop: Duration) -> Duration {
    per_hop * (1 + u32::from(route.jump.is_some()))
}

fn builder(route: &Route, opts: &SshOptions) -> SessionBuilder {
    let mut b = SessionBuilder::default();
    b.known_hosts_check(KnownHosts::Strict)
        .connect_timeout(connect_timeout(route, opts.connect_timeout))
        .server_alive_interval(Duration::from_secs(5))
        .control_directory(std::env::temp_dir())
        .user(route.user.clone());
    if let Some(p) = route.port {
        b.port(p);
    }
    if let Some(c) = &opts.config {
        b.config_file(c);
    }
    if let Some(j) = &route.jump {
        b.jump_hosts([j]);
    }
    b
}

/// The openssh crate puts the destination on ssh's command line without a
/// `--` before it: an address or jump host starting with `-` would be read
/// as an option. Such a path is refused, never tried.
fn option_like(r: &Route) -> Option<PathFailure> {
    let bad = [Some(r.address.as_str()), r.jump.as_deref()]
        .into_iter()
        .flatten()
        .find(|a| a.starts_with('-'))?;
    Some(PathFailure {
        route: r.describe(),
        kind: FailKind::Other,
        detail: format!(
            "`{bad}` starts with `-`, which ssh would read as an option: fix the address in the registry's desired.access"
        ),
    })
}

/// Connect over the first path that works.
pub async fn connect(
    routes: &[Route],
    opts: &SshOptions,
) -> Result<(Session, Route), Vec<PathFailure>> {
    let mut failures = Vec::new();
    for r in routes {
        if let Some(f) = option_like(r) {
            failures.push(f);
            continue;
        }
        match builder(r, opts).connect_mux(&r.address).await {
            Ok(s) => return Ok((s, r.clone())),
            Err(e) => {
                let detail = error_text(&e);
                failures.push(PathFailure {
                    route: r.describe(),
                    kind: classify(&detail),
                    detail,
                });
            }
        }
    }
    Err(failures)
}

/// The ssh error with its cause chain, on one line.
pub fn error_text(e: &openssh::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s.replace('\n', " ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_like_destinations_are_refused() {
        let r = |address: &str, jump: Option<&str>| Route {
            via: Via::Lan,
            user: "ronny".into(),
            address: address.into(),
            port: None,
            jump: jump.map(String::from),
        };
        assert!(option_like(&r("10.203.1.5", None)).is_none());
        assert!(option_like(&r("10.203.1.5", Some("root@10.203.1.10"))).is_none());
        let f = option_like(&r("-oProxyCommand=touch /tmp/x", None)).unwrap();
        assert!(f.detail.contains("starts with `-`"), "{}", f.detail);
        assert!(option_like(&r("10.203.1.5", Some("-oProxyCommand=x"))).is_some());
    }

    #[test]
    fn a_jump_path_gets_the_timeout_once_per_hop() {
        let r = |jump: Option<&str>| Route {
            via: Via::Jump,
            user: "ronny".into(),
            address: "10.203.1.5".into(),
            port: None,
            jump: jump.map(String::from),
        };
        let five = Duration::from_secs(5);
        assert_eq!(connect_timeout(&r(None), five), five);
        assert_eq!(connect_timeout(&r(Some("root@pve")), five), 2 * five);
    }

    #[test]
    fn classifies_ssh_messages() {
        assert_eq!(
            classify("ssh: Could not resolve hostname immich-1: Name or service not known"),
            FailKind::NameNotResolved
        );
        assert_eq!(
            classify("ssh: connect to host 10.0.0.1 port 22: Connection refused"),
            FailKind::Refused
        );
        assert_eq!(
            classify("Connection timed out during banner exchange"),
            FailKind::Timeout
        );
        assert_eq!(classify("Host key verification failed."), FailKind::HostKey);
        assert_eq!(
            classify("ronny@x: Permission denied (publickey)."),
            FailKind::AuthFailed
        );
        assert_eq!(
            classify("connect to host x port 22: No route to host"),
            FailKind::Unreachable
        );
    }
}
