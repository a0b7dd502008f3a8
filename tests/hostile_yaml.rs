//! Hostile registry files cannot knock over the CI gate (`spine verify`): each
//! is generated here (nothing huge is committed), replaces SERVICE_REGISTRY.yaml
//! of a copy of the shipped registry, and must end in a clear V00 error naming
//! file:line:col with exit 2, quickly and without a crash. Small versions of
//! these inputs are seeds of the fuzz target (fuzz/seeds/load/hostile-*).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const FILE: &str = "SERVICE_REGISTRY.yaml";

/// A copy of the shipped registry with SERVICE_REGISTRY.yaml replaced.
fn registry(tmp: &Path, services: &[u8]) -> PathBuf {
    let dir = tmp.join("registry");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["STACK_REGISTRY.yaml", "services.health.yaml"] {
        std::fs::copy(support::repo().join("registry").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join(FILE), services).unwrap();
    dir
}

/// `spine verify --format json` on a registry with this SERVICE_REGISTRY.yaml.
fn verify(services: &[u8]) -> (Output, serde_json::Value, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path(), services);
    let started = Instant::now();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_spine"))
        .args(["verify", "--format", "json", "--registry"])
        .arg(&reg)
        .env("SPINE_RECEIPTS", tmp.path().join("receipts"))
        .env_remove("SPINE_REGISTRY")
        .output()
        .expect("run spine");
    let took = started.elapsed();
    let json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", support::text(&o)));
    (o, json, took)
}

