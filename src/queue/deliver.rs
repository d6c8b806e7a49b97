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
/// follow the policy of the sink's config ([`SinkConfig::retry`]).
pub(crate) async fn run_worker<S: Deliver>(
    route: String,
    queue: Arc<RouteQueue>,
    sink: Arc<S>,
    config: SinkConfig,
    metrics: SinkMetrics,
) {
    let retry = config.retry;
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
    worker.run(&queue, &mut batch).await;
}

/// A batch held until an operator acts, shown on /health (as the
/// worker's, even once a reload replaced it) and in
/// `sluice_sink_held_records` until it is written, given up on or dropped.
struct Holding<'a> {
    metrics: &'a SinkMetrics,
    records: u64,
}

impl Holding<'_> {
    fn hold(&mut self, records: usize) {
        if self.records == 0 {
            self.records = records as u64;
            self.metrics.health.set_held(self.records);
            self.metrics
                .held_records
                .inc_by(i64::try_from(self.records).unwrap_or(i64::MAX));
        }
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        if self.records > 0 {
            self.metrics.health.set_held(0);
            self.metrics
                .held_records
                .dec_by(i64::try_from(self.records).unwrap_or(i64::MAX));
        }
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
    /// Prepare the sink, then deliver batches until the queue (and its
    /// spill log) is closed and empty.
    async fn run(&self, queue: &RouteQueue, batch: &mut Vec<Record>) {
        let mut have_batch = self.prepare(queue, batch).await;
        loop {
            if !have_batch
                && !queue
                    .pop_batch(batch, self.config.batch_max_events, self.config.linger)
                    .await
            {
                break;
            }
            have_batch = false;
            queue.begin_batch(batch);
            let span = tracing::info_span!("flush", route = %self.route, sink = %self.config.name, records = batch.len());
            self.deliver(batch).instrument(span).await;
            queue.end_batch().await;
            batch.clear();
        }
    }

    /// Start-up checks (the InfluxDB database, the Elasticsearch data
    /// stream): tried now, not at the first write, so /health says why
    /// while they fail, and retried on a timer while the route is idle, so
    /// an idle route's /health follows the cause (ok again once it is
    /// fixed). A batch that arrives meanwhile goes to the write path,
    /// which retries them itself. `true`: a batch is in `batch`; `false`:
    /// the queue is closed and empty.
    ///
    /// One `pop_batch` is awaited throughout, never dropped and started
    /// again: a read from the spill log under way when a retry timer fired
    /// used to be dropped with its records, which the log counts as read,
    /// so the worker found the closed queue empty and exited with them
    /// still pending on disk (issue #23).
    async fn prepare(&self, queue: &RouteQueue, batch: &mut Vec<Record>) -> bool {
        let (route, config, retry, metrics) = (self.route, self.config, self.retry, self.metrics);
        let pop = queue.pop_batch(batch, config.batch_max_events, config.linger);
        tokio::pin!(pop);
        let mut attempt: u32 = 0;
        loop {
            let wait = match self.sink.prepare().await {
                Ok(()) => {
                    if attempt > 0 {
                        metrics.up.set(1);
                        metrics.health.ok();
                        tracing::info!(route = %route, sink = %config.name, "sink ready");
                    }
                    return pop.await;
                }
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
                more = &mut pop => return more,
            }
        }
    }

    /// Write `batch`, retrying by the policy; on giving up, count it as
    /// failed and hand it to the sink's dead-letter file.
    async fn deliver(&self, batch: &[Record]) {
        let (route, config, retry, metrics) = (self.route, self.config, self.retry, self.metrics);
        let mut attempt = 0;
        let mut started = tokio::time::Instant::now();
        let mut holding = Holding {
            metrics,
            records: 0,
        };
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
                    holding.hold(batch.len());
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
            retry: RetryPolicy::local(),
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

#[cfg(test)]
mod start_up_tests {
    use super::*;
    use crate::config::SinkKind;
    use crate::sinks::{Cause, Written};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

    /// Fails its start-up check `failures` times (held, as a data stream
    /// a plain index holds); on the call after, runs `on_ready` first.
    struct NotReadyThenReady {
        failures: u32,
        prepares: AtomicU32,
        written: AtomicU64,
        on_ready: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl NotReadyThenReady {
        fn new(failures: u32) -> Self {
            NotReadyThenReady {
                failures,
                prepares: AtomicU32::new(0),
                written: AtomicU64::new(0),
                on_ready: Mutex::new(None),
            }
        }
    }

    impl Deliver for NotReadyThenReady {
        async fn prepare(&self) -> Result<(), SinkError> {
            let n = self.prepares.fetch_add(1, Relaxed);
            if n < self.failures {
                return Err(SinkError::Held(Cause::Item(
                    "a plain index holds it".into(),
                )));
            }
            let ready = self.on_ready.lock().unwrap().take();
            if let Some(ready) = ready {
                ready();
            }
            Ok(())
        }

        fn write(
            &self,
            batch: &[Record],
            _: &SinkMetrics,
        ) -> impl Future<Output = Result<Written, SinkError>> + Send {
            self.written.fetch_add(batch.len() as u64, Relaxed);
            async { Ok(Written::default()) }
        }

        fn give_up(&self, _: &[Record], _: &str) -> Result<bool, SinkError> {
            Ok(false)
        }
    }

    fn stdout_config() -> SinkConfig {
        SinkConfig {
            name: "s".into(),
            kind: SinkKind::Stdout,
            batch_max_events: 100,
            linger: Duration::ZERO,
            retry: RetryPolicy::local(),
        }
    }

    /// Issue #23 defect 3: a route with nothing queued whose start-up check
    /// failed shows "failing"; once the check passes again it is ok, though
    /// no batch came to prove it.
    #[tokio::test(start_paused = true)]
    async fn an_idle_route_is_ok_again_once_its_start_up_check_passes() {
        let queue = Arc::new(RouteQueue::new(
            &super::super::QueueConfig {
                spill: None,
                max_events: 10,
                max_bytes: usize::MAX,
                when_full: super::super::WhenFull::Block,
                block_timeout: None,
            },
            crate::telemetry::QueueMetrics::default(),
        ));
        let sink = Arc::new(NotReadyThenReady::new(2));
        let telemetry = crate::telemetry::Telemetry::new();
        let metrics = telemetry.sink("s", "r");
        let worker = tokio::spawn(run_worker(
            "r".into(),
            queue.clone(),
            sink.clone(),
            stdout_config(),
            metrics.clone(),
        ));
        for _ in 0..1000 {
            if sink.prepares.load(Relaxed) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            metrics.health.state().is_some(),
            "failing while the check fails"
        );
        for _ in 0..1000 {
            if sink.prepares.load(Relaxed) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sink.prepares.load(Relaxed), 3, "waited for the third check");
        tokio::task::yield_now().await;
        assert_eq!(
            metrics.health.state().map(|(e, _)| e),
            None,
            "the check passed: the idle route is no longer failing"
        );
        assert_eq!(metrics.up.get(), 1);
        queue.close();
        worker.await.unwrap();
    }

    /// Issue #23 defect 2, made deterministic: a durable route's records
    /// are all in the spill log; the queue is closed (a reload retired
    /// it) while the start-up check fails. The log is locked while the
    /// retry timer fires, so the worker's spill read is still under way
    /// then; the check passes once that read is done. Every record is
    /// delivered and the log is empty when the worker exits.
    #[tokio::test]
    async fn a_worker_does_not_exit_while_its_spill_log_holds_records() {
        let dir = tempfile::tempdir().unwrap();
        let config = super::super::QueueConfig {
            spill: Some(crate::config::SpillConfig {
                durable: true,
                max_bytes: 1 << 20,
                segment_bytes: 4096,
                fsync: super::super::spill::Fsync::Never,
            }),
            max_events: 100,
            max_bytes: usize::MAX,
            when_full: super::super::WhenFull::Spill,
            block_timeout: None,
        };
        let m = crate::telemetry::QueueMetrics::default();
        let sp = Arc::new(
            super::super::SpillShared::open(dir.path(), config.spill.as_ref().unwrap(), &m)
                .unwrap(),
        );
        let queue = Arc::new(RouteQueue::with_spill(&config, m.clone(), Some(sp.clone())));
        for i in 0..5 {
            let r = Record {
                payload: format!("r{i}").into(),
                time_nanos: i,
                key: None,
                kafka: None,
                ack: None,
            };
            queue.push(r, true).await;
        }
        assert_eq!(m.spilled.get(), 5, "a durable route spills every record");
        queue.close();
        // Hold the log's lock until the second check (after a retry timer).
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = sp.clone();
        let lock_thread = std::thread::spawn(move || {
            let guard = holder.lock();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            drop(guard);
        });
        locked_rx.recv().unwrap();
        let sink = Arc::new(NotReadyThenReady::new(1));
        let waiter = sp.clone();
        *sink.on_ready.lock().unwrap() = Some(Box::new(move || {
            release_tx.send(()).unwrap();
            // The read under way finishes before the check passes.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while waiter.lock().log.unread() > 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "waited 10 s for the spill read to finish"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
        let telemetry = crate::telemetry::Telemetry::new();
        let metrics = telemetry.sink("s", "r");
        let run = run_worker(
            "r".into(),
            queue.clone(),
            sink.clone(),
            stdout_config(),
            metrics,
        );
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("waited 20 s for the worker to finish");
        lock_thread.join().unwrap();
        let pending = m.spill_pending.get();
        println!(
            "spilled 5, delivered {}, still pending in the spill log {pending}",
            sink.written.load(Relaxed)
        );
        assert_eq!(
            sink.written.load(Relaxed),
            5,
            "every spilled record is delivered"
        );
        assert_eq!(pending, 0, "nothing is left in the spill log");
    }
}
