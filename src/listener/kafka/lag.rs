//! The poller's upkeep of what librdkafka does not keep: partitions whose
//! offsets went back (reported, their commit point committed at once), and
//! the consumer lag of paused partitions (librdkafka's statistics come
//! from its fetches, which stop with a pause: the lag would stand still
//! while the records behind it pile up).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{Context, commit};
use crate::config::KafkaSource;

/// One watermark query: the broker answers on a healthy link in
/// milliseconds; a broker that does not answer must not keep the poller
/// from polling (`max.poll.interval.ms`) or handing on records.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// All the queries of one statistics interval together.
const QUERY_BUDGET: Duration = Duration::from_secs(1);

/// Report the resets `Offsets` saw (counted, logged at most every 10 s)
/// and commit the commit points of reset partitions at once: librdkafka's
/// own commits only move a committed offset forward.
pub(super) fn resets(consumer: &BaseConsumer<Context>) {
    let context = consumer.context();
    for (topic, partition, floor, offset) in context.offsets.take_resets() {
        context.metrics.offset_resets.inc();
        static LOG: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::new(10_000);
        if let Some(suppressed) = LOG.allow() {
            tracing::warn!(
                listener = %context.name, topic, partition, done_below = floor, offset, suppressed,
                "kafka partition offsets went back (topic created again, or offsets reset): \
                 reading on from there"
            );
        }
    }
    let now = context.offsets.to_commit_now();
    if !commit(consumer, &now) {
        context.offsets.commit_now_failed(&now);
    }
}

/// When the paused partitions' lag was last asked, and where the next
/// round starts (the budget may not reach every partition each time).
#[derive(Default)]
pub(super) struct PausedLag {
    last: Option<Instant>,
    cursor: usize,
}

impl PausedLag {
    /// Once a statistics interval: each paused partition's lag is the
    /// broker's high watermark − its floor (its commit point, or its
    /// oldest record in flight), asked of the broker with a bounded wait.
    pub(super) fn every_interval(
        &mut self,
        consumer: &BaseConsumer<Context>,
        source: &KafkaSource,
    ) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < source.statistics_interval)
        {
            return;
        }
        let started = Instant::now();
        self.last = Some(started);
        let context = consumer.context();
        let paused = context.offsets.paused_floors();
        if paused.is_empty() {
            return;
        }
        let n = paused.len();
        for k in 0..n {
            if started.elapsed() >= QUERY_BUDGET {
                // The rest first next time.
                self.cursor = (self.cursor + k) % n;
                return;
            }
            let (topic, partition, floor) = &paused[(self.cursor + k) % n];
            match consumer.fetch_watermarks(topic, *partition, QUERY_TIMEOUT) {
                Ok((_, high)) if high >= *floor => {
                    // Still paused, with the same floor? Revoked or
                    // resumed meanwhile: the statistics have it again.
                    if context.offsets.position(topic, *partition) == Some((true, Some(*floor))) {
                        context.metrics.set_lag(topic, *partition, high - floor);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    static LOG: crate::log_limit::LogLimiter =
                        crate::log_limit::LogLimiter::new(60_000);
                    if let Some(suppressed) = LOG.allow() {
                        tracing::debug!(error = %e, suppressed, "kafka: watermarks of a paused partition");
                    }
                }
            }
        }
        self.cursor = 0;
    }
}
