//! The "VM 203 as found" scenario (GAP-OP-094) on test hosts: the Proxmox
//! host and the VM, with the old subnet's address in cloud-init and netplan
//! (and in the installer's netplan file beside cloud-init's),
//! the backup job under the removed legacy root, the stack one version behind
//! without its ML container and with Immich v1's `immich_microservices`
//! beside it, and Tailscale under its old name.

use std::path::{Path, PathBuf};

use super::{SshConfig, TestHost, spine, test_registry, text, unique};

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

/// The Tailscale address the test registry gives the Immich host.
pub const TS_IP: &str = "10.203.100.50";

/// The compose folder of the shipped registry.
pub const HOME: &str = "/home/ronny/immich";

/// A test host playing the test registry's Immich VM, to bring up with
/// [`ImmichVm::up`]: its MAC, Tailscale as the registry wants it (`--ts-ip`
/// [`TS_IP`], `--ts-hostname immich-1`), its own dockerd, a name starting
/// with `im`. The methods say what differs.
pub struct ImmichVm {
    prefix: String,
    cidr: String,
    mac: String,
    docker: bool,
    ts_ip: Option<String>,
    ts_hostname: Option<String>,
    args: Vec<String>,
}

/// The Immich VM at `cidr` (e.g. "10.203.22.50/24") with MAC `mac`.
pub fn immich_vm(cidr: &str, mac: &str) -> ImmichVm {
    ImmichVm {
        prefix: "im".into(),
        cidr: cidr.into(),
        mac: mac.into(),
        docker: true,
        ts_ip: Some(TS_IP.into()),
        ts_hostname: Some("immich-1".into()),
        args: Vec::new(),
    }
}

impl ImmichVm {
    /// The test host's name starts with `prefix`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// No docker on the host (`--no-docker`).
    pub fn no_docker(mut self) -> Self {
        self.docker = false;
        self
    }

    /// Tailscale calls the node `name` (e.g. its old name `immich`).
    pub fn ts_hostname(mut self, name: &str) -> Self {
        self.ts_hostname = Some(name.into());
        self
    }

    /// Tailscale's address as the harness gives it (100.64.X.Y), not the
    /// registry's.
    pub fn harness_ts_ip(mut self) -> Self {
        self.ts_ip = None;
        self
    }

    /// Tailscale's name as the harness gives it (the host name), not the
    /// registry's.
    pub fn harness_ts_hostname(mut self) -> Self {
        self.ts_hostname = None;
        self
    }

    /// More `testhost up` arguments (`--extra-gw CIDR`, `--dns ADDR`).
    pub fn args(mut self, more: &[&str]) -> Self {
        self.args.extend(more.iter().map(|a| a.to_string()));
        self
    }

    pub fn up(self) -> TestHost {
        let mut args: Vec<&str> = vec!["--mac", &self.mac];
        if !self.docker {
            args.push("--no-docker");
        }
        if let Some(ip) = &self.ts_ip {
            args.extend(["--ts-ip", ip]);
        }
        if let Some(name) = &self.ts_hostname {
            args.extend(["--ts-hostname", name]);
        }
        args.extend(self.args.iter().map(String::as_str));
        TestHost::up(&unique(&self.prefix), &self.cidr, &args)
    }
}

/// A Proxmox test host (no docker; the `qm` stand-in) at `cidr`, holding VM
/// 203: `qm create 203 --name immich VM203` (e.g. "--ipconfig0 ... --nameserver ...").
pub fn proxmox(prefix: &str, cidr: &str, vm203: &str) -> TestHost {
    let pve = TestHost::up(&unique(prefix), cidr, &["--no-docker"]);
    pve.ok(&format!("qm create 203 --name immich {vm203}"));
    pve
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
    // As found (GAP-OP-094): cloud-init and netplan on the old subnet.
    let pve = proxmox(
        "pv",
        "10.203.1.10/24",
        "--ipconfig0 ip=10.203.12.230/24,gw=10.203.12.1 --nameserver 10.203.1.204",
    );
    let immich = immich_vm("10.203.12.230/24", MAC)
        .ts_hostname("immich")
        .args(&["--extra-gw", "10.203.1.1/24", "--dns", "10.203.1.204"])
        .up();
    let reg = test_registry(dir, "10.203.1", MAC, "v2.4.1");

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

    let cfg = SshConfig::new()
        .alias("immich-1", &immich)
        .direct("10.203.1.203", &immich)
        .alias("pve", &pve)
        .write(dir);
    Vm203 {
        pve,
        immich,
        reg,
        cfg,
    }
}

/// A converged host, as the registry wants everything on it.
pub struct One {
    pub immich: TestHost,
    /// The Proxmox host, when the registry has one ([`Converged::with_proxmox`]).
    pub pve: Option<TestHost>,
    pub reg: PathBuf,
    pub cfg: PathBuf,
}

