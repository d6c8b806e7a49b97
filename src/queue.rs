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
use crate::spill::{SpillError, SpillLog, SpillOptions};

pub use crate::telemetry::QueueMetrics;

/// A route's spill log, shared by the generations of a route across
/// reloads (one log per directory).
///
/// Every disk operation (append, fsync, read, acknowledge) runs on
/// tokio's blocking pool ([`tokio::task::spawn_blocking`]), never on an
/// async worker, and async code never takes `state`'s lock: an fsync that
/// takes seconds holds up only the reader waiting for it (backpressure),
/// not the other listeners and routes.
pub struct SpillShared {
    state: Mutex<SpillState>,
    durable: bool,
    fsync: crate::spill::Fsync,
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
    pub fn open(
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
pub const RECORD_OVERHEAD: usize = 64;

fn cost(r: &Record) -> usize {
    r.payload.len() + RECORD_OVERHEAD
}

/// What happened to a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
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
    fn has_room(&self, size: usize, capacity: usize, max_bytes: usize) -> bool {
        self.records.is_empty() || (self.records.len() < capacity && self.bytes + size <= max_bytes)
    }

    fn pop_front(&mut self) -> Option<Record> {
        let r = self.records.pop_front()?;
        self.bytes = self.bytes.saturating_sub(cost(&r));
        Some(r)
    }
}

pub struct RouteQueue {
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
    /// The disk log behind this queue, if it spills.
    spill: Option<std::sync::Arc<SpillShared>>,
    /// The batch in flight came from the spill log (ack it when done).
    batch_from_spill: std::sync::atomic::AtomicBool,
    /// The token of that batch's read: its ack covers exactly it.
    spill_read: Mutex<Option<crate::spill::ReadToken>>,
    /// Emptied payload buffers of written records, for readers to encode
    /// into: a buffer made on a reader's thread and freed on the worker's
    /// cost the allocator a cross-thread free and its reader a fresh
    /// allocation per record. At most [`MAX_SPARE`] buffers and
    /// [`MAX_SPARE_BYTES`], none over [`MAX_SPARE_CAPACITY`] bytes.
    spare: Mutex<SparePool>,
}

/// Spare buffers a queue keeps (see `RouteQueue::spare`): more than a
/// default queue (10,000 records) and the sink's batch in flight (5,000)
/// together, so that at steady state no buffer is freed only to be
/// allocated again (tcp-full had 20 % fewer minor faults than with 8,192).
pub const MAX_SPARE: usize = 16384;
/// The most bytes of spare buffers a queue keeps.
pub const MAX_SPARE_BYTES: usize = 16 * 1024 * 1024;
/// Larger buffers (a rare long message) are freed, not kept.
pub const MAX_SPARE_CAPACITY: usize = 2048;

/// A queue's spare buffers and the sum of their capacities.
#[derive(Default)]
struct SparePool {
    buffers: Vec<String>,
    bytes: usize,
}

impl SparePool {
    /// Whether a buffer of `capacity` bytes fits within the bounds.
    fn has_room(&self, capacity: usize) -> bool {
        capacity <= MAX_SPARE_CAPACITY
            && self.buffers.len() < MAX_SPARE
            && self.bytes + capacity <= MAX_SPARE_BYTES
    }

    fn keep(&mut self, mut buffer: String) {
        buffer.clear();
        self.bytes += buffer.capacity();
        self.buffers.push(buffer);
    }
}

impl RouteQueue {
    /// A queue backed by `spill` (the route's log) when its config spills.
    pub fn with_spill(
        config: &QueueConfig,
        metrics: QueueMetrics,
        spill: Option<std::sync::Arc<SpillShared>>,
    ) -> Self {
        let mut q = RouteQueue::new(config, metrics);
        q.spill = spill;
        q
    }

    pub fn new(config: &QueueConfig, metrics: QueueMetrics) -> Self {
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
            spill: None,
            batch_from_spill: std::sync::atomic::AtomicBool::new(false),
            spill_read: Mutex::new(None),
            spare: Mutex::new(SparePool::default()),
        }
    }

