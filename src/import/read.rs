//! What `spine import` reads from a host, in one round trip: the gather
//! script (`scripts/gather/host.sh`) framing four read scripts: the compose
//! projects (`scripts/import/compose.sh`), the cron tables (the cron kind's
//! `tables-read.sh`), the netplan files (`scripts/import/netplan.sh`) and
//! Tailscale (the tailscale kind's `read.sh`). A VM's `ipconfig0` comes from
//! its Proxmox host with the cloud-init kind's read script. Nothing is
//! written on either host.

use crate::gather::script::{Report, Section};
use crate::gather::ssh::Route;
use crate::shell::{self, Script, ScriptError};

/// The read scripts, by section id, for the host being imported.
pub fn host_reads() -> Result<Vec<(String, Script)>, ScriptError> {
    Ok(vec![
        (
            "compose".into(),
            shell::render("import/compose.sh", crate::secrets::rule_context())?,
        ),
        ("cron".into(), crate::kinds::cron::tables_read_script()?),
        (
            "netplan".into(),
            shell::render("import/netplan.sh", minijinja::context! {})?,
        ),
        (
            "tailscale".into(),
            shell::render("kinds/tailscale/read.sh", minijinja::context! {})?,
        ),
    ])
}

/// The read script for a VM's settings on its Proxmox host.
pub fn qm_read(vmid: u32) -> Result<Vec<(String, Script)>, ScriptError> {
    Ok(vec![(
        "qm".into(),
        shell::render(
            "kinds/cloudinit/read.sh",
            minijinja::context! { vmid => vmid.to_string() },
        )?,
    )])
}

/// One `.env` line as the host sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvKey {
    /// A key the secret-key rule calls secret: its name only.
    Secret(String),
    /// Any other key, with its value.
    Plain(String, String),
}

impl EnvKey {
    pub fn key(&self) -> &str {
        match self {
            EnvKey::Secret(k) | EnvKey::Plain(k, _) => k,
        }
    }
}

/// A file read from the host: its text, mode and owner, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFile {
    pub path: String,
    pub text: Result<String, String>,
    pub mode: String,
    pub owner: String,
}

/// A compose project running (or stopped) on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Its working folder (compose's `project.working_dir` label).
    pub dir: String,
    pub files: Vec<HostFile>,
    /// `None`: the folder has no `.env`.
    pub env: Option<Vec<EnvKey>>,
    pub env_mode: String,
    pub env_owner: String,
    /// Its status as `docker compose ls` says it (`running(2)`), when listed.
    pub status: Option<String>,
    /// The image each of its containers runs; `None`: not read.
    pub running: Option<Vec<Running>>,
}

/// The image one container of a project runs, as the host's docker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The compose service (`com.docker.compose.service` label).
    pub service: String,
    /// The image as compose gave it to the container (variables filled in).
    pub image: String,
    /// The local image id (`sha256:` and 64 hex digits; empty when the host
    /// sent something else).
    pub id: String,
    /// The image's registry digests (`NAME@sha256:...`, what a moving tag can
    /// be pinned to); empty for an image built or loaded on the host.
    pub digests: Vec<String>,
}

/// One cron table: a user's crontab (`user` set) or a file of /etc/cron.d.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub user: String,
    pub text: String,
}

/// Everything import learnt about the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// The login user and the path that answered.
    pub user: String,
    pub route: Option<Route>,
    pub projects: Vec<Project>,
    pub tables: Vec<Table>,
    pub netplan: Vec<HostFile>,
    /// Tailscale's `Self.HostName` and accept-dns (`CorpDNS`), when it runs.
    pub tailscale: Option<(String, Option<bool>)>,
    /// `qm config` on the Proxmox host: ipconfig0 and nameserver.
    pub ipconfig0: Option<String>,
    pub nameserver: Option<String>,
    /// What could not be read (said in the report, never passed over).
    pub problems: Vec<String>,
}

/// A value the host sent (empty when it sent none).
fn val(s: &Section, key: &str) -> String {
    s.get(key).unwrap_or_default().to_string()
}

/// A file section (the gather prelude's `sp_file`), read as the kinds read it.
fn file(s: &Section, key: &str, path: &str) -> HostFile {
    let (text, mode, owner) = match crate::kinds::file::observed(s, key) {
        Ok(Some((text, mode, owner))) => (Ok(text), mode, owner),
        Ok(None) => (
            Err(format!("{path} does not exist")),
            String::new(),
            String::new(),
        ),
        Err(e) => (Err(e), String::new(), String::new()),
    };
    HostFile {
        path: path.to_string(),
        text,
        mode,
        owner,
    }
}

/// `sha256:` and 64 lowercase hex digits.
fn sha256(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

/// The host's lines `SERVICE<tab>IMAGE<tab>ID<tab>DIGESTS`; a value that is
/// not what docker sends (a control character, a malformed id or digest) is
/// dropped, never shown.
fn running(text: &str) -> Vec<Running> {
    let plain = |v: &str| {
        !v.is_empty()
            && !v.chars().any(char::is_whitespace)
            && crate::safe::control_char(v, false).is_none()
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (service, image, id) = (f.next()?, f.next()?, f.next()?);
            if !crate::safe::name(service) || !plain(image) {
                return None;
            }
            let digests = f
                .next()
                .unwrap_or_default()
                .split(' ')
                .filter(|d| {
                    d.split_once('@')
                        .is_some_and(|(n, h)| plain(n) && sha256(h))
                })
                .map(String::from)
                .collect();
            Some(Running {
                service: service.to_string(),
                image: image.to_string(),
                id: if sha256(id) {
                    id.to_string()
                } else {
                    String::new()
                },
                digests,
            })
        })
        .collect()
}

