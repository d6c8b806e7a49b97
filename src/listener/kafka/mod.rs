//! `protocol = "kafka"`: a consumer in a consumer group whose records are
//! frames — raw envelopes an edge sluice's Kafka sink wrote (decoded as if
//! this process had received the frame: the edge's receive time, peer,
//! zone and document identity), or plain frames (decoded as received now
//! from no peer, counted as `kind="plain"`).
//!
//! At least once, end to end: each record's [`Ack`] rides in the event
//! and every record a route makes of it; an offset is committed only once
//! every record at or before it in its partition is done with (delivered,
//! spilled, dead-lettered, or dropped and counted; see [`offsets`]).
//!
//! One thread owns the consumer (librdkafka's calls, rebalance callbacks,
//! commits); a task takes its records through the pipeline. Backpressure
//! pauses partitions, never drops: a partition with `max_in_flight`
//! records not yet done with is paused, and all are once the pipeline
//! has taken nothing for a second (a `block` queue is full). A hand-off
//! full for a moment pauses nothing: the thread stops taking records out
//! of librdkafka, whose prefetch queue bounds itself (a pause would drop
//! what it prefetched, to fetch and decompress it again on resume).
//! Memory: at most `max_in_flight` records per partition in flight, the
//! hand-off's 1024, one record held, and librdkafka's prefetch (16 MiB a
//! partition). Paused, the thread keeps polling, so the group does not
//! evict it (`max.poll.interval.ms`).

mod envelope;
mod lag;
mod offsets;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{KafkaSource, ListenerConfig, kafka_security_settings};
use crate::ingest::{PipelineHandle, Reader, Received, now_nanos};
use crate::record::Ack;
use crate::telemetry::{Degraded, KafkaDrop, KafkaSourceMetrics, ListenerMetrics};
use offsets::{Commit, Offsets};

/// Records handed to the pipeline task and not yet taken by it.
const CHANNEL_RECORDS: usize = 1024;
/// Records the pipeline task takes before it pushes them into the queues.
const BATCH_RECORDS: usize = 256;
/// The pipeline took nothing for this long: every partition is paused.
const STALL: Duration = Duration::from_secs(1);
/// How long the consumer's thread waits for room in a full hand-off
/// before it tries again.
const ROOM_WAIT: Duration = Duration::from_millis(1);
/// At shutdown: how long the consumer waits for records in flight to be
/// done with before its last commit (what is not is read again later).
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// At shutdown, after the drain: how long closing the consumer (its last
/// revocation commit, leaving the group) may take.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The librdkafka settings of a listener's consumer.
pub(crate) fn client_config(name: &str, k: &KafkaSource) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", k.brokers.join(","))
        .set("group.id", &k.group_id)
        .set("client.id", format!("sluice-{name}"))
        // Offsets are stored by this listener only, for records every
        // route is done with; librdkafka commits what is stored every
        // commit interval. Its commits report their results (counted,
        // and a failed one is tried again with the next); a manual async
        // commit's result would reach no callback.
        .set("enable.auto.commit", "true")
        .set(
            "auto.commit.interval.ms",
            k.commit_interval.as_millis().to_string(),
        )
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            k.session_timeout.as_millis().to_string(),
        )
        .set(
            "statistics.interval.ms",
            k.statistics_interval.as_millis().to_string(),
        )
        // Bounds what librdkafka prefetches (and what a pause may leave
        // in hand): 16 MiB per partition.
        .set("queued.max.messages.kbytes", "16384");
    for (key, value) in kafka_security_settings(k.tls.as_ref(), k.sasl.as_ref()) {
        c.set(key, value);
    }
    c
}

