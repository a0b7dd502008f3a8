//! `spine doctor HOST`: try every access path of a host, step by step, and
//! say why the ones that fail fail.

use super::{Error, Global, emit, exit, registry};
use crate::cli::{DoctorArgs, PlanFormat};
use crate::doctor;

pub fn run(args: &DoctorArgs, g: Global) -> Result<u8, Error> {
    let (_, reg) = registry::checked(&args.registry, g.color)?;
    let services = reg.services.unwrap_or_default();
    if !services.hosts.contains_key(&args.host) {
        let known: Vec<&str> = services.hosts.keys().map(String::as_str).collect();
        return Err(Error::msg(format!(
            "no host `{}` in SERVICE_REGISTRY.yaml (hosts: {})",
            args.host,
            known.join(", ")
        )));
    }
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}")))?;
    let report = runtime.block_on(doctor::diagnose(&services, &args.host, &opts));
    let out = match args.format {
        PlanFormat::Text => doctor::show::text(&report, g.color, g.quiet),
        PlanFormat::Json => doctor::show::json(&report),
    };
    emit(&out).map_err(|e| Error::msg(format!("cannot write output: {e}")))?;
    // spine works over SSH: the guest agent alone does not make the host reachable.
    Ok(if report.summary.ssh_working > 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}
