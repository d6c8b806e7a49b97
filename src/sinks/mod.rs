//! Sinks: where a route's records go, written in batches by one worker per
//! route.
//!
//! A sink takes a batch and answers done, "retry this batch" or "this batch
//! cannot be written" ([`SinkError`]); the worker retries with exponential
//! backoff and full jitter up to a bounded number of attempts, then counts
//! the records as failed. Every sink is async and batch-oriented, so the
//! HTTP sinks (InfluxDB, Elasticsearch) fit the same worker.

pub mod elasticsearch;
pub mod es_setup;
mod file;
mod influxdb;
mod stdout;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{SinkConfig, SinkKind};
use crate::queue::RouteQueue;
use crate::route::Record;
use crate::telemetry::SinkMetrics;

pub use elasticsearch::ElasticsearchSink;
pub use file::FileSink;
pub use influxdb::InfluxSink;
pub use stdout::StdoutSink;

/// An HTTP sink's last request-body buffer, taken back once the request
/// is done and written into by the next: a fresh multi-MiB body per
/// request page-faulted in, and freed on another thread it stayed
/// resident until the allocator purged it.
#[derive(Default)]
pub struct SpareBody(std::sync::Mutex<Vec<u8>>);

impl SpareBody {
    /// The kept buffer (empty; a new one when none is kept).
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Keep `body`'s allocation for the next request (emptied).
    pub fn keep(&self, mut body: Vec<u8>) {
        body.clear();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = body;
    }
}

/// An emptied request-body buffer of at least `size` bytes: `spare`'s
/// allocation when it is large enough, else a new one with an eighth
/// more, so that the next, slightly larger, batch fits too. Not `reserve`
/// on the emptied buffer: the allocator's realloc would copy its old,
/// stale bytes into the new block.
pub fn body_buffer(mut spare: Vec<u8>, size: usize) -> Vec<u8> {
    spare.clear();
    if spare.capacity() >= size {
        return spare;
    }
    drop(spare);
    Vec::with_capacity(size.saturating_add(size / 8))
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again (I/O error, server busy), not before
    /// `retry_after` when the server said so.
    #[error("{message} (will retry)")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help.
    #[error("{0}")]
    Permanent(String),
}

impl SinkError {
    pub fn retry(message: impl Into<String>) -> SinkError {
        SinkError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// A sink could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SinkOpenError {
    #[error("sink {sink:?}: cannot open {path}: {source}")]
    File {
        sink: String,
        path: String,
        source: std::io::Error,
    },
    #[error("sink {sink:?}: {message}")]
    Setup { sink: String, message: String },
}

pub enum Sink {
    File(FileSink),
    Stdout(StdoutSink),
    Influxdb(Box<InfluxSink>),
    Elasticsearch(Box<ElasticsearchSink>),
}

impl Sink {
    /// Open the sink; HTTP sinks time each request into `requests`.
    pub fn open(
        config: &SinkConfig,
        requests: prometheus_client::metrics::histogram::Histogram,
    ) -> Result<Sink, SinkOpenError> {
        match &config.kind {
            SinkKind::File { path } => {
                FileSink::open(path)
                    .map(Sink::File)
                    .map_err(|source| SinkOpenError::File {
                        sink: config.name.clone(),
                        path: path.display().to_string(),
                        source,
                    })
            }
            SinkKind::Stdout => Ok(Sink::Stdout(StdoutSink::new())),
            SinkKind::Influxdb(c) => InfluxSink::open(&config.name, c, requests)
                .map(|s| Sink::Influxdb(Box::new(s)))
                .map_err(|message| SinkOpenError::Setup {
                    sink: config.name.clone(),
                    message,
                }),
            SinkKind::Elasticsearch(c) => ElasticsearchSink::open(&config.name, c, requests)
                .map(|s| Sink::Elasticsearch(Box::new(s)))
                .map_err(|message| SinkOpenError::Setup {
                    sink: config.name.clone(),
                    message,
                }),
        }
    }

