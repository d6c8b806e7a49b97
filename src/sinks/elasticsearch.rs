//! Elasticsearch sink: documents through the `_bulk` API.
//!
//! Each document gets a deterministic `_id` (a 128-bit hash of its route and
//! of the frame's number in the process, which is unique per frame even
//! when two frames are alike byte for byte; the record keeps it, so every
//! resend carries the same `_id`) and goes with the
//! `create` action, so a batch sent twice stores each document once: a 409
//! means "already stored". A 200 answer is read item by item:
//! items answered 429 or 5xx are sent again (only they, with backoff and
//! jitter); other item errors (400 mapping errors, ...) are permanent and go
//! to the dead-letter file with Elasticsearch's reason. Whole-request
//! failures (transport, 429, 5xx) move to the next node, which is then
//! skipped for a cool-down. Items still failing when the retry time runs out
//! are dead-lettered too: nothing is dropped without a trace. Each round of
//! item retries is reported like a failed request (retry counter,
//! `sluice_sink_up`, `/health`), and a 2xx that is not a `_bulk` answer for
//! the request is a failed request: nothing in it says an item was stored.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ElasticsearchConfig;
use crate::route::Record;
use crate::text::{civil_from_days, push_hex, write_json_str};

use super::{DeadLetter, RetryPolicy, SinkError, Written, gzip, retry_after};

/// How long a node that failed is skipped.
const NODE_COOL_DOWN: Duration = Duration::from_secs(30);

pub struct ElasticsearchSink {
    name: String,
    /// Request latency (`sluice_sink_request_duration_seconds`).
    requests: prometheus_client::metrics::histogram::Histogram,
    /// Rejections are logged at most every 10 s (counted always).
    reject_log: crate::telemetry::LogLimiter,
    /// Item retries likewise.
    retry_log: crate::telemetry::LogLimiter,
    config: ElasticsearchConfig,
    client: reqwest::Client,
    /// Per node: skipped until this instant after a failure.
    nodes: Mutex<(usize, Vec<Option<Instant>>)>,
    dead_letter: Option<DeadLetter>,
    retry: RetryPolicy,
    spare_body: super::SpareBody,
    /// Request bound learnt from 413 answers (see `max_request_bytes`).
    max_request_bytes: std::sync::atomic::AtomicUsize,
    /// The engine, detected (and the template installed) before the first
    /// write: `super::es_setup`.
    setup: tokio::sync::OnceCell<Option<super::es_setup::Engine>>,
}

/// How a request refused as too large (413) is told apart.
const TOO_LARGE: &str = "413 request too large";

/// One document of a batch, ready to send.
pub struct Item<'a> {
    /// The index name; items of a batch that fall in the same hour borrow
    /// the same one.
    pub index: &'a str,
    /// The `_id`'s 16 bytes (written as 32 hex digits).
    pub id: Option<[u8; 16]>,
    pub source: &'a str,
}

/// The index name of each run of `batch`'s records that fall in the same
/// hour, with the hour. Index names change at most hourly (`%H` is the
/// finest field), so a run's items borrow one name (not an `Arc` each: two
/// atomic operations per document).
fn hour_names(pattern: &str, batch: &[Record]) -> Vec<(i64, String)> {
    let mut names: Vec<(i64, String)> = Vec::new();
    for r in batch {
        let hour = hour_of(r);
        if names.last().is_none_or(|(h, _)| *h != hour) {
            names.push((hour, index_name(pattern, r.time_nanos)));
        }
    }
    names
}

fn hour_of(r: &Record) -> i64 {
    r.time_nanos.div_euclid(3_600_000_000_000)
}

/// `batch` as `_bulk` items, each with its run's name from `names`
/// ([`hour_names`] of the same batch) and, with `ids`, its `_id`.
fn batch_items<'a>(batch: &'a [Record], names: &'a [(i64, String)], ids: bool) -> Vec<Item<'a>> {
    let mut run = 0;
    batch
        .iter()
        .map(|r| {
            if names.get(run).is_some_and(|(h, _)| *h != hour_of(r)) {
                run += 1;
            }
            Item {
                index: names.get(run).map_or("", |(_, name)| name.as_str()),
                id: ids.then(|| r.key.unwrap_or_else(|| document_hash(&r.payload))),
                source: &r.payload,
            }
        })
        .collect()
}

/// What became of the items of one request.
struct Answer {
    /// Items to send again (429, 5xx), with the last reason.
    retry: Vec<(usize, String)>,
    /// Items Elasticsearch refused for good, with its reason.
    rejected: Vec<(usize, String)>,
}

