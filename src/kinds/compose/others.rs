//! The compose files beside the managed docker-compose.yml that `docker
//! compose`, run by hand in the stack's folder, reads instead of it: its
//! default names are, in its order of preference, `compose.yaml`,
//! `compose.yml`, `docker-compose.yml`, `docker-compose.yaml` (compose v2.40
//! warns when it finds several and uses the first).
//! spine itself runs `docker compose -f docker-compose.yml`, so such a file
//! never changes what apply does, but the operator who types `docker compose
//! up` in the folder gets another stack than the registry's. Each is planned
//! for removal (a first-class `remove`), kept in the run's backup, and
//! removed.

use serde::{Deserialize, Serialize};

use crate::gather::script::Section;
use crate::kinds::{self, Verdict};
use crate::shell::{self, Script, ScriptError};

/// The names `docker compose` prefers over docker-compose.yml, in its order.
const PREFERRED: &[&str] = &["compose.yaml", "compose.yml"];

/// The files found, each with why it must go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub files: Vec<Other>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Other {
    pub path: String,
    pub why: String,
}

/// The resource's content (what `spine render` shows).
pub fn content(directory: &str) -> String {
    format!(
        "no compose file that `docker compose` prefers ({}) beside {directory}/docker-compose.yml\n",
        PREFERRED.join(", ")
    )
}

pub fn read_script(directory: &str) -> Result<Script, ScriptError> {
    shell::render(
        "kinds/compose/others-read.sh",
        minijinja::context! { directory },
    )
}

/// The preferred names found in `directory` (`file.NAME` keys).
pub fn observe(directory: &str, s: &Section) -> Result<Facts, String> {
    if let Some(u) = s.get("unknown") {
        return Err(u.to_string());
    }
    if s.get("checked").is_none() {
        return Err(format!(
            "the host gave no answer for the folder {directory}"
        ));
    }
    let files = PREFERRED
        .iter()
        .filter(|name| s.get(&format!("file.{name}")).is_some())
        .map(|name| Other {
            path: format!("{directory}/{name}"),
            why: format!(
                "`docker compose` run in {directory} reads it instead of docker-compose.yml"
            ),
        })
        .collect();
    Ok(Facts { files })
}

pub fn compare(directory: &str, actual: &Facts) -> Verdict {
    let files: Vec<(String, String)> = actual
        .files
        .iter()
        .map(|f| (f.path.clone(), f.why.clone()))
        .collect();
    kinds::removal_of(
        &files,
        "",
        &format!("compose files beside {directory}/docker-compose.yml"),
        " (spine itself runs -f docker-compose.yml; each file is kept in the run's backup)",
    )
}

/// Remove the files seen at apply time, each kept under `$BK`.
pub fn remove(actual: &Facts) -> Result<Script, ScriptError> {
    let paths: Vec<String> = actual.files.iter().map(|f| f.path.clone()).collect();
    shell::render("kinds/file/remove.sh", minijinja::context! { paths })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Action;

    fn section(pairs: &[&str]) -> Section {
        let mut s = Section::default();
        for k in pairs {
            s.values.insert(k.to_string(), "1".into());
        }
        s
    }

    #[test]
    fn a_preferred_file_is_planned_for_removal_and_none_is_in_sync() {
        let dir = "/opt/stacks/notes";
        let got = observe(
            dir,
            &section(&["checked", "file.compose.yml", "file.compose.yaml"]),
        )
        .unwrap();
        let paths: Vec<&str> = got.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [format!("{dir}/compose.yaml"), format!("{dir}/compose.yml")]
        );
        match compare(dir, &got) {
            Verdict::Drift {
                action,
                reason,
                diff,
            } => {
                assert_eq!(action, Action::Remove);
                assert!(reason.starts_with("/opt/stacks/notes/compose.yaml: `docker compose` run in /opt/stacks/notes reads it instead of docker-compose.yml; "), "{reason}");
                assert!(diff.unwrap().contains("-/opt/stacks/notes/compose.yml\n"));
            }
            v => panic!("{v:?}"),
        }
        let script = remove(&got).unwrap();
        assert!(script.as_str().contains("sp_backup '/opt/stacks/notes/compose.yaml'\nrm -f -- '/opt/stacks/notes/compose.yaml'\n"), "{}", script.as_str());
        let none = observe(dir, &section(&["checked"])).unwrap();
        assert_eq!(compare(dir, &none), Verdict::InSync);
    }

    #[test]
    fn no_answer_or_a_closed_folder_is_unknown() {
        assert!(
            observe("/d", &Section::default())
                .unwrap_err()
                .contains("no answer")
        );
        let mut s = section(&[]);
        s.values
            .insert("unknown".into(), "cannot look into /d".into());
        assert_eq!(observe("/d", &s).unwrap_err(), "cannot look into /d");
    }
}
