//! How fast `spine verify` is (README "Speed"): the shipped registry, the
//! operator's real repository (`../shared/fixtures/agentic-spine`, or
//! `$SPINE_FIXTURE_DIR`) and a generated one of 200 hosts / 1,000 services,
//! each as load only, schema gates only, and load + every gate; then the
//! `spine` binary end to end (process start, load, gates, output, receipt).
//!
//! `cargo bench --bench verify` (criterion; HTML-less, numbers on stdout).

#[path = "../tests/support/fixture.rs"]
mod fixture;
#[path = "../tests/support/generate.rs"]
mod generate;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use spine::load::{self, Files, Loaded, Origin};
use spine::verify;

fn schema_only(loaded: &Loaded) -> usize {
    loaded
        .docs
        .iter()
        .map(|(kind, doc)| verify::schema::check(*kind, &doc.json, &doc.tree).len())
        .sum()
}

fn in_process(c: &mut Criterion, label: &str, dir: &Path) {
    let loaded = load::load_dir(dir);
    assert!(loaded.failures.is_empty(), "{label}: the registry loads");
    assert_eq!(
        verify::run(&loaded).failing_ids(),
        Vec::<&str>::new(),
        "{label}: every gate passes"
    );
    let mut g = c.benchmark_group(label);
    g.bench_function("load", |b| b.iter(|| load::load_dir(dir)));
    g.bench_function("schema", |b| b.iter(|| schema_only(&loaded)));
    g.bench_function("gates (schema + semantic)", |b| {
        b.iter(|| verify::run(&loaded))
    });
    g.bench_function("full (load + gates)", |b| {
        b.iter(|| verify::run(&load::load_dir(dir)))
    });
    g.finish();
}

/// The operator's repository: it loads, and gives exactly the failures
/// tests/agentic_spine.rs lists (V06, V07, V12).
fn operator_repo(c: &mut Criterion, dir: &Path, receipts: &Path) {
    let origin = Origin::Files(Files::repo(dir));
    let loaded = load::load(&origin);
    assert!(
        loaded.failures.is_empty(),
        "the operator's repository loads"
    );
    assert_eq!(verify::run(&loaded).failing_ids(), ["V06", "V07", "V12"]);
    let mut g = c.benchmark_group("agentic-spine");
    g.bench_function("load", |b| b.iter(|| load::load(&origin)));
    g.bench_function("gates (schema + semantic)", |b| {
        b.iter(|| verify::run(&loaded))
    });
    g.bench_function("full (load + gates)", |b| {
        b.iter(|| verify::run(&load::load(&origin)))
    });
    g.finish();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_spine"))
            .args(["verify", "--color", "never"])
            .current_dir(dir)
            .env("SPINE_RECEIPTS", receipts)
            .env_remove("SPINE_REGISTRY")
            .env_remove("SPINE_REPO")
            .env_remove("SPINE_SIGNING_KEY")
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .expect("run spine")
    };
    assert_eq!(
        run().status.code(),
        Some(1),
        "spine verify finds the 3 errors"
    );
    let mut g = c.benchmark_group("agentic-spine");
    g.sample_size(30);
    g.bench_function("spine verify (process)", |b| b.iter(run));
    g.finish();
}

fn process(c: &mut Criterion, label: &str, dir: &Path, receipts: &Path) {
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_spine"))
            .args(["verify", "--format", "json", "--registry"])
            .arg(dir)
            .env("SPINE_RECEIPTS", receipts)
            .env_remove("SPINE_SIGNING_KEY")
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .expect("run spine")
    };
    let o = run();
    assert!(o.status.success(), "{label}: spine verify exits 0");
    let mut g = c.benchmark_group(label);
    g.sample_size(30);
    g.bench_function("spine verify (process)", |b| b.iter(run));
    g.finish();
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("registry");
    let large = generate::write(tmp.path(), generate::LARGE);
    let receipts = tmp.path().join("receipts");
    operator_repo(c, &fixture::dir(), &receipts);
    in_process(c, "shipped", &shipped);
    in_process(c, "large-1000", &large);
    process(c, "shipped", &shipped, &receipts);
    process(c, "large-1000", &large, &receipts);
}

criterion_group! {
    name = verify_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(verify_benches);
