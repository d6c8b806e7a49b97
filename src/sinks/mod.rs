//! Sinks: where a route's records go, written in batches by one worker per
//! route.
//!
//! A sink takes a batch and answers done, "retry this batch" or "this batch
//! cannot be written" ([`SinkError`]); the worker retries with exponential
//! backoff and full jitter up to a bounded number of attempts, then counts
//! the records as failed (`gave_up`) and hands them to the sink's
//! dead-letter file ([`Sink::give_up`]). A batch of which nothing was
//! stored leaves the sink `degraded`, as a failed request does. No wait is longer than the sink's
//! `max_backoff_secs`, whatever a server's `Retry-After` asks, nor reaches
//! past its retry time ([`RetryPolicy::wait`]); answers are read up to a
//! cap (`read_capped`). Every sink is async and batch-oriented, so the
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
use crate::record::Record;
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

/// What a write did: every record stored except `rejected`, which the
/// destination refused for good (dead-lettered by the sink).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    pub rejected: u64,
    /// Why (the first refusal's reason), when any record was refused.
    pub reason: Option<String>,
}

impl From<u64> for Written {
    /// `rejected` records refused without a reason to show.
    fn from(rejected: u64) -> Written {
        Written {
            rejected,
            reason: None,
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

    /// Start-up checks before the first batch: InfluxDB's database (and
    /// retention policy) exist or are created.
    pub async fn prepare(&self) -> Result<(), SinkError> {
        match self {
            Sink::Influxdb(s) => s.prepare().await,
            _ => Ok(()),
        }
    }

    /// Write a batch. `Ok(w)`: written, except `w.rejected` records the
    /// destination rejected for good (dead-lettered by the sink). A sink
    /// that retries part of a batch itself (Elasticsearch items) reports
    /// each retry to `metrics`, as the worker does for a whole batch.
    pub async fn write(
        &self,
        batch: &[Record],
        metrics: &SinkMetrics,
    ) -> Result<Written, SinkError> {
        match self {
            Sink::File(s) => s.write(batch).await.map(|()| Written::default()),
            Sink::Stdout(s) => s.write(batch).await.map(|()| Written::default()),
            Sink::Influxdb(s) => s.write(batch).await,
            Sink::Elasticsearch(s) => s.write(batch, metrics).await,
        }
    }

    /// The worker gave up on `batch`: a sink with a dead-letter file
    /// (InfluxDB, Elasticsearch) writes every record to it with `reason`.
    /// `Ok(false)`: this sink has none, the records are gone.
    pub fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        match self {
            Sink::File(_) | Sink::Stdout(_) => Ok(false),
            Sink::Influxdb(s) => s.give_up(batch, reason),
            Sink::Elasticsearch(s) => s.give_up(batch, reason),
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

/// At most this much of an answer that is only quoted in an error (a
/// non-2xx body) is kept.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// An answer's body, kept up to a cap: what came beyond it is not kept,
/// and [`CappedBody::text`] says so.
#[derive(Debug, Default)]
pub(crate) struct CappedBody {
    pub bytes: Vec<u8>,
    cap: usize,
    /// More arrived than the cap (it was discarded).
    pub truncated: bool,
}

impl CappedBody {
    pub(crate) fn new(cap: usize) -> CappedBody {
        CappedBody {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    /// Keep what of `chunk` fits; false once the cap is reached and
    /// something was left out.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.cap.saturating_sub(self.bytes.len());
        let take = chunk.len().min(room);
        self.bytes
            .extend_from_slice(chunk.get(..take).unwrap_or_default());
        if take < chunk.len() {
            self.truncated = true;
        }
        !self.truncated
    }

    /// The body as text (lossy), noting a truncation.
    pub(crate) fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            text.push_str(&format!(" [answer cut at {} bytes]", self.cap));
        }
        text
    }
}

/// Read `response`'s body, keeping at most `cap` bytes. Reading stops at
/// the cap (the rest is discarded with the connection), so a server that
/// answers without end costs `cap` bytes, not memory without bound; a
/// body cut short by an error is what arrived before it.
pub(crate) async fn read_capped(mut response: reqwest::Response, cap: usize) -> CappedBody {
    let mut body = CappedBody::new(cap);
    while let Ok(Some(chunk)) = response.chunk().await {
        if !body.push(&chunk) {
            break;
        }
    }
    body
}

/// A request that got no answer, with its causes ("operation timed out",
/// "Connection refused"): reqwest's own text says only "error sending
/// request", which told `/health` nothing. Without the URL (with its
/// query): the caller names the node.
pub(crate) fn transport_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    // Bounded: a cause chain is a few errors deep; the text is cut anyway
    // where it is shown (/health keeps 512 characters).
    for _ in 0..8 {
        let Some(cause) = source else { break };
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` of an answer (see [`parse_retry_after`]).
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// A `Retry-After` value read at `now` (RFC 9110 10.2.3): delay-seconds
/// (digits only; more than `u64` holds is a very long wait, not none), or
/// an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms):
/// the wait until then, none when it is past. Anything else (a sign, a
/// fraction, garbage) is not read: the normal backoff applies. The caller
/// caps the wait ([`RetryPolicy::wait`]).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value)
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|_| {
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
                .map(|d| d.and_utc())
                .ok_or(())
        })
        .ok()?;
    let then = std::time::SystemTime::from(date);
    Some(then.duration_since(now).unwrap_or(Duration::ZERO))
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
    /// Where the exponential backoff stops growing.
    pub max_backoff: Duration,
    /// The longest wait between two tries, whatever asked for more: the
    /// sink's `max_backoff_secs`. A server's `Retry-After` is honoured up
    /// to it.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_elapsed: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_wait: Duration::from_secs(crate::config::DEFAULT_MAX_BACKOFF_SECS),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before try `attempt + 1`, `elapsed` into the
    /// retries: the backoff, or longer when the server asked
    /// (`retry_after`), but never more than `max_wait` nor past the end of
    /// the retry time (`max_elapsed`: the last try is made when it ends,
    /// not after a wait beyond it).
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>, elapsed: Duration) -> Duration {
        self.backoff(attempt)
            .max(retry_after.unwrap_or_default())
            .min(self.max_wait)
            .min(self.max_elapsed.saturating_sub(elapsed))
    }

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
    let retry_log = crate::log_limit::LogLimiter::new(10_000);
    // Start-up checks (the InfluxDB database): tried now, not at the first
    // write, so /health says why while they fail. Retried while idle; a
    // batch that arrives meanwhile goes to the write path, which retries
    // them itself.
    let mut have_batch = false;
    let mut attempt = 0;
    loop {
        let wait = match sink.prepare().await {
            Ok(()) => break,
            Err(e) => {
                let (message, retry_after) = match e {
                    SinkError::Retryable {
                        message,
                        retry_after,
                    } => (message, retry_after),
                    SinkError::Permanent(message) => (message, None),
                };
                metrics.up.set(0);
                metrics.health.failing(&message);
                if let Some(suppressed) = retry_log.allow() {
                    tracing::warn!(route = %route, sink = %config.name, error = %message, suppressed, "sink not ready at start-up, retrying");
                }
                let wait = retry.backoff(attempt).max(retry_after.unwrap_or_default());
                attempt = attempt.saturating_add(1);
                wait.max(Duration::from_millis(100))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            more = queue.pop_batch(&mut batch, config.batch_max_events, config.linger) => {
                if !more {
                    return;
                }
                have_batch = true;
                break;
            }
        }
    }
    loop {
        if !have_batch
            && !queue
                .pop_batch(&mut batch, config.batch_max_events, config.linger)
                .await
        {
            break;
        }
        have_batch = false;
        queue.begin_batch(batch.len());
        let mut attempt = 0;
        let started = tokio::time::Instant::now();
        loop {
            match sink.write(&batch, &metrics).await {
                Ok(written) => {
                    metrics.batches.inc();
                    let stored = (batch.len() as u64).saturating_sub(written.rejected);
                    metrics.records_sent.inc_by(stored);
                    metrics.rejected_records.inc_by(written.rejected);
                    if stored == 0 && !batch.is_empty() {
                        // Answered, but nothing got through: not "up".
                        metrics.up.set(0);
                        metrics.health.failing(&format!(
                            "every record of the last batch was rejected: {}",
                            written.reason.as_deref().unwrap_or("no reason given")
                        ));
                    } else {
                        metrics.up.set(1);
                        metrics.health.ok();
                    }
                    break;
                }
                Err(SinkError::Retryable {
                    message,
                    retry_after,
                }) if attempt + 1 < retry.max_attempts && started.elapsed() < retry.max_elapsed => {
                    metrics.retrying(&message);
                    let wait = retry.wait(attempt, retry_after, started.elapsed());
                    if let Some(suppressed) = retry_log.allow() {
                        tracing::warn!(route = %route, sink = %config.name, attempt, error = %message, ?wait, suppressed, "batch write failed, retrying");
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    let message = match e {
                        SinkError::Retryable { message, .. } | SinkError::Permanent(message) => {
                            message
                        }
                    };
                    let reason = format!(
                        "gave up after {} attempt(s) in {:.1} s: {message}",
                        attempt + 1,
                        started.elapsed().as_secs_f64()
                    );
                    metrics.up.set(0);
                    metrics.health.failing(&reason);
                    metrics.failed_records.inc_by(batch.len() as u64);
                    match sink.give_up(&batch, &reason) {
                        Ok(true) => {
                            tracing::error!(route = %route, sink = %config.name, records = batch.len(), error = %reason, "sink gave up on a batch: its records are in the dead-letter file");
                        }
                        Ok(false) => {
                            tracing::error!(route = %route, sink = %config.name, records = batch.len(), error = %reason, "sink gave up on a batch: its records are lost (this sink has no dead-letter file)");
                        }
                        Err(dead) => {
                            tracing::error!(route = %route, sink = %config.name, records = batch.len(), error = %reason, dead_letter_error = %dead, "sink gave up on a batch and could not write it to the dead-letter file: its records are lost");
                        }
                    }
                    break;
                }
            }
        }
        queue.end_batch().await;
        queue.recycle(&mut batch);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RetryPolicy;

    /// Issue 20, item 10: canned `Retry-After` values against
    /// `max_backoff_secs` (`max_wait`) and the retry time.
    #[test]
    fn waits_honour_retry_after_up_to_max_wait_and_the_retry_time() {
        let secs = Duration::from_secs;
        let policy = RetryPolicy {
            max_attempts: 1000,
            max_elapsed: secs(600),
            initial_backoff: Duration::from_millis(200),
            max_backoff: secs(5),
            max_wait: secs(30),
        };
        let early = secs(1);
        // Honoured when within the cap (never shorter than asked).
        assert_eq!(policy.wait(0, Some(secs(7)), early), secs(7));
        // Capped: an hour, a hundred seconds, u64::MAX seconds.
        for asked in [3600, 100, 31, u64::MAX] {
            assert_eq!(
                policy.wait(0, Some(secs(asked)), early),
                secs(30),
                "{asked}"
            );
        }
        // Without Retry-After: the backoff, at most max_backoff.
        for attempt in [0, 3, 20, u32::MAX] {
            let w = policy.wait(attempt, None, early);
            assert!(w <= secs(5), "{attempt}: {w:?}");
        }
        // The retry time left caps it too: 100 s asked with 30 s of
        // max_retry_secs, 10 s in, waits 20 s; at the end, not at all.
        let short = RetryPolicy {
            max_elapsed: secs(30),
            max_wait: secs(60),
            ..policy
        };
        assert_eq!(short.wait(0, Some(secs(100)), secs(10)), secs(20));
        assert_eq!(short.wait(0, Some(secs(100)), secs(30)), Duration::ZERO);
        assert_eq!(short.wait(0, Some(secs(100)), secs(45)), Duration::ZERO);
        // A max_wait below max_backoff caps the backoff as well.
        let tight = RetryPolicy {
            max_wait: Duration::from_millis(50),
            ..policy
        };
        for attempt in 0..20 {
            assert!(tight.wait(attempt, None, early) <= Duration::from_millis(50));
        }
    }

    /// Follow-up item 9: canned `Retry-After` values. An over-long number
    /// is "very long" (the wait caps it at `max_backoff_secs`), an
    /// HTTP-date gives the wait until then, garbage and negatives nothing
    /// (the normal backoff).
    #[test]
    fn retry_after_reads_long_numbers_and_http_dates() {
        use super::parse_retry_after;
        let secs = Duration::from_secs;
        // 2026-12-06T20:00:00Z.
        let now = std::time::UNIX_EPOCH + secs(1_796_587_200);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(secs(0)));
        for huge in [
            "99999999999999999999",
            "18446744073709551616",
            "123456789012345678901234567890",
        ] {
            let wait = parse_retry_after(huge, now).unwrap_or_else(|| panic!("{huge} ignored"));
            assert!(wait >= secs(u64::MAX), "{huge}: {wait:?}");
            // Capped like any long wait.
            let policy = super::RetryPolicy {
                max_wait: secs(30),
                ..super::RetryPolicy::default()
            };
            assert_eq!(policy.wait(0, Some(wait), secs(1)), secs(30), "{huge}");
        }
        // IMF-fixdate, RFC 850 and asctime, 90 s after `now`.
        for date in [
            "Sun, 06 Dec 2026 20:01:30 GMT",
            "Sunday, 06-Dec-26 20:01:30 GMT",
            "Sun Dec  6 20:01:30 2026",
        ] {
            assert_eq!(parse_retry_after(date, now), Some(secs(90)), "{date}");
        }
        // An hour ahead: read as an hour (the policy caps it).
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 21:00:00 GMT", now),
            Some(secs(3600))
        );
        // A date already past: no wait asked for.
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 19:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for garbage in [
            "",
            "-5",
            "-99999999999999999999",
            "1.5",
            "soon",
            "12abc",
            "+7",
        ] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    /// The bounded read of an answer keeps the cap's worth, says it cut,
    /// and stops reading: a body twice the cap in many chunks.
    #[tokio::test]
    async fn answer_bodies_are_read_up_to_the_cap() {
        let chunks: Vec<Vec<u8>> = (0..64).map(|i| vec![b'a' + (i % 26) as u8; 1024]).collect();
        let whole: Vec<u8> = chunks.concat();
        let read = |cap: usize| {
            let body = Chunked(
                chunks
                    .iter()
                    .map(|c| bytes::Bytes::from(c.clone()))
                    .collect(),
            );
            let response = reqwest::Response::from(http::Response::new(reqwest::Body::wrap(body)));
            super::read_capped(response, cap)
        };
        let cut = read(32 * 1024 + 100).await;
        assert_eq!(cut.bytes.len(), 32 * 1024 + 100);
        assert_eq!(cut.bytes[..], whole[..32 * 1024 + 100]);
        assert!(cut.truncated);
        let text = cut.text();
        assert!(
            text.ends_with(" [answer cut at 32868 bytes]"),
            "{}",
            &text[text.len() - 40..]
        );
        // Exactly the cap, and under it: whole, not marked.
        for cap in [whole.len(), whole.len() + 1] {
            let all = read(cap).await;
            assert_eq!(all.bytes, whole);
            assert!(!all.truncated);
            assert!(!all.text().contains("answer cut"));
        }
    }

    /// A transport error names its cause and leaves out the URL's query.
    #[tokio::test]
    async fn transport_errors_say_why_without_the_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://127.0.0.1:{port}/write?db=secret_db"))
            .send()
            .await
            .unwrap_err();
        let text = super::transport_error(e);
        assert!(text.contains("refused"), "{text}");
        assert!(!text.contains("secret_db"), "{text}");
    }

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
