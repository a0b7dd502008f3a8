//! `spine render`: the desired files of hosts, printed or written out.

use super::{Global, emit, exit, registry};
use crate::cli::RenderArgs;
use crate::kinds;
use crate::render::{self, Templates};

pub fn run(args: &RenderArgs, g: Global) -> u8 {
    let (_, reg) = match registry::checked(&args.registry, g.color) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let templates = match Templates::new(args.templates.templates.as_deref()) {
        Ok(t) => t,
        Err(e) => return report(e),
    };
    let hosts = if args.hosts.is_empty() {
        reg.services
            .as_ref()
            .map(render::managed_hosts)
            .unwrap_or_default()
    } else {
        args.hosts.clone()
    };
    let mut text = String::new();
    for host in &hosts {
        let state = match kinds::render_host(&reg, host, &templates) {
            Ok(s) => s,
            Err(e) => return report(e),
        };
        if let Some(out) = &args.out {
            match kinds::write_out(&state, out) {
                Ok(paths) => {
                    for p in paths {
                        text.push_str(&format!("wrote {}\n", p.display()));
                    }
                }
                Err(e) => {
                    eprintln!("spine: cannot write under {}: {e}", out.display());
                    return exit::COULD_NOT_RUN;
                }
            }
            continue;
        }
        for r in &state.resources {
            let mut head = format!(
                "--- {} on {}: {}",
                r.kind,
                r.on,
                r.path.as_deref().unwrap_or(&r.id)
            );
            if let (Some(mode), Some(owner)) = (r.mode, &r.owner) {
                head.push_str(&format!(" (mode {mode:04o}, owner {owner})"));
            }
            text.push_str(&head);
            text.push('\n');
            text.push_str(&r.shown_content());
            if !r.content.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    match emit(&text) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("spine: cannot write output: {e}");
            exit::COULD_NOT_RUN
        }
    }
}

fn report(e: render::RenderError) -> u8 {
    eprintln!("{:?}", miette::Report::new(e));
    exit::COULD_NOT_RUN
}
