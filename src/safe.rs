//! What a registry value may look like before it reaches a rendered file, a
//! command or a path: the rules behind gate V16, the template filters that
//! escape text for its format, and apply's last check on directories. One
//! place, so verify, render and apply cannot disagree.

use std::net::IpAddr;

/// The first character of `s` that could end a line or hide text in a
/// rendered file or a command: C0 controls (newline, CR, NUL, ESC, ...), DEL,
/// C1 controls (NEL ...), the Unicode line and paragraph separators and the
/// byte-order mark. A tab is allowed only where `tab_ok` (free text such as a
/// cron description or a command line, where it is plain white space).
pub fn control_char(s: &str, tab_ok: bool) -> Option<char> {
    s.chars().find(|&c| {
        (c.is_control() && !(tab_ok && c == '\t'))
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
    })
}

/// `text` as it may reach a terminal: every character [`control_char`]
/// flags, other than a newline or a tab, escaped (`\u{1b}`), so a host's
/// file or answer quoted in a diff or note cannot move the cursor, clear
/// the screen or hide a line.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && control_char(c.encode_utf8(&mut [0; 4]), true).is_some() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// How a character is named in a message (never the raw character).
pub fn char_name(c: char) -> String {
    let name = match c {
        '\n' => "a newline",
        '\r' => "a carriage return",
        '\0' => "a NUL byte",
        '\t' => "a tab",
        '\u{1b}' => "an escape character",
        _ => "a control character",
    };
    format!("{name} (U+{:04X})", c as u32)
}

/// A value as it may be quoted in a message: control characters escaped.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

fn name_chars(s: &str, max: usize, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// A host id: it names local files (`render --out DIR/<host>/`, gather dumps,
/// receipts), so `^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$` and never `.` or `..`.
pub fn host_id(s: &str) -> bool {
    name_chars(s, 63, b"_.-")
}

/// A plain name (container, compose service, job id): as a host id.
pub fn name(s: &str) -> bool {
    host_id(s)
}

/// A login user: `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$` (never starts with `-`).
pub fn user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// An image reference: `[registry[:port]/]name[:tag][@digest]`, no white space.
pub fn image(s: &str) -> bool {
    name_chars(s, 512, b"._/:@+-")
}

/// A `.env` key: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn env_key(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// An IP address (v4 or v6).
pub fn ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// `ADDRESS/PREFIX` with a prefix that fits the address family.
pub fn cidr(s: &str) -> bool {
    let Some((a, p)) = s.split_once('/') else {
        return false;
    };
    match (a.parse::<IpAddr>(), p.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(p)) => p <= 32,
        (Ok(IpAddr::V6(_)), Ok(p)) => p <= 128,
        _ => false,
    }
}

/// A host name (DNS labels of letters, digits, `-`, and `_` as ssh_config
/// aliases use; no label starts or ends with `-`), at most 253 characters.
pub fn hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_".contains(&c))
        })
}

/// An address spine connects to or writes into a config: an IP address or a host name.
pub fn address(s: &str) -> bool {
    ip(s) || hostname(s)
}

/// Why `p` is not an absolute, normalised path, if it is not: relative, `..`
/// or `.` components, empty components (`//`), a trailing `/`.
pub fn path_problem(p: &str) -> Option<&'static str> {
    if !p.starts_with('/') {
        return Some("is not absolute");
    }
    if p == "/" {
        return None;
    }
    let mut parts = p[1..].split('/');
    if parts.any(|c| c == "..") {
        return Some("has a `..` component");
    }
    if p[1..].split('/').any(|c| c == ".") {
        return Some("has a `.` component");
    }
    if p.ends_with('/') {
        return Some("ends with `/`");
    }
    if p[1..].split('/').any(str::is_empty) {
        return Some("has an empty component (`//`)");
    }
    None
}

/// Directories that spine never creates, writes into as a managed directory,
/// or hands to a user: `/` and the top-level system directories, their
/// first-level children under `/usr` and `/var`, and anything under the
/// kernel and boot file systems.
pub fn system_dir(p: &str) -> bool {
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return true;
    }
    const TOP: &[&str] = &[
        "bin", "boot", "dev", "etc", "home", "media", "mnt", "opt", "proc", "root", "run", "sbin",
        "snap", "srv", "sys", "tmp", "usr", "var",
    ];
    let parts: Vec<&str> = p[1..].split('/').collect();
    match parts.as_slice() {
        [top] => TOP.contains(top) || top.starts_with("lib"),
        ["usr" | "var", _] => true,
        ["usr", "local", _] => true,
        [top, ..] => matches!(*top, "proc" | "sys" | "dev" | "boot"),
        [] => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls() {
        assert_eq!(control_char("a\nb", true), Some('\n'));
        assert_eq!(control_char("a\tb", true), None);
        assert_eq!(control_char("a\tb", false), Some('\t'));
        assert_eq!(control_char("a\u{85}b", true), Some('\u{85}'));
        assert_eq!(control_char("a\u{2028}b", true), Some('\u{2028}'));
        assert_eq!(control_char("plain – text ü", false), None);
        assert_eq!(shown("a\nb"), "a\\nb");
    }

    #[test]
    fn names_and_addresses() {
        for ok in ["immich", "immich-1", "pve", "docker-host", "a.b_c"] {
            assert!(host_id(ok), "{ok}");
        }
        for bad in ["../x", "..", ".", "a/b", "-x", "", "a b", "x\n"] {
            assert!(!host_id(bad), "{bad}");
        }
        assert!(image("ghcr.io/immich-app/immich-server:v2.4.1"));
        assert!(image("redis:6.2@sha256:abc"));
        assert!(!image("redis:6\n    privileged: true"));
        assert!(!image("redis:6 --privileged"));
        assert!(address("10.203.1.1") && address("::1") && address("immich-1.tail.net"));
        assert!(address("pve_alias"));
        assert!(!address("-oProxyCommand=x") && !address("a b") && !address(""));
        assert!(cidr("10.203.1.203/24") && cidr("fd00::1/64"));
        assert!(!cidr("10.203.1.203/33") && !cidr("10.203.1.203") && !cidr("x/24"));
        assert!(user("ronny") && user("root") && !user("-x") && !user("a b"));
        assert!(env_key("DB_PASSWORD") && !env_key("A=B") && !env_key("1A"));
    }

    #[test]
    fn paths() {
        assert_eq!(path_problem("/home/ronny/immich"), None);
        assert_eq!(path_problem("/"), None);
        assert!(path_problem("home/x").is_some());
        assert!(path_problem("/home/../etc").is_some());
        assert!(path_problem("/home/./x").is_some());
        assert!(path_problem("/home//x").is_some());
        assert!(path_problem("/home/x/").is_some());
        for sys in [
            "/",
            "/etc",
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib64",
            "/boot",
            "/proc/1",
            "/sys",
            "/dev/shm",
            "/root",
            "/var",
            "/opt",
            "/usr/local",
            "/usr/local/bin",
            "/var/lib",
            "/etc/",
        ] {
            assert!(system_dir(sys), "{sys}");
        }
        for ok in [
            "/home/ronny/immich",
            "/opt/immich",
            "/srv/immich",
            "/var/lib/immich",
            "/etc/immich",
        ] {
            assert!(!system_dir(ok), "{ok}");
        }
    }
}
