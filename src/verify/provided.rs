//! V15, only with `spine verify --secrets`: every secret a stack refers to
//! exists in the secrets provider. Names only: the check asks the provider
//! whether the key is there (Infisical: without values) and never shows one.

use super::{GateResult, Outcome, Status, result, schema, skip};
use crate::diag::{Diag, FileKind, Finding, Place, pointer};
use crate::load::Loaded;
use crate::model::Registry;
use crate::secrets::{Provider, Reference};

pub const ID: &str = "V15";
pub const NAME: &str = "referenced secrets exist in the provider";
pub const HELP: &str = "Only with --secrets: every `compose.secrets` reference (project, key, path) names a secret the chosen provider has (environment variable, or Infisical project/environment/folder). Names only; no value is read or shown.";

/// Run V15 over a registry whose schema gates `outcome` holds.
pub fn gate(loaded: &Loaded, outcome: &Outcome, provider: &dyn Provider) -> GateResult {
    let valid: Vec<FileKind> = FileKind::ALL
        .into_iter()
        .filter(|k| {
            outcome.gates.iter().any(|g| {
                g.id == schema::gate_id(*k) && matches!(g.status, Status::Pass | Status::Warn)
            })
        })
        .collect();
    let needed = [FileKind::Services, FileKind::Stacks];
    if let Some(k) = needed.iter().find(|k| !valid.contains(k)) {
        return skip(
            ID,
            NAME,
            HELP,
            format!("not checked: {} must pass its schema first", k.file_name()),
        );
    }
    let reg = match Registry::from_loaded(loaded, &valid) {
        Ok(r) => r,
        Err(e) => return skip(ID, NAME, HELP, format!("registry could not be typed: {e}")),
    };
    let mut diags: Vec<Diag> = Vec::new();
    let mut checked = 0;
    for (i, st) in reg.stacks.unwrap_or_default().stacks.iter().enumerate() {
        let Some(c) = st.desired.as_ref().and_then(|d| d.compose.as_ref()) else {
            continue;
        };
        for (key, r) in &c.secrets {
            checked += 1;
            let reference = Reference::new(&r.project, &r.key, r.path.as_deref()).to_string();
            if let Err(e) = provider.exists(&reference) {
                let place = Place::key(
                    FileKind::Stacks,
                    pointer([
                        "stacks",
                        &i.to_string(),
                        "desired",
                        "compose",
                        "secrets",
                        key,
                    ]),
                );
                let f = Finding::error(ID, place, e)
                    .label("not in the provider")
                    .help(format!(
                        "store `{}` in project `{}` of the provider, or correct the reference here",
                        r.key, r.project
                    ));
                diags.push(Diag::resolve(&f, loaded));
            }
        }
    }
    if checked == 0 {
        return skip(
            ID,
            NAME,
            HELP,
            "checked nothing: no stack refers to a secret (desired.compose.secrets)".into(),
        );
    }
    GateResult {
        checked,
        ..result(ID, NAME, HELP, diags)
    }
}
