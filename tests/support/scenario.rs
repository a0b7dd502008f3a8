//! The "VM 203 as found" scenario (GAP-OP-094) on test hosts: the Proxmox
//! host and the VM, with the old subnet's address in cloud-init and netplan
//! (and in the installer's netplan file beside cloud-init's),
//! the backup job under the removed legacy root, the stack one version behind
//! without its ML container and with Immich v1's `immich_microservices`
//! beside it, and Tailscale under its old name.

use std::path::{Path, PathBuf};

use super::{Alias, TestHost, spine, ssh_config, test_registry, text, unique};

pub const SECRET: &str = "Sup3rSecretDbPassw0rd";
pub const MAC: &str = "52:54:00:12:02:30";

/// Render the desired files of `reg` into `out` and return one.
pub fn rendered(reg: &Path, out: &Path, host: &str, path: &str) -> String {
    let o = spine(
        &[
            "render",
            "--registry",
            reg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "render: {}", text(&o));
    std::fs::read_to_string(out.join(host).join(path.trim_start_matches('/'))).unwrap()
}

/// Put the compose stack of `reg` on the host and start it.
pub fn deploy_stack(immich: &TestHost, reg: &Path, out: &Path) {
    deploy_stack_in(immich, reg, out, "/home/ronny/immich");
}

/// Put the compose stack of `reg` (in `dir` on the host) there and start it.
pub fn deploy_stack_in(immich: &TestHost, reg: &Path, out: &Path, dir: &str) {
    let compose = rendered(reg, out, "immich", &format!("{dir}/docker-compose.yml"));
    let env = rendered(reg, out, "immich", &format!("{dir}/.env"))
        .replace("DB_PASSWORD=(sensitive)", &format!("DB_PASSWORD={SECRET}"));
    immich.write(
        &format!("{dir}/docker-compose.yml"),
        &compose,
        "ronny:ronny",
        "644",
    );
    immich.write(&format!("{dir}/.env"), &env, "ronny:ronny", "600");
    immich.ok(&format!(
        "cd {dir} && docker compose up -d --quiet-pull --wait 2>&1"
    ));
}

pub fn deploy_script(immich: &TestHost) {
    immich.write(
        "/home/ronny/immich/scripts/pg-dump.sh",
        "#!/bin/sh\nexit 0\n",
        "ronny:ronny",
        "755",
    );
}

/// The file Ubuntu's installer (subiquity) writes beside cloud-init's.
pub fn installer_config(address: &str, gateway: &str, dns: &str) -> String {
    format!(
        "# This is the network config written by 'subiquity'\nnetwork:\n  ethernets:\n    eth0:\n      addresses:\n      - {address}\n      nameservers:\n        addresses:\n        - {dns}\n        search: []\n      routes:\n      - to: default\n        via: {gateway}\n  version: 2\n"
    )
}

pub struct Vm203 {
    pub pve: TestHost,
    pub immich: TestHost,
    pub reg: PathBuf,
    pub cfg: PathBuf,
}

/// Old LAN 10.203.12.0/24 (where the VM is), new LAN 10.203.1.0/24 (where the
/// registry wants it; the Proxmox host is there).
pub fn vm203_as_found(dir: &Path) -> Vm203 {
    let pve = TestHost::up(&unique("pv"), "10.203.1.10/24", &["--no-docker"]);
    let immich = TestHost::up(
        &unique("im"),
        "10.203.12.230/24",
        &[
            "--mac",
            MAC,
            "--extra-gw",
            "10.203.1.1/24",
            "--ts-ip",
            "10.203.100.50",
            "--ts-hostname",
            "immich",
            "--dns",
            "10.203.1.204",
        ],
    );
    let reg = test_registry(dir, "10.203.1", MAC, "v2.4.1");

    // As found (GAP-OP-094): cloud-init and netplan on the old subnet.
    pve.ok("qm create 203 --name immich --ipconfig0 ip=10.203.12.230/24,gw=10.203.12.1 --nameserver 10.203.1.204");
    let netplan = rendered(
        &reg,
        &dir.join("r"),
        "immich",
        "/etc/netplan/50-cloud-init.yaml",
    )
    .replace("10.203.1.203/24", "10.203.12.230/24")
    .replace("via: 10.203.1.1", "via: 10.203.12.1");
    immich.write(
        "/etc/netplan/50-cloud-init.yaml",
        &netplan,
        "root:root",
        "600",
    );
    // Ubuntu's installer left its own file beside cloud-init's, with the old
    // address: netplan merges both.
    immich.write(
        "/etc/netplan/00-installer-config.yaml",
        &installer_config("10.203.12.230/24", "10.203.12.1", "10.203.1.204"),
        "root:root",
        "600",
    );
    // Tailscale under its old name, stopped (`tailscale down`); accept-dns already off.
    immich.ok("tailscale set --accept-dns=false && tailscale down");
    // The backup job still calls a script under the removed legacy root.
    deploy_script(&immich);
    immich.ok("printf '0 3 * * * /home/ronny/ronny-ops/immich/scripts/backup-db.sh\\n' | crontab -u ronny -");
    // ... and so does a job in /etc/cron.d that nobody remembers.
    immich.write(
        "/etc/cron.d/immich-offsite",
        "SHELL=/bin/sh\n30 4 * * * ronny /home/ronny/ronny-ops/immich/scripts/offsite.sh\n",
        "root:root",
        "644",
    );
    // The stack one version behind, the ML container missing.
    let old = test_registry(&dir.join("old"), "10.203.1", MAC, "v2.3.0");
    deploy_stack(&immich, &old, &dir.join("r-old"));
    immich.ok("cd /home/ronny/immich && docker compose rm -sf immich-machine-learning 2>&1");
    // Immich v1's microservices container still runs beside the v2 stack.
    immich.ok("docker run -d --name immich_microservices ghcr.io/immich-app/immich-server:v2.3.0 >/dev/null");

    let cfg = ssh_config(
        dir,
        &[
            Alias {
                name: "immich-1",
                hostname: Some(immich.addr()),
                host: &immich,
            },
            Alias {
                name: "10.203.1.203",
                hostname: None,
                host: &immich,
            },
            Alias {
                name: "pve",
                hostname: Some(pve.addr()),
                host: &pve,
            },
        ],
        &[&immich, &pve],
    );
    Vm203 {
        pve,
        immich,
        reg,
        cfg,
    }
}

/// One host, no Proxmox host, everything as the registry wants it.
pub struct One {
    pub immich: TestHost,
    pub reg: PathBuf,
    pub cfg: PathBuf,
}

/// A converged `immich` host at `{subnet}.203` (compose stack in
/// `compose_dir`), its registry without a Proxmox host, and an ssh config.
/// `before_deploy` runs on the host first (e.g. to mount a small tmpfs).
pub fn converged_host(
    dir: &Path,
    subnet: &str,
    mac: &str,
    compose_dir: &str,
    before_deploy: &str,
) -> One {
    let immich = TestHost::up(
        &unique("im"),
        &format!("{subnet}.203/24"),
        &[
            "--mac",
            mac,
            "--ts-ip",
            "10.203.100.50",
            "--ts-hostname",
            "immich-1",
        ],
    );
    let reg = test_registry(dir, subnet, mac, "v2.4.1");
    for f in ["SERVICE_REGISTRY.yaml", "STACK_REGISTRY.yaml"] {
        let p = reg.join(f);
        let t = std::fs::read_to_string(&p)
            .unwrap()
            .replace("    vmid: 203\n", "")
            .replace("    proxmox_host: pve\n", "")
            .replace("path: proxmox:vm-203", "path: lan:immich")
            .replace("~/immich/", &format!("{compose_dir}/"))
            .replace("/home/ronny/immich", compose_dir);
        std::fs::write(&p, t).unwrap();
    }
    // Keep the legacy pg-dump script path under /home/ronny/immich/scripts.
    let stacks = std::fs::read_to_string(reg.join("STACK_REGISTRY.yaml")).unwrap();
    std::fs::write(
        reg.join("STACK_REGISTRY.yaml"),
        stacks.replace(
            &format!("{compose_dir}/scripts"),
            "/home/ronny/immich/scripts",
        ),
    )
    .unwrap();
    if !before_deploy.is_empty() {
        immich.ok(before_deploy);
    }
    let r = dir.join("r");
    immich.write(
        "/etc/netplan/50-cloud-init.yaml",
        &rendered(&reg, &r, "immich", "/etc/netplan/50-cloud-init.yaml"),
        "root:root",
        "600",
    );
    immich.ok("tailscale set --accept-dns=false");
    deploy_script(&immich);
    let block = std::fs::read_to_string(r.join("immich/cron/ronny")).unwrap();
    immich.sh_input("crontab -u ronny -", &block);
    deploy_stack_in(&immich, &reg, &r, compose_dir);
    let cfg = ssh_config(
        dir,
        &[Alias {
            name: "immich-1",
            hostname: Some(immich.addr()),
            host: &immich,
        }],
        &[&immich],
    );
    One { immich, reg, cfg }
}

/// `args[0]` with `--registry REG --ssh-config CFG` and the rest of `args`.
fn with_registry<'a>(reg: &'a Path, cfg: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        args[0],
        "--registry",
        reg.to_str().unwrap(),
        "--ssh-config",
        cfg.to_str().unwrap(),
    ];
    all.extend_from_slice(&args[1..]);
    all
}

