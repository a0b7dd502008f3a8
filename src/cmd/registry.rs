//! Loading a registry that must pass `spine verify` before anything acts on it.

use std::sync::Arc;
use std::time::Duration;

use super::Error;
use crate::cli::{RegistryArg, SecretsArgs};
use crate::load::{self, Loaded, Origin};
use crate::model::{Registry, ServiceRegistry};
use crate::secrets::{self, Provider};
use crate::verify::{self, Status, output};

/// The registry the command line names (or the repository around the working
/// directory); when there is none, says what was looked for: exit 2.
pub fn origin(arg: &RegistryArg) -> Result<Origin, Error> {
    Ok(Origin::choose(&arg.request())?)
}

/// Every file of the registry was read and parsed, or why not (the
/// diagnostics shown here).
pub fn read_whole(loaded: &Loaded, color: bool) -> Result<(), Error> {
    if loaded.failures.is_empty() {
        return Ok(());
    }
    for d in &loaded.failures {
        eprint!("{}", output::render_diag(d, color));
    }
    Err(Error::msg(format!(
        "the registry in {} could not be read",
        loaded.origin
    )))
}

/// The typed registry, or why it is unusable (its diagnostics shown here).
pub fn checked(arg: &RegistryArg, color: bool) -> Result<(Loaded, Registry), Error> {
    let loaded = load::load(&origin(arg)?);
    read_whole(&loaded, color)?;
    let outcome = verify::run(&loaded);
    // A gate that had nothing to check is SKIP too; what must hold is that
    // every file passed its schema and no gate failed.
    let schema_ok = outcome
        .gates
        .iter()
        .filter(|g| g.id <= "V03")
        .all(|g| matches!(g.status, Status::Pass | Status::Warn));
    if outcome.count(Status::Fail) > 0 || !schema_ok {
        for g in outcome.gates.iter().filter(|g| g.status != Status::Pass) {
            for d in &g.diags {
                eprint!("{}", output::render_diag(d, color));
            }
        }
        return Err(Error::msg(format!(
            "the registry in {} does not pass `spine verify` (failing: {}); fix it first",
            loaded.origin,
            outcome.failing_ids().join(", ")
        )));
    }
    let valid = crate::diag::FileKind::ALL;
    let reg = Registry::from_loaded(&loaded, &valid)?;
    Ok((loaded, reg))
}

/// `host` is a host of SERVICE_REGISTRY.yaml, or the error names the hosts
/// there are and then `fix`.
pub fn known_host(services: &ServiceRegistry, host: &str, fix: &str) -> Result<(), Error> {
    if services.hosts.contains_key(host) {
        return Ok(());
    }
    let known: Vec<&str> = services.hosts.keys().map(String::as_str).collect();
    Err(Error::msg(format!(
        "no host `{}` in SERVICE_REGISTRY.yaml (hosts: {}){fix}",
        crate::safe::shown(host),
        known.join(", ")
    )))
}

/// The secrets provider chosen on the command line, for this registry's
/// `infisical_projects`; or why it cannot be used.
pub fn provider(a: &SecretsArgs, reg: &Registry) -> Result<Arc<dyn Provider>, Error> {
    let mut projects = reg
        .services
        .as_ref()
        .map(|s| s.infisical_projects.clone())
        .unwrap_or_default();
    reg.bindings.fill_infisical_defaults(&mut projects);
    secrets::choose(
        a.secrets_provider,
        a.infisical_url.as_deref(),
        Duration::from_secs_f64(a.infisical_timeout),
        &projects,
    )
    .map_err(|e| Error::msg(format!("secrets provider: {e}")))
}
