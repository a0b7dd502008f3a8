//! Source text and positions, a leaf under `load` and `diag` (it uses no
//! other spine module): a registry file held in memory, conversions between
//! the YAML parser's character positions and the byte offsets miette wants,
//! and ([`yaml`]) the YAML tree whose every key and value keeps its span.
//!
//! `load` reads files into these; `diag` points into them; neither is needed
//! here, so the two depend on this module and not on each other.

pub mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

/// One file's text and where it came from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as given on disk.
    pub path: PathBuf,
    /// Path as shown to the user (relative where possible).
    pub name: String,
    pub text: Arc<str>,
    /// Byte offset of each line's start; shared with every diagnostic's source.
    line_starts: Arc<[usize]>,
}

/// 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    pub fn new(path: &Path, name: String, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            path: path.to_path_buf(),
            name,
            text,
            line_starts: line_starts.into(),
        }
    }

    /// Line and column (both 1-based) of a byte offset.
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        LineCol {
            line: line + 1,
            column,
        }
    }

    /// The miette source for diagnostics over this file.
    pub fn named_source(&self) -> NamedText {
        let indexed = Indexed {
            text: self.text.clone(),
            line_starts: self.line_starts.clone(),
        };
        miette::NamedSource::new(&self.name, indexed).with_language("yaml")
    }
}

/// A diagnostic's source: the file's text and line index.
pub type NamedText = miette::NamedSource<Indexed>;

/// A file's text with its line index, so that miette reads a span's lines
/// from the line index instead of scanning the file from its start each time
/// (which made N diagnostics on one large file cost N times the file).
#[derive(Debug, Clone)]
pub struct Indexed {
    text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl miette::SourceCode for Indexed {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        // Start at the first context line: miette scans from there.
        let line = self
            .line_starts
            .partition_point(|&s| s <= span.offset())
            .saturating_sub(1);
        let first = line.saturating_sub(before);
        let base = self.line_starts[first];
        let inner = miette::SourceSpan::new((span.offset() - base).into(), span.len());
        let c = self.text.as_bytes()[base..].read_span(&inner, before, after)?;
        let at = miette::SourceSpan::new((c.span().offset() + base).into(), c.span().len());
        Ok(Box::new(miette::MietteSpanContents::new(
            c.data(),
            at,
            c.line() + first,
            c.column(),
            c.line_count() + first,
        )))
    }
}

/// Maps character indices (what the YAML scanner counts) to byte offsets.
///
/// For pure-ASCII text (the common case) this is the identity and costs nothing.
pub struct CharIndex<'a> {
    text: &'a str,
    ascii: bool,
    /// byte offset of every char, only built for non-ASCII text
    offsets: Vec<usize>,
}

impl<'a> CharIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let ascii = text.is_ascii();
        let offsets = if ascii {
            Vec::new()
        } else {
            text.char_indices().map(|(b, _)| b).collect()
        };
        Self {
            text,
            ascii,
            offsets,
        }
    }

    pub fn byte(&self, char_index: usize) -> usize {
        if self.ascii {
            char_index.min(self.text.len())
        } else {
            self.offsets
                .get(char_index)
                .copied()
                .unwrap_or(self.text.len())
        }
    }

    /// A span shrunk so that it does not run past the end of its line's
    /// meaningful content (the scanner sometimes reaches to a trailing comment).
    pub fn trimmed(&self, start: usize, end: usize) -> Span {
        let (s, e) = (self.byte(start), self.byte(end));
        let slice = &self.text[s..e];
        let mut len = slice.len();
        if let Some(hash) = comment_start(slice) {
            len = hash;
        }
        let trimmed = slice[..len].trim_end();
        Span::new(s, s + trimmed.len())
    }
}

/// Byte offset of a ` #` comment inside an unquoted stretch of text, if any.
fn comment_start(s: &str) -> Option<usize> {
    let (mut single, mut double) = (false, false);
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && i > 0 && bytes[i - 1].is_ascii_whitespace() => {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new(Path::new("x"), "x".into(), "ab\nçd: e\n");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        // 'd' is after a 2-byte char
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 2 });
    }

    #[test]
    fn char_index_handles_multibyte() {
        let t = "é: ü";
        let c = CharIndex::new(t);
        assert_eq!(c.byte(0), 0);
        assert_eq!(c.byte(1), 2);
        assert_eq!(c.byte(3), 4);
        assert_eq!(c.byte(99), t.len());
    }

    #[test]
    fn trims_trailing_comment() {
        let t = "'a b'   # note";
        let c = CharIndex::new(t);
        assert_eq!(c.trimmed(0, t.len()), Span::new(0, 5));
    }
}