/// Can this listener's consumer be made (librdkafka accepts its
/// settings)? Asked at bind time, so a bad setting stops start-up.
pub(crate) fn check(config: &ListenerConfig) -> Result<(), String> {
    let Some(k) = &config.kafka else {
        return Err("not a kafka listener".into());
    };
    // Settings only: a client would try the brokers (and closing a group
    // consumer that never joined can wait on them).
    client_config(&config.name, k)
        .create_native_config()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The consumer's callbacks: rebalances, commits, statistics, errors.
struct Context {
    offsets: Arc<Offsets>,
    metrics: KafkaSourceMetrics,
    degraded: Degraded,
    /// Bumped by every revocation: records held for the pipeline then are
    /// dropped unregistered (the partition's next owner reads them).
    revocations: AtomicU64,
    name: String,
}

impl Context {
    fn set_degraded(&self, why: Option<String>) {
        if let Ok(mut d) = self.degraded.lock() {
            *d = why;
        }
    }
}

impl ClientContext for Context {
    fn stats(&self, s: Statistics) {
        for (topic, t) in &s.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal unassigned partition.
                if *partition < 0 {
                    continue;
                }
                match self.offsets.position(topic, *partition) {
                    // Another consumer's (librdkafka still lists it, its
                    // last lag here frozen): not reported.
                    None => self.metrics.remove_lag(topic, *partition),
                    // Paused: no fetches, so these figures stand still;
                    // the poller asks the broker (`lag::PausedLag`).
                    Some((true, Some(_))) => {}
                    Some((_, floor)) => {
                        if let Some(lag) = partition_lag(p, floor) {
                            self.metrics.set_lag(topic, *partition, lag);
                        }
                    }
                }
            }
        }
        let brokers: Vec<&rdkafka::statistics::Broker> =
            s.brokers.values().filter(|b| b.nodeid >= 0).collect();
        if brokers.iter().any(|b| b.state == "UP") {
            self.set_degraded(None);
        } else {
            self.set_degraded(Some(format!(
                "kafka: no broker reachable ({} known)",
                brokers.len()
            )));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)) {
            self.set_degraded(Some(format!("kafka: all brokers down: {reason}")));
        }
        static LOG: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::new(10_000);
        if let Some(suppressed) = LOG.allow() {
            tracing::warn!(listener = %self.name, error = %error, reason, suppressed, "kafka consumer error");
        }
    }
}

/// The consumer lag of a partition assigned here, from librdkafka's
/// statistics: its own (high watermark − committed offset) when it has
/// one. It has none (-1) before the group's first commit, and when the
/// committed offset lies past the log end (the topic was deleted and
/// created again, and the last commit was the old topic's): then the
/// high watermark − `floor` (this listener's commit point, or its oldest
/// record in flight; see `Offsets::position`), else − the log start
/// (`auto.offset.reset = earliest`: all of it is to be read). `None`
/// when the high watermark is not known (not fetched yet).
fn partition_lag(p: &rdkafka::statistics::Partition, floor: Option<i64>) -> Option<i64> {
    if p.consumer_lag >= 0 {
        return Some(p.consumer_lag);
    }
    if let Some(floor) = floor.filter(|f| (0..=p.hi_offset).contains(f)) {
        return Some(p.hi_offset - floor);
    }
    (p.lo_offset >= 0 && p.hi_offset >= p.lo_offset).then(|| p.hi_offset - p.lo_offset)
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.metrics.rebalances.inc();
            self.revocations.fetch_add(1, Ordering::SeqCst);
            let done: Vec<Commit> = tpl
                .elements()
                .iter()
                .filter_map(|e| self.offsets.revoke(e.topic(), e.partition()))
                .collect();
            // What is done is committed before the partitions go; the rest
            // is read again by their next owner. Not when the assignment
            // was lost (the session timed out, e.g. while no broker could
            // be reached): the group has moved on without this member, a
            // commit can only fail, and a synchronous one would hold this
            // callback, and with it the poll loop, until a coordinator
            // answers. Their next owner reads them again (ids absorb it).
            if consumer.assignment_lost() {
                tracing::warn!(
                    listener = %self.name,
                    "kafka assignment lost (session timed out): its done offsets are not committed, their next owner reads them again"
                );
            } else {
                commit(consumer, &done);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.metrics.rebalances.inc();
            for e in tpl.elements() {
                self.offsets.assign(e.topic(), e.partition());
            }
            // A partition is assigned unpaused in `offsets`; librdkafka
            // keeps an application pause across a revoke and a new
            // assignment, so a partition paused before it went and came
            // back would stay paused for good, with nothing to resume it.
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(listener = %self.name, error = %e, "kafka consumer: resume of assigned partitions failed");
            }
            tracing::info!(listener = %self.name, partitions = tpl.count(), "kafka partitions assigned");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        match result {
            Ok(()) => {
                self.metrics.commits.inc();
            }
            // Nothing stored since the last commit: not a failure.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.metrics.commit_failures.inc();
                self.offsets.commit_failed();
                tracing::warn!(listener = %self.name, error = %e, "kafka offset commit failed");
            }
        }
    }
}

