//! Receipts end to end through the library API, with the real `ssh-keygen`
//! (and `ssh-agent`) making keys, signing and verifying.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Output, Stdio};
use std::time::{Duration, Instant};

use spine::receipt::{
    Action, ActionResult, ApplySummary, CheckOptions, CheckReport, Command, FORMAT_VERSION, GapId,
    HostRecord, LoopId, ProblemKind, ReceiptBody, RegistryInfo, SCHEMA, Severity, Signer, Status,
    Store, allowed_signers_line, sha256_hex,
};
use ssh_key::{HashAlg, PublicKey};
use tempfile::TempDir;

const ID: &str = "ronny@pve";

/// A temp ops directory with `receipts/`, an operator key and allowed_signers.
struct Fx {
    _tmp: TempDir,
    root: PathBuf,
    store: Store,
    key: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let key = keygen(&root, "operator");
        fs::create_dir(root.join("receipts")).unwrap();
        let line = allowed_signers_line(ID, &public_key(&key));
        fs::write(
            root.join("receipts/allowed_signers"),
            format!("# operators\n{line}\n"),
        )
        .unwrap();
        let store = Store::open(root.join("receipts")).unwrap();
        Fx {
            _tmp: tmp,
            root,
            store,
            key,
        }
    }

    fn signer(&self) -> Signer {
        Signer::from_key_file(&self.key, None, ID).unwrap()
    }

    /// Append `n` signed receipts; return their paths.
    fn append(&self, n: usize) -> Vec<PathBuf> {
        let signer = self.signer();
        (0..n)
            .map(|i| self.store.append(body(i), &signer).unwrap().path)
            .collect()
    }

    fn verify(&self) -> CheckReport {
        anchor_inside_noted(self.store.check(&CheckOptions::default()).unwrap())
    }

    /// `receipts/NNNNNN-….json`, relative to the root, as an auditor types it.
    /// A path as verify messages show it (the store was opened with an absolute path).
    fn shown(&self, p: &Path) -> String {
        p.display().to_string()
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.root).unwrap().display().to_string()
    }

    /// EXACTLY the auditor's one-liner from docs/receipts.md.
    fn auditor_verify(&self, identity: &str, receipt: &Path) -> Output {
        let file = self.rel(receipt);
        let line = format!(
            "ssh-keygen -Y verify -f receipts/allowed_signers -I {identity} -n spine-receipt@spine -s {file}.sig < {file}"
        );
        Proc::new("sh")
            .args(["-c", &line])
            .current_dir(&self.root)
            .output()
            .unwrap()
    }
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    run(Proc::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path));
    path
}

fn public_key(private: &Path) -> PublicKey {
    PublicKey::read_openssh_file(&private.with_extension("pub")).unwrap()
}

