//! `spine completions SHELL` and `spine man`: both generated from the one
//! command line definition in `src/cli.rs`, so they cannot drift from it.

use std::path::Path;

use clap::CommandFactory;

use super::{emit, exit};
use crate::cli::{Cli, ManArgs};

/// The completion script for `shell`, as text.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "spine", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn completions(shell: clap_complete::Shell) -> u8 {
    match emit(&completion_script(shell)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("spine: cannot write output: {e}");
            exit::COULD_NOT_RUN
        }
    }
}

/// The roff man page of spine, or of one of its commands (`spine-plan(1)`).
pub fn man_page(command: Option<&str>) -> Result<String, String> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let sub = cmd
                .find_subcommand(name)
                .ok_or_else(|| format!("no command `{name}` (commands: {})", names.join(", ")))?
                .clone();
            let full = format!("spine-{}", sub.get_name());
            sub.name(full.clone())
                .bin_name(full.replace('-', " "))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Write spine.1 and spine-COMMAND.1 into `dir`; the files written.
pub fn write_pages(dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut pages = vec![(String::from("spine.1"), man_page(None)?)];
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name().to_string();
        pages.push((format!("spine-{name}.1"), man_page(Some(&name))?));
    }
    let mut written = Vec::new();
    for (file, text) in pages {
        let path = dir.join(&file);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

pub fn man(args: &ManArgs, quiet: bool) -> u8 {
    if let Some(dir) = &args.out {
        return match write_pages(dir) {
            Ok(files) => {
                if !quiet {
                    eprintln!("spine: wrote {}", files.join(", "));
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("spine: {e}");
                exit::COULD_NOT_RUN
            }
        };
    }
    match man_page(args.command.as_deref()).map(|p| emit(&p)) {
        Ok(Ok(())) => exit::OK,
        Ok(Err(e)) => {
            eprintln!("spine: cannot write output: {e}");
            exit::COULD_NOT_RUN
        }
        Err(e) => {
            eprintln!("spine: {e}");
            exit::COULD_NOT_RUN
        }
    }
}
