//! V04-V06: every id one entry names exists, and health probes point where the
//! registry says the service is (IP parity).

use super::{
    by_status, endpoint, host, host_ids, known_host, service, service_active, service_key,
    ssh_target, stack, vm, vm_id_of,
};
use crate::diag::{Finding, Place, suggest};
use crate::model::{Service, Via, is_active};
use crate::verify::{Ctx, Gate};

pub const SERVICE_HOSTS: Gate = Gate {
    id: "V04",
    name: "every service's host exists",
    help: "Each service's `host`, each VM's `proxmox_host` and each jump path's `jump` name a host: a key of `hosts` in SERVICE_REGISTRY.yaml or an `id` in ssh.targets.yaml. A service that is not active is only warned about.",
    subject: "services or hosts",
    run: service_hosts,
};

pub const HEALTH_PARITY: Gate = Gate {
    id: "V05",
    name: "health endpoints match their hosts (IP parity)",
    help: "Each enabled services.health endpoint names a known host; its URL's address is one the registry, ssh.targets.yaml or vm.lifecycle.yaml gives that host; its port is a port (`port` or any `*_port`) of a service on that host. Disabled probes are not checked; a probe of a service that is not active, or by a DNS name (not resolved offline), is a warning.",
    subject: "enabled health endpoints",
    run: health_parity,
};

pub const STACK_SERVICES: Gate = Gate {
    id: "V06",
    name: "every stack's services exist",
    help: "A stack's `desired.host`, `desired.services`, compose `registry` links and secret projects name entries that exist, on the stack's host; each service's `secrets_project` is a key of `infisical_projects`; a `proxmox:vm-N` in a stack's `path` or `deploy_target` is a VM the registry or vm.lifecycle.yaml knows.",
    subject: "stacks or secrets projects",
    run: stack_services,
};

fn missing_host(ctx: &Ctx, name: &str) -> String {
    let ids = host_ids(ctx);
    match suggest(name, &ids) {
        Some(s) => format!("did you mean `{s}`? known hosts: {}", ids.join(", ")),
        None => format!(
            "add `{name}` under `hosts:` in SERVICE_REGISTRY.yaml (or as an ssh.targets.yaml target), or use one of: {}",
            ids.join(", ")
        ),
    }
}

fn service_hosts(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let hosts = &ctx.services.hosts;
    for (id, s) in &ctx.services.services {
        *n += 1;
        if !known_host(ctx, &s.host) {
            out.push(by_status(
                is_active(s.status.as_deref()),
                Finding::error(
                    "V04",
                    service(id, "host"),
                    format!("service `{id}` runs on unknown host `{}`", s.host),
                )
                .label("no such host")
                .help(missing_host(ctx, &s.host)),
            ));
        }
    }
    for (id, h) in hosts {
        *n += 1;
        if let Some(p) = &h.proxmox_host
            && !known_host(ctx, p)
        {
            out.push(
                Finding::error(
                    "V04",
                    host(id, &["proxmox_host"]),
                    format!("host `{id}` names unknown Proxmox host `{p}`"),
                )
                .label("no such host")
                .help(missing_host(ctx, p)),
            );
        }
        if h.vmid.is_some() != h.proxmox_host.is_some() {
            out.push(
                Finding::error(
                    "V04",
                    host(
                        id,
                        &[if h.vmid.is_some() {
                            "vmid"
                        } else {
                            "proxmox_host"
                        }],
                    ),
                    format!("host `{id}` has only one of `vmid` and `proxmox_host`"),
                )
                .label("needs its pair")
                .help("a Proxmox VM names both its VM id and the Proxmox host it runs on"),
            );
        }
        for (i, a) in h.desired.iter().flat_map(|d| d.access.iter()).enumerate() {
            let idx = i.to_string();
            match (&a.via, &a.jump) {
                (Via::Jump, Some(j)) if !hosts.contains_key(j) => out.push(
                    Finding::error(
                        "V04",
                        host(id, &["desired", "access", &idx, "jump"]),
                        format!("access path jumps through unknown host `{j}`"),
                    )
                    .label("no such host")
                    .help(missing_host(ctx, j)),
                ),
                (Via::Jump, Some(j)) if j == id => out.push(
                    Finding::error(
                        "V04",
                        host(id, &["desired", "access", &idx, "jump"]),
                        format!("host `{id}` cannot jump through itself"),
                    )
                    .label("same host")
                    .help("jump through the Proxmox host or another host that can reach this one"),
                ),
                (via, Some(_)) if *via != Via::Jump => out.push(
                    Finding::error(
                        "V04",
                        host(id, &["desired", "access", &idx, "jump"]),
                        "`jump` only applies to `via: jump`",
                    )
                    .label("ignored here")
                    .help("set `via: jump` or remove `jump`"),
                ),
                _ => {}
            }
        }
    }
    out
}