fn run(cmd: &mut Proc) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ssh-keygen -Y sign` the file in place (writes FILE.sig).
fn ssh_keygen_sign(key: &Path, namespace: &str, file: &Path) {
    let sig = PathBuf::from(format!("{}.sig", file.display()));
    let _ = fs::remove_file(&sig);
    run(Proc::new("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(file));
}

fn body(i: usize) -> ReceiptBody {
    let commands = [
        Command::Verify,
        Command::Plan,
        Command::Apply,
        Command::Health,
    ];
    let mut b = ReceiptBody::new(
        commands[i % 4],
        vec!["spine".into(), commands[i % 4].to_string()],
    );
    b.hosts = vec![HostRecord {
        host: "immich".into(),
        access: "ssh ubuntu@100.114.101.50".into(),
        facts_before: Some(sha256_hex(b"before")),
        facts_after: i.is_multiple_of(2).then(|| sha256_hex(b"after")),
    }];
    b.actions = vec![Action::new(
        "immich",
        "check",
        "/etc/netplan/50-cloud-init.yaml",
        ActionResult::Ok,
        Some(0),
        12,
        b"network: {}",
    )];
    b.plan_hash = (i % 2 == 1).then(|| sha256_hex(b"plan"));
    b.loop_id = Some(LoopId::parse("LOOP-IMMICH-NET-20250214").unwrap());
    b.gap_id = Some(GapId::parse("GAP-OP-094").unwrap());
    b.drift.in_sync = 3;
    b.drift.unknown = 1;
    if b.command == Command::Apply {
        b.apply = Some(ApplySummary {
            changed: 1,
            unknown: 1,
            ..ApplySummary::default()
        });
    }
    b.status = Status::Incomplete;
    b.exit_code = 1;
    b
}

fn sig_of(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", p.display()))
}

/// The problems of `kind`, as displayed; fails listing everything if none.
fn of_kind(r: &CheckReport, kind: ProblemKind) -> Vec<String> {
    let found: Vec<String> = r
        .problems
        .iter()
        .filter(|p| p.kind == kind)
        .map(ToString::to_string)
        .collect();
    assert!(
        !found.is_empty(),
        "no {kind:?} problem in {:#?}",
        r.problems
    );
    found
}

/// The fixture keeps allowed_signers inside the receipts folder, so verify
/// warns about that trust anchor every time (checked here, once per report);
/// the tests then look at the other problems. `tests/receipts_cli.rs` checks
/// the anchor from outside.
fn anchor_inside_noted(mut r: CheckReport) -> CheckReport {
    if r.allowed_signers.is_some() {
        let warned: Vec<_> = r
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::AnchorInside)
            .collect();
        assert_eq!(warned.len(), 1, "{:#?}", r.problems);
        assert_eq!(warned[0].severity, Severity::Warning);
        r.problems.retain(|p| p.kind != ProblemKind::AnchorInside);
    }
    r
}

fn only_kinds(r: &CheckReport, kinds: &[ProblemKind]) {
    for p in &r.problems {
        assert!(kinds.contains(&p.kind), "unexpected problem {p}");
    }
}

#[test]
fn appended_receipts_chain_and_verify() {
    let fx = Fx::new();
    let paths = fx.append(4);
    let report = fx.verify();
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert!(report.is_ok());
    assert_eq!((report.receipts, report.signed, report.unsigned), (4, 4, 0));
    assert_eq!(report.first_broken, None);

    let schema = jsonschema::draft202012::new(&serde_json::from_str(SCHEMA).unwrap()).unwrap();
    let mut previous: Option<String> = None;
    for (i, path) in paths.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(&format!("{:06}-", i + 1)), "{name}");
        let bytes = fs::read(path).unwrap();
        assert!(bytes.ends_with(b"}\n") && !bytes.ends_with(b"\n\n"));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(schema.is_valid(&v), "{name} does not match the schema");
        assert_eq!(v["sequence"], (i + 1) as u64);
        assert_eq!(v["format_version"], 2);
        assert_eq!(v["previous"].as_str().map(str::to_owned), previous);
        assert_eq!(v["operator"]["identity"], ID);
        assert_eq!(
            v["operator"]["key_fingerprint"],
            public_key(&fx.key).fingerprint(HashAlg::Sha256).to_string()
        );
        assert_eq!(v["loop"], "LOOP-IMMICH-NET-20250214");
        assert_eq!(v["gap"], "GAP-OP-094");
        assert!(sig_of(path).exists());
        previous = Some(sha256_hex(&bytes));
    }
    let head = report.head.unwrap();
    assert_eq!((head.sequence, Some(head.sha256)), (4, previous));
}

#[test]
fn auditor_one_liner_accepts_every_receipt() {
    let fx = Fx::new();
    for path in fx.append(3) {
        let out = fx.auditor_verify(ID, &path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("Good \"spine-receipt@spine\" signature for ronny@pve"),
            "{stdout}"
        );
    }
    // And it says no for another identity.
    let path = &fx.store.list().unwrap()[0].path;
    assert!(!fx.auditor_verify("eve@pve", path).status.success());
}

#[test]
fn ssh_keygen_signature_verifies_in_rust() {
    let fx = Fx::new();
    let paths = fx.append(3);
    ssh_keygen_sign(&fx.key, "spine-receipt@spine", &paths[1]);
    let report = fx.verify();
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
}

#[test]
fn one_byte_changed_is_caught() {
    let fx = Fx::new();
    let paths = fx.append(4);
    let old = fs::read(&paths[1]).unwrap();
    let mut bytes = old.clone();
    let at = bytes.windows(6).position(|w| w == b"\"spine").unwrap() + 1;
    bytes[at] = b'S'; // still valid, canonical JSON
    fs::write(&paths[1], &bytes).unwrap();

    let r = fx.verify();
    assert!(!r.is_ok());
    let name2 = fx.shown(&paths[1]);
    let name3 = fx.shown(&paths[2]);
    assert_eq!(
        of_kind(&r, ProblemKind::SignatureInvalid),
        [format!(
            "{name2}.sig: signature does not match the receipt's bytes: the receipt was changed after it was signed"
        )]
    );
    assert_eq!(
        of_kind(&r, ProblemKind::PreviousMismatch),
        [format!(
            "{name3}: previous hash does not match receipt 000002 (expected {}, found {}): a receipt was altered or removed",
            sha256_hex(&bytes),
            sha256_hex(&old)
        )]
    );
    only_kinds(
        &r,
        &[ProblemKind::SignatureInvalid, ProblemKind::PreviousMismatch],
    );
    assert_eq!(r.first_broken, Some(2));
    assert_eq!(
        r.first_broken_problem().unwrap().kind,
        ProblemKind::SignatureInvalid
    );
    assert!(!fx.auditor_verify(ID, &paths[1]).status.success());
}

#[test]
fn deleted_receipt_is_caught() {
    let fx = Fx::new();
    let paths = fx.append(4);
    fs::remove_file(&paths[1]).unwrap();
    fs::remove_file(sig_of(&paths[1])).unwrap();
    let r = fx.verify();
    assert_eq!(
        of_kind(&r, ProblemKind::Gap),
        [format!(
            "{}: receipt 000002 is missing: the sequence jumps from 000001 to 000003; a receipt was removed",
            fx.shown(&paths[2])
        )]
    );
    only_kinds(&r, &[ProblemKind::Gap]);
    assert_eq!(r.first_broken, Some(2));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["problems"][0]["kind"], "gap");
    assert_eq!(json["problems"][0]["severity"], "error");
    assert_eq!(json["head"]["sequence"], 4);
}

#[test]
fn swapped_receipts_are_caught() {
    let fx = Fx::new();
    let paths = fx.append(4);
    for (a, b) in [
        (paths[1].clone(), paths[2].clone()),
        (sig_of(&paths[1]), sig_of(&paths[2])),
    ] {
        let (da, db) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        fs::write(&a, db).unwrap();
        fs::write(&b, da).unwrap();
    }
    let r = fx.verify();
    let name_errors = of_kind(&r, ProblemKind::FileName);
    assert!(name_errors.contains(&format!(
        "{}: file name says sequence 000002 but the receipt says 000003: receipt files were renamed or swapped",
        fx.shown(&paths[1])
    )), "{name_errors:#?}");
    assert!(name_errors.contains(&format!(
        "{}: file name says sequence 000003 but the receipt says 000002: receipt files were renamed or swapped",
        fx.shown(&paths[2])
    )), "{name_errors:#?}");
    only_kinds(&r, &[ProblemKind::FileName]);
    assert_eq!(r.first_broken, Some(2));
}

#[test]
fn resigned_by_unknown_key_is_caught() {
    let fx = Fx::new();
    let paths = fx.append(3);
    let mallory = keygen(&fx.root, "mallory");
    ssh_keygen_sign(&mallory, "spine-receipt@spine", &paths[1]);
    let fp = public_key(&mallory)
        .fingerprint(HashAlg::Sha256)
        .to_string();
    let r = fx.verify();
    let sig = format!("{}.sig", fx.shown(&paths[1]));
    assert_eq!(
        of_kind(&r, ProblemKind::UntrustedKey),
        [format!(
            "{sig}: signature made by a key not in allowed_signers ({fp}): if it is an operator's key, add it to {}",
            fx.root.join("receipts/allowed_signers").display()
        )]
    );
    assert!(of_kind(&r, ProblemKind::KeyMismatch)[0].contains(&format!(
        "signature made by key {fp}, but the receipt records key SHA256:"
    )));
    only_kinds(&r, &[ProblemKind::UntrustedKey, ProblemKind::KeyMismatch]);
    assert_eq!(r.first_broken, Some(2));
    assert!(!fx.auditor_verify(ID, &paths[1]).status.success());
}

#[test]
fn wrong_namespace_is_caught() {
    let fx = Fx::new();
    let paths = fx.append(2);
    ssh_keygen_sign(&fx.key, "file", &paths[0]);
    let r = fx.verify();
    assert_eq!(
        of_kind(&r, ProblemKind::SignatureNamespace),
        [format!(
            "{}.sig: signature namespace is file, expected spine-receipt@spine: it was made for another purpose",
            fx.shown(&paths[0])
        )]
    );
    only_kinds(&r, &[ProblemKind::SignatureNamespace]);
    assert!(!fx.auditor_verify(ID, &paths[0]).status.success());
}

#[test]
fn truncated_signature_is_caught() {
    let fx = Fx::new();
    let paths = fx.append(2);
    let sig = sig_of(&paths[1]);
    let pem = fs::read(&sig).unwrap();
    fs::write(&sig, &pem[..pem.len() / 2]).unwrap();
    let r = fx.verify();
    let found = of_kind(&r, ProblemKind::SignatureMalformed);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(&format!(
            "{}.sig: signature truncated or not valid PEM (",
            fx.shown(&paths[1])
        )),
        "{}",
        found[0]
    );
    assert!(found[0].ends_with("): restore it from a backup or re-sign the receipt"));
    only_kinds(&r, &[ProblemKind::SignatureMalformed]);
}

#[test]
fn unsigned_receipt_warns_and_fails_when_signatures_required() {
    let fx = Fx::new();
    fx.append(1);
    let w = fx.store.append(body(1), &Signer::unsigned(ID)).unwrap();
    assert!(w.signature.is_none() && !sig_of(&w.path).exists());
    fx.append(1);

    let r = fx.verify();
    assert!(r.is_ok(), "{:#?}", r.problems);
    assert_eq!((r.signed, r.unsigned), (2, 1));
    let warn = &r.warnings().collect::<Vec<_>>();
    assert_eq!(warn.len(), 1);
    assert_eq!(
        warn[0].to_string(),
        format!(
            "{}: unsigned: no .sig and no signing key recorded (the run had no --signing-key, SPINE_SIGNING_KEY or ssh-agent key)",
            fx.shown(&w.path)
        )
    );

    let strict = fx
        .store
        .check(&CheckOptions {
            require_signed: true,
            ..CheckOptions::default()
        })
        .map(anchor_inside_noted)
        .unwrap();
    assert!(!strict.is_ok());
    let errs: Vec<_> = strict.errors().collect();
    assert_eq!(
        (errs.len(), errs[0].kind, errs[0].severity),
        (1, ProblemKind::Unsigned, Severity::Error)
    );
    assert_eq!(strict.first_broken, Some(2));
}

#[test]
fn more_tampering_is_caught() {
    let fx = Fx::new();
    let paths = fx.append(5);

    // Signature of a signed receipt deleted.
    fs::remove_file(sig_of(&paths[0])).unwrap();
    // Receipt pretty-printed (same JSON, different bytes).
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&paths[1]).unwrap()).unwrap();
    fs::write(&paths[1], serde_json::to_string_pretty(&v).unwrap()).unwrap();
    // A receipt copied in under another run id with the same sequence: a fork.
    let forked = paths[3].with_file_name("000004-20990101T000000.000Z-000000000000.json");
    fs::copy(&paths[3], &forked).unwrap();
    // An orphaned signature and a leftover temp file.
    fs::write(fx.store.dir().join("000009-x.json.sig"), "junk").unwrap();
    fs::write(fx.store.dir().join(".tmp-abc"), "").unwrap();

    let r = fx.verify();
    let fp = public_key(&fx.key).fingerprint(HashAlg::Sha256);
    assert!(
        of_kind(&r, ProblemKind::SignatureMissing)[0].ends_with(&format!(
            "is missing but the receipt records signing key {fp}: the signature was deleted"
        ))
    );
    assert!(of_kind(&r, ProblemKind::NotCanonical)[0].contains("not in canonical form (sorted keys, no whitespace, one trailing newline): re-serialising differs from byte 1 on"));
    assert!(of_kind(&r, ProblemKind::Fork)[0].contains("both have sequence 000004"));
    assert!(
        of_kind(&r, ProblemKind::OrphanSignature)[0]
            .contains("signature without its receipt 000009-x.json")
    );
    assert!(
        of_kind(&r, ProblemKind::StrayFile)[0]
            .contains("temporary file left by an interrupted append")
    );
    // The copy has the wrong run id in its name, and receipt 3's hash changed.
    assert!(
        of_kind(&r, ProblemKind::FileName)[0]
            .contains("file name says run id 20990101T000000.000Z-000000000000")
    );
    assert!(
        of_kind(&r, ProblemKind::PreviousMismatch)[0]
            .contains("previous hash does not match receipt 000002")
    );
    assert_eq!(r.first_broken, Some(1));

    // Appending onto a forked tail is refused.
    fs::rename(
        &forked,
        paths[4].with_file_name("000005-20990101T000000.000Z-000000000000.json"),
    )
    .unwrap();
    let err = fx
        .store
        .append(body(0), &fx.signer())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("both claim sequence 5: the chain is forked"),
        "{err}"
    );
}

#[test]
fn allowed_signers_rules_are_enforced() {
    let fx = Fx::new();
    let paths = fx.append(1);
    let pubkey = public_key(&fx.key);
    let allowed = fx.store.dir().join("allowed_signers");
    let key_text = pubkey.to_openssh().unwrap();

    fs::write(&allowed, format!("someone@else {key_text}\n")).unwrap();
    let r = fx.verify();
    assert!(of_kind(&r, ProblemKind::WrongIdentity)[0].contains("is in allowed_signers for someone@else but not for ronny@pve, the identity recorded in the receipt"));

    fs::write(
        &allowed,
        format!("ronny@* namespaces=\"git,file\" {key_text}\n"),
    )
    .unwrap();
    let r = fx.verify();
    assert!(of_kind(&r, ProblemKind::NamespaceNotAllowed)[0].contains("line 1 limits key SHA256:"));

    fs::write(
        &allowed,
        format!("ronny@pve valid-before=\"20200101Z\" {key_text}\n"),
    )
    .unwrap();
    let r = fx.verify();
    assert!(
        of_kind(&r, ProblemKind::KeyNotValid)[0]
            .contains("was not valid when the receipt was finished")
    );
    assert!(!fx.auditor_verify(ID, &paths[0]).status.success());

    fs::write(&allowed, format!("ronny@pve valid-after=\"20200101Z\",namespaces=\"spine-receipt@spine\" {key_text}\nbroken line\n")).unwrap();
    let r = fx.verify();
    assert!(r.is_ok(), "{:#?}", r.problems);
    assert!(of_kind(&r, ProblemKind::AllowedSigners)[0].contains("line 2: "));
    assert!(fx.auditor_verify(ID, &paths[0]).status.success());

    fs::remove_file(&allowed).unwrap();
    let r = fx.verify();
    assert!(
        of_kind(&r, ProblemKind::AllowedSigners)[0]
            .contains("missing: the 1 signed receipt(s) cannot be checked")
    );
}

#[test]
fn unsupported_format_version_is_refused() {
    let fx = Fx::new();
    let paths = fx.append(1);
    let text = fs::read_to_string(&paths[0])
        .unwrap()
        .replace("\"format_version\":2", "\"format_version\":3");
    fs::write(&paths[0], text).unwrap();
    let r = fx.verify();
    assert!(of_kind(&r, ProblemKind::UnsupportedVersion)[0].ends_with(
        "format_version 3 is not supported (this spine reads formats 1 and 2): use a spine release that knows format 3"
    ));
    assert_eq!(r.first_broken, Some(1));
}

/// `tests/fixtures/receipts-v1/`: four signed format-1 receipts as spine
/// wrote them before format 2 (see its README.md), copied into the fixture's
/// receipts folder with their signer's allowed_signers line.
fn with_v1_chain(fx: &Fx) -> Vec<PathBuf> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/receipts-v1");
    let to = fx.root.join("receipts");
    let mut copied = Vec::new();
    for entry in fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".json") || name.ends_with(".json.sig") {
            fs::copy(&path, to.join(&name)).unwrap();
            if name.ends_with(".json") {
                copied.push(to.join(&name));
            }
        }
    }
    let old_signer = fs::read_to_string(from.join("allowed_signers")).unwrap();
    let mut allowed = fs::read_to_string(to.join("allowed_signers")).unwrap();
    allowed.push_str(&old_signer);
    fs::write(to.join("allowed_signers"), allowed).unwrap();
    copied.sort();
    assert_eq!(copied.len(), 4, "the v1 fixture has four receipts");
    copied
}

#[test]
fn format_1_chain_then_format_2_receipts_verify() {
    let fx = Fx::new();
    let old = with_v1_chain(&fx);
    let r = fx.verify();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    // The old receipts as they are: format 1, the third an apply counted in
    // `drift` without `apply`, the fourth with `apply`.
    let v1: Vec<serde_json::Value> = old
        .iter()
        .map(|p| serde_json::from_slice(&fs::read(p).unwrap()).unwrap())
        .collect();
    assert!(v1.iter().all(|v| v["format_version"] == 1));
    assert_eq!(v1[2]["command"], "apply");
    assert!(v1[2].get("apply").is_none());
    assert_eq!(v1[3]["apply"]["changed"], 1);
    for p in &old {
        let out = fx.auditor_verify(ID, p);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // New receipts continue the same chain in format 2.
    let new = fx.append(3);
    let r = fx.verify();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!((r.receipts, r.signed, r.first_broken), (7, 7, None));
    assert_eq!(r.head.as_ref().unwrap().sequence, 7);
    let fifth: serde_json::Value = serde_json::from_slice(&fs::read(&new[0]).unwrap()).unwrap();
    assert_eq!(fifth["format_version"], FORMAT_VERSION);
    assert_eq!(fifth["sequence"], 5);
    assert_eq!(fifth["previous"], sha256_hex(&fs::read(&old[3]).unwrap()));
    let apply: serde_json::Value = serde_json::from_slice(&fs::read(&new[2]).unwrap()).unwrap();
    assert_eq!(apply["command"], "apply");
    assert_eq!(apply["apply"]["changed"], 1);
    for p in &new {
        assert!(fx.auditor_verify(ID, p).status.success());
    }

    // An unknown major in the old part is refused, not guessed at; the
    // receipts before it stay intact.
    let text = fs::read_to_string(&old[1])
        .unwrap()
        .replace("\"format_version\":1", "\"format_version\":7");
    fs::write(&old[1], text).unwrap();
    let r = fx.verify();
    assert!(
        of_kind(&r, ProblemKind::UnsupportedVersion)[0]
            .contains("format_version 7 is not supported (this spine reads formats 1 and 2)")
    );
    assert_eq!(r.first_broken, Some(2));
}

#[test]
fn format_2_ties_apply_counts_to_apply_receipts() {
    let fx = Fx::new();
    let signer = fx.signer();
    // An apply body without its counts is refused before anything is written.
    let mut b = body(2);
    b.apply = None;
    let err = fx.store.append(b, &signer).unwrap_err().to_string();
    assert!(err.contains("apply"), "{err}");
    // So is a plan body that carries apply counts.
    let mut b = body(1);
    b.apply = Some(ApplySummary::default());
    assert!(fx.store.append(b, &signer).is_err());
    assert!(fx.store.list().unwrap().is_empty(), "nothing was written");

    // A format 2 apply receipt stripped of `apply` (and re-signed, so only the
    // schema can tell) fails verify; the same bytes as format 1 pass.
    let paths = fx.append(3);
    let strip = |version: u64| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(&paths[2]).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("apply");
        v["format_version"] = version.into();
        fs::write(&paths[2], spine::receipt::canonical::value_to_bytes(&v)).unwrap();
        ssh_keygen_sign(&fx.key, "spine-receipt@spine", &paths[2]);
    };
    strip(2);
    let r = fx.verify();
    let schema = of_kind(&r, ProblemKind::Schema);
    assert!(
        schema
            .iter()
            .any(|m| m.contains("\"apply\" is a required property")),
        "{schema:#?}"
    );
    strip(1);
    let r = fx.verify();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
}

#[test]
fn concurrent_appends_from_threads_form_one_chain() {
    let fx = Fx::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // A verifier running alongside never sees a half-done append.
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = fx.verify();
                assert!(r.is_ok(), "{:#?}", r.problems);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let appenders: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let store = Store::open(fx.store.dir()).unwrap();
                    let signer = fx.signer();
                    for i in 0..5 {
                        store.append(body(i), &signer).unwrap();
                    }
                })
            })
            .collect();
        for a in appenders {
            a.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let r = fx.verify();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!(r.receipts, 20);
    assert_eq!(r.head.unwrap().sequence, 20);
}

/// Helper run in child processes by the tests below (`--ignored`), never on
/// its own: it needs the folder and count they pass.
#[test]
#[ignore = "run only as a child process of the concurrency tests"]
fn child_appender() {
    let dir = std::env::var("SPINE_TEST_CHILD_DIR").expect(
        "child_appender runs as a child of the concurrency tests, with SPINE_TEST_CHILD_DIR",
    );
    let n: usize = std::env::var("SPINE_TEST_CHILD_COUNT")
        .unwrap()
        .parse()
        .unwrap();
    let signer = Signer::from_env(None).unwrap();
    assert!(signer.is_signing(), "{:?}", signer.note());
    let store = Store::open(dir).unwrap();
    for i in 0..n {
        store.append(body(i), &signer).unwrap();
    }
}

fn spawn_child(dir: &Path, count: usize, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Proc::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_appender",
        "--exact",
        "--ignored",
        "--test-threads=1",
        "--quiet",
    ])
    .env("SPINE_TEST_CHILD_DIR", dir)
    .env("SPINE_TEST_CHILD_COUNT", count.to_string())
    .env("SPINE_OPERATOR", ID)
    .env_remove("SSH_AUTH_SOCK")
    .env_remove("SPINE_SIGNING_KEY")
    .stdout(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

#[test]
fn concurrent_appends_from_processes_form_one_chain() {
    let fx = Fx::new();
    let key = fx.key.to_str().unwrap();
    let children: Vec<Child> = (0..3)
        .map(|_| spawn_child(fx.store.dir(), 5, &[("SPINE_SIGNING_KEY", key)]))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let r = fx.verify();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!(r.receipts, 15);
    let seqs: Vec<u64> = fx
        .store
        .list()
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, (1..=15).collect::<Vec<_>>());
}

/// A private ssh-agent for one test; killed (by its own pid) on drop.
struct AgentProc {
    child: Child,
    sock: PathBuf,
}

impl AgentProc {
    fn start(dir: &Path) -> AgentProc {
        let sock = dir.join("agent.sock");
        let child = Proc::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        // The socket file appears at bind(), before the agent listens: wait
        // until it accepts a connection (under load the gap is seen).
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ssh-agent did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        AgentProc { child, sock }
    }

    fn add(&self, key: &Path) {
        run(Proc::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock));
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_agent_signs_receipts() {
    let fx = Fx::new();
    let agent = AgentProc::start(&fx.root);

    let err = Signer::from_agent(&agent.sock, None, ID)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no ed25519 key"), "{err}");

    agent.add(&fx.key);
    let signer = Signer::from_agent(&agent.sock, None, ID).unwrap();
    assert_eq!(
        signer.fingerprint(),
        Some(public_key(&fx.key).fingerprint(HashAlg::Sha256).to_string())
    );
    let w = fx.store.append(body(0), &signer).unwrap();

    // Through from_env with SPINE_SIGNING_KEY naming the .pub, as ssh-keygen -Y sign -f key.pub does.
    let pubfile = fx.key.with_extension("pub");
    let sock = agent.sock.to_str().unwrap();
    let mut child = spawn_child(
        fx.store.dir(),
        2,
        &[
            ("SSH_AUTH_SOCK", sock),
            ("SPINE_SIGNING_KEY", pubfile.to_str().unwrap()),
        ],
    );
    assert!(child.wait().unwrap().success());

    let r = fx.verify();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!(r.signed, 3);
    assert!(fx.auditor_verify(ID, &w.path).status.success());
}

#[test]
fn passphrase_protected_key() {
    let fx = Fx::new();
    let key = fx.root.join("locked");
    run(Proc::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-a", "2", "-N", "sesame", "-f"])
        .arg(&key));
    let err = Signer::from_key_file(&key, None, ID)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is passphrase-protected and not in ssh-agent: run `ssh-add"),
        "{err}"
    );
    let err = Signer::from_key_file(&key, Some("wrong"), ID)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot decrypt signing key"), "{err}");
    let signer = Signer::from_key_file(&key, Some("sesame"), ID).unwrap();
    assert!(signer.is_signing());

    let ecdsa = fx.root.join("ecdsa");
    run(Proc::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&ecdsa));
    let err = Signer::from_key_file(&ecdsa, None, ID)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("receipts are signed with ed25519 keys only"),
        "{err}"
    );
}

