//! `spine import HOST`: read what runs on a host (read-only, one round trip;
//! its VM's `qm config` on the Proxmox host), propose the registry sections
//! that describe it, and write them into the operator's files as added lines
//! (plus the compose files under `ops/staged/`), never re-serialising what is
//! there. Stages: [`read`] (scripts and their answers), [`propose`] (the
//! sections as text; [`pins`]: what a moving tag could be pinned to),
//! [`edit`] (where they go in the files), then
//! [`changes`], [`diff`] and [`write`] here.

pub mod edit;
pub mod pins;
pub mod propose;
pub mod read;
pub mod yamltext;

use std::path::{Path, PathBuf};

use crate::diag::FileKind;
use crate::gather::ssh::{self, Route, SshOptions};
use crate::load::Loaded;
use crate::model::{Registry, Via};
use edit::{Insert, apply, end_of_mapping, end_of_sequence, indented};
use propose::{Proposal, StackProposal};
use read::Reading;

/// One file import would write: its old text (`None`: a new file) and new text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    /// The path as shown (relative to the repository).
    pub shown: String,
    pub old: Option<String>,
    pub new: String,
}

impl Change {
    /// A registry file as read, and its new text.
    fn edit(root: &Path, source: &crate::source::SourceFile, new: String) -> Change {
        Change {
            path: source.path.clone(),
            shown: relative(root, &source.path),
            old: Some(source.text.to_string()),
            new,
        }
    }
}

/// `path` as shown: relative to the repository `root` when inside it.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// How to reach a host that has no `desired.access` yet: its `ssh:` name
/// through ssh_config, its LAN address from ssh.targets.yaml, its Tailscale
/// address; as the user the registry gives it. A host only ssh.targets.yaml
/// knows (a Proxmox host, often) is reached at its address there.
pub fn routes(reg: &Registry, host: &str) -> Vec<Route> {
    let services = reg.services.clone().unwrap_or_default();
    let known = ssh::routes(&services, host);
    if !known.is_empty() {
        return known;
    }
    let h = services.hosts.get(host);
    let b = &reg.bindings;
    let target = h
        .and_then(|h| h.ssh.as_deref())
        .and_then(|s| b.target(s))
        .or_else(|| b.target(host));
    let user = h
        .and_then(|h| h.ssh_user.clone())
        .or_else(|| target.and_then(|t| b.user_of(t)).map(String::from))
        .unwrap_or_else(|| "root".into());
    let mut out = Vec::new();
    let mut add = |via: Via, address: Option<&str>| {
        if let Some(a) = address.filter(|a| !a.is_empty())
            && !out.iter().any(|r: &Route| r.address == a)
        {
            out.push(Route {
                via,
                user: user.clone(),
                address: a.to_string(),
                port: None,
                jump: None,
            });
        }
    };
    add(Via::SshConfig, h.and_then(|h| h.ssh.as_deref()));
    add(Via::Lan, target.and_then(|t| t.host.as_deref()));
    add(
        Via::Tailscale,
        h.and_then(|h| h.tailscale_ip.as_deref())
            .or_else(|| target.and_then(|t| t.tailscale_ip.as_deref())),
    );
    out
}

/// Read host `host`: one round trip over the first path that answers, and
/// its VM's settings on the Proxmox host. `Err` when the host cannot be read.
pub async fn read_host(reg: &Registry, host: &str, opts: &SshOptions) -> Result<Reading, String> {
    let paths = routes(reg, host);
    if paths.is_empty() {
        return Err(format!(
            "host `{host}` has no way to reach it in the registry: give it `ssh:` (an ssh_config name) or `desired.access` in SERVICE_REGISTRY.yaml"
        ));
    }
    let reads = read::host_reads().map_err(|e| e.to_string())?;
    let (conn, route) = ssh::connect(&paths, opts).await.map_err(|f| {
        let tried: Vec<String> = f
            .iter()
            .map(|p| format!("  {}: {} ({})", p.route, p.detail, p.kind.hint()))
            .collect();
        format!(
            "host `{host}` is unreachable on every path; nothing was written:\n{}",
            tried.join("\n")
        )
    })?;
    let report = crate::gather::read_facts(&conn, host, &reads).await;
    crate::gather::transport::Conn::close(conn).await;
    let mut r = read::parse(
        &report.map_err(|e| format!("reading host `{host}` failed: {e}; nothing was written"))?,
    );
    r.route = Some(route);
    let h = reg.services.as_ref().and_then(|s| s.hosts.get(host));
    if let Some((vmid, pve)) = h.and_then(|h| Some((h.vmid?, h.proxmox_host.clone()?))) {
        let qm = read::qm_read(vmid).map_err(|e| e.to_string())?;
        let facts =
            crate::gather::gather_host(pve.clone(), routes(reg, &pve), qm, opts.clone()).await;
        match (facts.report, facts.error) {
            (Some(rep), _) => read::parse_qm(&rep, vmid, &mut r),
            (None, e) => r.problems.push(format!(
                "`qm config {vmid}` on {pve}: {}",
                e.unwrap_or_else(|| facts
                    .failures
                    .iter()
                    .map(|f| format!("{}: {}", f.route, f.detail))
                    .collect::<Vec<_>>()
                    .join("; "))
            )),
        }
    }
    Ok(r)
}

