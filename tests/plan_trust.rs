//! Forged plans on a real test host (10.203.121.0/24): a plan file whose
//! checksum was recomputed after an edit is refused unless the current
//! registry gives every host, route and desired state in it, and, when the
//! operator has a key, unless it carries that key's signature. Each forgery
//! exits 2 and touches nothing; the genuine signed plan then applies.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use spine::plan::Plan;
use support::scenario::{One, SECRET, converged};
use support::text;

/// spine against the test host's registry, with no signing key from the
/// environment (no ssh-agent, no SPINE_SIGNING_KEY): keys only by flag.
fn run(one: &One, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        args[0],
        "--registry",
        one.reg.to_str().unwrap(),
        "--ssh-config",
        one.cfg.to_str().unwrap(),
    ];
    all.extend_from_slice(&args[1..]);
    support::spine(
        &all,
        &[
            ("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET),
            ("SSH_AUTH_SOCK", ""),
            ("SPINE_SIGNING_KEY", ""),
        ],
    )
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    key
}

/// The plan and its signature, read without any check.
fn read(path: &Path) -> (Plan, Option<String>) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let plan = serde_json::from_value(v["plan"].clone()).unwrap();
    (plan, v["signature"].as_str().map(str::to_string))
}

/// Write a forged plan the way an attacker can: a valid checksum over the
/// edited plan, and whatever signature they choose to keep.
fn forge(path: &Path, plan: &Plan, signature: Option<String>) {
    spine::plan::file::save_signed(plan, path, signature).unwrap();
}

