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
use axum::extract::{RawQuery, State};
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
pub(crate) const MAX_SEQ: u64 = 1 << 32;

/// Deliveries of one kind (documents or points).
pub(crate) struct Tracker {
    seen: Vec<u64>,
    pub(crate) distinct: u64,
    pub(crate) duplicates: u64,
    /// Records without a readable `seq=`/`sent=` (not the blaster's).
    pub(crate) unmatched: u64,
    pub(crate) latency_us: Histogram<u64>,
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
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

/// What the endpoints received.
pub(crate) struct Deliveries {
    pub(crate) documents: Mutex<Tracker>,
    pub(crate) points: Mutex<Tracker>,
    pub(crate) requests: std::sync::atomic::AtomicU64,
    pub(crate) bad_requests: std::sync::atomic::AtomicU64,
}

impl Deliveries {
    pub(crate) fn new() -> Result<Deliveries, hdrhistogram::CreationError> {
        Ok(Deliveries {
            documents: Mutex::new(Tracker::new()?),
            points: Mutex::new(Tracker::new()?),
            requests: Default::default(),
            bad_requests: Default::default(),
        })
    }

    /// Distinct documents and points so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let d = self.documents.lock().map(|t| t.distinct).unwrap_or(0);
        let p = self.points.lock().map(|t| t.distinct).unwrap_or(0);
        (d, p)
    }
}

type Shared = Arc<Deliveries>;

/// Serve the endpoints on `listener` until the process ends.
pub(crate) async fn serve(listener: tokio::net::TcpListener, deliveries: Shared) {
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

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
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

/// Elasticsearch's response filtering (`?filter_path=`) for the fields of
/// a `_bulk` answer: comma-separated dotted paths, `*` within a name,
/// `**` for any depth, `-` to exclude.
struct ResponseFilter {
    include: Vec<Vec<String>>,
    exclude: Vec<Vec<String>>,
}

impl ResponseFilter {
    fn from_query(query: Option<&str>) -> Option<ResponseFilter> {
        let value = form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "filter_path")?
            .1;
        let split = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.strip_prefix('-') {
                Some(x) => exclude.push(split(x)),
                None => include.push(split(p)),
            }
        }
        Some(ResponseFilter { include, exclude })
    }

    /// Whether the answer keeps the scalar field at `path`.
    fn keeps(&self, path: &[&str]) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| selects(p, path)))
            && !self.exclude.iter().any(|p| selects(p, path))
    }
}

/// Whether `pattern` selects the field at `path` or an ancestor of it.
fn selects(pattern: &[String], path: &[&str]) -> bool {
    let Some(first) = pattern.first() else {
        return true;
    };
    if first == "**" {
        return selects(&pattern[1..], path)
            || path
                .split_first()
                .is_some_and(|(_, rest)| selects(pattern, rest));
    }
    path.split_first()
        .is_some_and(|(name, rest)| name_matches(first, name) && selects(&pattern[1..], rest))
}

/// A name against a filter segment (`*` any run of characters).
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => name.strip_prefix(head).is_some_and(|after| {
            (0..=after.len())
                .filter(|&i| after.is_char_boundary(i))
                .any(|i| name_matches(rest, &after[i..]))
        }),
    }
}

/// Which fields of a `_bulk` answer to write, under an optional filter.
struct AnswerShape {
    took: bool,
    errors: bool,
    /// Per action (`create`, `index`): `_index`, `_id`, `_version`,
    /// `result`, `status`.
    item: [[bool; 5]; 2],
}

const ITEM_FIELDS: [&str; 5] = ["_index", "_id", "_version", "result", "status"];

impl AnswerShape {
    fn new(filter: Option<&ResponseFilter>) -> AnswerShape {
        let keeps = |path: &[&str]| filter.is_none_or(|f| f.keeps(path));
        let item = |op: &str| ITEM_FIELDS.map(|field| keeps(&["items", op, field]));
        AnswerShape {
            took: keeps(&["took"]),
            errors: keeps(&["errors"]),
            item: [item("create"), item("index")],
        }
    }

