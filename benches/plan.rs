//! `spine plan` against its floor and its peers (issues 3 and 15, "Speed").
//!
//! Brings up N converged Immich test hosts (default 20), then, in one run and
//! interleaved, times for 1 and N hosts:
//! - spine: the release `spine plan` binary end to end (load, verify, render,
//!   gather over ssh, compare, print, write the receipt);
//! - floor: one plain `ssh HOST sh -s < script` per host, all in parallel,
//!   where `script` is exactly the gather script spine sent that host (kept
//!   with `SPINE_GATHER_DUMP`);
//! - the peers (`plan/peers.rs`): `ansible-playbook --check --diff` and
//!   `pyinfra --dry` reading the same facts from the same hosts, with the
//!   playbook and the deploy in `benches/peers/` (installed from PyPI into a
//!   venv under `target/tmp/` when missing).
//!
//! Every tool must read every host, or its row is an error, not a number
//! (and the bench exits 1 after the table).
//!
//! Needs root and the test-host prerequisites (`.ci/install-deps`); refuses
//! clearly without them. `cargo test --benches` runs this binary without
//! `--bench`: it then says it is skipped and brings up nothing (a peer smoke
//! would need PyPI installs and test hosts, neither of which CI's test mode
//! may do). Run it with `cargo bench --bench plan` (as root).
//! `SPINE_BENCH_HOSTS` (default 20, at most `fleet::MAX_HOSTS`),
//! `SPINE_BENCH_REPS` (default 9: spine and the floor),
//! `SPINE_BENCH_PEER_REPS` (default 3: Ansible and pyinfra, in the first
//! repetitions), `SPINE_BENCH_PEERS=0` (no peers), `SPINE_BENCH_PLAN_ARGS`
//! (extra `spine plan` options, e.g. `--parallel 20`), `SPINE_BENCH_HOLD=1`
//! (keep the hosts up until Enter, for profiling), `SPINE_BENCH_PEERS_VENV`
//! and `SPINE_BENCH_PYTHON` (where and with which python3 the peers go).

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "plan/fleet.rs"]
mod fleet;

#[path = "plan/peers.rs"]
mod peers;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleet::Fleet;
use support::scenario::SECRET;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| refuse(&format!("{name}={v} is not a number"))),
        Err(_) => default,
    }
}