    /// Write a batch. `Ok(n)`: written, except `n` records the destination
    /// rejected for good (dead-lettered by the sink).
    pub async fn write(&self, batch: &[Record]) -> Result<u64, SinkError> {
        match self {
            Sink::File(s) => s.write(batch).await.map(|()| 0),
            Sink::Stdout(s) => s.write(batch).await.map(|()| 0),
            Sink::Influxdb(s) => s.write(batch).await,
            Sink::Elasticsearch(s) => s.write(batch).await,
        }
    }
}

/// An HTTP client for a sink: timeouts, and the extra CA from `ca_file`.
pub(crate) fn http_client(
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("ca_file {}: cannot read: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {}: not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("ca_file {}: no certificate in it", path.display()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A dead-letter file: what a destination refused, one JSON object per
/// line, appended.
pub(crate) struct DeadLetter {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
}

impl DeadLetter {
    /// Open (creating its directory) when a path is configured.
    pub(crate) fn open(path: Option<&std::path::Path>) -> Result<Option<DeadLetter>, String> {
        let Some(path) = path else { return Ok(None) };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open dead-letter file {}: {e}", path.display()))?;
        Ok(Some(DeadLetter {
            path: path.to_owned(),
            file: std::sync::Mutex::new(file),
        }))
    }

    /// Append entries in one write.
    pub(crate) fn write(&self, entries: &[serde_json::Value]) -> Result<(), SinkError> {
        use std::io::Write as _;
        let mut text = String::new();
        for e in entries {
            text.push_str(&e.to_string());
            text.push('\n');
        }
        let mut f = self
            .file
            .lock()
            .map_err(|_| SinkError::Permanent("dead-letter file lock poisoned".into()))?;
        f.write_all(text.as_bytes()).map_err(|e| {
            SinkError::retry(format!(
                "cannot write dead-letter file {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// Gzip a request body.
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// `Retry-After: <seconds>` of an answer.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
}

/// Join records into newline-terminated lines.
pub(crate) fn lines(batch: &[Record]) -> Vec<u8> {
    let size: usize = batch.iter().map(|r| r.payload.len() + 1).sum();
    let mut buf = Vec::with_capacity(size);
    for r in batch {
        buf.extend_from_slice(r.payload.as_bytes());
        buf.push(b'\n');
    }
    buf
}

/// How a worker retries a batch: until `max_attempts` or `max_elapsed`,
/// whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_elapsed: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_elapsed: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random wait in [0, min(max, initial·2^attempt)].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            jitter() % (nanos + 1)
        })
    }
}

/// A cheap pseudo-random number (jitter only, not security).
fn jitter() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// Drain `queue` into `sink` until the queue is closed and empty.
pub async fn run_worker(
    route: String,
    queue: Arc<RouteQueue>,
    sink: Arc<Sink>,
    config: SinkConfig,
    retry: RetryPolicy,
    metrics: SinkMetrics,
) {
    let mut batch = Vec::with_capacity(config.batch_max_events.min(65_536));
    // One retry warning per 10 s per worker; /metrics counts every retry.
    let retry_log = crate::telemetry::LogLimiter::new(10_000);
    while queue
        .pop_batch(&mut batch, config.batch_max_events, config.linger)
        .await
    {
        queue.begin_batch(batch.len());
        let mut attempt = 0;
        let started = tokio::time::Instant::now();
        loop {
            match sink.write(&batch).await {
                Ok(rejected) => {
                    metrics.up.set(1);
                    metrics.health.ok();
                    metrics.batches.inc();
                    metrics
                        .records_sent
                        .inc_by((batch.len() as u64).saturating_sub(rejected));
                    metrics.rejected_records.inc_by(rejected);
                    break;
                }
                Err(SinkError::Retryable {
                    message,
                    retry_after,
                }) if attempt + 1 < retry.max_attempts && started.elapsed() < retry.max_elapsed => {
                    metrics.retries.inc();
                    metrics.up.set(0);
                    metrics.health.failing(&message);
                    let wait = retry.backoff(attempt).max(retry_after.unwrap_or_default());
                    if let Some(suppressed) = retry_log.allow() {
                        tracing::warn!(route = %route, sink = %config.name, attempt, error = %message, ?wait, suppressed, "batch write failed, retrying");
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    metrics.up.set(0);
                    metrics.health.failing(&e.to_string());
                    metrics.failed_records.inc_by(batch.len() as u64);
                    tracing::error!(route = %route, sink = %config.name, records = batch.len(), error = %e, "batch lost: sink gave up");
                    break;
                }
            }
        }
        queue.end_batch();
        queue.recycle(&mut batch);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_buffer_reuses_a_large_enough_spare_and_replaces_a_small_one() {
        let mut spare = Vec::with_capacity(1000);
        spare.extend_from_slice(b"old");
        let at = spare.as_ptr();
        let reused = super::body_buffer(spare, 1000);
        assert!(reused.is_empty());
        assert_eq!(reused.as_ptr(), at, "a large enough spare is reused");
        let grown = super::body_buffer(reused, 8000);
        assert!(grown.is_empty());
        assert!(grown.capacity() >= 9000, "{}", grown.capacity());
    }
}
