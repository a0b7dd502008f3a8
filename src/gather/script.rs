//! The one read-only script a host runs per plan: a prelude of helpers, then
//! one framed section per resource (`scripts/gather/host.sh`, rendered by
//! [`crate::shell`], which quotes every value); the script itself travels on
//! stdin, never as an argument.

use std::collections::BTreeMap;

use base64::Engine;

use crate::shell::{self, Script, ScriptError};

/// Build the gather script for one host from each resource's read script (by
/// resource id): `scripts/gather/host.sh`, one framed section per read script.
pub fn build(reads: &[(String, Script)], boundary: &str) -> Result<Script, ScriptError> {
    let sections: Vec<minijinja::Value> = reads
        .iter()
        .map(|(id, read)| minijinja::context! { id => id.clone(), read => read })
        .collect();
    shell::render("gather/host.sh", minijinja::context! { boundary, sections })
}

/// What one resource's read script printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    /// key -> value (every value travels base64, whatever it is).
    pub values: BTreeMap<String, String>,
    pub exit: Option<i32>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// The facts a host reported: who we were, and one section per resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub user: String,
    pub hostname: String,
    pub sections: BTreeMap<String, Section>,
}

/// Parse a gather script's output. Unknown lines (outside sections) are ignored.
pub fn parse(out: &str, boundary: &str) -> Report {
    let mut rep = Report::default();
    let mut current: Option<(String, Section)> = None;
    let b64 = base64::engine::general_purpose::STANDARD;
    for line in out.lines() {
        if let Some(rest) = line
            .strip_prefix(boundary)
            .and_then(|r| r.strip_prefix(' '))
        {
            if let Some(h) = rest.strip_prefix("host ") {
                let (u, n) = h.split_once(' ').unwrap_or((h, ""));
                rep.user = u.into();
                rep.hostname = n.into();
            } else if let Some(id) = rest.strip_prefix("section ") {
                current = Some((id.to_string(), Section::default()));
            } else if let Some(end) = rest.strip_prefix("end ")
                && let Some((id, mut sec)) = current.take()
            {
                sec.exit = end.rsplit(' ').next().and_then(|c| c.parse().ok());
                rep.sections.insert(id, sec);
            }
            continue;
        }
        let Some((_, sec)) = current.as_mut() else {
            continue;
        };
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let value = match b64.decode(v.trim()) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => {
                sec.values.insert(
                    format!("{k}.error"),
                    "could not decode the host's answer".into(),
                );
                continue;
            }
        };
        sec.values.insert(k.to_string(), value);
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script for every host of the shipped registry parses as POSIX sh
    /// (a syntax error in one snippet would silence every later one).
    #[test]
    fn shipped_registry_scripts_parse() {
        use crate::diag::FileKind;
        let loaded = crate::load::load(&crate::load::Origin::Embedded);
        let reg = crate::model::Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
        let t = crate::render::Templates::new(None).unwrap();
        for host in crate::render::managed_hosts(reg.services.as_ref().unwrap()) {
            let state = crate::kinds::render_host(&reg, &host, &t).unwrap();
            let reads = crate::kinds::read_scripts(&state.resources).unwrap();
            let script = build(&reads, "B").unwrap();
            let script = script.as_str();
            for shell in ["sh", "bash"] {
                let mut child = std::process::Command::new(shell)
                    .arg("-n")
                    .stdin(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{shell} -n on {host}'s script: {}\n{script}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    #[test]
    fn parses_sections() {
        let b = "XB";
        let out = "noise\nXB host ronny immich\nXB section a\nk=dg==\nf.content=aGVsbG8=\nbad=*\nXB end a 0\nXB section b\nXB end b 3\n";
        let r = parse(out, b);
        assert_eq!(r.user, "ronny");
        assert_eq!(r.sections["a"].get("f.content"), Some("hello"));
        assert_eq!(r.sections["a"].get("k"), Some("v"));
        assert_eq!(
            r.sections["a"].get("bad.error"),
            Some("could not decode the host's answer")
        );
        assert_eq!(r.sections["b"].exit, Some(3));
    }
}
