//! Stage 4: gather. The actual state of each host, read over SSH in one
//! round trip per host (one generated script), hosts in parallel.

pub mod guest;
pub mod script;
pub mod ssh;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::ServiceRegistry;
use crate::shell::Script;
use script::Report;
use ssh::{PathFailure, Route, SshOptions};

/// What one host answered, or why it could not be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostFacts {
    pub host: String,
    /// The access path that worked.
    pub route: Option<Route>,
    /// Paths tried before (or instead of) the one that worked.
    pub failures: Vec<PathFailure>,
    pub report: Option<Report>,
    /// The script could not run (after connecting).
    pub error: Option<String>,
}

/// A fresh random boundary for framing sections.
fn boundary() -> String {
    let mut bytes = [0u8; 12];
    if getrandom(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..12].copy_from_slice(&t.to_le_bytes()[..12]);
    }
    format!("==spine-{}", hex::encode(bytes))
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Gather one host: connect over the first working path, run the script once.
pub async fn gather_host(
    host: String,
    routes: Vec<Route>,
    reads: Vec<(String, Script)>,
    opts: SshOptions,
) -> HostFacts {
    let mut facts = HostFacts {
        host,
        route: None,
        failures: Vec::new(),
        report: None,
        error: None,
    };
    if routes.is_empty() {
        facts.error =
            Some("the registry gives no access path for this host (desired.access)".into());
        return facts;
    }
    let (session, route) = match ssh::connect(&routes, &opts).await {
        Ok(x) => x,
        Err(f) => {
            facts.failures = f;
            return facts;
        }
    };
    facts.route = Some(route);
    match read_facts(&session, &facts.host, &reads).await {
        Ok(report) => facts.report = Some(report),
        Err(e) => facts.error = Some(e),
    }
    transport::Conn::close(session).await;
    facts
}

/// Run the gather script made of `reads` (resource id, read script) over an open
/// connection: one round trip.
pub async fn read_facts<C: transport::Conn>(
    conn: &C,
    host: &str,
    reads: &[(String, Script)],
) -> Result<Report, String> {
    let b = boundary();
    let script = script::build(reads, &b)?;
    let script = script.as_str();
    let out = conn
        .run(script, false)
        .await
        .map_err(|e| format!("running the gather script failed: {e}"))?
        .stdout;
    dump(host, script, &out);
    let report = script::parse(&out, &b);
    if report.user.is_empty() {
        return Err(
            "the gather script printed nothing recognisable (is /bin/sh a POSIX shell there?)"
                .into(),
        );
    }
    Ok(report)
}

/// With `SPINE_GATHER_DUMP=DIR`, keep each host's script and raw answer
/// (for debugging a read script; secret values are hashed on the host already).
/// Files are root-only (0600, in a 0700 folder when spine creates it), and a
/// host id that is not a plain name is not dumped: the file stays in DIR.
fn dump(host: &str, script: &str, out: &str) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let Some(dir) = std::env::var_os("SPINE_GATHER_DUMP") else {
        return;
    };
    if !crate::safe::host_id(host) {
        eprintln!(
            "spine: SPINE_GATHER_DUMP: host id `{}` is not a plain name: not dumped",
            crate::safe::shown(host)
        );
        return;
    }
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    for (name, text) in [(format!("{host}.sh"), script), (format!("{host}.out"), out)] {
        let path = dir.join(name);
        // A symlink planted at the dump's name is not followed.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            eprintln!(
                "spine: SPINE_GATHER_DUMP: {} is a symlink: not dumped",
                path.display()
            );
            continue;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path);
        if let Ok(mut f) = file {
            // An existing file keeps its mode on open: make it 0600 first.
            let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
            let _ = f.write_all(text.as_bytes());
        }
    }
}

/// Gather every host in `by_host` (host id -> the reads of the resources
/// living there),
/// at most `parallel` at a time. Results come back in the input order.
pub async fn gather_all(
    reg: &ServiceRegistry,
    by_host: &BTreeMap<String, Vec<(String, Script)>>,
    opts: &SshOptions,
    parallel: usize,
) -> Vec<HostFacts> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::new();
    for (host, reads) in by_host {
        let (host, reads, routes, opts, sem) = (
            host.clone(),
            reads.clone(),
            ssh::routes(reg, host),
            opts.clone(),
            sem.clone(),
        );
        let name = host.clone();
        tasks.push((
            name,
            tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                gather_host(host, routes, reads, opts).await
            }),
        ));
    }
    let mut out = Vec::new();
    for (host, t) in tasks {
        match t.await {
            Ok(f) => out.push(f),
            Err(e) => out.push(HostFacts {
                host,
                route: None,
                failures: Vec::new(),
                report: None,
                error: Some(format!("gather task failed: {e}")),
            }),
        }
    }
    out
}
