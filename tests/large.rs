//! A large generated registry (tests/support/generate.rs: 200 hosts, 1,000
//! services, 200 stacks and health endpoints) verifies cleanly: exit 0 and
//! every gate PASS, through the binary and through the library.

mod support;

use serde_json::Value;
use support::generate;

#[test]
fn large_registry_passes_every_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = generate::write(tmp.path(), generate::LARGE);
    let services = std::fs::read_to_string(reg.join("SERVICE_REGISTRY.yaml")).unwrap();
    assert_eq!(
        services.matches("\n    host: ").count(),
        1000,
        "1,000 services"
    );
    assert!(services.lines().count() > 10_000, "a registry of real size");

    let receipts = tmp.path().join("receipts");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_spine"))
        .current_dir(tmp.path())
        .args(["verify", "--registry", "registry", "--format", "json"])
        .env("SPINE_RECEIPTS", &receipts)
        .env_remove("SPINE_REGISTRY")
        .output()
        .expect("run spine");
    let json: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", support::text(&o)));
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    let gates = json["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 16);
    for g in gates {
        assert_eq!(g["status"], "PASS", "{g}");
    }
    assert_eq!(json["diagnostics"].as_array().unwrap().len(), 0);
}

#[test]
fn large_registry_is_what_it_claims() {
    // Through the library: the typed registry holds what the generator wrote.
    let tmp = tempfile::tempdir().unwrap();
    let reg = generate::write(tmp.path(), generate::LARGE);
    let loaded = spine::load::load_dir(&reg);
    assert!(loaded.failures.is_empty());
    let json = &loaded.docs[&spine::diag::FileKind::Services].json;
    assert_eq!(json["services"].as_object().unwrap().len(), 1000);
    assert_eq!(json["hosts"].as_object().unwrap().len(), 200);
    let stacks = &loaded.docs[&spine::diag::FileKind::Stacks].json;
    assert_eq!(stacks["stacks"].as_array().unwrap().len(), 200);
    let health = &loaded.docs[&spine::diag::FileKind::Health].json;
    assert_eq!(health["endpoints"].as_array().unwrap().len(), 200);
    let outcome = spine::verify::run(&loaded);
    let bad: Vec<_> = outcome
        .gates
        .iter()
        .filter(|g| g.status != spine::verify::Status::Pass)
        .map(|g| (g.id, g.diags.first().map(|d| d.message.clone())))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn a_broken_large_registry_is_caught() {
    // The generator's output is not passing by accident: one bad fact fails.
    let tmp = tempfile::tempdir().unwrap();
    let reg = generate::write(tmp.path(), generate::LARGE);
    let path = reg.join("SERVICE_REGISTRY.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("    port: 8001\n", "    port: 8000\n", 1),
    )
    .unwrap();
    let outcome = spine::verify::run(&spine::load::load_dir(&reg));
    let failing = outcome.failing_ids();
    assert_eq!(failing, vec!["V08"], "a duplicate port fails V08 only");
}