impl ElasticsearchSink {
    pub fn open(
        name: &str,
        config: &ElasticsearchConfig,
        requests: prometheus_client::metrics::histogram::Histogram,
    ) -> Result<ElasticsearchSink, String> {
        let client = super::http_client(config.timeout, config.ca_file.as_deref())?;
        let dead_letter = DeadLetter::open(config.dead_letter.as_deref())?;
        Ok(ElasticsearchSink {
            requests,
            reject_log: crate::telemetry::LogLimiter::new(10_000),
            retry_log: crate::telemetry::LogLimiter::new(10_000),
            name: name.to_owned(),
            config: config.clone(),
            client,
            nodes: Mutex::new((0, vec![None; config.urls.len()])),
            dead_letter,
            retry: RetryPolicy {
                max_attempts: config.max_retries.max(1),
                max_elapsed: config.max_retry_time,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                max_wait: config.max_backoff,
            },
            spare_body: super::SpareBody::default(),
            max_request_bytes: std::sync::atomic::AtomicUsize::new(usize::MAX),
            setup: tokio::sync::OnceCell::new(),
        })
    }

    /// The next node to use (round-robin, skipping nodes in cool-down unless
    /// all are).
    fn node(&self) -> (usize, String) {
        let now = Instant::now();
        let n = self.config.urls.len().max(1);
        let Ok(mut nodes) = self.nodes.lock() else {
            return (0, self.config.urls.first().cloned().unwrap_or_default());
        };
        let start = nodes.0;
        let mut pick = start % n;
        for k in 0..n {
            let i = (start + k) % n;
            if nodes
                .1
                .get(i)
                .copied()
                .flatten()
                .is_none_or(|until| until <= now)
            {
                pick = i;
                break;
            }
        }
        nodes.0 = pick + 1;
        (
            pick,
            self.config.urls.get(pick).cloned().unwrap_or_default(),
        )
    }

    fn node_failed(&self, i: usize) {
        if let Ok(mut nodes) = self.nodes.lock() {
            if let Some(slot) = nodes.1.get_mut(i) {
                *slot = Some(Instant::now() + NODE_COOL_DOWN);
            }
        }
    }

    /// Write a batch. `Ok(w)`: every document stored except `w.rejected`,
    /// which are in the dead-letter file (`w.reason`: why the first was). Items sent again (answered 429 or 5xx, or
    /// in a request that failed after others got through) are retried
    /// here, each round reported to `metrics` (`sluice_sink_retries_total`,
    /// `sluice_sink_up` 0, `/health`) as the worker reports a whole batch.
    pub async fn write(
        &self,
        batch: &[Record],
        metrics: &crate::telemetry::SinkMetrics,
    ) -> Result<Written, SinkError> {
        if self.setup.get().is_none() {
            let (_, base) = self.node();
            self.setup
                .get_or_try_init(|| {
                    super::es_setup::run(&self.name, &self.config, &self.client, &base)
                })
                .await
                .map_err(|e| SinkError::retry(format!("setup: {e}")))?;
        }
        let names = hour_names(&self.config.index, batch);
        let items = batch_items(batch, &names, self.config.document_ids);
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut progressed = false;
        while !pending.is_empty() {
            let mut retry: Vec<(usize, String)> = Vec::new();
            let mut whole_failure: Option<(String, Option<Duration>)> = None;
            let max_bytes = self.config.batch_max_bytes.min(self.max_request_bytes());
            // Last first: popped in order; a chunk the node found too large
            // comes back as two halves.
            let mut todo = chunks(&items, &pending, max_bytes);
            todo.reverse();
            while let Some(chunk) = todo.pop() {
                match self.request(&items, &chunk).await {
                    Ok(answer) => {
                        // Progress: some item stored or settled. Items all
                        // answered "retry" (429, 5xx, a write block) are a
                        // failure the worker shows on /health.
                        if answer.retry.len() < chunk.len() {
                            progressed = true;
                        } else if let Some((_, why)) = answer.retry.first() {
                            whole_failure = Some((why.clone(), None));
                        }
                        retry.extend(answer.retry);
                        rejected.extend(answer.rejected);
                    }
                    Err((reason, _)) if reason.contains(TOO_LARGE) => {
                        match self.split_too_large(&items, chunk) {
                            Ok(halves) => todo.extend(halves),
                            Err(alone) => {
                                progressed = true;
                                rejected.extend(alone.into_iter().map(|i| (i, reason.clone())));
                            }
                        }
                    }
                    Err((reason, after)) => {
                        retry.extend(chunk.iter().map(|&i| (i, reason.clone())));
                        whole_failure = Some((reason, after));
                    }
                }
            }
            pending = retry.iter().map(|(i, _)| *i).collect();
            if pending.is_empty() {
                break;
            }
            if !progressed {
                // Nothing of this batch reached Elasticsearch: the worker
                // retries it whole, with its backoff, and shows the failure
                // on /health.
                let (message, retry_after) = whole_failure.unwrap_or_default();
                return Err(SinkError::Retryable {
                    message,
                    retry_after,
                });
            }
            attempt += 1;
            let out_of_time =
                attempt >= self.retry.max_attempts || started.elapsed() >= self.retry.max_elapsed;
            if out_of_time {
                rejected.extend(
                    retry
                        .into_iter()
                        .map(|(i, why)| (i, format!("gave up after {attempt} attempts: {why}"))),
                );
                break;
            }
            let why = match &whole_failure {
                Some((message, _)) => message.clone(),
                None => format!(
                    "{} items to retry: {}",
                    retry.len(),
                    retry.first().map_or("", |(_, why)| why.as_str())
                ),
            };
            metrics.retrying(&why);
            let wait = self.retry.wait(
                attempt - 1,
                whole_failure.and_then(|(_, a)| a),
                started.elapsed(),
            );
            if let Some(suppressed) = self.retry_log.allow() {
                tracing::warn!(sink = %self.name, items = pending.len(), attempt, ?wait, suppressed, "Elasticsearch: retrying items");
            }
            tokio::time::sleep(wait).await;
        }
        self.dead_letter(&items, &rejected)?;
        Ok(Written {
            rejected: rejected.len() as u64,
            reason: rejected.first().map(|(_, why)| why.clone()),
        })
    }

