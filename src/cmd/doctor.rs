//! `spine doctor HOST`: try every access path of a host, step by step, and
//! say why the ones that fail fail.

use super::{Global, emit, exit, registry};
use crate::cli::{DoctorArgs, PlanFormat};
use crate::doctor;

pub fn run(args: &DoctorArgs, g: Global) -> u8 {
    let (_, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let services = reg.services.unwrap_or_default();
    if !services.hosts.contains_key(&args.host) {
        let known: Vec<&str> = services.hosts.keys().map(String::as_str).collect();
        eprintln!(
            "spine: no host `{}` in SERVICE_REGISTRY.yaml (hosts: {})",
            args.host,
            known.join(", ")
        );
        return exit::COULD_NOT_RUN;
    }
    if crate::gather::ssh::routes(&services, &args.host).is_empty() {
        eprintln!(
            "spine: host `{}` has no access paths: add `desired.access` to it in SERVICE_REGISTRY.yaml",
            args.host
        );
        return exit::COULD_NOT_RUN;
    }
    let opts = super::ssh_options(&args.ssh);
    if g.verbose {
        eprintln!(
            "spine: trying every path of {} on its own connection",
            args.host
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spine: cannot start the async runtime: {e}");
            return exit::COULD_NOT_RUN;
        }
    };
    let report = runtime.block_on(doctor::diagnose(&services, &args.host, &opts));
    let out = match args.format {
        PlanFormat::Text => doctor::show::text(&report, g.color, g.quiet),
        PlanFormat::Json => doctor::show::json(&report),
    };
    if let Err(e) = emit(&out) {
        eprintln!("spine: cannot write output: {e}");
        return exit::COULD_NOT_RUN;
    }
    // spine works over SSH: the guest agent alone does not make the host reachable.
    if report.summary.ssh_working > 0 {
        exit::OK
    } else {
        exit::FAILED
    }
}
