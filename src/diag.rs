//! Diagnostics: every problem spine reports about a registry, located by
//! file and JSON pointer, resolved to line/column and rendered with miette.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, SourceCode};
use serde::Serialize;

use crate::source::yaml::Node;
use crate::source::{LineCol, NamedText, SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Which of the three registry files a place is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FileKind {
    #[serde(rename = "SERVICE_REGISTRY.yaml")]
    Services,
    #[serde(rename = "STACK_REGISTRY.yaml")]
    Stacks,
    #[serde(rename = "services.health.yaml")]
    Health,
    /// The operator's bindings spine reads facts from (optional files).
    #[serde(rename = "ssh.targets.yaml")]
    SshTargets,
    #[serde(rename = "vm.lifecycle.yaml")]
    VmLifecycle,
    #[serde(rename = "secrets.binding.yaml")]
    SecretsBinding,
    #[serde(rename = "docker.compose.targets.yaml")]
    ComposeTargets,
}

impl FileKind {
    /// The three registry files (each required, each with a schema gate).
    pub const ALL: [FileKind; 3] = [FileKind::Services, FileKind::Stacks, FileKind::Health];
    /// The operator's bindings, read when present for facts the registry does not hold.
    pub const BINDINGS: [FileKind; 4] = [
        FileKind::SshTargets,
        FileKind::VmLifecycle,
        FileKind::SecretsBinding,
        FileKind::ComposeTargets,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Services => "SERVICE_REGISTRY.yaml",
            FileKind::Stacks => "STACK_REGISTRY.yaml",
            FileKind::Health => "services.health.yaml",
            FileKind::SshTargets => "ssh.targets.yaml",
            FileKind::VmLifecycle => "vm.lifecycle.yaml",
            FileKind::SecretsBinding => "secrets.binding.yaml",
            FileKind::ComposeTargets => "docker.compose.targets.yaml",
        }
    }
}

/// Whether a label goes on the key of a mapping entry or on its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Key,
    Value,
}

/// A place in a registry file, by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: FileKind,
    pub pointer: String,
    pub on: On,
}

impl Place {
    pub fn value(file: FileKind, pointer: impl Into<String>) -> Self {
        Self {
            file,
            pointer: pointer.into(),
            on: On::Value,
        }
    }
    pub fn key(file: FileKind, pointer: impl Into<String>) -> Self {
        Self {
            file,
            pointer: pointer.into(),
            on: On::Key,
        }
    }
}

