//! Resource kinds: one file per kind, all behind the [`Kind`] trait.
//!
//! A kind knows, for its own resources, how to render the desired state
//! (stage 3), what to read from the host (stage 4, one shell snippet merged
//! into the host's single gather script), and how to compare (stage 5).
//! Adding a kind means adding one file here plus its template, and listing it
//! in [`ALL`].

pub mod cloudinit;
pub mod compose;
pub mod cron;
pub mod netplan;
pub mod tailscale;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::render::{RenderCx, RenderError};

/// Every kind, in the order resources are planned and applied.
pub const ALL: &[&dyn Kind] = &[
    &cloudinit::CloudInit,
    &netplan::Netplan,
    &tailscale::TailscaleKind,
    &compose::ComposeKind,
    &cron::Cron,
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
    /// Kind-specific parameters (vmid, user, project, directory, ...).
    pub args: BTreeMap<String, String>,
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
            args: BTreeMap::new(),
        }
    }

    pub fn file(mut self, path: &str, mode: u32, owner: &str) -> Self {
        self.path = Some(path.into());
        self.mode = Some(mode);
        self.owner = Some(owner.into());
        self
    }

    pub fn arg(mut self, key: &str, value: impl Into<String>) -> Self {
        self.args.insert(key.into(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> &str {
        self.args.get(key).map_or("", String::as_str)
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

/// A resource kind.
pub trait Kind: Sync {
    fn name(&self) -> &'static str;
    /// The resources of this kind for the host in `cx` (possibly none).
    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError>;
}
