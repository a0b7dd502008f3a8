//! `spine health` against real HTTP servers on loopback (ephemeral ports):
//! healthy, slow, timing out, refusing, wrong status, wrong body, disabled;
//! exit codes, the table, the JSON shape and the receipt.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::http::{Response, Server, closed_port};
use support::{spine, text};

const PONG: &str = r#"{"res":"pong"}"#;

struct Servers {
    healthy: Server,
    slow: Server,
    hanging: Server,
    broken: Server,
    wrong_body: Server,
}

fn servers() -> Servers {
    let pong = |d: u64| {
        move |_: &_| {
            Response::raw(200, PONG.as_bytes(), "application/json").after(Duration::from_millis(d))
        }
    };
    Servers {
        healthy: Server::start(pong(0)),
        slow: Server::start(pong(1200)),
        hanging: Server::start(pong(6000)),
        broken: Server::start(|_| Response::raw(503, b"down for maintenance", "text/plain")),
        wrong_body: Server::start(|_| Response::raw(200, br#"{"res":"ping"}"#, "application/json")),
    }
}

/// A registry folder whose services.health.yaml lists `endpoints` (YAML
/// items); the other two files are the shipped ones (health reads only its own).
fn registry(dir: &Path, endpoints: &str) -> PathBuf {
    let reg = dir.join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    for f in ["SERVICE_REGISTRY.yaml", "STACK_REGISTRY.yaml"] {
        std::fs::copy(support::repo().join("registry").join(f), reg.join(f)).unwrap();
    }
    let health = format!(
        "version: 1\ndefaults:\n  connect_timeout_sec: 1\n  max_time_sec: 3\n  slow_sec: 0.8\nendpoints:\n{endpoints}"
    );
    std::fs::write(reg.join("services.health.yaml"), health).unwrap();
    reg
}

fn endpoint(id: &str, host: &str, url: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    host: {host}\n    url: {url}\n    expect: 200\n    expect_body: '{PONG}'\n{extra}"
    )
}

fn all(s: &Servers) -> String {
    let u = |srv: &Server| format!("{}/api/server/ping", srv.url());
    [
        endpoint("healthy", "immich", &u(&s.healthy), ""),
        endpoint("slow", "immich", &u(&s.slow), ""),
        endpoint("hanging", "immich", &u(&s.hanging), ""),
        endpoint(
            "refusing",
            "immich",
            &format!("http://127.0.0.1:{}/api/server/ping", closed_port()),
            "",
        ),
        endpoint("broken", "pve", &u(&s.broken), ""),
        endpoint("wrong-body", "pve", &u(&s.wrong_body), ""),
        endpoint(
            "off",
            "pve",
            "http://127.0.0.1:9/x",
            "    enabled: false\n    disabled_reason: GAP-OP-094\n",
        ),
    ]
    .concat()
}

fn health(reg: &Path, args: &[&str]) -> std::process::Output {
    let receipts = reg.parent().unwrap().join("receipts");
    let mut a = vec!["health", "--registry", reg.to_str().unwrap()];
    a.extend_from_slice(args);
    spine(&a, &[("SPINE_RECEIPTS", receipts.to_str().unwrap())])
}

fn row<'a>(out: &'a str, id: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("no row {id} in\n{out}"))
        .split_whitespace()
        .collect()
}