    /// The worker is done with `batch`: the buffers of its records are
    /// emptied and kept for readers (within the pool's bounds); the rest
    /// is freed. `batch` is left empty.
    pub fn recycle(&self, batch: &mut Vec<Record>) {
        {
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            for r in batch.iter_mut() {
                if spare.has_room(r.payload.capacity()) {
                    spare.keep(std::mem::take(&mut r.payload));
                }
            }
        }
        // Freed outside the lock.
        batch.clear();
    }

    /// A reader's batch is pushed: the spare buffers it did not use come
    /// back (within the pool's bounds; the rest is freed), so no reader
    /// holds buffers between batches.
    pub fn give_back(&self, spare: &mut Vec<String>) {
        {
            let mut pool = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            for buffer in spare.iter_mut() {
                if pool.has_room(buffer.capacity()) {
                    pool.keep(std::mem::take(buffer));
                }
            }
        }
        // Freed outside the lock.
        spare.clear();
    }

    /// Move up to `n` spare buffers into `out`.
    pub fn take_spare(&self, out: &mut Vec<String>, n: usize) {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        let from = spare.buffers.len().saturating_sub(n);
        let taken: usize = spare
            .buffers
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(String::capacity)
            .sum();
        spare.bytes = spare.bytes.saturating_sub(taken);
        out.extend(spare.buffers.drain(from..));
    }

