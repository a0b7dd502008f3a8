//! Fault tests for `spine apply` on real test hosts. Each asserts that
//! nothing is lost: the old files are intact or recoverable from the run's
//! backup folder, and the host still answers.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::scenario::{
    HOME, One, SECRET, apply_network, converged, immich_vm, netplan_owned_registry, proxmox,
};
use support::{SshConfig, assert_rolled_back, over_the_tailnet, text};

fn backups(one: &One) -> String {
    one.immich
        .ok("find /var/lib/spine/backups -type f 2>/dev/null | sort")
}

#[test]
fn a_stale_plan_is_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.40", "52:54:00:40:02:03").up();
    one.immich.ok("tailscale set --hostname=wrong-name");
    let plan = tmp.path().join("p.plan");
    let o = one.spine(&["plan", "-o", plan.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // Someone edits the crontab after the plan was made.
    one.immich
        .ok("(crontab -u ronny -l; echo '0 5 * * * /bin/true') | crontab -u ronny -");
    let o = one.apply(&[plan.to_str().unwrap(), "--yes"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("stale plan") && t.contains("cron:ronny"), "{t}");
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("wrong-name"),
        "nothing was applied"
    );
    assert!(backups(&one).is_empty(), "nothing was written");
    assert!(
        one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0),
        "lock released"
    );
}

