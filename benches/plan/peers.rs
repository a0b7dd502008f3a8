//! The peers the plan bench times beside spine (issue 15): Ansible's
//! `ansible-playbook --check --diff` and `pyinfra --dry`, each reading the
//! same facts from the same hosts with the playbook and the deploy under
//! `benches/peers/` (real files; their README maps them to spine's gather
//! sections). Both come from PyPI, pinned in `benches/peers/requirements.txt`,
//! installed by the bench into a venv under `target/tmp/` when missing.
//!
//! A run counts only when its output shows every host read: Ansible's
//! recap line for each host with `unreachable=0 failed=0` and the last
//! task's message for each host; pyinfra's exit 0 and the deploy's last line
//! for each host. Anything else is an error, never a time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::support::scenario::SECRET;
use crate::support::{repo, text};

fn peers_dir() -> PathBuf {
    repo().join("benches/peers")
}

/// The venv with the pinned peers: `SPINE_BENCH_PEERS_VENV`, or
/// `target/tmp/bench-peers-venv`.
fn venv() -> PathBuf {
    std::env::var_os("SPINE_BENCH_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-peers-venv"))
}

/// `NAME==VERSION` lines of the requirements file.
fn pins() -> Vec<(String, String)> {
    let path = peers_dir().join("requirements.txt");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, v) = l
                .split_once("==")
                .unwrap_or_else(|| panic!("{}: `{l}` is not NAME==VERSION", path.display()));
            (n.to_string(), v.to_string())
        })
        .collect()
}

/// The installed version of each pinned package, when all match.
fn installed(venv: &Path) -> Result<String, String> {
    let mut found = Vec::new();
    for (name, version) in pins() {
        let out = Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
            ])
            .arg(&name)
            .output()
            .map_err(|e| format!("{}: {e}", venv.display()))?;
        let have = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || have != version {
            return Err(format!("{name} {version} not installed (found `{have}`)"));
        }
        found.push(format!("{name} {version}"));
    }
    Ok(found.join(", "))
}

/// Make sure the venv holds the pinned peers; install them when it does
/// not (`python3 -m venv`, then pip). Returns what is installed.
pub fn ensure_installed() -> Result<String, String> {
    let venv = venv();
    if let Ok(v) = installed(&venv) {
        return Ok(v);
    }
    let python = std::env::var("SPINE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "plan bench: installing the peers ({}) into {} with {python}",
        peers_dir().join("requirements.txt").display(),
        venv.display()
    );
    let run = |c: &mut Command, what: &str| -> Result<(), String> {
        let out = c.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed:\n{}", text(&out)))
        }
    };
    run(
        Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        &format!("{python} -m venv (on Debian: apt-get install python3-venv)"),
    )?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(peers_dir().join("requirements.txt")),
        "pip install",
    )?;
    installed(&venv)
}

/// What the peers need for one fleet: the desired files per host (as spine
/// rendered them, the .env with its secret, as on the hosts), the Ansible
/// inventory and the pyinfra fleet file, a known_hosts by address.
pub struct Peers {
    dir: PathBuf,
    ssh_config: PathBuf,
    ids: Vec<String>,
}

impl Peers {
    pub fn prepare(dir: &Path, fleet: &Fleet) -> Peers {
        let dir = dir.join("peers");
        let desired = dir.join("desired");
        let rendered = dir.parent().unwrap().join("rendered");
        let (mut inventory, mut hosts, mut known) = (String::new(), Vec::new(), String::new());
        for m in &fleet.members {
            let from = rendered.join(&m.id);
            let to = desired.join(&m.id);
            std::fs::create_dir_all(&to).unwrap();
            let stack = "home/ronny/immich";
            for (src, dst) in [
                ("etc/netplan/50-cloud-init.yaml", "50-cloud-init.yaml"),
                (&format!("{stack}/docker-compose.yml"), "docker-compose.yml"),
                (&format!("{stack}/.env"), "env"),
                ("cron/ronny", "crontab"),
                ("compose/immich_containers", "containers"),
            ] {
                let body = std::fs::read_to_string(from.join(src))
                    .unwrap_or_else(|e| panic!("{}: {e}", from.join(src).display()));
                let body =
                    body.replace("DB_PASSWORD=(sensitive)", &format!("DB_PASSWORD={SECRET}"));
                std::fs::write(to.join(dst), body).unwrap();
            }
            let _ = write!(
                inventory,
                "{}\"{}\": {{\"ansible_host\": \"{}\", \"ansible_user\": \"ronny\"}}",
                if inventory.is_empty() { "" } else { ", " },
                m.id,
                m.addr
            );
            hosts.push(serde_json::json!({
                "id": m.id, "addr": m.addr, "key": m.host.identity(),
            }));
            let _ = writeln!(known, "{} {}", m.addr, m.host.host_key());
        }
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, known).unwrap();
        std::fs::write(
            dir.join("inventory.json"),
            format!(
                "{{\"fleet\": {{\"hosts\": {{{inventory}}}, \"vars\": {{\"desired_dir\": {}}}}}}}\n",
                serde_json::Value::from(desired.to_str().unwrap())
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("fleet.json"),
            serde_json::json!({
                "hosts": hosts,
                "known_hosts": known_hosts,
                "desired_dir": desired,
            })
            .to_string(),
        )
        .unwrap();
        Peers {
            dir,
            ssh_config: fleet.ssh_config.clone(),
            ids: fleet.members.iter().map(|m| m.id.clone()).collect(),
        }
    }

