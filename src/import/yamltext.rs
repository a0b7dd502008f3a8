//! YAML text for the sections import writes: a value is written plain when
//! it reads back as the same string, else double-quoted (JSON escapes, which
//! YAML reads the same). A value with a control character is refused: it has
//! no place in a registry and could hide text from a reviewer.

/// The value as a YAML scalar; `Err` names the problem.
pub fn scalar(s: &str) -> Result<String, String> {
    if let Some(c) = crate::safe::control_char(s, false) {
        return Err(format!(
            "holds {}, which import never writes into the registry: refused",
            crate::safe::char_name(c)
        ));
    }
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@+-~".contains(c))
        && !s.starts_with(['-', '~', '@', '.'])
        && reads_back(s);
    Ok(if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    })
}

/// Whether `v: S` parses back to the string S (not a number, bool or null).
fn reads_back(s: &str) -> bool {
    crate::source::yaml::parse(&format!("v: {s}\n"))
        .ok()
        .and_then(|(n, _)| n.to_json().get("v").cloned())
        == Some(serde_json::Value::String(s.to_string()))
}

/// `key: value` with the value as a scalar; the error names the key.
pub fn pair(key: &str, value: &str) -> Result<String, String> {
    let k = scalar(key).map_err(|e| format!("the key `{}` {e}", key.escape_debug()))?;
    let v = scalar(value).map_err(|e| format!("the value of `{k}` {e}"))?;
    Ok(format!("{k}: {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_only_when_it_reads_back_the_same() {
        assert_eq!(scalar("pihole").unwrap(), "pihole");
        assert_eq!(scalar("/opt/stacks/pihole").unwrap(), "/opt/stacks/pihole");
        assert_eq!(scalar("UTC").unwrap(), "UTC");
        for s in [
            "true", "null", "1.5", "0x1F", "", "a b", "a: b", "#x", "-x", "~", "yes",
        ] {
            let q = scalar(s).unwrap();
            let (n, _) = crate::source::yaml::parse(&format!("v: {q}\n")).unwrap();
            assert_eq!(n.to_json()["v"], s, "{s} written as {q}");
        }
        assert!(scalar("a\u{1b}[2Jb").unwrap_err().contains("U+001B"));
        assert!(scalar("a\nb").is_err());
    }
}