    /// The worker is writing `n` records it popped.
    pub fn begin_batch(&self, n: usize) {
        self.in_flight.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The worker is done with its batch (written, rejected or given up):
    /// a batch from the spill log is acknowledged there (on the blocking
    /// pool: the ack may be fsynced).
    pub async fn end_batch(&self) {
        self.in_flight.store(0, Ordering::SeqCst);
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
    pub async fn flush_spill(&self) {
        let Some(sp) = &self.spill else {
            return;
        };
        if sp.fsync != crate::spill::Fsync::OnFlush || !sp.dirty.swap(false, Ordering::SeqCst) {
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
    pub fn try_push(&self, record: Record, may_wait: bool) -> Result<Pushed, Record> {
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
    pub async fn push_all(&self, records: &mut Vec<Record>, may_wait: bool) {
        if let Some(sp) = &self.spill {
            self.push_spilling(sp, records).await;
            return;
        }
        let mut rest = records.drain(..);
        let blocked = {
            let mut inner = self.lock();
            let mut queued = 0u64;
            let mut blocked = None;
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
            drop(inner);
            if queued > 0 {
                self.metrics.pushed.inc_by(queued);
                self.not_empty.notify_one();
            }
            blocked
        };
        // A full `block` queue: the rest goes one by one, waiting for room.
        if let Some(record) = blocked {
            self.push(record, may_wait).await;
            for record in rest {
                self.push(record, may_wait).await;
            }
        }
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
    pub async fn push(&self, record: Record, may_wait: bool) -> Pushed {
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
    pub async fn pop_batch(&self, out: &mut Vec<Record>, max: usize, linger: Duration) -> bool {
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
                    out.extend(all.drain(..));
                    self.lock().emptied = all;
                } else {
                    for _ in 0..n {
                        if let Some(r) = inner.pop_front() {
                            out.push(r);
                        }
                    }
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
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_empty.notify_one();
        self.not_full.notify_waiters();
    }

    /// Drop everything left (shutdown deadline passed); returns how many.
    /// Drop what is queued and what the worker still holds (the shutdown
    /// deadline passed); returns how many records that was, all counted.
    pub fn abandon(&self) -> usize {
        let mut inner = self.lock();
        let in_flight = self.in_flight.swap(0, std::sync::atomic::Ordering::SeqCst);
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
        inner.records.clear();
        inner.bytes = 0;
        inner.closed = true;
        drop(inner);
        self.metrics.dropped_shutdown.inc_by(n as u64);
        self.not_full.notify_waiters();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rec(i: i64) -> Record {
        Record {
            payload: i.to_string(),
            time_nanos: i,
            key: None,
        }
    }

    /// A written batch's buffers come back emptied, with their
    /// allocations, for readers to encode into; oversized buffers and those
    /// beyond the pool's bound are freed, and the batch is left empty.
    #[test]
    fn written_buffers_are_kept_emptied_and_bounded() {
        let (q, _) = queue(10, WhenFull::DropNewest);
        let mut batch: Vec<Record> = (0..3).map(rec).collect();
        batch[1].payload.reserve(MAX_SPARE_CAPACITY + 1);
        let kept: Vec<(usize, usize)> = [&batch[0], &batch[2]]
            .iter()
            .map(|r| (r.payload.as_ptr() as usize, r.payload.capacity()))
            .collect();
        q.recycle(&mut batch);
        assert!(batch.is_empty());
        let mut out = Vec::new();
        q.take_spare(&mut out, 10);
        assert!(out.iter().all(String::is_empty));
        let mut got: Vec<(usize, usize)> = out
            .iter()
            .map(|b| (b.as_ptr() as usize, b.capacity()))
            .collect();
        got.sort_unstable();
        let mut want = kept;
        want.sort_unstable();
        assert_eq!(got, want, "the oversized buffer is not kept");
        // Bounded: a pool at MAX_SPARE takes no more.
        let mut many: Vec<Record> = (0..MAX_SPARE as i64 + 5).map(rec).collect();
        q.recycle(&mut many);
        let mut more: Vec<Record> = (0..5).map(rec).collect();
        q.recycle(&mut more);
        let mut all = Vec::new();
        q.take_spare(&mut all, usize::MAX);
        assert_eq!(all.len(), MAX_SPARE);
        // take_spare takes at most n.
        q.recycle(&mut (0..4).map(rec).collect());
        let mut two = Vec::new();
        q.take_spare(&mut two, 2);
        assert_eq!(two.len(), 2);
        // What a reader did not use comes back, within the bound.
        q.give_back(&mut two);
        assert!(two.is_empty());
        let mut back = Vec::new();
        q.take_spare(&mut back, usize::MAX);
        assert_eq!(back.len(), 4);
        let mut over: Vec<String> = (0..MAX_SPARE + 3).map(|_| String::new()).collect();
        q.give_back(&mut over);
        assert!(over.is_empty());
        q.take_spare(&mut back, usize::MAX);
        assert_eq!(back.len(), 4 + MAX_SPARE);
        // Bounded in bytes too: buffers of the largest kept capacity fill
        // the pool's bytes before its count.
        let large = |_| Record {
            payload: String::with_capacity(MAX_SPARE_CAPACITY),
            time_nanos: 0,
            key: None,
        };
        let fit = MAX_SPARE_BYTES / MAX_SPARE_CAPACITY;
        assert!(fit < MAX_SPARE);
        q.recycle(&mut (0..fit + 10).map(large).collect());
        let mut big = Vec::new();
        q.take_spare(&mut big, usize::MAX);
        assert_eq!(big.len(), fit);
        // Taking them frees their bytes in the pool for others.
        q.recycle(&mut (0..fit).map(large).collect());
        q.take_spare(&mut big, usize::MAX);
        assert_eq!(big.len(), 2 * fit);
    }

    /// A batch taken whole leaves the queue a deque already grown to hold
    /// it: refilling does not reallocate (nor move records again).
    #[tokio::test]
    async fn a_queue_taken_whole_refills_without_growing() {
        let n = 6000;
        let (q, _) = queue(n, WhenFull::DropNewest);
        let mut batch = Vec::new();
        for round in 0..3 {
            q.push_all(&mut (0..n as i64).map(rec).collect(), false)
                .await;
            assert!(q.pop_batch(&mut batch, n, Duration::ZERO).await);
            assert_eq!(batch.len(), n);
            batch.clear();
            if round > 0 {
                // The deque records are pushed into now is one of the
                // two that have held n records.
                assert!(q.lock().records.capacity() >= n, "round {round}");
            }
        }
    }

    fn queue(max: usize, when_full: WhenFull) -> (Arc<RouteQueue>, QueueMetrics) {
        queue_with(QueueConfig {
            spill: None,
            max_events: max,
            max_bytes: usize::MAX,
            when_full,
            block_timeout: None,
        })
    }

    fn queue_with(config: QueueConfig) -> (Arc<RouteQueue>, QueueMetrics) {
        let m = QueueMetrics::default();
        (Arc::new(RouteQueue::new(&config, m.clone())), m)
    }

    fn spilling(
        dir: &std::path::Path,
        max: usize,
        durable: bool,
    ) -> (Arc<RouteQueue>, QueueMetrics) {
        let config = QueueConfig {
            spill: Some(crate::config::SpillConfig {
                durable,
                max_bytes: 1 << 20,
                segment_bytes: 4096,
                fsync: crate::spill::Fsync::Never,
            }),
            max_events: max,
            max_bytes: usize::MAX,
            when_full: WhenFull::Spill,
            block_timeout: None,
        };
        let m = QueueMetrics::default();
        let sp = SpillShared::open(dir, config.spill.as_ref().unwrap(), &m).unwrap();
        (
            Arc::new(RouteQueue::with_spill(
                &config,
                m.clone(),
                Some(Arc::new(sp)),
            )),
            m,
        )
    }

    /// Overflow goes to disk; while records wait there, new ones follow
    /// them (order kept); acknowledged batches leave the log.
    #[tokio::test]
    async fn spill_overflows_to_disk_in_order_and_acks() {
        let dir = tempfile::tempdir().unwrap();
        let (q, m) = spilling(dir.path(), 3, false);
        for i in 0..20 {
            assert_eq!(q.push(rec(i), true).await, Pushed::Queued);
        }
        assert_eq!((m.pushed.get(), m.spilled.get()), (20, 17));
        let mut got = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..20 {
            if !q.pop_batch(&mut batch, 4, Duration::ZERO).await || batch.is_empty() {
                break;
            }
            q.begin_batch(batch.len());
            got.append(&mut batch);
            q.end_batch().await;
            if got.len() == 20 {
                break;
            }
        }
        assert_eq!(got, (0..20).map(rec).collect::<Vec<_>>());
        assert_eq!(m.spill_pending.get(), 0);
        // Drained: new records use memory again.
        q.push(rec(20), true).await;
        assert_eq!(m.spilled.get(), 17);
    }

    /// Durable: every record goes through the log; what is not acknowledged
    /// is there after a restart (a new queue on the same directory), and
    /// abandoning at shutdown does not count it as lost.
    #[tokio::test]
    async fn durable_records_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, m) = spilling(dir.path(), 100, true);
            for i in 0..10 {
                q.push(rec(i), true).await;
            }
            assert_eq!(m.spilled.get(), 10);
            let mut batch = Vec::new();
            assert!(q.pop_batch(&mut batch, 4, Duration::ZERO).await);
            q.begin_batch(batch.len());
            q.end_batch().await;
            assert!(q.pop_batch(&mut batch, 4, Duration::ZERO).await);
            q.begin_batch(4);
            // The deadline passes with 4 in flight and 2 unread: none lost.
            assert_eq!(q.abandon(), 0);
        }
        let (q, m) = spilling(dir.path(), 100, true);
        assert_eq!(m.spill_pending.get(), 6);
        let mut batch = Vec::new();
        assert!(q.pop_batch(&mut batch, 10, Duration::ZERO).await);
        assert_eq!(batch, (4..10).map(rec).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_counts_the_evicted() {
        let (q, m) = queue(3, WhenFull::DropOldest);
        for i in 0..10 {
            assert_eq!(q.push(rec(i), true).await, Pushed::Queued);
        }
        assert_eq!((m.pushed.get(), m.dropped_oldest.get()), (10, 7));
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out, 10, Duration::ZERO).await);
        assert_eq!(out, vec![rec(7), rec(8), rec(9)]);
    }

    #[tokio::test]
    async fn the_byte_bound_holds_and_one_record_always_fits() {
        // Each record of "N" costs 1 + 64 bytes: 200 bytes hold 3.
        let (q, m) = queue_with(QueueConfig {
            spill: None,
            max_events: 100,
            max_bytes: 200,
            when_full: WhenFull::DropNewest,
            block_timeout: None,
        });
        for i in 0..5 {
            q.push(rec(i), true).await;
        }
        assert_eq!((m.pushed.get(), m.dropped_full.get()), (3, 2));
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out, 10, Duration::ZERO).await);
        assert_eq!(out.len(), 3);
        // Taking part of the queue, or all of it, frees exactly its bytes.
        for i in 0..3 {
            q.push(rec(i), true).await;
        }
        out.clear();
        assert!(q.pop_batch(&mut out, 2, Duration::ZERO).await);
        assert_eq!(out.len(), 2);
        for i in 0..3 {
            q.push(rec(i), true).await;
        }
        assert_eq!((m.pushed.get(), m.dropped_full.get()), (8, 3));
        out.clear();
        assert!(q.pop_batch(&mut out, 10, Duration::ZERO).await);
        assert_eq!(out.len(), 3);
        // A record larger than the whole bound still goes into an empty queue.
        let big = Record {
            payload: "x".repeat(1000),
            time_nanos: 0,
            key: None,
        };
        assert_eq!(q.push(big.clone(), true).await, Pushed::Queued);
        assert_eq!(q.push(big, true).await, Pushed::Dropped);
    }

    #[tokio::test(start_paused = true)]
    async fn block_gives_up_after_its_timeout_and_counts() {
        let (q, m) = queue_with(QueueConfig {
            spill: None,
            max_events: 1,
            max_bytes: usize::MAX,
            when_full: WhenFull::Block,
            block_timeout: Some(Duration::from_millis(500)),
        });
        assert_eq!(q.push(rec(1), true).await, Pushed::Queued);
        let started = tokio::time::Instant::now();
        assert_eq!(q.push(rec(2), true).await, Pushed::Dropped);
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert_eq!(m.dropped_block_timeout.get(), 1);
        // With room made before the deadline, the record waits and goes in.
        let q2 = q.clone();
        let popper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut out = Vec::new();
            q2.pop_batch(&mut out, 1, Duration::ZERO).await;
            out
        });
        assert_eq!(q.push(rec(3), true).await, Pushed::Queued);
        assert_eq!(popper.await.unwrap(), vec![rec(1)]);
    }

    #[tokio::test]
    async fn drop_newest_counts_drops() {
        let (q, m) = queue(2, WhenFull::DropNewest);
        for i in 0..5 {
            q.push(rec(i), true).await;
        }
        assert_eq!(m.pushed.get(), 2);
        assert_eq!(m.dropped_full.get(), 3);
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out, 10, Duration::ZERO).await);
        assert_eq!(out, vec![rec(0), rec(1)]);
    }

    #[tokio::test]
    async fn block_waits_for_room_and_keeps_order() {
        let (q, m) = queue(2, WhenFull::Block);
        let producer = {
            let q = q.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    assert_eq!(q.push(rec(i), true).await, Pushed::Queued);
                }
                q.close();
            })
        };
        let mut got = Vec::new();
        let mut batch = Vec::new();
        while q.pop_batch(&mut batch, 3, Duration::ZERO).await {
            got.append(&mut batch);
        }
        producer.await.unwrap();
        assert_eq!(got, (0..100).map(rec).collect::<Vec<_>>());
        assert_eq!(m.dropped_full.get() + m.dropped_full_udp.get(), 0);
    }

    /// A reader's batch pushed at once: in order, a full `block` queue
    /// makes the rest wait for room (nothing lost), and each full policy
    /// counts per record as a single push does.
    #[tokio::test]
    async fn push_all_keeps_order_and_treats_each_record_like_push() {
        let (q, m) = queue(4, WhenFull::Block);
        let producer = {
            let q = q.clone();
            tokio::spawn(async move {
                for chunk in (0..100).collect::<Vec<_>>().chunks(7) {
                    let mut batch: Vec<Record> = chunk.iter().map(|&i| rec(i)).collect();
                    q.push_all(&mut batch, true).await;
                    assert!(batch.is_empty());
                }
                q.close();
            })
        };
        let mut got = Vec::new();
        let mut batch = Vec::new();
        while q.pop_batch(&mut batch, 3, Duration::ZERO).await {
            got.append(&mut batch);
        }
        producer.await.unwrap();
        assert_eq!(got, (0..100).map(rec).collect::<Vec<_>>());
        assert_eq!((m.pushed.get(), m.popped.get()), (100, 100));
        assert_eq!(m.dropped_full.get() + m.dropped_full_udp.get(), 0);

        // UDP (may not wait): what does not fit is dropped and counted.
        let (q, m) = queue(3, WhenFull::Block);
        q.push_all(&mut (0..5).map(rec).collect(), false).await;
        assert_eq!((m.pushed.get(), m.dropped_full_udp.get()), (3, 2));
        let (q, m) = queue(3, WhenFull::DropNewest);
        q.push_all(&mut (0..5).map(rec).collect(), true).await;
        assert_eq!((m.pushed.get(), m.dropped_full.get()), (3, 2));
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out, 10, Duration::ZERO).await);
        assert_eq!(out, vec![rec(0), rec(1), rec(2)]);
        let (q, m) = queue(3, WhenFull::DropOldest);
        q.push_all(&mut (0..5).map(rec).collect(), true).await;
        assert_eq!((m.pushed.get(), m.dropped_oldest.get()), (5, 2));
        out.clear();
        assert!(q.pop_batch(&mut out, 10, Duration::ZERO).await);
        assert_eq!(out, vec![rec(2), rec(3), rec(4)]);
        // Closed: counted as lost at shutdown.
        q.close();
        q.push_all(&mut (0..2).map(rec).collect(), true).await;
        assert_eq!(m.dropped_shutdown.get(), 2);
    }

    /// Records that arrive after the queue closed for shutdown go to the
    /// (still open) spill log for the next start: not lost, not counted.
    #[tokio::test]
    async fn a_closed_spilling_queue_appends_late_records_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (q, m) = spilling(dir.path(), 10, true);
        q.push(rec(0), true).await;
        q.close();
        q.push_all(&mut (1..4).map(rec).collect(), true).await;
        assert_eq!(q.push(rec(4), true).await, Pushed::Queued);
        assert_eq!(m.dropped_shutdown.get(), 0, "nothing lost at shutdown");
        assert_eq!(m.spilled.get(), 5);
        drop(q);
        let (q, _) = spilling(dir.path(), 10, true);
        let mut out = Vec::new();
        while out.len() < 5 && q.pop_batch(&mut out, 10, Duration::ZERO).await {
            q.begin_batch(out.len());
            q.end_batch().await;
        }
        assert_eq!(out, (0..5).map(rec).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn block_never_waits_for_udp() {
        let (q, m) = queue(1, WhenFull::Block);
        assert_eq!(q.push(rec(1), false).await, Pushed::Queued);
        assert_eq!(q.push(rec(2), false).await, Pushed::Dropped);
        assert_eq!(m.dropped_full_udp.get(), 1);
    }

    #[tokio::test]
    async fn close_drains_then_ends_and_abandon_counts() {
        let (q, m) = queue(10, WhenFull::Block);
        q.push(rec(1), true).await;
        q.close();
        assert_eq!(q.push(rec(2), true).await, Pushed::Closed);
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out, 10, Duration::from_secs(5)).await);
        assert!(!q.pop_batch(&mut out, 10, Duration::ZERO).await);
        let (q2, m2) = queue(10, WhenFull::Block);
        q2.push(rec(1), true).await;
        assert_eq!(q2.abandon(), 1);
        assert_eq!(m2.dropped_shutdown.get(), 1);
        assert_eq!(m.dropped_shutdown.get(), 1);
    }

    /// At the shutdown deadline, the batch a worker still holds is lost too,
    /// and counted with what is queued.
    #[tokio::test]
    async fn abandon_counts_the_batch_in_flight() {
        let (q, m) = queue(10, WhenFull::DropNewest);
        for i in 0..3 {
            q.push(rec(i), false).await;
        }
        let mut batch = Vec::new();
        assert!(q.pop_batch(&mut batch, 2, std::time::Duration::ZERO).await);
        q.begin_batch(batch.len());
        assert_eq!(q.abandon(), 3);
        assert_eq!(m.dropped_shutdown.get(), 3);
        // A batch the worker finished is not counted again.
        let (q, _) = queue(10, WhenFull::DropNewest);
        q.push(rec(1), false).await;
        let mut batch = Vec::new();
        assert!(q.pop_batch(&mut batch, 1, std::time::Duration::ZERO).await);
        q.begin_batch(1);
        q.end_batch().await;
        assert_eq!(q.abandon(), 0);
    }
}
