//! `spine render`: the desired files of hosts, printed or written out.

use super::{Error, Global, emit, exit, registry};
use crate::cli::RenderArgs;
use crate::kinds;
use crate::render::{self, Templates};

pub fn run(args: &RenderArgs, g: Global) -> Result<u8, Error> {
    let (_, reg) = registry::checked(&args.registry, g.color)?;
    let templates = Templates::new(args.templates.templates.as_deref())?;
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
        let state = kinds::render_host(&reg, host, &templates)?;
        if let Some(out) = &args.out {
            let paths = kinds::write_out(&state, out)
                .map_err(|e| Error::msg(format!("cannot write under {}: {e}", out.display())))?;
            for p in paths {
                text.push_str(&format!("wrote {}\n", p.display()));
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
    emit(&text)?;
    Ok(exit::OK)
}
