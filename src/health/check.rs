//! One health check: a plain GET (no redirects followed, no proxy, nothing secret
//! sent), classified as the operator's health checker does.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use super::{Check, Limits, Status};
use crate::model::{Endpoint, Expect};

/// Bodies longer than this are not read to the end (and cannot match).
const BODY_LIMIT: u64 = 64 * 1024;

/// The path (and query) of a URL, `/` when it has none.
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// What a failed request means: status and note.
fn classify(e: &ureq::Error, limits: &Limits) -> (Status, String) {
    match e {
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => (
            Status::Timeout,
            format!("no connection within {}", secs(limits.connect)),
        ),
        ureq::Error::Timeout(_) => (
            Status::Timeout,
            format!("no complete answer within {}", secs(limits.max_time)),
        ),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => (Status::Refused, "connection refused".into()),
            ErrorKind::TimedOut => (
                Status::Timeout,
                format!("no answer within {}", secs(limits.max_time)),
            ),
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                (Status::Fail, format!("unreachable: {io}"))
            }
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
                (Status::Fail, format!("connection dropped: {io}"))
            }
            _ => (Status::Fail, format!("i/o error: {io}")),
        },
        ureq::Error::HostNotFound => (Status::Fail, "host name does not resolve".into()),
        ureq::Error::BadUri(u) => (Status::Fail, format!("bad URL: {u}")),
        other => (Status::Fail, other.to_string()),
    }
}

/// Whether the body is the expected one (one trailing newline tolerated).
fn body_matches(body: &[u8], want: &str) -> bool {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    body == want.as_bytes()
}

/// Check one endpoint.
pub fn check(ep: &Endpoint, limits: &Limits) -> Check {
    let mut out = Check {
        id: ep.id.clone(),
        host: ep.host.clone(),
        url: ep.url.clone(),
        path: url_path(&ep.url),
        status: Status::Skip,
        http_status: None,
        time_ms: 0,
        note: String::new(),
    };
    if ep.enabled == Some(false) {
        out.note = match &ep.disabled_reason {
            Some(r) if !r.trim().is_empty() => format!("disabled: {}", r.trim()),
            _ => "disabled".into(),
        };
        return out;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(limits.connect))
        .timeout_global(Some(limits.max_time))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .user_agent(concat!("spine-health/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let start = Instant::now();
    let answer = agent.get(&ep.url).call().and_then(|mut r| {
        let status = r.status().as_u16();
        let body = match r.body_mut().with_config().limit(BODY_LIMIT).read_to_vec() {
            Ok(b) => Some(b),
            Err(ureq::Error::BodyExceedsLimit(_)) => None,
            Err(e) => return Err(e),
        };
        Ok((status, body))
    });
    let took = start.elapsed();
    out.time_ms = took.as_millis() as u64;
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            (out.status, out.note) = classify(&e, limits);
            return out;
        }
    };
    out.http_status = Some(status);
    (out.status, out.note) = if !Expect::accepts(ep.expect.as_ref(), status) {
        let expect = Expect::show(ep.expect.as_ref());
        (Status::Fail, format!("HTTP {status}, expected {expect}"))
    } else if let Some(want) = &ep.expect_body
        && !body.as_deref().is_some_and(|b| body_matches(b, want))
    {
        let got = body.map_or_else(
            || format!("over {BODY_LIMIT} bytes"),
            |b| format!("{} bytes", b.len()),
        );
        (
            Status::Degraded,
            format!("unexpected body ({got}), expected {want}"),
        )
    } else if took > limits.slow {
        (
            Status::Degraded,
            format!("slow: {} (over {})", secs(took), secs(limits.slow)),
        )
    } else {
        (Status::Ok, String::new())
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            url_path("http://192.168.1.203:2283/api/server/ping"),
            "/api/server/ping"
        );
        assert_eq!(url_path("https://h"), "/");
        assert_eq!(url_path("http://h:1/a?b=c"), "/a?b=c");
    }

    #[test]
    fn bodies() {
        assert!(body_matches(br#"{"res":"pong"}"#, r#"{"res":"pong"}"#));
        assert!(body_matches(b"{\"res\":\"pong\"}\r\n", r#"{"res":"pong"}"#));
        assert!(!body_matches(br#"{"res": "pong"}"#, r#"{"res":"pong"}"#));
        assert!(!body_matches(b"", r#"{"res":"pong"}"#));
    }

    /// A one-shot HTTP server on loopback answering with `status`.
    fn answer_once(status: u16) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        url
    }

    #[test]
    fn expect_as_a_list_of_codes_is_honoured() {
        let limits = Limits::from(&crate::model::HealthDefaults::default());
        let ep = |url: String, expect: &str| Endpoint {
            id: "x".into(),
            host: "h".into(),
            url,
            expect: Some(serde_json::from_str(expect).unwrap()),
            expect_body: None,
            enabled: None,
            disabled_reason: None,
            description: None,
        };
        let p = check(&ep(answer_once(403), r#""401,403""#), &limits);
        assert_eq!(p.status, Status::Ok, "{}", p.note);
        let p = check(&ep(answer_once(401), "[401, 403]"), &limits);
        assert_eq!(p.status, Status::Ok, "{}", p.note);
        let p = check(&ep(answer_once(200), r#""401,403""#), &limits);
        assert_eq!(
            (p.status, p.note.as_str()),
            (Status::Fail, "HTTP 200, expected 401 or 403")
        );
    }

    #[test]
    fn disabled_is_skipped_with_its_reason() {
        let ep = Endpoint {
            id: "x".into(),
            host: "h".into(),
            url: "http://127.0.0.1:9/".into(),
            expect: None,
            expect_body: None,
            enabled: Some(false),
            disabled_reason: Some("GAP-OP-094".into()),
            description: None,
        };
        let limits = Limits::from(&crate::model::HealthDefaults::default());
        let p = check(&ep, &limits);
        assert_eq!(
            (p.status, p.note.as_str()),
            (Status::Skip, "disabled: GAP-OP-094")
        );
    }
}
