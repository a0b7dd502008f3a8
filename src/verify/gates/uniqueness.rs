//! V07-V08: one container per name on a host, one entry per stack id, one
//! service per port on a host.

use std::collections::BTreeMap;

use super::{by_status, references::ports_of, service, service_active, stack};
use crate::diag::{Finding, Place};
use crate::model::is_active;
use crate::verify::{Ctx, Gate};

pub const CONTAINERS: Gate = Gate {
    id: "V07",
    name: "container names and stack ids are unique",
    help: "No two services on one host (SERVICE_REGISTRY `container`, stack compose `container`) claim the same container name, unless both describe the same service; no two stacks share a `stack_id`. A clash involving an entry that is not active is a warning.",
    subject: "containers or stacks",
    run: containers,
};

pub const PORTS: Gate = Gate {
    id: "V08",
    name: "ports are unique per host",
    help: "No two services on one host use the same port (`port` and every `*_port`, e.g. `console_port`, `p2p_port`). A clash involving a service that is not active is a warning; a port given as `null` (not known yet) is a warning: it cannot be checked.",
    subject: "service ports",
    run: ports,
};

/// One claim of a container name: where, by which service, live or not.
struct Use<'a> {
    place: Place,
    service: Option<&'a str>,
    live: bool,
}

fn containers(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    // (host, name) -> every claim
    let mut seen: BTreeMap<(&str, &str), Vec<Use>> = BTreeMap::new();
    for (id, s) in &ctx.services.services {
        if let Some(c) = &s.container {
            *n += 1;
            seen.entry((&s.host, c)).or_default().push(Use {
                place: service(id, "container"),
                service: Some(id),
                live: is_active(s.status.as_deref()),
            });
        }
    }
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(d) = &st.desired else { continue };
        let Some(c) = &d.compose else { continue };
        for (name, cs) in &c.services {
            if let Some(container) = &cs.container {
                *n += 1;
                seen.entry((&d.host, container)).or_default().push(Use {
                    place: stack(i, &["desired", "compose", "services", name, "container"]),
                    service: cs.registry.as_deref(),
                    live: is_active(st.status.as_deref()),
                });
            }
        }
    }
    let mut out = Vec::new();
    for ((host, name), uses) in seen {
        let Some(first) = uses.first() else { continue };
        for u in &uses[1..] {
            let same_service = first.service.is_some() && u.service == first.service;
            if !same_service {
                out.push(by_status(
                    first.live && u.live,
                    Finding::error(
                        "V07",
                        u.place.clone(),
                        format!("container name `{name}` is used twice on host `{host}`"),
                    )
                    .label("second use")
                    .help("container names are unique on a Docker host: rename one of them (or mark the retired one's status)")
                    .related(first.place.clone(), "first used here"),
                ));
            }
        }
    }
    out.extend(stack_ids(ctx, n));
    out
}

fn stack_ids(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        *n += 1;
        match first.get(st.stack_id.as_str()) {
            Some(&j) => out.push(
                Finding::error(
                    "V07",
                    stack(i, &["stack_id"]),
                    format!("stack id `{}` is used by two stacks", st.stack_id),
                )
                .label("second use")
                .help("a stack id names one stack: merge the two entries or rename one")
                .related(stack(j, &["stack_id"]), "first used here"),
            ),
            None => {
                first.insert(&st.stack_id, i);
            }
        }
    }
    out
}

fn ports(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut seen: BTreeMap<(&str, i64), (String, String)> = BTreeMap::new();
    let mut out = Vec::new();
    for (id, s) in &ctx.services.services {
        for (field, p) in ports_of(s) {
            *n += 1;
            match seen.get(&(s.host.as_str(), p)) {
                // One service stating its port twice (`port` and `web_port`) is no clash.
                Some((other, _)) if other == id => {}
                Some((other, other_field)) => out.push(by_status(
                    service_active(ctx, id) && service_active(ctx, other),
                    Finding::error(
                        "V08",
                        service(id, &field),
                        format!(
                            "port {p} on host `{}` is used by both `{other}` and `{id}`",
                            s.host
                        ),
                    )
                    .label("port already taken")
                    .help("two services cannot listen on one port of a host: change one of them")
                    .related(
                        service(other, other_field),
                        format!("`{other}` uses it here"),
                    ),
                )),
                None => {
                    seen.insert((s.host.as_str(), p), (id.clone(), field));
                }
            }
        }
    }
    out.extend(unknown_ports(ctx));
    out
}

/// `port: null` (and any `*_port: null`): not known yet, so not checked.
fn unknown_ports(ctx: &Ctx) -> Vec<Finding> {
    ctx.nulls
        .iter()
        .filter_map(|p| {
            let rest = p.strip_prefix("/services/")?;
            let (id, field) = rest.split_once('/')?;
            if field.contains('/') || !(field == "port" || field.ends_with("_port")) {
                return None;
            }
            let id = id.replace("~1", "/").replace("~0", "~");
            let s = ctx.services.services.get(&id)?;
            if !is_active(s.status.as_deref()) {
                return None;
            }
            Some(
                Finding::warning(
                    "V08",
                    Place::value(crate::diag::FileKind::Services, p.clone()),
                    format!("the {field} of service `{id}` is not known yet (null): it could not be checked for clashes on host `{}`", s.host),
                )
                .label("not known")
                .help("write the port once it is known (a service that publishes no port can leave `port` out)"),
            )
        })
        .collect()
}
