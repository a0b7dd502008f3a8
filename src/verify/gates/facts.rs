//! V12: a fact stated twice must be stated the same way both times.
//!
//! The registries repeat some facts (a host's ssh user, a service's compose
//! file and container, a VM id, an address). When two statements disagree the
//! tool cannot know which one is true, so both places are named.

use super::{host, service, ssh_target, stack, vm};
use crate::diag::{Finding, Place};
use crate::model::{Via, expand_home, is_active};
use crate::verify::gates::images::tag_of;
use crate::verify::{Ctx, Gate};

pub const AGREE: Gate = Gate {
    id: "V12",
    name: "facts stated twice agree",
    help: "Where two places state one fact (ssh user, Tailscale address, LAN address, compose directory, container, VM id, deploy target, application version), they give the same value.",
    subject: "fact stated in two places",
    run: agree,
};

fn clash(what: &str, a: Place, a_val: &str, b: Place, b_val: &str) -> Finding {
    Finding::error(
        "V12",
        a,
        format!("{what} is stated twice with two values: `{a_val}` and `{b_val}`"),
    )
    .label(format!("says `{a_val}`"))
    .help("decide which value is true and write it in both places (or remove one)")
    .related(b, format!("says `{b_val}`"))
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Compare one fact stated in two places; count the comparison.
fn same(n: &mut usize, out: &mut Vec<Finding>, what: &str, a: (Place, &str), b: (Place, &str)) {
    *n += 1;
    if a.1 != b.1 {
        out.push(clash(what, a.0, a.1, b.0, b.1));
    }
}

/// One fact stated in several files: one finding when they disagree, at the
/// first statement, naming every other place.
fn all_agree(n: &mut usize, what: &str, said: &[(Place, String)]) -> Option<Finding> {
    if said.len() < 2 {
        return None;
    }
    *n += 1;
    let (first, value) = &said[0];
    let other = said.iter().find(|(_, v)| v != value)?;
    let mut f = clash(what, first.clone(), value, other.0.clone(), &other.1);
    if said.len() > 2 {
        f.message = format!(
            "{what} is stated in {} places with two values: `{value}` and `{}`",
            said.len(),
            other.1
        );
    }
    for (place, v) in &said[1..] {
        if place != &other.0 {
            f = f.related(place.clone(), format!("says `{v}`"));
        }
    }
    Some(f)
}

/// The facts about host `id` that SERVICE_REGISTRY.yaml, ssh.targets.yaml and
/// vm.lifecycle.yaml each state: ssh user, Tailscale address, LAN address, VM id.
fn host_statements(ctx: &Ctx, id: &str) -> [(&'static str, Vec<(Place, String)>); 4] {
    let b = ctx.bindings;
    let (mut user, mut ts, mut lan, mut vmid) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    if let Some(h) = ctx.services.hosts.get(id) {
        if let Some(u) = &h.ssh_user {
            user.push((host(id, &["ssh_user"]), u.clone()));
        }
        if let Some(a) = &h.tailscale_ip {
            ts.push((host(id, &["tailscale_ip"]), a.clone()));
        }
        if let Some(v) = h.vmid {
            vmid.push((host(id, &["vmid"]), v.to_string()));
        }
    }
    if let Some(t) = b.target(id) {
        if let Some(u) = b.user_of(t) {
            let place = if t.user.is_some() {
                ssh_target(t.index, "user")
            } else {
                Place::value(crate::diag::FileKind::SshTargets, "/ssh/defaults/user")
            };
            user.push((place, u.to_string()));
        }
        if let Some(a) = &t.tailscale_ip {
            ts.push((ssh_target(t.index, "tailscale_ip"), a.clone()));
        }
        // `host` is the LAN address unless the target is reached over Tailscale.
        if let Some(a) = t
            .host
            .as_ref()
            .filter(|a| is_ip(a) && t.tailscale_ip.as_ref() != Some(*a))
        {
            lan.push((ssh_target(t.index, "host"), a.clone()));
        }
    }
    if let Some(v) = b.vm_of_host(id).filter(|v| is_active(v.status.as_deref())) {
        if let Some(u) = &v.ssh_user {
            user.push((vm(v.index, "ssh_user"), u.clone()));
        }
        if let Some(a) = &v.tailscale_ip {
            ts.push((vm(v.index, "tailscale_ip"), a.clone()));
        }
        if let Some(a) = &v.lan_ip {
            lan.push((vm(v.index, "lan_ip"), a.clone()));
        }
        if !vmid.is_empty() {
            vmid.push((vm(v.index, "id"), v.id.to_string()));
        }
    }
    [
        ("ssh user", user),
        ("Tailscale address", ts),
        ("LAN address", lan),
        ("VM id", vmid),
    ]
}

/// SERVICE_REGISTRY hosts, ssh.targets.yaml and vm.lifecycle.yaml agree on
/// each host's ssh user, Tailscale address, LAN address and VM id.
fn binding_facts(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let b = ctx.bindings;
    let mut ids: Vec<&str> = ctx.services.hosts.keys().map(String::as_str).collect();
    for t in &b.ssh_targets {
        if !ids.contains(&t.id.as_str()) {
            ids.push(&t.id);
        }
    }
    let mut out = Vec::new();
    for id in ids {
        for (fact, said) in host_statements(ctx, id) {
            out.extend(all_agree(n, &format!("the {fact} of host `{id}`"), &said));
        }
    }
    out
}

/// A live service's compose folder is one docker.compose.targets.yaml found
/// on its host (`~` is the home of the host's ssh user, as the operator's
/// tooling logs in). Only a warning: the targets list what was discovered,
/// so spine cannot tell which of the two is stale.
fn compose_dirs(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let b = ctx.bindings;
    let mut out = Vec::new();
    for (id, s) in &ctx.services.services {
        let (Some(compose), true) = (&s.compose, is_active(s.status.as_deref())) else {
            continue;
        };
        let Some(dirs) = b.compose_dirs.get(&s.host) else {
            continue;
        };
        let user = b
            .target(&s.host)
            .and_then(|t| b.user_of(t))
            .or(ctx
                .services
                .hosts
                .get(&s.host)
                .and_then(|h| h.ssh_user.as_deref()))
            .unwrap_or("root");
        let file = expand_home(compose, user);
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        *n += 1;
        // The compose file is in the folder found, or in a folder below it.
        let inside = |d: &crate::model::ComposeDir| {
            let found = expand_home(&d.path, user);
            let found = found.trim_end_matches('/');
            dir == found || dir.strip_prefix(found).is_some_and(|r| r.starts_with('/'))
        };
        if dirs.iter().any(inside) {
            continue;
        }
        let place = |d: &crate::model::ComposeDir| {
            Place::value(
                crate::diag::FileKind::ComposeTargets,
                crate::diag::pointer([
                    "targets",
                    d.host.as_str(),
                    "stacks",
                    &d.index.to_string(),
                    "path",
                ]),
            )
        };
        let listed: Vec<&str> = dirs.iter().map(|d| d.path.as_str()).collect();
        let mut f = Finding::warning(
            "V12",
            service(id, "compose"),
            format!(
                "the compose folder of `{id}` ({dir}) is not one docker.compose.targets.yaml found on host `{}`",
                s.host
            ),
        )
        .label(format!("in {dir}"))
        .help(format!(
            "found on `{}`: {}; correct the service's `compose`, or the targets list if the folder moved",
            s.host,
            listed.join(", ")
        ));
        for d in dirs {
            f = f.related(place(d), format!("found: {}", d.path));
        }
        out.push(f);
    }
    out
}

fn agree(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = binding_facts(ctx, n);
    out.extend(compose_dirs(ctx, n));
    for (id, h) in &ctx.services.hosts {
        let Some(d) = &h.desired else { continue };
        *n += 1;
        if let (Some(a), Some(b)) = (&h.ssh_user, &d.ssh_user)
            && a != b
        {
            out.push(clash(
                &format!("the ssh user of host `{id}`"),
                host(id, &["desired", "ssh_user"]),
                b,
                host(id, &["ssh_user"]),
                a,
            ));
        }
        for (j, a) in d.access.iter().enumerate() {
            let place = host(id, &["desired", "access", &j.to_string(), "address"]);
            match a.via {
                Via::Tailscale if is_ip(&a.address) => {
                    if let Some(ts) = h.tailscale_ip.as_ref().filter(|ts| **ts != a.address) {
                        out.push(clash(
                            &format!("the Tailscale address of host `{id}`"),
                            place,
                            &a.address,
                            host(id, &["tailscale_ip"]),
                            ts,
                        ));
                    }
                }
                Via::Tailscale => {
                    if let Some(t) = d
                        .tailscale
                        .as_ref()
                        .filter(|t| t.hostname != a.address.split('.').next().unwrap_or_default())
                    {
                        out.push(clash(
                            &format!("the Tailscale name of host `{id}`"),
                            place,
                            &a.address,
                            host(id, &["desired", "tailscale", "hostname"]),
                            &t.hostname,
                        ));
                    }
                }
                Via::Lan | Via::Jump if is_ip(&a.address) => {
                    if let Some(n) = d.network.as_ref().filter(|n| n.ip() != a.address) {
                        out.push(clash(
                            &format!("the LAN address of host `{id}`"),
                            place,
                            &a.address,
                            host(id, &["desired", "network", "address"]),
                            n.ip(),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        if let (Some(p), Some(t)) = (&st.path, &st.deploy_target)
            && p.starts_with("proxmox:vm-")
            && t.starts_with("proxmox:vm-")
        {
            same(
                n,
                &mut out,
                &format!("the VM of stack `{}`", st.stack_id),
                (stack(i, &["deploy_target"]), t),
                (stack(i, &["path"]), p),
            );
        }
        let Some(d) = &st.desired else { continue };
        *n += 1;
        if let Some(t) = &st.deploy_target
            && ctx.services.hosts.contains_key(t)
            && *t != d.host
        {
            out.push(clash(
                &format!("the host of stack `{}`", st.stack_id),
                stack(i, &["desired", "host"]),
                &d.host,
                stack(i, &["deploy_target"]),
                t,
            ));
        }
        let target = ctx.services.hosts.get(&d.host);
        if let (Some(path), Some(h)) = (&st.path, target)
            && let (Some(n), Some(vmid)) = (path.strip_prefix("proxmox:vm-"), h.vmid)
            && n != vmid.to_string()
        {
            out.push(clash(
                &format!("the VM of stack `{}`", st.stack_id),
                stack(i, &["path"]),
                path,
                host(&d.host, &["vmid"]),
                &vmid.to_string(),
            ));
        }
        let Some(c) = &d.compose else { continue };
        let user = target
            .and_then(|h| {
                h.desired
                    .as_ref()
                    .and_then(|d| d.ssh_user.clone())
                    .or_else(|| h.ssh_user.clone())
            })
            .unwrap_or_else(|| "root".into());
        let compose_file = format!("{}/docker-compose.yml", c.directory.trim_end_matches('/'));
        // One finding per differing value, naming every service that states it.
        let mut differing: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, cs) in &c.services {
            let Some(sid) = &cs.registry else { continue };
            let Some(s) = ctx.services.services.get(sid) else {
                continue;
            };
            if let Some(path) = &s.compose
                && expand_home(path, &user) != compose_file
            {
                match differing.iter_mut().find(|(p, _)| p == path) {
                    Some((_, ids)) => ids.push(sid),
                    None => differing.push((path, vec![sid])),
                }
            }
            if let (Some(a), Some(b)) = (&cs.container, &s.container)
                && a != b
            {
                out.push(clash(
                    &format!("the container of `{sid}`"),
                    stack(i, &["desired", "compose", "services", name, "container"]),
                    a,
                    service(sid, "container"),
                    b,
                ));
            }
        }
        for (path, ids) in differing {
            let what = if ids.len() == 1 {
                format!("the compose file of `{}`", ids[0])
            } else {
                format!(
                    "the compose file of `{}` (and {} more services)",
                    ids[0],
                    ids.len() - 1
                )
            };
            let mut f = clash(
                &what,
                stack(i, &["desired", "compose", "directory"]),
                &compose_file,
                service(ids[0], "compose"),
                path,
            );
            if path.starts_with('~') {
                f.help = format!("{} (`~` is the home of ssh user `{user}` here)", f.help);
            }
            out.push(f);
        }
        if let Some(version) = &c.version {
            for (name, cs) in &c.services {
                let (Some(tag), None) = tag_of(&cs.image) else {
                    continue;
                };
                let app = cs.image.contains("/immich-server")
                    || cs.image.contains("/immich-machine-learning");
                if app && tag != version {
                    out.push(clash(
                        &format!("the version of stack `{}`", st.stack_id),
                        stack(i, &["desired", "compose", "services", name, "image"]),
                        tag,
                        stack(i, &["desired", "compose", "version"]),
                        version,
                    ));
                }
            }
        }
    }
    out
}
