//! One bounded queue per route, between the readers that fill it and the sink
//! worker that drains it in batches.
//!
//! The queue is bounded in records (`max_events`) and in bytes
//! (`max_bytes`: payload bytes plus [`RECORD_OVERHEAD`] each). When it is
//! full the route's policy decides: `block` makes a TCP reader wait for room
//! (it stops reading its socket, so the sender's TCP window closes: real
//! backpressure), for at most `block_timeout_ms` if set, after which the new
//! record is dropped (`reason="block_timeout"`); `drop_newest` drops the new
//! record (`reason="full"`); `drop_oldest` makes room by dropping the oldest
//! queued ones (`reason="full_oldest"`). A UDP reader can never wait — the
//! datagrams would only pile up and be lost, uncounted, in the kernel's
//! receive buffer — so under `block` it drops and counts
//! (`reason="full_udp"`). Every drop is counted by reason.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::{QueueConfig, WhenFull};
use crate::record::Record;
pub(crate) mod deliver;
pub(crate) mod spill;

use spill::{SpillError, SpillLog, SpillOptions};

pub(crate) use crate::telemetry::QueueMetrics;

/// A route's spill log, shared by the generations of a route across
/// reloads (one log per directory).
///
/// Every disk operation (append, fsync, read, acknowledge) runs on
/// tokio's blocking pool ([`tokio::task::spawn_blocking`]), never on an
/// async worker, and async code never takes `state`'s lock: an fsync that
/// takes seconds holds up only the reader waiting for it (backpressure),
/// not the other listeners and routes.
pub(crate) struct SpillShared {
    state: Mutex<SpillState>,
    durable: bool,
    fsync: spill::Fsync,
    /// Records in the log not yet acknowledged, plus those being appended:
    /// while any, new records follow them to disk (order is kept).
    pending: AtomicU64,
    /// Appended since the last [`RouteQueue::flush_spill`].
    dirty: AtomicBool,
}

struct SpillState {
    log: SpillLog,
    scratch: Vec<u8>,
}

