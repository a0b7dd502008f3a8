//! V04-V06: every id one entry names exists, and health probes point where the
//! registry says the service is (IP parity).

use super::{endpoint, host, service, stack};
use crate::diag::Finding;
use crate::diag::suggest;
use crate::model::Via;
use crate::verify::{Ctx, Gate};

pub const SERVICE_HOSTS: Gate = Gate {
    id: "V04",
    name: "every service's host exists",
    help: "Each service's `host`, each VM's `proxmox_host` and each jump path's `jump` name a key of `hosts` in SERVICE_REGISTRY.yaml.",
    run: service_hosts,
};

pub const HEALTH_PARITY: Gate = Gate {
    id: "V05",
    name: "health endpoints match their hosts (IP parity)",
    help: "Each services.health endpoint names a known host, and its URL's address and port are ones the registry gives that host and its services.",
    run: health_parity,
};

pub const STACK_SERVICES: Gate = Gate {
    id: "V06",
    name: "every stack's services exist",
    help: "A stack's `desired.host`, `desired.services`, compose `registry` links and secret projects name entries that exist, on the stack's host.",
    run: stack_services,
};

fn missing_host(ctx: &Ctx, name: &str) -> String {
    let ids: Vec<String> = ctx.services.hosts.keys().cloned().collect();
    match suggest(name, &ids) {
        Some(s) => format!("did you mean `{s}`? known hosts: {}", ids.join(", ")),
        None => format!(
            "add `{name}` under `hosts:` in SERVICE_REGISTRY.yaml, or use one of: {}",
            ids.join(", ")
        ),
    }
}

fn service_hosts(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let hosts = &ctx.services.hosts;
    for (id, s) in &ctx.services.services {
        if !hosts.contains_key(&s.host) {
            out.push(
                Finding::error(
                    "V04",
                    service(id, "host"),
                    format!("service `{id}` runs on unknown host `{}`", s.host),
                )
                .label("no such host")
                .help(missing_host(ctx, &s.host)),
            );
        }
    }
    for (id, h) in hosts {
        if let Some(p) = &h.proxmox_host
            && !hosts.contains_key(p)
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

fn health_parity(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, e) in ctx.health.endpoints.iter().enumerate() {
        let Some(h) = ctx.services.hosts.get(&e.host) else {
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
        };
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
        // Every address the registry gives this host, with where it says so.
        let mut known: Vec<(String, crate::diag::Place)> = Vec::new();
        if let Some(ip) = &h.tailscale_ip {
            known.push((ip.clone(), host(&e.host, &["tailscale_ip"])));
        }
        if let Some(d) = &h.desired {
            if let Some(n) = &d.network {
                known.push((
                    n.ip().to_string(),
                    host(&e.host, &["desired", "network", "address"]),
                ));
            }
            for (j, a) in d.access.iter().enumerate() {
                known.push((
                    a.address.clone(),
                    host(&e.host, &["desired", "access", &j.to_string(), "address"]),
                ));
            }
            if let Some(t) = &d.tailscale {
                known.push((
                    t.hostname.clone(),
                    host(&e.host, &["desired", "tailscale", "hostname"]),
                ));
            }
        }
        if let Some(alias) = &h.ssh {
            known.push((alias.clone(), host(&e.host, &["ssh"])));
        }
        if !known.iter().any(|(k, _)| *k == addr) {
            let mut f = Finding::error(
                "V05",
                endpoint(i, "url"),
                format!("health endpoint `{}` probes {addr}, which the registry does not give host `{}`", e.id, e.host),
            )
            .label(format!("{addr} is not an address of `{}`", e.host));
            let mut list: Vec<&str> = Vec::new();
            for (k, _) in &known {
                if !list.contains(&k.as_str()) {
                    list.push(k);
                }
            }
            f = f.help(if list.is_empty() {
                format!(
                    "give host `{}` a `desired.network.address` or `tailscale_ip`",
                    e.host
                )
            } else {
                format!(
                    "use one of the host's addresses ({}) or correct the host's address",
                    list.join(", ")
                )
            });
            if let Some((_, place)) = known
                .iter()
                .find(|(_, p)| p.pointer.ends_with("/network/address"))
            {
                f = f.related(place.clone(), "the host's LAN address is stated here");
            }
            out.push(f);
        }
        // Port parity: the service on this host whose health path the URL probes,
        // or failing that any service port on the host.
        let on_host: Vec<(&String, &crate::model::Service)> = ctx
            .services
            .services
            .iter()
            .filter(|(_, s)| s.host == e.host)
            .collect();
        let by_path = on_host
            .iter()
            .find(|(_, s)| s.health.as_deref() == Some(path.as_str()));
        match by_path {
            Some((sid, s)) if s.port.is_some_and(|p| p != port) => out.push(
                Finding::error("V05", endpoint(i, "url"), format!(
                    "health endpoint `{}` probes port {port}, but service `{sid}` listens on {}",
                    e.id,
                    s.port.unwrap_or_default()
                ))
                .label(format!("port {port}"))
                .help("make the URL's port and the service's `port` agree")
                .related(service(sid, "port"), format!("`{sid}` port stated here")),
            ),
            Some(_) => {}
            None if !on_host.iter().any(|(_, s)| s.port == Some(port)) && !on_host.is_empty() => out.push(
                Finding::error("V05", endpoint(i, "url"), format!(
                    "health endpoint `{}` probes port {port}, which no service on host `{}` uses",
                    e.id, e.host
                ))
                .label(format!("port {port}"))
                .help("use the port of the service this probe checks, as SERVICE_REGISTRY.yaml gives it"),
            ),
            None => {}
        }
    }
    out
}

fn stack_services(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
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
