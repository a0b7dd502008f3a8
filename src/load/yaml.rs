//! YAML to a position-carrying tree, on top of `saphyr-parser`'s event stream.
//!
//! We build our own small tree (rather than use a generic YAML value) so that
//! every key and every value keeps its byte span, duplicate keys are reported
//! with both places (and parsing goes on, so all of them are reported), and
//! scalars are resolved with the YAML 1.2 core schema.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

use super::source::{CharIndex, Span};

/// Aliases may expand to at most this many nodes in one document (guards
/// against "billion laughs" inputs).
const MAX_NODES: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// A problem found while reading YAML. `fatal` problems stop the parse.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlProblem {
    pub message: String,
    pub span: Span,
    /// Another place the message refers to (e.g. the first of two duplicate keys).
    pub other: Option<(Span, String)>,
    pub help: String,
}

/// Where a JSON pointer lands in the tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    /// The key naming the value, when the value is a mapping entry.
    pub key: Option<Span>,
    pub value: Span,
}

/// Parse exactly one YAML document. `Ok` carries non-fatal problems
/// (duplicate keys) beside the tree; `Err` is a problem that stopped parsing.
pub fn parse(text: &str) -> Result<(Node, Vec<YamlProblem>), YamlProblem> {
    let chars = CharIndex::new(text);
    let mut b = Builder {
        chars: &chars,
        stack: Vec::new(),
        anchors: Vec::new(),
        problems: Vec::new(),
        docs: Vec::new(),
        nodes: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| scan_problem(&chars, &e))?;
        let span = chars.trimmed(span.start.index(), span.end.index());
        b.event(event, span)?;
    }
    let mut docs = b.docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(YamlProblem {
            message: "the file is empty".into(),
            span: Span::default(),
            other: None,
            help: "a registry file must hold one YAML mapping".into(),
        });
    };
    if let Some(second) = docs.next() {
        return Err(YamlProblem {
            message: "the file holds more than one YAML document".into(),
            span: Span::new(second.span.start, second.span.start),
            other: None,
            help: "remove the `---` separator: a registry file holds exactly one document".into(),
        });
    }
    Ok((doc, b.problems))
}

fn scan_problem(chars: &CharIndex, e: &ScanError) -> YamlProblem {
    let at = chars.byte(e.marker().index());
    YamlProblem {
        message: format!("malformed YAML: {}", e.info()),
        span: Span::new(at, at),
        other: None,
        help: "fix the YAML syntax here (indentation, a missing `:` or an unclosed quote are the usual causes)".into(),
    }
}

enum Open {
    Seq {
        start: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: Span,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<(String, Span)>,
    },
}

struct Builder<'a, 'c> {
    chars: &'c CharIndex<'a>,
    stack: Vec<Open>,
    anchors: Vec<(usize, Node)>,
    problems: Vec<YamlProblem>,
    docs: Vec<Node>,
    nodes: usize,
}

impl Builder<'_, '_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlProblem> {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let kind = resolve_scalar(&value, style, tag.as_deref().map(|t| t.suffix.as_str()));
                self.complete(Node { span, kind }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq {
                start: span,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map {
                start: span,
                anchor,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Open::Seq {
                        start,
                        anchor,
                        items,
                    }) => {
                        let end = items.last().map_or(span.end, |n| n.span.end.max(start.end));
                        (
                            Node {
                                span: Span::new(start.start, end),
                                kind: Kind::Seq(items),
                            },
                            anchor,
                        )
                    }
                    Some(Open::Map {
                        start,
                        anchor,
                        entries,
                        ..
                    }) => {
                        let end = entries
                            .last()
                            .map_or(span.end, |e| e.value.span.end.max(start.end));
                        (
                            Node {
                                span: Span::new(start.start, end),
                                kind: Kind::Map(entries),
                            },
                            anchor,
                        )
                    }
                    None => return Ok(()),
                };
                self.complete(node.0, node.1)?;
            }
            Event::Alias(id) => {
                let Some((_, node)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(YamlProblem {
                        message: "alias refers to an unknown anchor".into(),
                        span,
                        other: None,
                        help: "define the anchor (`&name`) before using it (`*name`)".into(),
                    });
                };
                let mut node = node.clone();
                self.nodes += count_nodes(&node);
                if self.nodes > MAX_NODES {
                    return Err(YamlProblem {
                        message: format!("aliases expand to more than {MAX_NODES} nodes"),
                        span,
                        other: None,
                        help:
                            "a registry does not need deeply nested aliases; write the values out"
                                .into(),
                    });
                }
                // The alias stands where it is used: point diagnostics there.
                node.span = span;
                self.complete(node, 0)?;
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
        Ok(())
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), YamlProblem> {
        self.nodes += 1;
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = match &node.kind {
                        Kind::Str(s) => s.clone(),
                        Kind::Int(i) => i.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Null => "null".into(),
                        Kind::Seq(_) | Kind::Map(_) => {
                            return Err(YamlProblem {
                                message: "a mapping key must be a plain value".into(),
                                span: node.span,
                                other: None,
                                help: "use a string as the key".into(),
                            });
                        }
                    };
                    *pending_key = Some((key, node.span));
                }
                Some((key, key_span)) => {
                    if let Some(first) = entries.iter().find(|e| e.key == key) {
                        self.problems.push(YamlProblem {
                            message: format!("duplicate key `{key}`"),
                            span: key_span,
                            other: Some((first.key_span, "first defined here".into())),
                            help: "a key may appear once per mapping; merge the two entries or rename one".into(),
                        });
                    } else {
                        entries.push(Entry {
                            key,
                            key_span,
                            value: node,
                        });
                    }
                }
            },
        }
        let _ = self.chars;
        Ok(())
    }
}