/// Run spine against a test registry and ssh config, with the test secret.
pub fn spine_on(reg: &Path, cfg: &Path, args: &[&str]) -> std::process::Output {
    spine(
        &with_registry(reg, cfg, args),
        &[("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET)],
    )
}

/// Start spine in the background (to interrupt it, or race two runs), output
/// piped; receipts go to `receipts`.
pub fn spawn_on(reg: &Path, cfg: &Path, args: &[&str], receipts: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_spine"))
        .args(with_registry(reg, cfg, args))
        .arg("--receipts")
        .arg(receipts)
        .env("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET)
        .env("SPINE_CONNECT_TIMEOUT", "15")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start spine")
}

impl One {
    pub fn spine(&self, args: &[&str]) -> std::process::Output {
        spine_on(&self.reg, &self.cfg, args)
    }

    pub fn spawn(&self, args: &[&str], receipts: &Path) -> std::process::Child {
        spawn_on(&self.reg, &self.cfg, args, receipts)
    }
}

/// `spine apply immich --yes` with a confirmation and connect timeout (the
/// network-confirmation tests).
pub fn apply_network(reg: &Path, cfg: &Path, confirm: &str, connect: &str) -> std::process::Output {
    spine(
        &[
            "apply",
            "immich",
            "--yes",
            "--registry",
            reg.to_str().unwrap(),
            "--ssh-config",
            cfg.to_str().unwrap(),
            "--confirm-timeout",
            confirm,
            "--connect-timeout",
            connect,
        ],
        &[("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET)],
    )
}
