//! Kept only for faults a real engine cannot produce on demand: a
//! connection dropped after the documents were stored, a garbage or cut
//! answer, whole requests failing N times, answers slower than the sink's
//! timeout. Everything a real engine does (mappings, 429 rejections, write
//! blocks, 413, version differences) is tested against real OpenSearch and
//! Elasticsearch in `tests/engines/` (issue #23).
//!
//! An in-repo stand-in for Elasticsearch's `_bulk` API, for the sink's
//! tests (Elasticsearch cannot be installed here). It enforces what the
//! Elasticsearch reference documents for `POST /_bulk` (docs/bulk API,
//! 8.x: "Bulk API"):
//!
//! - the body is NDJSON: action line, then source line for `index`/`create`;
//!   "the final line of data must end with a newline character `\n`" —
//!   otherwise 400 `illegal_argument_exception` "The bulk request must be
//!   terminated by a newline [\n]";
//! - `Content-Type` must be `application/x-ndjson` (or `application/json`,
//!   which Elasticsearch also accepts); anything else is 406 ("Content-Type
//!   header [...] is not supported");
//! - `Content-Encoding: gzip` bodies are accepted (http.compression);
//! - the answer is 200 with `errors` and one `items` entry per action, in
//!   order, each with `status`, and `error.type` / `error.reason` on failure;
//! - `create` of an `_id` that exists is a per-item 409
//!   `version_conflict_engine_exception`; `index` overwrites (200);
//! - overload is a per-item 429 `es_rejected_execution_exception` (or a
//!   whole-request 429/503), a mapping problem a per-item 400
//!   `mapper_parsing_exception`.
//!
//! - `?filter_path=` (the common option "Response filtering") applies to
//!   every answer: comma-separated dotted paths, `*` within a name,
//!   `**` for any depth, a leading `-` to exclude; objects and array
//!   entries left empty are dropped (so `items.*.error` keeps only the
//!   failed items). [`filter_path`] is written apart from the blaster's.
//!
//! Failures are injected through [`Knobs`]; documents are kept in memory
//! across a restart of the server (same port), as a cluster keeps them.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// Failures to inject.
#[derive(Default, Clone)]
pub(crate) struct Knobs {
    /// Percent of documents answered 429 the first time they are seen.
    pub reject_429_percent: u64,
    /// Documents whose source contains this text get a 400 mapping error.
    pub mapping_error_marker: Option<String>,
    /// The next N requests are answered 503 as a whole.
    pub fail_requests: usize,
    /// Every answer waits this long.
    pub delay: Duration,
    /// The next N requests are processed (documents stored) but the
    /// connection is dropped before the answer, as when a node dies.
    pub drop_after_processing: usize,
    /// While set, every item is answered 429 (nothing stored): an
    /// overloaded cluster that still answers.
    pub items_429: bool,
    /// While set, every request is answered 200 with a body that is not a
    /// `_bulk` answer (nothing stored): a proxy's page in front of the
    /// cluster.
    pub not_bulk_200: bool,
    /// `Retry-After` (seconds) on the injected 503s of `fail_requests`.
    pub retry_after_secs: Option<u64>,
    /// While set, requests get no answer (a hung node); once cleared,
    /// those still waiting are answered 503, nothing of them stored.
    pub hang: bool,
    /// While `Some(n)`: a request that finds `n` documents stored once it
    /// is processed (its own stored too) gets no answer until the knob is
    /// cleared: the sink has delivered it and is never told so, as when
    /// the client dies with a request in flight.
    pub hold_answers_after: Option<usize>,
}

#[derive(Default)]
pub(crate) struct State {
    pub knobs: Knobs,
    /// (index, id) → source.
    pub docs: HashMap<(String, String), serde_json::Value>,
    /// (index, id) of each newly stored document, in the order stored.
    pub arrival: Vec<(String, String)>,
    /// Ids already answered 429 once.
    rejected_once: std::collections::HashSet<String>,
    pub requests: usize,
    /// The Authorization header of the last request.
    pub authorization: Option<String>,
    /// The `filter_path` of the last request.
    pub filter_path: Option<String>,
    /// Items answered 429.
    pub answered_429: usize,
    generated: u64,
}

