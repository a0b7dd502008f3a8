//! Stage 3: render. The templates in `templates/` (strict minijinja: an
//! undefined value is an error naming the template, line and expression)
//! and the context a kind renders a host from. The kinds render themselves
//! (`kinds::render_host` asks each kind for its resources).

use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};

use crate::model::{Host, ServiceRegistry, StackRegistry};

/// The templates shipped with spine, compiled into the binary: every file under `templates/`, by path (found by folder: build.rs).
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Text standing for a secret in rendered files until apply fills it in.
pub fn secret_placeholder(key: &str) -> String {
    format!("<<spine-secret:{key}>>")
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RenderError {
    #[error("template {name}, line {line}: {message}")]
    #[diagnostic(code(spine::render::template), help("{help}"))]
    Template {
        name: String,
        line: usize,
        message: String,
        help: String,
    },
    #[error("cannot read template directory {dir}: {source}")]
    #[diagnostic(
        code(spine::render::templates_dir),
        help(
            "pass --templates DIR holding the template files, or leave it out to use the built-in ones"
        )
    )]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown host `{0}`")]
    #[diagnostic(code(spine::render::host), help("{1}"))]
    UnknownHost(String, String),
    #[error(transparent)]
    #[diagnostic(
        code(spine::render::script),
        help("a script under scripts/ does not render: a bug in spine, please report it")
    )]
    Script(#[from] crate::shell::ScriptError),
    #[error("the registry does not pass `spine verify`: {0}")]
    #[diagnostic(
        code(spine::render::registry),
        help("run `spine verify` and fix what it reports")
    )]
    Registry(String),
}

impl crate::error::StageError for RenderError {
    fn into_error(self) -> crate::error::Error {
        crate::error::Error::stage(self)
    }
}

/// The template environment: built-ins, optionally overridden from a folder.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(dir: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default syntax"),
        );
        env.add_function("secret", |key: String| secret_placeholder(&key));
        env.add_filter("yaml", yaml_scalar);
        env.add_filter("line", one_line);
        env.add_filter("comment", comment_text);
        for (name, text) in BUILTIN {
            let text = match dir {
                Some(d) => match std::fs::read_to_string(d.join(name)) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (*text).to_string(),
                    Err(source) => {
                        return Err(RenderError::Dir {
                            dir: d.join(name),
                            source,
                        });
                    }
                },
                None => (*text).to_string(),
            };
            env.add_template_owned(name.to_string(), text)
                .map_err(|e| template_error(&e))?;
        }
        Ok(Self { env })
    }

    /// Render one template with a serialisable context.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, RenderError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&e))?;
        t.render(ctx).map_err(|e| template_error(&e))
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }
}

/// Escaping for the formats spine renders, so a registry value stays a value
/// even if it slipped past verify (gate V16 refuses the same values first).
///
/// `yaml`: a YAML scalar that is always one string value. A plain word of
/// letters, digits and `._/@+:-` (an image, an address, an interface) stays
/// as it is, so files look as before and as cloud-init writes them; anything
/// else (white space, a newline, `#`, `{`, a quote, a word YAML would read as
/// a number, boolean or null) becomes a double-quoted scalar (JSON string
/// syntax, which YAML reads the same): a newline inside stays `\n`, never
/// a new key.
fn yaml_scalar(v: minijinja::Value) -> String {
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    if plain_yaml(&text) {
        text
    } else {
        serde_json::to_string(&text).expect("a string serialises")
    }
}

fn plain_yaml(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/');
    first_ok
        && !s.ends_with(':')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/@+:-".contains(&b))
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o")
}

/// `line`: a value that must stay on its line (a crontab line, a `.env`
/// line, a command argument): refused, not rewritten, when it holds a
/// control character other than a tab.
fn one_line(v: minijinja::Value) -> Result<String, minijinja::Error> {
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    match crate::safe::control_char(&text, true) {
        None => Ok(text),
        Some(c) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "the value `{}` holds {}, which would end its line: refused (spine verify gate V16 names it in the registry)",
                crate::safe::shown(&text),
                crate::safe::char_name(c)
            ),
        )),
    }
}

/// `comment`: free text in a comment line (a cron job's description): every
/// control character becomes a space, so it can never end the line and
/// whatever follows (a fake `# END spine managed block`) stays in the comment.
fn comment_text(v: minijinja::Value) -> String {
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    text.chars()
        .map(|c| {
            if crate::safe::control_char(&c.to_string(), false).is_some() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn template_error(e: &minijinja::Error) -> RenderError {
    let name = e.name().unwrap_or("<unknown>").to_string();
    let line = e.line().unwrap_or(0);
    let snippet = match (e.template_source(), e.range()) {
        (Some(src), Some(r)) => src
            .get(r)
            .map(|s| format!(" (at `{s}`)"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let message = format!(
        "{}{snippet}",
        e.detail()
            .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()))
    );
    let help = if e.kind() == minijinja::ErrorKind::UndefinedError {
        "the template uses a value the registry does not give: add it to the registry's `desired` section or guard it with `{% if ... %}`".to_string()
    } else if e.kind() == minijinja::ErrorKind::InvalidOperation {
        "fix the registry value: `spine verify` names it with file and line".to_string()
    } else {
        "fix the template syntax".to_string()
    };
    RenderError::Template {
        name,
        line,
        message,
        help,
    }
}

/// What a kind needs to render one host.
pub struct RenderCx<'a> {
    pub host_id: &'a str,
    pub host: &'a Host,
    pub services: &'a ServiceRegistry,
    pub stacks: &'a StackRegistry,
    pub templates: &'a Templates,
}

impl RenderCx<'_> {
    /// The user spine logs in as on this host.
    pub fn ssh_user(&self) -> String {
        self.host
            .desired
            .as_ref()
            .and_then(|d| d.ssh_user.clone())
            .or_else(|| self.host.ssh_user.clone())
            .unwrap_or_else(|| "root".into())
    }
}

/// Hosts with a `desired` section, in registry order.
pub fn managed_hosts(reg: &ServiceRegistry) -> Vec<String> {
    reg.hosts
        .iter()
        .filter(|(_, h)| h.desired.is_some())
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars() {
        for plain in [
            "ghcr.io/immich-app/immich-server:v2.4.1",
            "10.203.1.1",
            "10.203.1.203/24",
            "eth0",
            "52:54:00:12:02:30",
            "immich_server",
        ] {
            assert_eq!(yaml_scalar(plain.into()), plain);
        }
        for (v, quoted) in [
            (
                "redis:6\n    privileged: true",
                "\"redis:6\\n    privileged: true\"",
            ),
            ("a b", "\"a b\""),
            ("true", "\"true\""),
            ("1.5", "\"1.5\""),
            ("x:", "\"x:\""),
            ("#x", "\"#x\""),
            ("", "\"\""),
        ] {
            assert_eq!(yaml_scalar(v.into()), quoted, "{v}");
        }
    }
}
