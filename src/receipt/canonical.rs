//! The canonical form of a receipt file.
//!
//! - UTF-8 JSON, no insignificant whitespace (no space after `:` or `,`, no
//!   indentation), followed by exactly one `\n`;
//! - object keys sorted by Unicode code point (byte order of their UTF-8),
//!   at every depth; array order is kept;
//! - strings escaped as serde_json does: `"` `\` and control characters only
//!   (`\n`, `\t`, … or `\u00XX`), everything else written as is;
//! - numbers are integers only (receipts have no floats);
//! - absent values are written as `null`, never omitted.
//!
//! A file is canonical when parsing it and writing it back in this form gives
//! exactly its bytes. The signature and the `previous` hash of the next receipt
//! are over those stored bytes, never over a re-serialisation.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `value` with the keys of every object sorted.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(map.len());
            for k in keys {
                out.insert(k.clone(), sorted(&map[k.as_str()]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The canonical bytes of a JSON value.
pub fn value_to_bytes(value: &Value) -> Vec<u8> {
    // Serialising a `Value` to a Vec cannot fail: keys are strings and there
    // is no I/O. Fall back to an empty body rather than panic, which would then
    // fail every canonical comparison.
    let mut bytes = serde_json::to_vec(&sorted(value)).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The canonical bytes of any serialisable value.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    Ok(value_to_bytes(&serde_json::to_value(value)?))
}

/// Whether `bytes` is the canonical form of the JSON it holds; `Err` with the
/// byte offset of the first difference if not.
pub fn check(bytes: &[u8], parsed: &Value) -> Result<(), usize> {
    let canon = value_to_bytes(parsed);
    if canon == bytes {
        return Ok(());
    }
    let first = bytes
        .iter()
        .zip(&canon)
        .position(|(a, b)| a != b)
        .unwrap_or(bytes.len().min(canon.len()));
    Err(first)
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_depth_and_ends_in_newline() {
        let v = json!({"b": 1, "a": {"z": [ {"y": null, "x": "é\n"} ], "c": true}});
        let bytes = value_to_bytes(&v);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "{\"a\":{\"c\":true,\"z\":[{\"x\":\"é\\n\",\"y\":null}]},\"b\":1}\n"
        );
    }

    #[test]
    fn check_finds_first_difference() {
        let good = b"{\"a\":1,\"b\":2}\n";
        let v: Value = serde_json::from_slice(good).unwrap();
        assert_eq!(check(good, &v), Ok(()));
        assert_eq!(check(b"{\"b\":2,\"a\":1}\n", &v), Err(2));
        assert_eq!(check(b"{\"a\":1,\"b\":2}", &v), Err(13));
        assert_eq!(check(b"{\"a\": 1,\"b\":2}\n", &v), Err(5));
        assert_eq!(check(b"{\"a\":1,\"b\":2}\n\n", &v), Err(14));
    }

    #[test]
    fn sha256() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
