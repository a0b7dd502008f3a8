//! Snapshot tests (insta) of what `spine verify` prints, in every format, for
//! a few representative corpus cases. Paths are relative (`reg/...`), so the
//! snapshots do not depend on where the test runs. Review changes with
//! `cargo insta review` or by reading the `.snap.new` files.

mod support;

use support::corpus::{build, case, run};

/// stdout (stderr when `stderr`) of `spine verify --registry reg ARGS` on a
/// corpus case, with the exit code on the first line.
fn verify(name: &str, args: &[&str], stderr: bool) -> String {
    let work = build(&case(name));
    let o = run(&work, args);
    let out = if stderr { &o.stderr } else { &o.stdout };
    let text = String::from_utf8(out.clone()).expect("UTF-8 output");
    assert!(
        !text.contains('\u{1b}'),
        "colour with NO_COLOR set:\n{text}"
    );
    format!("exit: {:?}\n{text}", o.status.code())
}

#[test]
fn passing_registry() {
    insta::assert_snapshot!("base_text", verify("base", &[], false));
    insta::assert_snapshot!("base_junit", verify("base", &["--format", "junit"], false));
}

#[test]
fn semantic_failures_in_every_format() {
    let case = "v09-cron-schedules";
    insta::assert_snapshot!("v09_text", verify(case, &[], false));
    insta::assert_snapshot!("v09_json", verify(case, &["--format", "json"], false));
    insta::assert_snapshot!("v09_junit", verify(case, &["--format", "junit"], false));
    insta::assert_snapshot!("v09_github", verify(case, &["--format", "github"], false));
}

#[test]
fn facts_stated_twice_name_both_places() {
    let case = "v12-host-facts";
    insta::assert_snapshot!("v12_text", verify(case, &[], false));
    insta::assert_snapshot!("v12_github", verify(case, &["--format", "github"], false));
}

#[test]
fn schema_failure_skips_the_semantic_gates() {
    let case = "v01-typo-in-closed-section";
    insta::assert_snapshot!("v01_text", verify(case, &["--quiet"], false));
    insta::assert_snapshot!("v01_junit", verify(case, &["--format", "junit"], false));
}

#[test]
fn secrets_are_located_but_never_shown() {
    let case = "v13-literal-secrets";
    let text = verify(case, &[], false);
    let json = verify(case, &["--format", "json"], false);
    for out in [&text, &json] {
        assert!(!out.contains("corpus-Hunter2-Value") && !out.contains("corpus-Api-Key-Value-77"));
    }
    insta::assert_snapshot!("v13_text", text);
    insta::assert_snapshot!("v13_json", json);
}

#[test]
fn unreadable_registry_is_exit_2() {
    let case = "v00-all-three-broken";
    insta::assert_snapshot!("v00_text", verify(case, &["--quiet"], true));
    insta::assert_snapshot!("v00_json", verify(case, &["--format", "json"], false));
}

/// The images of an operator's compose file (V17) only warn: exit 0, a
/// `::warning` annotation at the compose file's line; `--strict` makes the
/// same warnings fail (exit 1, `::error`).
#[test]
fn unpinned_images_of_an_operators_compose_file_warn_and_strict_fails() {
    let case = "v17-compose-file-images";
    let github = verify(case, &["--format", "github"], false);
    assert!(github.starts_with("exit: Some(0)\n"), "{github}");
    insta::assert_snapshot!("v17_images_github", github);
    let strict = verify(case, &["--format", "github", "--strict"], false);
    assert!(strict.starts_with("exit: Some(1)\n"), "{strict}");
    assert!(
        strict.contains(
            "::error file=ops/staged/web/docker-compose.yml,line=4,col=12,title=spine V17::"
        ),
        "{strict}"
    );
}