#[test]
fn tampered_truncated_and_foreign_plans_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.41", "52:54:00:41:02:03").up();
    one.immich.ok("tailscale set --hostname=wrong-name");
    let plan = tmp.path().join("p.plan");
    let o = one.spine(&["plan", "-o", plan.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let good = std::fs::read_to_string(&plan).unwrap();
    assert!(
        good.contains("wrong-name"),
        "the plan saw the drift: {}",
        text(&o)
    );

    std::fs::write(&plan, good.replacen("wrong-name", "wrong-nama", 1)).unwrap();
    let o = one.apply(&[plan.to_str().unwrap(), "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("modified after it was written"),
        "{}",
        text(&o)
    );

    std::fs::write(&plan, &good[..good.len() / 2]).unwrap();
    let o = one.apply(&[plan.to_str().unwrap(), "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("is not a spine plan (or is truncated)"),
        "{}",
        text(&o)
    );

    std::fs::write(&plan, &good).unwrap();
    let health = one.reg.join("services.health.yaml");
    let h = std::fs::read_to_string(&health).unwrap();
    std::fs::write(&health, format!("{h}# edited\n")).unwrap();
    let o = one.apply(&[plan.to_str().unwrap(), "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("made from another registry"),
        "{}",
        text(&o)
    );
    std::fs::write(&health, h).unwrap();

    // Without a terminal and without --yes, apply refuses.
    let o = one.apply(&[plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("pass --yes"), "{}", text(&o));
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("wrong-name")
    );
}

#[test]
fn a_held_lock_refuses_apply_and_unlock_respects_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.42", "52:54:00:42:02:03").up();
    one.immich.ok("tailscale set --hostname=wrong-name");
    let info = r#"{"lock_id":"L1","run_id":"R1","operator":"alice@laptop","started":"2026-11-23T10:00:00Z","expires":"2999-01-01T00:00:00Z","pid":4242}"#;
    one.immich.ok(&format!(
        "mkdir -p /var/lib/spine/lock && printf '%s\\n' '{info}' > /var/lib/spine/lock/info"
    ));
    let o = one.apply(&["--yes"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("host is locked by alice@laptop (run R1")
            && t.contains("spine unlock immich L1"),
        "{t}"
    );
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("wrong-name")
    );

    let o = one.spine(&["unlock", "immich", "OTHER"]);
    assert_eq!(o.status.code(), Some(1), "wrong id: {}", text(&o));
    let o = one.spine(&["unlock", "immich", "L1"]);
    assert_eq!(o.status.code(), Some(1), "not expired: {}", text(&o));
    assert!(text(&o).contains("may still be running"));
    let o = one.spine(&["unlock", "immich", "L1", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0));

    // An expired lock can be broken without --force.
    let expired = info.replace("2999-01-01", "2001-01-01");
    one.immich.ok(&format!(
        "mkdir -p /var/lib/spine/lock && printf '%s\\n' '{expired}' > /var/lib/spine/lock/info"
    ));
    assert!(one.spine(&["unlock", "immich", "L1"]).status.success());

    // Two applies of one plan at once: one applies, the other is refused
    // (locked, or stale once the first has changed the host).
    let plan = tmp.path().join("p.plan");
    assert!(
        one.spine(&["plan", "-o", plan.to_str().unwrap()])
            .status
            .success()
    );
    let receipts = tmp.path().join("receipts");
    let spawn = || one.spawn(&["apply", plan.to_str().unwrap(), "--yes"], &receipts);
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?}\n{}\n{}",
        text(&a),
        text(&b)
    );
    // Each of the two runs left its receipt, with its own exit code (the
    // two newest; the refused apply above left one before them).
    let mut files: Vec<_> = std::fs::read_dir(&receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut recorded: Vec<i64> = files[files.len() - 2..]
        .iter()
        .map(|p| {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            assert_eq!(r["command"], "apply", "{r}");
            r["exit_code"].as_i64().unwrap()
        })
        .collect();
    recorded.sort();
    assert_eq!(recorded, [0, 1], "receipts in {}", receipts.display());
    let loser = if a.status.success() {
        text(&b)
    } else {
        text(&a)
    };
    assert!(
        loser.contains("host is locked by") || loser.contains("stale plan"),
        "{loser}"
    );
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("\"HostName\": \"immich-1\"")
    );
}

#[test]
fn a_lock_without_info_refuses_apply_and_unlock_clears_it_once_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.122", "52:54:00:7a:02:03").up();
    one.immich.ok("tailscale set --hostname=wrong-name");
    // An older spine died between `mkdir lock` and writing its info.
    one.immich.ok("mkdir -p /var/lib/spine/lock");
    let o = one.apply(&["--yes"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("locked by a lock without info") && t.contains("spine unlock immich"),
        "{t}"
    );
    let o = one.spine(&["unlock", "immich"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "younger than the TTL: {t}");
    assert!(
        t.contains("lock without info") && t.contains("--force"),
        "{t}"
    );
    // Older than the TTL: cleared without --force, and the message says why.
    one.immich.ok("touch -d '2 hours ago' /var/lib/spine/lock");
    let o = one.spine(&["unlock", "immich"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("a lock without info") && t.contains("older than the lock TTL"),
        "{t}"
    );
    assert!(one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0));
    // Young again, --force clears it.
    one.immich.ok("mkdir -p /var/lib/spine/lock");
    let o = one.spine(&["unlock", "immich", "--force"]);
    assert!(
        o.status.success() && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    // Apply takes a lock that is a file holding its info, and releases it.
    let o = one.apply(&["--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0));
    assert!(
        one.immich
            .ok("tailscale status --json")
            .contains("\"HostName\": \"immich-1\"")
    );
}

#[test]
fn a_compose_service_that_never_becomes_healthy_times_out_and_keeps_the_old_files() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.43", "52:54:00:43:02:03").up();
    // v2.9.9: a server image whose healthcheck never passes.
    one.immich.ok(
        "printf 'FROM ghcr.io/immich-app/immich-server:v2.4.1\\nHEALTHCHECK --interval=1s --retries=1 CMD [\"/bin/busybox\",\"false\"]\\n' \
         | DOCKER_BUILDKIT=0 docker build -q -t ghcr.io/immich-app/immich-server:v2.9.9 - >/dev/null",
    );
    let before = one.immich.ok(&format!("cat {HOME}/docker-compose.yml"));
    one.immich.ok("docker tag ghcr.io/immich-app/immich-machine-learning:v2.4.1 ghcr.io/immich-app/immich-machine-learning:v2.9.9");
    let p = one.reg.join("STACK_REGISTRY.yaml");
    let t = std::fs::read_to_string(&p)
        .unwrap()
        .replace("v2.4.1", "v2.9.9");
    std::fs::write(&p, t).unwrap();

    let started = Instant::now();
    let o = one.apply(&["--yes", "--wait-timeout", "8"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("compose:immich/containers failed"), "{t}");
    assert!(
        t.contains("the previous files are in /var/lib/spine/backups/"),
        "{t}"
    );
    assert!(started.elapsed() < Duration::from_secs(90));
    // The replaced compose file is recoverable from the run's backup.
    let kept = one.immich.ok(&format!(
        "cat /var/lib/spine/backups/*{HOME}/docker-compose.yml"
    ));
    assert_eq!(kept, before);
    assert!(one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0));
}

#[test]
fn a_full_disk_fails_the_write_and_leaves_the_old_file_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.44", "52:54:00:44:02:03")
        .compose_dir("/opt/immich")
        .before_deploy("mount -t tmpfs -o size=512k tmpfs /opt")
        .up();
    // A drifted .env, then fill /opt.
    one.immich.ok("sed -i 's|^TZ=.*|TZ=UTC|' /opt/immich/.env");
    let before = one.immich.ok("cat /opt/immich/.env");
    one.immich
        .ok("dd if=/dev/zero of=/opt/filler bs=4k 2>/dev/null || true");
    let o = one.apply(&["--yes"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.to_lowercase().contains("no space left"), "{t}");
    assert!(!t.contains(SECRET));
    assert_eq!(
        one.immich.ok("cat /opt/immich/.env"),
        before,
        "the old file is whole"
    );
    assert!(
        one.immich
            .ok("ls -A /opt/immich")
            .lines()
            .all(|l| !l.starts_with(".spine.")),
        "no temp file left"
    );
    assert!(one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0));
}

#[test]
fn a_netplan_change_that_cuts_ssh_rolls_back_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    // The host is at 10.203.45.50; the registry moves it into 10.203.46.0/24,
    // a subnet this machine cannot reach: the confirmation never comes.
    let immich = immich_vm("10.203.45.50/24", "52:54:00:45:00:50")
        .no_docker()
        .up();
    let reg = netplan_owned_registry(tmp.path(), "10.203.46", "52:54:00:45:00:50");
    let cfg = SshConfig::new()
        .alias("immich-1", &immich)
        .direct("10.203.46.203", &immich)
        .alias_at("pve", "10.203.47.10", &immich)
        .write(tmp.path());
    let before = immich.ok("cat /etc/netplan/50-cloud-init.yaml");
    assert_rolled_back(Duration::from_secs(80), || {
        apply_network(&reg, &cfg, "12", "2")
    });
    // The host answers on its old address with its old file.
    assert!(
        immich
            .ok("ip -4 -o addr show dev eth0")
            .contains("10.203.45.50/24")
    );
    assert_eq!(immich.ok("cat /etc/netplan/50-cloud-init.yaml"), before);
    let receipts = std::fs::read_dir(tmp.path().join("receipts")).unwrap();
    let body: String = receipts
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(body.contains("\"status\":\"rolled_back\""), "{body}");
}

#[test]
fn a_network_change_is_confirmed_over_the_tailnet_path_the_operator_came_by() {
    let tmp = tempfile::tempdir().unwrap();
    // The operator reaches the VM over Tailscale (the alias immich-1: a path
    // into the host that does not depend on its LAN address, here sshd on
    // the host's stdin through the harness, as the tailnet stand-in has no
    // network). The registry moves the VM from 10.203.123.50 to
    // 10.203.124.203, which this machine cannot reach directly: before,
    // confirmation dialled that address and the host rolled back every time.
    let immich = immich_vm("10.203.123.50/24", "52:54:00:7b:00:50")
        .no_docker()
        .harness_ts_ip()
        .up();
    let reg = netplan_owned_registry(tmp.path(), "10.203.124", "52:54:00:7b:00:50");
    let cfg = SshConfig::new()
        .alias("immich-1", &immich)
        .direct("10.203.124.203", &immich)
        .alias_at("pve", "10.203.125.10", &immich)
        .write(tmp.path());
    over_the_tailnet(&cfg, "immich-1", &immich);
    let o = apply_network(&reg, &cfg, "30", "10");
    let t = text(&o);
    assert!(
        t.contains("applied and confirmed over a fresh connection (tailscale ronny@immich-1)"),
        "{t}"
    );
    assert!(!t.contains("ROLLED BACK"), "{t}");
    // Disarmed: the host's timer finds no armed marker and keeps the new address.
    let addr = immich.ok("ip -4 -o addr show dev eth0");
    assert!(
        addr.contains("10.203.124.203/24") && !addr.contains("10.203.123.50"),
        "{addr}"
    );
    assert!(
        immich
            .ok("ls /var/lib/spine")
            .lines()
            .all(|l| !l.starts_with("rolledback-") && !l.starts_with("armed-"))
    );
    // This machine cannot reach the new address directly (what confirmation
    // dialled before).
    let direct = std::process::Command::new("ssh")
        .args([
            "-F",
            cfg.to_str().unwrap(),
            "-o",
            "ConnectTimeout=3",
            "ronny@10.203.124.203",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!direct.status.success());
}

#[test]
fn sshd_killed_mid_apply_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.48", "52:54:00:48:02:03").up();
    one.immich
        .ok("cd /home/ronny/immich && docker compose rm -sf immich-machine-learning 2>&1");
    one.immich.ok("tailscale set --hostname=wrong-name");
    let before = one.immich.ok(&format!("cat {HOME}/docker-compose.yml"));
    let child = one.spawn(&["apply", "--yes"], &tmp.path().join("receipts"));
    // Once the run holds the lock, kill every sshd of the host.
    let deadline = Instant::now() + Duration::from_secs(30);
    while one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0) {
        assert!(Instant::now() < deadline, "apply never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only this host's sshd processes: the ones in its network namespace
    // (test hosts share the machine's PID namespace).
    one.immich
        .ok("pkill -KILL --ns $$ --nslist net -x sshd || true");
    let o = child.wait_with_output().unwrap();
    support::assert_apply_agrees(&o, &tmp.path().join("receipts"));
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    // Nothing half-written: the compose file is the old one or the new one, whole.
    let now = one.immich.ok(&format!("cat {HOME}/docker-compose.yml"));
    assert!(
        now == before || now.contains("immich-machine-learning"),
        "{now}"
    );
    assert!(
        one.immich
            .ok(&format!("ls -A {HOME}"))
            .lines()
            .all(|l| !l.starts_with(".spine."))
    );
    // The host comes back; the lock left behind names the run and can be broken.
    one.immich.ok("/usr/sbin/sshd -f /etc/ssh/sshd_config");
    let info = one.immich.ok("cat /var/lib/spine/lock 2>/dev/null || true");
    if let Some(id) = info
        .split("\"lock_id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
    {
        let o = one.spine(&["unlock", "immich", id, "--force"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = one.spine(&["plan"]);
    assert!(
        o.status.success() && text(&o).contains("host immich (via"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_interrupted_apply_finishes_the_action_in_flight_and_unlocks() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.49", "52:54:00:49:02:03").up();
    one.immich
        .ok("cd /home/ronny/immich && docker compose rm -sf immich-machine-learning 2>&1");
    one.immich.ok("crontab -u ronny -r");
    let child = one.spawn(&["apply", "--yes"], &tmp.path().join("receipts"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while one
        .immich
        .sh("pgrep --ns $$ --nslist net -f '[c]ompose -f docker-compose.yml -p immich up'")
        .status
        .code()
        != Some(0)
    {
        assert!(Instant::now() < deadline, "compose never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    support::assert_apply_agrees(&o, &tmp.path().join("receipts"));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("INTERRUPTED"), "{t}");
    assert!(
        t.contains("interrupted before this action"),
        "the cron change after it was not started: {t}"
    );
    assert!(
        one.immich
            .ok("docker ps --format '{{.Names}}'")
            .contains("immich_machine_learning"),
        "the action in flight finished"
    );
    assert!(
        one.immich.sh("test -e /var/lib/spine/lock").status.code() != Some(0),
        "lock released"
    );
    let receipts = std::fs::read_dir(tmp.path().join("receipts")).unwrap();
    let body: String = receipts
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(body.contains("\"status\":\"interrupted\""), "{body}");
}

// ---------------------------------------------------------------------------
// VM restarts from the Proxmox host (issue 14). Subnets 10.203.140-159: the
// Proxmox host on NEW.10, the VM on OLD.230, the registry wants NEW.203.

struct Vm {
    pve: support::TestHost,
    vm: support::TestHost,
    reg: std::path::PathBuf,
    cfg: std::path::PathBuf,
    receipts: std::path::PathBuf,
}

impl Vm {
    fn spine(&self, args: &[&str]) -> std::process::Output {
        let mut a = args.to_vec();
        a.extend(["--receipts", self.receipts.to_str().unwrap()]);
        support::scenario::spine_on(&self.reg, &self.cfg, &a)
    }

    /// `spine apply ARGS`; its output, exit code and receipt agree.
    fn apply(&self, args: &[&str]) -> std::process::Output {
        let mut a = vec!["apply"];
        a.extend_from_slice(args);
        let before = support::receipt_count(&self.receipts);
        let o = self.spine(&a);
        let after = support::receipt_count(&self.receipts);
        assert_eq!(after, before + 1, "one receipt per run: {}", text(&o));
        support::assert_apply_agrees(&o, &self.receipts);
        o
    }

    /// `spine apply --yes --restart-vms --wait-timeout WAIT` and its text.
    fn restart_apply(&self, wait: &str) -> (std::process::Output, String) {
        let o = self.apply(&[
            "--yes",
            "--restart-vms",
            "--wait-timeout",
            wait,
            "--connect-timeout",
            "2",
        ]);
        let t = text(&o);
        (o, t)
    }

    fn instance_id(&self) -> String {
        self.vm
            .ok("cat /var/lib/cloud/data/instance-id")
            .trim()
            .to_string()
    }

    fn host_key(&self) -> String {
        self.vm.ok("cat /etc/ssh/ssh_host_ed25519_key.pub")
    }

    fn receipts_text(&self) -> String {
        std::fs::read_dir(&self.receipts)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// VM 203 with its cloud-init network on the old subnet, the `qm` stand-in on
/// the Proxmox host linked to the VM's test host with `guest_flags`, and the
/// old subnet no longer routed from here (as in GAP-OP-094).
fn vm_needing_restart(dir: &std::path::Path, new: &str, old: &str, guest_flags: &str) -> Vm {
    let mac = format!("52:54:00:{}:02:30", &new[new.len() - 2..]);
    let pve = proxmox(
        "pv",
        &format!("{new}.10/24"),
        &format!(
            "--ipconfig0 ip={old}.230/24,gw={old}.1 --nameserver {new}.204 --net0 virtio={mac},bridge=vmbr0 --agent 1"
        ),
    );
    let vm = immich_vm(&format!("{old}.230/24"), &mac)
        .prefix("vm")
        .no_docker()
        .args(&["--extra-gw", &format!("{new}.1/24")])
        .up();
    let reg = support::test_registry(dir, new, &mac, "v2.4.1");
    pve.ok(&format!(
        "qm standin-guest 203 --guest {} {guest_flags}",
        vm.name
    ));
    let st = Command::new("ip")
        .args(["addr", "del", &format!("{old}.1/24"), "dev", "spbr0"])
        .status()
        .unwrap();
    assert!(st.success(), "take the old subnet's route away");
    let new_addr = format!("{new}.203");
    let cfg = SshConfig::new()
        .alias("immich-1", &vm)
        .direct(&new_addr, &vm)
        .alias("pve", &pve)
        .write(dir);
    Vm {
        pve,
        vm,
        reg,
        cfg,
        receipts: dir.join("receipts"),
    }
}

#[test]
fn without_restart_vms_nothing_restarts_and_apply_exits_1_naming_the_vm() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = vm_needing_restart(tmp.path(), "10.203.140", "10.203.141", "");
    let (iid, key) = (vm.instance_id(), vm.host_key());
    let o = vm.apply(&["--yes", "--connect-timeout", "3"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for want in [
        "VM 203 (immich) not converged",
        "nothing was restarted (no --restart-vms)",
        "`spine apply --restart-vms` would: on pve: qm set 203 --ipconfig0 ip=10.203.140.203/24,gw=10.203.140.1",
        "qm cloudinit update 203",
    ] {
        assert!(t.contains(want), "apply says `{want}`:\n{t}");
    }
    assert!(!t.contains("apply OK"), "{t}");
    assert_eq!(vm.instance_id(), iid, "the VM was not restarted");
    assert_eq!(vm.host_key(), key);
    assert!(vm.pve.ok("qm status 203").contains("running"));
    // The value is stored on pve but not on the drive: the next plan says so.
    let o = vm.spine(&["plan", "--connect-timeout", "3"]);
    assert!(
        text(&o).contains("ipconfig0 set but not yet on VM 203's cloud-init drive"),
        "{}",
        text(&o)
    );
    assert!(!vm.receipts_text().contains("vm-restart"));
}

#[test]
fn a_vm_that_never_comes_back_is_reported_with_what_was_done() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = vm_needing_restart(tmp.path(), "10.203.142", "10.203.143", "--boot-network off");
    let started = Instant::now();
    let (o, t) = vm.restart_apply("8");
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(started.elapsed() < Duration::from_secs(90), "{t}");
    for want in [
        "VM 203 (immich) restart from pve: FAILED",
        "done: qm set 203 --ipconfig0 ip=10.203.142.203/24,gw=10.203.142.1",
        "qm cloudinit update 203",
        "done: qm reboot 203 --timeout 8 (the guest agent answers)",
        "VM 203 did not come back on any access path within 8s (--wait-timeout)",
        "the VM has no IPv4 address",
        "not done: applying immich's own resources",
        "apply FAILED",
    ] {
        assert!(t.contains(want), "apply says `{want}`:\n{t}");
    }
    let r = vm.receipts_text();
    assert!(
        r.contains("\"vm-restart\"")
            && r.contains("vm 203 on pve; asked by")
            && r.contains("\"failed\""),
        "{r}"
    );
    // The drive was rebuilt, so nothing is pending any more: the next plan
    // still says the VM is lost, from what pve shows of it.
    let o = vm.spine(&["plan", "--connect-timeout", "3", "--detailed-exitcode"]);
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    for want in [
        "host immich: unreachable",
        "? vm 203 on pve: unknown: VM 203 is running on pve",
        "its guest agent says it has no IPv4 address",
        "cloud-init on pve is in sync with the registry, yet the VM is reachable on none of its access paths",
        "run `spine doctor immich`",
    ] {
        assert!(t.contains(want), "plan says `{want}`:\n{t}");
    }
    assert!(
        !t.contains("cloud-init drive (`qm cloudinit pending`)"),
        "{t}"
    );
    let o = vm.spine(&["plan", "--connect-timeout", "3", "--format", "json"]);
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan JSON");
    let lost = p["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "immich")
        .expect("immich in the plan");
    assert_eq!(lost["vm"]["status"], "running", "{lost:#}");
    assert_eq!(lost["vm"]["cloud_init"], "in_sync", "{lost:#}");
    assert_eq!(
        lost["vm"]["agent_addresses"],
        serde_json::json!([]),
        "{lost:#}"
    );
    // doctor: the guest agent path works, no SSH path does: exit 1.
    let o = support::scenario::spine_on(
        &vm.reg,
        &vm.cfg,
        &["doctor", "immich", "--connect-timeout", "3"],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for want in [
        "guest agent of VM 203 on pve -> qm guest exec 203 on pve",
        "`uname -srm` through the guest agent: Linux",
        "the guest agent says the VM has no IPv4 address, not the registry's 10.203.142.203/24",
        "status: FAIL (1 of 4 paths work: 4 (guest agent of VM 203 on pve); but none of the 3 SSH paths",
    ] {
        assert!(t.contains(want), "doctor says `{want}`:\n{t}");
    }
}

#[test]
fn a_vm_that_comes_back_on_another_address_is_not_converged() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = vm_needing_restart(
        tmp.path(),
        "10.203.144",
        "10.203.145",
        "--boot-address 10.203.144.77/24",
    );
    let (o, t) = vm.restart_apply("8");
    assert_eq!(o.status.code(), Some(1), "{t}");
    for want in [
        "VM 203 did not come back on any access path within 8s",
        "the guest agent says the VM has 10.203.144.77/24 (not on any of its access paths)",
        "not done: applying immich's own resources",
    ] {
        assert!(t.contains(want), "apply says `{want}`:\n{t}");
    }
    // cloud-init did write the registry's network; the stray address won.
    assert!(
        vm.vm
            .ok("cat /etc/netplan/50-cloud-init.yaml")
            .contains("10.203.144.203/24")
    );
}

#[test]
fn without_a_guest_agent_the_new_host_key_is_shown_never_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = vm_needing_restart(
        tmp.path(),
        "10.203.146",
        "10.203.147",
        "--agent off --ignore-acpi on",
    );
    let known = std::fs::read_to_string(tmp.path().join("known_hosts")).unwrap();
    let (o, t) = vm.restart_apply("4");
    assert_eq!(o.status.code(), Some(1), "{t}");
    let fp = vm.vm.ok("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    let fp = fp.split_whitespace().nth(1).unwrap();
    for want in [
        "done: qm shutdown 203 --timeout 4 (no guest agent: ACPI)",
        "done: qm stop 203 (the clean shutdown did not finish in 4s)",
        "done: qm start 203",
        "came back with a new SSH host key",
        "QEMU guest agent is not running",
        fp,
    ] {
        assert!(t.contains(want), "apply says `{want}`:\n{t}");
    }
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("known_hosts")).unwrap(),
        known,
        "known_hosts untouched"
    );
}

#[test]
fn ctrl_c_while_waiting_for_the_vm_stops_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = vm_needing_restart(tmp.path(), "10.203.148", "10.203.149", "--boot-network off");
    let iid = vm.instance_id();
    let child = support::scenario::spawn_on(
        &vm.reg,
        &vm.cfg,
        &[
            "apply",
            "--yes",
            "--restart-vms",
            "--wait-timeout",
            "120",
            "--connect-timeout",
            "2",
        ],
        &vm.receipts,
    );
    // Wait until the VM was restarted (a new instance booted).
    let deadline = Instant::now() + Duration::from_secs(60);
    while vm.instance_id() == iid {
        assert!(Instant::now() < deadline, "the VM was never restarted");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    support::assert_apply_agrees(&o, &vm.receipts);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped waiting: {t}"
    );
    for want in [
        "VM 203 (immich) restart from pve: INTERRUPTED",
        "not done: waiting for immich (interrupted after",
        "done: qm reboot 203",
    ] {
        assert!(t.contains(want), "apply says `{want}`:\n{t}");
    }
    let r = vm.receipts_text();
    assert!(
        r.contains("\"status\":\"interrupted\"") && r.contains("vm-restart"),
        "{r}"
    );
}
