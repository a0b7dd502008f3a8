//! Health checks: the endpoints of `services.health.yaml`, read-only GETs run
//! in parallel with the file's `defaults` (connect timeout, max time, slow
//! threshold). Statuses as the operator's existing health checker: OK, DEGRADED (slow
//! or unexpected body), TIMEOUT, REFUSED, FAIL, SKIP (disabled, with reason).
//! Nothing is sent but the GET; response bodies are compared, never printed.

pub mod check;
pub mod show;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Endpoint, HealthDefaults, HealthFile};

/// Checks running at the same time, at most.
const PARALLEL: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Degraded,
    Timeout,
    Refused,
    Fail,
    Skip,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Degraded,
        Status::Timeout,
        Status::Refused,
        Status::Fail,
        Status::Skip,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Degraded => "DEGRADED",
            Status::Timeout => "TIMEOUT",
            Status::Refused => "REFUSED",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }

    /// Checked and not OK. (SKIP is neither a pass nor a failure: the
    /// operator turned the endpoint's check off and said why.)
    pub fn is_failure(self) -> bool {
        !matches!(self, Status::Ok | Status::Skip)
    }
}

/// The outcome of one endpoint: its health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub host: String,
    pub url: String,
    /// The URL's path, as the table shows it.
    pub path: String,
    pub status: Status,
    /// The HTTP status that came back, if any did.
    pub http_status: Option<u16>,
    /// Time to the complete answer (or to giving up), in milliseconds.
    pub time_ms: u64,
    /// Why it is not OK, or the reason it is skipped; empty when OK.
    pub note: String,
}

/// Timeouts and thresholds from the file's `defaults`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub connect: Duration,
    pub max_time: Duration,
    pub slow: Duration,
}

impl From<&HealthDefaults> for Limits {
    fn from(d: &HealthDefaults) -> Self {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.001, 86_400.0));
        let max_time = secs(d.max_time_sec);
        Limits {
            connect: secs(d.connect_timeout_sec).min(max_time),
            max_time,
            slow: d.slow_sec.map_or(max_time / 2, secs),
        }
    }
}

/// The endpoints matching every filter given (`hosts`, `ids`; empty: any).
pub fn select<'a>(file: &'a HealthFile, hosts: &[String], ids: &[String]) -> Vec<&'a Endpoint> {
    file.endpoints
        .iter()
        .filter(|e| hosts.is_empty() || hosts.contains(&e.host))
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .collect()
}

/// Check `endpoints` in parallel; results in the same order.
pub fn run(endpoints: &[&Endpoint], limits: Limits) -> Vec<Check> {
    let results: Vec<Mutex<Option<Check>>> = endpoints.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..endpoints.len().min(PARALLEL) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(ep) = endpoints.get(i) else { break };
                    let p = check::check(ep, &limits);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
                }
            });
        }
    });
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Counts per status, and the verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub total: usize,
    pub ok: usize,
    pub degraded: usize,
    pub timeout: usize,
    pub refused: usize,
    pub fail: usize,
    pub skip: usize,
    /// `id STATUS` of every endpoint that is not OK (skips excluded).
    pub failing: Vec<String>,
}

impl Tally {
    pub fn of(checks: &[Check]) -> Tally {
        let mut t = Tally {
            total: checks.len(),
            ..Tally::default()
        };
        for p in checks {
            *match p.status {
                Status::Ok => &mut t.ok,
                Status::Degraded => &mut t.degraded,
                Status::Timeout => &mut t.timeout,
                Status::Refused => &mut t.refused,
                Status::Fail => &mut t.fail,
                Status::Skip => &mut t.skip,
            } += 1;
            if p.status.is_failure() {
                t.failing.push(format!("{} {}", p.id, p.status.as_str()));
            }
        }
        t
    }

    pub fn failures(&self) -> usize {
        self.failing.len()
    }

    /// OK (everything checked answered well), FAIL, or NONE (nothing matched).
    pub fn verdict(&self) -> &'static str {
        if self.total == 0 {
            "NONE"
        } else if self.failures() > 0 {
            "FAIL"
        } else {
            "OK"
        }
    }

    /// `1 ok, 1 skip` and so on, zero counts left out.
    pub fn counts(&self) -> String {
        let parts: Vec<String> = [
            (self.ok, "ok"),
            (self.degraded, "degraded"),
            (self.timeout, "timeout"),
            (self.refused, "refused"),
            (self.fail, "fail"),
            (self.skip, "skip"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        parts.join(", ")
    }
}

/// Check every endpoint of `file` whose host is in `hosts` (all when empty).
pub fn check_hosts(file: &HealthFile, hosts: &[String]) -> Vec<Check> {
    let eps = select(file, hosts, &[]);
    run(&eps, Limits::from(&file.defaults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_from_defaults() {
        let l = Limits::from(&HealthDefaults::default());
        assert_eq!(l.connect, Duration::from_secs(5));
        assert_eq!(l.max_time, Duration::from_secs(10));
        assert_eq!(l.slow, Duration::from_secs(5));
        let l = Limits::from(&HealthDefaults {
            connect_timeout_sec: 20.0,
            max_time_sec: 2.0,
            slow_sec: Some(0.5),
        });
        assert_eq!(l.connect, Duration::from_secs(2));
        assert_eq!(l.slow, Duration::from_millis(500));
    }

    #[test]
    fn verdicts() {
        let p = |id: &str, status| Check {
            id: id.into(),
            host: "h".into(),
            url: "http://127.0.0.1/".into(),
            path: "/".into(),
            status,
            http_status: None,
            time_ms: 0,
            note: String::new(),
        };
        assert_eq!(Tally::of(&[]).verdict(), "NONE");
        let t = Tally::of(&[p("a", Status::Ok), p("b", Status::Skip)]);
        assert_eq!((t.verdict(), t.counts().as_str()), ("OK", "1 ok, 1 skip"));
        let t = Tally::of(&[p("a", Status::Ok), p("b", Status::Degraded)]);
        assert_eq!(t.verdict(), "FAIL");
        assert_eq!(t.failing, vec!["b DEGRADED".to_string()]);
    }
}
