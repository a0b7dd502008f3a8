//! Gates V01-V03: each registry file against its JSON Schema (2020-12).
//!
//! The schemas are compiled into the binary; each error's instance path is
//! mapped back to the offending key or value in the YAML.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::diag::{FileKind, Finding, Place, suggest};
use crate::source::yaml::Node;

pub const SERVICE_SCHEMA: &str = include_str!("../../schemas/service-registry.schema.json");
pub const STACK_SCHEMA: &str = include_str!("../../schemas/stack-registry.schema.json");
pub const HEALTH_SCHEMA: &str = include_str!("../../schemas/services-health.schema.json");

pub fn gate_id(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Services => "V01",
        FileKind::Stacks => "V02",
        FileKind::Health => "V03",
        // The operator's bindings have no schema gate: they load under V00.
        _ => crate::load::LOAD_GATE,
    }
}

pub fn schema_text(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Services => SERVICE_SCHEMA,
        FileKind::Stacks => STACK_SCHEMA,
        FileKind::Health => HEALTH_SCHEMA,
        // Bindings are the operator's own files: spine reads a few facts from
        // them and accepts any shape.
        _ => "true",
    }
}

struct Compiled {
    schema: Value,
    validator: Validator,
}

fn compiled(kind: FileKind) -> &'static Compiled {
    static CELLS: [OnceLock<Compiled>; 7] = [const { OnceLock::new() }; 7];
    let i = kind as usize;
    CELLS[i].get_or_init(|| {
        let schema: Value =
            serde_json::from_str(schema_text(kind)).expect("embedded schema is JSON");
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("embedded schema compiles");
        Compiled { schema, validator }
    })
}

/// The status words the schema documents (`$defs/status/examples`).
pub fn known_status_words(kind: FileKind) -> Vec<&'static str> {
    compiled(kind)
        .schema
        .pointer("/$defs/status/examples")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Status words the schema does not know: a warning each (the vocabulary is
/// open; an unknown word is read as "not active").
pub fn unknown_status_words(kind: FileKind, json: &Value) -> Vec<Finding> {
    let known = known_status_words(kind);
    let entries: Vec<(String, &Value)> = match kind {
        FileKind::Services => json
            .get("services")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (format!("/services/{}", escape(k)), v))
                    .collect()
            })
            .unwrap_or_default(),
        FileKind::Stacks => json
            .get("stacks")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("/stacks/{i}"), v))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    entries
        .into_iter()
        .filter_map(|(at, v)| {
            let word = v.get("status")?.as_str()?;
            if known.contains(&word) {
                return None;
            }
            let known_list: Vec<String> = known.iter().map(|s| s.to_string()).collect();
            let help = match suggest(word, &known_list) {
                Some(s) => format!("did you mean `{s}`? known words: {}; an unknown word is read as not active", known.join(", ")),
                None => format!("known words: {}; an unknown word is read as not active (checked only as a stopped entry)", known.join(", ")),
            };
            Some(
                Finding::warning(
                    gate_id(kind),
                    Place::value(kind, format!("{at}/status")),
                    format!("status `{word}` is not a word spine knows"),
                )
                .label("unknown status")
                .help(help),
            )
        })
        .collect()
}

/// Validate one file's JSON; every error becomes a finding.
pub fn check(kind: FileKind, json: &Value, tree: &Node) -> Vec<Finding> {
    let c = compiled(kind);
    let gate = gate_id(kind);
    let mut out = Vec::new();
    for err in c.validator.iter_errors(json) {
        out.extend(finding(kind, gate, &c.schema, &err, tree));
    }
    out
}

