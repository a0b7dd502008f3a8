//! V17: the operator's own compose files (`desired.compose.file`). Each is a
//! normalised path inside the repository to a readable YAML file with a
//! `services:` mapping of plain names and no control characters; when the
//! registry also lists `services:`, both say the same; its images are
//! pinned by V11's rule, a warning ([`super::compose_images`]). Problems
//! inside a compose file are said at its own line and column.

use super::{GateResult, result, skip};
use crate::diag::{Diag, FileKind, Finding, Place, pointer};
use crate::load::{ComposeRead, Loaded};
use crate::model::{Compose, Stack, StackRegistry};
use crate::source::yaml::Node;
use crate::source::{SourceFile, Span};

pub const ID: &str = "V17";
pub const NAME: &str = "compose files load and agree with the registry";
pub const HELP: &str = "Every `desired.compose.file` is a normalised path inside the repository (no `..`, not absolute, no control characters, symbolic links not leading out) to a UTF-8 YAML file of at most 1 MiB with a non-empty `services:` mapping; service and container names are plain names, no control characters anywhere in the file; a `services:` section beside `file` names exactly the file's services, with the same container names and images. Images are pinned by V11's rule (no bare name, no moving tag; a digest is fine; `${VAR}` filled in from the stack's compose.env): a warning, not an error, since the file is the operator's as it runs (`--strict` fails on it).";