#[test]
fn list_and_show() {
    let fx = Fx::new();
    let paths = fx.append(3);
    let list = fx.store.list().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|e| e.signature.is_some() && e.receipt.is_ok())
    );
    let run_id = list[1].run_id.clone();

    for q in ["2", "000002", run_id.as_str(), &run_id[..run_id.len() - 3]] {
        let shown = fx.store.show(q).unwrap();
        assert_eq!(shown.path, paths[1], "{q}");
        assert_eq!(shown.receipt.sequence, 2);
        assert_eq!(shown.bytes, fs::read(&paths[1]).unwrap());
    }
    let by_name = fx
        .store
        .show(paths[2].file_name().unwrap().to_str().unwrap())
        .unwrap();
    assert_eq!(by_name.receipt.sequence, 3);

    let err = fx.store.show("7").unwrap_err().to_string();
    assert!(err.starts_with("no receipt matches \"7\" in "), "{err}");
    let err = fx.store.show(&run_id[..9]).unwrap_err().to_string();
    assert!(err.contains("matches several receipts (000001-"), "{err}");

    let missing = Store::open(fx.root.join("nowhere")).unwrap();
    assert!(missing.list().unwrap().is_empty());
    assert!(missing.check(&CheckOptions::default()).unwrap().is_ok());

    let file = fx.root.join("afile");
    fs::write(&file, "").unwrap();
    let err = Store::open(&file).unwrap_err().to_string();
    assert!(
        err.ends_with("is not a directory: give the receipts directory (e.g. ./receipts)"),
        "{err}"
    );
}