fn doc(loaded: &Loaded, kind: FileKind) -> Result<&crate::load::Document, String> {
    loaded
        .docs
        .get(&kind)
        .ok_or_else(|| format!("{} was not read", kind.file_name()))
}

fn new_stack_entry(reg: &Registry, host: &str, s: &StackProposal) -> Result<Vec<String>, String> {
    let vm = reg
        .services
        .as_ref()
        .and_then(|x| x.hosts.get(host))
        .and_then(|h| h.vmid);
    let mut out = vec![
        yamltext::pair("stack_id", &s.stack_id)?,
        yamltext::pair("name", &s.stack_id)?,
    ];
    if let Some(id) = vm {
        out.push(format!("path: proxmox:vm-{id}"));
    }
    out.push(format!(
        "deploy_method: {}",
        if vm.is_some() { "manual_vm" } else { "manual" }
    ));
    out.push(yamltext::pair("deploy_target", host)?);
    out.push("status: active".into());
    out.push(yamltext::pair(
        "notes",
        &format!("Imported from {host} by spine import."),
    )?);
    out.push("desired:".into());
    out.extend(s.desired.iter().map(|l| format!("  {l}")));
    Ok(out)
}

/// The files import would write for `proposal`, from the registry as loaded
/// (`root`: the repository, where `ops/staged/` goes).
pub fn changes(
    loaded: &Loaded,
    reg: &Registry,
    root: &Path,
    host: &str,
    p: &Proposal,
) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    let shown = |path: &Path| relative(root, path);
    if let Some(body) = &p.host {
        let d = doc(loaded, FileKind::Services)?;
        let text = &d.source.text;
        let node = d.tree.locate_node(&format!(
            "/hosts/{}",
            host.replace('~', "~0").replace('/', "~1")
        ));
        let (at, indent) = node
            .and_then(|n| end_of_mapping(text, n))
            .ok_or_else(|| format!("{}: host `{host}` is not a block mapping import can add to: add its `desired:` by hand", d.source.name))?;
        let mut lines = vec!["desired:".to_string()];
        lines.extend(body.iter().map(|l| format!("  {l}")));
        let new = apply(
            text,
            &[Insert {
                at,
                text: indented(&lines, indent),
            }],
        );
        unchanged_but_added(&d.source.name, text, &new, |j| {
            if let Some(h) = j["hosts"][host].as_object_mut() {
                h.remove("desired");
            }
        })?;
        out.push(Change::edit(root, &d.source, new));
    }
    if !p.stacks.is_empty() {
        let d = doc(loaded, FileKind::Stacks)?;
        let text = &d.source.text;
        let stacks = d.tree.locate_node("/stacks");
        let mut inserts = Vec::new();
        for s in &p.stacks {
            match s.existing {
                Some(i) => {
                    let (at, indent) = stacks
                        .and_then(|n| n.locate_node(&format!("/{i}")))
                        .and_then(|n| end_of_mapping(text, n))
                        .ok_or_else(|| {
                            format!(
                                "{}: stack `{}` is not a block mapping import can add to",
                                d.source.name, s.stack_id
                            )
                        })?;
                    let mut lines = vec!["desired:".to_string()];
                    lines.extend(s.desired.iter().map(|l| format!("  {l}")));
                    inserts.push(Insert {
                        at,
                        text: indented(&lines, indent),
                    });
                }
                None => {
                    let (at, dash, blank) = stacks.and_then(|n| end_of_sequence(text, n)).ok_or_else(|| {
                        format!("{}: `stacks:` is not a block list import can add to: add stack `{}` by hand", d.source.name, s.stack_id)
                    })?;
                    let entry = new_stack_entry(reg, host, s)?;
                    let mut lines: Vec<String> = entry
                        .iter()
                        .enumerate()
                        .map(|(n, l)| {
                            if n == 0 {
                                format!("- {l}")
                            } else {
                                format!("  {l}")
                            }
                        })
                        .collect();
                    if blank {
                        lines.insert(0, String::new());
                    }
                    inserts.push(Insert {
                        at,
                        text: indented(&lines, dash),
                    });
                }
            }
        }
        let new = apply(text, &inserts);
        let added = p.stacks.iter().filter(|s| s.existing.is_none()).count();
        unchanged_but_added(&d.source.name, text, &new, |j| {
            if let Some(list) = j["stacks"].as_array_mut() {
                list.truncate(list.len().saturating_sub(added));
                for s in p.stacks.iter().filter_map(|s| s.existing) {
                    if let Some(e) = list.get_mut(s).and_then(|e| e.as_object_mut()) {
                        e.remove("desired");
                    }
                }
            }
        })?;
        out.push(Change::edit(root, &d.source, new));
    }
    for s in &p.stacks {
        let path = root.join(&s.staged.0);
        let old = std::fs::read_to_string(&path).ok();
        if old.as_deref() == Some(s.staged.1.as_str()) {
            continue;
        }
        if old.is_some() {
            return Err(format!(
                "{} exists and differs from the compose file on {host}: import never overwrites the operator's file; compare them, then move it aside or import with --dry-run",
                shown(&path)
            ));
        }
        out.push(Change {
            shown: shown(&path),
            path,
            old: None,
            new: s.staged.1.clone(),
        });
    }
    Ok(out)
}

