//! YAML to a position-carrying tree, on top of `saphyr-parser`'s event stream.
//!
//! We build our own small tree (rather than use a generic YAML value) so that
//! every key and every value keeps its byte span, duplicate keys are reported
//! with both places (and parsing goes on, so all of them are reported), and
//! scalars are resolved with the YAML 1.2 core schema.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

use super::{CharIndex, Span};

/// Limits that keep a hostile file from exhausting the CI gate: every input
/// is parsed in time and memory linear in its size, and these bound the size.
///
/// A registry file is tens of kilobytes; a file larger than this is refused
/// before it is parsed.
pub const MAX_FILE_BYTES: usize = 4 << 20;
/// Nesting of mappings and sequences. The registry needs about eight levels;
/// the limit also keeps every recursive walk of the tree (conversion to JSON,
/// schema checks, drop) far from the end of the stack.
pub const MAX_DEPTH: usize = 64;
/// The tree, aliases expanded, holds at most this many nodes ("billion laughs")
const MAX_NODES: usize = 1_000_000;
/// ... and at most this many bytes of scalar text (one big string behind many
/// aliases). Without aliases a file cannot come near it.
pub const MAX_EXPANDED_BYTES: usize = 4 * MAX_FILE_BYTES;

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
    Map(Mapping),
}

/// A mapping's entries in file order, with an index sorted by key, so that
/// finding a key (every diagnostic does) takes logarithmic, not linear, time.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub entries: Vec<Entry>,
    by_key: Vec<usize>,
}

impl Mapping {
    /// `entries` have unique keys (the parser drops duplicates).
    fn new(entries: Vec<Entry>) -> Self {
        let mut by_key: Vec<usize> = (0..entries.len()).collect();
        by_key.sort_unstable_by(|&a, &b| entries[a].key.cmp(&entries[b].key));
        Self { entries, by_key }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        let at = self
            .by_key
            .binary_search_by(|&i| self.entries[i].key.as_str().cmp(key))
            .ok()?;
        Some(&self.entries[self.by_key[at]])
    }
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
///
/// Time and memory are linear in the input, and bounded: a file over
/// [`MAX_FILE_BYTES`], nesting deeper than [`MAX_DEPTH`] or aliases expanding
/// past [`MAX_NODES`] nodes or [`MAX_EXPANDED_BYTES`] bytes are refused with
/// the place where the limit was crossed.
pub fn parse(text: &str) -> Result<(Node, Vec<YamlProblem>), YamlProblem> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let chars = CharIndex::new(text);
    let mut b = Builder::default();
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

/// The problem for a file larger than [`MAX_FILE_BYTES`]. The loader reports
/// it before reading further than the limit.
pub fn too_large() -> YamlProblem {
    YamlProblem {
        message: format!(
            "the file is larger than the limit of {} MiB ({MAX_FILE_BYTES} bytes)",
            MAX_FILE_BYTES >> 20
        ),
        span: Span::default(),
        other: None,
        help: "a registry file is a few tens of kilobytes: check that this is the right file (not a log, a dump or a generated file)".into(),
    }
}

fn scan_problem(chars: &CharIndex, e: &ScanError) -> YamlProblem {
    let at = chars.byte(e.marker().index());
    if e.info() == "recursion limit exceeded" {
        // The scanner's own limit on `[`/`{` nesting, met before ours.
        return too_deep(Span::new(at, at));
    }
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
        /// Key to its index in `entries`: duplicate keys are found in
        /// constant time, so a mapping of many keys parses in linear time.
        index: HashMap<String, usize>,
        pending_key: Option<(String, Span)>,
    },
}

/// What a subtree costs: its nodes, its scalar bytes (keys included) and its
/// height (a scalar is 0). Aliases add the cost of what they repeat.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
    height: usize,
}

