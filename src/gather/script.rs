//! The one read-only script a host runs per plan: a prelude of helpers, then
//! one framed section per resource. Every registry value in it is quoted with
//! [`q`]; the script itself travels on stdin, never as an argument.

use std::collections::BTreeMap;

use base64::Engine;

use crate::kinds::{self, Desired};

/// Quote a value for a POSIX shell: `'...'` with embedded quotes escaped.
pub fn q(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:@,+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

const PRELUDE: &str = r#"
sp_kv() { printf '%s=%s\n' "$1" "$(printf '%s' "$2" | tr '\n' ' ')"; }
sp_b64() { printf '%s=' "$1"; base64 | tr -d '\n'; printf '\n'; }
sp_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; elif sudo -n true 2>/dev/null; then sudo -n "$@"; else return 126; fi; }
sp_file() {
  if [ -e "$2" ] || sp_sudo test -e "$2" 2>/dev/null; then
    sp_kv "$1.exists" 1
    sp_kv "$1.mode" "$(sp_sudo stat -c %a "$2" 2>/dev/null || stat -c %a "$2")"
    sp_kv "$1.owner" "$(sp_sudo stat -c %U "$2" 2>/dev/null || stat -c %U "$2")"
    if [ -r "$2" ]; then sp_b64 "$1.content" < "$2";
    elif sp_sudo cat "$2" > /dev/null 2>&1; then sp_sudo cat "$2" | sp_b64 "$1.content";
    else sp_kv "$1.error" "permission denied reading $2 (run as root or allow passwordless sudo)"; fi
  else
    sp_kv "$1.exists" 0
  fi
}
sp_missing() { command -v "$1" >/dev/null 2>&1 || { sp_kv unknown "$1 is not installed on this host"; return 1; }; }
"#;

/// Build the gather script for the resources that live on one host.
pub fn build(resources: &[&Desired], boundary: &str) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# spine gather: read-only\nexport LC_ALL=C PATH=\"$PATH:/usr/sbin:/sbin\"\n",
    );
    s.push_str(&format!("B={}\n", q(boundary)));
    s.push_str(PRELUDE);
    s.push_str("printf '%s host %s %s\\n' \"$B\" \"$(id -un)\" \"$(hostname)\"\n");
    for r in resources {
        let Some(kind) = kinds::by_name(&r.kind) else {
            continue;
        };
        s.push_str(&format!("printf '%s section %s\\n' \"$B\" {}\n", q(&r.id)));
        s.push_str(&format!("( {}\n) 2>/dev/null\n", kind.probe(r)));
        s.push_str(&format!(
            "printf '%s end %s %s\\n' \"$B\" {} \"$?\"\n",
            q(&r.id)
        ));
    }
    s
}

/// What one resource's probe printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    /// key -> value; keys ending in `_b64` or `.content` arrive base64 and are decoded.
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

fn is_b64_key(k: &str) -> bool {
    k.ends_with(".content")
        || k.ends_with("_b64")
        || k == "config"
        || k == "status"
        || k == "prefs"
        || k == "crontab"
        || k == "ps"
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
        let value = if is_b64_key(k) {
            match b64.decode(v.trim()) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(_) => {
                    sec.values.insert(
                        format!("{k}.error"),
                        "could not decode the host's answer".into(),
                    );
                    continue;
                }
            }
        } else {
            v.to_string()
        };
        sec.values.insert(k.to_string(), value);
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(q("/etc/netplan/x.yaml"), "/etc/netplan/x.yaml");
        assert_eq!(q("a b"), "'a b'");
        assert_eq!(q("it's"), r"'it'\''s'");
        assert_eq!(q("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(q(""), "''");
    }

    #[test]
    fn quoted_values_survive_a_real_shell() {
        for v in [
            "a b",
            "it's",
            "$(echo pwned)",
            "`x`",
            "a\nb",
            "\\",
            "*",
            "-n",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", q(v)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), v);
        }
    }

    /// The script for every host of the shipped registry parses as POSIX sh
    /// (a syntax error in one snippet would silence every later one).
    #[test]
    fn shipped_registry_scripts_parse() {
        use crate::diag::FileKind;
        let loaded = crate::load::load(&crate::load::Origin::Embedded);
        let reg = crate::model::Registry::from_loaded(&loaded, &FileKind::ALL).unwrap();
        let t = crate::render::Templates::new(None).unwrap();
        for host in crate::render::managed_hosts(reg.services.as_ref().unwrap()) {
            let state = crate::render::render_host(&reg, &host, &t).unwrap();
            let refs: Vec<&Desired> = state.resources.iter().collect();
            let script = build(&refs, "B");
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
        let out = "noise\nXB host ronny immich\nXB section a\nk=v\nf.content=aGVsbG8=\nXB end a 0\nXB section b\nXB end b 3\n";
        let r = parse(out, b);
        assert_eq!(r.user, "ronny");
        assert_eq!(r.sections["a"].get("f.content"), Some("hello"));
        assert_eq!(r.sections["a"].get("k"), Some("v"));
        assert_eq!(r.sections["b"].exit, Some(3));
    }
}