/// Split `http://ADDR:PORT/PATH` into its parts (port defaulted by scheme).
pub(crate) fn split_url(url: &str) -> Option<(String, u16, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let authority = authority.rsplit('@').next()?;
    let (addr, port) = match authority.rsplit_once(':') {
        Some((a, p)) if !a.ends_with(']') || authority.starts_with('[') => {
            (a.to_string(), p.parse().ok()?)
        }
        _ => (authority.to_string(), default_port),
    };
    Some((addr.trim_matches(['[', ']']).to_string(), port, path))
}

/// Every address the operator's files give host `id`, with where they say so.
fn addresses_of(ctx: &Ctx, id: &str) -> Vec<(String, Place)> {
    let mut known: Vec<(String, Place)> = Vec::new();
    if let Some(h) = ctx.services.hosts.get(id) {
        if let Some(ip) = &h.tailscale_ip {
            known.push((ip.clone(), host(id, &["tailscale_ip"])));
        }
        if let Some(d) = &h.desired {
            if let Some(n) = &d.network {
                known.push((
                    n.ip().to_string(),
                    host(id, &["desired", "network", "address"]),
                ));
            }
            for (j, a) in d.access.iter().enumerate() {
                known.push((
                    a.address.clone(),
                    host(id, &["desired", "access", &j.to_string(), "address"]),
                ));
            }
            if let Some(t) = &d.tailscale {
                known.push((
                    t.hostname.clone(),
                    host(id, &["desired", "tailscale", "hostname"]),
                ));
            }
        }
        if let Some(alias) = &h.ssh {
            known.push((alias.clone(), host(id, &["ssh"])));
        }
    }
    if let Some(t) = ctx.bindings.target(id) {
        if let Some(a) = &t.host {
            known.push((a.clone(), ssh_target(t.index, "host")));
        }
        if let Some(a) = &t.tailscale_ip {
            known.push((a.clone(), ssh_target(t.index, "tailscale_ip")));
        }
    }
    if let Some(v) = ctx.bindings.vm_of_host(id) {
        if let Some(a) = &v.lan_ip {
            known.push((a.clone(), vm(v.index, "lan_ip")));
        }
        if let Some(a) = &v.tailscale_ip {
            known.push((a.clone(), vm(v.index, "tailscale_ip")));
        }
    }
    known
}

/// Every TCP port a service declares: `port` and each `*_port`.
pub(crate) fn ports_of(s: &Service) -> Vec<(String, i64)> {
    let mut ports: Vec<(String, i64)> = Vec::new();
    if let Some(p) = s.port {
        ports.push(("port".into(), i64::from(p)));
    }
    for (field, v) in &s.other {
        if field.ends_with("_port")
            && let Some(p) = v.as_i64()
        {
            ports.push((field.clone(), p));
        }
    }
    ports
}

