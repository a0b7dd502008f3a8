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

/// What one resource's read script printed: one line per value, `key:VALUE`
/// for a plain value (`sp_kv` prints it as is: no process on the host) or
/// `key=BASE64` for any other (file contents, command output).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    /// key -> value (decoded: a plain value as it came, any other from base64).
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
        // A key holds neither `=` nor `:`: the first of them ends it and
        // says how the value travels (`key:PLAIN`, `key=BASE64`).
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let (k, v) = (&line[..at], &line[at + 1..]);
        if line.as_bytes()[at] == b':' {
            sec.values.insert(k.to_string(), v.to_string());
            continue;
        }
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
                crate::shell::assert_parses(shell, script);
            }
        }
    }

    /// Run a gather script made of one section `s` whose body is `body`
    /// (our text), with `V` in the environment: what it printed.
    fn run_raw(body: &str, v: &str) -> String {
        let sections = vec![minijinja::context! {
            id => "s",
            read => minijinja::Value::from_safe_string(body.to_string()),
        }];
        let script = shell::render(
            "gather/host.sh",
            minijinja::context! { boundary => "B", sections },
        )
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.as_str())
            .env("V", v)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`run_raw`], parsed: the section.
    fn run_body(body: &str, v: &str) -> Section {
        let mut rep = parse(&run_raw(body, v), "B");
        rep.sections.remove("s").expect("the section")
    }

    /// Every value comes back as it was sent, whichever way it travels: plain
    /// values as they are (no process), any other in base64 (`sp_kv` makes a
    /// line break a space, as it always has; `sp_b64` keeps every byte).
    #[test]
    fn values_round_trip_plain_and_base64() {
        for v in [
            "",
            "1",
            "644",
            "ronny",
            "a b=c:d/e.f@g%h+i,j_k-l",
            " lead and trail ",
            "x=YWJj",
            "it's",
            "$(id) `id` \\ * ?",
            "two\nlines\n",
            "tab\there",
            "cr\r",
            "ümlaut",
            "permission denied reading /etc/x (run as root)",
        ] {
            let s = run_body("sp_kv k \"$V\"\nprintf '%s' \"$V\" | sp_b64 b\n", v);
            assert_eq!(s.get("k"), Some(v.replace('\n', " ").as_str()), "{v:?}");
            assert_eq!(s.get("b"), Some(v), "{v:?}");
            assert_eq!(s.exit, Some(0));
        }
    }

    /// Plain values cost no process: the script's `sp_kv` prints them itself.
    #[test]
    fn plain_values_are_printed_as_they_are() {
        let out = run_raw("sp_kv k 'a b'\nsp_kv e ''\nsp_kv q \"it's\"\n", "");
        assert!(out.contains("\nk:a b\ne:\nq=aXQncw==\n"), "{out}");
    }

    /// A file readable by the login user: exists, mode, owner, content in
    /// one `stat` and one `base64`; a missing file: exists 0.
    #[test]
    fn file_section() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a file");
        std::fs::write(&f, "x: 1\n\0bin\n").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        let s = run_body("sp_file f \"$V\"\n", f.to_str().unwrap());
        assert_eq!(s.get("f.exists"), Some("1"));
        assert_eq!(s.get("f.mode"), Some("640"));
        let me = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        assert_eq!(
            s.get("f.owner"),
            Some(String::from_utf8_lossy(&me.stdout).trim())
        );
        assert_eq!(s.get("f.content"), Some("x: 1\n\0bin\n"));
        let s = run_body(
            "sp_file f \"$V\"\n",
            dir.path().join("none").to_str().unwrap(),
        );
        assert_eq!(s.get("f.exists"), Some("0"));
        assert_eq!(s.values.len(), 1);
    }

    #[test]
    fn parses_sections() {
        let b = "XB";
        let out = "noise\nXB host ronny immich\nXB section a\nk=dg==\nf.content=aGVsbG8=\nbad=*\nm:644\nt:a=b:c \nXB end a 0\nXB section b\nXB end b 3\n";
        let r = parse(out, b);
        assert_eq!(r.user, "ronny");
        assert_eq!(r.sections["a"].get("f.content"), Some("hello"));
        assert_eq!(r.sections["a"].get("k"), Some("v"));
        assert_eq!(
            r.sections["a"].get("bad.error"),
            Some("could not decode the host's answer")
        );
        assert_eq!(r.sections["a"].get("m"), Some("644"));
        assert_eq!(r.sections["a"].get("t"), Some("a=b:c "));
        assert_eq!(r.sections["b"].exit, Some(3));
    }
}
