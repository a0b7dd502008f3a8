//! Resource kinds: one file per kind, all behind the [`Kind`] trait.
//!
//! A kind knows, for its own resources, how to render the desired state
//! (stage 3), what to read from the host (stage 4, one shell snippet merged
//! into the host's single gather script), and how to compare (stage 5).
//! Adding a kind means adding one file here plus its template, and listing it
//! in [`ALL`]. A kind is written as a [`TypedKind`] (its own `Spec` and
//! `Facts` structs, see [`typed`]): every kind is one.

pub mod cloudinit;
pub mod compose;
pub mod cron;
pub mod file;
mod host;
pub mod hosts;
pub mod netplan;
pub mod tailscale;
pub mod typed;

pub use host::{HostState, render_host, write_out};
pub use typed::TypedKind;

use serde::{Deserialize, Serialize};

use crate::gather::script::Section;
use crate::render::{RenderCx, RenderError};
use crate::shell::{Script, ScriptError};

/// Every kind, in the order resources are planned and applied.
pub const ALL: &[&dyn Kind] = &[
    &cloudinit::CloudInit,
    &netplan::Netplan,
    &tailscale::TailscaleKind,
    &compose::ComposeKind,
    &cron::Cron,
    &hosts::HostsKind,
];

pub fn by_name(name: &str) -> Option<&'static dyn Kind> {
    ALL.iter().copied().find(|k| k.name() == name)
}

/// One resource as the registry wants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Kind name (`netplan`, `cron`, ...).
    pub kind: String,
    /// Unique per host, stable across runs, e.g. `netplan:/etc/netplan/50-cloud-init.yaml`.
    pub id: String,
    /// Host id the resource lives on (the Proxmox host for cloud-init settings).
    pub on: String,
    /// Host id the resource is about.
    pub about: String,
    /// File path on the host, for file resources.
    pub path: Option<String>,
    /// Octal file mode, for file resources.
    pub mode: Option<u32>,
    /// File owner (user), for file resources.
    pub owner: Option<String>,
    /// Rendered content. Secrets appear only as placeholders.
    pub content: String,
    /// Keys whose values are secrets (filled in at apply time).
    pub secrets: Vec<String>,
    /// The typed kind's own parameters (its [`TypedKind::Spec`]) as JSON;
    /// left out of plans when the kind has none.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub spec: serde_json::Value,
}

impl Desired {
    pub fn new(
        kind: &dyn Kind,
        id: impl Into<String>,
        on: &str,
        about: &str,
        content: String,
    ) -> Self {
        Self {
            kind: kind.name().into(),
            id: id.into(),
            on: on.into(),
            about: about.into(),
            path: None,
            mode: None,
            owner: None,
            content,
            secrets: Vec::new(),
            spec: serde_json::Value::Null,
        }
    }

    pub fn file(mut self, path: &str, mode: u32, owner: &str) -> Self {
        self.path = Some(path.into());
        self.mode = Some(mode);
        self.owner = Some(owner.into());
        self
    }

    /// Relative name for `spine render --out`.
    pub fn file_name(&self) -> String {
        match &self.path {
            Some(p) => p.clone(),
            None => format!(
                "{}/{}",
                self.kind,
                self.id
                    .split_once(':')
                    .map_or(self.id.as_str(), |(_, r)| r)
                    .replace('/', "_")
            ),
        }
    }

    /// The content as shown to people: secrets as `(sensitive)`.
    pub fn shown_content(&self) -> String {
        let mut s = self.content.clone();
        for key in &self.secrets {
            s = s.replace(&crate::render::secret_placeholder(key), "(sensitive)");
        }
        s
    }
}

/// What comparing needs beyond desired and actual: hashes of secret values,
/// from the secrets provider (never the values themselves).
pub trait SecretHashes: Sync {
    /// `sha256:HEX` of the secret `reference` names, or why it is not available.
    fn hash(&self, reference: &crate::secrets::Reference) -> Result<String, String>;
}

/// Hashes for comparing, from a secrets provider.
pub struct ProviderHashes<'a>(pub &'a dyn crate::secrets::Provider);

impl SecretHashes for ProviderHashes<'_> {
    fn hash(&self, reference: &crate::secrets::Reference) -> Result<String, String> {
        self.0.fetch(&reference.to_string()).map(|s| s.sha256())
    }
}

/// The observed state of one resource, normalised so that only what the
/// comparison uses is kept (and fingerprinted): `Err` is "unknown, because".
pub type Observed = Result<serde_json::Value, String>;

/// How a resource compares with the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    InSync,
    Drift {
        action: Action,
        reason: String,
        /// Unified diff (secrets masked), when there is text to compare.
        diff: Option<String>,
    },
    Unknown {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Change,
    /// Something on the host that must go (a container no desired service
    /// names, a legacy one): never silent, counted and shown on its own.
    Remove,
}

