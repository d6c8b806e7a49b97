//! The blaster's sink endpoints: an HTTP server that answers InfluxDB's
//! `/write` (1.x and 2.x), `/ping` and `/query`, and Elasticsearch's `_bulk`
//! as those servers do, and records every delivered message by its
//! sequence number: distinct, duplicate, and the latency from its intended
//! send time.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hdrhistogram::Histogram;

use super::message::number_after;

/// Latencies above this (1 hour, in µs) are recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Largest request body accepted (sluice's largest batch is 5 MiB by
/// default; uncompressed bodies are bounded by this too).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Sequence numbers above this are not tracked (bounds the bitset: 512 MiB).
pub const MAX_SEQ: u64 = 1 << 32;

/// Deliveries of one kind (documents or points).
pub struct Tracker {
    seen: Vec<u64>,
    pub distinct: u64,
    pub duplicates: u64,
    /// Records without a readable `seq=`/`sent=` (not the blaster's).
    pub unmatched: u64,
    pub latency_us: Histogram<u64>,
}

impl Tracker {
    fn new() -> Result<Tracker, hdrhistogram::CreationError> {
        Ok(Tracker {
            seen: Vec::new(),
            distinct: 0,
            duplicates: 0,
            unmatched: 0,
            // 3 significant figures; values above the bound are clamped.
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
        })
    }

    /// Record one delivery found in `text`, received at `now_nanos`.
    fn record(&mut self, text: &[u8], now_nanos: i64) {
        let (Some(seq), Some(sent)) = (number_after(text, &SEQ_KEY), number_after(text, &SENT_KEY))
        else {
            self.unmatched += 1;
            return;
        };
        if seq >= MAX_SEQ {
            self.unmatched += 1;
            return;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize((word + 1).next_power_of_two(), 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.distinct += 1;
        let us = (now_nanos.saturating_sub(sent as i64).max(0) / 1_000) as u64;
        let _ = self.latency_us.record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Was `seq` delivered?
    pub fn contains(&self, seq: u64) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

/// What the endpoints received.
pub struct Deliveries {
    pub documents: Mutex<Tracker>,
    pub points: Mutex<Tracker>,
    pub requests: std::sync::atomic::AtomicU64,
    pub bad_requests: std::sync::atomic::AtomicU64,
}

impl Deliveries {
    pub fn new() -> Result<Deliveries, hdrhistogram::CreationError> {
        Ok(Deliveries {
            documents: Mutex::new(Tracker::new()?),
            points: Mutex::new(Tracker::new()?),
            requests: Default::default(),
            bad_requests: Default::default(),
        })
    }

    /// Distinct documents and points so far.
    pub fn counts(&self) -> (u64, u64) {
        let d = self.documents.lock().map(|t| t.distinct).unwrap_or(0);
        let p = self.points.lock().map(|t| t.distinct).unwrap_or(0);
        (d, p)
    }
}

type Shared = Arc<Deliveries>;

/// Serve the endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, deliveries: Shared) {
    let app = Router::new()
        .route("/ping", get(ping).head(ping))
        .route("/query", get(query).post(query))
        .route("/write", post(influx_write))
        .route("/api/v2/write", post(influx_write))
        .route("/", get(es_info))
        .route("/_bulk", post(bulk))
        .route("/{index}/_bulk", post(bulk))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(deliveries);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "sink endpoints stopped");
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The body, gunzipped when the request says so.
fn body<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(std::borrow::Cow::Borrowed(&body[..]));
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(&body[..])
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("bad gzip body: {e}"))?;
    if out.len() > MAX_BODY {
        return Err(format!("gzip body over {MAX_BODY} bytes"));
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// The lines of a body (`\n`-separated; the last may lack its newline),
/// found with memchr rather than byte by byte.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        Some(line)
    })
}

async fn ping() -> Response {
    (
        StatusCode::NO_CONTENT,
        [("X-Influxdb-Version", "1.8.10-blaster")],
    )
        .into_response()
}

/// `CREATE DATABASE` and friends: accepted, as InfluxDB 1.x answers them.
async fn query() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"results":[{"statement_id":0}]}"#,
    )
        .into_response()
}

