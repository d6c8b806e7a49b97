//! The delivery worker: one per route, it pulls batches from the route's
//! queue, hands each to the sink (through [`Deliver`], defined by the
//! sinks, so that sinks never import the queue), retries it by the sink's
//! [`RetryPolicy`], acknowledges it, and on giving up counts its records as
//! failed and passes them to the sink's dead-letter file.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use super::RouteQueue;
use crate::config::SinkConfig;
use crate::log_limit::LogLimiter;
use crate::record::Record;
use crate::sinks::{Deliver, RetryPolicy, SinkError};
use crate::telemetry::SinkMetrics;

/// Drain `queue` into `sink` until the queue is closed and empty; retries
/// follow the policy of the sink's config ([`RetryPolicy::for_sink`]).
pub(crate) async fn run_worker<S: Deliver>(
    route: String,
    queue: Arc<RouteQueue>,
    sink: Arc<S>,
    config: SinkConfig,
    metrics: SinkMetrics,
) {
    let retry = RetryPolicy::for_sink(&config.kind);
    let mut batch = Vec::with_capacity(config.batch_max_events.min(65_536));
    // One retry warning per 10 s per worker; /metrics counts every retry.
    let retry_log = LogLimiter::new(10_000);
    let worker = Worker {
        route: &route,
        sink: sink.as_ref(),
        config: &config,
        retry,
        metrics: &metrics,
        retry_log: &retry_log,
    };
    let Some(mut have_batch) = worker.prepare(&queue, &mut batch).await else {
        return;
    };
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
        let span = tracing::info_span!("flush", route = %route, sink = %config.name, records = batch.len());
        worker.deliver(&batch).instrument(span).await;
        queue.end_batch().await;
        queue.recycle(&mut batch);
    }
}

/// What one worker writes with, borrowed for its life.
struct Worker<'a, S> {
    route: &'a str,
    sink: &'a S,
    config: &'a SinkConfig,
    retry: RetryPolicy,
    metrics: &'a SinkMetrics,
    retry_log: &'a LogLimiter,
}

