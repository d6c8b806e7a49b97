//! The Kafka sink (issue #24): a batch is produced record by record
//! through librdkafka (`rdkafka`), and the write returns only when every
//! record's delivery report is in. A record counts as written only when
//! its report says the broker has it (with `acks = "all"`, every in-sync
//! replica): the queue (or spill log) lets go of a batch only then.
//!
//! Per record, a report is one of:
//! - delivered;
//! - refused for good (the record is larger than the broker takes, the
//!   topic is not authorised or invalid): dead-lettered and counted as
//!   rejected, with the reason;
//! - anything else (broker unreachable, leader moving, timed out in
//!   librdkafka's queue): produced again, only the records that failed,
//!   with the sink's backoff, until delivered (or the sink's
//!   `max_retries` / `max_retry_secs`, unlimited by default, are spent:
//!   then dead-lettered). An unreachable broker therefore holds the
//!   batch, the route's queue fills, and its `when_full` decides: a
//!   `block` or durable route loses nothing.
//!
//! While idle the sink still watches its brokers: librdkafka keeps a
//! connection to each (`enable.sparse.connections` off) and its
//! statistics, every 5 s, say whether any is up; none up (or an
//! all-brokers-down error) makes the sink's `/health` entries degraded
//! with `kafka: no broker reachable …` until one is up again.
//!
//! Bounded: librdkafka's queue holds at most one batch's records (and
//! `queue.buffering.max.kbytes`), a record waits at most
//! `message_timeout_secs` in it before its report says it timed out.

mod produce;

use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;

use super::{DeadLetter, OpenError, SinkError, Written};
use crate::config::{KafkaAcks, KafkaConfig, kafka_security_settings};
use crate::record::Record;
use crate::telemetry::{Degraded, KafkaMetrics, SinkMetrics};

/// How often librdkafka reports its brokers' states (see [`Watch`]).
const STATISTICS_INTERVAL_MS: &str = "5000";

/// A Kafka sink: one producer, shared by the routes writing to it.
pub(crate) struct KafkaSink {
    name: String,
    producer: FutureProducer<Watch>,
    dead_letter: Option<DeadLetter>,
    /// One produce round: first send to last delivery report.
    latency: Histogram,
    metrics: KafkaMetrics,
    retry: super::RetryPolicy,
    brokers: String,
}

impl KafkaSink {
    pub(crate) fn open(
        name: &str,
        config: &KafkaConfig,
        batch_max_events: usize,
        retry: super::RetryPolicy,
        latency: Histogram,
        metrics: KafkaMetrics,
        degraded: Degraded,
    ) -> Result<KafkaSink, OpenError> {
        let watch = Watch {
            degraded,
            name: name.to_owned(),
        };
        let producer = client_config(config, batch_max_events)
            .create_with_context(watch)
            .map_err(|e| OpenError::Kafka(e.to_string()))?;
        Ok(KafkaSink {
            name: name.to_owned(),
            producer,
            dead_letter: DeadLetter::open(config.dead_letter.as_deref())?,
            latency,
            metrics,
            retry,
            brokers: config.brokers.join(","),
        })
    }

    /// Start-up: the brokers answer a metadata request (so /health says
    /// why while they do not).
    pub(crate) async fn prepare(&self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let timeout = Duration::from_secs(5);
        let answer = tokio::task::spawn_blocking(move || {
            rdkafka::producer::Producer::client(&producer)
                .fetch_metadata(None, timeout)
                .map(|_| ())
        })
        .await
        .map_err(|e| SinkError::retry(super::Cause::Task(e)))?;
        answer.map_err(|e| {
            SinkError::retry(super::Cause::Kafka(format!(
                "brokers {} unreachable: {e}",
                self.brokers
            )))
        })
    }

    /// Write `batch`: see the module's documentation.
    pub(crate) async fn write(
        &self,
        batch: &[Record],
        metrics: &SinkMetrics,
    ) -> Result<Written, SinkError> {
        produce::write(self, batch, metrics).await
    }

    /// The worker gave up on `batch` (never with the default policy: the
    /// sink retries itself).
    pub(crate) fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        let Some(dl) = &self.dead_letter else {
            return Ok(false);
        };
        let entries: Vec<_> = batch
            .iter()
            .map(|r| produce::dead_entry(r, reason))
            .collect();
        dl.write(&entries)?;
        Ok(true)
    }
}

/// The producer's callbacks: whether any broker is reachable, for
/// `/health` while the sink is idle (a produce that fails says so too).
struct Watch {
    degraded: Degraded,
    name: String,
}

impl Watch {
    fn set(&self, why: Option<String>) {
        if let Ok(mut d) = self.degraded.lock() {
            *d = why;
        }
    }
}

impl ClientContext for Watch {
    fn stats(&self, s: Statistics) {
        // Brokers learned from metadata (the bootstrap entries are -1).
        let brokers: Vec<&rdkafka::statistics::Broker> =
            s.brokers.values().filter(|b| b.nodeid >= 0).collect();
        if brokers.iter().any(|b| b.state == "UP") {
            self.set(None);
        } else if !brokers.is_empty() {
            // None learned yet: start-up, which `prepare` reports.
            self.set(Some(format!(
                "kafka: no broker reachable ({} known)",
                brokers.len()
            )));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)) {
            self.set(Some(format!("kafka: no broker reachable: {reason}")));
        }
        static LOG: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::new(10_000);
        if let Some(suppressed) = LOG.allow() {
            tracing::warn!(sink = %self.name, error = %error, reason, suppressed, "kafka producer error");
        }
    }
}

/// librdkafka's settings for a sink.
fn client_config(config: &KafkaConfig, batch_max_events: usize) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", config.brokers.join(","))
        .set(
            "acks",
            match config.acks {
                KafkaAcks::All => "all",
                KafkaAcks::Leader => "1",
            },
        )
        .set("enable.idempotence", config.idempotent.to_string())
        .set("compression.codec", config.compression.as_str())
        // A batch never exceeds the largest record the sink sends.
        .set(
            "batch.size",
            config
                .batch_max_bytes
                .min(config.max_message_bytes)
                .to_string(),
        )
        // The worker lingers to gather a batch; librdkafka sends what it has.
        .set("linger.ms", "5")
        .set("message.max.bytes", config.max_message_bytes.to_string())
        .set(
            "message.timeout.ms",
            config.message_timeout.as_millis().to_string(),
        )
        // One batch in flight at a time: room for it, and a byte cap.
        .set(
            "queue.buffering.max.messages",
            (batch_max_events.saturating_mul(2))
                .clamp(1_000, 10_000_000)
                .to_string(),
        )
        .set(
            "queue.buffering.max.kbytes",
            (config.batch_max_bytes.saturating_mul(64) / 1024)
                .clamp(16 * 1024, 2 * 1024 * 1024)
                .to_string(),
        )
        .set("client.id", "sluice")
        // A connection to every broker, kept up while idle: the statistics
        // then say whether the cluster is reachable (see `Watch`).
        .set("enable.sparse.connections", "false")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    for (key, value) in kafka_security_settings(config.tls.as_ref(), config.sasl.as_ref()) {
        c.set(key, value);
    }
    c
}