/// Run V17 over the typed stacks (`None`: STACK_REGISTRY failed its schema).
pub fn gate(loaded: &Loaded, stacks: Option<&StackRegistry>) -> GateResult {
    let Some(stacks) = stacks else {
        return skip(
            ID,
            NAME,
            HELP,
            "not checked: STACK_REGISTRY.yaml must pass its schema first".into(),
        );
    };
    let mut diags = Vec::new();
    let mut checked = 0;
    for (i, st) in stacks.stacks.iter().enumerate() {
        let Some(c) = st.desired.as_ref().and_then(|d| d.compose.as_ref()) else {
            continue;
        };
        let Some(file) = &c.file else { continue };
        checked += 1;
        let named = || {
            reg_diag(
                loaded,
                stack_place(i, &["file"], false),
                format!("stack `{}` names the compose file here", st.stack_id),
                "named here",
                "",
            )
        };
        match loaded.compose.get(file) {
            Some(ComposeRead::Loaded { source, tree }) => {
                let problems = check_file(source, tree);
                let (agree, pins) = if problems.is_empty() {
                    (
                        agreement(loaded, i, c, source, tree),
                        super::compose_images::warnings(ID, c, source, tree),
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                diags.extend(problems.into_iter().map(|d| d.with_related(named())));
                diags.extend(agree);
                diags.extend(pins);
            }
            Some(ComposeRead::NotYaml { source, problem }) => diags.push(
                file_diag(
                    source,
                    problem.span,
                    format!(
                        "{} is not a usable YAML file: {}",
                        source.name, problem.message
                    ),
                    "here",
                    &problem.help,
                )
                .with_related(named()),
            ),
            Some(ComposeRead::Refused { message, help }) => diags.push(reg_diag(
                loaded,
                stack_place(i, &["file"], false),
                message.clone(),
                "cannot be used",
                help,
            )),
            Some(ComposeRead::Missing { message, help }) => diags.push(reg_diag(
                loaded,
                stack_place(i, &["file"], false),
                message.clone(),
                "no such file",
                &missing_help(st, file, help),
            )),
            None => diags.push(reg_diag(
                loaded,
                stack_place(i, &["file"], false),
                format!("compose.file `{}` was not read", crate::safe::shown(file)),
                "not read",
                "load the registry from its repository (--repo DIR or --registry DIR)",
            )),
        }
    }
    if checked == 0 && diags.is_empty() {
        return skip(
            ID,
            NAME,
            HELP,
            "checked nothing: no stack names a compose `file`".into(),
        );
    }
    GateResult {
        checked,
        ..result(ID, NAME, HELP, diags)
    }
}

/// A missing file that is one of the stack's `compose_files`: those are
/// relative to the operator's workbench (`source_root`), not to this
/// repository.
fn missing_help(st: &Stack, file: &str, help: &str) -> String {
    let listed = st
        .compose_files
        .iter()
        .any(|f| f.trim_start_matches("./") == file);
    if listed {
        format!(
            "`{file}` is one of the stack's `compose_files`, which name files in the operator's workbench (`source_root`); copy the file into this repository (e.g. ops/staged/{}/docker-compose.yml) and name that",
            st.stack_id
        )
    } else {
        help.to_string()
    }
}

fn stack_place(i: usize, path: &[&str], key: bool) -> Place {
    let idx = i.to_string();
    let mut segs = vec!["stacks", idx.as_str(), "desired", "compose"];
    segs.extend_from_slice(path);
    let p = pointer(segs);
    if key {
        Place::key(FileKind::Stacks, p)
    } else {
        Place::value(FileKind::Stacks, p)
    }
}

fn reg_diag(loaded: &Loaded, place: Place, message: String, label: &str, help: &str) -> Diag {
    Diag::resolve(
        &Finding::error(ID, place, message).label(label).help(help),
        loaded,
    )
}

fn file_diag(src: &SourceFile, span: Span, message: String, label: &str, help: &str) -> Diag {
    Diag::at_span(ID, src, span, message, label, help)
}

/// `FILE:LINE:COL` of a span, for messages that name two places.
fn at(src: &SourceFile, span: Span) -> String {
    let lc = src.line_col(span.start);
    format!("{}:{}:{}", src.name, lc.line, lc.column)
}

/// What the file itself must be: no control characters, a mapping with a
/// non-empty `services:` mapping of plain names.
fn check_file(src: &SourceFile, tree: &Node) -> Vec<Diag> {
    let mut out = Vec::new();
    if let Some((pos, c)) = src.text.char_indices().find(|&(_, c)| {
        !matches!(c, '\n' | '\r' | '\t')
            && crate::safe::control_char(&c.to_string(), false).is_some()
    }) {
        out.push(file_diag(
            src,
            Span::new(pos, pos + c.len_utf8()),
            format!("{} holds {}", src.name, crate::safe::char_name(c)),
            "here",
            "remove it: spine installs the file verbatim and shows it in plans, where a control character could hide text",
        ).without_text());
        return out;
    }
    let services = tree
        .as_map()
        .and_then(|m| m.iter().find(|e| e.key == "services"));
    let Some(services) = services else {
        out.push(file_diag(
            src,
            Span::new(tree.span.start, tree.span.start),
            format!("{} has no `services:` mapping", src.name),
            "the file starts here",
            "a compose file holds `services:` with one entry per service",
        ));
        return out;
    };
    let entries = match services.value.as_map() {
        Some(e) if !e.is_empty() => e,
        _ => {
            out.push(file_diag(
                src,
                services.value.span,
                format!("`services` in {} is not a mapping of services", src.name),
                "here",
                "give each service its own key under `services:`, e.g. `web: {image: nginx:1.27}`",
            ));
            return out;
        }
    };
    for e in entries {
        if !crate::safe::name(&e.key) {
            out.push(file_diag(
                src,
                e.key_span,
                format!(
                    "compose service name `{}` is not a plain name",
                    crate::safe::shown(&e.key)
                ),
                "here",
                "use letters, digits, `-`, `_` and `.` (docker compose's own rule)",
            ));
            continue;
        }
        let Some(fields) = e.value.as_map() else {
            out.push(file_diag(
                src,
                e.value.span,
                format!("compose service `{}` is not a mapping", e.key),
                "here",
                "a service holds keys such as `image:` and `container_name:`",
            ));
            continue;
        };
        for f in fields {
            let ok = match (f.key.as_str(), &f.value.to_json()) {
                ("container_name", serde_json::Value::String(s)) => crate::safe::name(s),
                ("image", serde_json::Value::String(s)) => {
                    !s.is_empty() && !s.chars().any(char::is_whitespace)
                }
                ("container_name" | "image", _) => false,
                _ => true,
            };
            if !ok {
                out.push(file_diag(
                    src,
                    f.value.span,
                    format!(
                        "`{}` of compose service `{}` is not a plain {}",
                        f.key,
                        e.key,
                        if f.key == "image" {
                            "image reference"
                        } else {
                            "name"
                        }
                    ),
                    "here",
                    if f.key == "image" {
                        "write one image reference without white space, e.g. `nginx:1.27`"
                    } else {
                        "use letters, digits, `-`, `_` and `.`"
                    },
                ));
            }
        }
    }
    out
}

/// `services:` beside `file:` must say what the file says.
fn agreement(loaded: &Loaded, i: usize, c: &Compose, src: &SourceFile, tree: &Node) -> Vec<Diag> {
    let mut out = Vec::new();
    if c.services.is_empty() {
        return out;
    }
    let Some(services) = tree
        .as_map()
        .and_then(|m| m.iter().find(|e| e.key == "services"))
    else {
        return out;
    };
    let entries = services.value.as_map().unwrap_or_default();
    let reg_at = |path: &[&str], key: bool| {
        let d = reg_diag(loaded, stack_place(i, path, key), String::new(), "", "");
        format!("{}:{}:{}", d.file, d.at.line, d.at.column)
    };
    let in_file = |msg: String, span: Span, label: &str| file_diag(src, span, msg, label, "");
    for (name, cs) in &c.services {
        let Some(e) = entries.iter().find(|e| &e.key == name) else {
            out.push(
                reg_diag(
                    loaded,
                    stack_place(i, &["services", name], true),
                    format!(
                        "compose.services names `{name}`, which {} does not define (its services: {})",
                        at(src, services.key_span),
                        entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    "not in the compose file",
                    "remove it from `services:`, or add the service to the compose file; with `file:` the list may be left out entirely",
                )
                .with_related(in_file(
                    format!("the services of {}", src.name),
                    services.key_span,
                    "defined here",
                )),
            );
            continue;
        };
        let field = |k: &str| {
            e.value
                .as_map()
                .and_then(|m| m.iter().find(|f| f.key == k))
                .map(|f| (f.value.to_json().as_str().map(str::to_string), f.value.span))
        };
        let container = field("container_name");
        let effective = container
            .as_ref()
            .and_then(|(v, _)| v.clone())
            .unwrap_or_else(|| format!("{}-{name}-1", c.project));
        if let Some(want) = cs.container.as_ref().filter(|w| **w != effective) {
            let span = container.as_ref().map_or(e.key_span, |(_, s)| *s);
            out.push(
                reg_diag(
                    loaded,
                    stack_place(i, &["services", name, "container"], false),
                    format!(
                        "compose.services.{name}.container is `{want}`, but the container is `{effective}` in {}",
                        at(src, span)
                    ),
                    "differs from the compose file",
                    "make both the same, or drop `container:` here: the compose file decides (`container_name`, else compose's `PROJECT-SERVICE-1`)",
                )
                .with_related(in_file(format!("the container of `{name}`"), span, "here")),
            );
        }
        let image = field("image");
        let have = image.as_ref().and_then(|(v, _)| v.clone());
        if have.as_deref() != Some(cs.image.as_str()) {
            let span = image.as_ref().map_or(e.key_span, |(_, s)| *s);
            let what = have.map_or("no image".to_string(), |h| format!("the image `{h}`"));
            out.push(
                reg_diag(
                    loaded,
                    stack_place(i, &["services", name, "image"], false),
                    format!(
                        "compose.services.{name}.image is `{}`, but {} gives {what}",
                        cs.image,
                        at(src, span)
                    ),
                    "differs from the compose file",
                    "make both the same (the compose file is what runs), or drop the service from `services:`",
                )
                .with_related(in_file(format!("the image of `{name}`"), span, "here")),
            );
        }
    }
    for e in entries {
        if !c.services.contains_key(&e.key) {
            out.push(file_diag(
                src,
                e.key_span,
                format!(
                    "compose service `{}` is not in the registry's compose.services ({})",
                    e.key,
                    reg_at(&["services"], true)
                ),
                "not in the registry",
                "add it under `compose.services`, or leave `services:` out of the registry: with `file:` the services come from the file",
            ));
        }
    }
    out
}