async fn influx_write(State(d): State<Shared>, headers: HeaderMap, raw: Bytes) -> Response {
    d.requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let text = match body(&headers, &raw) {
        Ok(t) => t,
        Err(e) => {
            d.bad_requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, format!(r#"{{"error":"{e}"}}"#)).into_response();
        }
    };
    let now = now_nanos();
    if let Ok(mut t) = d.points.lock() {
        for line in lines(&text) {
            if !line.is_empty() && line[0] != b'#' {
                t.record(line, now);
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn es_info() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"name":"syslog-blaster","cluster_name":"blaster","version":{"number":"8.15.0"},"tagline":"You Know, for Search"}"#,
    )
        .into_response()
}

/// The value of `"key":"…"` in a `_bulk` action line (no escapes expected
/// in index names and sluice's hex ids).
/// The `_bulk` action keys whose values the answer echoes, and the keys of
/// the sequence number and send time in a delivered message; searchers
/// built once.
static INDEX_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(br#""_index":""#));
static ID_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(br#""_id":""#));
static SEQ_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"seq="));
static SENT_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"sent="));

fn action_value<'a>(line: &'a [u8], key: &memchr::memmem::Finder<'_>) -> &'a [u8] {
    let Some(at) = key.find(line) else {
        return b"";
    };
    let rest = &line[at + key.needle().len()..];
    let end = memchr::memchr(b'"', rest).unwrap_or(rest.len());
    &rest[..end]
}

async fn bulk(State(d): State<Shared>, headers: HeaderMap, raw: Bytes) -> Response {
    d.requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let bad = |d: &Deliveries, reason: String| {
        d.bad_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                r#"{{"error":{{"type":"illegal_argument_exception","reason":"{reason}"}},"status":400}}"#
            ),
        )
            .into_response()
    };
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-ndjson") || v.starts_with("application/json")
        });
    if !ndjson {
        return bad(&d, "Content-Type must be application/x-ndjson".to_owned());
    }
    let text = match body(&headers, &raw) {
        Ok(t) => t,
        Err(e) => return bad(&d, e),
    };
    if !text.ends_with(b"\n") {
        return bad(
            &d,
            "The bulk request must be terminated by a newline [\\n]".to_owned(),
        );
    }
    let now = now_nanos();
    let mut answer = Vec::with_capacity(text.len() / 4 + 64);
    answer.extend_from_slice(br#"{"took":1,"errors":false,"items":["#);
    let mut lines = lines(&text).filter(|l| !l.is_empty());
    let mut first = true;
    if let Ok(mut t) = d.documents.lock() {
        while let Some(action) = lines.next() {
            let Some(source) = lines.next() else { break };
            t.record(source, now);
            if !first {
                answer.push(b',');
            }
            first = false;
            let op: &[u8] = if action.starts_with(br#"{"index""#) {
                b"index"
            } else {
                b"create"
            };
            answer.extend_from_slice(b"{\"");
            answer.extend_from_slice(op);
            answer.extend_from_slice(br#"":{"_index":""#);
            answer.extend_from_slice(action_value(action, &INDEX_KEY));
            answer.extend_from_slice(br#"","_id":""#);
            answer.extend_from_slice(action_value(action, &ID_KEY));
            answer.extend_from_slice(br#"","_version":1,"result":"created","status":201}}"#);
        }
    }
    answer.extend_from_slice(b"]}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response()
}

#[cfg(test)]
mod tests {

    #[test]
    fn lines_split_at_newlines() {
        let all = |t: &'static [u8]| lines(t).collect::<Vec<_>>();
        assert_eq!(all(b"a\nbb\n\nc"), [&b"a"[..], b"bb", b"", b"c"]);
        assert_eq!(all(b"a\n"), [&b"a"[..]]);
        assert!(all(b"").is_empty());
        assert_eq!(all(b"\n\n"), [&b""[..], b""]);
    }

    use super::*;

    #[test]
    fn tracker_counts_distinct_duplicates_and_unmatched() {
        let mut t = Tracker::new().unwrap();
        t.record(b"a seq=5 sent=1000000", 3_000_000);
        t.record(b"a seq=5 sent=1000000", 3_000_000);
        t.record(b"a seq=70 sent=1000000", 1_500_000);
        t.record(b"no numbers", 0);
        assert_eq!((t.distinct, t.duplicates, t.unmatched), (2, 1, 1));
        assert!(t.contains(5) && t.contains(70) && !t.contains(6));
        assert_eq!(t.latency_us.max(), 2000);
        assert_eq!(t.latency_us.min(), 500);
    }

    #[test]
    fn bulk_action_values_are_read() {
        let line = br#"{"create":{"_index":"syslog-2026.11.28","_id":"abc123"}}"#;
        assert_eq!(action_value(line, &INDEX_KEY), b"syslog-2026.11.28");
        assert_eq!(action_value(line, &ID_KEY), b"abc123");
        assert_eq!(action_value(b"{}", &ID_KEY), b"");
    }
}
