//! `spine doctor HOST`: try every access path of a host, step by step, and
//! say why the ones that fail fail.

use super::{Error, Global, emit, exit, registry};
use crate::cli::{DoctorArgs, PlanFormat};
use crate::doctor;
use crate::engine::Engine;

pub fn run(args: &DoctorArgs, g: Global) -> Result<u8, Error> {
    let (_, reg) = registry::checked(&args.registry, g.color)?;
    let services = reg.services.unwrap_or_default();
    registry::known_host(&services, &args.host, "")?;
    if crate::gather::ssh::routes(&services, &args.host).is_empty() {
        return Err(Error::msg(format!(
            "host `{}` has no access paths: add `desired.access` to it in SERVICE_REGISTRY.yaml",
            args.host
        )));
    }
    let opts = super::ssh_options(&args.ssh);
    if g.verbose {
        eprintln!(
            "spine: trying every path of {} on its own connection",
            args.host
        );
    }
    let report = Engine::new()?.block_on(doctor::diagnose(&services, &args.host, &opts));
    let out = match args.format {
        PlanFormat::Text => doctor::show::text(&report, g.color, g.quiet),
        PlanFormat::Json => doctor::show::json(&report),
    };
    emit(&out)?;
    // spine works over SSH: the guest agent alone does not make the host reachable.
    Ok(if report.summary.ssh_working > 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}
