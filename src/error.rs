//! The one error type of a command, with its exit code. Commands return
//! `Result<u8, Error>`: `Ok` is the exit code of a run that ran (0, or 1 for
//! a failed gate, a failed apply...), `Err` is a run that could not go on.
//! `main` prints the error once and exits with [`Error::exit_code`]; no
//! command prints its own error.
//!
//! A leaf module: it names no other part of spine, so every stage may use
//! it. A stage returns its own typed error (`RenderError`, `PlanFileError`,
//! `TrustError`, `ReceiptError`, the loader's `NotFound`...), which declares
//! itself a [`StageError`]: `?` in a command turns it into [`Error`] with
//! the stage's exit code, keeping its diagnostic (code, help, labels) for
//! miette to show, or its message as `spine: MESSAGE`.

use std::fmt::Display;

use miette::Diagnostic;

/// Exit codes shared by every command (README, "Exit codes").
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const COULD_NOT_RUN: u8 = 2;
}

/// Why a command could not run.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    /// A stage's diagnostic (render, plan file, engine...): shown by miette
    /// with its code, help and source labels.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Stage(Box<dyn Diagnostic + Send + Sync + 'static>),
    /// A plain message: printed as `spine: MESSAGE`.
    #[error("{0}")]
    CouldNotRun(String),
    /// What went wrong was already shown in full (the registry's
    /// diagnostics, a report): nothing more is printed, only the code.
    #[error("(already reported; exit {0})")]
    Reported(u8),
    /// Another error with another exit code (`plan --detailed-exitcode`
    /// keeps 2 for "changes to make", so an error there is 1).
    #[error("{1}")]
    Coded(u8, Box<Error>),
}

/// A stage's own error: how it enters [`Error`] (by `?`, through the
/// blanket `From`) and the exit code it stops the run with.
pub trait StageError: std::error::Error + Send + Sync + Sized + 'static {
    /// The process exit code when the run stops on this error.
    fn exit_code(&self) -> u8 {
        exit::COULD_NOT_RUN
    }
    /// The one error it becomes: `spine: MESSAGE` unless the stage has a
    /// diagnostic to show (then [`Error::stage`]).
    fn into_error(self) -> Error {
        Error::CouldNotRun(self.to_string())
    }
}

impl<E: StageError> From<E> for Error {
    fn from(e: E) -> Error {
        let code = e.exit_code();
        let err = e.into_error();
        if code == exit::COULD_NOT_RUN {
            err
        } else {
            err.with_code(code)
        }
    }
}

impl Error {
    /// A stage's error, keeping its diagnostic.
    pub fn stage<E: Diagnostic + Send + Sync + 'static>(e: E) -> Error {
        Error::Stage(Box::new(e))
    }

    /// A message (what failed and what to do) for `spine: MESSAGE`.
    pub fn msg(message: impl Display) -> Error {
        Error::CouldNotRun(message.to_string())
    }

    /// The same error, exiting with `code`.
    pub fn with_code(self, code: u8) -> Error {
        Error::Coded(code, Box::new(self))
    }

    /// The process exit code: 2 (could not run) unless the run said otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Reported(code) | Error::Coded(code, _) => *code,
            Error::Stage(_) | Error::CouldNotRun(_) => exit::COULD_NOT_RUN,
        }
    }

    /// What `main` prints on stderr: the diagnostic, `spine: MESSAGE`, or
    /// nothing when it was shown already.
    pub fn shown(self) -> Option<String> {
        match self {
            Error::Stage(d) => Some(format!("{:?}", miette::Report::new_boxed(d))),
            Error::CouldNotRun(m) => Some(format!("spine: {m}")),
            Error::Reported(_) => None,
            Error::Coded(_, inner) => inner.shown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("template x.j2, line 3: undefined value")]
    #[diagnostic(code(spine::render::template), help("add it to the registry"))]
    struct StageError;

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("plan file p.json was modified after it was written")]
    #[diagnostic(code(spine::plan::checksum), help("make a new plan"))]
    struct StageErrorDiag;
    impl super::StageError for StageErrorDiag {
        fn into_error(self) -> Error {
            Error::stage(self)
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("no receipt `7` in receipts")]
    struct Missing;
    impl super::StageError for Missing {
        fn exit_code(&self) -> u8 {
            exit::FAILED
        }
    }

    fn run(fail: bool) -> Result<u8, Error> {
        if fail {
            Err(Missing)?;
        }
        Err(StageErrorDiag)?
    }

    /// `?` turns a stage's error into the one error with its exit code.
    #[test]
    fn a_stage_error_converts_with_its_code() {
        let e = run(true).unwrap_err();
        assert_eq!(e.exit_code(), exit::FAILED);
        assert_eq!(
            e.shown().as_deref(),
            Some("spine: no receipt `7` in receipts")
        );
        let e = run(false).unwrap_err();
        assert_eq!(e.exit_code(), exit::COULD_NOT_RUN);
        let shown = e.shown().unwrap();
        assert!(
            shown.contains("was modified") && shown.contains("make a new plan"),
            "{shown}"
        );
    }

    #[test]
    fn each_error_has_its_code_and_is_shown_once() {
        let e = Error::stage(StageError);
        assert_eq!(e.exit_code(), exit::COULD_NOT_RUN);
        let shown = e.shown().unwrap();
        assert!(shown.contains("template x.j2, line 3"), "{shown}");
        assert!(shown.contains("add it to the registry"), "{shown}");
        let e = Error::msg("no registry found");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.shown().as_deref(), Some("spine: no registry found"));
        let e = Error::Reported(exit::FAILED);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.shown(), None);
        let e = Error::msg("cannot start").with_code(exit::FAILED);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.shown().as_deref(), Some("spine: cannot start"));
    }
}