impl Cost {
    /// Recursive, but over a tree the depth limit has already bounded.
    fn of(n: &Node) -> Cost {
        let mut c = Cost {
            nodes: 1,
            bytes: 0,
            height: 0,
        };
        // (key, value): a mapping's keys are nodes and text too.
        let children: Box<dyn Iterator<Item = (Option<&str>, &Node)>> = match &n.kind {
            Kind::Str(s) => {
                c.bytes = s.len();
                return c;
            }
            Kind::Seq(items) => Box::new(items.iter().map(|i| (None, i))),
            Kind::Map(m) => Box::new(m.entries.iter().map(|e| (Some(e.key.as_str()), &e.value))),
            _ => return c,
        };
        for (key, child) in children {
            let cc = Cost::of(child);
            c.nodes += cc.nodes + usize::from(key.is_some());
            c.bytes += cc.bytes + key.map_or(0, str::len);
            c.height = c.height.max(cc.height + 1);
        }
        c
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    /// Anchor id (unique per definition) to the node and its cost.
    anchors: HashMap<usize, (Node, Cost)>,
    problems: Vec<YamlProblem>,
    docs: Vec<Node>,
    /// Nodes and scalar bytes of everything built so far, aliases expanded.
    total: Cost,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlProblem> {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let kind = resolve_scalar(&value, style, tag.as_deref().map(|t| t.suffix.as_str()));
                self.spend(
                    Cost {
                        nodes: 1,
                        bytes: value.len(),
                        height: 0,
                    },
                    span,
                )?;
                self.complete(Node { span, kind }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(span)?;
                self.stack.push(Open::Seq {
                    start: span,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(span)?;
                self.stack.push(Open::Map {
                    start: span,
                    anchor,
                    entries: Vec::new(),
                    index: HashMap::new(),
                    pending_key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = self.stack.pop() else {
                    return Ok(());
                };
                let (node, anchor) = close(open, span);
                self.complete(node, anchor)?;
            }
            Event::Alias(id) => self.alias(id, span)?,
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
        Ok(())
    }

    /// A mapping or sequence starts: refuse nesting past [`MAX_DEPTH`].
    fn open(&mut self, span: Span) -> Result<(), YamlProblem> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(span));
        }
        self.spend(
            Cost {
                nodes: 1,
                bytes: 0,
                height: 0,
            },
            span,
        )
    }

    /// Count `cost` against the document's budget.
    fn spend(&mut self, cost: Cost, span: Span) -> Result<(), YamlProblem> {
        self.total.nodes += cost.nodes;
        self.total.bytes += cost.bytes;
        let what = if self.total.nodes > MAX_NODES {
            format!("more than {MAX_NODES} nodes")
        } else if self.total.bytes > MAX_EXPANDED_BYTES {
            format!("more than {} MiB of text", MAX_EXPANDED_BYTES >> 20)
        } else {
            return Ok(());
        };
        Err(YamlProblem {
            message: format!("the document expands to {what} (aliases repeat what they name)"),
            span,
            other: None,
            help: "a registry does not need aliases that repeat large or nested values; write the values out".into(),
        })
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), YamlProblem> {
        let Some(&(_, cost)) = self.anchors.get(&id) else {
            return Err(YamlProblem {
                message: "alias refers to an unknown anchor".into(),
                span,
                other: None,
                help: "define the anchor (`&name`) before using it (`*name`)".into(),
            });
        };
        if self.stack.len() + cost.height >= MAX_DEPTH {
            return Err(too_deep(span));
        }
        // Counted before the copy is made: an alias past the budget costs nothing.
        self.spend(cost, span)?;
        let mut node = self.anchors[&id].0.clone();
        // The alias stands where it is used: point diagnostics there.
        node.span = span;
        self.complete(node, 0)
    }

    /// A node is finished (and counted): remember its anchor, place it.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), YamlProblem> {
        if anchor > 0 {
            let cost = Cost::of(&node);
            self.anchors.insert(anchor, (node.clone(), cost));
        }
        let Some(top) = self.stack.last_mut() else {
            self.docs.push(node);
            return Ok(());
        };
        match top {
            Open::Seq { items, .. } => items.push(node),
            Open::Map {
                entries,
                index,
                pending_key,
                ..
            } => match pending_key.take() {
                None => *pending_key = Some((key_text(&node)?, node.span)),
                Some((key, key_span)) => match index.get(&key) {
                    Some(&first) => self.problems.push(YamlProblem {
                        message: format!("duplicate key `{key}`"),
                        span: key_span,
                        other: Some((entries[first].key_span, "first defined here".into())),
                        help:
                            "a key may appear once per mapping; merge the two entries or rename one"
                                .into(),
                    }),
                    None => {
                        index.insert(key.clone(), entries.len());
                        entries.push(Entry {
                            key,
                            key_span,
                            value: node,
                        });
                    }
                },
            },
        }
        Ok(())
    }
}

/// A finished mapping or sequence, with the anchor it was given.
fn close(open: Open, span: Span) -> (Node, usize) {
    match open {
        Open::Seq {
            start,
            anchor,
            items,
        } => {
            let end = items.last().map_or(span.end, |n| n.span.end.max(start.end));
            (
                Node {
                    span: Span::new(start.start, end),
                    kind: Kind::Seq(items),
                },
                anchor,
            )
        }
        Open::Map {
            start,
            anchor,
            entries,
            ..
        } => {
            let end = entries
                .last()
                .map_or(span.end, |e| e.value.span.end.max(start.end));
            (
                Node {
                    span: Span::new(start.start, end),
                    kind: Kind::Map(Mapping::new(entries)),
                },
                anchor,
            )
        }
    }
}

/// The text of a mapping key; keys must be scalars.
fn key_text(node: &Node) -> Result<String, YamlProblem> {
    Ok(match &node.kind {
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
    })
}

fn too_deep(span: Span) -> YamlProblem {
    YamlProblem {
        message: format!("mappings and lists nest deeper than {MAX_DEPTH} levels"),
        span: Span::new(span.start, span.start),
        other: None,
        help: "a registry needs only a few levels of nesting: check the indentation here, or flatten the structure".into(),
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
            Kind::Map(m) => Value::Object(
                m.entries
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
                Kind::Map(m) => m.get(&token).map(|e| (Some(e.key_span), &e.value)),
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
                Kind::Map(m) => &m.get(&token)?.value,
                Kind::Seq(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(m) => Some(&m.entries),
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
        assert!(
            parse(&bomb)
                .unwrap_err()
                .message
                .contains("expands to more than 1000000 nodes")
        );
    }

    /// Nesting `depth` levels deep, block style (`- - - x`) or flow (`[[[x]]]`).
    fn nested(depth: usize, flow: bool) -> String {
        if flow {
            format!("a: {}x{}\n", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("a:\n{}x\n", "- ".repeat(depth))
        }
    }

    #[test]
    fn nesting_is_limited() {
        // The top mapping is one level: MAX_DEPTH - 1 more are fine.
        for flow in [false, true] {
            let (n, _) = parse(&nested(MAX_DEPTH - 1, flow)).unwrap();
            let innermost = format!("/a{}", "/0".repeat(MAX_DEPTH - 1));
            assert_eq!(
                n.locate_node(&innermost).unwrap().kind,
                Kind::Str("x".into())
            );
            let e = parse(&nested(MAX_DEPTH, flow)).unwrap_err();
            assert!(
                e.message.contains("nest deeper than 64 levels"),
                "{}",
                e.message
            );
            // 100,000 levels overflowed the stack (exit 134) before the limit.
            let e = parse(&nested(100_000, flow)).unwrap_err();
            assert!(
                e.message.contains("nest deeper than 64 levels"),
                "{}",
                e.message
            );
        }
        // Block style: the error points at the sequence that crosses the limit.
        let e = parse(&nested(100_000, false)).unwrap_err();
        assert_eq!(e.span.start, "a:\n".len() + 2 * (MAX_DEPTH - 1));
    }

    #[test]
    fn aliases_cannot_nest_past_the_limit() {
        // Each alias repeats a value 40 levels deep one level further down.
        let deep = format!("a: &a {}x{}\n", "[".repeat(40), "]".repeat(40));
        assert!(parse(&deep).is_ok());
        let e = parse(&format!(
            "{deep}b: [[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("nest deeper"), "{}", e.message);
    }

    #[test]
    fn many_keys_parse_in_linear_time() {
        // Every key is new: duplicate detection and lookups must not scan
        // the keys before it (40,000 keys took seconds, 200,000 a minute).
        let text: String = (0..200_000).map(|i| format!("k{i}: {i}\n")).collect();
        let started = std::time::Instant::now();
        let (n, p) = parse(&text).unwrap();
        assert!(p.is_empty());
        for i in (0..200_000).step_by(7) {
            assert!(n.locate_node(&format!("/k{i}")).is_some());
        }
        let took = started.elapsed();
        assert_eq!(n.as_map().unwrap().len(), 200_000);
        assert!(took.as_secs_f64() < 10.0, "200,000 keys took {took:?}");
    }

    #[test]
    fn alias_expansion_is_bounded_by_bytes() {
        // One 1 MiB string behind 900 aliases took 2.7 GB.
        let big = "x".repeat(1 << 20);
        let aliases = vec!["*a"; 900].join(", ");
        let e = parse(&format!("a: &a \"{big}\"\nb: [{aliases}]\n")).unwrap_err();
        assert!(
            e.message.contains("more than 16 MiB of text"),
            "{}",
            e.message
        );
        // Few nodes, many bytes: 4 KiB, 64 times, 64 times.
        let e = parse(&bytes_bomb()).unwrap_err();
        assert!(e.message.contains("of text"), "{}", e.message);
        // Below the budget an alias of a long string is fine.
        let (n, _) = parse(&format!("a: &a \"{big}\"\nb: [*a, *a]\n")).unwrap();
        assert_eq!(
            n.locate_node("/b/1")
                .unwrap()
                .to_json()
                .as_str()
                .unwrap()
                .len(),
            1 << 20
        );
    }

    /// A 4 KiB string repeated 64 × 64 times by two levels of aliases: 16 MiB
    /// and more from a 5 KB input.
    pub(crate) fn bytes_bomb() -> String {
        let row = |name: &str| vec![format!("*{name}"); 64].join(", ");
        format!(
            "a: &a \"{}\"\nb: &b [{}]\nc: &c [{}]\nd: [*c, *c]\n",
            "x".repeat(4096),
            row("a"),
            row("b")
        )
    }

    #[test]
    fn files_over_the_size_limit_are_refused() {
        let text = format!("a: 1\n{}", "#".repeat(MAX_FILE_BYTES));
        let e = parse(&text).unwrap_err();
        assert!(
            e.message.contains("larger than the limit of 4 MiB"),
            "{}",
            e.message
        );
        assert!(parse(&text[..MAX_FILE_BYTES]).is_ok());
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