    /// The worker gave up on `batch` (its retry time or attempts ran
    /// out): every document goes to the dead-letter file with `reason`.
    /// `Ok(false)`: the sink has no dead-letter file.
    pub fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        let Some(file) = &self.dead_letter else {
            return Ok(false);
        };
        let names = hour_names(&self.config.index, batch);
        let items = batch_items(batch, &names, self.config.document_ids);
        let all: Vec<(usize, String)> = (0..items.len()).map(|i| (i, reason.to_owned())).collect();
        file.write(&self.entries(&items, &all))?;
        Ok(true)
    }

    /// One `_bulk` request for `chunk`. `Err` = the whole request failed
    /// (reason, Retry-After).
    async fn request(
        &self,
        items: &[Item<'_>],
        chunk: &[usize],
    ) -> Result<Answer, (String, Option<Duration>)> {
        let body = bulk_body_into(items, chunk, self.spare_body.take());
        let (node, base) = self.node();
        let url = bulk_url(&base, self.config.pipeline.as_deref());
        let mut req = self
            .client
            .post(&url)
            .header("Content-Type", "application/x-ndjson");
        let body = bytes::Bytes::from(if self.config.gzip {
            req = req.header("Content-Encoding", "gzip");
            let zipped = gzip(&body).map_err(|e| (format!("gzip: {e}"), None));
            self.spare_body.keep(body);
            zipped?
        } else {
            body
        });
        // A handle on the body: unique again once the request is done.
        let kept = body.clone();
        let c = &self.config;
        if let Some(key) = &c.api_key {
            req = req.header("Authorization", format!("ApiKey {key}"));
        } else if let Some(user) = &c.username {
            req = req.basic_auth(user, c.password.as_deref());
        }
        let started = Instant::now();
        let sent = req.body(body).send().await;
        self.requests.observe(started.elapsed().as_secs_f64());
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.node_failed(node);
                return Err((format!("{base}: {}", super::transport_error(e)), None));
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        // Bytes, not text: the answer is parsed as it is (JSON is UTF-8);
        // only an error's excerpt is decoded.
        let success = (200..300).contains(&status);
        let answer = answer_body(response, success, answer_cap(success, chunk.len())).await;
        if let Ok(body) = kept.try_into_mut() {
            self.spare_body.keep(body.into());
        }
        if status == 413 {
            // http.max_content_length: not the node's fault, no cool-down.
            return Err((format!("{base}: {TOO_LARGE} {}", short(&answer)), None));
        }
        if status == 429 || status >= 500 {
            self.node_failed(node);
            return Err((format!("{base}: {status} {}", short(&answer)), retry_after));
        }
        if !success {
            // The request itself was refused (auth, malformed): every item
            // is held for retry; the reason shows in logs and /health.
            return Err((
                format!("{base}: {status} {}", short(&answer)),
                Some(Duration::from_secs(10)),
            ));
        }
        // A 2xx that is not a _bulk answer (a proxy's page, a cut answer)
        // says nothing of the items: the request failed, and is retried.
        read_items(&answer.bytes, chunk).map_err(|e| {
            self.node_failed(node);
            (
                format!("{base}: {status} but {e}: {}", short(&answer)),
                retry_after,
            )
        })
    }

    /// The request size the nodes take: `batch_max_bytes` until a node
    /// answers 413, then half of the largest request it refused.
    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A chunk answered 413: its two halves to send instead, and the bound
    /// lowered for the next requests. A single document too large for the
    /// node is refused for good (`Err`: dead-lettered with the node's
    /// answer).
    fn split_too_large(
        &self,
        items: &[Item<'_>],
        chunk: Vec<usize>,
    ) -> Result<[Vec<usize>; 2], Vec<usize>> {
        let bytes: usize = chunk
            .iter()
            .filter_map(|&i| items.get(i))
            .map(|it| it.source.len() + it.index.len() + 80)
            .sum();
        self.max_request_bytes
            .fetch_min((bytes / 2).max(1), std::sync::atomic::Ordering::Relaxed);
        if chunk.len() < 2 {
            return Err(chunk);
        }
        let mut first = chunk;
        let second = first.split_off(first.len() / 2);
        tracing::debug!(sink = %self.name, bytes, "Elasticsearch: request too large (413), split in two");
        Ok([second, first])
    }

    fn dead_letter(
        &self,
        items: &[Item<'_>],
        rejected: &[(usize, String)],
    ) -> Result<(), SinkError> {
        if rejected.is_empty() {
            return Ok(());
        }
        if let Some(suppressed) = self.reject_log.allow() {
            // Elasticsearch's reason may preview a field's value: DEBUG only.
            tracing::warn!(sink = %self.name, rejected = rejected.len(), suppressed, dead_letter = %self.config.dead_letter.as_deref().map_or_else(|| "none".into(), std::path::Path::to_string_lossy), "Elasticsearch refused documents (reasons and documents in the dead-letter file)");
        }
        tracing::debug!(sink = %self.name, reason = %rejected[0].1, "Elasticsearch refused a document");
        let Some(file) = &self.dead_letter else {
            return Ok(());
        };
        file.write(&self.entries(items, rejected))
    }

    /// Dead-letter entries for the `rejected` items, with their reasons.
    fn entries(&self, items: &[Item<'_>], rejected: &[(usize, String)]) -> Vec<serde_json::Value> {
        let at = chrono::Utc::now().to_rfc3339();
        rejected
            .iter()
            .filter_map(|(i, reason)| {
                let item = items.get(*i)?;
                let source: serde_json::Value =
                    serde_json::from_str(item.source).unwrap_or(serde_json::Value::Null);
                Some(serde_json::json!({
                    "sink": self.name,
                    "at": at,
                    "index": item.index,
                    "id": item.id.map(|id| hex(&id)),
                    "reason": reason,
                    "document": source,
                }))
            })
            .collect()
    }
}

/// The first 300 characters of an answer, for a log line (noting that
/// it was cut at its cap).
fn short(answer: &super::CappedBody) -> String {
    let mut text: String = String::from_utf8_lossy(&answer.bytes)
        .chars()
        .take(300)
        .collect();
    if answer.truncated {
        text.push_str(" [answer cut at its cap]");
    }
    text
}

/// How much of an answer is kept: of a failure, what an error quotes; of
/// a 2xx, room for every item of the request with its error (the filtered
/// answer is about 25 bytes per item, a few hundred with an error).
fn answer_cap(success: bool, items: usize) -> usize {
    if success {
        super::MAX_ERROR_BODY_BYTES.saturating_add(items.saturating_mul(4096))
    } else {
        super::MAX_ERROR_BODY_BYTES
    }
}

/// The parts of a `_bulk` answer the sink reads: each item's status and,
/// for a failure, the error's type and reason. Everything else (`took`,
/// `_index`, `_shards`, ...) is skipped without being built.
#[derive(serde::Deserialize)]
struct BulkAnswer {
    items: Vec<BulkItem>,
}

/// One item: an object with one key, the action (`create` here; the others
/// are accepted so an answer is read whatever it names).
#[derive(serde::Deserialize)]
struct BulkItem {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: Option<ItemResult>,
}

#[derive(serde::Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    error: Option<ItemError>,
}

#[derive(serde::Deserialize)]
struct ItemError {
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: Option<String>,
}

/// Whether a `_bulk` answer says at its top that no item failed:
/// Elasticsearch writes `"errors":false` (before `"items"`) only when every
/// action succeeded, and then the items need not be read — parsing them was
/// a tenth of sluice's CPU at full speed. Anything else is read item by item.
fn all_succeeded(body: &[u8]) -> bool {
    let head = body.get(..body.len().min(ANSWER_HEAD)).unwrap_or_default();
    head.starts_with(b"{")
        && memchr::memmem::find(head, b"\"items\"").is_some_and(|items| {
            memchr::memmem::find(head.get(..items).unwrap_or_default(), b"\"errors\":false")
                .is_some()
        })
}

/// The body of a `_bulk` answer, at most `cap` bytes of it read (beyond,
/// it is discarded with the connection, and marked as cut). Of a success
/// whose head says that no item failed ([`all_succeeded`]) only the head
/// is kept: the items (a line per document, megabytes for a full batch)
/// are read off the connection and dropped, not gathered into one buffer
/// that nobody reads. A body cut short by an error is what arrived before
/// it.
async fn answer_body(
    mut response: reqwest::Response,
    success: bool,
    cap: usize,
) -> super::CappedBody {
    if !success {
        return super::read_capped(response, cap).await;
    }
    let mut body = super::CappedBody::new(cap);
    let mut read = 0usize;
    let mut head_read = false;
    let mut keep = true;
    while let Ok(Some(chunk)) = response.chunk().await {
        read = read.saturating_add(chunk.len());
        if keep {
            if !body.push(&chunk) {
                break;
            }
            if !head_read && body.bytes.len() >= ANSWER_HEAD {
                head_read = true;
                keep = !all_succeeded(&body.bytes);
            }
        } else if read > cap {
            break;
        }
    }
    body
}

/// What a `_bulk` answer is asked to keep (Elasticsearch's response
/// filtering): whether any item failed, each item's status and error in
/// order, and a refused request's error. An item's `_index`, `_id`,
/// `_version`, `_shards`, `_seq_no`... are not read: Elasticsearch
/// answered about 200 bytes per document of which 25 are kept.
const BULK_FILTER_PATH: &str = "errors,error,status,items.*.status,items.*.error";

/// The `_bulk` URL of the node at `base`, with the answer's filter and
/// the ingest pipeline (percent-encoded: a name may hold `&`, `#`, ` `).
fn bulk_url(base: &str, pipeline: Option<&str>) -> String {
    let mut url = format!(
        "{}/_bulk?filter_path={BULK_FILTER_PATH}",
        base.trim_end_matches('/')
    );
    if let Some(p) = pipeline {
        url.push_str("&pipeline=");
        url.extend(form_urlencoded::byte_serialize(p.as_bytes()));
    }
    url
}

/// How much of an answer [`all_succeeded`] looks at.
const ANSWER_HEAD: usize = 256;

/// Read a 2xx `_bulk` answer item by item; `Err` when it is not a
/// `_bulk` answer for `chunk` (not JSON, no `items`, not one per item).
fn read_items(body: &[u8], chunk: &[usize]) -> Result<Answer, String> {
    let mut answer = Answer {
        retry: Vec::new(),
        rejected: Vec::new(),
    };
    if all_succeeded(body) {
        return Ok(answer);
    }
    let items = serde_json::from_slice::<BulkAnswer>(body)
        .map_err(|e| format!("not a _bulk answer ({e})"))?
        .items;
    if items.len() != chunk.len() {
        return Err(format!(
            "not a _bulk answer for this request ({} items answered, {} sent)",
            items.len(),
            chunk.len()
        ));
    }
    for (&i, item) in chunk.iter().zip(&items) {
        let status = item.create.as_ref().map_or(0, |r| r.status);
        let reason = || {
            let e = item.create.as_ref().and_then(|r| r.error.as_ref());
            format!(
                "{status} {}: {}",
                e.and_then(|e| e.kind.as_deref()).unwrap_or("error"),
                e.and_then(|e| e.reason.as_deref()).unwrap_or("")
            )
        };
        match status {
            200..=299 => {}
            // create of an id that exists: an id is its record's own (route
            // and frame number, unique per frame), so the document was
            // stored by an earlier attempt — perhaps one whose answer was
            // lost, or a batch the worker resent.
            409 => {}
            429 | 500..=599 => answer.retry.push((i, reason())),
            // A write block (index.blocks.write, the flood-stage
            // read_only_allow_delete, a closed index's block): the operator
            // lifts it; held and retried, shown on /health, not refused.
            403 if item
                .create
                .as_ref()
                .and_then(|r| r.error.as_ref())
                .and_then(|e| e.kind.as_deref())
                == Some("cluster_block_exception") =>
            {
                answer.retry.push((i, reason()))
            }
            _ => answer.rejected.push((i, reason())),
        }
    }
    Ok(answer)
}

/// The NDJSON body for `chunk`: an action line and the document per item,
/// every line ending in `\n`. Always `create`: with an `_id` a resend
/// cannot duplicate, without one Elasticsearch generates it, and data
/// streams accept nothing else.
pub fn bulk_body(items: &[Item<'_>], chunk: &[usize]) -> Vec<u8> {
    bulk_body_into(items, chunk, Vec::new())
}

/// [`bulk_body`] written into `buffer` (emptied first; its allocation is
/// reused when large enough).
pub fn bulk_body_into(items: &[Item<'_>], chunk: &[usize], buffer: Vec<u8>) -> Vec<u8> {
    let size: usize = chunk
        .iter()
        .filter_map(|&i| items.get(i))
        .map(|it| it.source.len() + it.index.len() + 80)
        .sum();
    // An empty Vec<u8> is valid UTF-8.
    let mut body = String::from_utf8(super::body_buffer(buffer, size)).unwrap_or_default();
    // The action's start, written once per index (a batch's items share
    // their hour's index).
    let mut action = String::new();
    let mut action_index: Option<&str> = None;
    for &i in chunk {
        let Some(item) = items.get(i) else { continue };
        if action_index.is_none_or(|a| !std::ptr::eq(a, item.index)) {
            action.clear();
            action.push_str("{\"create\":{\"_index\":");
            write_json_str(&mut action, item.index);
            action_index = Some(item.index);
        }
        body.push_str(&action);
        if let Some(id) = &item.id {
            body.push_str(",\"_id\":\"");
            push_hex(&mut body, id);
            body.push('"');
        }
        body.push_str("}}\n");
        // The document is one line of JSON already (the encoder escapes
        // newlines inside strings).
        body.push_str(item.source);
        body.push('\n');
    }
    body.into_bytes()
}

/// Split `pending` into requests of at most `max_bytes` (a document larger
/// than the bound goes alone).
pub fn chunks(items: &[Item<'_>], pending: &[usize], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    // Usually one request takes all: sized for it, not grown by doubling.
    let mut current = Vec::with_capacity(pending.len());
    let mut bytes = 0;
    for &i in pending {
        let Some(item) = items.get(i) else { continue };
        let size = item.source.len() + item.index.len() + 80;
        if !current.is_empty() && bytes + size > max_bytes {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `v` (not negative) in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut String, v: i64, width: u32) {
    let v = v.max(0);
    let digits = v.checked_ilog10().unwrap_or(0) + 1;
    for _ in digits..width {
        out.push('0');
    }
    let _ = std::fmt::Write::write_fmt(out, format_args!("{v}"));
}

/// The index for a document at `time_nanos`: `%Y`, `%m`, `%d`, `%H` of the
/// time in UTC (`syslog-%Y.%m.%d`), `%%` a percent sign.
pub fn index_name(pattern: &str, time_nanos: i64) -> String {
    if !pattern.contains('%') {
        return pattern.to_owned();
    }
    let secs = time_nanos.div_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let h = secs.rem_euclid(86_400) / 3600;
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => push_digits(&mut out, y, 4),
            Some('m') => push_digits(&mut out, i64::from(m), 2),
            Some('d') => push_digits(&mut out, i64::from(d), 2),
            Some('H') => push_digits(&mut out, h, 2),
            Some(other) => {
                out.push('%');
                if other != '%' {
                    out.push(other);
                }
            }
            None => out.push('%'),
        }
    }
    out
}

/// A stable 128-bit id of a document's text (XXH3-128), for records that
/// carry no key of their own.
pub fn document_id(source: &str) -> String {
    hex(&document_hash(source))
}

/// [`document_id`]'s 16 bytes.
pub fn document_hash(source: &str) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(source.as_bytes()).to_le_bytes()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that yields its chunks one by one, as a socket delivers them.
    struct Chunked(std::collections::VecDeque<bytes::Bytes>);

    impl http_body::Body for Chunked {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
        }
    }

    fn answer(chunks: &[String]) -> reqwest::Response {
        let body = Chunked(
            chunks
                .iter()
                .map(|c| bytes::Bytes::from(c.clone()))
                .collect(),
        );
        reqwest::Response::from(http::Response::new(reqwest::Body::wrap(body)))
    }

    /// The items of an answer whose head says none failed are not kept;
    /// any other answer is kept whole, to be read item by item or quoted.
    #[test]
    fn bulk_url_asks_for_the_filter_and_encodes_the_pipeline() {
        assert_eq!(
            bulk_url("http://es:9200/", None),
            "http://es:9200/_bulk?filter_path=errors,error,status,items.*.status,items.*.error"
        );
        let url = bulk_url("http://es:9200", Some("logs & more#1"));
        assert!(url.ends_with("&pipeline=logs+%26+more%231"), "{url}");
        let parsed = reqwest::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("filter_path".to_owned(), BULK_FILTER_PATH.to_owned()),
                ("pipeline".to_owned(), "logs & more#1".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn answer_body_keeps_only_the_head_of_an_all_succeeded_answer() {
        let items = |errors: bool| -> Vec<String> {
            let mut c = vec![format!(r#"{{"took":3,"errors":{errors},"items":["#)];
            c.extend((0..500).map(|i| {
                format!(r#"{{"create":{{"_index":"logs","_id":"{i:0200}","status":201}}}},"#)
            }));
            c.push(r#"{"create":{"status":201}}]}"#.to_owned());
            c
        };
        let whole = |c: &[String]| c.concat().into_bytes();
        let ok = items(false);
        let cap = 1 << 20;
        let head = answer_body(answer(&ok), true, cap).await.bytes;
        assert!(
            head.len() >= ANSWER_HEAD && head.len() < 1024,
            "{}",
            head.len()
        );
        assert!(whole(&ok).starts_with(&head));
        assert!(read_items(&head, &[7]).unwrap().retry.is_empty());
        // Not a success: kept whole (its text is quoted in the error).
        assert_eq!(answer_body(answer(&ok), false, cap).await.bytes, whole(&ok));
        let failed = items(true);
        assert_eq!(
            answer_body(answer(&failed), true, cap).await.bytes,
            whole(&failed)
        );
        // Over the cap: cut there, and marked.
        let cut = answer_body(answer(&failed), true, 1000).await;
        assert_eq!(cut.bytes, whole(&failed)[..1000]);
        assert!(cut.truncated);
        assert!(short(&cut).ends_with("[answer cut at its cap]"));
    }

    /// Each item gets the index of its own hour, also when a batch goes
    /// back to an hour it left; a run of one hour shares one name.
    #[test]
    fn batch_items_take_their_hours_index() {
        let hour = 3_600_000_000_000;
        // 2026-11-24T23:00:00Z
        let t = 1_795_561_200_000_000_000;
        let batch: Vec<Record> = [t, t + 5, t + hour, t + hour + 1, t + 9]
            .into_iter()
            .map(|time_nanos| Record {
                payload: "{}".to_owned(),
                time_nanos,
                key: Some([7; 16]),
            })
            .collect();
        let names = hour_names("logs-%Y%m%d%H", &batch);
        assert_eq!(names.len(), 3, "three runs: 23h, 00h, 23h");
        let items = batch_items(&batch, &names, true);
        let indexes: Vec<&str> = items.iter().map(|i| i.index).collect();
        assert_eq!(
            indexes,
            [
                "logs-2026112423",
                "logs-2026112423",
                "logs-2026112500",
                "logs-2026112500",
                "logs-2026112423"
            ]
        );
        assert!(std::ptr::eq(items[0].index, items[1].index));
        assert!(items.iter().all(|i| i.id == Some([7; 16])));
        assert!(
            batch_items(&batch, &names, false)
                .iter()
                .all(|i| i.id.is_none())
        );
    }

    #[test]
    fn index_names_from_the_event_time_in_utc() {
        // 2026-11-24T23:30:00Z
        let t = 1_795_563_000_000_000_000;
        assert_eq!(index_name("syslog-%Y.%m.%d", t), "syslog-2026.11.24");
        assert_eq!(index_name("logs-%Y%m%d%H", t), "logs-2026112423");
        assert_eq!(index_name("fixed", t), "fixed");
        assert_eq!(index_name("a%%b", t), "a%b");
    }

    #[test]
    fn hex_of_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), want);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(document_id("{\"a\":1}"), document_id("{\"a\":1}"));
        assert_ne!(document_id("{\"a\":1}"), document_id("{\"a\":2}"));
        assert_eq!(document_id("x").len(), 32);
    }

    #[test]
    fn bulk_bodies_pair_actions_and_sources_and_end_in_a_newline() {
        let items = [
            Item {
                index: "i\"x",
                id: Some([
                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0xfe, 0x10,
                ]),
                source: "{\"m\":\"a\\nb\"}",
            },
            Item {
                index: "i",
                id: None,
                source: "{}",
            },
        ];
        let body = bulk_body(&items, &[0, 1]);
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            "{\"create\":{\"_index\":\"i\\\"x\",\"_id\":\"0123456789abcdef000000000000fe10\"}}\n{\"m\":\"a\\nb\"}\n{\"create\":{\"_index\":\"i\"}}\n{}\n"
        );
        // Into a buffer left from an earlier request: emptied, and its
        // allocation kept.
        let mut old = Vec::with_capacity(1 << 16);
        old.extend_from_slice(b"the last request's body");
        let at = old.as_ptr();
        let reused = bulk_body_into(&items, &[0, 1], old);
        assert_eq!(reused, body);
        assert_eq!(reused.as_ptr(), at);
    }

    /// What the sink relies on to take a request's body back: a `Bytes` made
    /// from a Vec, cloned for the request and dropped by it, is unique again
    /// and gives back the same allocation.
    #[test]
    fn a_sent_body_gives_its_buffer_back() {
        let mut v = Vec::with_capacity(4096);
        v.extend_from_slice(b"{\"create\":{}}\n{}\n");
        let at = v.as_ptr();
        let body = bytes::Bytes::from(v);
        let kept = body.clone();
        drop(body);
        let back: Vec<u8> = kept.try_into_mut().map(Into::into).unwrap();
        assert_eq!(back.as_ptr(), at);
        assert!(back.capacity() >= 4096);
    }

    #[test]
    fn an_answer_without_errors_is_not_read_item_by_item() {
        assert!(all_succeeded(
            br#"{"took":3,"errors":false,"items":[{"create":{"status":201}}]}"#
        ));
        assert!(all_succeeded(br#"{"errors":false,"items":[],"took":1}"#));
        for text in [
            r#"{"took":3,"errors":true,"items":[{"create":{"status":429}}]}"#,
            r#"{"took":3,"items":[{"create":{"status":429,"errors":false}}],"errors":false}"#,
            r#"{"error":{"type":"x","reason":"errors\":false \"items\""},"status":400}"#,
            r#"[{"errors":false,"items":[]}]"#,
            "",
        ] {
            assert!(!all_succeeded(text.as_bytes()), "{text}");
        }
        // errors:true is read item by item: a 429 item is retried.
        let a = read_items(
            br#"{"took":3,"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429}}]}"#,
            &[0, 1],
        )
        .unwrap();
        assert_eq!(a.retry.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
    }

    /// Issue 20, item 9: a 2xx that is not a `_bulk` answer for the request
    /// is an error (the request is retried), never items "done".
    #[test]
    fn a_2xx_that_is_not_a_bulk_answer_is_an_error() {
        for body in [
            "<html><body><h1>Welcome to nginx!</h1></body></html>",
            "",
            r#"{"acknowledged":true}"#,
            r#"{"took":1,"errors":true,"items":[{"create":{"status":201}}]}"#,
            r#"{"took":1,"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429}},{"create":{"status":201}}]}"#,
            r#"{"took":1,"errors":true,"items":[{"create":{"status":201}},{"cre"#,
        ] {
            let e = read_items(body.as_bytes(), &[4, 5]).err();
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.starts_with("not a _bulk answer")),
                "{body}: {e:?}"
            );
        }
        assert!(read_items(br#"{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#, &[4, 5]).is_ok());
    }

    #[test]
    fn items_are_sorted_into_done_retry_and_rejected() {
        let text = r#"{"took":3,"errors":true,"items":[
            {"create":{"_index":"i","_id":"a","status":201,"result":"created"}},
            {"create":{"_index":"i","_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"_index":"i","_id":"c","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [x]"}}},
            {"create":{"_index":"i","_id":"d","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"_index":"i","_id":"e","status":503,"error":{"type":"unavailable_shards_exception","reason":"no shard"}}}
        ]}"#;
        let a = read_items(text.as_bytes(), &[10, 11, 12, 13, 14]).unwrap();
        assert_eq!(
            a.retry.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [11, 14]
        );
        // 409: already stored (the id is the document's own), not an error.
        assert_eq!(a.rejected.len(), 1);
        assert_eq!(a.rejected[0].0, 12);
        assert!(a.rejected[0].1.contains("mapper_parsing_exception"));
    }

    #[test]
    fn chunks_respect_the_byte_bound() {
        let items: Vec<Item<'_>> = (0..10)
            .map(|_| Item {
                index: "i",
                id: None,
                source: "0123456789",
            })
            .collect();
        let pending: Vec<usize> = (0..10).collect();
        let c = chunks(&items, &pending, 200);
        assert!(c.iter().all(|c| c.len() * 91 <= 200 || c.len() == 1));
        assert_eq!(c.iter().map(Vec::len).sum::<usize>(), 10);
    }
}
