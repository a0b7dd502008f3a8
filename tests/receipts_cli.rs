//! Receipts written by real runs, checked by `spine receipts verify` and by
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
            "verify",
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
            "verify",
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
            "verify",
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
            "verify",
            "--receipts",
            receipts.to_str().unwrap(),
            "--require-signed",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
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
