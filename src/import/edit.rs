//! Adding sections to the operator's YAML files as text: whole lines
//! inserted at a place found from the parsed tree's spans, at the
//! indentation the file already uses there. Nothing is re-serialised, so
//! every existing line and comment stays as written, in its order.

use crate::source::yaml::{Kind, Node};

/// A block of lines to insert before byte offset `at` (a line start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub at: usize,
    pub text: String,
}

/// The text with the inserts applied (each at a line start; later offsets
/// first so earlier ones stay valid).
pub fn apply(text: &str, inserts: &[Insert]) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let mut sorted: Vec<&Insert> = inserts.iter().collect();
    sorted.sort_by_key(|i| std::cmp::Reverse(i.at));
    for i in sorted {
        let at = i.at.min(out.len());
        out.insert_str(at, &i.text);
    }
    out
}

/// The start of the line after the last non-blank character before `end`:
/// where lines go that belong after a node (a block scalar's trailing
/// newlines and the blank lines after it are not part of it).
fn after_node(text: &str, end: usize) -> usize {
    let end = end.min(text.len());
    let last = text[..end].trim_end().len();
    match text[last..].find('\n') {
        Some(n) => last + n + 1,
        None => text.len() + usize::from(!text.ends_with('\n')),
    }
}

/// Column (in characters) of byte offset `at` on its line.
fn column(text: &str, at: usize) -> usize {
    let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    text[start..at].chars().count()
}

/// The lines of `body` (indented relative to 0) indented by `indent` spaces.
pub fn indented(body: &[String], indent: usize) -> String {
    let pad = " ".repeat(indent);
    body.iter()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{pad}{l}\n")
            }
        })
        .collect()
}

/// Where a new key goes at the end of block mapping `map`, and its
/// indentation; `None` when the mapping is in flow style (`{...}`) or empty.
pub fn end_of_mapping(text: &str, map: &Node) -> Option<(usize, usize)> {
    let Kind::Map(m) = &map.kind else { return None };
    let first = m.entries.first()?;
    let last = m.entries.last()?;
    if text[map.span.start..].starts_with('{') {
        return None;
    }
    let indent = column(text, first.key_span.start);
    let end = last.value.span.end.max(last.key_span.end);
    Some((after_node(text, end), indent))
}

/// Where a new item goes at the end of block sequence `seq`, the
/// indentation of its `-`, and whether the items are separated by blank
/// lines; `None` for a flow sequence or an empty one.
pub fn end_of_sequence(text: &str, seq: &Node) -> Option<(usize, usize, bool)> {
    let Kind::Seq(items) = &seq.kind else {
        return None;
    };
    let last = items.last()?;
    let line_start = text[..last.span.start].rfind('\n').map_or(0, |n| n + 1);
    let prefix = &text[line_start..last.span.start];
    let dash = prefix.find('-')?;
    if !prefix[..dash].chars().all(|c| c == ' ') {
        return None;
    }
    let blank = items.len() > 1 && {
        let prev = &items[items.len() - 2];
        let between = &text[after_node(text, prev.span.end).min(line_start)..line_start];
        between.lines().any(|l| l.trim().is_empty())
    };
    Some((after_node(text, last.span.end), dash, blank))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::yaml::parse;

    #[test]
    fn a_key_goes_after_a_folded_scalar_and_before_the_blank_line() {
        let text =
            "hosts:\n  a:\n    os: x\n    notes: >\n      long\n      text\n\n  b:\n    os: y\n";
        let (tree, _) = parse(text).unwrap();
        let a = tree.locate_node("/hosts/a").unwrap();
        let (at, indent) = end_of_mapping(text, a).unwrap();
        assert_eq!(indent, 4);
        let out = apply(
            text,
            &[Insert {
                at,
                text: indented(&["desired:".into(), "  k: v".into()], indent),
            }],
        );
        assert_eq!(
            out,
            "hosts:\n  a:\n    os: x\n    notes: >\n      long\n      text\n    desired:\n      k: v\n\n  b:\n    os: y\n"
        );
        let (again, _) = parse(&out).unwrap();
        assert_eq!(again.to_json()["hosts"]["a"]["notes"], "long text\n");
        assert_eq!(again.to_json()["hosts"]["a"]["desired"]["k"], "v");
    }

    #[test]
    fn an_item_goes_at_the_end_of_the_sequence_with_its_spacing() {
        let text = "stacks:\n  - id: a\n    x: 1\n\n  - id: b\n    x: 2\n# trailing comment\n";
        let (tree, _) = parse(text).unwrap();
        let (at, dash, blank) =
            end_of_sequence(text, tree.locate_node("/stacks").unwrap()).unwrap();
        assert_eq!((dash, blank), (2, true));
        let out = apply(
            text,
            &[Insert {
                at,
                text: "\n  - id: c\n".into(),
            }],
        );
        assert_eq!(
            out,
            "stacks:\n  - id: a\n    x: 1\n\n  - id: b\n    x: 2\n\n  - id: c\n# trailing comment\n"
        );
    }

    #[test]
    fn a_flow_mapping_is_not_edited() {
        let text = "a: {b: 1}\n";
        let (tree, _) = parse(text).unwrap();
        assert!(end_of_mapping(text, tree.locate_node("/a").unwrap()).is_none());
    }
}