fn count_nodes(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries.iter().map(|e| 1 + count_nodes(&e.value)).sum(),
        _ => 0,
    }
}

/// YAML 1.2 core schema resolution of one scalar.
fn resolve_scalar(v: &str, style: ScalarStyle, tag: Option<&str>) -> Kind {
    match tag {
        Some("str") => return Kind::Str(v.to_string()),
        Some("null") => return Kind::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Kind::Str(v.to_string());
    }
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = parse_int(v) {
        return Kind::Int(int);
    }
    if is_core_float(v)
        && let Ok(f) = v.parse::<f64>()
    {
        return Kind::Float(f);
    }
    Kind::Str(v.to_string())
}

fn parse_int(v: &str) -> Option<i64> {
    if let Some(oct) = v.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    if let Some(hex) = v.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    None
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_core_float(v: &str) -> bool {
    let s = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
                && !(a.is_empty() && b.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exp_ok
}

impl Node {
    /// The tree as JSON, for schema validation and typed deserialisation.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| Value::String(f.to_string()), Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Resolve an RFC 6901 JSON pointer to the key and value spans it names.
    /// A pointer that runs past the tree resolves to its deepest existing part.
    pub fn locate(&self, pointer: &str) -> Located {
        let mut here = Located {
            key: None,
            value: self.span,
        };
        let mut node = self;
        if pointer.is_empty() {
            return here;
        }
        for raw in pointer.trim_start_matches('/').split('/') {
            let token = raw.replace("~1", "/").replace("~0", "~");
            let next = match &node.kind {
                Kind::Map(entries) => entries
                    .iter()
                    .find(|e| e.key == token)
                    .map(|e| (Some(e.key_span), &e.value)),
                Kind::Seq(items) => token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|n| (None, n)),
                _ => None,
            };
            let Some((key, child)) = next else {
                return here;
            };
            here = Located {
                key,
                value: child.span,
            };
            node = child;
        }
        here
    }

    /// The node a JSON pointer names, if it exists.
    pub fn locate_node(&self, pointer: &str) -> Option<&Node> {
        let mut node = self;
        if pointer.is_empty() {
            return Some(node);
        }
        for raw in pointer.trim_start_matches('/').split('/') {
            let token = raw.replace("~1", "/").replace("~0", "~");
            node = match &node.kind {
                Kind::Map(entries) => &entries.iter().find(|e| e.key == token)?.value,
                Kind::Seq(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, s: Span) -> &str {
        &text[s.start..s.end]
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let t = "a: 1\nb:\n  c: 'x y'  # note\n  d: [1, 2]\n";
        let (n, p) = parse(t).unwrap();
        assert!(p.is_empty());
        let l = n.locate("/b/c");
        assert_eq!(at(t, l.key.unwrap()), "c");
        assert_eq!(at(t, l.value), "'x y'");
        assert_eq!(at(t, n.locate("/b/d/1").value), "2");
        assert_eq!(
            n.to_json(),
            serde_json::json!({"a":1,"b":{"c":"x y","d":[1,2]}})
        );
    }

    #[test]
    fn core_schema() {
        let (n, _) =
            parse("a: yes\nb: ~\nc: 0x1f\nd: '1'\ne: 1.5\nf: 03:00\ng: 0 3 * * *\n").unwrap();
        assert_eq!(
            n.to_json(),
            serde_json::json!({"a":"yes","b":null,"c":31,"d":"1","e":1.5,"f":"03:00","g":"0 3 * * *"})
        );
    }

    #[test]
    fn duplicate_keys_are_all_reported() {
        let t = "a: 1\nb: 2\na: 3\nb: 4\n";
        let (n, p) = parse(t).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].span.start, 10);
        assert_eq!(p[0].other.as_ref().unwrap().0.start, 0);
        assert_eq!(n.to_json(), serde_json::json!({"a":1,"b":2}));
    }

    #[test]
    fn empty_and_multi_document_and_malformed() {
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(
            parse("# only a comment\n")
                .unwrap_err()
                .message
                .contains("empty")
        );
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("more than one")
        );
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("malformed YAML"), "{}", e.message);
    }

    #[test]
    fn aliases_expand_with_a_limit() {
        let (n, _) = parse("a: &x {k: 1}\nb: *x\n").unwrap();
        assert_eq!(n.to_json(), serde_json::json!({"a":{"k":1},"b":{"k":1}}));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..7 {
            let p = (b'a' + i) as char;
            let c = (b'a' + i + 1) as char;
            bomb.push_str(&format!(
                "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            ));
        }
        assert!(parse(&bomb).unwrap_err().message.contains("aliases expand"));
    }

    #[test]
    fn floats_and_ints() {
        assert!(is_core_float("1.5e3"));
        assert!(is_core_float(".5"));
        assert!(!is_core_float("."));
        assert!(!is_core_float("1.2.3"));
        assert_eq!(parse_int("-12"), Some(-12));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("12a"), None);
    }
}
