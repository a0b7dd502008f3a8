//! Loading a registry that must pass `spine verify` before anything acts on it.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{RegistryArg, SecretsArgs};
use crate::load::{self, Loaded, Origin};
use crate::model::Registry;
use crate::secrets::{self, Provider};
use crate::verify::{self, Status, output};

/// The registry the command line names (or the repository around the working
/// directory); when there is none, says what was looked for: exit 2.
pub fn origin(arg: &RegistryArg) -> Result<Origin, u8> {
    Origin::choose(&arg.request()).map_err(|e| {
        eprintln!("spine: {e}");
        super::exit::COULD_NOT_RUN
    })
}

/// The typed registry, or the exit code after reporting why it is unusable.
pub fn checked(arg: &RegistryArg, color: bool) -> Result<(Loaded, Registry), u8> {
    let loaded = load::load(&origin(arg)?);
    if !loaded.failures.is_empty() {
        for d in &loaded.failures {
            eprint!("{}", output::render_diag(d, color));
        }
        eprintln!("spine: the registry in {} could not be read", loaded.origin);
        return Err(super::exit::COULD_NOT_RUN);
    }
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
        eprintln!(
            "spine: the registry in {} does not pass `spine verify` (failing: {}); fix it first",
            loaded.origin,
            outcome.failing_ids().join(", ")
        );
        return Err(super::exit::COULD_NOT_RUN);
    }
    let valid = crate::diag::FileKind::ALL;
    match Registry::from_loaded(&loaded, &valid) {
        Ok(r) => Ok((loaded, r)),
        Err(e) => {
            eprintln!("spine: {e}");
            Err(super::exit::COULD_NOT_RUN)
        }
    }
}

/// The secrets provider chosen on the command line, for this registry's
/// `infisical_projects`; or the exit code after saying why it cannot be used.
pub fn provider(a: &SecretsArgs, reg: &Registry) -> Result<Arc<dyn Provider>, u8> {
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
    .map_err(|e| {
        eprintln!("spine: secrets provider: {e}");
        super::exit::COULD_NOT_RUN
    })
}