/// Text with miette's line wrapping undone: words separated by one space.
fn flat(t: &str) -> String {
    t.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Apply `plan` and assert it is refused with exit 2, naming `why`, and that
/// the host was not touched.
fn refused(one: &One, plan: &Path, extra: &[&str], why: &str) {
    let mut args = vec!["apply", plan.to_str().unwrap(), "--yes"];
    args.extend_from_slice(extra);
    let o = run(one, &args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(flat(&t).contains(&flat(why)), "expected `{why}` in:\n{t}");
    assert!(!t.contains("Apply these changes"), "{t}");
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("wrong-name"),
        "nothing was applied"
    );
    assert!(
        one.immich
            .ok("find /var/lib/spine/backups -type f 2>/dev/null | sort")
            .is_empty(),
        "nothing was written"
    );
    assert!(
        !one.immich.ok("crontab -u ronny -l").contains("evil"),
        "the forged cron line never reached the host"
    );
}

#[test]
fn forged_plans_are_refused_and_the_genuine_signed_plan_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.121", "52:54:00:79:02:03").up();
    one.immich.ok("tailscale set --hostname=wrong-name");
    let key = keygen(tmp.path(), "operator");
    let other = keygen(tmp.path(), "someone-else");
    let with_key = ["--signing-key", key.to_str().unwrap()];

    // An unsigned plan (no key configured anywhere).
    let unsigned = tmp.path().join("unsigned.plan");
    let o = run(&one, &["plan", "-o", unsigned.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("(unsigned: no signing key)"),
        "{}",
        text(&o)
    );
    let (good, sig) = read(&unsigned);
    assert!(sig.is_none());
    let host = good.hosts.iter().position(|h| h.host == "immich").unwrap();
    let cron = good.hosts[host]
        .resources
        .iter()
        .position(|r| r.desired.kind == "cron")
        .expect("a cron resource");
    let forged = tmp.path().join("forged.plan");

    // 1. Edited desired content, checksum recomputed.
    let mut p = good.clone();
    p.hosts[host].resources[cron]
        .desired
        .content
        .push_str("* * * * * /bin/sh -c 'echo evil > /tmp/pwned'\n");
    forge(&forged, &p, None);
    refused(
        &one,
        &forged,
        &[],
        &format!(
            "plan file {}: the desired content of `{}` on host `immich` differs from what the registry renders now",
            forged.display(),
            p.hosts[host].resources[cron].desired.id
        ),
    );

    // 2. A host the registry does not have.
    let mut p = good.clone();
    p.hosts[host].host = "evil".into();
    forge(&forged, &p, None);
    refused(
        &one,
        &forged,
        &[],
        "names host `evil`, which the registry does not have",
    );

    // 3. A route the registry does not give (the attacker's own address).
    let mut p = good.clone();
    let route = p.hosts[host]
        .route
        .as_mut()
        .expect("the plan reached the host");
    route.address = "10.203.121.66".into();
    forge(&forged, &p, None);
    refused(&one, &forged, &[], "reaches host `immich` via");
    let o = run(&one, &["apply", forged.to_str().unwrap(), "--yes"]);
    assert!(
        flat(&text(&o)).contains("10.203.121.66")
            && flat(&text(&o)).contains("which is not one of the registry's access paths for it"),
        "{}",
        text(&o)
    );

    // 4. A resource the registry does not render at all.
    let mut p = good.clone();
    p.hosts[host].resources[cron].desired.id = "cron:root".into();
    forge(&forged, &p, None);
    refused(
        &one,
        &forged,
        &[],
        "holds resource `cron:root` on host `immich`, which the registry does not render",
    );

    // A signed plan, by the operator's key.
    let signed = tmp.path().join("signed.plan");
    let mut args = vec!["plan", "-o", signed.to_str().unwrap()];
    args.extend_from_slice(&with_key);
    let o = run(&one, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(signed)"), "{}", text(&o));
    let (good_signed, sig) = read(&signed);
    let sig = sig.expect("signed");
    assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----\n"), "{sig}");

    // 5. A bad signature: the plan edited after signing, checksum recomputed,
    //    signature kept (the edit is one the registry would give, so only the
    //    signature can tell).
    let mut p = good_signed.clone();
    p.created = "2000-01-01T00:00:00Z".into();
    forge(&forged, &p, Some(sig.clone()));
    refused(
        &one,
        &forged,
        &with_key,
        "its signature does not verify: the plan was changed after it was signed",
    );

    // 6. The signature stripped: unsigned while the operator has a key.
    forge(&forged, &good_signed, None);
    refused(
        &one,
        &forged,
        &with_key,
        "is not signed, but this operator signs plans (key SHA256:",
    );

    // 7. Signed by someone else's key.
    let other_sig = sign(&other, &good_signed, "spine-plan@spine");
    forge(&forged, &good_signed, Some(other_sig));
    refused(&one, &forged, &with_key, "not by this operator's key");

    // 8. A receipt signature passed off as a plan signature.
    let receipt_sig = sign(&key, &good_signed, "spine-receipt@spine");
    forge(&forged, &good_signed, Some(receipt_sig));
    refused(
        &one,
        &forged,
        &with_key,
        // (miette may wrap inside `spine-receipt@spine`; the unit test has it whole)
        "receipt@spine`, not for plans (`spine-plan@spine`)",
    );

    // The genuine signed plan: shown before it is applied, then applied.
    let mut args = vec!["apply", signed.to_str().unwrap(), "--yes"];
    args.extend_from_slice(&with_key);
    let o = run(&one, &args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("wrong-name") && t.contains("tailscale"),
        "apply shows the plan first: {t}"
    );
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("immich-1"),
        "{t}"
    );
}

/// `ssh-keygen -Y sign` of the plan's bytes under `namespace`.
fn sign(key: &Path, plan: &Plan, namespace: &str) -> String {
    let dir = key.parent().unwrap();
    let data = dir.join(format!("plan-{namespace}.json"));
    std::fs::write(&data, spine::plan::file::plan_bytes(plan)).unwrap();
    let _ = std::fs::remove_file(data.with_extension("json.sig"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read_to_string(data.with_extension("json.sig")).unwrap()
}
