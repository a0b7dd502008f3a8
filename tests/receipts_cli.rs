//! Receipts written by real runs, checked by `spine receipts check` and by
//! the auditor's one-line `ssh-keygen -Y verify`.

mod support;

use std::process::Command;

use support::{spine, text};

fn keygen(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("op_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "op", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (
        key,
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[test]
fn verify_and_plan_runs_write_a_signed_chain_an_auditor_can_check() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    for f in [
        "SERVICE_REGISTRY.yaml",
        "STACK_REGISTRY.yaml",
        "services.health.yaml",
    ] {
        std::fs::copy(support::repo().join("registry").join(f), reg.join(f)).unwrap();
    }
    let (key, public) = keygen(tmp.path());
    let receipts = tmp.path().join("receipts");
    let env = [("SPINE_OPERATOR", "ronny@pve"), ("SSH_AUTH_SOCK", "")];

    // Two runs, the second with loop and gap ids; receipts go beside the registry.
    let o = spine(
        &[
            "verify",
            "-r",
            reg.to_str().unwrap(),
            "--signing-key",
            key.to_str().unwrap(),
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("receipt 1 (signed)"), "{}", text(&o));
    let o = spine(
        &[
            "verify",
            "-r",
            reg.to_str().unwrap(),
            "--signing-key",
            key.to_str().unwrap(),
            "--loop",
            "LOOP-IMMICH-LEGACY-EXTRACTION-20260211",
            "--gap",
            "GAP-OP-094",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(
        receipts.join("allowed_signers"),
        format!("ronny@pve namespaces=\"spine-receipt@spine\" {public}\n"),
    )
    .unwrap();

    let o = spine(
        &[
            "receipts",
            "check",
            "--receipts",
            receipts.to_str().unwrap(),
            "--require-signed",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("receipts: 2 (2 signed, 0 unsigned)"),
        "{}",
        text(&o)
    );

    // Exactly the auditor's command from the README, with stock OpenSSH.
    let mut files: Vec<_> = std::fs::read_dir(&receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let second = std::fs::read_to_string(&files[1]).unwrap();
    assert!(
        second.contains("\"gap\":\"GAP-OP-094\"")
            && second.contains("LOOP-IMMICH-LEGACY-EXTRACTION-20260211"),
        "{second}"
    );
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ssh-keygen -Y verify -f receipts/allowed_signers -I ronny@pve -n spine-receipt@spine -s '{0}.sig' < '{0}'",
            files[1].strip_prefix(tmp.path()).unwrap().display()
        ))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    // One byte changed: both checkers say no.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let i = bytes.iter().position(|&b| b == b'v').unwrap();
    bytes[i] = b'V';
    std::fs::write(&files[0], bytes).unwrap();
    let o = spine(
        &[
            "receipts",
            "check",
            "--receipts",
            receipts.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("first broken link"), "{}", text(&o));
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("ssh-keygen -Y verify -f receipts/allowed_signers -I ronny@pve -n spine-receipt@spine -s '{0}.sig' < '{0}'", files[0].display()))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!st.status.success());
}

#[test]
fn a_run_without_a_key_writes_an_unsigned_receipt_reported_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let receipts = tmp.path().join("r");
    let o = spine(
        &["verify", "--receipts", receipts.to_str().unwrap()],
        &[("SSH_AUTH_SOCK", ""), ("SPINE_SIGNING_KEY", "")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(unsigned)"), "{}", text(&o));
    let o = spine(
        &[
            "receipts",
            "check",
            "--receipts",
            receipts.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        o.status.success(),
        "unsigned is a warning by default: {}",
        text(&o)
    );
    assert!(text(&o).contains("unsigned"));
    let o = spine(
        &[
            "receipts",
            "check",
            "--receipts",
            receipts.to_str().unwrap(),
            "--require-signed",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The command's old name is kept for the auditors' scripts: same answer.
    let old_name = spine(
        &[
            "receipts",
            "verify",
            "--receipts",
            receipts.to_str().unwrap(),
            "--require-signed",
        ],
        &[],
    );
    assert_eq!(old_name.status.code(), Some(1), "{}", text(&old_name));
    assert_eq!(text(&old_name), text(&o));
    let o = spine(
        &["receipts", "list", "--receipts", receipts.to_str().unwrap()],
        &[],
    );
    assert!(text(&o).contains("verify"), "{}", text(&o));
}

#[test]
fn a_bad_loop_id_is_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let receipts = tmp.path().join("r");
    let o = spine(
        &[
            "verify",
            "--receipts",
            receipts.to_str().unwrap(),
            "--loop",
            "IMMICH",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("LOOP-"), "{}", text(&o));
    assert!(!receipts.exists(), "nothing written for a refused run");
}

/// `spine receipts check` with these extra arguments.
fn receipts_check(
    receipts: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "receipts",
        "check",
        "--receipts",
        receipts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    spine(&args, env)
}

/// The head's SHA-256 from check's summary line (`head N sha256 HASH`).
fn head_of(o: &std::process::Output) -> String {
    let t = text(o);
    let at = t
        .find(" sha256 ")
        .unwrap_or_else(|| panic!("no head in {t}"))
        + 8;
    t[at..at + 64].to_string()
}

/// Receipts and their signatures in sequence order.
fn receipt_files(receipts: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_resigned_chain_fails_against_the_outside_anchor_and_truncation_fails_the_pinned_head() {
    let tmp = tempfile::tempdir().unwrap();
    let receipts = tmp.path().join("receipts");
    let (key, public) = keygen(tmp.path());
    let signed_run = |key: &std::path::Path| {
        let o = spine(
            &[
                "verify",
                "--receipts",
                receipts.to_str().unwrap(),
                "--signing-key",
                key.to_str().unwrap(),
            ],
            &[("SPINE_OPERATOR", "ronny@pve"), ("SSH_AUTH_SOCK", "")],
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    signed_run(&key);
    signed_run(&key);
    let line = format!("ronny@pve namespaces=\"spine-receipt@spine\" {public}\n");
    std::fs::write(receipts.join("allowed_signers"), &line).unwrap();
    // The auditor's reviewed copy of the anchor, outside the folder.
    let audit = tmp.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    let anchor = audit.join("allowed_signers");
    std::fs::write(&anchor, &line).unwrap();
    let anchor_arg = [
        "--require-signed",
        "--allowed-signers",
        anchor.to_str().unwrap(),
    ];

    // With the folder's own anchor: valid, but verify says where the anchor is.
    let o = receipts_check(&receipts, &["--require-signed"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("warning: ")
            && text(&o).contains(
                "allowed_signers: the trust anchor sits inside the receipts folder it checks"
            ),
        "{}",
        text(&o)
    );
    // With the outside anchor: valid and no such warning.
    let o = receipts_check(&receipts, &anchor_arg, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("trust anchor sits inside"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!("allowed_signers: {}", anchor.display())),
        "{}",
        text(&o)
    );
    let pinned = head_of(&o);

    // The chain grows: the pinned head is still in it.
    signed_run(&key);
    let mut expect = anchor_arg.to_vec();
    expect.extend(["--expect-head", &pinned]);
    let o = receipts_check(&receipts, &expect, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let newest = head_of(&o);

    // Truncation: the newest receipt removed. The chain alone cannot tell...
    let files = receipt_files(&receipts);
    assert_eq!(files.len(), 3);
    std::fs::remove_file(&files[2]).unwrap();
    std::fs::remove_file(files[2].with_extension("json.sig")).unwrap();
    let o = receipts_check(&receipts, &anchor_arg, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // ... the pinned head can.
    let o = receipts_check(&receipts, &["--expect-head", &newest], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("the expected head (sha256 {newest}) is not in the chain (the head is now receipt 000002 with sha256 {pinned}): receipts were removed from the end, or the chain was rewritten")),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("status: FAIL"), "{}", text(&o));

    // The attacker edits receipt 1, re-links and re-signs the whole chain with
    // their own key, and puts that key into the folder's allowed_signers.
    let (evil, evil_public) = keygen(&tmp.path().join("evil").tap_mkdir());
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(evil.with_extension("pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let mut previous: Option<String> = None;
    for (i, file) in receipt_files(&receipts).iter().enumerate() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        if i == 0 {
            v["exit_code"] = serde_json::json!(0);
            v["argv"] = serde_json::json!(["spine", "verify", "--forged"]);
        }
        v["operator"]["key_fingerprint"] = serde_json::json!(fp);
        v["previous"] = serde_json::json!(previous);
        let bytes = spine::receipt::canonical::value_to_bytes(&v);
        std::fs::write(file, &bytes).unwrap();
        previous = Some(spine::receipt::sha256_hex(&bytes));
        let sig = file.with_extension("json.sig");
        std::fs::remove_file(&sig).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "spine-receipt@spine", "-f"])
            .arg(&evil)
            .arg(file)
            .status()
            .unwrap();
        assert!(st.success() && sig.exists());
    }
    std::fs::write(
        receipts.join("allowed_signers"),
        format!("ronny@pve namespaces=\"spine-receipt@spine\" {evil_public}\n"),
    )
    .unwrap();

    // Against the folder's own anchor the forgery passes: that is the warning.
    let o = receipts_check(&receipts, &["--require-signed"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("trust anchor sits inside"),
        "{}",
        text(&o)
    );
    // Against the outside anchor, by flag or by environment, it fails.
    for o in [
        receipts_check(&receipts, &anchor_arg, &[]),
        receipts_check(
            &receipts,
            &["--require-signed"],
            &[("SPINE_ALLOWED_SIGNERS", anchor.to_str().unwrap())],
        ),
    ] {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let t = text(&o);
        assert_eq!(
            t.lines()
                .filter(|l| l.starts_with("error: ")
                    && l.contains("signature made by a key not in allowed_signers"))
                .count(),
            2,
            "{t}"
        );
        assert!(
            t.contains("first broken link: ") && t.contains("000001-"),
            "{t}"
        );
        assert!(!t.contains("trust anchor sits inside"), "{t}");
    }
    // And the pinned head is gone too: receipt 2's bytes changed.
    let o = receipts_check(&receipts, &["--expect-head", &pinned], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not in the chain"), "{}", text(&o));

    // A named anchor that does not exist is an error, not a silent fallback.
    let o = receipts_check(
        &receipts,
        &["--allowed-signers", "/nonexistent/allowed_signers"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("/nonexistent/allowed_signers: cannot read"),
        "{}",
        text(&o)
    );
    // A malformed pin is a usage error.
    let o = receipts_check(&receipts, &["--expect-head", "abc"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    /// Create the folder, then hand the path on.
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// A plan that could not be made (here: a registry file that does not
/// parse, so the run stops at loading and no host is ever dialled) still
/// leaves a receipt: status failed, the process's exit code (2, or 1 with
/// `--detailed-exitcode`, where 2 means "changes").
#[test]
fn a_plan_that_could_not_be_made_is_recorded_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    std::fs::create_dir(&reg).unwrap();
    for f in ["STACK_REGISTRY.yaml", "services.health.yaml"] {
        std::fs::copy(support::repo().join("registry").join(f), reg.join(f)).unwrap();
    }
    std::fs::write(reg.join("SERVICE_REGISTRY.yaml"), "hosts: [unclosed\n").unwrap();
    let receipts = tmp.path().join("receipts");
    for (extra, code) in [(None, 2), (Some("--detailed-exitcode"), 1)] {
        let mut args = vec!["plan", "--registry", reg.to_str().unwrap()];
        args.extend(extra);
        let o = spine(&args, &[("SSH_AUTH_SOCK", ""), ("SPINE_SIGNING_KEY", "")]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(code), "{t}");
        assert!(
            t.contains("could not be read") && !t.contains("unreachable"),
            "{t}"
        );
        let r = support::newest_receipt(&receipts).expect("a receipt");
        assert_eq!(r["command"], "plan", "{r}");
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["exit_code"], code, "{r}");
    }
    assert_eq!(support::receipt_count(&receipts), 2);
    // apply on the same registry: refused before anything, recorded.
    let o = spine(
        &["apply", "--yes", "--registry", reg.to_str().unwrap()],
        &[("SSH_AUTH_SOCK", ""), ("SPINE_SIGNING_KEY", "")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let r = support::newest_receipt(&receipts).expect("a receipt");
    assert_eq!(
        (&r["command"], &r["status"], &r["exit_code"]),
        (&"apply".into(), &"failed".into(), &2.into()),
        "{r}"
    );
    assert_eq!(support::receipt_count(&receipts), 3);
}

/// No registry where the command line says: without a registry there is
/// no default place for receipts, so the attempt is recorded only where
/// `--receipts` says, with the process's exit code; without it none is
/// written anywhere.
#[test]
fn a_run_that_finds_no_registry_is_recorded_where_receipts_says() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-registry");
    let receipts = tmp.path().join("audit");
    let env = [("SSH_AUTH_SOCK", ""), ("SPINE_SIGNING_KEY", "")];
    for (command, extra, code) in [
        ("plan", None, 2),
        ("plan", Some("--detailed-exitcode"), 1),
        ("apply", Some("--yes"), 2),
        ("verify", None, 2),
    ] {
        let mut args = vec![command, "--registry", missing.to_str().unwrap()];
        args.extend(extra);
        args.extend(["--receipts", receipts.to_str().unwrap()]);
        let o = spine(&args, &env);
        assert_eq!(o.status.code(), Some(code), "{command}: {}", text(&o));
        let r = support::newest_receipt(&receipts).expect("a receipt");
        assert_eq!(r["command"], command, "{r}");
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["exit_code"], code, "{r}");
    }
    assert_eq!(support::receipt_count(&receipts), 4);
    let o = spine(&["plan", "--registry", missing.to_str().unwrap()], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no receipt: without a registry folder there is no place for it"),
        "{}",
        text(&o)
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("audit")], "{left:?}");
}