fn count(s: &Section, key: &str) -> usize {
    s.get(key).and_then(|c| c.trim().parse().ok()).unwrap_or(0)
}

fn env_keys(text: &str) -> Vec<EnvKey> {
    text.lines()
        .filter_map(|l| {
            if let Some(k) = l.strip_prefix("S ") {
                Some(EnvKey::Secret(k.to_string()))
            } else {
                let (k, v) = l.strip_prefix("P ")?.split_once('=')?;
                Some(EnvKey::Plain(k.to_string(), v.to_string()))
            }
        })
        .collect()
}

/// `docker compose ls --format json`: each project's status (`running(2)`, `exited(1)`).
fn statuses(s: &Section) -> Vec<(String, String)> {
    let ls: serde_json::Value = serde_json::from_str(&val(s, "ls")).unwrap_or_default();
    ls.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["Name"].as_str()?.to_string(),
                p["Status"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn projects(s: &Section, problems: &mut Vec<String>) -> Vec<Project> {
    if let Some(u) = s.get("unknown") {
        problems.push(format!("compose: {u}"));
        return Vec::new();
    }
    if s.get("ls.rc").is_some_and(|rc| rc != "0") {
        let ls = val(s, "ls");
        problems.push(format!(
            "compose: `docker compose ls` failed: {}",
            ls.lines().next().unwrap_or("(no output)")
        ));
    }
    let statuses = statuses(s);
    (1..=count(s, "count"))
        .map(|i| {
            let p = format!("p.{i}");
            let files = (1..=count(s, &format!("{p}.files")))
                .map(|j| {
                    let key = format!("{p}.f.{j}");
                    file(s, &key, &val(s, &format!("{key}.path")))
                })
                .collect();
            let env = (s.get(&format!("{p}.env.exists")) == Some("1"))
                .then(|| env_keys(&val(s, &format!("{p}.env.keys"))));
            let name = val(s, &format!("{p}.name"));
            let status = statuses
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, st)| st.clone());
            Project {
                dir: val(s, &format!("{p}.dir")),
                files,
                env,
                env_mode: val(s, &format!("{p}.env.mode")),
                env_owner: val(s, &format!("{p}.env.owner")),
                status,
                running: s.get(&format!("{p}.images")).map(running),
                name,
            }
        })
        .collect()
}

fn tables(s: &Section, problems: &mut Vec<String>) -> Vec<Table> {
    if let Some(u) = s.get("unknown") {
        problems.push(format!("cron: {u}"));
    }
    (1..=count(s, "count"))
        .map(|i| Table {
            name: val(s, &format!("t.{i}.name")),
            user: val(s, &format!("t.{i}.user")).trim().to_string(),
            text: val(s, &format!("t.{i}.text")),
        })
        .collect()
}

fn tailscale(s: &Section, problems: &mut Vec<String>) -> Option<(String, Option<bool>)> {
    if s.get("unknown").is_some() {
        return None;
    }
    let status: serde_json::Value = match serde_json::from_str(&val(s, "status")) {
        Ok(v) => v,
        Err(_) => {
            problems.push("tailscale: `tailscale status --json` gave no status".into());
            return None;
        }
    };
    let name = status["Self"]["HostName"].as_str()?.to_string();
    let prefs: Option<serde_json::Value> = serde_json::from_str(&val(s, "prefs")).ok();
    let dns = prefs.and_then(|p| p["CorpDNS"].as_bool());
    Some((name, dns))
}

/// The host's answer, as a [`Reading`] (the route and Proxmox facts are added by the caller).
pub fn parse(report: &Report) -> Reading {
    let empty = Section::default();
    let sec = |id: &str| report.sections.get(id).unwrap_or(&empty);
    let mut r = Reading {
        user: report.user.clone(),
        ..Default::default()
    };
    for id in ["compose", "cron", "netplan", "tailscale"] {
        if !report.sections.contains_key(id) {
            r.problems
                .push(format!("{id}: the host sent no answer for it"));
        }
    }
    r.projects = projects(sec("compose"), &mut r.problems);
    r.tables = tables(sec("cron"), &mut r.problems);
    let n = sec("netplan");
    r.netplan = (1..=count(n, "count"))
        .map(|i| file(n, &format!("n.{i}"), &val(n, &format!("n.{i}.path"))))
        .collect();
    if let Some(t) = report.sections.get("tailscale") {
        r.tailscale = tailscale(t, &mut r.problems);
    }
    r
}

/// The Proxmox host's answer to [`qm_read`]: ipconfig0 and nameserver.
pub fn parse_qm(report: &Report, vmid: u32, r: &mut Reading) {
    let Some(s) = report.sections.get("qm") else {
        r.problems.push(format!("qm config {vmid}: no answer"));
        return;
    };
    if let Some(u) = s.get("unknown") {
        r.problems.push(format!("qm config {vmid}: {u}"));
        return;
    }
    if s.get("rc") != Some("0") {
        r.problems.push(format!(
            "`qm config {vmid}` failed: {}",
            s.get("config").unwrap_or_default().trim()
        ));
        return;
    }
    for line in s.get("config").unwrap_or_default().lines() {
        match line.split_once(": ") {
            Some(("ipconfig0", v)) => r.ipconfig0 = Some(v.trim().to_string()),
            Some(("nameserver", v)) => r.nameserver = Some(v.trim().to_string()),
            _ => {}
        }
    }
}