impl SpillShared {
    /// Open the log in `dir`; what it recovered is counted in `metrics`.
    pub(crate) fn open(
        dir: &std::path::Path,
        config: &crate::config::SpillConfig,
        metrics: &QueueMetrics,
    ) -> Result<SpillShared, SpillError> {
        let (log, recovery) = SpillLog::open(
            dir,
            SpillOptions {
                segment_bytes: config.segment_bytes,
                max_bytes: config.max_bytes,
                fsync: config.fsync,
            },
        )?;
        // Records lost in corrupt regions before the tail are counted as
        // the reader passes them (the sequence-number gaps).
        metrics.spill_corrupt.inc_by(recovery.truncated_records);
        metrics.spill_pending.set(recovery.pending_records as i64);
        if recovery.pending_records > 0 || recovery.corrupt_regions > 0 {
            tracing::info!(dir = %dir.display(), pending = recovery.pending_records, corrupt_regions = recovery.corrupt_regions, lost = recovery.lost_records + recovery.truncated_records, truncated_bytes = recovery.truncated_bytes, upgraded = recovery.upgraded_records, "spill log opened: pending records are delivered before new ones");
        }
        Ok(SpillShared {
            state: Mutex::new(SpillState {
                log,
                scratch: Vec::new(),
            }),
            durable: config.durable,
            fsync: config.fsync,
            pending: AtomicU64::new(recovery.pending_records),
            dirty: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpillState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bytes a queued record costs beyond its payload (the record, the deque slot).
pub(crate) const RECORD_OVERHEAD: usize = 64;

fn cost(r: &Record) -> usize {
    r.payload.text_len() + RECORD_OVERHEAD + r.kafka.as_ref().map_or(0, |k| k.bytes())
}

/// What happened to a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Dropped (and counted) because the queue was full.
    Dropped,
    /// The queue is closed (shutting down); counted.
    Closed,
}

struct Inner {
    records: VecDeque<Record>,
    /// Sum of [`cost`] over `records`.
    bytes: usize,
    closed: bool,
    /// The deque a worker emptied, to take `records`' place the next time
    /// it is taken whole: a fresh one would grow by doubling, moving every
    /// record again (and faulting new pages) as a full queue refills.
    emptied: VecDeque<Record>,
}

impl Inner {
    /// Is there room for a record of `size` bytes? An empty queue takes
    /// any one record, so a record over `max_bytes` is not refused forever.
    #[inline]
    fn has_room(&self, size: usize, capacity: usize, max_bytes: usize) -> bool {
        self.records.is_empty() || (self.records.len() < capacity && self.bytes + size <= max_bytes)
    }

    /// Keep `spare`, an emptied buffer, for the deque after next; or, when
    /// it is the larger and nothing was pushed since the deque was taken,
    /// for the next one (that one kept for after): the queue refills into
    /// a buffer already grown to hold it, not one grown again by doubling.
    fn keep_emptied(&mut self, spare: VecDeque<Record>) {
        if self.records.is_empty() && spare.capacity() > self.records.capacity() {
            self.emptied = std::mem::replace(&mut self.records, spare);
        } else {
            self.emptied = spare;
        }
    }

    fn pop_front(&mut self) -> Option<Record> {
        let r = self.records.pop_front()?;
        self.bytes = self.bytes.saturating_sub(cost(&r));
        Some(r)
    }
}

pub(crate) struct RouteQueue {
    inner: Mutex<Inner>,
    capacity: usize,
    max_bytes: usize,
    block_timeout: Option<Duration>,
    when_full: WhenFull,
    not_empty: Notify,
    not_full: Notify,
    metrics: QueueMetrics,
    /// Records the sink worker took and has not finished with: lost too if
    /// the shutdown deadline passes.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Of those, records carrying a source's ack (a Kafka offset).
    in_flight_acked: std::sync::atomic::AtomicUsize,
    /// The disk log behind this queue, if it spills.
    spill: Option<std::sync::Arc<SpillShared>>,
    /// The batch in flight came from the spill log (ack it when done).
    batch_from_spill: std::sync::atomic::AtomicBool,
    /// The token of that batch's read: its ack covers exactly it.
    spill_read: Mutex<Option<spill::ReadToken>>,
}

impl RouteQueue {
    /// A queue backed by `spill` (the route's log) when its config spills.
    pub(crate) fn with_spill(
        config: &QueueConfig,
        metrics: QueueMetrics,
        spill: Option<std::sync::Arc<SpillShared>>,
    ) -> Self {
        let mut q = RouteQueue::new(config, metrics);
        q.spill = spill;
        q
    }

    pub(crate) fn new(config: &QueueConfig, metrics: QueueMetrics) -> Self {
        RouteQueue {
            inner: Mutex::new(Inner {
                records: VecDeque::with_capacity(config.max_events.min(4096)),
                bytes: 0,
                closed: false,
                emptied: VecDeque::new(),
            }),
            capacity: config.max_events,
            max_bytes: config.max_bytes,
            block_timeout: config.block_timeout,
            when_full: config.when_full,
            not_empty: Notify::new(),
            not_full: Notify::new(),
            metrics,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            in_flight_acked: std::sync::atomic::AtomicUsize::new(0),
            spill: None,
            batch_from_spill: std::sync::atomic::AtomicBool::new(false),
            spill_read: Mutex::new(None),
        }
    }

    /// The worker is writing the `batch` it popped.
    pub(crate) fn begin_batch(&self, batch: &[Record]) {
        let acked = batch.iter().filter(|r| r.ack.is_some()).count();
        self.in_flight_acked.store(acked, Ordering::SeqCst);
        self.in_flight.store(batch.len(), Ordering::SeqCst);
    }

    /// The worker is done with its batch (written, rejected or given up):
    /// a batch from the spill log is acknowledged there (on the blocking
    /// pool: the ack may be fsynced).
    pub(crate) async fn end_batch(&self) {
        self.in_flight.store(0, Ordering::SeqCst);
        self.in_flight_acked.store(0, Ordering::SeqCst);
        if !self.batch_from_spill.swap(false, Ordering::SeqCst) {
            return;
        }
        let Some(sp) = &self.spill else {
            return;
        };
        let Some(token) = self
            .spill_read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let shared = sp.clone();
        let acked = tokio::task::spawn_blocking(move || {
            let mut st = shared.lock();
            let before = st.log.pending();
            // Only this batch: another generation's worker may still hold
            // an earlier one read from the same log.
            let result = st.log.ack_read(token);
            (
                before.saturating_sub(st.log.pending()),
                st.log.pending(),
                result,
            )
        })
        .await;
        match acked {
            Ok((acked, pending, result)) => {
                if let Err(e) = result {
                    // Not acknowledged: replayed after a restart (at least once).
                    tracing::warn!(error = %e, "spill log: ack failed");
                }
                sp.pending.fetch_sub(acked, Ordering::SeqCst);
                self.metrics.spill_pending.set(pending as i64);
            }
            Err(e) => tracing::warn!(error = %e, "spill log: ack task failed"),
        }
    }

    /// A reader finished a batch of frames: under `fsync = "batch"`, force
    /// what it spilled to disk (on the blocking pool; the reader waits).
    pub(crate) async fn flush_spill(&self) {
        let Some(sp) = &self.spill else {
            return;
        };
        if sp.fsync != spill::Fsync::OnFlush || !sp.dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let shared = sp.clone();
        match tokio::task::spawn_blocking(move || shared.lock().log.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "spill log: fsync failed"),
            Err(e) => tracing::warn!(error = %e, "spill log: fsync task failed"),
        }
    }

    /// Push a reader's records on a spilling route, in order: to memory
    /// while there is room and nothing waits on disk (unless durable),
    /// then to the log, appended (and synced as `fsync` says) on the
    /// blocking pool while the reader waits. Returns (queued, closed).
    async fn push_spilling(&self, sp: &Arc<SpillShared>, records: &mut Vec<Record>) -> (u64, u64) {
        let mut to_disk = Vec::new();
        let (mut in_memory, closed) = (0u64, 0u64);
        {
            let mut inner = self.lock();
            for record in records.drain(..) {
                if inner.closed {
                    // Shutting down: the log is still open, so the record
                    // waits there for the next start (only a failed append
                    // loses it, counted by `spill_append`).
                    to_disk.push(record);
                } else if !to_disk.is_empty()
                    || sp.durable
                    || sp.pending.load(Ordering::SeqCst) > 0
                    || !inner.has_room(cost(&record), self.capacity, self.max_bytes)
                {
                    to_disk.push(record);
                } else {
                    inner.bytes += cost(&record);
                    inner.records.push_back(record);
                    in_memory += 1;
                }
            }
        }
        if in_memory > 0 {
            self.metrics.pushed.inc_by(in_memory);
            self.not_empty.notify_one();
        }
        if to_disk.is_empty() {
            return (in_memory, closed);
        }
        (in_memory + self.spill_append(sp, to_disk).await, closed)
    }

    /// Append `records` to the spill log; what it refused is counted
    /// (`spill_full`, `spill_error`). Returns how many were written.
    async fn spill_append(&self, sp: &Arc<SpillShared>, records: Vec<Record>) -> u64 {
        let n = records.len() as u64;
        // Seen at once by other readers: their records follow these.
        sp.pending.fetch_add(n, Ordering::SeqCst);
        let shared = sp.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut st = shared.lock();
            let SpillState { log, scratch } = &mut *st;
            let mut written = 0;
            let mut error = None;
            while written < records.len() {
                match log.append(&records[written..], scratch) {
                    Ok(k) => written += k,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            if let Err(e) = log.maybe_sync() {
                tracing::warn!(error = %e, "spill log: fsync failed");
            }
            (written as u64, error, log.pending())
        })
        .await;
        let (written, error, pending) = match result {
            Ok(r) => r,
            Err(e) => (
                0,
                Some(SpillError::Io {
                    path: std::path::PathBuf::from("(spill task)"),
                    source: std::io::Error::other(e.to_string()),
                }),
                0,
            ),
        };
        let refused = n - written;
        sp.pending.fetch_sub(refused, Ordering::SeqCst);
        if written > 0 {
            sp.dirty.store(true, Ordering::SeqCst);
            self.metrics.spilled.inc_by(written);
            self.metrics.pushed.inc_by(written);
            self.metrics.spill_pending.set(pending as i64);
            self.not_empty.notify_one();
        }
        match error {
            None => {}
            Some(SpillError::Full { .. }) => {
                self.metrics.dropped_spill_full.inc_by(refused);
            }
            Some(e) => {
                self.metrics.dropped_spill_error.inc_by(refused);
                static LOG: crate::log_limit::LogLimiter =
                    crate::log_limit::LogLimiter::new(10_000);
                if let Some(suppressed) = LOG.allow() {
                    tracing::error!(error = %e, records = refused, suppressed, "spill log write failed: records dropped");
                }
            }
        }
        written
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic while holding it; the data (a deque)
        // is still consistent, so keep going rather than take the process down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Push without waiting (UDP, and the fast path of every push).
    /// (A spilling route's records go through [`RouteQueue::push`].)
    pub(crate) fn try_push(&self, record: Record, may_wait: bool) -> Result<Pushed, Record> {
        let mut inner = self.lock();
        let pushed = self.push_locked(&mut inner, record, may_wait);
        drop(inner);
        if let Ok(Pushed::Queued) = pushed {
            self.metrics.pushed.inc();
            self.not_empty.notify_one();
        }
        pushed
    }

    /// Push every record of `records` (a reader's batch for this route), in
    /// order, under one lock and with one wake-up of the sink; `records` is
    /// left empty. Each record is treated as [`RouteQueue::push`] treats it:
    /// under `block` (and `may_wait`) the rest waits for room.
    pub(crate) async fn push_all(&self, records: &mut Vec<Record>, may_wait: bool) {
        if let Some(sp) = &self.spill {
            self.push_spilling(sp, records).await;
            return;
        }
        // A full `block` queue: the rest goes one by one, waiting for room.
        if let Some((record, rest)) = self.push_all_now(records, may_wait) {
            self.push(record, may_wait).await;
            for record in rest {
                self.push(record, may_wait).await;
            }
        }
    }

    /// [`RouteQueue::push_all`] under one lock, without waiting: under
    /// `block` (and `may_wait`), the first record that must wait for room
    /// and those after it come back.
    fn push_all_now<'r>(
        &self,
        records: &'r mut Vec<Record>,
        may_wait: bool,
    ) -> Option<(Record, std::vec::Drain<'r, Record>)> {
        // The usual case: an open queue with room for all of them takes
        // them in one move (each record tested, moved into `push_locked`
        // and pushed alone cost more than its share of the copy). Room
        // for all is room for each in turn, so the result is the same.
        let total: usize = records.iter().map(cost).sum();
        let mut inner = self.lock();
        let mut queued = 0u64;
        let mut blocked = None;
        let all_fit = !inner.closed
            && inner.records.len() + records.len() <= self.capacity
            && inner.bytes + total <= self.max_bytes;
        if all_fit {
            queued = records.len() as u64;
            inner.bytes += total;
            inner.records.extend(records.drain(..));
        }
        let mut rest = records.drain(..);
        if !all_fit {
            for record in rest.by_ref() {
                match self.push_locked(&mut inner, record, may_wait) {
                    Ok(Pushed::Queued) => queued += 1,
                    Ok(_) => {}
                    Err(record) => {
                        blocked = Some(record);
                        break;
                    }
                }
            }
        }
        drop(inner);
        if queued > 0 {
            self.metrics.pushed.inc_by(queued);
            self.not_empty.notify_one();
        }
        blocked.map(|record| (record, rest))
    }

    /// [`RouteQueue::try_push`] without a spill log, under the caller's
    /// lock; counts drops, not pushes (the caller does).
    fn push_locked(
        &self,
        inner: &mut Inner,
        record: Record,
        may_wait: bool,
    ) -> Result<Pushed, Record> {
        let size = cost(&record);
        if inner.closed {
            self.metrics.dropped_shutdown.inc();
            return Ok(Pushed::Closed);
        }
        if !inner.has_room(size, self.capacity, self.max_bytes) {
            match self.when_full {
                WhenFull::Block if may_wait => return Err(record),
                WhenFull::Block => {
                    self.metrics.dropped_full_udp.inc();
                    return Ok(Pushed::Dropped);
                }
                WhenFull::DropNewest | WhenFull::Spill => {
                    self.metrics.dropped_full.inc();
                    return Ok(Pushed::Dropped);
                }
                WhenFull::DropOldest => {
                    let mut evicted = 0;
                    while !inner.has_room(size, self.capacity, self.max_bytes) {
                        if inner.pop_front().is_none() {
                            break;
                        }
                        evicted += 1;
                    }
                    self.metrics.dropped_oldest.inc_by(evicted);
                }
            }
        }
        inner.bytes += size;
        inner.records.push_back(record);
        Ok(Pushed::Queued)
    }

    /// Push; under `block` (and `may_wait`) wait for room, for at most
    /// `block_timeout` when one is set (then the record is dropped and
    /// counted as `block_timeout`).
    pub(crate) async fn push(&self, record: Record, may_wait: bool) -> Pushed {
        if let Some(sp) = &self.spill {
            return match self.push_spilling(sp, &mut vec![record]).await {
                (1, _) => Pushed::Queued,
                (_, 1) => Pushed::Closed,
                _ => Pushed::Dropped,
            };
        }
        let mut record = match self.try_push(record, may_wait) {
            Ok(p) => return p,
            Err(r) => r,
        };
        let deadline = self.block_timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            // Register interest before re-checking, so a pop in between is not missed.
            notified.as_mut().enable();
            record = match self.try_push(record, may_wait) {
                Ok(p) => return p,
                Err(r) => r,
            };
            match deadline {
                None => notified.await,
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        // One last chance: room may have come with the deadline.
                        return match self.try_push(record, may_wait) {
                            Ok(p) => p,
                            Err(_) => {
                                self.metrics.dropped_block_timeout.inc();
                                Pushed::Dropped
                            }
                        };
                    }
                }
            }
        }
    }

    /// Wait until records are available, then move up to `max` of them into
    /// `out`. With `linger`, wait up to that long for a full batch. Returns
    /// false when the queue is closed and empty.
    pub(crate) async fn pop_batch(
        &self,
        out: &mut Vec<Record>,
        max: usize,
        linger: Duration,
    ) -> bool {
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (len, closed) = {
                let inner = self.lock();
                (inner.records.len(), inner.closed)
            };
            // Memory first: what is there is older than what was spilled.
            if len == 0 {
                if let Some(sp) = &self.spill {
                    if sp.pending.load(Ordering::SeqCst) > 0 {
                        let shared = sp.clone();
                        let read = tokio::task::spawn_blocking(move || {
                            let mut st = shared.lock();
                            let _ = st.log.maybe_sync();
                            let mut got = Vec::new();
                            let result = if st.log.unread() > 0 {
                                st.log.read_batch_tracked(max, &mut got)
                            } else {
                                Ok(None)
                            };
                            (got, st.log.take_lost(), result)
                        })
                        .await;
                        match read {
                            Ok((mut got, lost, result)) => {
                                let token = match result {
                                    Ok(token) => token,
                                    Err(e) => {
                                        tracing::error!(error = %e, "spill log read failed");
                                        None
                                    }
                                };
                                *self.spill_read.lock().unwrap_or_else(|p| p.into_inner()) = token;
                                self.metrics.spill_corrupt.inc_by(lost);
                                if !got.is_empty() {
                                    let n = got.len();
                                    out.append(&mut got);
                                    self.batch_from_spill.store(true, Ordering::SeqCst);
                                    self.metrics.popped.inc_by(n as u64);
                                    return true;
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "spill log read task failed"),
                        }
                    }
                }
            }
            if len == 0 && closed {
                return false;
            }
            if len > 0 {
                if len < max && !closed && !linger.is_zero() {
                    let _ = tokio::time::timeout(linger, self.wait_for(max)).await;
                }
                let mut inner = self.lock();
                let n = inner.records.len().min(max);
                if n == inner.records.len() {
                    // All of it (the usual case when the sink keeps up):
                    // the deque is taken whole, so readers pushing wait for
                    // a pointer swap, not for n moves.
                    let fresh = std::mem::take(&mut inner.emptied);
                    let mut all = std::mem::replace(&mut inner.records, fresh);
                    inner.bytes = 0;
                    drop(inner);
                    if out.is_empty() {
                        // The deque's buffer becomes the batch (no record
                        // moved, unless the deque wrapped), and the batch's
                        // emptied buffer a deque.
                        let spare = VecDeque::from(std::mem::replace(out, Vec::from(all)));
                        self.lock().keep_emptied(spare);
                    } else {
                        out.extend(all.drain(..));
                        self.lock().emptied = all;
                    }
                } else {
                    // The oldest n, in one move (not popped one by one).
                    let taken: usize = inner.records.range(..n).map(cost).sum();
                    inner.bytes = inner.bytes.saturating_sub(taken);
                    out.extend(inner.records.drain(..n));
                    drop(inner);
                }
                self.metrics.popped.inc_by(n as u64);
                self.not_full.notify_waiters();
                return true;
            }
            notified.await;
        }
    }

    async fn wait_for(&self, n: usize) {
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if inner.records.len() >= n || inner.closed {
                    return;
                }
            }
            notified.await;
        }
    }

    /// No more pushes: the sink worker drains what is left and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_empty.notify_one();
        self.not_full.notify_waiters();
    }

    /// Drop what is queued and what the worker still holds (the shutdown
    /// deadline passed); returns how many records were lost, all counted
    /// (`reason="shutdown"`), and how many were not. When `sources_closed`
    /// (every listener has stopped, so the Kafka consumers made their last
    /// commit and are gone), a record carrying an ack is not lost: its
    /// offset was not committed, it is read again at the next start; it
    /// is counted apart (`reason="uncommitted"`), the second figure.
    pub(crate) fn abandon(&self, sources_closed: bool) -> (usize, usize) {
        let mut inner = self.lock();
        let in_flight = self.in_flight.swap(0, std::sync::atomic::Ordering::SeqCst);
        let in_flight_acked = self.in_flight_acked.swap(0, Ordering::SeqCst);
        // A batch from the spill log is not lost: unacknowledged, it stays
        // on disk for the next start, with everything else spilled.
        self.spill_read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let from_spill = self
            .batch_from_spill
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(sp) = &self.spill {
            let pending = sp.pending.load(Ordering::SeqCst);
            if pending > 0 {
                tracing::info!(
                    pending,
                    "spill log: records left on disk for the next start"
                );
            }
        }
        let n = inner.records.len() + if from_spill { 0 } else { in_flight };
        let acked = if sources_closed {
            inner.records.iter().filter(|r| r.ack.is_some()).count()
                + if from_spill { 0 } else { in_flight_acked }
        } else {
            0
        };
        inner.records.clear();
        inner.bytes = 0;
        inner.closed = true;
        drop(inner);
        let lost = n - acked;
        self.metrics.dropped_shutdown.inc_by(lost as u64);
        self.metrics.released_uncommitted.inc_by(acked as u64);
        self.not_full.notify_waiters();
        (lost, acked)
    }
}

#[cfg(test)]
mod tests;