/// Commit `commits` now, waiting for the answer (a revocation, the
/// shutdown, a reset); whether it succeeded.
fn commit(consumer: &BaseConsumer<Context>, commits: &[Commit]) -> bool {
    if commits.is_empty() {
        return true;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in commits {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(error = %e, "kafka commit: bad offset");
        }
    }
    // Stored too: librdkafka's own commit of what is stored, at the
    // unassignment or the close that follows, must not take the
    // committed offset back to an older point.
    if let Err(e) = consumer.store_offsets(&tpl) {
        tracing::debug!(error = %e, "kafka offset store before commit failed");
    }
    let result = consumer.commit(&tpl, CommitMode::Sync);
    if result.is_ok() {
        // A synchronous commit reports here, not in the callback.
        consumer.context().metrics.commits.inc();
    }
    if let Err(e) = result {
        consumer.context().metrics.commit_failures.inc();
        consumer.context().offsets.commit_failed();
        tracing::warn!(error = %e, "kafka offset commit failed");
        return false;
    }
    true
}

/// Store `commits` for librdkafka's next commit (`auto.commit.interval.ms`).
fn store(consumer: &BaseConsumer<Context>, commits: &[Commit]) {
    if commits.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in commits {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(error = %e, "kafka offset store: bad offset");
        }
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // A partition revoked meanwhile (its done offsets were committed
        // on revocation): stored again next time for those still ours.
        consumer.context().offsets.commit_failed();
        tracing::debug!(error = %e, "kafka offset store failed");
    }
}

/// A record on its way to the pipeline task.
struct Item {
    frame: Bytes,
    origin: Received,
}

/// A record consumed, not yet handed on (or counted as dropped).
struct Held {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    /// Its join stream: topic and partition ([`Received::stream`]).
    stream: u64,
    what: Result<(Bytes, Option<envelope::Envelope>), KafkaDrop>,
}

