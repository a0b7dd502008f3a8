//! The bench's fleet: N converged Immich hosts (test hosts in
//! 10.203.100.0/24), one registry naming all of them, and an ssh config that
//! checks each host key strictly. Each host is converged the way
//! `tests/support/scenario.rs` builds its converged host (rendered netplan,
//! Tailscale name and accept-dns, the pg-dump script, the managed crontab
//! block, the compose stack up and healthy), so a plan reports nothing to do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::scenario::{SECRET, deploy_script};
use crate::support::{TestHost, spine, text, unique};

/// Hosts are `10.203.100.101` upwards: room for this many.
pub const MAX_HOSTS: usize = 99;
const SUBNET: &str = "10.203.100";
/// Hosts set up at the same time (each starts its own dockerd and stack).
const SETUP_PARALLEL: usize = 4;

/// One member of the fleet: its registry id, address and test host.
pub struct Member {
    pub id: String,
    pub addr: String,
    pub host: TestHost,
}

pub struct Fleet {
    pub members: Vec<Member>,
    pub registry: PathBuf,
    pub ssh_config: PathBuf,
}

fn id(i: usize) -> String {
    format!("immich{i:02}")
}

fn addr(i: usize) -> String {
    format!("{SUBNET}.{}", 100 + i)
}

fn mac(i: usize) -> String {
    format!("52:54:00:64:00:{i:02x}")
}

