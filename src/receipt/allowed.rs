//! OpenSSH `allowed_signers` (see ssh-keygen(1), "ALLOWED SIGNERS"):
//!
//! ```text
//! principals [options] keytype base64-key [comment]
//! ronny@pve namespaces="spine-receipt@spine",valid-after="20250101" ssh-ed25519 AAAA…
//! ```
//!
//! `principals` and `namespaces` are pattern lists (`*`, `?`, `!negation`,
//! comma-separated). `valid-after`/`valid-before` take `YYYYMMDD[Z]` or
//! `YYYYMMDDHHMM[SS][Z]`, local time unless suffixed with `Z`. Lines marked
//! `cert-authority` apply to certificates only, which receipts never use.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use ssh_key::PublicKey;

use super::NAMESPACE;

/// The `allowed_signers` line trusting `key` to sign receipts as `identity`.
pub fn allowed_signers_line(identity: &str, key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key.to_openssh().unwrap_or_default();
    format!(
        "{identity} namespaces=\"{NAMESPACE}\" {}",
        encoded.trim_end()
    )
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub line: usize,
    principals: String,
    namespaces: Option<String>,
    valid_after: Option<(Timestamp, String)>,
    valid_before: Option<(Timestamp, String)>,
    cert_authority: bool,
    key: PublicKey,
}

#[derive(Debug, Default)]
pub(crate) struct AllowedSigners {
    pub entries: Vec<Entry>,
    /// `(line number, message)` for lines that were skipped.
    pub bad_lines: Vec<(usize, String)>,
}

/// Why a signature's key is not trusted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Untrusted {
    /// No line holds this key.
    UnknownKey,
    /// The key is listed, but for other principals.
    WrongIdentity { principals: Vec<String> },
    /// The key is listed for the identity, but without this namespace.
    NamespaceNotAllowed { line: usize, namespaces: String },
    /// The key is listed, but was not valid at the given time.
    NotValidAt { line: usize, why: String },
}

impl AllowedSigners {
    pub(crate) fn parse(text: &str) -> AllowedSigners {
        let mut out = AllowedSigners::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(i + 1, line) {
                Ok(e) => out.entries.push(e),
                Err(msg) => out.bad_lines.push((i + 1, msg)),
            }
        }
        out
    }

    /// Whether `key` may sign receipts as `identity` at time `at`, under the
    /// same rules as `ssh-keygen -Y verify -I identity -n spine-receipt@spine`
    /// (except that the time is the receipt's, not the current time).
    pub(crate) fn check(
        &self,
        identity: &str,
        key: &PublicKey,
        at: Timestamp,
    ) -> Result<usize, Untrusted> {
        let with_key: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.cert_authority && e.key.key_data() == key.key_data())
            .collect();
        if with_key.is_empty() {
            return Err(Untrusted::UnknownKey);
        }
        let for_identity: Vec<&&Entry> = with_key
            .iter()
            .filter(|e| pattern_list_matches(&e.principals, identity))
            .collect();
        if for_identity.is_empty() {
            return Err(Untrusted::WrongIdentity {
                principals: with_key.iter().map(|e| e.principals.clone()).collect(),
            });
        }
        let mut first_failure = None;
        for e in for_identity {
            let failure = if let Some(ns) = e
                .namespaces
                .as_ref()
                .filter(|ns| !pattern_list_matches(ns, NAMESPACE))
            {
                Untrusted::NamespaceNotAllowed {
                    line: e.line,
                    namespaces: ns.clone(),
                }
            } else if let Some((t, text)) = e.valid_after.as_ref().filter(|(t, _)| at < *t) {
                Untrusted::NotValidAt {
                    line: e.line,
                    why: format!("valid-after=\"{text}\" ({t})"),
                }
            } else if let Some((t, text)) = e.valid_before.as_ref().filter(|(t, _)| at > *t) {
                Untrusted::NotValidAt {
                    line: e.line,
                    why: format!("valid-before=\"{text}\" ({t})"),
                }
            } else {
                return Ok(e.line);
            };
            first_failure.get_or_insert(failure);
        }
        Err(first_failure.unwrap_or(Untrusted::UnknownKey))
    }
}

fn parse_line(n: usize, line: &str) -> Result<Entry, String> {
    let (principals, rest) = split_token(line);
    let principals = unquote(principals);
    if principals.is_empty() || rest.is_empty() {
        return Err("expected `principals [options] keytype key`".into());
    }
    // As OpenSSH does: the rest is a key, or else options followed by a key.
    let (options, key) = match PublicKey::from_openssh(rest) {
        Ok(key) => (None, key),
        Err(_) => {
            let (options, key_part) = split_token(rest);
            let key = PublicKey::from_openssh(key_part)
                .map_err(|e| format!("cannot parse the key: {e}"))?;
            (Some(options), key)
        }
    };
    let mut entry = Entry {
        line: n,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        cert_authority: false,
        key,
    };
    for opt in options.map(split_options).unwrap_or_default() {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(unquote(v))),
            None => (opt.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => entry.cert_authority = true,
            ("namespaces", Some(v)) => entry.namespaces = Some(v),
            ("valid-after", Some(v)) => entry.valid_after = Some((parse_time(&v)?, v)),
            ("valid-before", Some(v)) => entry.valid_before = Some((parse_time(&v)?, v)),
            _ => return Err(format!("unknown or malformed option `{opt}`")),
        }
    }
    Ok(entry)
}

