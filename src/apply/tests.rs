//! apply's steps against a fake transport: a host in memory that answers
//! the gather, lock, unlock and crontab scripts spine sends it.

use std::sync::{Arc, Mutex};

use base64::Engine;

use super::*;
use crate::gather::transport::Ran;
use crate::kinds::Desired;
use crate::model::Via;
use crate::secrets::env::EnvProvider;

const BLOCK: &str =
    "# BEGIN spine managed block\n0 3 * * * /usr/bin/true\n# END spine managed block\n";

#[derive(Default)]
struct FakeHost {
    reachable: bool,
    crontab: String,
    /// The lock's info ("" for a lock without info).
    lock: Option<String>,
    /// Every info the lock had (taken, then renewed).
    infos: Vec<String>,
    /// How long the crontab change takes.
    apply_delay: Duration,
    /// Exit status of the crontab change, when it should fail.
    fail_apply: Option<i32>,
    /// What the failing crontab change prints ("crontab: disk full" if unset).
    fail_said: Option<String>,
    /// The first line of every script run, in order.
    ran: Vec<String>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<FakeHost>>);

struct FakeConn(Arc<Mutex<FakeHost>>);

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The single-quoted word after `marker` in a rendered script.
fn quoted_after<'a>(script: &'a str, marker: &str) -> &'a str {
    let rest = &script[script.find(marker).expect(marker) + marker.len()..];
    &rest[..rest.find('\'').unwrap()]
}

impl FakeHost {
    fn answer(&mut self, script: &str) -> Ran {
        let ok = |stdout: String| Ran {
            stdout,
            stderr: String::new(),
            code: 0,
        };
        if script.contains("# spine gather: read-only") {
            self.ran.push("gather".into());
            let b = quoted_after(script, "\nB='");
            let mut out = format!("{b} host root fake\n");
            for line in script.lines() {
                if let Some(rest) = line.strip_prefix("printf '%s section %s\\n' \"$B\" '") {
                    let id = rest.trim_end_matches('\'');
                    out.push_str(&format!(
                        "{b} section {id}\nrc={}\ncrontab={}\n{b} end {id} 0\n",
                        b64("0"),
                        b64(&self.crontab)
                    ));
                }
            }
            return ok(out);
        }
        if script.contains("SPINE-UNLOCKED") {
            self.ran.push("unlock".into());
            let ours = quoted_after(script, "NEEDLE='").replace("'\\''", "'");
            if self.lock.as_deref().is_some_and(|l| l.contains(&ours)) {
                self.lock = None;
                return ok("SPINE-UNLOCKED\n".into());
            }
            return ok(String::new());
        }
        if script.contains("SPINE-LOCK-TAKEN") {
            self.ran.push("lock".into());
            if self.lock.is_some() {
                return ok("SPINE-LOCK-HELD\n".into());
            }
            self.lock = Some(quoted_after(script, "printf '%s\\n' '").to_string());
            self.infos.extend(self.lock.clone());
            return ok("SPINE-LOCK-TAKEN\n".into());
        }
        if script.contains("echo \"pruned ") {
            self.ran.push("prune".into());
            return ok(String::new());
        }
        if script.contains("SPINE-LOCK-AGE") {
            self.ran.push("read-lock".into());
            return ok(match &self.lock {
                Some(info) => format!("SPINE-LOCK-AGE 7\n{info}\n"),
                None => String::new(),
            });
        }
        if script.contains("SPINE-LOCK-RENEWED") {
            self.ran.push("renew".into());
            let ours = quoted_after(script, "grep -qF -- '").replace("'\\''", "'");
            if self.lock.as_deref().is_some_and(|l| l.contains(&ours)) {
                self.lock = Some(quoted_after(script, "printf '%s\\n' '").to_string());
                self.infos.extend(self.lock.clone());
                return ok("SPINE-LOCK-RENEWED\n".into());
            }
            return ok(String::new());
        }
        if script.contains("crontab -u") {
            self.ran.push("crontab".into());
            if let Some(code) = self.fail_apply {
                let said = self.fail_said.as_deref().unwrap_or("crontab: disk full");
                return Ran {
                    stdout: format!("{said}\n"),
                    stderr: String::new(),
                    code,
                };
            }
            let want = quoted_after(script, "printf '%s' '");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(want)
                .unwrap();
            self.crontab = String::from_utf8(bytes).unwrap();
            return ok(String::new());
        }
        panic!("the fake host does not know this script:\n{script}");
    }
}

impl Conn for FakeConn {
    async fn run(&self, script: &str, _sudo: bool) -> Result<Ran, String> {
        let delay = self.0.lock().unwrap().apply_delay;
        if script.contains("crontab -u") && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(self.0.lock().unwrap().answer(script))
    }

    async fn close(self) {}
}

fn route() -> Route {
    Route {
        via: Via::Lan,
        user: "root".into(),
        address: "10.203.100.5".into(),
        port: None,
        jump: None,
    }
}

impl Connect for Fake {
    type Conn = FakeConn;

