//! V14: what the operator learned about Immich v2 (seeds, GAP-OP-094 loop).

use super::{endpoint, service, service_key, stack};
use crate::diag::{Finding, Place};
use crate::verify::{Ctx, Gate};

pub const V2: Gate = Gate {
    id: "V14",
    name: "Immich v2 layout",
    help: "Immich v2: the health path is /api/server/ping (/api/server-info/ping is gone); there are no immich-web or immich-microservices services (one server on 2283, ML on 3003); the database image is a VectorChord one (plain pgvector fails migrations).",
    subject: "Immich services, stacks or health probes",
    run: v2,
};

const OLD_PING: &str = "/api/server-info/ping";
const NEW_PING: &str = "/api/server/ping";

fn retired(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    n.contains("immich-web") || n.contains("immich-microservices")
}

fn retired_finding(place: Place, what: &str) -> Finding {
    Finding::error(
        "V14",
        place,
        format!("{what}: Immich v2 has no separate web or microservices service"),
    )
    .label("removed in Immich v1.106+")
    .help("remove it: the v2 `immich-server` serves the web UI and runs the background jobs")
}

fn v2(ctx: &Ctx, n: &mut usize) -> Vec<Finding> {
    let mut out = Vec::new();
    // Every service and probe is looked at (a retired name or path can be anywhere).
    *n += ctx.services.services.len() + ctx.health.endpoints.len();
    for (id, s) in &ctx.services.services {
        if s.health.as_deref() == Some(OLD_PING) {
            out.push(
                Finding::error(
                    "V14",
                    service(id, "health"),
                    format!("service `{id}` uses the retired health path {OLD_PING}"),
                )
                .label("gone in Immich v2")
                .help(format!(
                    "use `{NEW_PING}`, which answers {{\"res\":\"pong\"}}"
                )),
            );
        }
        if retired(id) || s.container.as_deref().is_some_and(retired) {
            out.push(retired_finding(service_key(id), &format!("service `{id}`")));
        }
    }
    for (i, e) in ctx.health.endpoints.iter().enumerate() {
        if e.url.contains(OLD_PING) {
            out.push(
                Finding::error(
                    "V14",
                    endpoint(i, "url"),
                    format!(
                        "health endpoint `{}` probes the retired path {OLD_PING}",
                        e.id
                    ),
                )
                .label("gone in Immich v2")
                .help(format!(
                    "probe `{NEW_PING}`, which answers {{\"res\":\"pong\"}}"
                )),
            );
        }
    }
    for (i, st) in ctx.stacks.stacks.iter().enumerate() {
        let Some(c) = st.desired.as_ref().and_then(|d| d.compose.as_ref()) else {
            continue;
        };
        let immich = c.template.as_deref() == Some("immich")
            || c.services.values().any(|s| s.image.contains("immich-app/"));
        if !immich {
            continue;
        }
        for (name, cs) in &c.services {
            let key = Place::key(
                crate::diag::FileKind::Stacks,
                stack(i, &["desired", "compose", "services", name]).pointer,
            );
            if retired(name) || cs.container.as_deref().is_some_and(retired) {
                out.push(retired_finding(
                    key.clone(),
                    &format!("compose service `{name}`"),
                ));
            }
            let is_db = name == "database"
                || cs.registry.as_deref() == Some("immich-postgres")
                || cs.container.as_deref() == Some("immich_postgres");
            if is_db && !cs.image.to_ascii_lowercase().contains("vectorchord") {
                out.push(
                    Finding::error("V14", stack(i, &["desired", "compose", "services", name, "image"]), format!(
                        "Immich's database image `{}` is not a VectorChord image", cs.image
                    ))
                    .label("needs VectorChord")
                    .help("use ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0 (Immich v2 migrations need VectorChord and a superuser)"),
                );
            }
        }
    }
    out
}