/// First whitespace-delimited token (double quotes group), and the rest trimmed.
fn split_token(s: &str) -> (&str, &str) {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => return (&s[..i], s[i..].trim_start()),
            _ => {}
        }
    }
    (s, "")
}

fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_quotes) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_owned()
}

/// `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`; local time unless `Z`.
fn parse_time(s: &str) -> Result<Timestamp, String> {
    let bad = || format!("time {s:?} is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]");
    let (digits, utc) = match s.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (s, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let field = |r: std::ops::Range<usize>| -> i16 {
        digits.get(r).and_then(|x| x.parse().ok()).unwrap_or(0)
    };
    let small = |v: i16| i8::try_from(v).map_err(|_| bad());
    let date =
        Date::new(field(0..4), small(field(4..6))?, small(field(6..8))?).map_err(|_| bad())?;
    let time = jiff::civil::Time::new(
        small(field(8..10))?,
        small(field(10..12))?,
        small(field(12..14))?,
        0,
    )
    .map_err(|_| bad())?;
    let tz = if utc {
        TimeZone::UTC
    } else {
        TimeZone::system()
    };
    DateTime::from_parts(date, time)
        .to_zoned(tz)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// OpenSSH `match_pattern_list`: a negated match wins, else any positive match.
fn pattern_list_matches(list: &str, s: &str) -> bool {
    let mut matched = false;
    for pat in list.split(',') {
        if let Some(neg) = pat.strip_prefix('!') {
            if glob(neg.as_bytes(), s.as_bytes()) {
                return false;
            }
        } else if glob(pat.as_bytes(), s.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` glob, iterative with single backtrack point (linear-ish, no recursion).
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || c == s[i] => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICHOpj915YcdTF6IcTOfco05p7xeKzIYRmSMisDXCUi6";

    #[test]
    fn globs() {
        assert!(glob(b"*@pve", b"ronny@pve"));
        assert!(glob(b"r?nny@*", b"ronny@pve"));
        assert!(!glob(b"r?nny@", b"ronny@pve"));
        assert!(glob(b"*", b""));
        assert!(pattern_list_matches("a@x,ronny@*", "ronny@pve"));
        assert!(!pattern_list_matches("*,!ronny@*", "ronny@pve"));
    }

    #[test]
    fn parses_options_quotes_and_bad_lines() {
        let text = format!(
            "# comment\n\n\
             ronny@pve namespaces=\"spine-receipt@spine,file\",valid-after=\"20200101Z\" {KEY} note\n\
             \"a@b,c@d\" {KEY}\n\
             x@y bogus-option {KEY}\n\
             x@y valid-before=\"2020\" {KEY}\n\
             lonely\n"
        );
        let a = AllowedSigners::parse(&text);
        assert_eq!(a.entries.len(), 2, "{a:?}");
        assert_eq!(a.entries[0].line, 3);
        assert_eq!(
            a.entries[0].namespaces.as_deref(),
            Some("spine-receipt@spine,file")
        );
        assert_eq!(a.entries[1].principals, "a@b,c@d");
        assert_eq!(
            a.bad_lines.iter().map(|b| b.0).collect::<Vec<_>>(),
            [5, 6, 7]
        );
    }

    #[test]
    fn check_reports_the_specific_reason() {
        let key = PublicKey::from_openssh(KEY).unwrap();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let a = AllowedSigners::parse(&format!(
            "ronny@pve namespaces=\"file\" {KEY}\nold@pve valid-before=\"20250101Z\" {KEY}\n"
        ));
        assert!(matches!(
            a.check("ronny@pve", &key, now),
            Err(Untrusted::NamespaceNotAllowed { line: 1, .. })
        ));
        assert!(matches!(
            a.check("old@pve", &key, now),
            Err(Untrusted::NotValidAt { line: 2, .. })
        ));
        let before: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(a.check("old@pve", &key, before), Ok(2));
        assert!(matches!(
            a.check("eve@pve", &key, now),
            Err(Untrusted::WrongIdentity { .. })
        ));
        let empty = AllowedSigners::parse("");
        assert_eq!(
            empty.check("ronny@pve", &key, now),
            Err(Untrusted::UnknownKey)
        );
    }

    #[test]
    fn line_for_key() {
        let key = PublicKey::from_openssh(&format!("{KEY} some comment")).unwrap();
        assert_eq!(
            allowed_signers_line("ronny@pve", &key),
            format!("ronny@pve namespaces=\"spine-receipt@spine\" {KEY}")
        );
    }
}
