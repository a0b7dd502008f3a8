//! `spine plan`: render, gather, compare; show and optionally save the plan.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Global, emit, exit, record, registry};
use crate::cli::{PlanArgs, PlanFormat, SshArgs};
use crate::gather::{self, ssh::SshOptions};
use crate::health;
use crate::kinds::Desired;
use crate::load::Loaded;
use crate::load::Origin;
use crate::model::Registry;
use crate::plan::{self, FORMAT_VERSION, Plan};
use crate::receipt::{self, DriftSummary, HostRecord, ReceiptBody};
use crate::render::{self, Templates};
use crate::secrets::{Provider, ProviderHashes};

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

/// Make a plan for `hosts` (all managed hosts when empty). With `with_health`,
/// the hosts' services.health endpoints are probed while the hosts are read.
pub fn make(
    loaded: &Loaded,
    reg: &Registry,
    hosts: &[String],
    templates: &Templates,
    ssh: &SshArgs,
    secrets: &dyn Provider,
    with_health: bool,
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
    let health_file = reg.health.as_ref().filter(|_| with_health);
    let (facts, mut probes) = std::thread::scope(|s| {
        let probing =
            s.spawn(|| health_file.map_or_else(Vec::new, |f| health::probe_hosts(f, &hosts)));
        let facts = runtime.block_on(gather::gather_all(&services, &by_on, &opts, ssh.parallel));
        (facts, probing.join().unwrap_or_default())
    });
    let hashes = ProviderHashes(secrets);
    let host_plans: Vec<_> = facts
        .iter()
        .map(|f| {
            let mut hp = plan::plan_host(
                by_on.get(&f.host).map_or(&[][..], Vec::as_slice),
                f,
                &hashes,
            );
            let (mine, rest) = probes.drain(..).partition(|p| p.host == hp.host);
            (hp.health, probes) = (mine, rest);
            hp
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
    if let Err(e) = record::ids(&args.receipt) {
        eprintln!("spine: {e}");
        return err_code;
    }
    let body = ReceiptBody::new(receipt::Command::Plan, std::env::args().collect());
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
    let Ok(provider) = registry::provider(&args.secrets, &reg) else {
        return err_code;
    };
    let with_health = !args.no_health;
    g.progress("spine: reading the hosts over SSH...");
    let plan = match make(
        &loaded,
        &reg,
        &args.hosts,
        &templates,
        &args.ssh,
        provider.as_ref(),
        with_health,
    ) {
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
        let signed = match plan::trust::save(&plan, path, args.receipt.signing_key.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return err_code;
            }
        };
        if !g.quiet {
            eprintln!(
                "plan saved to {} ({}); apply it with `spine apply {}`",
                path.display(),
                if signed {
                    "signed"
                } else {
                    "unsigned: no signing key"
                },
                path.display()
            );
        }
    }
    let code = if !args.detailed_exitcode {
        exit::OK
    } else {
        match (plan.summary.changes(), plan.summary.unknown) {
            (0, 0) => 0,
            (0, _) => 3,
            _ => 2,
        }
    };
    let origin = Origin::choose(args.registry.registry.clone());
    let receipts = record::receipts_dir(&args.receipt, &origin);
    let body = receipt_body(body, &plan, &loaded, &origin, code);
    if let Err(e) = record::write(&args.receipt, &receipts, body, g.quiet) {
        eprintln!("spine: could not write the receipt: {e}");
        return err_code;
    }
    code
}

/// What a plan run records: hosts and paths, facts fingerprints, plan hash, drift.
fn receipt_body(
    mut body: ReceiptBody,
    plan: &Plan,
    loaded: &Loaded,
    origin: &Origin,
    code: u8,
) -> ReceiptBody {
    body.registry = record::registry_info(loaded, origin);
    body.hosts = plan
        .hosts
        .iter()
        .map(|h| HostRecord {
            host: h.host.clone(),
            access: h
                .route
                .as_ref()
                .map_or_else(|| "unreachable".to_string(), |r| r.describe()),
            facts_before: h.fingerprint.clone(),
            facts_after: None,
        })
        .collect();
    body.plan_hash = Some(plan::hash_json(plan));
    body.health = plan.hosts.iter().flat_map(|h| h.health.clone()).collect();
    body.drift = DriftSummary {
        in_sync: plan.summary.in_sync as u64,
        drifted: plan.summary.changes() as u64,
        unknown: plan.summary.unknown as u64,
    };
    body.status = match (plan.summary.changes(), plan.summary.unknown) {
        (0, 0) => receipt::Status::Ok,
        (0, _) => receipt::Status::Incomplete,
        _ => receipt::Status::Changes,
    };
    body.exit_code = i32::from(code);
    body
}
