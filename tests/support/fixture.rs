//! Where the operator's real repository fixture is: `$SPINE_FIXTURE_DIR`, else
//! `CARGO_MANIFEST_DIR/../shared/fixtures/agentic-spine` (CI keeps a read-only
//! copy of shared/ beside the clone). Missing is a failure, never a skip.

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    let dir = std::env::var_os("SPINE_FIXTURE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/agentic-spine"),
        PathBuf::from,
    );
    assert!(
        dir.join("docs/governance/SERVICE_REGISTRY.yaml").is_file(),
        "the operator's repository fixture is missing at {} (set SPINE_FIXTURE_DIR, or put shared/ beside the clone)",
        dir.display()
    );
    dir
}