/// The three registry files for hosts `1..=n`: each host is the shipped
/// Immich host (four services, the v2 compose stack, the pg-dump job,
/// Tailscale) without a Proxmox host, reached over the LAN by address.
pub fn registry(dir: &Path, n: usize) -> PathBuf {
    let (mut services, mut hosts, mut stacks, mut health) =
        (String::new(), String::new(), String::new(), String::new());
    for i in 1..=n {
        let (h, a, m) = (id(i), addr(i), mac(i));
        for (svc, port, container, extra) in [
            (
                "server",
                2283,
                "server",
                "    health: /api/server/ping\n    secrets_project: immich\n",
            ),
            ("ml", 3003, "machine_learning", ""),
            (
                "postgres",
                5432,
                "postgres",
                "    secrets_project: immich\n",
            ),
            ("redis", 6379, "redis", ""),
        ] {
            let _ = write!(
                services,
                "  {h}-{svc}:\n    host: {h}\n    port: {port}\n    container: {h}_{container}\n    compose: ~/immich/docker-compose.yml\n{extra}    status: active\n"
            );
        }
        let _ = write!(
            hosts,
            "  {h}:
    ssh_user: ronny
    os: ubuntu-24.04
    desired:
      ssh_user: ronny
      access:
        - via: lan
          address: {a}
      network:
        owner: cloud-init
        file: /etc/netplan/50-cloud-init.yaml
        interface: eth0
        mac: \"{m}\"
        address: {a}/24
        gateway: {SUBNET}.1
        nameservers: [{SUBNET}.204]
      tailscale:
        hostname: {h}
        accept_dns: false
"
        );
        let _ = write!(
            stacks,
            "  - stack_id: {h}
    name: Immich {i}
    repo: agentic-spine
    path: lan:{h}
    compose_files: []
    deploy_method: manual_vm
    deploy_target: {h}
    status: active
    desired:
      host: {h}
      services: [{h}-server, {h}-ml, {h}-postgres, {h}-redis]
      compose:
        project: immich
        directory: /home/ronny/immich
        template: immich
        version: v2.4.1
        services:
          immich-server: {{registry: {h}-server, container: {h}_server, image: \"ghcr.io/immich-app/immich-server:v2.4.1\"}}
          immich-machine-learning: {{registry: {h}-ml, container: {h}_machine_learning, image: \"ghcr.io/immich-app/immich-machine-learning:v2.4.1\"}}
          redis: {{registry: {h}-redis, container: {h}_redis, image: \"docker.io/valkey/valkey:8-bookworm\"}}
          database: {{registry: {h}-postgres, container: {h}_postgres, image: \"ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0\"}}
        env:
          UPLOAD_LOCATION: /mnt/immich/library
          DB_DATA_LOCATION: /home/ronny/immich/postgres
          TZ: America/New_York
          DB_USERNAME: postgres
          DB_DATABASE_NAME: immich
        secrets:
          DB_PASSWORD: {{project: immich, key: DB_PASSWORD}}
      cron:
        - id: {h}-pg-dump
          user: ronny
          schedule: \"0 3 * * *\"
          command: /home/ronny/immich/scripts/pg-dump.sh --keep-days 7
          scripts: [/home/ronny/immich/scripts/pg-dump.sh]
      legacy_roots: [~/ronny-ops]
"
        );
        let _ = write!(
            health,
            "  - id: {h}-ping\n    host: {h}\n    url: http://{a}:2283/api/server/ping\n    expect: 200\n    expect_body: '{{\"res\":\"pong\"}}'\n    enabled: true\n"
        );
    }
    let reg = dir.join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    let files = [
        (
            "SERVICE_REGISTRY.yaml",
            format!(
                "services:\n{services}hosts:\n{hosts}infisical_projects:\n  immich:\n    environment: prod\n    path: /spine/services/immich\n"
            ),
        ),
        (
            "STACK_REGISTRY.yaml",
            format!("version: 1\nstacks:\n{stacks}"),
        ),
        (
            "services.health.yaml",
            format!("version: 1\nendpoints:\n{health}"),
        ),
    ];
    for (name, body) in files {
        std::fs::write(
            reg.join(name),
            format!("# spine plan bench: generated\n{body}"),
        )
        .unwrap();
    }
    reg
}

/// Bring up and converge one host from the rendered files in `rendered`.
fn converge(i: usize, rendered: &Path) -> Member {
    let (h, a) = (id(i), addr(i));
    let host = TestHost::up(
        &unique("bp"),
        &format!("{a}/24"),
        &["--mac", &mac(i), "--ts-hostname", &h],
    );
    let file = |p: &str| std::fs::read_to_string(rendered.join(&h).join(p)).unwrap();
    let netplan = file("etc/netplan/50-cloud-init.yaml");
    host.write(
        "/etc/netplan/50-cloud-init.yaml",
        &netplan,
        "root:root",
        "600",
    );
    host.ok("tailscale set --accept-dns=false");
    deploy_script(&host);
    let cron = host.sh_input("crontab -u ronny -", &file("cron/ronny"));
    assert!(cron.status.success(), "crontab on {h}");
    let dir = "/home/ronny/immich";
    let env = file("home/ronny/immich/.env")
        .replace("DB_PASSWORD=(sensitive)", &format!("DB_PASSWORD={SECRET}"));
    host.write(
        &format!("{dir}/docker-compose.yml"),
        &file("home/ronny/immich/docker-compose.yml"),
        "ronny:ronny",
        "644",
    );
    host.write(&format!("{dir}/.env"), &env, "ronny:ronny", "600");
    host.write(HEALTH_OVERRIDE, HEALTH, "root:root", "644");
    host.ok(&format!(
        "cd {dir} && docker compose {COMPOSE_FILES} up -d --quiet-pull 2>&1"
    ));
    Member {
        id: h,
        addr: a,
        host,
    }
}

/// The stand-in images check their health every 2 s, which on 20 hosts is a
/// `runc exec` every 50 ms: enough to load the machine the bench measures.
/// The real Immich images use Docker's default, 30 s; so does the bench,
/// through a compose override outside the stack's folder (spine reads the
/// stack's own file, which stays as rendered).
const HEALTH_OVERRIDE: &str = "/root/spine-bench-health.yml";
const HEALTH: &str = "services:
  immich-server:
    healthcheck: {interval: 30s, timeout: 5s}
  immich-machine-learning:
    healthcheck: {interval: 30s, timeout: 5s}
";
const COMPOSE_FILES: &str = "-f docker-compose.yml -f /root/spine-bench-health.yml";

/// Wait until a member's stack is up and healthy (the first check runs
/// after one interval, so all members wait at once).
fn wait_healthy(m: &Member) {
    m.host.ok(&format!(
        "cd /home/ronny/immich && docker compose {COMPOSE_FILES} up -d --wait 2>&1"
    ));
}

impl Fleet {
    /// Hosts `1..=n`, up and converged, `SETUP_PARALLEL` at a time. A host
    /// that fails panics; the ones already up are removed by their guards.
    pub fn up(dir: &Path, n: usize) -> Fleet {
        assert!(
            (1..=MAX_HOSTS).contains(&n),
            "between 1 and {MAX_HOSTS} hosts"
        );
        let registry = registry(dir, n);
        let check = spine(
            &[
                "verify",
                "--quiet",
                "--registry",
                registry.to_str().unwrap(),
                "--receipts",
                dir.join("receipts").to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            check.status.success(),
            "the bench registry does not verify:\n{}",
            text(&check)
        );
        let rendered = dir.join("rendered");
        let r = spine(
            &[
                "render",
                "--registry",
                registry.to_str().unwrap(),
                "--out",
                rendered.to_str().unwrap(),
            ],
            &[],
        );
        assert!(r.status.success(), "render: {}", text(&r));

        let next = AtomicUsize::new(1);
        let done = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..SETUP_PARALLEL.min(n) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i > n {
                            break;
                        }
                        let m = converge(i, &rendered);
                        done.lock().unwrap().push(m);
                    }
                });
            }
        });
        let mut members = done.into_inner().unwrap();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        std::thread::scope(|s| {
            for m in &members {
                s.spawn(|| wait_healthy(m));
            }
        });
        let ssh_config = ssh_config(dir, &members);
        Fleet {
            members,
            registry,
            ssh_config,
        }
    }

    /// Remove every host, several at a time.
    pub fn down(self) {
        let members = Mutex::new(self.members);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    loop {
                        let m = members.lock().unwrap().pop();
                        match m {
                            Some(m) => drop(m.host),
                            None => break,
                        }
                    }
                });
            }
        });
    }
}

/// One `Host ADDR` block per member (its host key alias and client key),
/// host keys checked strictly; spine and the floor both use this file.
fn ssh_config(dir: &Path, members: &[Member]) -> PathBuf {
    let kh = dir.join("known_hosts");
    let (mut known, mut cfg) = (String::new(), String::new());
    for m in members {
        let _ = writeln!(known, "{} {}", m.host.name, m.host.host_key());
        let _ = write!(
            cfg,
            "Host {}\n    HostKeyAlias {}\n    IdentityFile {}\n",
            m.addr,
            m.host.name,
            m.host.identity()
        );
    }
    let _ = write!(
        cfg,
        "Host *\n    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking yes\n    BatchMode yes\n",
        kh.display()
    );
    std::fs::write(&kh, known).unwrap();
    let path = dir.join("ssh_config");
    std::fs::write(&path, cfg).unwrap();
    path
}