#[test]
fn invalid_ids_and_identities_are_refused_before_writing() {
    let fx = Fx::new();
    let err = LoopId::parse("LOOP-immich-2025").unwrap_err().to_string();
    assert_eq!(
        err,
        "\"LOOP-immich-2025\" is not a loop id: expected LOOP-<NAME>-YYYYMMDD, e.g. LOOP-IMMICH-NET-20250214"
    );
    let mut b = body(0);
    b.plan_hash = Some("not-a-hash".into());
    let err = fx.store.append(b, &fx.signer()).unwrap_err().to_string();
    assert!(err.contains("/plan_hash"), "{err}");
    let err = fx
        .store
        .append(body(0), &Signer::unsigned("ronny smith"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("operator identity \"ronny smith\" cannot be used"),
        "{err}"
    );
    assert!(fx.store.list().unwrap().is_empty());
    let leftovers: Vec<_> = fs::read_dir(fx.store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "allowed_signers" && n != ".lock")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn registry_info_hashes_files_and_finds_git_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("SERVICE_REGISTRY.yaml"), "services: {}\n").unwrap();
    let info = RegistryInfo::collect(dir, &[Path::new("SERVICE_REGISTRY.yaml")]).unwrap();
    assert_eq!(info.git_commit, None);
    assert_eq!(
        info.files["SERVICE_REGISTRY.yaml"],
        sha256_hex(b"services: {}\n")
    );

    let git = |args: &[&str]| {
        run(Proc::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir))
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "r"]);
    let head = String::from_utf8(git(&["rev-parse", "HEAD"]).stdout).unwrap();
    let info = RegistryInfo::collect(dir, &[Path::new("SERVICE_REGISTRY.yaml")]).unwrap();
    assert_eq!(info.git_commit.as_deref(), Some(head.trim()));

    let err = RegistryInfo::collect(dir, &[Path::new("missing.yaml")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read registry file ") && err.contains("missing.yaml"),
        "{err}"
    );
}