    async fn connect(
        &self,
        _: &[Route],
        _: &SshOptions,
    ) -> Result<(FakeConn, Route), Vec<crate::gather::ssh::PathFailure>> {
        if !self.0.lock().unwrap().reachable {
            return Err(vec![crate::gather::ssh::PathFailure {
                route: route().describe(),
                kind: crate::gather::ssh::FailKind::Timeout,
                detail: "timed out".into(),
            }]);
        }
        Ok((FakeConn(self.0.clone()), route()))
    }
}

fn cron() -> Desired {
    Desired::new(
        &kinds::cron::Cron,
        "cron:ronny",
        "fake",
        "fake",
        BLOCK.into(),
    )
    .with_spec(
        &kinds::cron::Cron,
        &kinds::cron::Spec::User {
            user: "ronny".into(),
            scripts: Vec::new(),
            legacy_roots: Vec::new(),
        },
    )
    .unwrap()
}

fn fake(crontab: &str) -> Fake {
    Fake(Arc::new(Mutex::new(FakeHost {
        reachable: true,
        crontab: crontab.into(),
        ..FakeHost::default()
    })))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What `spine plan` would have made of the fake host now.
fn plan_of(f: &Fake) -> HostPlan {
    rt().block_on(async {
        let (conn, route) = f.connect(&[], &ssh_opts()).await.unwrap();
        let reads = kinds::read_scripts(&[cron()]).unwrap();
        let rep = read_facts(&conn, "fake", &reads).await.unwrap();
        plan::plan_host(
            &[cron()],
            &facts("fake", &route, rep),
            &ProviderHashes(&EnvProvider),
        )
    })
}

fn job(f: &Fake, planned: HostPlan) -> HostJob<Fake> {
    HostJob {
        connector: f.clone(),
        planned,
        routes: vec![route()],
        user: "root".into(),
        opts: Options {
            run_id: "20260101T000000.000Z-000000000000".into(),
            operator: "test".into(),
            confirm_timeout: Duration::from_secs(10),
            force: false,
            lock_ttl: Duration::from_secs(60),
            wait_timeout: 10,
            keep_backups: 5,
        },
        ssh: ssh_opts(),
        provider: Arc::new(EnvProvider),
        interrupted: Arc::new(AtomicBool::new(false)),
    }
}

fn ran(f: &Fake) -> Vec<String> {
    f.0.lock().unwrap().ran.clone()
}

#[test]
fn a_drifted_host_is_locked_changed_checked_and_released() {
    let f = fake("MAILTO=a\n");
    let planned = plan_of(&f);
    f.0.lock().unwrap().ran.clear();
    let out = rt().block_on(apply_host(job(&f, planned)));
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.actions.len(), 1);
    assert_eq!(out.actions[0].result, ActionResult::Changed);
    assert_eq!(f.0.lock().unwrap().crontab, format!("MAILTO=a\n{BLOCK}"));
    assert!(f.0.lock().unwrap().lock.is_none(), "the lock is released");
    assert_eq!(
        ran(&f),
        ["lock", "gather", "crontab", "gather", "prune", "unlock"]
    );
    assert!(out.facts_before.is_some() && out.facts_after.is_some());
    assert_ne!(out.facts_before, out.facts_after);
}

#[test]
fn a_stale_plan_changes_nothing_and_releases_the_lock() {
    let f = fake("");
    let planned = plan_of(&f);
    f.0.lock().unwrap().crontab = "5 * * * * /other\n".into();
    f.0.lock().unwrap().ran.clear();
    let out = rt().block_on(apply_host(job(&f, planned)));
    let e = out.error.clone().unwrap();
    assert!(
        e.starts_with("stale plan") && e.contains("cron:ronny"),
        "{e}"
    );
    assert!(out.actions.is_empty());
    assert_eq!(ran(&f), ["lock", "gather", "prune", "unlock"]);
    assert_eq!(f.0.lock().unwrap().crontab, "5 * * * * /other\n");
}

#[test]
fn a_held_lock_refuses_and_is_left_alone() {
    let f = fake("");
    let planned = plan_of(&f);
    let theirs =
        r#"{"lock_id":"L1","run_id":"R1","operator":"alice","started":"s","expires":"e","pid":7}"#;
    f.0.lock().unwrap().lock = Some(theirs.into());
    f.0.lock().unwrap().ran.clear();
    let out = rt().block_on(apply_host(job(&f, planned)));
    let e = out.error.clone().unwrap();
    assert!(
        e.contains("locked by alice") && e.contains("spine unlock fake L1"),
        "{e}"
    );
    assert_eq!(ran(&f), ["lock", "read-lock"]);
    assert_eq!(f.0.lock().unwrap().lock.as_deref(), Some(theirs));
}

#[test]
fn a_lock_without_info_refuses_and_says_how_to_clear_it() {
    let f = fake("");
    let planned = plan_of(&f);
    f.0.lock().unwrap().lock = Some(String::new());
    let out = rt().block_on(apply_host(job(&f, planned)));
    let e = out.error.clone().unwrap();
    assert!(
        e.contains("lock without info") && e.contains("7 s old") && e.contains("spine unlock fake"),
        "{e}"
    );
    assert!(out.actions.is_empty());
    assert_eq!(f.0.lock().unwrap().lock.as_deref(), Some(""));
}

