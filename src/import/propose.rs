//! From a host's [`Reading`] to proposed registry text: the host's
//! `desired:` section (SERVICE_REGISTRY), each compose project's stack
//! `desired:` section (STACK_REGISTRY; an existing stack entry when one
//! matches, else a new entry) and its compose files for `ops/staged/`.
//! Every value goes through [`yamltext`]; no secret value is ever known here
//! (the host sent only the names of keys that may be secret).

use super::read::{EnvKey, HostFile, Project, Reading};
use super::yamltext::{pair, scalar};
use crate::model::{Network, NetworkOwner, Registry, Stack, Via};

/// What import proposes for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proposal {
    /// The host's `desired:` body (lines indented from 0), when the host has none yet.
    pub host: Option<Vec<String>>,
    pub stacks: Vec<StackProposal>,
    /// What the operator must know: what was imported where, what was not and why.
    pub notes: Vec<String>,
}

/// One compose project's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackProposal {
    pub stack_id: String,
    /// Index of the matching entry in STACK_REGISTRY `stacks:`; `None`: a new entry.
    pub existing: Option<usize>,
    /// The stack's `desired:` body (lines indented from 0).
    pub desired: Vec<String>,
    /// `ops/staged/<stack>/docker-compose.yml` and the host's text for it.
    pub staged: (String, String),
}

/// What the proposal needs beyond the reading.
pub struct Facts<'a> {
    pub reg: &'a Registry,
    pub host: &'a str,
    /// secrets.binding.yaml `infisical.project` (the project id), when given.
    pub binding_project: Option<&'a str>,
}

fn lines_of(key: &str, body: Vec<String>) -> Vec<String> {
    let mut out = vec![format!("{key}:")];
    out.extend(body.into_iter().map(|l| format!("  {l}")));
    out
}

/// The host's `desired:` body: login user, the path that answered, network, Tailscale.
fn host_section(f: &Facts, r: &Reading, notes: &mut Vec<String>) -> Result<Vec<String>, String> {
    let mut out = vec![pair("ssh_user", &r.user)?];
    if let Some(route) = &r.route {
        let via = match route.via {
            Via::Tailscale => "tailscale",
            Via::Lan => "lan",
            Via::Jump => "jump",
            Via::SshConfig => "ssh_config",
        };
        let mut item = vec![
            format!("- via: {via}"),
            format!("  {}", pair("address", &route.address)?),
        ];
        if let Some(p) = route.port {
            item.push(format!("  port: {p}"));
        }
        out.extend(lines_of("access", item));
    }
    if let Some(net) = network(f, r, notes)? {
        let mut body = vec![
            format!(
                "owner: {}",
                if net.owner == NetworkOwner::CloudInit {
                    "cloud-init"
                } else {
                    "netplan"
                }
            ),
            pair("file", &net.file)?,
            pair("interface", &net.interface)?,
        ];
        if let Some(m) = &net.mac {
            body.push(pair("mac", m)?);
        }
        body.push(pair("address", &net.address)?);
        body.push(pair("gateway", &net.gateway)?);
        let list = |v: &[String]| -> Result<String, String> {
            Ok(format!(
                "[{}]",
                v.iter()
                    .map(|s| scalar(s))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(", ")
            ))
        };
        body.push(format!("nameservers: {}", list(&net.nameservers)?));
        if !net.search.is_empty() {
            body.push(format!("search: {}", list(&net.search)?));
        }
        out.extend(lines_of("network", body));
    }
    if let Some((name, dns)) = &r.tailscale {
        let mut body = vec![pair("hostname", name)?];
        if let Some(d) = dns {
            body.push(format!("accept_dns: {d}"));
        }
        out.extend(lines_of("tailscale", body));
        notes.push(format!("tailscale: hostname `{name}` imported"));
    } else {
        notes.push(
            "tailscale: not running on the host (or not installed): no `tailscale:` section".into(),
        );
    }
    Ok(out)
}