pub(crate) struct EsServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EsServer {
    pub(crate) fn start() -> EsServer {
        let mut s = EsServer {
            addr: "127.0.0.1:0".parse().unwrap(),
            state: Arc::new(Mutex::new(State::default())),
            runtime: None,
        };
        s.launch();
        s
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Listen (again) on `self.addr`; documents survive a restart.
    pub(crate) fn launch(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = self.state.clone();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(self.addr))
            .unwrap();
        self.addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/_bulk", post(bulk))
            .route("/{index}/_bulk", post(bulk))
            .with_state(state);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        self.runtime = Some(runtime);
    }

    /// Stop answering (connections are refused until [`EsServer::launch`]).
    pub(crate) fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    pub(crate) fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.state.lock().unwrap().knobs);
    }

    /// Stored documents of `index`, by id.
    pub(crate) fn docs(&self, index: &str) -> HashMap<String, serde_json::Value> {
        self.state
            .lock()
            .unwrap()
            .docs
            .iter()
            .filter(|((i, _), _)| i == index)
            .map(|((_, id), v)| (id.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn total(&self) -> usize {
        let n = self.state.lock().unwrap().docs.len();
        crate::util::observed(format!("documents stored by the _bulk stand-in: {n}"));
        n
    }
}

impl Drop for EsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Elasticsearch's response filtering of `value` by a `filter_path`
/// value; `None` when nothing is left.
pub(crate) fn filter_path(value: &serde_json::Value, filter: &str) -> Option<serde_json::Value> {
    let split = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for p in filter.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p.strip_prefix('-') {
            Some(x) => exclude.push(split(x)),
            None => include.push(split(p)),
        }
    }
    if include.is_empty() {
        include.push(vec!["**".to_owned()]);
    }
    walk(value, &mut Vec::new(), &include, &exclude, false)
}

/// `name` against one path segment of a filter (`*` any run of chars).
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(after) = name.strip_prefix(head) else {
                return false;
            };
            (0..=after.len())
                .filter(|&i| after.is_char_boundary(i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

/// How `pattern` relates to the field at `path`: (it selects the field or
/// an ancestor of it, it could select something below the field).
fn relation(pattern: &[String], path: &[String]) -> (bool, bool) {
    let Some(first) = pattern.first() else {
        return (true, false);
    };
    if first == "**" {
        // `**` stands for no segment, or for one more.
        let (none, none_below) = relation(&pattern[1..], path);
        let (more, more_below) = match path.split_first() {
            Some((_, rest)) => relation(pattern, rest),
            None => (false, true),
        };
        return (none || more, none_below || more_below);
    }
    match path.split_first() {
        None => (false, true),
        Some((name, rest)) if glob(first, name) => relation(&pattern[1..], rest),
        Some(_) => (false, false),
    }
}

/// `value` (at `path`) filtered; `selected` when an include pattern selects
/// it or an ancestor.
fn walk(
    value: &serde_json::Value,
    path: &mut Vec<String>,
    include: &[Vec<String>],
    exclude: &[Vec<String>],
    selected: bool,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, child) in map {
                path.push(key.clone());
                let excluded = exclude.iter().any(|x| relation(x, path).0);
                let chosen = selected || include.iter().any(|p| relation(p, path).0);
                let below = include.iter().any(|p| relation(p, path).1);
                if !excluded && (chosen || below) {
                    if let Some(v) = walk(child, path, include, exclude, chosen) {
                        out.insert(key.clone(), v);
                    }
                }
                path.pop();
            }
            (!out.is_empty() || path.is_empty()).then_some(Value::Object(out))
        }
        // Entries share their array's path.
        Value::Array(entries) => {
            let kept: Vec<Value> = entries
                .iter()
                .filter_map(|e| walk(e, path, include, exclude, selected))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => selected.then(|| other.clone()),
    }
}

fn error(status: StatusCode, kind: &str, reason: &str) -> (StatusCode, String) {
    (
        status,
        serde_json::json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()})
            .to_string(),
    )
}

