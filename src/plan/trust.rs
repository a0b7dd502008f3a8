//! Saved plans that cannot be forged.
//!
//! A plan file travels, and its checksum is a plain SHA-256 anyone can
//! recompute. So apply trusts nothing in it that the registry does not say:
//!
//! - every resource's desired state must be exactly what the current registry
//!   renders now (same id, same host, same content, path, mode, owner, spec);
//! - every host must be one the registry has, and the route a plan names for
//!   it one of the registry's access paths for that host;
//! - when the operator has an SSH key (`--signing-key`, `SPINE_SIGNING_KEY`,
//!   ssh-agent; as for receipts), `spine plan -o` signs the plan (SSHSIG,
//!   namespace [`NAMESPACE`]) and apply refuses a plan that is unsigned, or
//!   signed by another key, or whose signature does not verify.
//!
//! What a plan still decides is only *which* of the registry's resources to
//! apply on which of its hosts, bound to the facts it saw (`fingerprint`).

use std::collections::BTreeMap;
use std::path::Path;

use ssh_key::{PublicKey, SshSig};

use super::Plan;
use super::file::{self, PlanFileError};
use crate::gather::ssh;
use crate::kinds::Desired;
use crate::model::Registry;
use crate::receipt::Signer;
use crate::render::{self, Templates};

/// The SSHSIG namespace of plan signatures: a receipt or git signature never
/// passes for a plan signature, nor the other way round.
pub const NAMESPACE: &str = "spine-plan@spine";

const REPLAN: &str = "make a new plan from the current registry with `spine plan -o FILE`, and never edit a plan file";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrustError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] PlanFileError),
    #[error(
        "plan file {file} is not signed, but this operator signs plans (key {key}): an unsigned plan may have been made or changed by anyone"
    )]
    #[diagnostic(
        code(spine::plan::unsigned),
        help("{REPLAN} (it is signed with the same key)")
    )]
    Unsigned { file: String, key: String },
    #[error("plan file {file}: its signature {why}")]
    #[diagnostic(code(spine::plan::signature), help("{REPLAN}"))]
    BadSignature { file: String, why: String },
    #[error("plan file {file} names host `{host}`, which the registry does not have")]
    #[diagnostic(
        code(spine::plan::host),
        help("a plan may only touch hosts the registry gives; {REPLAN}")
    )]
    UnknownHost { file: String, host: String },
    #[error(
        "plan file {file} reaches host `{host}` via {route}, which is not one of the registry's access paths for it ({allowed})"
    )]
    #[diagnostic(code(spine::plan::route), help("{REPLAN}"))]
    ForeignRoute {
        file: String,
        host: String,
        route: String,
        allowed: String,
    },
    #[error(
        "plan file {file} holds resource `{id}` on host `{host}`, which the registry does not render"
    )]
    #[diagnostic(code(spine::plan::resource), help("{REPLAN}"))]
    ForeignResource {
        file: String,
        host: String,
        id: String,
    },
    #[error(
        "plan file {file}: the desired {field} of `{id}` on host `{host}` differs from what the registry renders now"
    )]
    #[diagnostic(code(spine::plan::desired), help("{REPLAN}"))]
    Differs {
        file: String,
        host: String,
        id: String,
        field: &'static str,
    },
    #[error("plan file {file}: cannot render the registry to check the plan against it: {why}")]
    #[diagnostic(
        code(spine::plan::render),
        help("fix the registry or --templates; `spine render` shows the error")
    )]
    Render { file: String, why: String },
    #[error("cannot sign the plan: {0}")]
    #[diagnostic(
        code(spine::plan::sign),
        help(
            "check --signing-key / SPINE_SIGNING_KEY / ssh-agent, as for receipts (docs/receipts.md)"
        )
    )]
    Sign(String),
}

impl crate::error::StageError for TrustError {
    fn into_error(self) -> crate::error::Error {
        crate::error::Error::stage(self)
    }
}