#[test]
fn every_status_in_one_parallel_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = servers();
    let reg = registry(dir.path(), &all(&s));
    let t = std::time::Instant::now();
    let o = health(&reg, &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Concurrent: the 3 s timeout and the 1.2 s slow answer overlap.
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    let head: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["ID", "HOST", "STATUS", "TIME", "PATH", "NOTE"]);
    assert_eq!(row(&out, "healthy")[..3], ["healthy", "immich", "OK"]);
    assert_eq!(row(&out, "healthy")[4], "/api/server/ping");
    assert_eq!(row(&out, "slow")[2], "DEGRADED");
    let slow = row(&out, "slow").join(" ");
    assert!(
        slow.contains("slow: 1.") && slow.contains("s (over 0.8s)"),
        "{out}"
    );
    assert_eq!(row(&out, "hanging")[2], "TIMEOUT");
    assert!(
        row(&out, "hanging")
            .join(" ")
            .contains("no complete answer within 3.0s"),
        "{out}"
    );
    assert_eq!(row(&out, "refusing")[2], "REFUSED");
    assert_eq!(row(&out, "broken")[2], "FAIL");
    assert!(
        row(&out, "broken")
            .join(" ")
            .contains("HTTP 503, expected 200"),
        "{out}"
    );
    assert_eq!(row(&out, "wrong-body")[2], "DEGRADED");
    assert!(
        row(&out, "wrong-body")
            .join(" ")
            .contains("unexpected body (14 bytes)"),
        "{out}"
    );
    assert!(
        !out.contains(r#"{"res":"ping"}"#),
        "a body is never printed:\n{out}"
    );
    assert_eq!(row(&out, "off")[..4], ["off", "pve", "SKIP", "-"]);
    assert!(
        row(&out, "off").join(" ").ends_with("disabled: GAP-OP-094"),
        "{out}"
    );
    assert_eq!(
        out.lines().last().unwrap(),
        "status: FAIL (slow DEGRADED, hanging TIMEOUT, refusing REFUSED, broken FAIL, wrong-body DEGRADED; \
         1 ok, 2 degraded, 1 timeout, 1 refused, 1 fail, 1 skip)"
    );
    // Read-only: one plain GET per probed endpoint, nothing sent.
    for srv in [&s.healthy, &s.slow, &s.broken, &s.wrong_body] {
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].method.as_str(), reqs[0].body.len()), ("GET", 0));
        assert!(!reqs[0].headers.contains_key("authorization"));
    }
}

#[test]
fn filters_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = servers();
    let reg = registry(dir.path(), &all(&s));
    let o = health(&reg, &["--id", "healthy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("status: OK (1 ok)\n"));
    // Only a disabled endpoint: nothing failed.
    let o = health(&reg, &["--id", "off"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // One host: its failures count.
    let o = health(&reg, &["--host", "pve"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("healthy"), "{out}");
    // No match: exit 2, and the known ids are listed.
    let o = health(&reg, &["--host", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no endpoint in"), "{}", text(&o));
    assert!(
        text(&o).contains("matches --host nope (endpoints: healthy, slow"),
        "{}",
        text(&o)
    );
    // A health file that fails its schema: could not run.
    let bad = registry(
        &dir.path().join("bad"),
        "  - id: x\n    host: immich\n    url: ftp://nope\n",
    );
    let o = health(&bad, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("V03"), "{}", text(&o));
}

#[test]
fn json_shape_and_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let s = servers();
    let reg = registry(dir.path(), &all(&s));
    let o = health(&reg, &["--host", "pve", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["defaults"]["max_time_sec"], 3.0);
    assert_eq!(v["defaults"]["slow_sec"], 0.8);
    let eps = v["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    let broken = &eps[0];
    assert_eq!(broken["id"], "broken");
    assert_eq!(broken["host"], "pve");
    assert_eq!(broken["status"], "FAIL");
    assert_eq!(broken["http_status"], 503);
    assert_eq!(broken["path"], "/api/server/ping");
    assert!(broken["time_ms"].is_u64());
    assert_eq!(eps[2]["status"], "SKIP");
    assert_eq!(eps[2]["http_status"], Value::Null);
    let sum = &v["summary"];
    assert_eq!(
        (
            sum["total"].as_u64(),
            sum["fail"].as_u64(),
            sum["degraded"].as_u64(),
            sum["skip"].as_u64()
        ),
        (Some(3), Some(1), Some(1), Some(1))
    );
    assert_eq!(sum["status"], "FAIL");
    assert_eq!(
        sum["failing"],
        serde_json::json!(["broken FAIL", "wrong-body DEGRADED"])
    );

    // The run left a receipt holding the probes; the chain verifies.
    let receipts = dir.path().join("receipts");
    let list: Vec<_> = std::fs::read_dir(&receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let json = list
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let r: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(r["command"], "health");
    assert_eq!(r["status"], "failed", "no endpoint of the run was OK");
    assert_eq!(r["exit_code"], 1);
    assert_eq!(r["health"].as_array().unwrap().len(), 3);
    assert_eq!(r["health"][1]["status"], "DEGRADED");
    assert_eq!(
        r["drift"],
        serde_json::json!({"in_sync": 0, "drifted": 2, "unknown": 1})
    );
    let o = spine(
        &[
            "receipts",
            "check",
            "--receipts",
            receipts.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
