//! Saved plans: versioned JSON with a checksum over its body, so an edited,
//! truncated or foreign plan is refused with a clear reason, and an SSH
//! signature over the same bytes when the operator has a key (made and
//! checked in `trust.rs`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, Plan, hash_json};

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    format_version: u32,
    /// SHA-256 of the canonical JSON of `plan`.
    checksum: String,
    plan: Plan,
    /// SSHSIG (PEM) over the canonical JSON of `plan`, namespace
    /// `spine-plan@spine`; absent when no signing key was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

/// The bytes a plan's checksum and signature are over: its compact JSON.
pub fn plan_bytes(plan: &Plan) -> Vec<u8> {
    serde_json::to_vec(plan).unwrap_or_default()
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanFileError {
    #[error("cannot read plan file {0}: {1}")]
    #[diagnostic(
        code(spine::plan::read),
        help("check the path; make a plan with `spine plan -o FILE`")
    )]
    Read(String, std::io::Error),
    #[error("plan file {0} is not a spine plan (or is truncated): {1}")]
    #[diagnostic(
        code(spine::plan::parse),
        help("make a new plan with `spine plan -o FILE`; plan files are not meant to be edited")
    )]
    Parse(String, String),
    #[error("plan file {0} has format version {1}; this spine reads version {FORMAT_VERSION}")]
    #[diagnostic(
        code(spine::plan::version),
        help(
            "make a new plan with this spine (`spine plan -o FILE`): plans are not converted between format versions"
        )
    )]
    Version(String, u32),
    #[error("plan file {0} was modified after it was written (checksum mismatch)")]
    #[diagnostic(
        code(spine::plan::checksum),
        help("never edit a plan: make a new one with `spine plan -o FILE`")
    )]
    Checksum(String),
    #[error("cannot write plan file {0}: {1}")]
    #[diagnostic(
        code(spine::plan::write),
        help("check that the directory exists and is writable")
    )]
    Write(String, std::io::Error),
}

impl crate::error::StageError for PlanFileError {
    fn into_error(self) -> crate::error::Error {
        crate::error::Error::stage(self)
    }
}

/// Write atomically: temp file beside the target, fsync, rename.
pub fn save(plan: &Plan, path: &Path) -> Result<(), PlanFileError> {
    save_signed(plan, path, None)
}

/// [`save`] with the plan's signature (see `trust::sign`).
pub fn save_signed(
    plan: &Plan,
    path: &Path,
    signature: Option<String>,
) -> Result<(), PlanFileError> {
    let shown = path.display().to_string();
    let env = Envelope {
        format_version: FORMAT_VERSION,
        checksum: hash_json(plan),
        plan: plan.clone(),
        signature,
    };
    let mut text = serde_json::to_string_pretty(&env)
        .map_err(|e| PlanFileError::Write(shown.clone(), std::io::Error::other(e)))?;
    text.push('\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| PlanFileError::Write(shown, e))
}

pub fn load(path: &Path) -> Result<Plan, PlanFileError> {
    load_signed(path).map(|(plan, _)| plan)
}

/// [`load`], with the plan's signature if it has one (checked in `trust.rs`).
pub fn load_signed(path: &Path) -> Result<(Plan, Option<String>), PlanFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PlanFileError::Read(shown.clone(), e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| PlanFileError::Parse(shown.clone(), e.to_string()))?;
    let version = v
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as u32;
    if version != FORMAT_VERSION {
        return Err(PlanFileError::Version(shown, version));
    }
    let env: Envelope = serde_json::from_value(v)
        .map_err(|e| PlanFileError::Parse(shown.clone(), e.to_string()))?;
    if hash_json(&env.plan) != env.checksum {
        return Err(PlanFileError::Checksum(shown));
    }
    Ok((env.plan, env.signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of format 1 (string `args` for every kind) or 2 (`args` for
    /// netplan and compose) is refused with the versions and what to do,
    /// never read as if it were this format.
    #[test]
    fn a_plan_of_another_format_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        for v in [1, 2] {
            let old = format!(
                r#"{{"format_version": {v}, "checksum": "00", "plan": {{"format_version": {v}, "tool": "spine 0.1.0",
                "created": "2026-11-01T00:00:00Z", "registry_hash": "00", "hosts": [], "summary":
                {{"create": 0, "change": 0, "unknown": 0, "in_sync": 0, "unreachable": 0}}}}}}"#
            );
            std::fs::write(&path, old).unwrap();
            let e = load(&path).unwrap_err();
            assert!(matches!(e, PlanFileError::Version(_, x) if x == v), "{e:?}");
            assert!(
                e.to_string().ends_with(&format!(
                    "has format version {v}; this spine reads version 3"
                )),
                "{e}"
            );
            let help = miette::Diagnostic::help(&e).unwrap().to_string();
            assert!(
                help.starts_with("make a new plan with this spine"),
                "{help}"
            );
        }
    }
}