/// The one V00 diagnostic of a refused file: exit 2, status ERROR, the file
/// named; returns (line, column, message).
fn refused(services: &[u8]) -> (u64, u64, String) {
    let (o, json, took) = verify(services);
    assert_eq!(o.status.code(), Some(2), "{json:#}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(json["summary"]["status"], "ERROR", "{json:#}");
    let diags = json["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1, "{json:#}");
    let d = &diags[0];
    assert_eq!(d["gate"], "V00");
    assert!(d["file"].as_str().unwrap().ends_with(FILE), "{d}");
    (
        d["line"].as_u64().unwrap(),
        d["column"].as_u64().unwrap(),
        d["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn deep_block_nesting_is_refused_at_its_place() {
    // 100,000 nested block sequences overflowed the stack (exit 134).
    let text = format!("services:\n  x:\n    {}x\n", "- ".repeat(100_000));
    let (line, col, msg) = refused(text.as_bytes());
    assert_eq!(msg, "mappings and lists nest deeper than 64 levels");
    // Two mappings, then the 62 sequences allowed: the 63rd crosses the limit.
    assert_eq!((line, col), (3, 5 + 2 * 62));
}

#[test]
fn deep_flow_nesting_is_refused() {
    let text = format!(
        "services: {}1{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (line, col, msg) = refused(text.as_bytes());
    assert_eq!(msg, "mappings and lists nest deeper than 64 levels");
    assert_eq!(line, 1);
    assert!(col > 11, "{col}");
}

#[test]
fn a_string_behind_many_aliases_is_refused() {
    // 1 MiB behind 900 aliases took 2.7 GB.
    let text = format!(
        "services: {{}}\nbig: &a \"{}\"\nmany: [{}]\n",
        "x".repeat(1 << 20),
        vec!["*a"; 900].join(", ")
    );
    let (line, _, msg) = refused(text.as_bytes());
    assert_eq!(line, 3);
    assert!(msg.contains("expands to more than 16 MiB of text"), "{msg}");
}

#[test]
fn a_file_over_the_size_limit_is_refused_by_name() {
    let mut text = b"services: {}\n".to_vec();
    text.resize(spine::source::yaml::MAX_FILE_BYTES + 1, b'#');
    let (o, json, _) = verify(&text);
    assert_eq!(o.status.code(), Some(2), "{json:#}");
    let d = &json["diagnostics"][0];
    assert_eq!(d["gate"], "V00");
    let msg = d["message"].as_str().unwrap();
    assert!(
        msg.ends_with(
            "SERVICE_REGISTRY.yaml: the file is larger than the limit of 4 MiB (4194304 bytes)"
        ),
        "{msg}"
    );
    // Exactly at the limit the file is read (and then fails for what it is).
    text.truncate(spine::source::yaml::MAX_FILE_BYTES);
    let (_, json, _) = verify(&text);
    assert!(
        !json.to_string().contains("larger than the limit"),
        "{json}"
    );
}

#[test]
fn forty_thousand_keys_in_a_closed_section_are_fast() {
    // Each unknown key is a diagnostic; finding each key's place scanned the
    // mapping (and miette scanned the file) from the start: 9 s in json,
    // 2 minutes in text, for 40,000 keys.
    let shipped = std::fs::read_to_string(support::repo().join("registry").join(FILE)).unwrap();
    let at = shipped
        .find("\n    desired:\n")
        .expect("a host's desired block")
        + 14;
    let typos: String = (0..40_000)
        .map(|i| format!("      typo{i}: {i}\n"))
        .collect();
    let text = format!("{}{typos}{}", &shipped[..at], &shipped[at..]);
    let (o, json, took) = verify(text.as_bytes());
    assert_eq!(o.status.code(), Some(1), "{}", support::text(&o));
    assert_eq!(json["diagnostics"].as_array().unwrap().len(), 40_000);
    assert!(took < Duration::from_secs(15), "json took {took:?}");

    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path(), text.as_bytes());
    let started = Instant::now();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_spine"))
        .args(["verify", "--color", "never", "--registry"])
        .arg(&reg)
        .env("SPINE_RECEIPTS", tmp.path().join("receipts"))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        support::text(&o).contains("unknown key `typo39999`"),
        "text output lacks the last key"
    );
    assert!(took < Duration::from_secs(15), "text took {took:?}");
}

#[test]
fn the_fuzz_seeds_of_these_inputs_are_refused_as_expected() {
    // Small versions of each hostile input are fuzz seeds (selector byte 0:
    // they replace SERVICE_REGISTRY.yaml); loaded as the fuzz target loads them.
    let seeds = support::repo().join("fuzz/seeds/load");
    for (seed, expected) in [
        ("hostile-nest-block-0", Some("nest deeper than 64 levels")),
        ("hostile-nest-flow-0", Some("nest deeper than 64 levels")),
        ("hostile-alias-deep-0", Some("nest deeper than 64 levels")),
        (
            "hostile-alias-nodes-0",
            Some("expands to more than 1000000 nodes"),
        ),
        (
            "hostile-alias-bytes-0",
            Some("expands to more than 16 MiB of text"),
        ),
        ("hostile-many-keys-0", None),
    ] {
        let bytes = std::fs::read(seeds.join(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        assert!(bytes.len() < 16 << 10, "{seed}: seeds stay small");
        assert_eq!(
            bytes[0], 0,
            "{seed}: selector byte 0 (SERVICE_REGISTRY.yaml)"
        );
        let text = String::from_utf8(bytes[1..].to_vec()).unwrap();
        let files = spine::load::EMBEDDED.map(|(kind, shipped)| {
            let body = if kind == spine::diag::FileKind::Services {
                text.clone()
            } else {
                shipped.to_string()
            };
            (kind, format!("fuzz/{}", kind.file_name()), body)
        });
        let loaded = spine::load::load_texts("fuzz", files);
        let messages: Vec<&str> = loaded.failures.iter().map(|d| d.message.as_str()).collect();
        match expected {
            Some(m) => assert!(
                messages.len() == 1 && messages[0].contains(m),
                "{seed}: {messages:?}"
            ),
            None => {
                assert!(messages.is_empty(), "{seed}: {messages:?}");
                let json = &loaded.docs[&spine::diag::FileKind::Services].json;
                assert_eq!(json.as_object().unwrap().len(), 1001, "{seed}");
            }
        }
    }
}