#[test]
fn garbage_is_reported_without_panicking() {
    let fx = Fx::new();
    let dir = fx.store.dir();
    fs::write(dir.join("000001-a.json"), [0xff, 0xfe, 0x00, 0x7b]).unwrap();
    fs::write(dir.join("000002-b.json"), "{\"format_version\":1}").unwrap();
    fs::write(
        dir.join("000003-c.json"),
        "{\"format_version\":1,\"sequence\":0,\"operator\":{\"identity\":5},\"previous\":7}",
    )
    .unwrap();
    fs::write(
        dir.join("000003-c.json.sig"),
        "-----BEGIN SSH SIGNATURE-----\n!!\n",
    )
    .unwrap();
    fs::write(dir.join("18446744073709551615-z.json"), "[]").unwrap();
    fs::write(
        dir.join("allowed_signers"),
        "\"unterminated ssh-ed25519\n* valid-after=\"1\" x\n",
    )
    .unwrap();

    let r = fx.verify();
    assert!(!r.is_ok());
    for kind in [
        ProblemKind::NotJson,
        ProblemKind::Schema,
        ProblemKind::SignatureMalformed,
        ProblemKind::AllowedSigners,
        ProblemKind::Gap,
    ] {
        of_kind(&r, kind);
    }
    assert_eq!(r.first_broken, Some(1));
    let err = fx
        .store
        .append(body(0), &fx.signer())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be followed"), "{err}");
    assert!(
        fx.store
            .show("2")
            .unwrap_err()
            .to_string()
            .contains("not a valid receipt")
    );
    assert_eq!(fx.store.list().unwrap().len(), 4);
}