/// A resource kind.
pub trait Kind: Sync {
    fn name(&self) -> &'static str;
    /// Stage render: the resources of this kind for the host in `cx` (possibly none).
    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError>;
    /// Stage gather: a read-only shell snippet printing `key=value` lines about
    /// `d` (helpers `sp_kv`, `sp_b64`, `sp_file`, `sp_sudo`, `sp_missing`),
    /// rendered from a file under `scripts/kinds/` by [`crate::shell`].
    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError>;
    /// Stage gather: the facts from its read script's section that matter.
    fn observe(&self, d: &Desired, s: &Section, secrets: &dyn SecretHashes) -> Observed;
    /// Stage diff: desired against observed.
    fn compare(&self, d: &Desired, actual: &serde_json::Value) -> Verdict;
    /// Stage apply: a root shell script that makes the resource as desired,
    /// keeping what it replaces under `$BK` (this run's backup folder on the
    /// host). Helpers: `sp_backup PATH`, `sp_put PATH MODE OWNER BASE64`.
    /// Secret values are filled in here, from `secrets`, and nowhere else.
    fn apply(
        &self,
        d: &Desired,
        actual: &serde_json::Value,
        secrets: &dyn crate::secrets::Provider,
    ) -> Result<Change, KindError>;
    /// Stage apply: who makes `d` on its host when spine must not edit it
    /// there (default: nobody, spine applies it).
    fn hand_off(&self, _d: &Desired) -> Option<HandOff> {
        None
    }
}

/// A resource something else generates on its host: apply never edits it
/// there (its drift stays until the fix reaches the host by `route`), and
/// the confirmed changes of its kind wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOff {
    /// Who generates the resource on its host (`cloud-init`).
    pub generator: &'static str,
    /// How a fix reaches the host.
    pub route: Route,
}

/// How the fix of a handed-off resource reaches its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Made at the VM's Proxmox host and handed to the VM when it restarts
    /// from there (`spine apply --restart-vms`).
    VmRestart,
}

impl Route {
    /// Where the fix is made and how it travels.
    pub fn how(self) -> &'static str {
        match self {
            Route::VmRestart => "changed at the Proxmox host and handed to the VM by a restart",
        }
    }

    /// What the host still needs for the fix to arrive.
    pub fn needs(self) -> &'static str {
        match self {
            Route::VmRestart => "a restart from the Proxmox host",
        }
    }

    /// The `spine apply` flag that takes the fix there.
    pub fn flag(self) -> &'static str {
        match self {
            Route::VmRestart => "--restart-vms",
        }
    }
}

/// Why a kind cannot make the change of one resource: that resource fails
/// (its reason in the apply report and receipt), the run goes on.
/// ("Could not read" is not an error: an [`Observed`] `Err` is the reason a
/// resource is unknown.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// The resource's spec or facts are not this kind's: a plan made by
    /// another spine, or edited.
    #[error("{0}")]
    Shape(String),
    /// A script did not render (a bug in spine, named).
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A secret value could not be fetched.
    #[error("secret `{key}`: {why}")]
    Secret { key: String, why: String },
    /// A value (from the plan or the host's answer) that must not reach a
    /// host's root script.
    #[error("{0}: refused")]
    Refused(String),
    /// Only the operator can do this (log a node in, approve it).
    #[error("{0}")]
    NeedsOperator(String),
}

/// What applying one resource runs on its host.
#[derive(Debug, Clone)]
pub struct Change {
    /// Root shell script (travels on stdin; may hold secret values: never log it).
    pub script: Script,
    /// How the engine runs it.
    pub lifecycle: Lifecycle,
    /// Said to the operator after the change (e.g. when it takes effect).
    pub note: Option<String>,
    /// Why this change is refused without `--force`, if it is.
    pub needs_force: Option<String>,
}

impl Change {
    pub fn new(script: Script) -> Self {
        Self {
            script,
            lifecycle: Lifecycle::Plain,
            note: None,
            needs_force: None,
        }
    }
}

/// How the engine runs a change. The engine knows these steps, never the
/// kind behind them (netplan is one [`Lifecycle::Confirmed`]).
#[derive(Debug, Clone)]
pub enum Lifecycle {
    /// Run the script as root; its exit status is the outcome.
    Plain,
    /// A change that may cut the connection it travels on.
    Confirmed(Confirmed),
}

/// Stage the change, `check` it (a rejected change puts the `files` back
/// and nothing else happens), arm a rollback timer on the host (detached
/// from the session: unless confirmed in time it restores `files` from the
/// run's backup and runs `activate`), `activate` in the background, then
/// confirm over a fresh connection to `confirm_address` and disarm.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The address the host answers on once the change is active.
    pub confirm_address: String,
    /// Files the change writes, restored from the backup on rollback.
    pub files: Vec<String>,
    /// Checks the staged change without activating it (non-zero: rejected).
    pub check: Script,
    /// Makes the staged (or restored) configuration active.
    pub activate: Script,
}

/// Each resource's read script, by resource id, for the host's gather
/// script (resources of a kind spine does not know are left out).
pub fn read_scripts(resources: &[Desired]) -> Result<Vec<(String, Script)>, ScriptError> {
    let mut out = Vec::new();
    for r in resources {
        if let Some(kind) = by_name(&r.kind) {
            out.push((r.id.clone(), kind.read_script(r)?));
        }
    }
    Ok(out)
}

