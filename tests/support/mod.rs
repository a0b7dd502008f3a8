//! Test hosts for integration tests: real network + mount namespaces with a
//! real sshd, cron, netplan and dockerd, built by `tests/hosts/testhost`.
//! A [`TestHost`] is removed when dropped, also when the test fails.
#![allow(dead_code)]

pub mod corpus;
pub mod generate;
pub mod http;
pub mod infisical;
pub mod scenario;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testhost() -> PathBuf {
    repo().join("tests/hosts/testhost")
}

/// Fail loudly (never skip) when what the test hosts need is missing.
pub fn require_prerequisites() {
    let uid = Command::new("id").arg("-u").output().expect("id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "test hosts need root: run the suite as root (tests/run)"
    );
    for (what, path) in [
        ("sshd (openssh-server)", "/usr/sbin/sshd"),
        ("cron", "/usr/sbin/cron"),
        ("netplan (netplan.io)", "/usr/sbin/netplan"),
        ("dockerd (docker.io)", "/usr/sbin/dockerd"),
        (
            "stand-in images",
            "/var/cache/spine-testhost/standin-images.tar",
        ),
    ] {
        assert!(
            Path::new(path).exists(),
            "prerequisite missing: {what} ({path}). Run .ci/install-deps (tests/run does) first."
        );
    }
}

/// A name unique to this test run (process) and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct TestHost {
    pub name: String,
    pub info: BTreeMap<String, String>,
}

impl TestHost {
    /// `testhost up NAME ADDR/PREFIX ARGS...`; panics with the harness output on failure.
    pub fn up(name: &str, cidr: &str, args: &[&str]) -> TestHost {
        require_prerequisites();
        let out = Command::new(testhost())
            .args(["up", name, cidr])
            .args(args)
            .output()
            .expect("run tests/hosts/testhost");
        // Constructed before the check so that a half-built host is removed.
        let mut host = TestHost {
            name: name.to_string(),
            info: BTreeMap::new(),
        };
        assert!(
            out.status.success(),
            "testhost up {name} {cidr} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        host.info = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        host
    }

    pub fn get(&self, key: &str) -> &str {
        self.info
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("testhost info has no {key}"))
    }

    pub fn addr(&self) -> &str {
        self.get("ADDR")
    }

    /// Run a shell command inside the host as root.
    pub fn sh(&self, script: &str) -> Output {
        self.sh_input(script, "")
    }