/// The edited text, parsed, with the added sections taken out again
/// (`strip`), must mean exactly what the file meant before: the operator's
/// values are untouched (a `|+` block scalar's trailing lines, say).
fn unchanged_but_added(
    name: &str,
    old: &str,
    new: &str,
    strip: impl FnOnce(&mut serde_json::Value),
) -> Result<(), String> {
    let meaning = |t: &str| {
        crate::source::yaml::parse(t)
            .map(|(n, _)| n.to_json())
            .map_err(|e| {
                format!(
                    "{name}: the edited file does not parse ({}): add the section by hand",
                    e.message
                )
            })
    };
    let before = meaning(old)?;
    let mut after = meaning(new)?;
    strip(&mut after);
    if after != before {
        return Err(format!(
            "{name}: adding the section here would change the operator's values: add it by hand (spine import --dry-run shows it)"
        ));
    }
    Ok(())
}

/// A unified diff per file (only added lines for registry files).
pub fn diff(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let old = c.old.as_deref().unwrap_or_default();
        let from = if c.old.is_some() {
            format!("a/{}", c.shown)
        } else {
            "/dev/null".into()
        };
        let d = similar::TextDiff::from_lines(old, &c.new);
        out.push_str(
            &d.unified_diff()
                .context_radius(3)
                .header(&from, &format!("b/{}", c.shown))
                .to_string(),
        );
    }
    out
}

/// Write every change: each file is first written in full to a temporary
/// file beside it, then all are renamed into place; a file that changed
/// since it was read (or a staged file that appeared) refuses the whole
/// write before anything is renamed.
pub fn write(changes: &[Change]) -> Result<(), String> {
    use std::io::Write;
    for c in changes {
        let now = std::fs::read_to_string(&c.path).ok();
        if now != c.old {
            return Err(format!(
                "{} changed while import ran: nothing written; run import again",
                c.shown
            ));
        }
    }
    let mut staged = Vec::new();
    for c in changes {
        let dir = c
            .path
            .parent()
            .ok_or_else(|| format!("{}: no parent folder", c.shown))?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}; nothing written", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| format!("cannot write in {}: {e}; nothing written", dir.display()))?;
        tmp.write_all(c.new.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| format!("cannot write {}: {e}; nothing written", c.shown))?;
        if let Ok(m) = std::fs::metadata(&c.path) {
            let _ = std::fs::set_permissions(tmp.path(), m.permissions());
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
        }
        staged.push((tmp, c));
    }
    for (tmp, c) in staged {
        tmp.persist(&c.path)
            .map_err(|e| format!("cannot rename into {}: {}", c.shown, e.error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