/// Drift with a text diff: a create when nothing is there yet, else a change.
pub fn drift(
    nothing_there: bool,
    reasons: &[String],
    what: &str,
    have: &str,
    want: &str,
) -> Verdict {
    drift_with(nothing_there, reasons, text_diff(what, have, want))
}

/// Drift with the given diff: a create when nothing is there yet, else a change.
pub fn drift_with(nothing_there: bool, reasons: &[String], diff: Option<String>) -> Verdict {
    Verdict::Drift {
        action: if nothing_there {
            Action::Create
        } else {
            Action::Change
        },
        reason: reasons.join("; "),
        diff,
    }
}

/// A removal of the things in `extra` (each `(name, why)`): the reason
/// names each (`PREFIX NAME: WHY`, then `note`), the diff lists them going
/// from `what`; in sync when there is nothing to remove.
pub fn removal_of(extra: &[(String, String)], prefix: &str, what: &str, note: &str) -> Verdict {
    if extra.is_empty() {
        return Verdict::InSync;
    }
    let reasons: Vec<String> = extra
        .iter()
        .map(|(name, why)| format!("{prefix}{name}: {why}"))
        .collect();
    let have: String = extra.iter().map(|(name, _)| format!("{name}\n")).collect();
    Verdict::Drift {
        action: Action::Remove,
        reason: format!("{}{note}", reasons.join("; ")),
        diff: text_diff(what, &have, ""),
    }
}

/// A unified diff of two texts, or `None` when equal. Every value the
/// secret-key rule flags is masked on each line ([`crate::secrets::mask_line`]):
/// a changed line with a secret still shows, its value never does.
pub fn text_diff(name: &str, actual: &str, desired: &str) -> Option<String> {
    diff_with_context(name, actual, desired, 3)
}

/// [`text_diff`] without context lines: only the lines that change show.
/// For a file whose other lines are the operator's own (a crontab), which
/// spine neither manages nor needs to show: a plan or receipt that travels
/// carries none of them (a bare-word password in an operator's cron job
/// would pass every masking rule).
pub fn changed_lines_diff(name: &str, actual: &str, desired: &str) -> Option<String> {
    diff_with_context(name, actual, desired, 0)
}

fn diff_with_context(name: &str, actual: &str, desired: &str, context: usize) -> Option<String> {
    if actual == desired {
        return None;
    }
    let diff = similar::TextDiff::from_lines(actual, desired);
    let text = diff
        .unified_diff()
        .context_radius(context)
        .header(&format!("{name} (on host)"), &format!("{name} (desired)"))
        .to_string();
    Some(mask_diff(&text))
}

/// Mask secret values in the lines of a unified diff (headers and hunk
/// markers as they are).
fn mask_diff(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len());
    for (i, line) in diff.split_inclusive('\n').enumerate() {
        let body = line.get(1..).unwrap_or_default();
        if i < 2 || line.starts_with("@@") || body.is_empty() {
            out.push_str(line);
            continue;
        }
        let (text, nl) = body.strip_suffix('\n').map_or((body, ""), |t| (t, "\n"));
        out.push_str(&line[..1]);
        out.push_str(&crate::secrets::mask_line(text));
        out.push_str(nl);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A changed compose-file or crontab line holding a secret value shows
    /// in the diff (so the change is seen) with its value masked.
    #[test]
    fn diffs_mask_secret_values() {
        let host = "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=hunter2\n      - TZ=UTC\n";
        let want = "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=${DB_PASSWORD}\n      - TZ=UTC\n";
        let diff = text_diff("docker-compose.yml", host, want).unwrap();
        assert!(!diff.contains("hunter2"), "{diff}");
        assert!(
            diff.contains("-      - POSTGRES_PASSWORD=(sensitive)\n")
                && diff.contains("+      - POSTGRES_PASSWORD=${DB_PASSWORD}\n")
                && diff.contains("       - TZ=UTC\n"),
            "{diff}"
        );
        let host = "0 4 * * * BACKUP_TOKEN=tok123 /opt/push.sh\n";
        let want = "0 4 * * * BACKUP_TOKEN=tok456 /opt/push.sh\n# BEGIN spine managed block\n";
        let Verdict::Drift { diff, .. } = drift(false, &[], "crontab of ronny", host, want) else {
            panic!()
        };
        let diff = diff.unwrap();
        assert!(
            !diff.contains("tok123") && !diff.contains("tok456"),
            "{diff}"
        );
        assert!(
            diff.starts_with("--- crontab of ronny (on host)\n+++ crontab of ronny (desired)\n")
                && diff.contains("-0 4 * * * BACKUP_TOKEN=(sensitive) /opt/push.sh\n")
                && diff.contains("+0 4 * * * BACKUP_TOKEN=(sensitive) /opt/push.sh\n"),
            "{diff}"
        );
    }
}
