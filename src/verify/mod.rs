//! Stage 2: verify. Three schema gates (V01-V03), then semantic gates over the
//! typed registry. Each gate has a stable id, a name and a help text, like the
//! operator's numbered drift gates. A gate whose input file failed its schema
//! is SKIP (with the reason), never PASS.

pub mod compose_file;
mod compose_images;
pub mod gates;
pub mod output;
pub mod provided;
pub mod schema;

use serde::Serialize;

use crate::diag::{Diag, FileKind, Finding, Severity};
use crate::load::{Loaded, problem_diag};
use crate::model::{Bindings, HealthFile, Registry, ServiceRegistry, StackRegistry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        }
    }
}

/// What a semantic gate sees: the typed registry, every file present.
pub struct Ctx<'a> {
    pub services: &'a ServiceRegistry,
    pub stacks: &'a StackRegistry,
    pub health: &'a HealthFile,
    /// Facts from the operator's bindings (ssh.targets, vm.lifecycle, secrets.binding).
    pub bindings: &'a Bindings,
    /// Pointers of `null` values in SERVICE_REGISTRY.yaml (not known yet).
    pub nulls: &'a [String],
}

/// A semantic gate.
pub struct Gate {
    pub id: &'static str,
    pub name: &'static str,
    pub help: &'static str,
    /// What the gate looks at, for the reason when there was nothing to check.
    pub subject: &'static str,
    /// Findings; adds to the counter each item it checked.
    pub run: fn(&Ctx, &mut usize) -> Vec<Finding>,
}

/// One gate's outcome.
#[derive(Debug, Clone)]
pub struct GateResult {
    pub id: &'static str,
    pub name: &'static str,
    pub help: &'static str,
    pub status: Status,
    pub reason: Option<String>,
    pub diags: Vec<Diag>,
    /// How many items the gate checked (entries, files, jobs, images...).
    pub checked: usize,
}

/// The outcome of `spine verify`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub origin: String,
    /// The files read, as named in diagnostics.
    pub files: Vec<String>,
    pub gates: Vec<GateResult>,
}

impl Outcome {
    pub fn count(&self, s: Status) -> usize {
        self.gates.iter().filter(|g| g.status == s).count()
    }
    pub fn failing_ids(&self) -> Vec<&'static str> {
        self.gates
            .iter()
            .filter(|g| g.status == Status::Fail)
            .map(|g| g.id)
            .collect()
    }
}

/// Describes every gate, schema gates first: `(id, name, help)`.
pub fn catalogue() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out: Vec<_> = FileKind::ALL
        .iter()
        .map(|&k| (schema::gate_id(k), schema_gate_name(k), SCHEMA_HELP))
        .collect();
    out.extend(gates::ALL.iter().map(|g| (g.id, g.name, g.help)));
    out.push((compose_file::ID, compose_file::NAME, compose_file::HELP));
    out
}

const SCHEMA_HELP: &str = "The file parses as one YAML mapping without duplicate keys and matches its JSON Schema in schemas/.";

fn schema_gate_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Services => "SERVICE_REGISTRY.yaml matches its schema",
        FileKind::Stacks => "STACK_REGISTRY.yaml matches its schema",
        FileKind::Health => "services.health.yaml matches its schema",
        _ => "binding loads",
    }
}