/// The one netplan file's network, when spine's `network:` section renders
/// it back with the same meaning; otherwise said in `notes`.
fn network(f: &Facts, r: &Reading, notes: &mut Vec<String>) -> Result<Option<Network>, String> {
    let files: Vec<&HostFile> = r.netplan.iter().collect();
    let [file] = files[..] else {
        notes.push(match files.len() {
            0 => "network: no netplan file on the host: no `network:` section".into(),
            n => format!("network: {n} netplan files ({}): spine manages one; no `network:` section (write it by hand)", files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")),
        });
        return Ok(None);
    };
    let text = match &file.text {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!(
                "network: {}: {e}: no `network:` section",
                file.path
            ));
            return Ok(None);
        }
    };
    let h = f.reg.services.as_ref().and_then(|s| s.hosts.get(f.host));
    let vm = h.is_some_and(|h| h.vmid.is_some() && h.proxmox_host.is_some());
    let Some(mut net) = parse_netplan(text, &file.path) else {
        notes.push(format!(
            "network: {} is not one ethernet with one address and a default route: no `network:` section (write it by hand)",
            file.path
        ));
        return Ok(None);
    };
    net.owner = if vm && r.ipconfig0.is_some() {
        NetworkOwner::CloudInit
    } else {
        NetworkOwner::Netplan
    };
    let rendered = crate::render::Templates::new(None)
        .and_then(|t| {
            t.render(
                "netplan/cloud-init.yaml.j2",
                minijinja::context! { host => minijinja::context! { id => f.host }, network => minijinja::value::Serde(&net) },
            )
        })
        .map_err(|e| e.to_string())?;
    if meaning(&rendered) != meaning(text) {
        notes.push(format!(
            "network: {} holds settings spine's `network:` section cannot express: no `network:` section (write it by hand)",
            file.path
        ));
        return Ok(None);
    }
    if net.owner == NetworkOwner::CloudInit {
        let want = format!("ip={},gw={}", net.address, net.gateway);
        match r.ipconfig0.as_deref() {
            Some(ip0) if same_ipconfig(ip0, &want) => {}
            Some(ip0) => notes.push(format!(
                "network: the VM's ipconfig0 on its Proxmox host is `{ip0}` but the VM runs with `{want}` (GAP-OP-094): imported what runs; `spine plan` shows ipconfig0 to change"
            )),
            None => {}
        }
    }
    notes.push(format!(
        "network: {} {} on {} imported ({})",
        net.address, net.gateway, net.interface, file.path
    ));
    Ok(Some(net))
}

fn same_ipconfig(a: &str, b: &str) -> bool {
    let set = |s: &str| {
        let mut v: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
        v.sort();
        v
    };
    set(a) == set(b)
}

fn meaning(text: &str) -> Option<serde_json::Value> {
    crate::source::yaml::parse(text)
        .ok()
        .map(|(n, _)| n.to_json())
}

fn parse_netplan(text: &str, path: &str) -> Option<Network> {
    let v = meaning(text)?;
    let eth = v["network"]["ethernets"].as_object()?;
    let [(name, e)] = eth.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let [addr] = e["addresses"].as_array()?.as_slice() else {
        return None;
    };
    let gw = e["routes"]
        .as_array()?
        .iter()
        .find(|r| r["to"] == "default" || r["to"] == "0.0.0.0/0")?["via"]
        .as_str()?;
    let strs = |x: &serde_json::Value| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    Some(Network {
        owner: NetworkOwner::Netplan,
        file: path.to_string(),
        interface: e["set-name"].as_str().unwrap_or(name).to_string(),
        mac: e["match"]["macaddress"].as_str().map(String::from),
        address: addr.as_str()?.to_string(),
        gateway: gw.to_string(),
        nameservers: strs(&e["nameservers"]["addresses"]),
        search: strs(&e["nameservers"]["search"]),
        kind: Default::default(),
    })
}