/// The operator's signer, as for receipts: `--signing-key`, else
/// `SPINE_SIGNING_KEY`, else the first ed25519 key of ssh-agent, else none.
fn signer(signing_key: Option<&Path>) -> Result<Signer, TrustError> {
    Signer::from_env(signing_key).map_err(|e| TrustError::Sign(e.to_string()))
}

/// Save a plan, signed when the operator has a key. Returns whether it was signed.
pub fn save(plan: &Plan, path: &Path, signing_key: Option<&Path>) -> Result<bool, TrustError> {
    let plan = &plan.for_storage();
    let signature = signer(signing_key)?
        .sign_in(NAMESPACE, &file::plan_bytes(plan))
        .map_err(|e| TrustError::Sign(e.to_string()))?;
    let signed = signature.is_some();
    file::save_signed(plan, path, signature)?;
    Ok(signed)
}

/// Load a saved plan for apply and refuse it unless the registry (rendered
/// with `templates`) gives every host, route and desired state in it, and its
/// signature is the operator's (when the operator has a key).
pub fn load(
    path: &Path,
    reg: &Registry,
    templates: Option<&Path>,
    signing_key: Option<&Path>,
) -> Result<Plan, TrustError> {
    let shown = path.display().to_string();
    let (plan, signature) = file::load_signed(path)?;
    let operator = signer(signing_key)?;
    check_signature(&plan, signature.as_deref(), operator.public_key(), &shown)?;
    let templates = Templates::new(templates).map_err(|e| TrustError::Render {
        file: shown.clone(),
        why: e.to_string(),
    })?;
    check_against_registry(&plan, reg, &templates, &shown)?;
    Ok(plan)
}

/// A present signature must verify (under [`NAMESPACE`], over the plan's
/// bytes); with an operator key it must be present and made by that key.
fn check_signature(
    plan: &Plan,
    signature: Option<&str>,
    operator: Option<&PublicKey>,
    file: &str,
) -> Result<(), TrustError> {
    let bad = |why: String| TrustError::BadSignature {
        file: file.into(),
        why,
    };
    let Some(pem) = signature else {
        return match operator {
            Some(key) => Err(TrustError::Unsigned {
                file: file.into(),
                key: key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
            }),
            None => Ok(()),
        };
    };
    let sig = SshSig::from_pem(pem).map_err(|e| bad(format!("is not an SSH signature ({e})")))?;
    if sig.namespace() != NAMESPACE {
        return Err(bad(format!(
            "was made for `{}`, not for plans (`{NAMESPACE}`)",
            sig.namespace()
        )));
    }
    let key = PublicKey::from(sig.public_key().clone());
    key.verify(NAMESPACE, &file::plan_bytes(plan), &sig)
        .map_err(|_| bad("does not verify: the plan was changed after it was signed".into()))?;
    if let Some(op) = operator
        && op.key_data() != key.key_data()
    {
        return Err(bad(format!(
            "is by key {}, not by this operator's key {}",
            key.fingerprint(ssh_key::HashAlg::Sha256),
            op.fingerprint(ssh_key::HashAlg::Sha256)
        )));
    }
    Ok(())
}

/// Every host, route and desired resource of the plan must be the registry's.
fn check_against_registry(
    plan: &Plan,
    reg: &Registry,
    templates: &Templates,
    file: &str,
) -> Result<(), TrustError> {
    let services = reg.services.clone().unwrap_or_default();
    let rendered = render_all(reg, templates).map_err(|why| TrustError::Render {
        file: file.into(),
        why,
    })?;
    for h in &plan.hosts {
        if !services.hosts.contains_key(&h.host) {
            return Err(TrustError::UnknownHost {
                file: file.into(),
                host: h.host.clone(),
            });
        }
        if let Some(route) = &h.route {
            let allowed = ssh::routes(&services, &h.host);
            if !allowed.contains(route) {
                let list: Vec<String> = allowed.iter().map(ssh::Route::describe).collect();
                return Err(TrustError::ForeignRoute {
                    file: file.into(),
                    host: h.host.clone(),
                    route: route.describe(),
                    allowed: if list.is_empty() {
                        "it has none".into()
                    } else {
                        list.join(", ")
                    },
                });
            }
        }
        let mine = rendered.get(&h.host).map_or(&[][..], Vec::as_slice);
        for r in &h.resources {
            same_as_rendered(&r.desired, mine, &h.host, file)?;
        }
    }
    Ok(())
}

