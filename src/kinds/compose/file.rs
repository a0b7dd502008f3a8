//! A stack's docker-compose.yml: compared by meaning (parsed YAML), mode and
//! owner; written into the stack's folder, which is created (and given to
//! the user) only when it does not exist.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Absent, Exists};
use crate::gather::script::Section;
use crate::kinds::{self, Desired, KindError, Verdict};
use crate::shell::{self, Script};

/// A docker-compose.yml that is there (`text` and `meaning` are kept in
/// plans as hashes only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub exists: Exists<true>,
    pub mode: String,
    pub owner: String,
    pub text: String,
    /// The text's meaning as JSON (`null` when empty; a string saying why
    /// when it is not valid YAML).
    #[serde(default)]
    pub meaning: Value,
}

/// The file as read (`f.*` keys of the shared file read script).
pub fn observe(s: &Section) -> Result<super::Facts, String> {
    let Some((text, mode, owner)) = kinds::observed_file(s, "f")? else {
        return Ok(super::Facts::Absent(Absent { exists: Exists }));
    };
    let meaning = kinds::yaml_meaning(&text)
        .unwrap_or_else(|e| Value::String(format!("(not valid YAML: {e})")));
    Ok(super::Facts::File(Facts {
        exists: Exists,
        mode,
        owner,
        text,
        meaning,
    }))
}

/// The file against `d`'s content, by meaning; `None`: not there.
pub fn compare(d: &Desired, actual: Option<&Facts>) -> Verdict {
    let name = d.path.as_deref().unwrap_or(&d.id);
    let desired_text = d.shown_content();
    let Some(actual) = actual else {
        let reasons = [format!("{name} does not exist")];
        return kinds::drift(true, &reasons, name, "", &desired_text);
    };
    let mut reasons = Vec::new();
    match kinds::yaml_meaning(&d.content) {
        Ok(want) => {
            let changes = kinds::json_changes(&actual.meaning, &want);
            if !changes.is_empty() {
                reasons.push(format!("content differs at {}", changes.join(", ")));
            }
        }
        Err(e) => reasons.push(format!("rendered file is not valid YAML: {e}")),
    }
    kinds::attrs_differ(d, &actual.mode, &actual.owner, &mut reasons);
    if reasons.is_empty() {
        return Verdict::InSync;
    }
    kinds::drift(false, &reasons, name, &actual.text, &desired_text)
}

/// Write the file into `directory`. The directory is created (and given to
/// the user) only when it does not exist: an existing one, perhaps /etc, is
/// never chowned; a system or odd directory is refused outright.
pub fn apply(d: &Desired, directory: &str) -> Result<Script, KindError> {
    refuse_odd(directory)?;
    let ctx = kinds::file_context(d, &d.content);
    let ctx = minijinja::context! { directory, ..ctx };
    Ok(shell::render("kinds/compose/file-apply.sh", ctx)?)
}

/// A stack folder apply never writes in: an odd path or a system directory
/// (gate V16 says so first; this holds when verify was bypassed).
pub fn refuse_odd(directory: &str) -> Result<(), KindError> {
    if let Some(why) = crate::safe::path_problem(directory) {
        return Err(KindError::Refused(format!(
            "compose directory `{}` {why}",
            crate::safe::shown(directory)
        )));
    }
    if crate::safe::system_dir(directory) {
        return Err(KindError::Refused(format!(
            "compose directory `{directory}` is a system directory (spine verify gate V16)"
        )));
    }
    Ok(())
}