/// Run every gate over a loaded registry. `loaded.failures` must be empty
/// (files that could not be read are "could not run", reported by the caller).
pub fn run(loaded: &Loaded) -> Outcome {
    let mut results = Vec::new();
    let mut valid = Vec::new();
    for kind in FileKind::ALL {
        let id = schema::gate_id(kind);
        let name = schema_gate_name(kind);
        let Some(doc) = loaded.docs.get(&kind) else {
            results.push(skip(
                id,
                name,
                SCHEMA_HELP,
                format!("{} was not loaded", kind.file_name()),
            ));
            continue;
        };
        let mut diags: Vec<Diag> = doc
            .duplicates
            .iter()
            .map(|p| {
                let mut d = problem_diag(&doc.source, p);
                d.gate = id;
                d
            })
            .collect();
        diags.extend(
            schema::check(kind, &doc.json, &doc.tree)
                .iter()
                .map(|f| Diag::resolve(f, loaded)),
        );
        if diags.is_empty() {
            valid.push(kind);
        }
        diags.extend(
            schema::unknown_status_words(kind, &doc.json)
                .iter()
                .map(|f| Diag::resolve(f, loaded)),
        );
        results.push(GateResult {
            checked: 1,
            ..result(id, name, SCHEMA_HELP, diags)
        });
    }

    let registry = match Registry::from_loaded(loaded, &valid) {
        Ok(r) => r,
        Err(e) => {
            // The schema accepted something the typed model cannot hold: a bug
            // in spine's schema, reported rather than hidden.
            for g in gates::ALL {
                results.push(skip(
                    g.id,
                    g.name,
                    g.help,
                    format!("registry could not be typed: {e}"),
                ));
            }
            results.push(skip(
                compose_file::ID,
                compose_file::NAME,
                compose_file::HELP,
                format!("registry could not be typed: {e}"),
            ));
            return Outcome {
                origin: loaded.origin.clone(),
                files: names(loaded),
                gates: results,
            };
        }
    };
    match (&registry.services, &registry.stacks, &registry.health) {
        (Some(services), Some(stacks), Some(health)) => {
            let ctx = Ctx {
                services,
                stacks,
                health,
                bindings: &registry.bindings,
                nulls: loaded
                    .docs
                    .get(&FileKind::Services)
                    .map_or(&[][..], |d| &d.nulls),
            };
            for g in gates::ALL {
                let mut checked = 0;
                let diags: Vec<Diag> = (g.run)(&ctx, &mut checked)
                    .iter()
                    .map(|f| Diag::resolve(f, loaded))
                    .collect();
                results.push(if checked == 0 && diags.is_empty() {
                    // "Could not check" is never PASS.
                    skip(
                        g.id,
                        g.name,
                        g.help,
                        format!("checked nothing: the registry has no {}", g.subject),
                    )
                } else {
                    GateResult {
                        checked,
                        ..result(g.id, g.name, g.help, diags)
                    }
                });
            }
            results.push(compose_file::gate(loaded, Some(stacks)));
        }
        _ => {
            let bad: Vec<&str> = FileKind::ALL
                .iter()
                .filter(|k| !valid.contains(k))
                .map(|k| k.file_name())
                .collect();
            let all = gates::ALL.iter().map(|g| (g.id, g.name, g.help)).chain([(
                compose_file::ID,
                compose_file::NAME,
                compose_file::HELP,
            )]);
            for (id, name, help) in all {
                results.push(skip(
                    id,
                    name,
                    help,
                    format!("not checked: {} must pass its schema first", bad.join(", ")),
                ));
            }
        }
    }
    Outcome {
        origin: loaded.origin.clone(),
        files: names(loaded),
        gates: results,
    }
}

fn names(loaded: &Loaded) -> Vec<String> {
    loaded.file_names().into_iter().map(String::from).collect()
}

pub(crate) fn skip(
    id: &'static str,
    name: &'static str,
    help: &'static str,
    reason: String,
) -> GateResult {
    GateResult {
        id,
        name,
        help,
        status: Status::Skip,
        reason: Some(reason),
        diags: Vec::new(),
        checked: 0,
    }
}

pub(crate) fn result(
    id: &'static str,
    name: &'static str,
    help: &'static str,
    mut diags: Vec<Diag>,
) -> GateResult {
    diags.sort_by(|a, b| (&a.file, a.at.line, a.at.column).cmp(&(&b.file, b.at.line, b.at.column)));
    let status = if diags.iter().any(|d| d.severity == Severity::Error) {
        Status::Fail
    } else if diags.is_empty() {
        Status::Pass
    } else {
        Status::Warn
    };
    GateResult {
        id,
        name,
        help,
        status,
        reason: None,
        checked: 0,
        diags,
    }
}