fn health_parity(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, e) in ctx.health.endpoints.iter().enumerate() {
        // A disabled probe is not checked as if it were live.
        if e.enabled == Some(false) {
            continue;
        }
        *n += 1;
        if !known_host(ctx, &e.host) {
            out.push(
                Finding::error(
                    "V05",
                    endpoint(i, "host"),
                    format!("health endpoint `{}` names unknown host `{}`", e.id, e.host),
                )
                .label("no such host")
                .help(missing_host(ctx, &e.host)),
            );
            continue;
        }
        let Some((addr, port, path)) = split_url(&e.url) else {
            out.push(
                Finding::error(
                    "V05",
                    endpoint(i, "url"),
                    format!("health endpoint `{}` has a URL spine cannot read", e.id),
                )
                .label("not http(s)://ADDRESS[:PORT]/PATH")
                .help("write the URL as http://ADDRESS:PORT/PATH"),
            );
            continue;
        };
        let address = address_parity(ctx, i, e, &addr);
        let unknown_name = address.is_some() && addr.parse::<std::net::IpAddr>().is_err();
        out.extend(address);
        // A name spine cannot resolve may be a proxy in front of the
        // service: its port says nothing about the service's.
        if !unknown_name {
            out.extend(port_parity(ctx, i, e, port, &path));
        }
    }
    out
}

fn address_parity(ctx: &Ctx, i: usize, e: &crate::model::Endpoint, addr: &str) -> Option<Finding> {
    let known = addresses_of(ctx, &e.host);
    if known.iter().any(|(k, _)| k == addr) {
        return None;
    }
    let mut list: Vec<&str> = Vec::new();
    for (k, _) in &known {
        if !list.contains(&k.as_str()) {
            list.push(k);
        }
    }
    let f = Finding::error(
        "V05",
        endpoint(i, "url"),
        format!(
            "health endpoint `{}` probes {addr}, which the registry does not give host `{}`",
            e.id, e.host
        ),
    )
    .label(format!("{addr} is not an address of `{}`", e.host));
    if list.is_empty() {
        // Nothing says where this host is: spine cannot tell.
        return Some(by_status(false, f).help(format!(
            "spine cannot tell whether {addr} is right: give host `{}` a `host` in ssh.targets.yaml or a `tailscale_ip`",
            e.host
        )));
    }
    if addr.parse::<std::net::IpAddr>().is_err() {
        // A DNS name (e.g. a public URL behind a proxy): offline, spine
        // cannot tell where it points.
        return Some(by_status(false, f).help(format!(
            "spine does not resolve names offline; if {addr} is not host `{}`, probe one of its addresses ({})",
            e.host,
            list.join(", ")
        )));
    }
    let mut f = f.help(format!(
        "use one of the host's addresses ({}) or correct the host's address",
        list.join(", ")
    ));
    if let Some((_, place)) = known
        .iter()
        .find(|(_, p)| p.pointer.ends_with("/network/address") || p.pointer.ends_with("/host"))
    {
        f = f.related(place.clone(), "the host's LAN address is stated here");
    }
    Some(f)
}

