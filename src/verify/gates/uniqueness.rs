//! V07-V08: one container per name, one service per port on a host.

use std::collections::BTreeMap;

use super::{service, stack};
use crate::diag::{Finding, Place};
use crate::verify::{Ctx, Gate};

pub const CONTAINERS: Gate = Gate {
    id: "V07",
    name: "container names are unique",
    help: "No two services (SERVICE_REGISTRY `container`, stack compose `container`) claim the same container name, unless both describe the same service.",
    run: containers,
};

pub const PORTS: Gate = Gate {
    id: "V08",
    name: "ports are unique per host",
    help: "No two services on one host use the same port (`port`, `console_port`, `dns_port`, `ssh_port`).",
    run: ports,
};

fn containers(ctx: &Ctx) -> Vec<Finding> {
    // name -> [(place, the registry service it stands for)]
    let mut seen: BTreeMap<&str, Vec<(Place, Option<&str>)>> = BTreeMap::new();
    for (id, s) in &ctx.services.services {
        if let Some(c) = &s.container {
            seen.entry(c)
                .or_default()
                .push((service(id, "container"), Some(id)));
        }
    }
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(c) = st.desired.as_ref().and_then(|d| d.compose.as_ref()) else {
            continue;
        };
        for (name, cs) in &c.services {
            if let Some(container) = &cs.container {
                seen.entry(container).or_default().push((
                    stack(i, &["desired", "compose", "services", name, "container"]),
                    cs.registry.as_deref(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for (name, uses) in seen {
        let Some((first, first_svc)) = uses.first() else {
            continue;
        };
        for (place, svc) in &uses[1..] {
            let same_service = first_svc.is_some() && svc == first_svc;
            if !same_service {
                out.push(
                    Finding::error(
                        "V07",
                        place.clone(),
                        format!("container name `{name}` is used twice"),
                    )
                    .label("second use")
                    .help("container names are global on a Docker host: rename one of them")
                    .related(first.clone(), "first used here"),
                );
            }
        }
    }
    out
}

fn ports(ctx: &Ctx) -> Vec<Finding> {
    let mut seen: BTreeMap<(&str, i64), (String, &str)> = BTreeMap::new();
    let mut out = Vec::new();
    for (id, s) in &ctx.services.services {
        let mut ports: Vec<(&str, i64)> = Vec::new();
        if let Some(p) = s.port {
            ports.push(("port", i64::from(p)));
        }
        for field in ["console_port", "dns_port", "ssh_port"] {
            if let Some(p) = s.other.get(field).and_then(serde_json::Value::as_i64) {
                ports.push((field, p));
            }
        }
        for (field, p) in ports {
            match seen.get(&(s.host.as_str(), p)) {
                Some((other, other_field)) => out.push(
                    Finding::error(
                        "V08",
                        service(id, field),
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
                ),
                None => {
                    seen.insert((s.host.as_str(), p), (id.clone(), field));
                }
            }
        }
    }
    out
}
