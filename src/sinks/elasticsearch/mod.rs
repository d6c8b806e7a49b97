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

use std::time::Duration;

use tokio::time::Instant;

pub(crate) mod bulk;
pub(crate) mod setup;

use crate::config::ElasticsearchConfig;
use crate::record::Record;

use super::http::{Failover, Nodes, Sent, Transport};
use super::retry::{Outcome, classify};
use super::{Cause, DeadLetter, OpenError, RetryPolicy, SinkError, Written, retry_after};
use bulk::*;
pub(crate) use bulk::{Item, bulk_body_into, chunks};

/// How long a node that failed is skipped.
const NODE_COOL_DOWN: Duration = Duration::from_secs(30);

pub(crate) struct ElasticsearchSink {
    name: String,
    /// Rejections are logged at most every 10 s (counted always).
    reject_log: crate::log_limit::LogLimiter,
    /// Item retries likewise.
    retry_log: crate::log_limit::LogLimiter,
    config: ElasticsearchConfig,
    /// Client, signing, gzip, request timing, body buffer.
    http: Transport,
    /// Round-robin over the nodes, each skipped for a while after a
    /// failure.
    nodes: Nodes,
    dead_letter: Option<DeadLetter>,
    retry: RetryPolicy,
    /// Request bound learnt from 413 answers (see `max_request_bytes`).
    max_request_bytes: std::sync::atomic::AtomicUsize,
    /// The engine, detected (and the template installed) before the first
    /// write: `setup`.
    setup: tokio::sync::OnceCell<Option<setup::Engine>>,
    /// Setup is refused until an operator acts (logged once).
    held: std::sync::atomic::AtomicBool,
    /// Setup's warnings given once, not at every attempt while held.
    said: setup::Said,
    /// The framing of records the encoder wrote for this sink (see
    /// [`crate::record::Payload`]).
    framing: u64,
    /// The last batch's item list, emptied, for the next batch (see
    /// [`ElasticsearchSink::keep_items`]).
    spare_items: std::sync::Mutex<Vec<Item<'static>>>,
}

/// What became of the items of one request.
struct Answer {
    /// Items to send again (429, 5xx), with the last reason.
    retry: Vec<(usize, String)>,
    /// Items Elasticsearch refused for good, with its reason.
    rejected: Vec<(usize, String)>,
}

impl ElasticsearchSink {
    pub(crate) fn open(
        name: &str,
        config: &ElasticsearchConfig,
        retry: RetryPolicy,
        requests: prometheus_client::metrics::histogram::Histogram,
    ) -> Result<ElasticsearchSink, OpenError> {
        let header = config.api_key.as_ref().map(|v| format!("ApiKey {v}"));
        let http = Transport::new(&config.http, requests, header)?;
        let dead_letter = DeadLetter::open(config.http.dead_letter.as_deref())?;
        Ok(ElasticsearchSink {
            reject_log: crate::log_limit::LogLimiter::new(10_000),
            retry_log: crate::log_limit::LogLimiter::new(10_000),
            name: name.to_owned(),
            config: config.clone(),
            http,
            nodes: Nodes::new(
                config.http.urls.len(),
                Failover::RoundRobin {
                    cool_down: NODE_COOL_DOWN,
                },
            ),
            dead_letter,
            retry,
            max_request_bytes: std::sync::atomic::AtomicUsize::new(usize::MAX),
            setup: tokio::sync::OnceCell::new(),
            held: std::sync::atomic::AtomicBool::new(false),
            said: setup::Said::default(),
            framing: crate::config::BulkRoute::of(config).framing(),
            spare_items: std::sync::Mutex::default(),
        })
    }

    /// The next node to use (round-robin, skipping nodes in cool-down unless
    /// all are): its index and URL (none only if `urls` is empty, which
    /// validation refuses).
    fn node(&self) -> (usize, Option<&reqwest::Url>) {
        let pick = self.nodes.pick();
        (pick, self.config.http.urls.get(pick))
    }

    fn node_failed(&self, i: usize) {
        self.nodes.failed(i);
    }