/// Serve a kafka listener until `shutdown`.
pub(crate) async fn serve_kafka(
    config: ListenerConfig,
    pipeline: Arc<PipelineHandle>,
    metrics: ListenerMetrics,
    kafka_metrics: KafkaSourceMetrics,
    degraded: Degraded,
    shutdown: CancellationToken,
) {
    let Some(source) = config.kafka.clone() else {
        return;
    };
    let offsets = Arc::new(Offsets::default());
    let context = Context {
        offsets: offsets.clone(),
        metrics: kafka_metrics.clone(),
        degraded,
        revocations: AtomicU64::new(0),
        name: config.name.clone(),
    };
    let consumer: BaseConsumer<Context> = match client_config(&config.name, &source)
        .create_with_context(context)
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(listener = %config.name, error = %e, "kafka consumer: cannot start");
            return;
        }
    };
    let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&topics) {
        tracing::error!(listener = %config.name, error = %e, "kafka consumer: cannot subscribe");
        return;
    }
    let (tx, rx) = mpsc::channel(CHANNEL_RECORDS);
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let poller = {
        let stop = stop.clone();
        let max_frame_bytes = config.max_frame_bytes;
        std::thread::Builder::new()
            .name(format!("kafka-{}", config.name))
            .spawn(move || {
                let mut poll = Poller {
                    consumer,
                    tx: Some(tx),
                    source,
                    offsets,
                    max_frame_bytes,
                    held: VecDeque::new(),
                    topics: Vec::new(),
                    revocations: 0,
                    full_since: None,
                    stalled: false,
                    paused_lag: lag::PausedLag::default(),
                };
                poll.run(&stop);
                poll.drain();
                // Closes the consumer (leaves the group, so its
                // partitions go to the others now, not after the session
                // timeout) before saying it is done: the process may exit
                // as soon as it is.
                drop(poll);
                drop(done_tx);
            })
    };
    if let Err(e) = poller {
        tracing::error!(listener = %config.name, error = %e, "kafka consumer: cannot start its thread");
        return;
    }
    // The feeding ends when the poller drops its sender: stopped, it
    // hands on nothing more.
    let feeding = feed(rx, &pipeline, &config, &metrics);
    tokio::pin!(feeding);
    tokio::select! {
        () = &mut feeding => {}
        () = shutdown.cancelled() => {
            stop.store(true, Ordering::SeqCst);
            feeding.await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    if tokio::time::timeout(DRAIN_WAIT + CLOSE_WAIT, done_rx)
        .await
        .is_err()
    {
        tracing::warn!(listener = %config.name, "kafka consumer: not closed in time; its group waits for its session timeout");
    }
}

/// The pipeline task: records from the poller through decode, routing and
/// the queues, a batch at a time.
async fn feed(
    mut rx: mpsc::Receiver<Item>,
    pipeline: &PipelineHandle,
    config: &ListenerConfig,
    metrics: &ListenerMetrics,
) {
    let mut reader = Reader::new(pipeline, config, metrics, true);
    loop {
        let deadline = reader.deadline();
        let item = tokio::select! {
            item = rx.recv() => item,
            // Guarded: without a deadline the sleep is ready at once, and
            // this task would spin, never yielding its worker thread.
            () = super::sleep_until_some(deadline), if deadline.is_some() => {
                reader.expire().await;
                continue;
            }
        };
        let Some(first) = item else { break };
        let mut next = Some(first);
        let mut n = 0;
        while let Some(item) = next.take() {
            metrics.bytes.inc_by(item.frame.len() as u64);
            reader.frame_from(item.frame, item.origin).await;
            n += 1;
            if n < BATCH_RECORDS {
                next = rx.try_recv().ok();
            }
        }
        reader.end_of_batch().await;
    }
    reader.close().await;
}

/// The consumer's thread.
struct Poller {
    consumer: BaseConsumer<Context>,
    /// `None` once stopped: the pipeline task then ends.
    tx: Option<mpsc::Sender<Item>>,
    source: Arc<KafkaSource>,
    offsets: Arc<Offsets>,
    max_frame_bytes: usize,
    /// Consumed, not yet handed on: the pipeline had no room.
    held: VecDeque<Held>,
    /// Topic names seen, shared by their records.
    topics: Vec<Arc<str>>,
    revocations: u64,
    /// Since when a held record waits for room in the hand-off.
    full_since: Option<Instant>,
    /// The pipeline is stalled: every partition is paused.
    stalled: bool,
    paused_lag: lag::PausedLag,
}

impl Poller {
    fn metrics(&self) -> &KafkaSourceMetrics {
        &self.consumer.context().metrics
    }

    /// Poll, hand on, pause and commit until `stop`.
    fn run(&mut self, stop: &AtomicBool) {
        let mut last_commit = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let revocations = self.consumer.context().revocations.load(Ordering::SeqCst);
            if revocations != self.revocations {
                // Held records of revoked partitions are not registered:
                // dropping them loses nothing (their next owner reads them).
                self.revocations = revocations;
                self.held.clear();
            }
            if !self.hand_on() {
                return;
            }
            self.update_stall();
            self.apply_pauses(self.stalled);
            if !self.held.is_empty() && !self.stalled {
                // The hand-off is full for now: what is still to read stays
                // in librdkafka's queue (bounded by its prefetch settings,
                // nothing dropped or fetched again); try again shortly.
                std::thread::sleep(ROOM_WAIT);
            } else {
                let wait = if self.held.is_empty() { 100 } else { 10 };
                match self.consumer.poll(Duration::from_millis(wait)) {
                    Some(Ok(msg)) => {
                        let held = hold(&mut self.topics, self.max_frame_bytes, &msg);
                        self.held.push_back(held);
                    }
                    Some(Err(e)) => {
                        static LOG: crate::log_limit::LogLimiter =
                            crate::log_limit::LogLimiter::new(10_000);
                        if let Some(suppressed) = LOG.allow() {
                            tracing::warn!(error = %e, suppressed, "kafka consumer: poll error");
                        }
                    }
                    None => {}
                }
            }
            if last_commit.elapsed() >= self.source.commit_interval / 2 {
                lag::resets(&self.consumer);
                store(&self.consumer, &self.offsets.to_commit());
                last_commit = Instant::now();
            }
            self.paused_lag.every_interval(&self.consumer, &self.source);
        }
    }

    /// Whether the pipeline is stalled (every partition to be paused): it
    /// took nothing for [`STALL`]; it stays so until it has taken every
    /// record held and has room for half the hand-off again (hysteresis:
    /// a pause costs librdkafka's prefetched records, fetched again on
    /// resume). A hand-off full for a moment is not a stall.
    fn update_stall(&mut self) {
        if self.held.is_empty() {
            self.full_since = None;
        } else if self.full_since.is_none() {
            self.full_since = Some(Instant::now());
        }
        if self.full_since.is_some_and(|t| t.elapsed() >= STALL) {
            self.stalled = true;
        } else if self.stalled && self.held.is_empty() {
            let room = self.tx.as_ref().map_or(0, mpsc::Sender::capacity);
            self.stalled = room < CHANNEL_RECORDS / 2;
        }
    }

    /// Stopped: hand on nothing more, wait (bounded) for what is in
    /// flight to be done with, commit it. Records consumed but not done
    /// with by then are read again after the restart.
    fn drain(&mut self) {
        self.held.clear();
        self.tx = None;
        self.apply_pauses(true);
        let deadline = Instant::now() + DRAIN_WAIT;
        while self.offsets.in_flight() > 0 && Instant::now() < deadline {
            // Keeps the group membership; records of paused partitions
            // that still arrive are not registered, so not committed.
            let _ = self.consumer.poll(Duration::from_millis(50));
            self.metrics()
                .in_flight
                .set(self.offsets.in_flight() as i64);
        }
        commit(&self.consumer, &self.offsets.commit_points());
        self.metrics()
            .in_flight
            .set(self.offsets.in_flight() as i64);
    }

    /// Hand held records to the pipeline task while it has room; `false`
    /// when it is gone.
    fn hand_on(&mut self) -> bool {
        let Some(tx) = &self.tx else { return false };
        while let Some(h) = self.held.front() {
            let permit = match &h.what {
                Err(_) => None,
                Ok(_) => match tx.try_reserve() {
                    Ok(permit) => Some(permit),
                    Err(mpsc::error::TrySendError::Full(())) => break,
                    Err(mpsc::error::TrySendError::Closed(())) => return false,
                },
            };
            let Some(h) = self.held.pop_front() else {
                break;
            };
            let Some(slot) = self.offsets.consumed(&h.topic, h.partition, h.offset) else {
                // No longer ours, or a record already in flight.
                continue;
            };
            let ack = Ack::new(self.offsets.clone(), slot, h.offset);
            let metrics = &self.consumer.context().metrics;
            match (h.what, permit) {
                (Err(reason), _) => {
                    metrics.dropped[reason as usize].inc();
                    // Done with: counted.
                    drop(ack);
                }
                (Ok((frame, envelope)), Some(permit)) => {
                    let origin = match envelope {
                        Some(e) => {
                            metrics.envelope_records.inc();
                            Received {
                                peer: e.peer,
                                received_nanos: e.received_nanos,
                                identity: Some((e.nonce, e.frame_number)),
                                // Absent: the edge listener read zone-less
                                // stamps in UTC (the sink writes any other).
                                timezone: Some(e.timezone.unwrap_or(chrono_tz::Tz::UTC)),
                                ack: Some(ack),
                                stream: h.stream,
                            }
                        }
                        None => {
                            metrics.plain_records.inc();
                            Received {
                                peer: None,
                                received_nanos: now_nanos(),
                                identity: None,
                                timezone: None,
                                ack: Some(ack),
                                stream: h.stream,
                            }
                        }
                    };
                    permit.send(Item { frame, origin });
                }
                (Ok(_), None) => {}
            }
        }
        self.metrics()
            .in_flight
            .set(self.offsets.in_flight() as i64);
        true
    }

    /// Pause or resume partitions as the in-flight counts and `hold` say.
    fn apply_pauses(&self, hold: bool) {
        let (pause, resume, paused) = self.offsets.pauses(hold, self.source.max_in_flight);
        for (list, resume) in [(pause, false), (resume, true)] {
            if list.is_empty() {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in &list {
                tpl.add_partition(topic, *partition);
            }
            let result = if resume {
                self.consumer.resume(&tpl)
            } else {
                self.metrics().pauses.inc_by(list.len() as u64);
                self.consumer.pause(&tpl)
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, resume, "kafka consumer: pause/resume failed");
            }
        }
        self.metrics().paused_partitions.set(paused as i64);
    }
}