impl<S: Deliver> Worker<'_, S> {
    /// Start-up checks (the InfluxDB database): tried now, not at the first
    /// write, so /health says why while they fail. Retried while idle; a
    /// batch that arrives meanwhile goes to the write path, which retries
    /// them itself. `Some(true)`: a batch arrived into `batch`;
    /// `Some(false)`: the sink is ready; `None`: the queue closed.
    async fn prepare(&self, queue: &RouteQueue, batch: &mut Vec<Record>) -> Option<bool> {
        let (route, config, retry, metrics) = (self.route, self.config, self.retry, self.metrics);
        let mut attempt = 0;
        loop {
            let wait = match self.sink.prepare().await {
                Ok(()) => return Some(false),
                Err(e) => {
                    let (message, retry_after) = (e.cause().to_string(), e.after());
                    metrics.up.set(0);
                    metrics.health.failing(&message);
                    if let Some(suppressed) = self.retry_log.allow() {
                        tracing::warn!(route = %route, sink = %config.name, error = %message, suppressed, "sink not ready at start-up, retrying");
                    }
                    let wait = retry.backoff(attempt).max(retry_after.unwrap_or_default());
                    attempt = attempt.saturating_add(1);
                    wait.max(Duration::from_millis(100))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                more = queue.pop_batch(batch, config.batch_max_events, config.linger) => {
                    return more.then_some(true);
                }
            }
        }
    }

    /// Write `batch`, retrying by the policy; on giving up, count it as
    /// failed and hand it to the sink's dead-letter file.
    async fn deliver(&self, batch: &[Record]) {
        let (route, config, retry, metrics) = (self.route, self.config, self.retry, self.metrics);
        let mut attempt = 0;
        let mut started = tokio::time::Instant::now();
        loop {
            match self.sink.write(batch, metrics).await {
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
                    return;
                }
                Err(SinkError::Retryable {
                    cause,
                    after: retry_after,
                }) if attempt + 1 < retry.max_attempts && started.elapsed() < retry.max_elapsed => {
                    let message = cause.to_string();
                    metrics.retrying(&message);
                    let wait = retry.wait(attempt, retry_after, started.elapsed());
                    if let Some(suppressed) = self.retry_log.allow() {
                        tracing::warn!(route = %route, sink = %config.name, attempt, error = %message, ?wait, suppressed, "batch write failed, retrying");
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(SinkError::Held(cause)) => {
                    // An operator must act: the batch is kept (neither
                    // given up on nor counted lost) and tried again; the
                    // retry clock starts afresh once it is cleared.
                    let message = cause.to_string();
                    metrics.retrying(&message);
                    let wait = retry
                        .max_backoff
                        .min(retry.max_wait)
                        .max(Duration::from_millis(100));
                    if let Some(suppressed) = self.retry_log.allow() {
                        tracing::warn!(route = %route, sink = %config.name, error = %message, ?wait, suppressed, "batch held until an operator acts");
                    }
                    tokio::time::sleep(wait).await;
                    attempt = 0;
                    started = tokio::time::Instant::now();
                }
                Err(e) => {
                    let message = e.cause().to_string();
                    let reason = format!(
                        "gave up after {} attempt(s) in {:.1} s: {message}",
                        attempt + 1,
                        started.elapsed().as_secs_f64()
                    );
                    self.give_up(batch, &reason);
                    return;
                }
            }
        }
    }

    /// The retries are spent: count `batch` as failed and dead-letter it.
    fn give_up(&self, batch: &[Record], reason: &str) {
        let (route, config, metrics) = (self.route, self.config, self.metrics);
        metrics.up.set(0);
        metrics.health.failing(reason);
        metrics.failed_records.inc_by(batch.len() as u64);
        match self.sink.give_up(batch, reason) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkKind;
    use crate::sinks::{Cause, Written};
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

    /// Answers `Held` `held` times, then stores the batch.
    struct HeldThenStored {
        held: u32,
        writes: AtomicU32,
        given_up: AtomicU32,
    }

    impl Deliver for HeldThenStored {
        async fn prepare(&self) -> Result<(), SinkError> {
            Ok(())
        }

        fn write(
            &self,
            _: &[Record],
            _: &SinkMetrics,
        ) -> impl Future<Output = Result<Written, SinkError>> + Send {
            let n = self.writes.fetch_add(1, Relaxed);
            let held = self.held;
            async move {
                if n < held {
                    Err(SinkError::Held(Cause::Item(
                        "a plain index holds it".into(),
                    )))
                } else {
                    Ok(Written::default())
                }
            }
        }

        fn give_up(&self, _: &[Record], _: &str) -> Result<bool, SinkError> {
            self.given_up.fetch_add(1, Relaxed);
            Ok(false)
        }
    }

    /// A held batch is not given up on when the retry attempts and time
    /// run out (here after 2 tries or 1 s; it is held 50 times, 25 s):
    /// it is tried until it is written, each hold counted as a retry.
    #[tokio::test(start_paused = true)]
    async fn a_held_batch_outlasts_the_retry_budget_and_is_written() {
        let sink = HeldThenStored {
            held: 50,
            writes: AtomicU32::new(0),
            given_up: AtomicU32::new(0),
        };
        let config = SinkConfig {
            name: "s".into(),
            kind: SinkKind::Stdout,
            batch_max_events: 10,
            linger: Duration::ZERO,
        };
        let telemetry = crate::telemetry::Telemetry::new();
        let metrics = telemetry.sink("s", "r");
        let retry_log = LogLimiter::new(10_000);
        let worker = Worker {
            route: "r",
            sink: &sink,
            config: &config,
            retry: RetryPolicy {
                max_attempts: 2,
                max_elapsed: Duration::from_secs(1),
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(500),
                max_wait: Duration::from_secs(5),
            },
            metrics: &metrics,
            retry_log: &retry_log,
        };
        let batch = [Record {
            payload: "x".into(),
            time_nanos: 0,
            key: None,
            kafka: None,
            ack: None,
        }];
        worker.deliver(&batch).await;
        assert_eq!(sink.writes.load(Relaxed), 51);
        assert_eq!(
            sink.given_up.load(Relaxed),
            0,
            "a held batch is not given up on"
        );
        assert_eq!(metrics.failed_records.get(), 0);
        assert_eq!(metrics.records_sent.get(), 1);
        assert_eq!(metrics.retries.get(), 50);
    }
}
