use super::*;
use std::sync::Arc;

fn rec(i: i64) -> Record {
    Record {
        payload: i.to_string().into(),
        time_nanos: i,
        key: None,
        kafka: None,
        ack: None,
    }
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

fn spilling(dir: &std::path::Path, max: usize, durable: bool) -> (Arc<RouteQueue>, QueueMetrics) {
    let config = QueueConfig {
        spill: Some(crate::config::SpillConfig {
            durable,
            max_bytes: 1 << 20,
            segment_bytes: 4096,
            fsync: spill::Fsync::Never,
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
        q.begin_batch(&batch);
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
        q.begin_batch(&batch);
        q.end_batch().await;
        assert!(q.pop_batch(&mut batch, 4, Duration::ZERO).await);
        q.begin_batch(&batch);
        // The deadline passes with 4 in flight and 2 unread: none lost.
        assert_eq!(q.abandon(false), (0, 0));
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
        payload: "x".repeat(1000).into(),
        time_nanos: 0,
        key: None,
        kafka: None,
        ack: None,
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

/// Every record popped, three at a time, until the queue is closed and
/// empty.
async fn drain(q: &RouteQueue) -> Vec<Record> {
    let mut got = Vec::new();
    let mut batch = Vec::new();
    while q.pop_batch(&mut batch, 3, Duration::ZERO).await {
        got.append(&mut batch);
    }
    got
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
    let got = drain(&q).await;
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
    let got = drain(&q).await;
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
        q.begin_batch(&out);
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
    assert_eq!(q2.abandon(false), (1, 0));
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
    q.begin_batch(&batch);
    assert_eq!(q.abandon(false), (3, 0));
    assert_eq!(m.dropped_shutdown.get(), 3);
    // A batch the worker finished is not counted again.
    let (q, _) = queue(10, WhenFull::DropNewest);
    q.push(rec(1), false).await;
    let mut batch = Vec::new();
    assert!(q.pop_batch(&mut batch, 1, std::time::Duration::ZERO).await);
    q.begin_batch(&batch);
    q.end_batch().await;
    assert_eq!(q.abandon(false), (0, 0));
}

/// At the shutdown deadline, once every listener has stopped (its Kafka
/// consumer made its last commit), records carrying an ack, queued or in
/// the worker's batch, are not lost: their offsets were not committed,
/// they are read again. They are counted apart (`uncommitted`); records
/// without one are lost as before. Before the listeners stopped, an ack
/// released now could still be committed: all of it counts as lost.
#[tokio::test]
async fn abandon_does_not_count_uncommitted_kafka_records_as_lost() {
    struct Nobody;
    impl crate::record::AckTarget for Nobody {
        fn done(&self, _: u64, _: i64) {}
    }
    let acked = |i: i64| Record {
        ack: Some(crate::record::Ack::new(std::sync::Arc::new(Nobody), 0, i)),
        ..rec(i)
    };
    for (sources_closed, want) in [(true, (1, 4)), (false, (5, 0))] {
        let (q, m) = queue(10, WhenFull::DropNewest);
        for i in 0..2 {
            q.push(acked(i), false).await;
        }
        q.push(rec(2), false).await;
        for i in 3..5 {
            q.push(acked(i), false).await;
        }
        let mut batch = Vec::new();
        assert!(q.pop_batch(&mut batch, 2, std::time::Duration::ZERO).await);
        q.begin_batch(&batch);
        assert_eq!(q.abandon(sources_closed), want, "{sources_closed}");
        assert_eq!(m.dropped_shutdown.get(), want.0 as u64);
        assert_eq!(m.released_uncommitted.get(), want.1 as u64);
    }
}

/// att8: README documents a queue's byte bound as "payload + 64 per
/// record" (`[routes.queue] max_bytes`). A record the reader framed for an
/// Elasticsearch sink (its `_bulk` action line and LF written into the
/// slab beside it) must cost the same as the same document unframed: the
/// framing is the sink's, not the queue's. On slab8 `cost` counts
/// `payload.held()` (action line + document + LF), so the same
/// `max_bytes` holds about a quarter fewer documents of an ES route than
/// on main (a 250-byte document with its ~95-byte action line), and
/// `sluice_queue_bytes` reports bytes no other sink's records count.
#[test]
fn a_framed_record_costs_its_document_as_documented() {
    let action = "{\"create\":{\"_index\":\"logs-2026.11.24\",\"_id\":\"0123456789abcdef0123456789abcdef\"}}\n";
    let doc = "{\"m\":\"x\"}";
    let text = format!("{action}{doc}\n");
    let slab = Arc::new(crate::record::Slab::new(text.clone(), None));
    let mut framed =
        crate::record::Payload::staged(0, action.len(), action.len() + doc.len(), text.len(), 7);
    framed.attach(&slab);
    assert_eq!(&*framed, doc);
    let record = |payload: crate::record::Payload| Record {
        payload,
        time_nanos: 0,
        key: None,
        kafka: None,
        ack: None,
    };
    let plain = record(doc.into());
    assert_eq!(cost(&plain), doc.len() + RECORD_OVERHEAD);
    assert_eq!(
        cost(&record(framed)),
        cost(&plain),
        "a framed document costs its action line too"
    );
}