/// The existing stack entry for this project on this host, if one matches:
/// tied to the host (desired.host, deploy_target, `proxmox:vm-N` path, or
/// docker.compose.targets.yaml listing the folder) and named like the project
/// (stack id) or holding a compose file in its folder.
fn matching_stack(f: &Facts, p: &Project, notes: &mut Vec<String>) -> Option<usize> {
    let stacks = &f.reg.stacks.as_ref()?.stacks;
    let vm = f
        .reg
        .services
        .as_ref()
        .and_then(|s| s.hosts.get(f.host))
        .and_then(|h| h.vmid)
        .map(|id| format!("proxmox:vm-{id}"));
    let listed = f
        .reg
        .bindings
        .compose_dirs
        .get(f.host)
        .is_some_and(|d| d.iter().any(|c| c.path.trim_end_matches('/') == p.dir));
    let on_host = |s: &Stack| {
        s.desired.as_ref().is_some_and(|d| d.host == f.host)
            || s.deploy_target.as_deref() == Some(f.host)
            || vm.is_some() && (s.deploy_target == vm || s.path == vm)
            || listed
    };
    let found: Vec<usize> = stacks
        .iter()
        .enumerate()
        .filter(|(_, s)| s.stack_id == p.name && on_host(s))
        .map(|(i, _)| i)
        .collect();
    if found.len() > 1 {
        notes.push(format!(
            "stack `{}`: {} entries of STACK_REGISTRY match; imported into the first (entry {})",
            p.name,
            found.len(),
            found[0] + 1
        ));
    }
    found.first().copied()
}

/// The Infisical project a stack's secrets go to: a service of this host
/// whose compose file is in the project's folder names it; else the one
/// secrets.binding.yaml names; else the only one there is.
fn secrets_project(f: &Facts, p: &Project) -> Option<String> {
    let s = f.reg.services.as_ref()?;
    let user = s
        .hosts
        .get(f.host)
        .and_then(|h| h.ssh_user.clone())
        .unwrap_or_default();
    let known = |name: &String| s.infisical_projects.contains_key(name);
    s.services
        .values()
        .filter(|svc| svc.host == f.host)
        .filter(|svc| {
            svc.compose.as_deref().is_some_and(|c| {
                crate::model::expand_home(c, &user).starts_with(&format!("{}/", p.dir))
            })
        })
        .find_map(|svc| svc.secrets_project.clone().filter(known))
        .or_else(|| {
            let id = f.binding_project?;
            s.infisical_projects
                .iter()
                .find(|(_, v)| v.project_id.as_deref() == Some(id))
                .map(|(k, _)| k.clone())
        })
        .or_else(|| {
            (s.infisical_projects.len() == 1)
                .then(|| s.infisical_projects.keys().next().cloned())
                .flatten()
        })
}

