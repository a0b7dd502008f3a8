//! One file per command: each wires the pipeline stages it needs.

pub mod apply;
pub mod completions;
pub mod doctor;
pub mod health;
pub mod import;
pub mod plan;
pub mod receipts;
pub mod record;
pub mod registry;
pub mod render;
pub mod restart_vms;
pub mod unlock;
pub mod verify;

use std::io::{IsTerminal, Write};

use crate::cli::{Color, SshArgs};
use crate::gather::ssh::SshOptions;

pub use crate::error::{Error, exit};

/// The ssh options every command that reaches hosts takes.
pub fn ssh_options(a: &SshArgs) -> SshOptions {
    SshOptions {
        config: a.ssh_config.clone(),
        connect_timeout: std::time::Duration::from_secs(a.connect_timeout.max(1)),
    }
}

/// Whether to colour what goes to stdout.
pub fn use_color(choice: Color) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Write to stdout; a closed pipe (`spine verify | head`) is not an error.
pub fn emit(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::msg(format!("cannot write output: {e}"))),
        Ok(()) => Ok(()),
    }
}

/// Global options every command sees.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// Progress messages: only on a terminal (stderr), never with --quiet.
    pub progress: bool,
}

impl Global {
    /// From the command line options and where stderr goes.
    pub fn new(color: Color, quiet: bool, verbose: bool) -> Global {
        Global {
            color: use_color(color),
            quiet,
            verbose,
            progress: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// A progress line on stderr, when a person is watching; stdout stays
    /// clean for pipes (`spine plan --format json | jq`).
    pub fn progress(&self, msg: &str) {
        if self.progress {
            eprintln!("{msg}");
        }
    }
}