    /// The answer for a request of `actions` (`true`: `index`, else
    /// `create`), each with its index and id; every item succeeded.
    fn write(&self, answer: &mut Vec<u8>, actions: &[(bool, &[u8], &[u8])]) {
        answer.push(b'{');
        let mut first_key = true;
        let mut key = |answer: &mut Vec<u8>, k: &[u8]| {
            if !first_key {
                answer.push(b',');
            }
            first_key = false;
            answer.extend_from_slice(k);
        };
        if self.took {
            key(answer, br#""took":1"#);
        }
        if self.errors {
            key(answer, br#""errors":false"#);
        }
        let shown = |index: bool| self.item[usize::from(index)].iter().any(|&k| k);
        if actions.iter().any(|&(index, _, _)| shown(index)) {
            key(answer, br#""items":["#);
            let mut first_item = true;
            for &(index, name, id) in actions {
                let fields = self.item[usize::from(index)];
                if !fields.iter().any(|&k| k) {
                    continue;
                }
                if !first_item {
                    answer.push(b',');
                }
                first_item = false;
                answer.extend_from_slice(if index {
                    br#"{"index":{"#
                } else {
                    br#"{"create":{"#
                });
                let values: [&[u8]; 5] = [name, id, b"1", b"created", b"201"];
                let mut first_field = true;
                for ((field, value), keep) in ITEM_FIELDS.iter().zip(values).zip(fields) {
                    if !keep {
                        continue;
                    }
                    if !first_field {
                        answer.push(b',');
                    }
                    first_field = false;
                    answer.push(b'"');
                    answer.extend_from_slice(field.as_bytes());
                    answer.extend_from_slice(b"\":");
                    let quoted = matches!(*field, "_index" | "_id" | "result");
                    if quoted {
                        answer.push(b'"');
                    }
                    answer.extend_from_slice(value);
                    if quoted {
                        answer.push(b'"');
                    }
                }
                answer.extend_from_slice(b"}}");
            }
            answer.push(b']');
        }
        answer.push(b'}');
    }
}

async fn bulk(
    State(d): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
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
    let shape = AnswerShape::new(ResponseFilter::from_query(query.as_deref()).as_ref());
    let mut actions: Vec<(bool, &[u8], &[u8])> = Vec::new();
    let mut lines = lines(&text).filter(|l| !l.is_empty());
    if let Ok(mut t) = d.documents.lock() {
        while let Some(action) = lines.next() {
            let Some(source) = lines.next() else { break };
            t.record(source, now);
            actions.push((
                action.starts_with(br#"{"index""#),
                action_value(action, &INDEX_KEY),
                action_value(action, &ID_KEY),
            ));
        }
    }
    let mut answer = Vec::with_capacity(actions.len() * 96 + 64);
    shape.write(&mut answer, &actions);
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

    /// The `_bulk` answer under `filter_path`, as Elasticsearch filters it.
    #[test]
    fn bulk_answer_honours_filter_path() {
        let actions: [(bool, &[u8], &[u8]); 2] = [(false, b"logs", b"a"), (true, b"logs", b"b")];
        let answer = |query: Option<&str>| {
            let filter = ResponseFilter::from_query(query);
            let mut out = Vec::new();
            AnswerShape::new(filter.as_ref()).write(&mut out, &actions);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            answer(None),
            r#"{"took":1,"errors":false,"items":[{"create":{"_index":"logs","_id":"a","_version":1,"result":"created","status":201}},{"index":{"_index":"logs","_id":"b","_version":1,"result":"created","status":201}}]}"#
        );
        assert_eq!(answer(Some("pipeline=x")), answer(None));
        // What sluice asks for.
        assert_eq!(
            answer(Some(
                "filter_path=errors,error,status,items.*.status,items.*.error"
            )),
            r#"{"errors":false,"items":[{"create":{"status":201}},{"index":{"status":201}}]}"#
        );
        // Percent-encoded, wildcards within a name, `**`, exclusions.
        assert_eq!(
            answer(Some("a=1&filter_path=took%2Citems.create._i*")),
            r#"{"took":1,"items":[{"create":{"_index":"logs","_id":"a"}}]}"#
        );
        assert_eq!(
            answer(Some("filter_path=**.result")),
            r#"{"items":[{"create":{"result":"created"}},{"index":{"result":"created"}}]}"#
        );
        assert_eq!(
            answer(Some("filter_path=-items,-took")),
            r#"{"errors":false}"#
        );
        assert_eq!(
            answer(Some(
                "filter_path=items,-items.*._version,-items.*.result,-items.index"
            )),
            r#"{"items":[{"create":{"_index":"logs","_id":"a","status":201}}]}"#
        );
        // Only failures asked for, and none: no items at all.
        assert_eq!(answer(Some("filter_path=items.*.error")), "{}");
    }

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
