//! One bounded queue per route, between the readers that fill it and the sink
//! worker that drains it in batches.
//!
//! When the queue is full the route's policy decides: `block` makes a TCP
//! reader wait for room (it stops reading its socket, so the sender's TCP
//! window closes: real backpressure), `drop_newest` drops the new record.
//! A UDP reader can never wait — the datagrams would only pile up and be
//! lost, uncounted, in the kernel's receive buffer — so under `block` it drops
//! and counts (`reason="full_udp"`). Every drop is counted by reason.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::config::{QueueConfig, WhenFull};
use crate::route::Record;

/// Counters of one queue, resolved once at start-up.
#[derive(Clone, Default)]
pub struct QueueMetrics {
    pub pushed: Counter,
    pub popped: Counter,
    pub dropped_full: Counter,
    pub dropped_full_udp: Counter,
    pub dropped_shutdown: Counter,
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
    closed: bool,
}

pub struct RouteQueue {
    inner: Mutex<Inner>,
    capacity: usize,
    when_full: WhenFull,
    not_empty: Notify,
    not_full: Notify,
    metrics: QueueMetrics,
    /// Records the sink worker took and has not finished with: lost too if
    /// the shutdown deadline passes.
    in_flight: std::sync::atomic::AtomicUsize,
}

impl RouteQueue {
    pub fn new(config: &QueueConfig, metrics: QueueMetrics) -> Self {
        RouteQueue {
            inner: Mutex::new(Inner {
                records: VecDeque::with_capacity(config.max_events.min(4096)),
                closed: false,
            }),
            capacity: config.max_events,
            when_full: config.when_full,
            not_empty: Notify::new(),
            not_full: Notify::new(),
            metrics,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The worker is writing `n` records it popped.
    pub fn begin_batch(&self, n: usize) {
        self.in_flight.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The worker is done with its batch (written, rejected or given up).
    pub fn end_batch(&self) {
        self.in_flight.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic while holding it; the data (a deque)
        // is still consistent, so keep going rather than take the process down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Push without waiting (UDP, and the fast path of every push).
    pub fn try_push(&self, record: Record, may_wait: bool) -> Result<Pushed, Record> {
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            self.metrics.dropped_shutdown.inc();
            return Ok(Pushed::Closed);
        }
        if inner.records.len() < self.capacity {
            inner.records.push_back(record);
            drop(inner);
            self.metrics.pushed.inc();
            self.not_empty.notify_one();
            return Ok(Pushed::Queued);
        }
        drop(inner);
        match self.when_full {
            WhenFull::Block if may_wait => Err(record),
            WhenFull::Block => {
                self.metrics.dropped_full_udp.inc();
                Ok(Pushed::Dropped)
            }
            WhenFull::DropNewest => {
                self.metrics.dropped_full.inc();
                Ok(Pushed::Dropped)
            }
        }
    }

    /// Push; under `block` (and `may_wait`) wait for room.
    pub async fn push(&self, record: Record, may_wait: bool) -> Pushed {
        let mut record = match self.try_push(record, may_wait) {
            Ok(p) => return p,
            Err(r) => r,
        };
        loop {
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            // Register interest before re-checking, so a pop in between is not missed.
            notified.as_mut().enable();
            record = match self.try_push(record, may_wait) {
                Ok(p) => return p,
                Err(r) => r,
            };
            notified.await;
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
            if len == 0 && closed {
                return false;
            }
            if len > 0 {
                if len < max && !closed && !linger.is_zero() {
                    let _ = tokio::time::timeout(linger, self.wait_for(max)).await;
                }
                let mut inner = self.lock();
                let n = inner.records.len().min(max);
                out.extend(inner.records.drain(..n));
                drop(inner);
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
        let n = inner.records.len() + self.in_flight.swap(0, std::sync::atomic::Ordering::SeqCst);
        inner.records.clear();
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

    fn queue(max: usize, when_full: WhenFull) -> (Arc<RouteQueue>, QueueMetrics) {
        let m = QueueMetrics::default();
        (
            Arc::new(RouteQueue::new(
                &QueueConfig {
                    max_events: max,
                    when_full,
                },
                m.clone(),
            )),
            m,
        )
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
        q.end_batch();
        assert_eq!(q.abandon(), 0);
    }
}