fn refuse(why: &str) -> ! {
    eprintln!("plan bench: {why}");
    std::process::exit(2)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The environment both sides run in: no agent (keys come from the ssh
/// config), so the receipt is unsigned and nothing waits on an agent.
fn quiet_env(c: &mut Command) -> &mut Command {
    c.env_remove("SSH_AUTH_SOCK")
        .env_remove("SPINE_SIGNING_KEY")
        .env_remove("SPINE_SSH_CONFIG")
        .env_remove("SPINE_REGISTRY")
        .env_remove("SPINE_SECRETS_PROVIDER")
        .env("NO_COLOR", "1")
}

struct Bench {
    fleet: Fleet,
    dir: PathBuf,
    /// The gather script spine sent to each member, by member index.
    scripts: Vec<PathBuf>,
    /// Extra `spine plan` options (`SPINE_BENCH_PLAN_ARGS`, e.g. `--parallel 20`).
    plan_args: Vec<String>,
}

impl Bench {
    /// `spine plan` on the first `n` hosts. Every host must be read (no
    /// unknown, none unreachable); drift is allowed (a stand-in container's
    /// healthcheck can time out on a loaded machine: "unhealthy").
    fn spine(&self, n: usize, dump: Option<&Path>) -> Duration {
        let mut c = Command::new(env!("CARGO_BIN_EXE_spine"));
        c.current_dir(&self.dir)
            .args(["plan", "--detailed-exitcode", "--registry"])
            .arg(&self.fleet.registry)
            .arg("--ssh-config")
            .arg(&self.fleet.ssh_config)
            .arg("--receipts")
            .arg(self.dir.join("receipts"))
            .args(self.fleet.members[..n].iter().map(|m| &m.id))
            .args(&self.plan_args)
            .env("SPINE_SECRET_IMMICH_DB_PASSWORD", SECRET);
        quiet_env(&mut c);
        if let Some(d) = dump {
            c.env("SPINE_GATHER_DUMP", d);
        }
        let t = Instant::now();
        let out = c.output().expect("run spine");
        let took = t.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("summary: "))
            .unwrap_or_default();
        assert!(
            matches!(out.status.code(), Some(0 | 2))
                && summary.contains(" 0 unknown (")
                && summary.ends_with(" in sync)"),
            "spine plan on {n} hosts did not read every host (exit {:?}):\n{}",
            out.status.code(),
            support::text(&out)
        );
        if out.status.code() == Some(2) {
            let drift: Vec<&str> = stdout
                .lines()
                .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
                .collect();
            eprintln!("plan bench: note: {summary}\n{}", drift.join("\n"));
        }
        took
    }

    /// One `ssh HOST sh -s < script` per host for the first `n` hosts, all
    /// at once; the time until the last one is done. Returns the outputs.
    fn floor(&self, n: usize) -> (Duration, Vec<String>) {
        let outs: Vec<PathBuf> = (0..n)
            .map(|i| self.dir.join(format!("floor-{i}.out")))
            .collect();
        let t = Instant::now();
        let children: Vec<_> = self.fleet.members[..n]
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut c = Command::new("ssh");
                c.arg("-F")
                    .arg(&self.fleet.ssh_config)
                    .args(["-l", "ronny", &m.addr, "sh", "-s"])
                    .stdin(File::open(&self.scripts[i]).unwrap())
                    .stdout(File::create(&outs[i]).unwrap())
                    .stderr(Stdio::null());
                quiet_env(&mut c);
                c.spawn().expect("run ssh")
            })
            .collect();
        for (i, mut ch) in children.into_iter().enumerate() {
            let st = ch.wait().unwrap();
            assert!(st.success(), "floor ssh to member {i} failed: {st}");
        }
        let took = t.elapsed();
        let texts = outs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        (took, texts)
    }
}

/// The boundary a gather script frames its sections with (`B=...`).
fn boundary(script: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix("B="))
        .expect("the gather script sets its boundary B=")
        .trim_matches('\'')
        .to_string()
}

/// The first run: spine keeps the scripts it sent; the floor must get the
/// same facts back (every section answered) from those exact scripts.
fn scripts_and_check(b: &mut Bench) {
    let dump = b.dir.join("gather-dump");
    b.spine(b.fleet.members.len(), Some(&dump));
    b.scripts = b
        .fleet
        .members
        .iter()
        .map(|m| dump.join(format!("{}.sh", m.id)))
        .collect();
    let (_, outs) = b.floor(b.fleet.members.len());
    for (i, out) in outs.iter().enumerate() {
        let script = std::fs::read_to_string(&b.scripts[i]).unwrap();
        let bnd = boundary(&script);
        let report = spine::gather::script::parse(out, &bnd);
        let spine_out =
            std::fs::read_to_string(dump.join(format!("{}.out", b.fleet.members[i].id))).unwrap();
        let spine_report = spine::gather::script::parse(&spine_out, &bnd);
        assert_eq!(report.user, "ronny", "floor answer of member {i}:\n{out}");
        assert_eq!(
            report.sections.keys().collect::<Vec<_>>(),
            spine_report.sections.keys().collect::<Vec<_>>(),
            "the floor read other sections than spine on member {i}"
        );
        assert!(report.sections.values().all(|s| s.exit.is_some()));
    }
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

/// What the bench times.
#[derive(Clone, Copy)]
enum Tool {
    Spine,
    Floor,
    Ansible,
    Pyinfra,
}

impl Tool {
    fn is_peer(self) -> bool {
        matches!(self, Tool::Ansible | Tool::Pyinfra)
    }

    fn name(self) -> &'static str {
        match self {
            Tool::Spine => "spine plan",
            Tool::Floor => "floor",
            Tool::Ansible => "ansible-playbook --check --diff",
            Tool::Pyinfra => "pyinfra --dry",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Tool::Spine => "`spine plan`, median (min–max)",
            Tool::Floor => "floor: one `ssh` per host, median (min–max)",
            Tool::Ansible => "`ansible-playbook --check --diff`, median (min–max)",
            Tool::Pyinfra => "`pyinfra --dry`, median (min–max)",
        }
    }
}

