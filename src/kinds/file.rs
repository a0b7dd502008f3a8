//! File resources: the shared read and write scripts (`scripts/kinds/file/`),
//! a file's facts as read on its host, and the comparison of a YAML file by
//! meaning, mode and owner (netplan's managed file, a stack's
//! docker-compose.yml).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Desired, Verdict, drift};
use crate::gather::script::Section;
use crate::shell::{self, Script, ScriptError};

/// A file resource's context for `scripts/kinds/file/*.sh`, with `content`.
pub fn context(d: &Desired, content: &str) -> minijinja::Value {
    minijinja::context! {
        path => d.path.as_deref().unwrap_or_default(),
        mode => format!("{:o}", d.mode.unwrap_or(0o644)),
        owner => d.owner.as_deref().unwrap_or("root"),
        content_b64 => shell::b64(content),
    }
}

/// Write a file resource with `content` (the old file kept under `$BK`).
pub fn put(d: &Desired, content: &str) -> Result<Script, ScriptError> {
    shell::render("kinds/file/put.sh", context(d, content))
}

/// Read a file resource (`f.*` keys).
pub fn read_script(d: &Desired) -> Result<Script, ScriptError> {
    shell::render(
        "kinds/file/read.sh",
        minijinja::context! { path => d.path.as_deref().unwrap_or_default() },
    )
}

/// The observed text of a file section: `Ok(None)` when the file is absent.
pub fn observed(s: &Section, key: &str) -> Result<Option<(String, String, String)>, String> {
    if let Some(e) = s.get(&format!("{key}.error")) {
        return Err(e.to_string());
    }
    match s.get(&format!("{key}.exists")) {
        Some("1") => Ok(Some((
            s.get(&format!("{key}.content"))
                .unwrap_or_default()
                .to_string(),
            s.get(&format!("{key}.mode"))
                .unwrap_or_default()
                .to_string(),
            s.get(&format!("{key}.owner"))
                .unwrap_or_default()
                .to_string(),
        ))),
        Some("0") => Ok(None),
        _ => Err(s.get("unknown").map_or_else(
            || "the host gave no answer for this file".to_string(),
            str::to_string,
        )),
    }
}

/// Parse YAML text into JSON for comparing meaning rather than text.
pub fn yaml_meaning(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    crate::source::yaml::parse(text)
        .map(|(n, _)| n.to_json())
        .map_err(|e| e.message)
}

/// JSON pointers where two values differ (for a short reason line).
pub fn json_changes(a: &Value, b: &Value) -> Vec<String> {
    use Value;
    fn walk(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = format!("{at}/{k}");
                    match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => walk(u, v, p, out),
                        _ => out.push(p),
                    }
                }
            }
            _ if a != b => out.push(if at.is_empty() { "/".into() } else { at }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, String::new(), &mut out);
    out
}

/// Mode and owner differences of a file resource, from its mode and owner on the host.
pub fn attrs_differ(d: &Desired, have_mode: &str, have_owner: &str, reasons: &mut Vec<String>) {
    if let Some(mode) = d.mode {
        let want = format!("{mode:o}");
        if have_mode != want {
            reasons.push(format!("mode {have_mode} should be {want}"));
        }
    }
    if let Some(owner) = &d.owner
        && have_owner != owner
    {
        reasons.push(format!("owner {have_owner} should be {owner}"));
    }
}

/// A text file as read on its host (`f.*` keys of the shared file read
/// script): absent, or its text, mode and owner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileFacts {
    pub exists: bool,
    /// The file's text (`""` when absent); plans keep only its hash.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl FileFacts {
    /// Read from a file section (`key.*`).
    pub fn observe(s: &Section, key: &str) -> Result<FileFacts, String> {
        Ok(match observed(s, key)? {
            None => FileFacts::default(),
            Some((text, mode, owner)) => FileFacts {
                exists: true,
                text,
                mode: Some(mode),
                owner: Some(owner),
            },
        })
    }

    /// Mode and owner differences from what `d` wants.
    pub fn attrs_differ(&self, d: &Desired, reasons: &mut Vec<String>) {
        let have = |v: &Option<String>| v.clone().unwrap_or_default();
        attrs_differ(d, &have(&self.mode), &have(&self.owner), reasons);
    }
}

/// What a YAML text means, for facts: its parsed value (`null` when empty),
/// or a string saying why it is not YAML (which never equals a mapping).
pub fn meaning_of(text: &str) -> Value {
    yaml_meaning(text).unwrap_or_else(|e| Value::String(format!("(not valid YAML: {e})")))
}

/// A YAML file as read on its host.
#[derive(Debug, Clone, Copy)]
pub struct YamlSeen<'a> {
    pub text: &'a str,
    /// [`meaning_of`] the text.
    pub meaning: &'a Value,
    pub mode: &'a str,
    pub owner: &'a str,
}

/// A YAML file resource against the file on its host (`None`: not there):
/// compared by meaning (another layout of the same YAML is in sync), mode
/// and owner; the diff is of the texts.
pub fn compare_yaml(d: &Desired, seen: Option<YamlSeen>) -> Verdict {
    let name = d.path.as_deref().unwrap_or(&d.id);
    let desired_text = d.shown_content();
    let Some(seen) = seen else {
        let reasons = [format!("{name} does not exist")];
        return drift(true, &reasons, name, "", &desired_text);
    };
    let mut reasons = Vec::new();
    match yaml_meaning(&d.content) {
        Ok(want) => {
            let changes = json_changes(seen.meaning, &want);
            if !changes.is_empty() {
                reasons.push(format!("content differs at {}", changes.join(", ")));
            }
        }
        Err(e) => reasons.push(format!("rendered file is not valid YAML: {e}")),
    }
    attrs_differ(d, seen.mode, seen.owner, &mut reasons);
    if reasons.is_empty() {
        return Verdict::InSync;
    }
    drift(false, &reasons, name, seen.text, &desired_text)
}
