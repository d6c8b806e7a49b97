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

pub(crate) mod elasticsearch;

mod error;
mod file;
mod http;
mod influxdb;
mod kafka;
mod retry;
mod stdout;

use std::future::Future;

use crate::config::{SinkConfig, SinkKind};
use crate::record::Record;
use crate::telemetry::SinkMetrics;

pub(crate) use elasticsearch::ElasticsearchSink;
pub(crate) use error::{Cause, OpenError, SinkError};
pub(crate) use file::FileSink;
pub(crate) use http::{
    CappedBody, MAX_ERROR_BODY_BYTES, body_buffer, read_capped, transport_error,
};
pub(crate) use influxdb::InfluxSink;
pub(crate) use kafka::KafkaSink;
pub(crate) use retry::RetryPolicy;
pub(crate) use retry::retry_after;
pub(crate) use stdout::StdoutSink;

/// What a write did: every record stored except `rejected`, which the
/// destination refused for good (dead-lettered by the sink).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Written {
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
pub(crate) enum SinkOpenError {
    #[error("sink {sink:?}: cannot open {path}: {source}")]
    File {
        sink: String,
        path: String,
        source: std::io::Error,
    },
    #[error("sink {sink:?}: {source}")]
    Setup { sink: String, source: OpenError },
}

pub(crate) enum Sink {
    File(FileSink),
    Stdout(StdoutSink),
    Influxdb(Box<InfluxSink>),
    Elasticsearch(Box<ElasticsearchSink>),
    Kafka(Box<KafkaSink>),
}

impl Sink {
    /// Open the sink; HTTP sinks time each request into `requests`
    /// (the Kafka sink each produce round).
    pub(crate) fn open(
        config: &SinkConfig,
        telemetry: &crate::telemetry::Telemetry,
    ) -> Result<Sink, SinkOpenError> {
        let requests = telemetry.sink_requests(&config.name);
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
                .map_err(|source| SinkOpenError::Setup {
                    sink: config.name.clone(),
                    source,
                }),
            SinkKind::Elasticsearch(c) => {
                ElasticsearchSink::open(&config.name, c, config.retry, requests)
                    .map(|s| Sink::Elasticsearch(Box::new(s)))
                    .map_err(|source| SinkOpenError::Setup {
                        sink: config.name.clone(),
                        source,
                    })
            }
            SinkKind::Kafka(c) => KafkaSink::open(
                &config.name,
                c,
                config.batch_max_events,
                config.retry,
                requests,
                telemetry.kafka(&config.name),
                telemetry.sink_degraded(&config.name),
            )
            .map(|s| Sink::Kafka(Box::new(s)))
            .map_err(|source| SinkOpenError::Setup {
                sink: config.name.clone(),
                source,
            }),
        }
    }

    /// Start-up checks before the first batch: InfluxDB's database (and
    /// retention policy) exist or are created; Elasticsearch's engine,
    /// template and data stream (`elasticsearch::setup`).
    pub(crate) async fn prepare(&self) -> Result<(), SinkError> {
        match self {
            Sink::Influxdb(s) => s.prepare().await,
            Sink::Elasticsearch(s) => s.prepare().await,
            Sink::Kafka(s) => s.prepare().await,
            _ => Ok(()),
        }
    }

    /// Write a batch. `Ok(w)`: written, except `w.rejected` records the
    /// destination rejected for good (dead-lettered by the sink). A sink
    /// that retries part of a batch itself (Elasticsearch items) reports
    /// each retry to `metrics`, as the worker does for a whole batch.
    pub(crate) async fn write(
        &self,
        batch: &[Record],
        metrics: &SinkMetrics,
    ) -> Result<Written, SinkError> {
        match self {
            Sink::File(s) => s.write(batch).await.map(|()| Written::default()),
            Sink::Stdout(s) => s.write(batch).await.map(|()| Written::default()),
            Sink::Influxdb(s) => s.write(batch).await,
            Sink::Elasticsearch(s) => s.write(batch, metrics).await,
            Sink::Kafka(s) => s.write(batch, metrics).await,
        }
    }

    /// The worker gave up on `batch`: a sink with a dead-letter file
    /// (InfluxDB, Elasticsearch) writes every record to it with `reason`.
    /// `Ok(false)`: this sink has none, the records are gone.
    pub(crate) fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        match self {
            Sink::File(_) | Sink::Stdout(_) => Ok(false),
            Sink::Influxdb(s) => s.give_up(batch, reason),
            Sink::Elasticsearch(s) => s.give_up(batch, reason),
            Sink::Kafka(s) => s.give_up(batch, reason),
        }
    }
}

/// A sink as the delivery worker (`queue::deliver`) drives it:
/// start-up checks, a batch written, a batch given up on. Defined here so
/// that the queue room depends on the sinks and never the other way round.
pub(crate) trait Deliver: Send + Sync {
    /// Start-up checks before the first batch.
    fn prepare(&self) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Write a batch (see [`Sink::write`]).
    fn write(
        &self,
        batch: &[Record],
        metrics: &SinkMetrics,
    ) -> impl Future<Output = Result<Written, SinkError>> + Send;
    /// The retries are spent (see [`Sink::give_up`]).
    fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError>;
}

impl Deliver for Sink {
    fn prepare(&self) -> impl Future<Output = Result<(), SinkError>> + Send {
        Sink::prepare(self)
    }

    fn write(
        &self,
        batch: &[Record],
        metrics: &SinkMetrics,
    ) -> impl Future<Output = Result<Written, SinkError>> + Send {
        Sink::write(self, batch, metrics)
    }

    fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        Sink::give_up(self, batch, reason)
    }
}

/// A dead-letter file: what a destination refused, one JSON object per
/// line, appended.
pub(crate) struct DeadLetter {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
}

impl DeadLetter {
    /// Open (creating its directory) when a path is configured.
    pub(crate) fn open(path: Option<&std::path::Path>) -> Result<Option<DeadLetter>, OpenError> {
        let Some(path) = path else { return Ok(None) };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::DeadLetterDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| OpenError::DeadLetterFile {
                path: path.to_owned(),
                source,
            })?;
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
            .map_err(|_| SinkError::Permanent(Cause::Poisoned))?;
        f.write_all(text.as_bytes()).map_err(|source| {
            SinkError::retry(Cause::Io {
                what: format!("cannot write dead-letter file {}", self.path.display()),
                source,
            })
        })
    }
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