#[test]
fn a_long_action_renews_the_lock_while_it_runs() {
    let f = fake("");
    let planned = plan_of(&f);
    f.0.lock().unwrap().apply_delay = Duration::from_millis(3500);
    f.0.lock().unwrap().ran.clear();
    let mut j = job(&f, planned);
    j.opts.lock_ttl = Duration::from_secs(3);
    let out = rt().block_on(apply_host(j));
    assert!(out.ok(), "{out:?}");
    let ran = ran(&f);
    let renews = ran.iter().filter(|r| *r == "renew").count();
    // Every second (a third of the TTL) during the 3.5 s change.
    assert!((2..=4).contains(&renews), "{ran:?}");
    let at = ran.iter().position(|r| r == "crontab").unwrap();
    assert!(
        ran[..at].contains(&"renew".to_string()),
        "renewed while the change ran: {ran:?}"
    );
    assert!(f.0.lock().unwrap().lock.is_none(), "released at the end");
    let infos = f.0.lock().unwrap().infos.clone();
    let expiry = |i: &String| serde_json::from_str::<LockInfo>(i).unwrap().expires;
    assert!(
        infos.len() == renews + 1 && expiry(&infos[0]) < expiry(&infos[renews]),
        "{infos:?}"
    );
}

#[test]
fn an_unreachable_host_is_a_failed_host_with_the_paths_tried() {
    let f = fake("");
    let planned = plan_of(&f);
    f.0.lock().unwrap().reachable = false;
    let out = rt().block_on(apply_host(job(&f, planned)));
    assert!(!out.ok() && out.route.is_none());
    let e = out.error.unwrap();
    assert!(
        e.starts_with("unreachable: ") && e.contains("timed out"),
        "{e}"
    );
}

#[test]
fn a_failed_action_is_recorded_and_the_lock_released() {
    let f = fake("");
    let planned = plan_of(&f);
    f.0.lock().unwrap().fail_apply = Some(3);
    let out = rt().block_on(apply_host(job(&f, planned)));
    assert_eq!(out.actions[0].result, ActionResult::Failed);
    assert_eq!(out.actions[0].exit_status, Some(3));
    let e = out.error.unwrap();
    assert!(e.contains("failed (exit 3): crontab: disk full"), "{e}");
    assert!(f.0.lock().unwrap().lock.is_none());
    assert!(
        out.facts_after.is_none(),
        "nothing applied: no convergence read"
    );
}

/// The host's last line is printed and goes into the error: a secret value
/// in it (by name, or one the provider gave) is masked.
#[test]
fn a_failed_actions_last_line_is_shown_with_secrets_masked() {
    let _known = crate::secrets::Secret::new("Vq3-provider-given".into());
    let f = fake("");
    let planned = plan_of(&f);
    {
        let mut h = f.0.lock().unwrap();
        h.fail_apply = Some(1);
        h.fail_said = Some("push BACKUP_TOKEN=tok-9x7 failed, key Vq3-provider-given".into());
    }
    let out = rt().block_on(apply_host(job(&f, planned)));
    let shown = format!("{} {}", out.actions[0].message, out.error.unwrap());
    assert!(
        !shown.contains("tok-9x7") && !shown.contains("Vq3-provider-given"),
        "{shown}"
    );
    assert!(
        shown.contains("push BACKUP_TOKEN=(sensitive) failed, key (sensitive)"),
        "{shown}"
    );
}

#[test]
fn an_interrupt_before_an_action_skips_it() {
    let f = fake("");
    let planned = plan_of(&f);
    let j = job(&f, planned);
    j.interrupted.store(true, Ordering::SeqCst);
    let out = rt().block_on(apply_host(j));
    assert_eq!(out.actions[0].result, ActionResult::Skipped);
    assert!(out.interrupted && !out.ok());
    assert!(!ran(&f).contains(&"crontab".to_string()));
    assert!(f.0.lock().unwrap().lock.is_none());
}

fn ssh_opts() -> SshOptions {
    SshOptions {
        config: None,
        connect_timeout: Duration::from_secs(1),
    }
}

/// Resources left to whoever generates them make the host not converged,
/// in one sentence per generator; none, and the host may converge.
#[test]
fn handed_off_resources_are_named_in_why_the_host_is_not_converged() {
    let h = kinds::HandOff {
        generator: "cloud-init",
        route: kinds::Route::VmRestart,
    };
    assert_eq!(not_converged(&[]), None);
    let left = [
        ("netplan:/etc/netplan/50-cloud-init.yaml".to_string(), h),
        ("netplan:/etc/netplan/60-other.yaml".to_string(), h),
    ];
    assert_eq!(
        not_converged(&left).unwrap(),
        "not converged: netplan:/etc/netplan/50-cloud-init.yaml, netplan:/etc/netplan/60-other.yaml is generated by cloud-init and needs a restart from the Proxmox host (--restart-vms)"
    );
}