async fn bulk(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let filter = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "filter_path")
            .map(|(_, v)| v.into_owned())
    });
    state.lock().unwrap().filter_path = filter.clone();
    let (retry_after, not_bulk) = {
        let st = state.lock().unwrap();
        (st.knobs.retry_after_secs, st.knobs.not_bulk_200)
    };
    if state.lock().unwrap().knobs.hang {
        state.lock().unwrap().requests += 1;
        while state.lock().unwrap().knobs.hang {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "hung").into_response();
    }
    if not_bulk {
        let mut st = state.lock().unwrap();
        st.requests += 1;
        return (
            StatusCode::OK,
            "<html><body><h1>Welcome to nginx!</h1></body></html>",
        )
            .into_response();
    }
    let (status, answer) = bulk_answer(state.clone(), headers, body).await;
    let held = |st: &State| {
        st.knobs
            .hold_answers_after
            .is_some_and(|n| st.arrival.len() >= n)
    };
    while held(&state.lock().unwrap()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = match filter {
        None => answer,
        Some(filter) => serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| filter_path(&v, &filter))
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string(),
    };
    match retry_after {
        Some(secs) if status == StatusCode::SERVICE_UNAVAILABLE => {
            (status, [("Retry-After", secs.to_string())], answer).into_response()
        }
        _ => (status, answer).into_response(),
    }
}

async fn bulk_answer(
    state: Arc<Mutex<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let delay = state.lock().unwrap().knobs.delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut st = state.lock().unwrap();
    st.requests += 1;
    st.authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if st.knobs.fail_requests > 0 {
        st.knobs.fail_requests -= 1;
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected 503",
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-ndjson")
        && !content_type.starts_with("application/json")
    {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "media_type_header_exception",
            &format!("Content-Type header [{content_type}] is not supported"),
        );
    }
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let text = if gzip {
        let mut out = String::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .is_err()
        {
            return error(StatusCode::BAD_REQUEST, "parse_exception", "bad gzip body");
        }
        out
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(s) => s,
            Err(_) => return error(StatusCode::BAD_REQUEST, "parse_exception", "not UTF-8"),
        }
    };
    if !text.ends_with('\n') {
        return error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        );
    }
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let mut items = Vec::new();
    let mut errors = false;
    let mut k = 0;
    while k < lines.len() {
        let Ok(action) = serde_json::from_str::<serde_json::Value>(lines[k]) else {
            return error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                "Malformed action/metadata line",
            );
        };
        let Some((op, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "Malformed action/metadata line",
            );
        };
        let (op, meta) = (op.clone(), meta.clone());
        if op != "create" && op != "index" {
            return error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &format!("unsupported action [{op}]"),
            );
        }
        let Some(source_line) = lines.get(k + 1) else {
            return error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "action without a source line",
            );
        };
        k += 2;
        let index = meta["_index"].as_str().unwrap_or("").to_owned();
        let Ok(source) = serde_json::from_str::<serde_json::Value>(source_line) else {
            errors = true;
            items.push(
                serde_json::json!({op.clone(): {"_index": index, "status": 400,
                "error": {"type": "document_parsing_exception", "reason": "failed to parse"}}}),
            );
            continue;
        };
        let id = match meta["_id"].as_str() {
            Some(id) => id.to_owned(),
            None => {
                st.generated += 1;
                format!("generated-{}", st.generated)
            }
        };
        let item = |status: u16, kind: Option<(&str, &str)>| {
            let mut r = serde_json::json!({"_index": index, "_id": id, "status": status});
            if let Some((t, why)) = kind {
                r["error"] = serde_json::json!({"type": t, "reason": why});
            }
            serde_json::json!({ op.clone(): r })
        };
        let marker = st.knobs.mapping_error_marker.clone();
        if marker.is_some_and(|m| source_line.contains(&m)) {
            errors = true;
            items.push(item(
                400,
                Some((
                    "mapper_parsing_exception",
                    "failed to parse field [message] of type [long]",
                )),
            ));
            continue;
        }
        if st.knobs.items_429 {
            errors = true;
            st.answered_429 += 1;
            items.push(item(
                429,
                Some((
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation",
                )),
            ));
            continue;
        }
        let percent = st.knobs.reject_429_percent;
        let hash = id
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        if percent > 0 && hash % 100 < percent && st.rejected_once.insert(id.clone()) {
            errors = true;
            st.answered_429 += 1;
            items.push(item(
                429,
                Some((
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation",
                )),
            ));
            continue;
        }
        let key = (index.clone(), id.clone());
        if op == "create" && st.docs.contains_key(&key) {
            errors = true;
            items.push(item(
                409,
                Some((
                    "version_conflict_engine_exception",
                    "document already exists",
                )),
            ));
            continue;
        }
        let existed = st.docs.insert(key.clone(), source).is_some();
        if !existed {
            st.arrival.push(key);
        }
        items.push(item(if existed { 200 } else { 201 }, None));
    }
    if st.knobs.drop_after_processing > 0 {
        st.knobs.drop_after_processing -= 1;
        drop(st);
        // Ending the handler's task without an answer makes hyper close the
        // connection: the client sees it reset after the work was done.
        panic!("injected: connection dropped after processing");
    }
    (
        StatusCode::OK,
        serde_json::json!({"took": 1, "errors": errors, "items": items}).to_string(),
    )
}