/// A compose project name spine accepts (the schema's pattern).
fn project_name_ok(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn stack_section(
    f: &Facts,
    r: &Reading,
    p: &Project,
    stack_id: &str,
    notes: &mut Vec<String>,
) -> Result<Option<(Vec<String>, String)>, String> {
    let at = |e: String| {
        format!(
            "compose project `{}` on {}: {e}",
            p.name.escape_debug(),
            f.host
        )
    };
    if !project_name_ok(&p.name) {
        notes.push(at("its name is not a compose project name spine accepts ([a-z0-9][a-z0-9_-]*): not imported".into()));
        return Ok(None);
    }
    if let Some(why) = crate::safe::path_problem(&p.dir) {
        notes.push(at(format!(
            "its folder `{}` {why}: not imported",
            crate::safe::shown(&p.dir)
        )));
        return Ok(None);
    }
    if !crate::safe::name(stack_id) {
        notes.push(at(format!(
            "its stack id `{}` is not a plain name, so no ops/staged/ folder can be named after it: not imported",
            crate::safe::shown(stack_id)
        )));
        return Ok(None);
    }
    let [file] = &p.files[..] else {
        notes.push(at(format!(
            "{} compose files: spine installs one; not imported",
            p.files.len()
        )));
        return Ok(None);
    };
    let want = format!("{}/docker-compose.yml", p.dir.trim_end_matches('/'));
    if file.path != want {
        notes.push(at(format!(
            "its compose file is {}, spine installs {want}: not imported",
            file.path
        )));
        return Ok(None);
    }
    let text = match &file.text {
        Ok(t) => t.clone(),
        Err(e) => {
            notes.push(at(format!("{e}: not imported")));
            return Ok(None);
        }
    };
    if let Some(c) = text
        .lines()
        .find_map(|l| crate::safe::control_char(l, true))
    {
        return Err(at(format!(
            "{} holds {}: refused",
            file.path,
            crate::safe::char_name(c)
        )));
    }
    let staged = format!("ops/staged/{stack_id}/docker-compose.yml");
    notes.extend(super::pins::notes(p, &text, &staged).into_iter().map(at));
    let mut compose = vec![
        pair("project", &p.name)?,
        pair("directory", p.dir.trim_end_matches('/'))?,
        pair("file", &staged)?,
    ];
    let env = p.env.clone().unwrap_or_default();
    let plain: Vec<(&String, &String)> = env
        .iter()
        .filter_map(|k| match k {
            EnvKey::Plain(k, v) => Some((k, v)),
            _ => None,
        })
        .collect();
    let secret: Vec<&str> = env
        .iter()
        .filter_map(|k| match k {
            EnvKey::Secret(k) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    if !plain.is_empty() {
        let body = plain
            .iter()
            .map(|(k, v)| pair(k, v).map_err(|e| at(format!(".env: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        compose.extend(lines_of("env", body));
    }
    if !secret.is_empty() {
        let project = secrets_project(f, p);
        let proj = project.clone().unwrap_or_else(|| p.name.clone());
        let mut body = Vec::new();
        for k in &secret {
            let k = scalar(k).map_err(|e| at(format!(".env: the key {e}")))?;
            body.push(format!("{k}: {{project: {}, key: {k}}}", scalar(&proj)?));
        }
        compose.extend(lines_of("secrets", body));
        notes.push(at(format!(
            "{} secret key(s) ({}) imported as references to Infisical project `{proj}`; their values never left the host: put them there before `spine apply`{}",
            secret.len(),
            secret.join(", "),
            if project.is_none() { format!(" (and add `{proj}` under infisical_projects in SERVICE_REGISTRY.yaml)") } else { String::new() }
        )));
    }
    if p.env.is_some() && (p.env_mode != "600" || p.env_owner != r.user) {
        notes.push(at(format!(
            "its .env is mode {} owned by {}; spine keeps it 0600 owned by {}: `spine plan` shows that change",
            p.env_mode, p.env_owner, r.user
        )));
    }
    if file.mode != "644" || file.owner != r.user {
        notes.push(at(format!(
            "{} is mode {} owned by {}; spine keeps it 0644 owned by {}: `spine plan` shows that change",
            file.path, file.mode, file.owner, r.user
        )));
    }
    match p.status.as_deref() {
        Some(st) if st.starts_with("running") && !st.contains(',') => {}
        Some(st) => notes.push(at(format!(
            "`docker compose ls` says `{st}`: imported as it is written; `spine plan` shows the containers that do not run"
        ))),
        None => notes.push(at("`docker compose ls` does not list it: imported from its containers' labels".into())),
    }
    let mut out = vec![pair("host", f.host)?];
    out.extend(lines_of("compose", compose));
    Ok(Some((out, text)))
}

/// Cron jobs of the login user and root: written as a commented proposal
/// (a job outside spine's managed block would run twice once spine adds
/// the block); lines under a legacy root are reported, not proposed.
fn cron_lines(f: &Facts, r: &Reading, notes: &mut Vec<String>) -> Vec<String> {
    let roots: Vec<String> = f
        .reg
        .stacks
        .iter()
        .flat_map(|s| &s.stacks)
        .filter_map(|s| s.desired.as_ref())
        .flat_map(|d| d.legacy_roots.iter().cloned())
        .collect();
    let mut out = Vec::new();
    for t in &r.tables {
        if t.user.is_empty() {
            notes.push(format!(
                "cron: {} is not imported (spine manages users' crontabs only)",
                t.name
            ));
            continue;
        }
        if t.user != r.user && t.user != "root" {
            continue;
        }
        let expanded: Vec<String> = roots
            .iter()
            .map(|x| crate::model::expand_home(x, &t.user))
            .collect();
        let rs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let (before, block, after) = crate::kinds::cron::split_block(&t.text);
        if block.is_some() {
            notes.push(format!("cron: {}'s crontab has a spine managed block already: its jobs belong to the registry that wrote it", t.user));
        }
        for line in before.iter().chain(after.iter()) {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if crate::kinds::cron::refers_to(l, &rs) {
                notes.push(format!(
                    "cron: `{l}` ({}) refers to a legacy root: reported, not imported",
                    t.user
                ));
                continue;
            }
            let fields: Vec<&str> = l.split_whitespace().collect();
            let job = if l.starts_with('@') {
                fields.len() >= 2
            } else {
                fields.len() >= 6 && l.starts_with(|c: char| c.is_ascii_digit() || c == '*')
            };
            if !job {
                notes.push(format!(
                    "cron: `{l}` ({}) is not a job line: not imported",
                    t.user
                ));
                continue;
            }
            let (schedule, command) = if fields[0].starts_with('@') {
                (fields[0].to_string(), fields[1..].join(" "))
            } else {
                (fields[..5].join(" "), fields[5..].join(" "))
            };
            let (Ok(s), Ok(c)) = (scalar(&schedule), scalar(&command)) else {
                notes.push(format!(
                    "cron: a job of {} holds a control character: not imported",
                    t.user
                ));
                continue;
            };
            let id = format!("{}-{}", t.user, out.len() / 4 + 1);
            out.extend([
                format!("#   - id: {id}"),
                format!("#     user: {}", t.user),
                format!("#     schedule: {s}"),
                format!("#     command: {c}"),
            ]);
            notes.push(format!(
                "cron: `{l}` ({}) proposed commented out under `cron:`: to let spine manage it, uncomment it and delete the line from the crontab in the same change (it would run twice)",
                t.user
            ));
        }
    }
    if out.is_empty() {
        return out;
    }
    let mut v = vec![
        "# Cron jobs found outside spine's managed block (spine import):".to_string(),
        "# cron:".to_string(),
    ];
    v.extend(out);
    v
}

/// The proposal for host `f.host` from what it answered.
pub fn propose(f: &Facts, r: &Reading) -> Result<Proposal, String> {
    let mut notes = Vec::new();
    let host = f
        .reg
        .services
        .as_ref()
        .and_then(|s| s.hosts.get(f.host))
        .ok_or_else(|| format!("host `{}` is not in SERVICE_REGISTRY.yaml", f.host))?;
    let host_body = if host.desired.is_some() {
        notes.push(format!(
            "host `{}` has a `desired:` section already: left as it is",
            f.host
        ));
        None
    } else {
        Some(host_section(f, r, &mut notes)?)
    };
    let stacks = f
        .reg
        .stacks
        .as_ref()
        .map(|s| s.stacks.as_slice())
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in &r.projects {
        let existing = matching_stack(f, p, &mut notes);
        let mut stack_id = existing.map_or_else(|| p.name.clone(), |i| stacks[i].stack_id.clone());
        if existing.is_none() && stacks.iter().any(|s| s.stack_id == stack_id) {
            stack_id = format!("{}-{}", p.name, f.host);
        }
        if let Some(i) = existing
            && stacks[i].desired.is_some()
        {
            notes.push(format!(
                "stack `{stack_id}` has a `desired:` section already: left as it is"
            ));
            continue;
        }
        let Some((desired, text)) = stack_section(f, r, p, &stack_id, &mut notes)? else {
            continue;
        };
        notes.push(match existing {
            Some(i) => format!("stack `{stack_id}`: compose project `{}` in {} imported into the existing entry {} of STACK_REGISTRY", p.name, p.dir, i + 1),
            None => format!("stack `{stack_id}`: compose project `{}` in {} imported as a new entry of STACK_REGISTRY", p.name, p.dir),
        });
        out.push(StackProposal {
            staged: (format!("ops/staged/{stack_id}/docker-compose.yml"), text),
            stack_id,
            existing,
            desired,
        });
    }
    let cron = cron_lines(f, r, &mut notes);
    if let Some(first) = out.first_mut() {
        first.desired.extend(cron);
    } else if !cron.is_empty() {
        notes.push("cron: no compose project to hold the jobs: none proposed".into());
    }
    if r.projects.is_empty() {
        notes.push("compose: no compose project on the host".into());
    }
    notes.extend(r.problems.iter().map(|p| format!("could not read: {p}")));
    Ok(Proposal {
        host: host_body,
        stacks: out,
        notes,
    })
}
