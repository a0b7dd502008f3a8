//! `spine plan` against real test hosts (sshd, cron, netplan, dockerd in
//! namespaces; stand-ins only for tailscale, qm and networkd).

mod support;

use serde_json::Value;
use support::scenario::{SECRET, Vm203, converged, immich_vm, vm203_as_found};
use support::{SshConfig, closed_port, spine, test_registry, text, wrong_host_key};

fn plan_json(
    reg: &std::path::Path,
    cfg: &std::path::Path,
    extra: &[&str],
) -> (Value, std::process::Output) {
    let mut args = vec![
        "plan",
        "--registry",
        reg.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        "--detailed-exitcode",
    ];
    args.extend_from_slice(extra);
    let out = spine(&args, &[("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET)]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan JSON: {e}\n{}", text(&out)));
    (v, out)
}

fn verdicts(plan: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for h in plan["hosts"].as_array().unwrap() {
        for r in h["resources"].as_array().unwrap() {
            out.push((
                r["desired"]["id"].as_str().unwrap().to_string(),
                r["verdict"]["status"].as_str().unwrap().to_string(),
                r["verdict"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    out
}

fn find<'a>(v: &'a [(String, String, String)], id: &str) -> &'a (String, String, String) {
    v.iter()
        .find(|(i, _, _)| i == id)
        .unwrap_or_else(|| panic!("no resource {id} in {v:#?}"))
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn vm203_as_found_plans_exactly_its_drifts() {
    let tmp = tempfile::tempdir().unwrap();
    let Vm203 {
        pve: _pve,
        immich,
        reg,
        cfg,
    } = vm203_as_found(tmp.path());
    // A compose.yml left beside the stack's docker-compose.yml (what
    // `docker compose` run by hand in the folder would read instead).
    immich.ok("cp /home/ronny/immich/docker-compose.yml /home/ronny/immich/compose.yml");
    let plan_file = tmp.path().join("immich.plan");
    let (plan, out) = plan_json(&reg, &cfg, &["-o", plan_file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "changes to make: {}",
        text(&out)
    );

    let v = verdicts(&plan);
    assert_eq!(v.len(), 12, "{v:#?}");
    for (id, status, reason) in &v {
        assert_eq!(status, "drift", "{id}: {reason}");
    }
    assert!(find(&v, "cloudinit:vm-203").2.starts_with("ipconfig0 is `ip=10.203.12.230/24,gw=10.203.12.1`, should be `ip=10.203.1.203/24,gw=10.203.1.1`"), "{v:#?}");
    assert!(!find(&v, "cloudinit:vm-203").2.contains("nameserver"));
    assert_eq!(
        find(&v, "netplan:/etc/netplan/50-cloud-init.yaml").2,
        "content differs at /network/ethernets/eth0/addresses, /network/ethernets/eth0/routes"
    );
    assert_eq!(
        find(&v, "netplan:eth0/other-files").2,
        "/etc/netplan/00-installer-config.yaml: configures eth0 (netplan merges every file it reads into eth0's configuration; apply removes the file, kept in the run's backup, and activates the network with rollback)"
    );
    let live = &find(&v, "netplan:eth0/live").2;
    assert!(
        live.starts_with("live network differs: eth0 does not have 10.203.1.203/24, eth0 also has 10.203.12.230/24, no default route via 10.203.1.1 on eth0, a default route via 10.203.12.1 on eth0; the netplan files on disk give eth0 address 10.203.12.230/24"),
        "{live}"
    );
    assert_eq!(
        find(&v, "tailscale:prefs").2,
        "the node is Stopped (`tailscale down`): apply brings it up (`tailscale up`); hostname is `immich`, should be `immich-1`"
    );
    let compose_file = &find(&v, "compose:/home/ronny/immich/docker-compose.yml").2;
    assert!(
        compose_file.contains("/services/immich-server/image")
            && compose_file.contains("/services/immich-machine-learning/image"),
        "{compose_file}"
    );
    assert_eq!(
        find(&v, "compose:/home/ronny/immich/.env").2,
        "IMMICH_VERSION differs",
        "the secret matches; only the version differs"
    );
    let containers = &find(&v, "compose:immich/containers").2;
    assert!(
        containers.contains("immich-machine-learning is not there"),
        "{containers}"
    );
    assert!(
        containers.contains("immich-server runs ghcr.io/immich-app/immich-server:v2.3.0"),
        "{containers}"
    );
    assert!(
        !containers.contains("redis") && !containers.contains("database"),
        "{containers}"
    );
    assert!(
        find(&v, "compose:/home/ronny/immich/other-compose-files")
            .2
            .starts_with("/home/ronny/immich/compose.yml: `docker compose` run in /home/ronny/immich reads it instead of docker-compose.yml"),
        "{v:#?}"
    );
    assert_eq!(
        find(&v, "compose:immich/extra").2,
        "container immich_microservices: `immich_microservices` is a legacy container of this stack"
    );
    assert_eq!(
        find(&v, "cron:tables").2,
        "/etc/cron.d/immich-offsite:2 `30 4 * * * ronny /home/ronny/ronny-ops/immich/scripts/offsite.sh` refers to a legacy root that no longer exists (apply removes it; by hand: sudo sed -i '2d' '/etc/cron.d/immich-offsite')"
    );
    let cron = &find(&v, "cron:ronny").2;
    assert!(cron.contains("the managed block is missing"), "{cron}");
    assert!(
        cron.contains("/home/ronny/ronny-ops/immich/scripts/backup-db.sh` refers to a legacy root"),
        "{cron}"
    );

    // The access path used, and the summary.
    let immich_plan = plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "immich")
        .unwrap();
    assert_eq!(immich_plan["route"]["via"], "tailscale");
    assert_eq!(plan["summary"]["unknown"], 0);
    assert_eq!(
        plan["summary"]["create"].as_u64().unwrap() + plan["summary"]["change"].as_u64().unwrap(),
        8
    );
    // The legacy container, the legacy cron job, the installer's netplan
    // file and the stray compose.yml.
    assert_eq!(plan["summary"]["remove"], 4);

    // The secret is in no output and not in the saved plan.
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    // The netplan file's text and parsed form are kept as hashes only; its
    // resource carries its typed spec, no string parameters.
    let saved_plan: Value = serde_json::from_str(&saved).unwrap();
    let netplan_file = saved_plan["plan"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["resources"].as_array().unwrap())
        .find(|r| r["desired"]["id"] == "netplan:/etc/netplan/50-cloud-init.yaml")
        .unwrap();
    let observed = &netplan_file["observed"];
    for key in ["text", "meaning"] {
        let hashed = observed[key]
            .as_object()
            .map(|o| o.keys().collect::<Vec<_>>());
        assert_eq!(hashed, Some(vec![&"sha256".to_string()]), "{observed}");
    }
    assert_eq!(observed["exists"], true, "{observed}");
    let desired = &netplan_file["desired"];
    assert!(desired.get("args").is_none(), "{desired}");
    assert_eq!(desired["spec"]["part"], "file", "{desired}");
    assert_eq!(desired["spec"]["interface"]["name"], "eth0", "{desired}");
    assert!(!text(&out).contains(SECRET) && !saved.contains(SECRET));
    // ...nor in any file the runs wrote (plans, receipts, rendered files).
    for entry in walk(tmp.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "secret leaked into {}",
            entry.display()
        );
    }
    assert!(
        tmp.path().join("receipts").read_dir().unwrap().count() >= 1,
        "the plan run wrote a receipt"
    );
    // The saved plan matches its published schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(support::repo().join("schemas/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let saved_json: Value = serde_json::from_str(&saved).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&saved_json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // Human output: path, reasons, diffs, summary line.
    let human = spine(
        &[
            "plan",
            "--registry",
            reg.to_str().unwrap(),
            "--ssh-config",
            cfg.to_str().unwrap(),
        ],
        &[("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET)],
    );
    let h = text(&human);
    assert!(
        h.contains("host immich (via tailscale ronny@immich-1)"),
        "{h}"
    );
    assert!(
        h.contains("-            - 10.203.12.230/24")
            && h.contains("+            - 10.203.1.203/24"),
        "{h}"
    );
    assert!(h.contains("summary: "), "{h}");
    assert!(!h.contains(SECRET));
}

#[test]
fn a_converged_host_plans_no_change() {
    let tmp = tempfile::tempdir().unwrap();
    let one = converged(tmp.path(), "10.203.21", "52:54:00:21:02:03")
        .with_proxmox()
        // A line of the operator's own outside the block is left alone.
        .crontab_head("MAILTO=ronny\n")
        .up();
    let (plan, out) = plan_json(&one.reg, &one.cfg, &[]);
    let v = verdicts(&plan);
    assert_eq!(
        out.status.code(),
        Some(0),
        "converged: {v:#?}\n{}",
        text(&out)
    );
    assert!(v.iter().all(|(_, s, _)| s == "in_sync"), "{v:#?}");
    assert_eq!(plan["summary"]["in_sync"], 12);
}

#[test]
fn unreachable_refused_host_key_and_no_docker_are_classified() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = "52:54:00:22:00:50";
    let immich = immich_vm("10.203.22.50/24", mac).no_docker().up();
    let reg = test_registry(tmp.path(), "10.203.22", mac, "v2.4.1");

    // No docker on the host: containers are unknown, never in sync. The
    // Proxmox host is at an address nobody holds: unreachable.
    let cfg = SshConfig::new()
        .alias("immich-1", &immich)
        .alias_at("pve", "10.203.23.10", &immich)
        .write(tmp.path());
    let (plan, out) = plan_json(&reg, &cfg, &["--connect-timeout", "3"]);
    let v = verdicts(&plan);
    let containers = find(&v, "compose:immich/containers");
    assert_eq!(containers.1, "unknown", "{v:#?}");
    assert!(containers.2.contains("docker"), "{containers:?}");
    let pve = plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "pve")
        .unwrap();
    assert!(pve["route"].is_null());
    assert_eq!(pve["failures"][0]["kind"], "unreachable", "{pve:#}");
    assert_eq!(find(&v, "cloudinit:vm-203").1, "unknown");
    assert_eq!(plan["summary"]["unreachable"], 1);
    // The host's health endpoint was probed beside its drift: nothing holds
    // the registry's LAN address, so it cannot be OK.
    let probe = &plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "immich")
        .unwrap()["health"][0];
    assert_eq!(probe["id"], "immich-ping", "{probe:#}");
    assert_eq!(probe["url"], "http://10.203.22.203:2283/api/server/ping");
    assert!(
        ["FAIL", "TIMEOUT"].contains(&probe["status"].as_str().unwrap()),
        "{probe:#}"
    );
    assert_ne!(out.status.code(), Some(0));

    // sshd not listening on the port: refused. A host key that is not the
    // one known: host_key (never accepted).
    closed_port(&cfg, "immich-1");
    wrong_host_key(&cfg, "10.203.22.203", &immich, "    ConnectTimeout 3\n");

    let (plan, _) = plan_json(&reg, &cfg, &["immich", "--connect-timeout", "3"]);
    let host = plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "immich")
        .unwrap();
    assert!(host["route"].is_null(), "{host:#}");
    let kinds: Vec<&str> = host["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "refused", "{host:#}");
    assert_eq!(kinds[1], "host_key", "{host:#}");
    assert!(verdicts(&plan).iter().all(|(_, s, _)| s == "unknown"));
}
