//! `spine plan`: render, gather, compare; show and optionally save the plan.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Global, emit, exit, registry};
use crate::cli::{PlanArgs, PlanFormat, SshArgs};
use crate::gather::{self, ssh::SshOptions};
use crate::kinds::Desired;
use crate::load::Loaded;
use crate::model::Registry;
use crate::plan::{self, FORMAT_VERSION, Plan};
use crate::render::{self, Templates};
use crate::secrets::{EnvProvider, ProviderHashes};

pub fn ssh_options(a: &SshArgs) -> SshOptions {
    SshOptions {
        config: a.ssh_config.clone(),
        connect_timeout: Duration::from_secs(a.connect_timeout.max(1)),
    }
}

/// Render the hosts and group their resources by the host they live on.
pub fn desired_by_host(
    reg: &Registry,
    hosts: &[String],
    templates: &Templates,
) -> Result<BTreeMap<String, Vec<Desired>>, render::RenderError> {
    let mut by_on: BTreeMap<String, Vec<Desired>> = BTreeMap::new();
    for h in hosts {
        for r in render::render_host(reg, h, templates)?.resources {
            by_on.entry(r.on.clone()).or_default().push(r);
        }
    }
    Ok(by_on)
}

/// Make a plan for `hosts` (all managed hosts when empty).
pub fn make(
    loaded: &Loaded,
    reg: &Registry,
    hosts: &[String],
    templates: &Templates,
    ssh: &SshArgs,
) -> Result<Plan, render::RenderError> {
    let services = reg.services.clone().unwrap_or_default();
    let hosts = if hosts.is_empty() {
        render::managed_hosts(&services)
    } else {
        hosts.to_vec()
    };
    let by_on = desired_by_host(reg, &hosts, templates)?;
    let opts = ssh_options(ssh);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let facts = runtime.block_on(gather::gather_all(&services, &by_on, &opts, ssh.parallel));
    let provider = EnvProvider;
    let hashes = ProviderHashes(&provider);
    let host_plans: Vec<_> = facts
        .iter()
        .map(|f| {
            plan::plan_host(
                by_on.get(&f.host).map_or(&[][..], Vec::as_slice),
                f,
                &hashes,
            )
        })
        .collect();
    Ok(Plan {
        format_version: FORMAT_VERSION,
        tool: format!("spine {}", env!("CARGO_PKG_VERSION")),
        created: plan::now_rfc3339(),
        registry_hash: loaded.hash(),
        summary: plan::summarize(&host_plans),
        hosts: host_plans,
    })
}

pub fn run(args: &PlanArgs, g: Global) -> u8 {
    let err_code = if args.detailed_exitcode {
        1
    } else {
        exit::COULD_NOT_RUN
    };
    let (loaded, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(_) => return err_code,
    };
    let templates = match Templates::new(args.templates.templates.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return err_code;
        }
    };
    let plan = match make(&loaded, &reg, &args.hosts, &templates, &args.ssh) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return err_code;
        }
    };
    let text = match args.format {
        PlanFormat::Text => plan::show::text(&plan, g.color, g.verbose),
        PlanFormat::Json => plan::show::json(&plan),
    };
    if let Err(e) = emit(&text) {
        eprintln!("spine: cannot write output: {e}");
        return err_code;
    }
    if let Some(path) = &args.out {
        if let Err(e) = plan::file::save(&plan, path) {
            eprintln!("{:?}", miette::Report::new(e));
            return err_code;
        }
        if !g.quiet {
            eprintln!(
                "plan saved to {}; apply it with `spine apply {}`",
                path.display(),
                path.display()
            );
        }
    }
    if !args.detailed_exitcode {
        return exit::OK;
    }
    match (plan.summary.changes(), plan.summary.unknown) {
        (0, 0) => 0,
        (0, _) => 3,
        _ => 2,
    }
}
