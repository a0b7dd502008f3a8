//! Fuzz the YAML loader and every verify stage after it.
//!
//! Input: the first byte picks which registry file the rest replaces (the
//! other two are the shipped registry's), so the semantic gates run on
//! whatever the schema lets through. Then every output format is rendered,
//! which maps each span to a line and column and draws it with miette.
//! Anything may be reported; nothing may panic, hang or overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spine::diag::FileKind;
use spine::load::{self, EMBEDDED};
use spine::verify::{self, output};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // The loader rejects non-UTF-8 before parsing; a lossy copy still
    // exercises the parser with every byte pattern.
    let text = String::from_utf8_lossy(rest).into_owned();
    let target = FileKind::ALL[usize::from(pick) % 3];
    let files = EMBEDDED.map(|(kind, shipped)| {
        let body = if kind == target {
            text.clone()
        } else {
            shipped.to_string()
        };
        (kind, format!("fuzz/{}", kind.file_name()), body)
    });
    let loaded = load::load_texts("fuzz", files);
    for d in &loaded.failures {
        let _ = output::render_diag(d, pick & 0x80 != 0);
    }
    if !loaded.failures.is_empty() {
        let _ = output::json_failures(&loaded.origin, &loaded.failures);
        return;
    }
    let outcome = verify::run(&loaded);
    let strict = pick & 0x40 != 0;
    let _ = output::text(&outcome, strict, pick & 0x80 != 0, false);
    let _ = output::json(&outcome, strict);
    let _ = output::junit(&outcome, strict);
    let _ = output::github(&outcome, strict);
    let _ = loaded.hash();
});
