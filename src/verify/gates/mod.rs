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

use super::Gate;
use crate::diag::{FileKind, Place, pointer};

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
