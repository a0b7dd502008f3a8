//! V12: a fact stated twice must be stated the same way both times.
//!
//! The registries repeat some facts (a host's ssh user, a service's compose
//! file and container, a VM id, an address). When two statements disagree the
//! tool cannot know which one is true, so both places are named.

use super::{host, service, stack};
use crate::diag::{Finding, Place};
use crate::model::{Via, expand_home};
use crate::verify::gates::images::tag_of;
use crate::verify::{Ctx, Gate};

pub const AGREE: Gate = Gate {
    id: "V12",
    name: "facts stated twice agree",
    help: "Where two places state one fact (ssh user, Tailscale address, LAN address, compose directory, container, VM id, deploy target, application version), they give the same value.",
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

fn agree(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, h) in &ctx.services.hosts {
        let Some(d) = &h.desired else { continue };
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
        let Some(d) = &st.desired else { continue };
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
