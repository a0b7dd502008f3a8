//! `spine verify`: load, validate, report. Offline and fast: the CI gate.

use super::{Global, emit, exit};
use crate::cli::VerifyArgs;
use crate::load::{self, Origin};
use crate::verify::output::{self, Format};
use crate::verify::{self, Status};

pub fn run(args: &VerifyArgs, g: Global) -> u8 {
    if args.list_gates {
        let mut s = String::new();
        for (id, name, help) in verify::catalogue() {
            s.push_str(&format!("{id}  {name}\n     {help}\n"));
        }
        return finish(emit(&s), exit::OK);
    }
    let origin = Origin::choose(args.registry.registry.clone());
    let loaded = load::load(&origin);
    if !loaded.failures.is_empty() {
        // Could not run: every file that failed to load, then exit 2.
        let text = match args.format {
            Format::Json => output::json_failures(&loaded.origin, &loaded.failures),
            _ => {
                let mut s = String::new();
                for d in &loaded.failures {
                    s.push_str(&output::render_diag(d, g.color));
                    s.push('\n');
                }
                s.push_str(&format!(
                    "status: ERROR ({} of 3 registry files could not be read from {})\n",
                    loaded.failures.len().min(3),
                    loaded.origin
                ));
                s
            }
        };
        if args.format == Format::Json {
            let _ = emit(&text);
        } else {
            eprint!("{text}");
        }
        return exit::COULD_NOT_RUN;
    }
    let outcome = verify::run(&loaded);
    let text = match args.format {
        Format::Text => output::text(&outcome, args.strict, g.color, g.quiet),
        Format::Json => output::json(&outcome, args.strict),
        Format::Junit => output::junit(&outcome, args.strict),
        Format::Github => output::github(&outcome, args.strict),
    };
    let failed =
        outcome.count(Status::Fail) > 0 || (args.strict && outcome.count(Status::Warn) > 0);
    finish(emit(&text), if failed { exit::FAILED } else { exit::OK })
}

fn finish(r: std::io::Result<()>, code: u8) -> u8 {
    match r {
        Ok(()) => code,
        Err(e) => {
            eprintln!("spine: cannot write output: {e}");
            exit::COULD_NOT_RUN
        }
    }
}
