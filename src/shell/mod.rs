//! Every script spine sends to a host is a file under `scripts/`, embedded
//! at build time and rendered here with minijinja. Nothing else builds shell.
//!
//! The template syntax is chosen so that a script file is still a shell
//! script shellcheck can read: values are `@@name@@` (a plain word to the
//! shell; no filters, which would read as a pipe) and statements are whole
//! lines starting with `#%` (a comment to the shell), e.g.
//! `#% for s in scripts` ... `#% endfor`.
//!
//! Every value is single-quoted for a POSIX shell when it is written out,
//! whatever it holds. The reviewed exceptions, and the only ones:
//! - a [`Script`] rendered from one of these files, embedded in another
//!   (`@@ body @@` in `apply/root.sh`): its text is ours, its values were
//!   quoted when it was rendered;
//! - nothing else: minijinja's `safe` filter is disabled. Content written
//!   to a file travels base64-encoded (`content_b64`, encoded by the caller
//!   with [`b64`]) and is quoted like any value.

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::Engine;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

/// The script files, by name (their path under `scripts/`), found by
/// folder (build.rs): a new script is a new file, no list to keep.
pub const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/scripts.rs"));

/// Quote a value for a POSIX shell: always `'...'`, embedded quotes escaped.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A value as a person would type it in a command line shown to them: as it
/// is when it is a plain word, else quoted. For messages only; scripts quote
/// every value.
pub fn shown_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "=,./:_-@+%".contains(c));
    if plain { s.to_string() } else { quote(s) }
}

/// A script rendered from one of [`FILES`]. Its text may hold secret values
/// (an apply script writing `.env`): never log it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script(String);

impl Script {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// For embedding in another script: the one kind of value not quoted.
impl From<&Script> for Value {
    fn from(s: &Script) -> Value {
        Value::from_safe_string(s.0.clone())
    }
}

impl From<Script> for Value {
    fn from(s: Script) -> Value {
        Value::from_safe_string(s.0)
    }
}

/// A script file failed to render: a bug in spine (a missing parameter or a
/// file that does not parse), named so it can be fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("script scripts/{name} could not be rendered: {message}")]
pub struct ScriptError {
    pub name: String,
    pub message: String,
}

impl From<ScriptError> for String {
    fn from(e: ScriptError) -> String {
        e.to_string()
    }
}

fn syntax() -> SyntaxConfig {
    SyntaxConfig::builder()
        .variable_delimiters("@@", "@@")
        .block_delimiters("<%", "%>")
        .comment_delimiters("<#", "#>")
        .line_statement_prefix("#%")
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the script syntax is valid")
}

/// Write a value into a script: quoted, unless it is a rendered [`Script`].
fn format_value(out: &mut minijinja::Output, value: &Value) -> Result<(), Error> {
    if value.is_undefined() || value.is_none() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "a script parameter is missing",
        ));
    }
    let text = if value.is_safe() {
        value.as_str().unwrap_or_default().to_string()
    } else {
        quote(&value.to_string())
    };
    out.write_str(&text).map_err(Error::from)
}

/// Base64 of a text, for content that a script writes to a file.
pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn no_safe(_: Value) -> Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "`safe` is not allowed in scripts: every value is quoted (see src/shell/mod.rs)",
    ))
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_syntax(syntax());
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Custom("sh".into()));
    env.set_formatter(|out, _state, value| format_value(out, value));
    env.add_filter("safe", no_safe);
    for (name, source) in FILES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("scripts/{name} does not parse: {e}"));
    }
    env
});

/// Render the script file `name` with `ctx`; every value in it is quoted.
pub fn render(name: &str, ctx: Value) -> Result<Script, ScriptError> {
    let err = |e: Error| ScriptError {
        name: name.to_string(),
        message: error_chain(&e),
    };
    let t = ENV.get_template(name).map_err(err)?;
    t.render(ctx).map(Script).map_err(err)
}

fn error_chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let _ = write!(s, ": {c}");
        src = c.source();
    }
    s
}

/// For tests: `shell -n` (parse only, run nothing) accepts `script`, else
/// the test fails with the shell's complaint and the script.
#[cfg(test)]
pub fn assert_parses(shell: &str, script: &str) {
    let mut child = std::process::Command::new(shell)
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{shell} -n: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn run_sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn every_file_parses() {
        for (name, _) in FILES {
            ENV.get_template(name).unwrap();
        }
    }

    #[test]
    fn hostile_values_stay_one_word() {
        for v in [
            "a b",
            "it's",
            "$(echo pwned)",
            "`x`",
            "a\nb",
            "\\",
            "*",
            "-n",
            "",
            "@@ x @@",
            "'; rm -rf / #",
        ] {
            let s = render("recover/agent-addresses.sh", context! { vmid => v }).unwrap();
            let echoed = s.as_str().replacen("qm guest cmd ", "printf '%s|' ", 1);
            assert_eq!(
                run_sh(&echoed),
                format!("{v}|network-get-interfaces|"),
                "{v:?}"
            );
        }
    }

    #[test]
    fn missing_parameter_is_an_error() {
        let e = render("doctor/qm-config.sh", context! {}).unwrap_err();
        assert!(e.to_string().contains("scripts/doctor/qm-config.sh"), "{e}");
        let e = render("doctor/qm-config.sh", context! { vmid => () }).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn safe_is_refused() {
        let env = &*ENV;
        let e = env
            .render_str("x @@v|safe@@", context! { v => "$(id)" })
            .unwrap_err();
        assert!(e.to_string().contains("not allowed"), "{e}");
    }

    #[test]
    fn only_rendered_scripts_embed_unquoted() {
        let body = render("recover/agent-addresses.sh", context! { vmid => "203" }).unwrap();
        let s = render(
            "apply/root.sh",
            context! { backup => (), wait_timeout => (), body => &body },
        )
        .unwrap();
        assert!(
            s.as_str()
                .contains("\nqm guest cmd '203' network-get-interfaces\n"),
            "{}",
            s.as_str()
        );
        // A plain string with the same text is quoted, never run.
        let s = render(
            "apply/root.sh",
            context! { backup => (), wait_timeout => (), body => "qm config 203" },
        )
        .unwrap();
        assert!(s.as_str().contains("\n'qm config 203'\n"), "{}", s.as_str());
    }
}
