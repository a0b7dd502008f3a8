//! How health reads: the table `ID HOST STATUS TIME PATH NOTE` and a last
//! `status:` line, or a versioned JSON document.

use std::fmt::Write as _;

use serde_json::json;

use super::{Check, Limits, Status, Tally};

/// Major version of the JSON shape; consumers must reject an unknown major.
pub const JSON_FORMAT_VERSION: u32 = 1;

pub fn paint(s: &str, status: Status, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match status {
        Status::Ok => "32",
        Status::Degraded => "33",
        Status::Skip => "36",
        _ => "31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// `12ms`, `1.25s`.
pub fn time(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", ms as f64 / 1000.0)
    }
}

/// The `status:` line.
pub fn status_line(t: &Tally) -> String {
    match t.verdict() {
        "NONE" => "status: NONE (no endpoint matches the filter)".to_string(),
        "OK" => format!("status: OK ({})", t.counts()),
        v => format!("status: {v} ({}; {})", t.failing.join(", "), t.counts()),
    }
}

pub fn table(checks: &[Check], color: bool) -> String {
    let head = ["ID", "HOST", "STATUS", "TIME", "PATH", "NOTE"];
    let rows: Vec<[String; 6]> = checks
        .iter()
        .map(|p| {
            [
                p.id.clone(),
                p.host.clone(),
                p.status.as_str().to_string(),
                if p.status == Status::Skip {
                    "-".to_string()
                } else {
                    time(p.time_ms)
                },
                p.path.clone(),
                p.note.clone(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6], status: Option<Status>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            let cell = match (i, status) {
                (2, Some(st)) => paint(c, st, color),
                _ => c.to_string(),
            };
            if i == 5 {
                s.push_str(&cell);
            } else {
                let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(head, None);
    out.push('\n');
    for (r, p) in rows.iter().zip(checks) {
        let cells = [
            r[0].as_str(),
            r[1].as_str(),
            r[2].as_str(),
            r[3].as_str(),
            r[4].as_str(),
            r[5].as_str(),
        ];
        out.push_str(&line(cells, Some(p.status)));
        out.push('\n');
    }
    out
}

pub fn text(checks: &[Check], color: bool) -> String {
    let mut out = String::new();
    if !checks.is_empty() {
        out.push_str(&table(checks, color));
    }
    out.push_str(&status_line(&Tally::of(checks)));
    out.push('\n');
    out
}

pub fn json(checks: &[Check], registry: &str, limits: &Limits) -> String {
    let t = Tally::of(checks);
    let v = json!({
        "format_version": JSON_FORMAT_VERSION,
        "tool": format!("spine {}", env!("CARGO_PKG_VERSION")),
        "registry": registry,
        "defaults": {
            "connect_timeout_sec": limits.connect.as_secs_f64(),
            "max_time_sec": limits.max_time.as_secs_f64(),
            "slow_sec": limits.slow.as_secs_f64(),
        },
        "endpoints": checks,
        "summary": {
            "total": t.total,
            "ok": t.ok,
            "degraded": t.degraded,
            "timeout": t.timeout,
            "refused": t.refused,
            "fail": t.fail,
            "skip": t.skip,
            "failing": t.failing,
            "status": t.verdict(),
        },
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lines_up() {
        let p = Check {
            id: "immich-ping".into(),
            host: "immich".into(),
            url: "http://127.0.0.1:2283/api/server/ping".into(),
            path: "/api/server/ping".into(),
            status: Status::Ok,
            http_status: Some(200),
            time_ms: 12,
            note: String::new(),
        };
        let out = text(&[p], false);
        assert_eq!(
            out,
            "ID           HOST    STATUS  TIME  PATH              NOTE\n\
             immich-ping  immich  OK      12ms  /api/server/ping\n\
             status: OK (1 ok)\n"
        );
        assert_eq!(time(1250), "1.25s");
    }
}