/// The service a probe checks is the one on its host listening on its port;
/// failing that, the only service there whose `health` is the probe's path.
fn port_parity(
    ctx: &Ctx,
    i: usize,
    e: &crate::model::Endpoint,
    port: u16,
    path: &str,
) -> Option<Finding> {
    let on_host: Vec<(&String, &Service)> = ctx
        .services
        .services
        .iter()
        .filter(|(_, s)| s.host == e.host)
        .collect();
    let by_port: Vec<&(&String, &Service)> = on_host
        .iter()
        .filter(|(_, s)| ports_of(s).iter().any(|(_, p)| *p == i64::from(port)))
        .collect();
    if !by_port.is_empty() {
        if by_port.iter().any(|(_, s)| is_active(s.status.as_deref())) {
            return None;
        }
        let (sid, s) = by_port[0];
        let status = s.status.as_deref().unwrap_or_default();
        return Some(
            Finding::warning(
                "V05",
                endpoint(i, "url"),
                format!(
                    "health endpoint `{}` is enabled, but the service it probes (`{sid}`, port {port}) is `{status}`",
                    e.id
                ),
            )
            .label("probes a service that is not active")
            .help("set `enabled: false` on the probe, or the service's status back to `active`")
            .related(service(sid, "status"), format!("`{sid}` is `{status}` here")),
        );
    }
    if on_host.is_empty() {
        return None;
    }
    let by_path: Vec<&(&String, &Service)> = on_host
        .iter()
        .filter(|(_, s)| s.health.as_deref() == Some(path))
        .collect();
    match by_path.as_slice() {
        [(sid, s)] if s.port.is_some() => Some(by_status(
            service_active(ctx, sid),
            Finding::error(
                "V05",
                endpoint(i, "url"),
                format!(
                    "health endpoint `{}` probes port {port}, but service `{sid}` listens on {}",
                    e.id,
                    s.port.unwrap_or_default()
                ),
            )
            .label(format!("port {port}"))
            .help("make the URL's port and the service's `port` agree")
            .related(service(sid, "port"), format!("`{sid}` port stated here")),
        )),
        _ => match ctx.services.services.get(&e.id) {
            // The probe's own service, on its host, declares no port: the
            // registry leaves the port out, spine cannot tell more.
            Some(s) if s.host == e.host && s.port.is_none() => Some(
                Finding::warning(
                    "V05",
                    endpoint(i, "url"),
                    format!(
                        "health endpoint `{}` probes port {port}, which service `{}` on host `{}` does not declare",
                        e.id, e.id, e.host
                    ),
                )
                .label(format!("port {port}"))
                .help(format!("add the port to service `{}` in SERVICE_REGISTRY.yaml (e.g. `metrics_port: {port}`), so clashes on the host can be checked", e.id))
                .related(service_key(&e.id), format!("`{}` has no port here", e.id)),
            ),
            _ => Some(
            Finding::error(
                "V05",
                endpoint(i, "url"),
                format!(
                    "health endpoint `{}` probes port {port}, which no service on host `{}` uses",
                    e.id, e.host
                ),
            )
            .label(format!("port {port}"))
            .help("use the port of the service this probe checks, as SERVICE_REGISTRY.yaml gives it (or add that service's port there)"),
        ),
        },
    }
}