/// Builds an RFC 6901 pointer from segments, escaping `~` and `/`.
pub fn pointer<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: fmt::Display,
{
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out.push_str(&s.to_string().replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// A label that marks a finding whose source line must not be shown (it
/// holds a secret). The diagnostic keeps file, line and column.
pub const REDACTED_LABEL: &str = "(value hidden: it is a secret)";

/// A problem found by a gate, before it is tied to source text.
#[derive(Debug, Clone)]
pub struct Finding {
    pub gate: &'static str,
    pub severity: Severity,
    pub place: Place,
    pub message: String,
    pub label: String,
    pub help: String,
    /// Other places the problem involves (e.g. the other statement of a fact).
    pub related: Vec<(Place, String)>,
}

impl Finding {
    pub fn error(gate: &'static str, place: Place, message: impl Into<String>) -> Self {
        Self {
            gate,
            severity: Severity::Error,
            place,
            message: message.into(),
            label: String::new(),
            help: String::new(),
            related: Vec::new(),
        }
    }
    pub fn warning(gate: &'static str, place: Place, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(gate, place, message)
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }
    pub fn related(mut self, place: Place, label: impl Into<String>) -> Self {
        self.related.push((place, label.into()));
        self
    }
}

/// One source file and its tree, as diagnostics need them.
pub trait Sources {
    fn source(&self, file: FileKind) -> Option<(&SourceFile, &Node)>;
}

/// A finding tied to source text: file, line, column and spans.
#[derive(Debug, Clone)]
pub struct Diag {
    pub gate: &'static str,
    pub severity: Severity,
    pub file: String,
    pub pointer: String,
    pub at: LineCol,
    pub message: String,
    pub help: String,
    source: Option<NamedText>,
    labels: Vec<(Span, String)>,
    others: Vec<Diag>,
    /// A related place shown under another diagnostic (rendered as advice).
    is_related: bool,
}

impl Diag {
    /// A diagnostic about a file as a whole or a raw span (load errors).
    pub fn at_span(
        gate: &'static str,
        source: &SourceFile,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Self {
            gate,
            severity: Severity::Error,
            file: source.name.clone(),
            pointer: String::new(),
            at: source.line_col(span.start),
            message: message.into(),
            help: help.into(),
            source: Some(source.named_source()),
            labels: vec![(span, label.into())],
            others: Vec::new(),
            is_related: false,
        }
    }

    /// A diagnostic with no source text to show (the file could not be read).
    pub fn without_source(gate: &'static str, file: String, message: String, help: String) -> Self {
        Self {
            gate,
            severity: Severity::Error,
            file,
            pointer: String::new(),
            at: LineCol { line: 0, column: 0 },
            message,
            help,
            source: None,
            labels: Vec::new(),
            others: Vec::new(),
            is_related: false,
        }
    }

    pub fn with_other(mut self, span: Span, label: impl Into<String>) -> Self {
        self.labels.push((span, label.into()));
        self
    }

    /// Resolve a finding against the loaded files.
    pub fn resolve(f: &Finding, sources: &dyn Sources) -> Self {
        let (file, at, pointer, source, labels) = locate(&f.place, &f.label, sources);
        let mut labels = labels;
        // Never show the text of a line that holds a secret.
        let source = if f.label == REDACTED_LABEL {
            None
        } else {
            source
        };
        let mut others = Vec::new();
        for (place, label) in &f.related {
            if place.file == f.place.file {
                let (_, _, _, _, l) = locate(place, label, sources);
                labels.extend(l);
            } else {
                let (file, at, pointer, source, labels) = locate(place, label, sources);
                others.push(Diag {
                    gate: f.gate,
                    severity: f.severity,
                    file,
                    pointer,
                    at,
                    message: format!("{label} (see {})", place.file.file_name()),
                    help: String::new(),
                    source,
                    labels,
                    others: Vec::new(),
                    is_related: true,
                });
            }
        }
        Diag {
            gate: f.gate,
            severity: f.severity,
            file,
            pointer,
            at,
            message: f.message.clone(),
            help: f.help.clone(),
            source,
            labels,
            others,
            is_related: false,
        }
    }

    /// Keep file, line and column but show no source text (the line holds
    /// something that must not reach a terminal, such as a control character).
    pub fn without_text(mut self) -> Self {
        self.source = None;
        self.labels.clear();
        self
    }

    /// Show `other` (a place in another file) under this diagnostic.
    pub fn with_related(mut self, mut other: Diag) -> Self {
        other.is_related = true;
        other.severity = self.severity;
        self.others.push(other);
        self
    }

    /// Other places in other files this diagnostic refers to.
    pub fn others(&self) -> &[Diag] {
        &self.others
    }
}

type Located = (
    String,
    LineCol,
    String,
    Option<NamedText>,
    Vec<(Span, String)>,
);

fn locate(place: &Place, label: &str, sources: &dyn Sources) -> Located {
    let name = place.file.file_name().to_string();
    let Some((src, tree)) = sources.source(place.file) else {
        return (
            name,
            LineCol { line: 0, column: 0 },
            place.pointer.clone(),
            None,
            Vec::new(),
        );
    };
    let loc = tree.locate(&place.pointer);
    let span = match place.on {
        On::Key => loc.key.unwrap_or(loc.value),
        On::Value => loc.value,
    };
    (
        src.name.clone(),
        src.line_col(span.start),
        place.pointer.clone(),
        Some(src.named_source()),
        vec![(span, label.to_string())],
    )
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

impl Diagnostic for Diag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("spine::{}", self.gate)))
    }
    fn severity(&self) -> Option<miette::Severity> {
        if self.is_related {
            return Some(miette::Severity::Advice);
        }
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.help.is_empty()).then(|| Box::new(&self.help) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        Some(Box::new(self.labels.iter().enumerate().map(
            |(i, (span, l))| {
                let text = (!l.is_empty()).then(|| l.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, *span)
                } else {
                    LabeledSpan::new_with_span(text, *span)
                }
            },
        )))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.others.is_empty() {
            return None;
        }
        Some(Box::new(self.others.iter().map(|d| d as &dyn Diagnostic)))
    }
}

/// The closest allowed word, if it is close enough to be a likely typo.
pub fn suggest(given: &str, allowed: &[String]) -> Option<String> {
    allowed
        .iter()
        .map(|a| (strsim::jaro_winkler(given, a), a))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, a)| a.clone())
}