fn finding(
    kind: FileKind,
    gate: &'static str,
    root: &Value,
    err: &ValidationError,
    tree: &Node,
) -> Vec<Finding> {
    let ptr = err.instance_path().to_string();
    let name = last_segment(&ptr);
    let schema_at = resolve(root, &err.schema_path().to_string());
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = schema_at
                .and_then(|_| resolve_parent(root, &err.schema_path().to_string()))
                .and_then(|p| p.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            unexpected
                .iter()
                .map(|key| {
                    let help = match suggest(key, &allowed) {
                        Some(s) => format!(
                            "did you mean `{s}`? allowed keys here: {}",
                            allowed.join(", ")
                        ),
                        None => format!("allowed keys here: {}", allowed.join(", ")),
                    };
                    Finding::error(
                        gate,
                        Place::key(kind, format!("{ptr}/{}", escape(key))),
                        format!("unknown key `{key}` in {}", describe(&ptr)),
                    )
                    .label("not allowed here")
                    .help(help)
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let prop = property.as_str().unwrap_or_default();
            let on = if ptr.is_empty() {
                Place::value(kind, "")
            } else {
                Place::key(kind, ptr.clone())
            };
            vec![
                Finding::error(
                    gate,
                    on,
                    format!("{} is missing the required key `{prop}`", describe(&ptr)),
                )
                .label(format!("`{prop}` missing here"))
                .help(format!(
                    "add `{prop}:`{}",
                    property_doc(schema_at, root, err, prop)
                )),
            ]
        }
        ValidationErrorKind::Type { kind: expected } => {
            let found = tree
                .locate_node(&ptr)
                .map_or("another type", Node::type_name);
            vec![
                Finding::error(
                    gate,
                    Place::value(kind, ptr.clone()),
                    format!("`{name}` must be {}, found {found}", type_words(expected)),
                )
                .label(format!("expected {}", type_words(expected)))
                .help(doc_or(schema_at, "change the value to the expected type")),
            ]
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or(v.to_string(), String::from))
                        .collect()
                })
                .unwrap_or_default();
            let given = err.instance().as_str().unwrap_or_default();
            let help = match suggest(given, &opts) {
                Some(s) => format!("did you mean `{s}`? one of: {}", opts.join(", ")),
                None => format!("use one of: {}", opts.join(", ")),
            };
            vec![
                Finding::error(
                    gate,
                    Place::value(kind, ptr.clone()),
                    format!("`{name}` has a value that is not allowed"),
                )
                .label("not one of the allowed values")
                .help(help),
            ]
        }
        ValidationErrorKind::Pattern { pattern } => vec![
            Finding::error(
                gate,
                Place::value(kind, ptr.clone()),
                format!("`{name}` is not in the expected form"),
            )
            .label("does not match")
            .help(doc_or(
                schema_at,
                &format!("the value must match the pattern {pattern}"),
            )),
        ],
        ValidationErrorKind::Not { schema } if schema.get("required").is_some() => {
            // Keys that may not stand together (`template` and `file`).
            let keys: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let last = keys.last().copied().unwrap_or_default();
            let words: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            vec![
                Finding::error(
                    gate,
                    Place::key(kind, format!("{ptr}/{}", escape(last))),
                    format!("{} has both {}", describe(&ptr), words.join(" and ")),
                )
                .label(format!(
                    "`{last}` beside `{}`",
                    keys.first().copied().unwrap_or_default()
                ))
                .help(
                    schema["description"]
                        .as_str()
                        .unwrap_or("keep only one of them")
                        .to_string(),
                ),
            ]
        }
        ValidationErrorKind::Format { format } => vec![
            Finding::error(
                gate,
                Place::value(kind, ptr.clone()),
                format!("`{name}` is not a valid {format} value"),
            )
            .label(format!("not {format}"))
            .help(format!("write a valid {format} value, e.g. 192.168.1.1")),
        ],
        _ => vec![
            // The masked form never echoes the value (it may be a secret).
            Finding::error(
                gate,
                Place::value(kind, ptr.clone()),
                format!("`{name}`: {}", err.masked()),
            )
            .label("here")
            .help(doc_or(
                schema_at,
                "see the schema in schemas/ for what is allowed here",
            )),
        ],
    }
}

fn property_doc(_at: Option<&Value>, root: &Value, err: &ValidationError, prop: &str) -> String {
    resolve_parent(root, &err.schema_path().to_string())
        .and_then(|p| p.pointer(&format!("/properties/{}", escape(prop))))
        .and_then(|p| follow_ref(root, p).get("description"))
        .or_else(|| resolve_parent(root, &err.schema_path().to_string())?.get("description"))
        .and_then(Value::as_str)
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

fn doc_or(schema_at: Option<&Value>, fallback: &str) -> String {
    let _ = schema_at;
    fallback.to_string()
}

fn type_words(t: &TypeKind) -> String {
    let one = |s: &str| match s {
        "integer" => "an integer".to_string(),
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "string" => "a string".to_string(),
        "boolean" => "a boolean".to_string(),
        "number" => "a number".to_string(),
        "null" => "null".to_string(),
        other => other.to_string(),
    };
    match t {
        TypeKind::Single(t) => one(&t.to_string()),
        TypeKind::Multiple(ts) => {
            let words: Vec<String> = ts.iter().map(|t| one(&t.to_string())).collect();
            words.join(" or ")
        }
    }
}

/// Human words for where a pointer lands.
fn describe(ptr: &str) -> String {
    if ptr.is_empty() {
        "the top level".into()
    } else {
        format!("`{}`", ptr.trim_start_matches('/').replace('/', "."))
    }
}

/// The name of the value a pointer lands on: its key, or for a list item the
/// list's key and the index (`legacy_roots[0]`), never a bare `0`.
fn last_segment(ptr: &str) -> String {
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    let mut segs = ptr.rsplit('/');
    let last = unescape(segs.next().unwrap_or(""));
    match segs.next() {
        Some(parent) if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}[{last}]", unescape(parent))
        }
        _ => last,
    }
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn follow_ref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        Some(p) => root.pointer(p).unwrap_or(node),
        None => node,
    }
}

/// Walk a schema path such as `/properties/hosts/additionalProperties/$ref/properties/desired/$ref/additionalProperties`,
/// following `$ref`s, to the keyword's schema node.
fn resolve<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = root;
    for seg in path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
    {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg == "$ref" {
            node = follow_ref(root, node);
            continue;
        }
        node = match node {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The schema object that holds the failing keyword.
fn resolve_parent<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let (parent, _) = path.rsplit_once('/')?;
    resolve(root, parent).map(|n| follow_ref(root, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_compile() {
        for k in FileKind::ALL {
            let _ = compiled(k);
        }
    }

    #[test]
    fn suggests_close_words() {
        let allowed = vec![
            "network".to_string(),
            "access".to_string(),
            "tailscale".to_string(),
        ];
        assert_eq!(suggest("netwrok", &allowed).as_deref(), Some("network"));
        assert_eq!(suggest("zzz", &allowed), None);
    }

    #[test]
    fn list_items_are_named_by_their_list() {
        assert_eq!(
            last_segment("/stacks/0/desired/legacy_roots/0"),
            "legacy_roots[0]"
        );
        assert_eq!(last_segment("/hosts/a~1b"), "a/b");
        assert_eq!(last_segment("/services/x/port"), "port");
    }
}
