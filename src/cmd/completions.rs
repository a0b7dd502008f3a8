//! `spine completions SHELL` and `spine man`: both generated from the one
//! command line definition in `src/cli.rs`, so they cannot drift from it.

use std::path::Path;

use clap::CommandFactory;

use super::{Error, emit, exit};
use crate::cli::{Cli, ManArgs};

/// The completion script for `shell`, as text.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "spine", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    emit(&completion_script(shell))?;
    Ok(exit::OK)
}

/// The roff man page of spine, or of one of its commands (`spine-plan(1)`).
pub fn man_page(command: Option<&str>) -> Result<String, Error> {
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
                .ok_or_else(|| {
                    Error::msg(format!(
                        "no command `{name}` (commands: {})",
                        names.join(", ")
                    ))
                })?
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
        .map_err(|e| Error::msg(format!("cannot write the man page: {e}")))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Write spine.1 and spine-COMMAND.1 into `dir`; the files written.
pub fn write_pages(dir: &Path) -> Result<Vec<String>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::msg(format!("{}: {e}", dir.display())))?;
    let mut pages = vec![(String::from("spine.1"), man_page(None)?)];
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name().to_string();
        pages.push((format!("spine-{name}.1"), man_page(Some(&name))?));
    }
    let mut written = Vec::new();
    for (file, text) in pages {
        let path = dir.join(&file);
        std::fs::write(&path, text).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

pub fn man(args: &ManArgs, quiet: bool) -> Result<u8, Error> {
    if let Some(dir) = &args.out {
        let files = write_pages(dir)?;
        if !quiet {
            eprintln!("spine: wrote {}", files.join(", "));
        }
        return Ok(exit::OK);
    }
    let page = man_page(args.command.as_deref())?;
    emit(&page)?;
    Ok(exit::OK)
}
