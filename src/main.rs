use std::process::ExitCode;

use clap::Parser;
use spine::cli::{Cli, Command};
use spine::cmd::{self, Global};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; usage mistakes are "could not run".
            return ExitCode::from(if e.use_stderr() {
                cmd::exit::COULD_NOT_RUN
            } else {
                cmd::exit::OK
            });
        }
    };
    let g = Global::new(cli.color, cli.quiet, cli.verbose);
    let result = match &cli.command {
        Command::Verify(args) => cmd::verify::run(args, g),
        Command::Render(args) => cmd::render::run(args, g),
        Command::Plan(args) => cmd::plan::run(args, g),
        Command::Receipts(c) => cmd::receipts::run(c, g),
        Command::Apply(args) => cmd::apply::run(args, g),
        Command::Unlock(args) => cmd::unlock::run(args, g),
        Command::Doctor(args) => cmd::doctor::run(args, g),
        Command::Completions { shell } => cmd::completions::completions(*shell),
        Command::Man(args) => cmd::completions::man(args, g.quiet),
        Command::Health(args) => cmd::health::run(args, g),
        Command::Import(args) => cmd::import::run(args, g),
    };
    // The one place an error is printed.
    ExitCode::from(result.unwrap_or_else(|e| {
        let code = e.exit_code();
        if let Some(text) = e.shown() {
            eprintln!("{text}");
        }
        code
    }))
}