/// The registry's resources, rendered, by the host they live on.
fn render_all(
    reg: &Registry,
    templates: &Templates,
) -> Result<BTreeMap<String, Vec<Desired>>, String> {
    let services = reg.services.clone().unwrap_or_default();
    let mut by_on: BTreeMap<String, Vec<Desired>> = BTreeMap::new();
    for host in render::managed_hosts(&services) {
        let state = crate::kinds::render_host(reg, &host, templates).map_err(|e| e.to_string())?;
        for r in state.resources {
            by_on.entry(r.on.clone()).or_default().push(r);
        }
    }
    Ok(by_on)
}

/// The planned resource is exactly one the registry renders on this host.
fn same_as_rendered(
    planned: &Desired,
    rendered: &[Desired],
    host: &str,
    file: &str,
) -> Result<(), TrustError> {
    let Some(want) = rendered.iter().find(|d| d.id == planned.id && d.on == host) else {
        return Err(TrustError::ForeignResource {
            file: file.into(),
            host: host.into(),
            id: planned.id.clone(),
        });
    };
    if planned == want {
        return Ok(());
    }
    let field = if planned.content != want.content {
        "content"
    } else if planned.path != want.path {
        "path"
    } else if planned.mode != want.mode || planned.owner != want.owner {
        "mode or owner"
    } else if planned.secrets != want.secrets {
        "secret keys"
    } else if planned.spec != want.spec {
        "parameters"
    } else {
        "kind or host"
    };
    Err(TrustError::Differs {
        file: file.into(),
        host: host.into(),
        id: planned.id.clone(),
        field,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::FileKind;
    use crate::kinds::Verdict;
    use crate::load::{self, Origin};
    use crate::plan::{HostPlan, ResourcePlan, Summary};

    fn registry() -> Registry {
        let loaded = load::load(&Origin::Embedded);
        Registry::from_loaded(&loaded, &FileKind::ALL).expect("the shipped registry")
    }

    /// A plan of every resource the shipped registry renders, reached by the
    /// registry's first route: what `spine plan` would save.
    fn genuine(reg: &Registry) -> Plan {
        let services = reg.services.clone().unwrap();
        let rendered = render_all(reg, &Templates::new(None).unwrap()).unwrap();
        let hosts = rendered
            .into_iter()
            .map(|(host, resources)| HostPlan {
                route: ssh::routes(&services, &host).first().cloned(),
                host,
                failures: Vec::new(),
                error: None,
                fingerprint: None,
                resources: resources
                    .into_iter()
                    .map(|desired| ResourcePlan {
                        desired,
                        verdict: Verdict::InSync,
                        observed: None,
                    })
                    .collect(),
                health: Vec::new(),
                vm: None,
            })
            .collect();
        Plan {
            format_version: crate::plan::FORMAT_VERSION,
            tool: "spine test".into(),
            created: "2026-11-29T00:00:00Z".into(),
            registry_hash: String::new(),
            hosts,
            summary: Summary::default(),
        }
    }

    fn check(plan: &Plan, reg: &Registry) -> Result<(), TrustError> {
        check_against_registry(plan, reg, &Templates::new(None).unwrap(), "p.plan")
    }

    #[test]
    fn only_what_the_registry_renders_passes() {
        let reg = registry();
        let good = genuine(&reg);
        assert!(good.hosts.iter().map(|h| h.resources.len()).sum::<usize>() > 3);
        check(&good, &reg).unwrap();

        let mut p = good.clone();
        p.hosts[0].resources[0].desired.content.push_str("\nevil\n");
        let e = check(&p, &reg).unwrap_err().to_string();
        assert!(e.contains("the desired content of"), "{e}");

        let mut p = good.clone();
        p.hosts[0].resources[0].desired.mode = Some(0o777);
        p.hosts[0].resources[0].desired.path = Some("/etc/shadow".into());
        let e = check(&p, &reg).unwrap_err().to_string();
        assert!(e.contains("the desired path of"), "{e}");

        let mut p = good.clone();
        p.hosts[0].host = "elsewhere".into();
        let e = check(&p, &reg).unwrap_err().to_string();
        assert_eq!(
            e,
            "plan file p.plan names host `elsewhere`, which the registry does not have"
        );

        let mut p = good.clone();
        p.hosts[0].route.as_mut().unwrap().address = "203.0.113.9".into();
        let e = check(&p, &reg).unwrap_err().to_string();
        assert!(
            e.contains("via ")
                && e.contains("203.0.113.9")
                && e.contains("not one of the registry's access paths"),
            "{e}"
        );

        let mut p = good.clone();
        p.hosts[0].resources[0].desired.id = "netplan:/etc/netplan/99-evil.yaml".into();
        let e = check(&p, &reg).unwrap_err().to_string();
        assert!(
            e.contains("holds resource `netplan:/etc/netplan/99-evil.yaml`"),
            "{e}"
        );

        // A resource moved to another of the registry's hosts is foreign there.
        if good.hosts.len() > 1 {
            let mut p = good.clone();
            let moved = p.hosts[0].resources[0].clone();
            p.hosts[1].resources.push(moved);
            assert!(check(&p, &reg).is_err());
        }
    }

    fn key(dir: &Path, name: &str) -> Signer {
        let path = dir.join(name);
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
        Signer::from_key_file(&path, None, "op@test").unwrap()
    }

    #[test]
    fn signatures_bind_the_plan_to_the_operators_key() {
        let tmp = tempfile::tempdir().unwrap();
        let (op, other) = (key(tmp.path(), "op"), key(tmp.path(), "other"));
        let plan = genuine(&registry());
        let bytes = file::plan_bytes(&plan);
        let sig = op.sign_in(NAMESPACE, &bytes).unwrap().unwrap();
        let check = |p: &Plan, s: Option<&str>, k: Option<&Signer>| {
            check_signature(p, s, k.and_then(Signer::public_key), "p.plan")
                .map_err(|e| e.to_string())
        };
        check(&plan, Some(&sig), Some(&op)).unwrap();
        // Without an operator key a signature must still verify.
        check(&plan, Some(&sig), None).unwrap();
        check(&plan, None, None).unwrap();

        let e = check(&plan, None, Some(&op)).unwrap_err();
        assert!(
            e.starts_with(
                "plan file p.plan is not signed, but this operator signs plans (key SHA256:"
            ),
            "{e}"
        );
        let mut changed = plan.clone();
        changed.created = "2000-01-01T00:00:00Z".into();
        let e = check(&changed, Some(&sig), None).unwrap_err();
        assert!(
            e.ends_with("does not verify: the plan was changed after it was signed"),
            "{e}"
        );
        let theirs = other.sign_in(NAMESPACE, &bytes).unwrap().unwrap();
        let e = check(&plan, Some(&theirs), Some(&op)).unwrap_err();
        assert!(e.contains("not by this operator's key"), "{e}");
        let receipt = op.sign(&bytes).unwrap().unwrap();
        let e = check(&plan, Some(&receipt), Some(&op)).unwrap_err();
        assert!(e.contains("was made for `spine-receipt@spine`"), "{e}");
        let e = check(
            &plan,
            Some("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"),
            Some(&op),
        )
        .unwrap_err();
        assert!(e.contains("is not an SSH signature"), "{e}");
    }
}
