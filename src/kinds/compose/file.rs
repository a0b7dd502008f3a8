//! A stack's docker-compose.yml: compared by meaning (parsed YAML), mode and
//! owner; written into the stack's folder, which is created (and given to
//! the user) only when it does not exist.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Absent, Exists};
use crate::gather::script::Section;
use crate::kinds::{Desired, KindError, Verdict, file};
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
    let Some((text, mode, owner)) = file::observed(s, "f")? else {
        return Ok(super::Facts::Absent(Absent { exists: Exists }));
    };
    Ok(super::Facts::File(Facts {
        exists: Exists,
        meaning: file::meaning_of(&text),
        mode,
        owner,
        text,
    }))
}

/// The file against `d`'s content, by meaning; `None`: not there.
pub fn compare(d: &Desired, actual: Option<&Facts>) -> Verdict {
    let seen = actual.map(|a| file::YamlSeen {
        text: &a.text,
        meaning: &a.meaning,
        mode: &a.mode,
        owner: &a.owner,
    });
    file::compare_yaml(d, seen)
}

/// Write the file into `directory`. The directory is created (and given to
/// the user) only when it does not exist: an existing one, perhaps /etc, is
/// never chowned; a system or odd directory is refused outright.
pub fn apply(d: &Desired, directory: &str) -> Result<Script, KindError> {
    refuse_odd(directory)?;
    let ctx = file::context(d, &d.content);
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