fn stack_services(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = secrets_projects(ctx, n);
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        for field in ["path", "deploy_target"] {
            let value = if field == "path" {
                &st.path
            } else {
                &st.deploy_target
            };
            let Some(t) = value else { continue };
            let Some(id) = vm_id_of(t) else { continue };
            *n += 1;
            let known = id.is_ok_and(|id| {
                ctx.services.hosts.values().any(|h| h.vmid == Some(id))
                    || ctx.bindings.vm(id).is_some()
            });
            if !known {
                out.push(by_status(
                    is_active(st.status.as_deref()),
                    Finding::error(
                        "V06",
                        stack(i, &[field]),
                        format!("stack `{}` names `{t}`, a VM nobody knows", st.stack_id),
                    )
                    .label("no such VM")
                    .help("give the VM's host a `vmid` in SERVICE_REGISTRY.yaml (or list it in vm.lifecycle.yaml), or correct the VM id"),
                ));
            }
        }
    }
    let svcs = &ctx.services.services;
    let ids: Vec<String> = svcs.keys().cloned().collect();
    let unknown_service = |name: &str| match suggest(name, &ids) {
        Some(s) => format!(
            "did you mean `{s}`? services are the keys of `services:` in SERVICE_REGISTRY.yaml"
        ),
        None => "add the service to SERVICE_REGISTRY.yaml or remove it here".to_string(),
    };
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(d) = &st.desired else { continue };
        *n += 1;
        if !ctx.services.hosts.contains_key(&d.host) {
            out.push(
                Finding::error(
                    "V06",
                    stack(i, &["desired", "host"]),
                    format!("stack `{}` targets unknown host `{}`", st.stack_id, d.host),
                )
                .label("no such host")
                .help(missing_host(ctx, &d.host)),
            );
        }
        for (j, sid) in d.services.iter().enumerate() {
            let place = stack(i, &["desired", "services", &j.to_string()]);
            match svcs.get(sid) {
                None => out.push(
                    Finding::error(
                        "V06",
                        place,
                        format!("stack `{}` lists unknown service `{sid}`", st.stack_id),
                    )
                    .label("no such service")
                    .help(unknown_service(sid)),
                ),
                Some(s) if s.host != d.host => out.push(
                    Finding::error(
                        "V06",
                        place,
                        format!(
                            "service `{sid}` runs on host `{}`, but stack `{}` deploys to `{}`",
                            s.host, st.stack_id, d.host
                        ),
                    )
                    .label("on another host")
                    .help("move the service to the stack's host or take it out of the stack")
                    .related(service(sid, "host"), format!("`{sid}` host stated here")),
                ),
                Some(_) => {}
            }
        }
        let Some(c) = &d.compose else { continue };
        for (name, cs) in &c.services {
            let Some(reg) = &cs.registry else { continue };
            let place = stack(i, &["desired", "compose", "services", name, "registry"]);
            if !svcs.contains_key(reg) {
                out.push(
                    Finding::error(
                        "V06",
                        place,
                        format!("compose service `{name}` links to unknown service `{reg}`"),
                    )
                    .label("no such service")
                    .help(unknown_service(reg)),
                );
            } else if !d.services.is_empty() && !d.services.contains(reg) {
                out.push(
                    Finding::error("V06", place, format!("compose service `{name}` links to `{reg}`, which is not in this stack's `services`"))
                        .label("not in the stack")
                        .help(format!("add `{reg}` to `desired.services`")),
                );
            }
        }
        for (key, r) in &c.secrets {
            if !ctx.services.infisical_projects.contains_key(&r.project) {
                let known: Vec<String> = ctx.services.infisical_projects.keys().cloned().collect();
                out.push(
                    Finding::error("V06", stack(i, &["desired", "compose", "secrets", key, "project"]), format!(
                        "secret `{key}` refers to unknown secrets project `{}`", r.project
                    ))
                    .label("no such project")
                    .help(match suggest(&r.project, &known) {
                        Some(s) => format!("did you mean `{s}`? projects are the keys of `infisical_projects:` in SERVICE_REGISTRY.yaml"),
                        None => "add it under `infisical_projects:` in SERVICE_REGISTRY.yaml".to_string(),
                    }),
                );
            }
        }
    }
    out
}

/// Each service's `secrets_project` is a key of `infisical_projects`.
fn secrets_projects(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let projects = &ctx.services.infisical_projects;
    let known: Vec<String> = projects.keys().cloned().collect();
    let mut out = Vec::new();
    for (id, s) in &ctx.services.services {
        let Some(p) = &s.secrets_project else {
            continue;
        };
        *n += 1;
        if projects.contains_key(p) {
            continue;
        }
        out.push(by_status(
            is_active(s.status.as_deref()),
            Finding::error(
                "V06",
                service(id, "secrets_project"),
                format!("service `{id}` uses secrets project `{p}`, which `infisical_projects` does not have"),
            )
            .label("no such project")
            .help(match suggest(p, &known) {
                Some(s) => format!("did you mean `{s}`? projects are the keys of `infisical_projects:` in SERVICE_REGISTRY.yaml"),
                None => format!("add `{p}: <Infisical project id>` under `infisical_projects:` in SERVICE_REGISTRY.yaml (known: {})", known.join(", ")),
            }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("http://192.168.1.203:2283/api/server/ping"),
            Some(("192.168.1.203".into(), 2283, "/api/server/ping".into()))
        );
        assert_eq!(
            split_url("https://immich-1/x"),
            Some(("immich-1".into(), 443, "/x".into()))
        );
        assert_eq!(split_url("http://h"), Some(("h".into(), 80, "/".into())));
        assert_eq!(split_url("nope"), None);
    }
}