    /// Write a batch. `Ok(w)`: every document stored except `w.rejected`,
    /// which are in the dead-letter file (`w.reason`: why the first was). Items sent again (answered 429 or 5xx, or
    /// in a request that failed after others got through) are retried
    /// here, each round reported to `metrics` (`sluice_sink_retries_total`,
    /// `sluice_sink_up` 0, `/health`) as the worker reports a whole batch.
    pub(crate) async fn write(
        &self,
        batch: &[Record],
        metrics: &crate::telemetry::SinkMetrics,
    ) -> Result<Written, SinkError> {
        if self.setup.get().is_none() {
            self.set_up().await?;
        }
        let names = hour_names(&self.config.index, batch);
        let spare = std::mem::take(&mut *self.items_lock());
        let items = batch_items_into(batch, &names, self.config.document_ids, self.framing, spare);
        let written = self.write_items(&items, metrics).await;
        self.keep_items(items);
        written
    }

    fn items_lock(&self) -> std::sync::MutexGuard<'_, Vec<Item<'static>>> {
        self.spare_items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep a batch's item list (emptied) for the next batch: a list of
    /// `batch_max_events` items is hundreds of KiB, which allocated per
    /// batch was page-faulted in again at every request. A list grown past
    /// [`MAX_KEPT_ITEMS`] goes.
    fn keep_items(&self, items: Vec<Item<'_>>) {
        if items.capacity() <= MAX_KEPT_ITEMS {
            *self.items_lock() = recycle_items(items);
        }
    }

    /// [`ElasticsearchSink::write`] of a batch's `items`.
    async fn write_items(
        &self,
        items: &[Item<'_>],
        metrics: &crate::telemetry::SinkMetrics,
    ) -> Result<Written, SinkError> {
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut progressed = false;
        while !pending.is_empty() {
            let mut retry: Vec<(usize, String)> = Vec::new();
            let mut whole_failure: Option<SinkError> = None;
            let max_bytes = self
                .config
                .http
                .batch_max_bytes
                .min(self.max_request_bytes());
            // Last first: popped in order; a chunk the node found too large
            // comes back as two halves.
            let mut todo = chunks(items, &pending, max_bytes);
            todo.reverse();
            while let Some(chunk) = todo.pop() {
                match self.request(items, &chunk).await {
                    Ok(answer) => {
                        // Progress: some item stored or settled. Items all
                        // answered "retry" (429, 5xx, a write block) are a
                        // failure the worker shows on /health.
                        if answer.retry.len() < chunk.len() {
                            progressed = true;
                        } else if let Some((_, why)) = answer.retry.first() {
                            whole_failure = Some(SinkError::retry(Cause::Item(why.clone())));
                        }
                        retry.extend(answer.retry);
                        rejected.extend(answer.rejected);
                    }
                    Err(SinkError::Retryable {
                        cause: too_large @ Cause::TooLarge { .. },
                        ..
                    }) => {
                        let reason = too_large.to_string();
                        match self.split_too_large(items, chunk) {
                            Ok(halves) => todo.extend(halves),
                            Err(alone) => {
                                progressed = true;
                                rejected.extend(alone.into_iter().map(|i| (i, reason.clone())));
                            }
                        }
                    }
                    Err(e) => {
                        let reason = e.cause().to_string();
                        retry.extend(chunk.iter().map(|&i| (i, reason.clone())));
                        whole_failure = Some(e);
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
                return Err(
                    whole_failure.unwrap_or_else(|| SinkError::retry(Cause::Item(String::new())))
                );
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
                Some(e) => e.cause().to_string(),
                None => format!(
                    "{} items to retry: {}",
                    retry.len(),
                    retry.first().map_or("", |(_, why)| why.as_str())
                ),
            };
            metrics.retrying(&why);
            let wait = self.retry.wait(
                attempt - 1,
                whole_failure.and_then(|e| e.after()),
                started.elapsed(),
            );
            if let Some(suppressed) = self.retry_log.allow() {
                tracing::warn!(sink = %self.name, items = pending.len(), attempt, ?wait, suppressed, "Elasticsearch: retrying items");
            }
            tokio::time::sleep(wait).await;
        }
        self.dead_letter(items, &rejected)?;
        Ok(Written {
            rejected: rejected.len() as u64,
            reason: rejected.first().map(|(_, why)| why.clone()),
        })
    }

    /// Start-up: set up now (not at the first batch), so that `/health`
    /// says why while setup fails, before any record arrives.
    pub(crate) async fn prepare(&self) -> Result<(), SinkError> {
        if self.setup.get().is_some() {
            return Ok(());
        }
        self.set_up().await
    }

    /// Detect the engine and install the template (`setup::run`), once it
    /// succeeds. A setup only an operator can fix (the data stream's name
    /// held by a plain index, no data streams) holds the batch: logged at
    /// ERROR once, re-checked at each retry, so the records flow once it is
    /// fixed.
    async fn set_up(&self) -> Result<(), SinkError> {
        use std::sync::atomic::Ordering::Relaxed;
        let base = self.node().1.map_or("", crate::config::url_text);
        let run = self
            .setup
            .get_or_try_init(|| {
                setup::run(
                    &self.name,
                    &self.config,
                    &self.http.client,
                    base,
                    &self.said,
                )
            })
            .await;
        match run {
            Ok(_) => {
                if self.held.swap(false, Relaxed) {
                    tracing::info!(sink = %self.name, "Elasticsearch sink: set up now; held records are written");
                }
                Ok(())
            }
            Err(e) if e.needs_operator() => {
                if !self.held.swap(true, Relaxed) {
                    tracing::error!(sink = %self.name, error = %e, "Elasticsearch sink: records held until an operator acts");
                }
                Err(SinkError::Held(e.into()))
            }
            Err(e) => Err(SinkError::retry(e)),
        }
    }

    /// The worker gave up on `batch` (its retry time or attempts ran
    /// out): every document goes to the dead-letter file with `reason`.
    /// `Ok(false)`: the sink has no dead-letter file.
    pub(crate) fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        let Some(file) = &self.dead_letter else {
            return Ok(false);
        };
        let names = hour_names(&self.config.index, batch);
        let items = batch_items(batch, &names, self.config.document_ids, self.framing);
        let all: Vec<(usize, String)> = (0..items.len()).map(|i| (i, reason.to_owned())).collect();
        file.write(&self.entries(&items, &all))?;
        Ok(true)
    }

    /// One `_bulk` request for `chunk`. `Err` = the whole request failed
    /// (always retryable: with the node's Retry-After).
    async fn request(&self, items: &[Item<'_>], chunk: &[usize]) -> Result<Answer, SinkError> {
        let body = match bulk_runs(items, chunk) {
            Some(runs) => super::http::RequestBody::Runs(runs),
            None => bulk_body_into(items, chunk, self.http.spare.take()).into(),
        };
        let (node, Some(base_url)) = self.node() else {
            return Err(SinkError::retry(Cause::NoUrl));
        };
        let url = bulk_url(base_url, self.config.pipeline.as_deref());
        let base = crate::config::url_text(base_url).to_owned();
        let Sent { response, kept } = self
            .http
            .post(url, "application/x-ndjson", body, base.clone(), || {
                self.node_failed(node)
            })
            .await?;
        let status = response.status().as_u16();
        let outcome = classify(status, response.headers(), std::time::SystemTime::now());
        let retry_after = retry_after(&response);
        // Bytes, not text: the answer is parsed as it is (JSON is UTF-8);
        // only an error's excerpt is decoded.
        let success = outcome == Outcome::Done;
        let answer = answer_body(response, success, answer_cap(success, chunk.len())).await;
        self.http.give_back(kept);
        match outcome {
            Outcome::Done => {}
            Outcome::TooLarge => {
                // http.max_content_length: not the node's fault, no cool-down.
                return Err(SinkError::retry(Cause::TooLarge {
                    at: base,
                    says: short(&answer),
                }));
            }
            // Busy or failing (429, and any status from 500 up): the next
            // node.
            Outcome::Retryable { .. } | Outcome::Unexpected if status == 429 || status >= 500 => {
                self.node_failed(node);
                return Err(SinkError::Retryable {
                    cause: Cause::Status {
                        at: base,
                        status,
                        says: short(&answer),
                    },
                    after: retry_after,
                });
            }
            _ => {
                // The request itself was refused (auth, malformed): every item
                // is held for retry; the reason shows in logs and /health.
                return Err(SinkError::Retryable {
                    cause: Cause::Status {
                        at: base,
                        status,
                        says: short(&answer),
                    },
                    after: Some(Duration::from_secs(10)),
                });
            }
        }
        // A 2xx that is not a _bulk answer (a proxy's page, a cut answer)
        // says nothing of the items: the request failed, and is retried.
        read_items(&answer.bytes, chunk).map_err(|problem| {
            self.node_failed(node);
            SinkError::Retryable {
                cause: Cause::Garbled {
                    at: base,
                    status,
                    problem,
                    says: short(&answer),
                },
                after: retry_after,
            }
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
            tracing::warn!(sink = %self.name, rejected = rejected.len(), suppressed, dead_letter = %self.config.http.dead_letter.as_deref().map_or_else(|| "none".into(), std::path::Path::to_string_lossy), "Elasticsearch refused documents (reasons and documents in the dead-letter file)");
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

#[cfg(test)]
mod tests;