/// A converged Immich host to bring up with [`Converged::up`] (see
/// [`converged`]); the methods say what differs.
pub struct Converged {
    dir: PathBuf,
    subnet: String,
    mac: String,
    compose_dir: String,
    before_deploy: String,
    crontab_head: String,
    proxmox: bool,
}

/// A converged `immich` host at `{subnet}.203` with MAC `mac`: netplan,
/// Tailscale, the pg-dump script, the managed crontab block and the compose
/// stack (in [`HOME`]) as the registry wants them; its registry without a
/// Proxmox host (no VM id, reached over the LAN), and an ssh config
/// (`immich-1` at the host), all in `dir`.
pub fn converged(dir: &Path, subnet: &str, mac: &str) -> Converged {
    Converged {
        dir: dir.to_path_buf(),
        subnet: subnet.into(),
        mac: mac.into(),
        compose_dir: HOME.into(),
        before_deploy: String::new(),
        crontab_head: String::new(),
        proxmox: false,
    }
}

impl Converged {
    /// The compose stack in `dir` instead (the registry says so too).
    pub fn compose_dir(mut self, dir: &str) -> Self {
        self.compose_dir = dir.into();
        self
    }

    /// Run `script` on the host before anything is put there (e.g. to mount
    /// a small tmpfs).
    pub fn before_deploy(mut self, script: &str) -> Self {
        self.before_deploy = script.into();
        self
    }

    /// Lines of the operator's own in ronny's crontab, before the managed block.
    pub fn crontab_head(mut self, lines: &str) -> Self {
        self.crontab_head = lines.into();
        self
    }

    /// The shipped registry's Proxmox host too, at `{subnet}.10`, holding VM
    /// 203 as the registry wants it (`pve` in the ssh config); the registry
    /// keeps its VM id and Proxmox path.
    pub fn with_proxmox(mut self) -> Self {
        self.proxmox = true;
        self
    }

    pub fn up(self) -> One {
        let (dir, subnet) = (&self.dir, &self.subnet);
        let pve = self.proxmox.then(|| {
            proxmox(
                "pv",
                &format!("{subnet}.10/24"),
                &format!("--ipconfig0 gw={subnet}.1,ip={subnet}.203/24 --nameserver {subnet}.204"),
            )
        });
        let immich = immich_vm(&format!("{subnet}.203/24"), &self.mac).up();
        let reg = test_registry(dir, subnet, &self.mac, "v2.4.1");
        if !self.proxmox {
            without_proxmox(&reg, &self.compose_dir);
        } else {
            assert_eq!(
                self.compose_dir, HOME,
                "with a Proxmox host the registry keeps the shipped compose folder"
            );
        }
        if !self.before_deploy.is_empty() {
            immich.ok(&self.before_deploy);
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
        immich.sh_input(
            "crontab -u ronny -",
            &format!("{}{block}", self.crontab_head),
        );
        deploy_stack_in(&immich, &reg, &r, &self.compose_dir);
        let mut cfg = SshConfig::new().alias("immich-1", &immich);
        if let Some(pve) = &pve {
            cfg = cfg.alias("pve", pve);
        }
        let cfg = cfg.write(dir);
        One {
            immich,
            pve,
            reg,
            cfg,
        }
    }
}

/// The registry `reg` without a Proxmox host (no VM id, the stack reached
/// over the LAN), its compose stack in `compose_dir`.
fn without_proxmox(reg: &Path, compose_dir: &str) {
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
}

/// The test registry with its netplan file owned by spine (`owner:
/// netplan`): spine edits that file itself, with rollback, only when it owns
/// it; with `owner: cloud-init` the fix is a restart from the Proxmox host.
pub fn netplan_owned_registry(dir: &Path, prefix: &str, mac: &str) -> PathBuf {
    let reg = test_registry(dir, prefix, mac, "v2.4.1");
    let services = reg.join("SERVICE_REGISTRY.yaml");
    let text_of = std::fs::read_to_string(&services).unwrap();
    assert!(text_of.contains("owner: cloud-init"));
    std::fs::write(
        &services,
        text_of.replace("owner: cloud-init", "owner: netplan"),
    )
    .unwrap();
    reg
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

    /// `spine apply ARGS`, asserting that what it printed, its exit code and
    /// its receipt agree ([`super::assert_apply_agrees`]).
    pub fn apply(&self, args: &[&str]) -> std::process::Output {
        let mut a = vec!["apply"];
        a.extend_from_slice(args);
        let before = super::receipt_count(&self.receipts());
        let o = self.spine(&a);
        let after = super::receipt_count(&self.receipts());
        assert_eq!(
            after,
            before + 1,
            "one receipt per run: {}",
            super::text(&o)
        );
        super::assert_apply_agrees(&o, &self.receipts());
        o
    }

    /// Where this host's runs leave their receipts (beside the registry folder).
    pub fn receipts(&self) -> PathBuf {
        self.reg
            .parent()
            .expect("the registry's folder")
            .join("receipts")
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