    /// Run a shell command inside the host as root, feeding `input` on stdin.
    pub fn sh_input(&self, script: &str, input: &str) -> Output {
        let mut child = Command::new(testhost())
            .args(["exec", &self.name, "--", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("testhost exec");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("testhost exec")
    }

    /// Like [`sh`] but the command must succeed.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "on {}: `{script}` failed:\n{}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Write a file inside the host (as root), then set owner and mode.
    pub fn write(&self, path: &str, content: &str, owner: &str, mode: &str) {
        let dir = Path::new(path).parent().unwrap().display().to_string();
        let out = self.sh_input(
            &format!("mkdir -p '{dir}' && cat > '{path}' && chown {owner} '{path}' && chmod {mode} '{path}'"),
            content,
        );
        assert!(
            out.status.success(),
            "write {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn host_key(&self) -> &str {
        self.get("HOST_KEY")
    }

    pub fn identity(&self) -> &str {
        self.get("SSH_IDENTITY")
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let out = Command::new(testhost()).args(["down", &self.name]).output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!(
                "testhost down {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// One alias in the ssh config spine uses in a test.
struct Alias<'a> {
    /// What the registry says (a name or an address).
    name: &'a str,
    /// Where it really is (None: leave the address as it is).
    hostname: Option<&'a str>,
    host: &'a TestHost,
}

/// An ssh_config + known_hosts for spine: every alias checks the host key of
/// the test host it stands for (strictly).
fn ssh_config(dir: &Path, aliases: &[Alias], hosts: &[&TestHost]) -> PathBuf {
    let kh = dir.join("known_hosts");
    let known: String = hosts
        .iter()
        .map(|h| format!("{} {}\n", h.name, h.host_key()))
        .collect();
    std::fs::write(&kh, known).unwrap();
    let mut cfg = String::new();
    for a in aliases {
        cfg.push_str(&format!(
            "Host {}\n    HostKeyAlias {}\n",
            a.name, a.host.name
        ));
        if let Some(h) = a.hostname {
            cfg.push_str(&format!("    HostName {h}\n"));
        }
    }
    cfg.push_str("Host *\n");
    for h in hosts {
        cfg.push_str(&format!("    IdentityFile {}\n", h.identity()));
    }
    cfg.push_str(&format!(
        "    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking yes\n    BatchMode yes\n",
        kh.display()
    ));
    let path = dir.join("ssh_config");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// An ssh config for spine built alias by alias (written by `ssh_config`):
/// each alias checks the key of the test host it names; the hosts it knows
/// are those the aliases name, in order.
#[derive(Default)]
pub struct SshConfig<'a> {
    aliases: Vec<Alias<'a>>,
}

impl<'a> SshConfig<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` leads to `host`'s address.
    pub fn alias(self, name: &'a str, host: &'a TestHost) -> Self {
        self.alias_at(name, host.addr(), host)
    }

    /// `name` leads to `hostname` (e.g. an address nobody holds), where the
    /// key of `host` is expected.
    pub fn alias_at(mut self, name: &'a str, hostname: &'a str, host: &'a TestHost) -> Self {
        self.aliases.push(Alias {
            name,
            hostname: Some(hostname),
            host,
        });
        self
    }

    /// `name` (an address, e.g. the registry's LAN address) is dialled as it
    /// is, and must be `host`.
    pub fn direct(mut self, name: &'a str, host: &'a TestHost) -> Self {
        self.aliases.push(Alias {
            name,
            hostname: None,
            host,
        });
        self
    }

    /// `ssh_config` and `known_hosts` in `dir`; the config's path.
    pub fn write(self, dir: &Path) -> PathBuf {
        let mut hosts: Vec<&TestHost> = Vec::new();
        for a in &self.aliases {
            if !hosts.iter().any(|h| h.name == a.host.name) {
                hosts.push(a.host);
            }
        }
        ssh_config(dir, &self.aliases, &hosts)
    }
}

/// Make `alias` in the ssh config dial port 2222, where no sshd listens
/// (the connection is refused).
pub fn closed_port(cfg: &Path, alias: &str) {
    let head = format!("Host {alias}\n");
    let text = std::fs::read_to_string(cfg).unwrap();
    assert!(text.contains(&head), "{alias} is in the ssh config");
    std::fs::write(
        cfg,
        text.replacen(&head, &format!("{head}    Port 2222\n"), 1),
    )
    .unwrap();
}

/// Add `alias` to the ssh config (written by [`SshConfig`], `known_hosts`
/// beside it), leading to `host`'s address but expecting a fresh key that is
/// not the host's (known as `wrongkey`), with `options` (whole lines) in its
/// block: the host key check there must fail.
pub fn wrong_host_key(cfg: &Path, alias: &str, host: &TestHost, options: &str) {
    let dir = cfg.parent().unwrap();
    let k = dir.join("wrongkey");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&k)
        .status()
        .unwrap();
    assert!(keygen.success());
    let key = std::fs::read_to_string(k.with_extension("pub")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let kh = dir.join("known_hosts");
    let known = std::fs::read_to_string(&kh).unwrap();
    std::fs::write(&kh, format!("{known}wrongkey {}\n", key.join(" "))).unwrap();
    let text = std::fs::read_to_string(cfg).unwrap();
    let block = format!(
        "Host {alias}\n    HostName {}\n    HostKeyAlias wrongkey\n{options}Host *\n",
        host.addr()
    );
    std::fs::write(cfg, text.replacen("Host *\n", &block, 1)).unwrap();
}

/// Make `alias` in the ssh config a path into `host` that does not depend on
/// its LAN address, as a tailnet name does: sshd on the host's stdin through
/// the harness (the tailnet stand-in has no network), the alias's HostName
/// dropped.
pub fn over_the_tailnet(cfg: &Path, alias: &str, host: &TestHost) {
    let head = format!("Host {alias}\n    HostKeyAlias {}\n", host.name);
    let text = std::fs::read_to_string(cfg).unwrap();
    let start = text.find(&head).expect("the alias is in the ssh config");
    let rest = &text[start + head.len()..];
    let rest = rest
        .strip_prefix(&format!("    HostName {}\n", host.addr()))
        .unwrap_or(rest);
    let proxy = format!(
        "    ProxyCommand {} exec {} -- /usr/sbin/sshd -i -f /etc/ssh/sshd_config\n",
        testhost().display(),
        host.name
    );
    std::fs::write(cfg, format!("{}{head}{proxy}{rest}", &text[..start])).unwrap();
}

/// The shipped registry, moved to test addresses: the new LAN `new` (e.g.
/// "10.203.1") and a MAC for the interface. No real address survives.
pub fn test_registry(dir: &Path, new: &str, mac: &str, version: &str) -> PathBuf {
    let reg = dir.join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    for f in [
        "SERVICE_REGISTRY.yaml",
        "STACK_REGISTRY.yaml",
        "services.health.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("registry").join(f)).unwrap();
        let text = text
            .replace("192.168.1.", &format!("{new}."))
            .replace("192.168.12.", "10.203.12.")
            .replace("100.114.101.50", "10.203.100.50")
            .replace(
                "        interface: eth0\n",
                &format!("        interface: eth0\n        mac: \"{mac}\"\n"),
            )
            .replace("v2.4.1", version);
        assert!(
            !text.contains("192.168.") && !text.contains(" 100."),
            "a real address is left in the test registry"
        );
        std::fs::write(reg.join(f), text).unwrap();
    }
    reg
}

/// Run the spine binary. Receipts go to a throw-away folder unless the test
/// says where (`--receipts`, or a registry folder with its own `receipts/`).
pub fn spine(args: &[&str], envs: &[(&str, &str)]) -> Output {
    // A working folder of its own holding a copy of the shipped registry in
    // `registry/`: with no --registry, spine finds that copy and its receipts
    // land here, never in the repository's receipts/.
    let cwd = std::env::temp_dir().join(format!("spine-test-cwd-{}", std::process::id()));
    let local = cwd.join("registry");
    std::fs::create_dir_all(&local).unwrap();
    for f in [
        "SERVICE_REGISTRY.yaml",
        "STACK_REGISTRY.yaml",
        "services.health.yaml",
    ] {
        if !local.join(f).is_file() {
            // Tests run in parallel: copy aside, then rename into place.
            let part = local.join(format!("{f}.{:?}.part", std::thread::current().id()));
            std::fs::copy(repo().join("registry").join(f), &part).unwrap();
            std::fs::rename(&part, local.join(f)).unwrap();
        }
    }
    Command::new(env!("CARGO_BIN_EXE_spine"))
        .current_dir(&cwd)
        .env_remove("SPINE_RECEIPTS")
        // Test hosts answer in milliseconds, but under a loaded 2-core CI
        // machine a connection can take seconds; a test that wants a short
        // timeout passes --connect-timeout, which wins over this.
        .env("SPINE_CONNECT_TIMEOUT", "15")
        .args(args)
        .envs(envs.iter().copied())
        .env("NO_COLOR", "1")
        .env_remove("SPINE_REGISTRY")
        .output()
        .expect("run spine")
}

/// Run `apply`, a network change that cannot be confirmed, and assert that
/// it rolled back within `within`: exit code 1, `ROLLED BACK`, and the host
/// restored its old network by itself. Its printed text.
#[allow(dead_code)]
pub fn assert_rolled_back(within: std::time::Duration, apply: impl FnOnce() -> Output) -> String {
    let started = std::time::Instant::now();
    let o = apply();
    let elapsed = started.elapsed();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("ROLLED BACK") && t.contains("restored the old network by itself"),
        "{t}"
    );
    assert!(
        elapsed < within,
        "rolled back after {elapsed:?}, wanted under {within:?}"
    );
    t
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// How many receipts `dir` holds.
pub fn receipt_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

/// The newest receipt in `dir` (file names begin with the sequence number).
pub fn newest_receipt(dir: &Path) -> Option<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let text = std::fs::read_to_string(files.last()?).ok()?;
    Some(serde_json::from_str(&text).expect("a receipt is JSON"))
}

/// What an apply printed, its exit code and its receipt (the newest in
/// `receipts`) say the same: the receipt's exit code is the process's;
/// `apply OK` is printed, the exit is 0 and the status `ok` together or not
/// at all; every action line printed (`  RESULT KIND RESOURCE: ...`) is a
/// receipt action, and the receipt's `apply` counts are the printed lines'.
pub fn assert_apply_agrees(o: &Output, receipts: &Path) {
    let shown = text(o);
    let r = newest_receipt(receipts)
        .unwrap_or_else(|| panic!("no receipt in {}:\n{shown}", receipts.display()));
    assert_eq!(r["command"], "apply", "{r}\n{shown}");
    let code = o.status.code().expect("exited");
    assert_eq!(r["exit_code"], code, "{r}\n{shown}");
    let ok = shown.contains("apply OK");
    assert_eq!(ok, code == 0 && r["status"] == "ok", "{r}\n{shown}");
    if code == 2 {
        assert_eq!(r["status"], "failed", "{r}\n{shown}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    let printed: Vec<(String, String, String)> = stdout
        .lines()
        .filter_map(|l| {
            let body = l.strip_prefix("  ")?;
            let (word, rest) = body.split_once(' ')?;
            let word = match word {
                "rolledback" => "rolled_back",
                w @ ("changed" | "removed" | "failed" | "skipped" | "unknown" | "ok") => w,
                _ => return None,
            };
            let mut f = rest.trim_start().splitn(2, ' ');
            let kind = f.next()?;
            let resource = f.next()?.split(": ").next()?;
            Some((word.to_string(), kind.to_string(), resource.to_string()))
        })
        .collect();
    let recorded: Vec<(String, String, String)> = r["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("result"), s("kind"), s("resource"))
        })
        .collect();
    for p in &printed {
        assert!(
            recorded.contains(p),
            "printed {p:?}, not in the receipt {r}\n{shown}"
        );
    }
    let did: u64 = ["changed", "failed", "rolled_back"]
        .iter()
        .map(|k| r["apply"][k].as_u64().unwrap_or(0))
        .sum();
    // What the receipt says was done is printed, so the checks below never
    // pass for want of lines to read.
    assert!(
        did == 0 || !printed.is_empty(),
        "nothing printed for {r}\n{shown}"
    );
    if !printed.is_empty() {
        let n = |words: &[&str]| {
            printed
                .iter()
                .filter(|p| words.contains(&p.0.as_str()))
                .count()
        };
        let counts = &r["apply"];
        assert_eq!(
            counts["changed"],
            n(&["changed", "removed"]),
            "{r}\n{shown}"
        );
        assert_eq!(counts["failed"], n(&["failed"]), "{r}\n{shown}");
        assert_eq!(counts["rolled_back"], n(&["rolled_back"]), "{r}\n{shown}");
        assert_eq!(counts["skipped"], n(&["skipped"]), "{r}\n{shown}");
    }
}