/// A consumed record, read (not yet registered).
fn hold(
    topics: &mut Vec<Arc<str>>,
    max_frame_bytes: usize,
    msg: &rdkafka::message::BorrowedMessage<'_>,
) -> Held {
    // Not `msg.topic()` nor `msg.headers()`: rdkafka panics on a name
    // that is not UTF-8 (see `envelope`).
    let name = String::from_utf8_lossy(envelope::topic(msg));
    let (at, topic) = match topics.iter().enumerate().find(|(_, t)| ***t == *name) {
        Some((at, t)) => (at, t.clone()),
        None => {
            let t: Arc<str> = Arc::from(name);
            topics.push(t.clone());
            (topics.len() - 1, t)
        }
    };
    let what = match msg.payload() {
        None => Err(KafkaDrop::NoValue),
        Some(p) if p.len() > max_frame_bytes => Err(KafkaDrop::Oversized),
        Some(p) => {
            envelope::parse(envelope::headers(msg).as_ref()).map(|e| (Bytes::copy_from_slice(p), e))
        }
    };
    let partition = msg.partition();
    Held {
        topic,
        partition,
        offset: msg.offset(),
        stream: (at as u64) << 32 | u64::from(partition as u32),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::partition_lag;
    use rdkafka::statistics::Partition;

    /// librdkafka's own lag once an offset is committed; before the
    /// first commit, everything between the log start and the high
    /// watermark (a new group whose sink is down lags, and shows it), or
    /// between this listener's own floor and the high watermark; the
    /// same when the committed offset lies past the log end (the topic
    /// created again: librdkafka has no lag then, and the last one
    /// shown must not stand still); nothing when not fetched yet.
    #[test]
    fn lag_is_counted_from_the_log_start_until_the_first_commit() {
        let p = |lag, committed, lo, hi| Partition {
            consumer_lag: lag,
            committed_offset: committed,
            lo_offset: lo,
            hi_offset: hi,
            ..Partition::default()
        };
        assert_eq!(partition_lag(&p(30, 970, 0, 1000), None), Some(30));
        assert_eq!(partition_lag(&p(30, 970, 0, 1000), Some(990)), Some(30));
        assert_eq!(partition_lag(&p(-1, -1001, 200, 1000), None), Some(800));
        assert_eq!(
            partition_lag(&p(-1, -1001, 200, 1000), Some(900)),
            Some(100)
        );
        assert_eq!(partition_lag(&p(-1, -1001, 0, 0), None), Some(0));
        assert_eq!(partition_lag(&p(-1, -1001, -1001, -1001), None), None);
        assert_eq!(partition_lag(&p(-1, 28743, 0, 1970), None), Some(1970));
        assert_eq!(partition_lag(&p(-1, 28743, 0, 1970), Some(1900)), Some(70));
        assert_eq!(
            partition_lag(&p(-1, 28743, 0, 1970), Some(28743)),
            Some(1970),
            "a floor past the log end is the old topic's"
        );
    }
}