    /// `ansible-playbook --check --diff` on the first `n` hosts, all at once
    /// (forks = n). Each run opens its own ssh connections (a fresh control
    /// path folder, its masters closed after the run).
    pub fn ansible(&self, n: usize) -> Result<Duration, String> {
        let ids = &self.ids[..n];
        let cp = self.dir.join("cp");
        let _ = std::fs::remove_dir_all(&cp);
        std::fs::create_dir_all(&cp).unwrap();
        let mut c = Command::new(venv().join("bin/ansible-playbook"));
        c.current_dir(&self.dir)
            .args(["--check", "--diff", "-i"])
            .arg(self.dir.join("inventory.json"))
            .args(["--limit", &ids.join(",")])
            .arg(peers_dir().join("ansible/check.yml"))
            .env("ANSIBLE_CONFIG", peers_dir().join("ansible/ansible.cfg"))
            .env("ANSIBLE_HOME", self.dir.join("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", self.dir.join("ansible-tmp"))
            .env("ANSIBLE_FORKS", n.to_string())
            .env(
                "ANSIBLE_SSH_ARGS",
                format!(
                    "-F {} -o ControlMaster=auto -o ControlPersist=60s",
                    self.ssh_config.display()
                ),
            )
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", &cp)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0");
        crate::quiet_env(&mut c);
        let t = Instant::now();
        let out = c
            .output()
            .map_err(|e| format!("run ansible-playbook: {e}"))?;
        let took = t.elapsed();
        close_masters(&cp);
        check_ansible(&out, ids).map(|()| took)
    }

    /// `pyinfra --dry` with the deploy on the first `n` hosts (its default
    /// parallelism: every host at once up to 20 per core).
    pub fn pyinfra(&self, n: usize) -> Result<Duration, String> {
        let ids = &self.ids[..n];
        let mut c = Command::new(venv().join("bin/pyinfra"));
        c.current_dir(&self.dir).arg("--dry");
        // pyinfra takes one `--limit` per host (a comma list matches none).
        for id in ids {
            c.args(["--limit", id]);
        }
        c.arg(peers_dir().join("pyinfra/inventory.py"))
            .arg(peers_dir().join("pyinfra/deploy.py"))
            .env("SPINE_BENCH_FLEET", self.dir.join("fleet.json"))
            .env("HOME", &self.dir);
        crate::quiet_env(&mut c);
        let t = Instant::now();
        let out = c.output().map_err(|e| format!("run pyinfra: {e}"))?;
        let took = t.elapsed();
        check_pyinfra(&out, ids).map(|()| took)
    }
}

/// Close the ssh masters Ansible left in `cp` (ControlPersist), so the next
/// run, of any tool, starts without them.
fn close_masters(cp: &Path) {
    for e in std::fs::read_dir(cp).into_iter().flatten().flatten() {
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", e.path().display()))
            .args(["-O", "exit", "spine-bench-master"])
            .output();
    }
}

/// Every host in the recap with nothing unreachable or failed, and every
/// host's last task reached; a run with changes (drift) is noted.
fn check_ansible(out: &Output, ids: &[String]) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fail = |why: String| Err(format!("{why}\n{}", tail(&text(out))));
    if !out.status.success() {
        return fail(format!("ansible-playbook exited {:?}", out.status.code()));
    }
    let recap = stdout
        .split_once("PLAY RECAP")
        .map(|(_, r)| r)
        .unwrap_or_default();
    let mut drift = Vec::new();
    for id in ids {
        let line = recap
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id.as_str()));
        let Some(line) = line else {
            return fail(format!("ansible: no recap line for {id}"));
        };
        let count = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('=')?.parse::<u32>().ok())
        };
        if count("unreachable") != Some(0)
            || count("failed") != Some(0)
            || count("skipped") != Some(0)
        {
            return fail(format!("ansible: {id} not read: {}", line.trim()));
        }
        if !stdout.contains(&format!("\"msg\": \"spine-bench: {id} read\"")) {
            return fail(format!("ansible: {id} did not reach the last task"));
        }
        if count("changed") != Some(0) {
            drift.push(line.trim().to_string());
        }
    }
    if !drift.is_empty() {
        eprintln!(
            "plan bench: note: ansible sees drift:\n{}",
            drift.join("\n")
        );
    }
    Ok(())
}

/// Exit 0 and the deploy's last line for every host; proposed changes
/// (drift) are noted.
fn check_pyinfra(out: &Output, ids: &[String]) -> Result<(), String> {
    let all = text(out);
    let fail = |why: String| Err(format!("{why}\n{}", tail(&all)));
    if !out.status.success() {
        return fail(format!("pyinfra exited {:?}", out.status.code()));
    }
    for id in ids {
        if !all
            .lines()
            .any(|l| l.trim() == format!("spine-bench: {id} read"))
        {
            return fail(format!("pyinfra: {id} was not read to the end"));
        }
    }
    // The rows of pyinfra's "Detected changes" table that show a change (an
    // operation without one reads `-  -`), header and notice left out.
    let changes: Vec<&str> = all
        .split_once("--> Detected changes:")
        .map(|(_, t)| {
            t.split_once("Detected changes may not")
                .map_or(t, |(a, _)| a)
        })
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            !w.is_empty() && w[0] != "Operation" && !w.ends_with(&["-", "-"])
        })
        .collect();
    if !changes.is_empty() {
        eprintln!(
            "plan bench: note: pyinfra proposes changes:\n{}",
            changes.join("\n")
        );
    }
    Ok(())
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