struct TableInfo<'a> {
    sizes: &'a [usize],
    tools: &'a [Tool],
    times: &'a [Vec<Result<Vec<Duration>, String>>],
    reps: usize,
    peer_reps: usize,
    load_before: String,
    load_after: String,
}

/// The Markdown table of the run; returns how many cells are errors.
fn print_table(t: &TableInfo) -> usize {
    let peers = t.tools.iter().any(|x| x.is_peer());
    println!(
        "\nspine plan vs the ssh floor, {} repetitions each{}, interleaved",
        t.reps,
        if peers {
            format!("; Ansible and pyinfra {} each", t.peer_reps.min(t.reps))
        } else {
            String::new()
        }
    );
    println!(
        "load average before {}, after {}; {} cores\n",
        t.load_before,
        t.load_after,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut head = String::from("| hosts ");
    let mut rule = String::from("|---");
    for (i, tool) in t.tools.iter().enumerate() {
        head.push_str(&format!("| {} ", tool.header()));
        rule.push_str("|---");
        if i == 1 {
            head.push_str("| spine / floor ");
            rule.push_str("|---");
        }
    }
    println!("{head}|\n{rule}|");
    let mut errors = 0;
    for (k, n) in t.sizes.iter().enumerate() {
        let median = |i: usize| match &t.times[k][i] {
            Ok(v) if !v.is_empty() => Some(stats(v).median),
            _ => None,
        };
        let mut row = format!("| {n} ");
        for (i, tool) in t.tools.iter().enumerate() {
            let cell = match &t.times[k][i] {
                Ok(v) if v.is_empty() => "not run".to_string(),
                Ok(v) => {
                    let s = stats(v);
                    let mut c = format!("{:.2} s ({:.2}–{:.2})", s.median, s.min, s.max);
                    if tool.is_peer()
                        && let Some(sp) = median(0)
                    {
                        c.push_str(&format!(", {:.1}× spine", s.median / sp));
                    }
                    c
                }
                Err(e) => {
                    errors += 1;
                    format!("error: {}", e.lines().next().unwrap_or_default())
                }
            };
            row.push_str(&format!("| {cell} "));
            if i == 1 {
                match (median(0), median(1)) {
                    (Some(sp), Some(fl)) => row.push_str(&format!("| {:.2}× ", sp / fl)),
                    _ => row.push_str("| – "),
                }
            }
        }
        println!("{row}|");
    }
    errors
}

fn stats(xs: &[Duration]) -> Stats {
    let mut v: Vec<f64> = xs.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Stats {
        median,
        min: v[0],
        max: v[v.len() - 1],
    }
}

/// `SPINE_BENCH_HOLD=1`: keep the hosts up for profiling until a line
/// arrives on stdin, and say how to reach them.
fn hold(b: &Bench) {
    let f = &b.fleet;
    eprintln!(
        "plan bench: holding. SPINE_SECRET_IMMICH_DB_PASSWORD={SECRET} {} plan --registry {} --ssh-config {} --receipts {}",
        env!("CARGO_BIN_EXE_spine"),
        f.registry.display(),
        f.ssh_config.display(),
        b.dir.join("receipts").display()
    );
    eprintln!(
        "plan bench: scripts in {}; press Enter to remove the hosts",
        b.dir.join("gather-dump").display()
    );
    let _ = std::io::stdin().read_line(&mut String::new());
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "plan bench: skipped outside `cargo bench` (run `cargo bench --bench plan` as root)"
        );
        return;
    }
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        refuse(
            "needs root and test hosts (tests/hosts/testhost): run `cargo bench --bench plan` as root after `.ci/install-deps`",
        );
    }
    if std::panic::catch_unwind(support::require_prerequisites).is_err() {
        refuse(
            "a test-host prerequisite is missing (see the message above): run `.ci/install-deps` first",
        );
    }
    let hosts = env_usize("SPINE_BENCH_HOSTS", 20);
    let reps = env_usize("SPINE_BENCH_REPS", 9).max(1);
    let peer_reps = env_usize("SPINE_BENCH_PEER_REPS", 3).max(1);
    let run_peers = env_usize("SPINE_BENCH_PEERS", 1) != 0;
    if !(1..=fleet::MAX_HOSTS).contains(&hosts) {
        refuse(&format!(
            "SPINE_BENCH_HOSTS must be 1 to {}",
            fleet::MAX_HOSTS
        ));
    }
    if run_peers {
        match peers::ensure_installed() {
            Ok(v) => eprintln!("plan bench: peers: {v}"),
            Err(e) => refuse(&format!(
                "the peers could not be installed (SPINE_BENCH_PEERS=0 runs without them): {e}"
            )),
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    eprintln!(
        "plan bench: bringing up {hosts} converged test hosts (load {})",
        load()
    );
    let t = Instant::now();
    let fleet = Fleet::up(tmp.path(), hosts);
    eprintln!("plan bench: hosts up in {:.0?}", t.elapsed());
    let mut b = Bench {
        fleet,
        dir: tmp.path().to_path_buf(),
        scripts: Vec::new(),
        plan_args: std::env::var("SPINE_BENCH_PLAN_ARGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect(),
    };
    scripts_and_check(&mut b);

    let peers = run_peers.then(|| peers::Peers::prepare(&b.dir, &b.fleet));

    let sizes: Vec<usize> = if hosts == 1 { vec![1] } else { vec![1, hosts] };
    let tools: &[Tool] = if peers.is_some() {
        &[Tool::Spine, Tool::Floor, Tool::Ansible, Tool::Pyinfra]
    } else {
        &[Tool::Spine, Tool::Floor]
    };
    // times[size][tool]: the runs so far, or the error that ended them.
    let mut times: Vec<Vec<Result<Vec<Duration>, String>>> =
        vec![vec![Ok(Vec::new()); tools.len()]; sizes.len()];
    let load_before = load();
    let started = Instant::now();
    for rep in 0..reps {
        for (k, &n) in sizes.iter().enumerate() {
            // Rotate who goes first, so no tool always runs on a warmer machine.
            for j in 0..tools.len() {
                let t = (j + rep) % tools.len();
                let tool = tools[t];
                if tool.is_peer() && rep >= peer_reps {
                    continue;
                }
                let Ok(runs) = &mut times[k][t] else {
                    continue;
                };
                let took = match tool {
                    Tool::Spine => Ok(b.spine(n, None)),
                    Tool::Floor => Ok(b.floor(n).0),
                    Tool::Ansible => peers.as_ref().unwrap().ansible(n),
                    Tool::Pyinfra => peers.as_ref().unwrap().pyinfra(n),
                };
                match took {
                    Ok(d) => runs.push(d),
                    Err(e) => {
                        eprintln!("plan bench: {} on {n} hosts: ERROR: {e}", tool.name());
                        times[k][t] = Err(e);
                    }
                }
            }
        }
        eprintln!(
            "plan bench: repetition {}/{reps} done (load {}, {:.0?} so far)",
            rep + 1,
            load(),
            started.elapsed()
        );
    }
    let load_after = load();
    let errors = print_table(&TableInfo {
        sizes: &sizes,
        tools,
        times: &times,
        reps,
        peer_reps,
        load_before,
        load_after,
    });
    if std::env::var_os("SPINE_BENCH_HOLD").is_some() {
        hold(&b);
    }
    eprintln!("plan bench: removing the test hosts");
    b.fleet.down();
    if errors > 0 {
        eprintln!("plan bench: {errors} row(s) are errors, not times (see above)");
        std::process::exit(1);
    }
}
