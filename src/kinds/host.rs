//! A host's desired state: every kind's resources for it (stage 3, render).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ALL, Desired};
use crate::model::Registry;
use crate::render::{RenderCx, RenderError, Templates};

/// The desired state of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostState {
    pub host: String,
    pub resources: Vec<Desired>,
}

/// Render every resource of every kind that lives on or is about `host_id`.
pub fn render_host(
    reg: &Registry,
    host_id: &str,
    templates: &Templates,
) -> Result<HostState, RenderError> {
    let (Some(services), Some(stacks)) = (&reg.services, &reg.stacks) else {
        return Err(RenderError::Registry(
            "SERVICE_REGISTRY.yaml or STACK_REGISTRY.yaml is not usable".into(),
        ));
    };
    let Some(host) = services.hosts.get(host_id) else {
        let ids: Vec<&str> = services.hosts.keys().map(String::as_str).collect();
        return Err(RenderError::UnknownHost(
            host_id.into(),
            format!("hosts in the registry: {}", ids.join(", ")),
        ));
    };
    let cx = RenderCx {
        host_id,
        host,
        services,
        stacks,
        templates,
    };
    let mut resources = Vec::new();
    for kind in ALL {
        resources.extend(kind.render(&cx)?);
    }
    Ok(HostState {
        host: host_id.into(),
        resources,
    })
}

/// Write a host's rendered files under `out/<host>/...` for inspection.
/// Secrets stay placeholders: a rendered file never holds a secret value.
pub fn write_out(state: &HostState, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut seen: BTreeMap<PathBuf, ()> = BTreeMap::new();
    for r in &state.resources {
        let rel = r.file_name();
        let path = out.join(&r.on).join(rel.trim_start_matches('/'));
        if seen.insert(path.clone(), ()).is_some() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("spine-tmp");
        std::fs::write(&tmp, r.shown_content())?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}
