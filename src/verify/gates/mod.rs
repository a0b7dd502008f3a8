//! The semantic gates, one file per concern. Each gate returns findings that
//! point into the registry by JSON pointer; the runner ties them to lines.

mod cron;
mod facts;
mod images;
mod immich;
mod references;
pub mod secrets;
mod uniqueness;
mod values;

pub use images::{PIN_HELP, tag_of, unpinned};

use super::{Ctx, Gate};
use crate::diag::{FileKind, Place, pointer};
use crate::model::is_active;

pub const ALL: &[Gate] = &[
    references::SERVICE_HOSTS,
    references::HEALTH_PARITY,
    references::STACK_SERVICES,
    uniqueness::CONTAINERS,
    uniqueness::PORTS,
    cron::SCHEDULES,
    cron::PATHS,
    images::PINNED,
    facts::AGREE,
    secrets::REFERENCES_ONLY,
    immich::V2,
    values::NO_SMUGGLING,
];

// Places in the three files, by the registry's own keys.

fn service(id: &str, field: &str) -> Place {
    Place::value(FileKind::Services, pointer(["services", id, field]))
}

fn service_key(id: &str) -> Place {
    Place::key(FileKind::Services, pointer(["services", id]))
}

fn host(id: &str, path: &[&str]) -> Place {
    let mut segs = vec!["hosts", id];
    segs.extend_from_slice(path);
    Place::value(FileKind::Services, pointer(segs))
}

fn stack(index: usize, path: &[&str]) -> Place {
    let idx = index.to_string();
    let mut segs = vec!["stacks", idx.as_str()];
    segs.extend_from_slice(path);
    Place::value(FileKind::Stacks, pointer(segs))
}

fn endpoint(index: usize, field: &str) -> Place {
    Place::value(
        FileKind::Health,
        pointer([
            "endpoints".to_string(),
            index.to_string(),
            field.to_string(),
        ]),
    )
}

fn ssh_target(index: usize, field: &str) -> Place {
    Place::value(
        FileKind::SshTargets,
        pointer([
            "ssh".to_string(),
            "targets".into(),
            index.to_string(),
            field.into(),
        ]),
    )
}

fn vm(index: usize, field: &str) -> Place {
    Place::value(
        FileKind::VmLifecycle,
        pointer(["vms".to_string(), index.to_string(), field.into()]),
    )
}

/// A host id the operator's files know: a key of SERVICE_REGISTRY `hosts`,
/// or an `id` of ssh.targets.yaml (hosts such as `pve` live only there).
fn known_host(ctx: &Ctx, id: &str) -> bool {
    ctx.services.hosts.contains_key(id) || ctx.bindings.target(id).is_some()
}

/// Every known host id, for "did you mean" help.
fn host_ids(ctx: &Ctx) -> Vec<String> {
    let mut ids: Vec<String> = ctx.services.hosts.keys().cloned().collect();
    for t in &ctx.bindings.ssh_targets {
        if !ids.contains(&t.id) {
            ids.push(t.id.clone());
        }
    }
    ids
}

/// Whether service `id` is meant to be running (no status, or `active`).
fn service_active(ctx: &Ctx, id: &str) -> bool {
    ctx.services
        .services
        .get(id)
        .is_some_and(|s| is_active(s.status.as_deref()))
}

/// A finding that is an error for live entries and a warning otherwise.
fn by_status(live: bool, f: crate::diag::Finding) -> crate::diag::Finding {
    if live {
        f
    } else {
        crate::diag::Finding {
            severity: crate::diag::Severity::Warning,
            ..f
        }
    }
}

/// Resolve `proxmox:vm-N` (a stack's `path` or `deploy_target`) to the VM id.
fn vm_id_of(target: &str) -> Option<Result<u32, ()>> {
    let n = target.strip_prefix("proxmox:vm-")?;
    Some(n.parse().map_err(|_| ()))
}
