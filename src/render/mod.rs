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