/// `filter_path` as the Elasticsearch reference's "Response filtering"
/// describes it, on a `_bulk` answer with one failed item.
#[test]
fn filter_path_as_elasticsearch_documents_it() {
    let answer = serde_json::json!({"took": 3, "errors": true, "items": [
        {"create": {"_index": "logs", "_id": "a", "status": 201}},
        {"create": {"_index": "logs", "_id": "b", "status": 429,
            "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
        {"index": {"_index": "other", "_id": "c", "status": 200}},
    ]});
    let f = |filter: &str| filter_path(&answer, filter).map(|v| v.to_string());
    // Only the failed operations (the reference's own example).
    assert_eq!(
        f("items.*.error").unwrap(),
        r#"{"items":[{"create":{"error":{"reason":"busy","type":"es_rejected_execution_exception"}}}]}"#
    );
    // One entry per item, in order, when every item keeps a field.
    assert_eq!(
        f("errors,items.*.status,items.*.error.type").unwrap(),
        r#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"error":{"type":"es_rejected_execution_exception"},"status":429}},{"index":{"status":200}}]}"#
    );
    assert_eq!(
        f("items.index._id").unwrap(),
        r#"{"items":[{"index":{"_id":"c"}}]}"#
    );
    assert_eq!(
        f("items.*._i*").unwrap(),
        r#"{"items":[{"create":{"_id":"a","_index":"logs"}},{"create":{"_id":"b","_index":"logs"}},{"index":{"_id":"c","_index":"other"}}]}"#
    );
    assert_eq!(
        f("**.reason").unwrap(),
        r#"{"items":[{"create":{"error":{"reason":"busy"}}}]}"#
    );
    assert_eq!(f("took").unwrap(), r#"{"took":3}"#);
    // A whole subtree, and exclusions.
    assert_eq!(
        f("items,-items.*._index,-items.*._id,-items.*.error,-took").unwrap(),
        r#"{"items":[{"create":{"status":201}},{"create":{"status":429}},{"index":{"status":200}}]}"#
    );
    assert_eq!(f("-items,-took").unwrap(), r#"{"errors":true}"#);
    // Nothing selected: an empty object.
    assert_eq!(f("nothing.here").unwrap(), "{}");
    assert_eq!(f("errors.deeper").unwrap(), "{}");
}
