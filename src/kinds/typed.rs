//! The typed layer under [`Kind`]: a kind written as a [`TypedKind`] works
//! on its own structs, its `Spec` (what the registry wants, beyond the
//! common [`Desired`] fields) and its `Facts` (what its read script found).
//! JSON appears only at the plan-file boundary: the spec travels in
//! [`Desired::spec`] and the facts as the resource's `observed` value, and
//! the blanket `impl Kind for K: TypedKind` turns them back into the kind's
//! types, so the engine keeps one list of kinds ([`super::ALL`]).
//!
//! Every kind is one: there is no string-map path left.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Change, Desired, HandOff, Kind, KindError, Observed, SecretHashes, Verdict};
use crate::gather::script::Section;
use crate::render::{RenderCx, RenderError};
use crate::shell::{Script, ScriptError};

/// A resource kind with a typed spec and typed facts.
pub trait TypedKind: Sync {
    /// The kind's parameters of one resource (none: `()`).
    type Spec: Serialize + DeserializeOwned;
    /// What the kind reads of one resource on its host, normalised to what
    /// the comparison uses (it is fingerprinted and kept in plans).
    type Facts: Serialize + DeserializeOwned;

    fn name(&self) -> &'static str;
    /// Stage render: each resource of this kind for the host in `cx`, with its spec.
    fn render(&self, cx: &RenderCx) -> Result<Vec<(Desired, Self::Spec)>, RenderError>;
    /// Stage gather: the resource's read script (see [`Kind::read_script`]).
    fn read_script(&self, d: &Desired, spec: &Self::Spec) -> Result<Script, ScriptError>;
    /// Stage gather: the facts in its read script's section; `Err` is
    /// "unknown, because".
    fn observe(
        &self,
        d: &Desired,
        spec: &Self::Spec,
        s: &Section,
        secrets: &dyn SecretHashes,
    ) -> Result<Self::Facts, String>;
    /// Stage diff: desired against the facts.
    fn compare(&self, d: &Desired, spec: &Self::Spec, facts: &Self::Facts) -> Verdict;
    /// Stage apply (see [`Kind::apply`]).
    fn apply(
        &self,
        d: &Desired,
        spec: &Self::Spec,
        facts: &Self::Facts,
        secrets: &dyn crate::secrets::Provider,
    ) -> Result<Change, KindError>;
    /// Stage apply (see [`Kind::hand_off`]).
    fn hand_off(&self, _d: &Desired, _spec: &Self::Spec) -> Option<HandOff> {
        None
    }
}

impl Desired {
    /// The resource with kind `K`'s spec (what a typed kind's render gives).
    pub fn with_spec<K: TypedKind>(mut self, _: &K, spec: &K::Spec) -> Result<Self, String> {
        self.spec = serde_json::to_value(spec)
            .map_err(|e| format!("the spec of {} is not JSON: {e}", self.id))?;
        Ok(self)
    }
}

/// The spec of `d` as kind `K` reads it (a plan file that was not made by
/// this kind's render gives a clear reason).
pub fn spec<K: TypedKind + ?Sized>(kind: &K, d: &Desired) -> Result<K::Spec, String> {
    serde_json::from_value(d.spec.clone()).map_err(|e| {
        format!(
            "resource {} does not hold a {} spec ({e}): make a new plan",
            d.id,
            kind.name()
        )
    })
}

/// Why a resource's facts are not those of its spec's part (a plan that
/// mixed them up): an unknown, never a guess.
pub fn mismatch(d: &Desired) -> String {
    format!(
        "the observed state of {} does not match its part (make a new plan)",
        d.id
    )
}

/// The facts of `d` as kind `K` reads them back from their JSON.
pub fn facts<K: TypedKind + ?Sized>(
    kind: &K,
    d: &Desired,
    v: &serde_json::Value,
) -> Result<K::Facts, String> {
    serde_json::from_value(v.clone()).map_err(|e| {
        format!(
            "the observed state of {} is not what the {} kind reads ({e})",
            d.id,
            kind.name()
        )
    })
}

