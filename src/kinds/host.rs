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
/// Every file stays inside `out`: a host id or path that would leave it
/// (`..`, an absolute part, a symlink pointing elsewhere) is refused.
pub fn write_out(state: &HostState, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut seen: BTreeMap<PathBuf, ()> = BTreeMap::new();
    for r in &state.resources {
        let rel = Path::new(&r.on).join(r.file_name().trim_start_matches('/'));
        let outside = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "`{}` would be written outside {}: refused (host ids and paths must be plain names and normalised paths; spine verify gate V16)",
                    crate::safe::shown(&rel.to_string_lossy()),
                    out.display()
                ),
            )
        };
        if !crate::safe::host_id(&r.on)
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(outside());
        }
        let path = out.join(&rel);
        if seen.insert(path.clone(), ()).is_some() {
            continue;
        }
        // A symlink already in the folder must not lead the write elsewhere.
        let mut at = out.to_path_buf();
        for c in rel.components() {
            at.push(c);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(outside());
            }
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