impl<K: TypedKind> Kind for K {
    fn name(&self) -> &'static str {
        TypedKind::name(self)
    }

    fn render(&self, cx: &RenderCx) -> Result<Vec<Desired>, RenderError> {
        TypedKind::render(self, cx)?
            .into_iter()
            .map(|(d, spec)| d.with_spec(self, &spec).map_err(RenderError::Registry))
            .collect()
    }

    fn read_script(&self, d: &Desired) -> Result<Script, ScriptError> {
        let spec = spec(self, d).map_err(|message| ScriptError {
            name: format!("kinds/{}", TypedKind::name(self)),
            message,
        })?;
        TypedKind::read_script(self, d, &spec)
    }

    fn observe(&self, d: &Desired, s: &Section, secrets: &dyn SecretHashes) -> Observed {
        let spec = spec(self, d)?;
        let facts = TypedKind::observe(self, d, &spec, s, secrets)?;
        serde_json::to_value(&facts).map_err(|e| format!("the facts of {} are not JSON: {e}", d.id))
    }

    fn compare(&self, d: &Desired, actual: &serde_json::Value) -> Verdict {
        match spec(self, d).and_then(|s| Ok((s, facts(self, d, actual)?))) {
            Ok((spec, facts)) => TypedKind::compare(self, d, &spec, &facts),
            Err(reason) => Verdict::Unknown { reason },
        }
    }

    fn apply(
        &self,
        d: &Desired,
        actual: &serde_json::Value,
        secrets: &dyn crate::secrets::Provider,
    ) -> Result<Change, KindError> {
        let spec = spec(self, d).map_err(KindError::Shape)?;
        let facts = facts(self, d, actual).map_err(KindError::Shape)?;
        TypedKind::apply(self, d, &spec, &facts, secrets)
    }

    /// A resource without this kind's spec is handed to nobody: its
    /// verdict is unknown and apply leaves it alone anyway.
    fn hand_off(&self, d: &Desired) -> Option<HandOff> {
        TypedKind::hand_off(self, d, &spec(self, d).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::tailscale::TailscaleKind;

    /// Every resource the shipped registry renders carries its kind's spec
    /// (which reads back as the kind's `Spec`), for every kind.
    #[test]
    fn every_rendered_resource_carries_its_kinds_spec() {
        use crate::diag::FileKind;
        use crate::load::{self, Origin};
        let loaded = load::load(&Origin::Embedded);
        let reg = crate::model::Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
        let templates = crate::render::Templates::new(None).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for host in crate::render::managed_hosts(reg.services.as_ref().unwrap()) {
            for d in crate::kinds::render_host(&reg, &host, &templates)
                .unwrap()
                .resources
            {
                seen.insert(d.kind.clone());
                match d.kind.as_str() {
                    "cron" => assert!(spec(&crate::kinds::cron::Cron, &d).is_ok(), "{d:?}"),
                    "tailscale" => assert!(spec(&TailscaleKind, &d).is_ok(), "{d:?}"),
                    "cloudinit" => assert!(
                        crate::kinds::cloudinit::spec_of(&d).is_some_and(|s| s.vmid > 0),
                        "{d:?}"
                    ),
                    "compose" => assert!(
                        spec(&crate::kinds::compose::ComposeKind, &d).is_ok(),
                        "{d:?}"
                    ),
                    "netplan" => {
                        assert!(spec(&crate::kinds::netplan::Netplan, &d).is_ok(), "{d:?}")
                    }
                    other => panic!("a kind this test does not know: {other}"),
                }
            }
        }
        for kind in ["cron", "tailscale", "cloudinit", "netplan", "compose"] {
            assert!(
                seen.contains(kind),
                "the shipped registry renders no {kind}"
            );
        }
    }

    #[test]
    fn a_spec_or_facts_of_another_shape_is_unknown_with_its_reason() {
        let kind: &dyn Kind = &TailscaleKind;
        let d = Desired::new(kind, "tailscale:prefs", "h", "h", String::new());
        let Verdict::Unknown { reason } = kind.compare(&d, &serde_json::json!({})) else {
            panic!("a resource without a spec compared")
        };
        assert!(
            reason.contains("tailscale:prefs does not hold a tailscale spec"),
            "{reason}"
        );
        let provider = crate::secrets::env::EnvProvider;
        assert!(kind.apply(&d, &serde_json::json!({}), &provider).is_err());
    }
}
