use super::staged::{MAX_SLAB, MIN_SLAB};
use super::*;
use crate::decode::{DecodeMode, DecodeOptions};
use crate::multiline::MultilineConfig;
use crate::record::{Record, Slab, slab_size};
use crate::router::RouteMatch;
use bytes::Bytes;
use std::net::SocketAddr;
use tokio::time::Instant;

/// The per-event scratch vector is emptied without giving back its
/// allocation.
#[test]
fn recycle_keeps_the_allocation() {
    let text = String::from("x");
    let mut v: Vec<RouteMatch<'_>> = Vec::with_capacity(8);
    v.push(RouteMatch {
        route: text.len(),
        captures: None,
    });
    let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
    let r: Vec<RouteMatch<'static>> = recycle(v);
    assert!(r.is_empty());
    assert_eq!((r.as_ptr() as usize, r.capacity()), (ptr, cap));
}

/// Readers number frames from blocks of one counter: no number is
/// given twice, within a reader or across readers.
#[test]
fn frame_numbers_are_unique_across_readers() {
    let mut readers: Vec<FrameNumbers> = (0..3).map(|_| FrameNumbers::default()).collect();
    let mut seen = std::collections::HashSet::new();
    for round in 0..3 * FrameNumbers::BLOCK as usize {
        let n = readers[round % 3].next();
        assert!(seen.insert(n), "{n} given twice");
    }
}

/// A strict listener that joins: a line without PRI that opens with a
/// time (read with `pri_missing`) still continues the peer's pending
/// event, as every line without PRI did, instead of being rejected.
/// Alone, it is rejected as any frame that needs a rule.
#[test]
fn a_strict_joining_path_takes_bare_lines_opening_with_a_time() {
    fn take(path: &mut FramePath<'_>, frame: &str, out: &mut Vec<Event>) -> bool {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let frame = Bytes::copy_from_slice(frame.as_bytes());
        let fate = path.frame(frame, Some(peer), 0, 0, Instant::now(), out);
        matches!(fate, Fate::Accepted)
    }
    let opts = DecodeOptions {
        mode: DecodeMode::Strict,
        ..DecodeOptions::default()
    };
    let mut path = FramePath::new(&opts, Some(MultilineConfig::default()));
    let mut out = Vec::new();
    let first = "<163>1 2026-11-24T11:34:37.138Z vm orders 1 - - Order failed";
    assert!(take(&mut path, first, &mut out));
    assert!(take(
        &mut path,
        "2026-11-24T11:34:37Z vm other: quoted",
        &mut out
    ));
    // An indented line with a PRI after its spaces (`space_before_pri`)
    // continues it too.
    assert!(take(
        &mut path,
        "    <13>Nov 24 11:34:37 vm other: indented",
        &mut out
    ));
    path.close(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "Order failed\n2026-11-24T11:34:37Z vm other: quoted\n    <13>Nov 24 11:34:37 vm other: indented"
    );
    assert!(out[0].lenient.is_empty());
    // Nothing pending: a frame that needs a rule, rejected.
    assert!(!take(&mut path, "Nov 24 11:34:37 vm app: alone", &mut out));
}

/// Stage `text` as a record of a route (to an Elasticsearch sink with
/// `bulk`), as `Pipeline::encode` does with an encoded text.
fn stage_text(
    staged: &mut StagedRoute,
    route: (Option<&(crate::config::BulkRoute, u64)>, &Arc<SlabPool>),
    time_nanos: i64,
    key: Option<[u8; 16]>,
    text: &str,
) {
    let payload = staged.stage(route, time_nanos, key, |mut s| {
        s.push_str(text);
        s
    });
    staged.records.push(Record {
        payload,
        time_nanos,
        key,
        kafka: None,
        ack: None,
    });
}

/// Documents staged for an Elasticsearch route are sent as the slabs'
/// own bytes, and those bytes are exactly the body the sink writes by
/// copying (action line, document, LF, each index from the document's
/// hour); a document the encoder could not frame (no key, and the sink
/// wants `_id`s) makes the sink copy the whole request.
#[test]
fn staged_documents_are_the_bulk_body_the_sink_would_write() {
    use crate::sinks::elasticsearch::bulk::{batch_items, bulk_body_into, bulk_runs, hour_names};
    // 2026-11-24T23:59:59Z, then the next hour.
    let t = 1_795_564_799_000_000_000;
    for ids in [true, false] {
        let route = crate::config::BulkRoute {
            index: "logs-%Y.%m.%d-%H \"q\"".into(),
            ids,
        };
        let bulk = Some((route.clone(), route.framing()));
        let slabs = Arc::new(SlabPool::default());
        let mut staged = StagedRoute::default();
        let mut records = Vec::new();
        let docs = [
            (t, "{\"m\":\"a\"}"),
            (t + 1, "{\"m\":\"\\u00e9\\n\"}"),
            (t + 1_000_000_000, "{\"m\":\"next hour\"}"),
            (t + 5, "{}"),
        ];
        // Two reads: two slabs.
        for (n, read) in [&docs[..3], &docs[3..]].into_iter().enumerate() {
            for (i, (time_nanos, text)) in read.iter().enumerate() {
                let key = Some([(n * 10 + i) as u8; 16]);
                stage_text(&mut staged, (bulk.as_ref(), &slabs), *time_nanos, key, text);
            }
            staged.seal(&slabs);
            records.append(&mut staged.records);
        }
        assert!(staged.slab.is_empty(), "the slab goes with its records");
        let texts: Vec<&str> = records.iter().map(|r| &*r.payload).collect();
        assert_eq!(texts, docs.map(|(_, d)| d));
        let names = hour_names(&route.index, &records);
        let items = batch_items(&records, &names, ids, route.framing());
        let all: Vec<usize> = (0..items.len()).collect();
        let runs = bulk_runs(&items, &all).expect("every item is framed");
        assert_eq!(runs.len(), 2, "one run per slab");
        let copied = bulk_body_into(&items, &all, Vec::new());
        assert_eq!(
            String::from_utf8(runs.concat()).unwrap(),
            String::from_utf8(copied).unwrap(),
            "ids {ids}"
        );
        // Items of a retry (not contiguous) are runs of their own.
        let some = [0, 2, 3];
        let runs = bulk_runs(&items, &some).unwrap();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs.concat(), bulk_body_into(&items, &some, Vec::new()));
        // Another sink's framing: copied.
        let other = batch_items(&records, &names, ids, route.framing() ^ 2);
        assert!(bulk_runs(&other, &all).is_none());
    }
    // ids wanted and no key: not framed, the whole request copied.
    let route = crate::config::BulkRoute {
        index: "i".into(),
        ids: true,
    };
    let bulk = Some((route.clone(), route.framing()));
    let slabs = Arc::new(SlabPool::default());
    let mut staged = StagedRoute::default();
    for key in [Some([1; 16]), None] {
        stage_text(&mut staged, (bulk.as_ref(), &slabs), t, key, "{}");
    }
    staged.seal(&slabs);
    let names = hour_names("i", &staged.records);
    let items = batch_items(&staged.records, &names, true, route.framing());
    assert!(items[0].framed.is_some() && items[1].framed.is_none());
    assert!(bulk_runs(&items, &[0, 1]).is_none());
    assert!(bulk_runs(&items, &[0]).is_some());
}

/// att8: a record of a small read must not pin a buffer sized for an
/// earlier, large read. The queue bounds (`max_bytes`) count a record's
/// `held()` bytes; the slab it keeps alive is what memory it really
/// costs. At 3ed0289 the reader's `hint` (the last slab's length, up to
/// 512 KiB) sized the next slab and nothing shrank it, so the lone record
/// below (95 bytes as the queue counts it) kept 429,750 bytes alive
/// (main: at most 2 KiB a record); f5f58d7's shrink at the seal fixes it
/// (this test fails with that `shrink_to_fit` commented out).
#[test]
fn a_lone_record_after_a_large_read_does_not_pin_a_large_slab() {
    let route = crate::config::BulkRoute {
        index: "logs-%Y.%m.%d".into(),
        ids: true,
    };
    let bulk = Some((route.clone(), route.framing()));
    let slabs = Arc::new(SlabPool::default());
    let mut staged = StagedRoute::default();
    let t = 1_795_564_799_000_000_000;
    let stage = |staged: &mut StagedRoute, text: &str| {
        stage_text(staged, (bulk.as_ref(), &slabs), t, Some([1; 16]), text);
    };
    // One large read: 1,000 documents of 300 bytes.
    let doc = format!("{{\"m\":\"{}\"}}", "x".repeat(292));
    for _ in 0..1000 {
        stage(&mut staged, &doc);
    }
    staged.seal(&slabs);
    let big: Vec<Record> = std::mem::take(&mut staged.records);
    // Then a read of one small document.
    stage(&mut staged, "{\"m\":\"small\"}");
    staged.seal(&slabs);
    drop(big);
    let held = staged.records[0].payload.held();
    let pinned = staged.records[0].payload.slab_capacity();
    assert!(
        pinned <= 4096,
        "a record of {held} bytes (as the queue counts it) pins a slab of {pinned} bytes"
    );
}

/// att8: a route's slab pool keeps only slabs a reader can take again
/// (a reader takes a slab of one of the slab sizes, exactly): a slab over
/// the largest (a read of long documents, or one large frame) is never
/// taken, and was kept all the same, up to the pool's bound, for as long
/// as the route lived: memory no record uses and no reader reuses.
#[test]
fn a_pool_keeps_no_slab_a_reader_cannot_take() {
    let slabs = Arc::new(SlabPool::default());
    let big = 2 * 1024 * 1024;
    drop(Arc::new(Slab::new(
        String::with_capacity(big),
        Some(slabs.clone()),
    )));
    // No reader's want takes it...
    for want in [MIN_SLAB, 64 * 1024, MAX_SLAB] {
        assert_ne!(slabs.take(want).capacity(), big);
    }
    // ...so the pool must not be holding it (asking for it would only
    // allocate a new one of that size: the pool's count says).
    assert_eq!(
        slabs.kept(),
        0,
        "the pool kept a {big}-byte slab no reader can take"
    );
}

/// A read that stages more than a slab holds fills several: each record
/// reads its own text, runs never join two slabs, and the body sent is
/// exactly the one the sink would copy.
#[test]
fn a_large_read_fills_several_slabs_and_sends_the_same_body() {
    use crate::sinks::elasticsearch::bulk::{batch_items, bulk_body_into, bulk_runs, hour_names};
    let route = crate::config::BulkRoute {
        index: "logs-%Y.%m.%d".into(),
        ids: true,
    };
    let bulk = Some((route.clone(), route.framing()));
    let slabs = Arc::new(SlabPool::default());
    let mut staged = StagedRoute::default();
    let t = 1_795_564_799_000_000_000;
    let texts: Vec<String> = (0..600)
        .map(|i| format!("{{\"n\":{i},\"m\":\"{}\"}}", "é".repeat(100 + i % 7)))
        .collect();
    for (i, text) in texts.iter().enumerate() {
        let key = Some([i as u8; 16]);
        stage_text(
            &mut staged,
            (bulk.as_ref(), &slabs),
            t + i as i64,
            key,
            text,
        );
    }
    staged.seal(&slabs);
    let records = std::mem::take(&mut staged.records);
    let read: Vec<&str> = records.iter().map(|r| &*r.payload).collect();
    assert_eq!(read, texts.iter().map(String::as_str).collect::<Vec<_>>());
    let names = hour_names(&route.index, &records);
    let items = batch_items(&records, &names, true, route.framing());
    let all: Vec<usize> = (0..items.len()).collect();
    let runs = bulk_runs(&items, &all).expect("every item is framed");
    // About 140 KiB of documents: three slabs or more, a run each.
    assert!(runs.len() >= 3, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r.len() <= MAX_SLAB + 1024));
    assert_eq!(runs.concat(), bulk_body_into(&items, &all, Vec::new()));
}

/// #25: a reader of one of many connections lends its staging slots to
/// the listener's pool between reads, and the next reader that reads
/// stages into them: its list holds a read's records without growing and
/// its first slab is of the size the last read needed (at 1,000
/// connections, growing both from nothing on every read was most of the
/// instructions they cost over one connection). Slots with records still
/// staged are never lent, and the pool keeps no more sets than its bound.
#[test]
fn staging_lent_between_reads_is_staged_into_by_the_next_reader() {
    let batch = || Batch {
        routes: Vec::new(),
        records: 0,
        matches: Vec::new(),
        errors: Vec::new(),
    };
    let slabs = Arc::new(SlabPool::default());
    let pool = StagingPool::new(2);
    let t = 1_795_564_799_000_000_000;
    let doc = format!("{{\"m\":\"{}\"}}", "x".repeat(292));
    // One connection's read of 200 documents, pushed (the queue drains
    // the list), then lent while it waits for bytes.
    let mut one = batch();
    one.routes.push(StagedRoute::default());
    for _ in 0..200 {
        stage_text(&mut one.routes[0], (None, &slabs), t, None, &doc);
    }
    one.routes[0].seal(&slabs);
    let pushed: Vec<Record> = one.routes[0].records.drain(..).collect();
    assert!(one.lend(&pool));
    assert!(one.routes.is_empty());
    assert_eq!(pool.held(), 1);
    // Another connection's first read.
    let mut two = batch();
    two.borrow(&pool);
    assert_eq!(pool.held(), 0);
    let staged = two.routes.first_mut().expect("lent slots borrowed");
    assert!(staged.records.capacity() >= 200, "list not reused");
    stage_text(staged, (None, &slabs), t, None, &doc);
    assert!(
        staged.slab.capacity() >= 64 * 1024,
        "first slab of {} bytes for reads of 60 KiB",
        staged.slab.capacity()
    );
    // A record staged: not lent.
    assert!(!two.lend(&pool));
    assert_eq!(pool.held(), 0);
    drop(pushed);
    // The bound.
    for _ in 0..3 {
        let mut b = batch();
        b.routes.push(StagedRoute::default());
        assert!(b.lend(&pool));
    }
    assert_eq!(pool.held(), 2);
}

/// #25: a read that fills several slabs ends with a short one, and the
/// next read's first slab is sized for the largest of them: sized for the
/// last, a read as large as the one before grew it by doubling (copied
/// each time) in every read, not only a connection's first (at 1,000
/// connections, whose reads vary in size, three growths a read).
#[test]
fn the_next_read_starts_with_a_slab_sized_for_the_largest_of_the_last() {
    let slabs = Arc::new(SlabPool::default());
    let mut staged = StagedRoute::default();
    let t = 1_795_564_799_000_000_000;
    let doc = format!("{{\"m\":\"{}\"}}", "x".repeat(292));
    // 470 documents of 300 bytes: two full slabs and a short third.
    for _ in 0..470 {
        stage_text(&mut staged, (None, &slabs), t, None, &doc);
    }
    staged.seal(&slabs);
    let read: Vec<Record> = staged.records.drain(..).collect();
    let last = read.last().map_or(0, |r| r.payload.slab_capacity());
    assert!(last < 32 * 1024, "the last slab is the short one: {last}");
    stage_text(&mut staged, (None, &slabs), t, None, &doc);
    assert_eq!(
        staged.slab.capacity(),
        slab_size(MAX_SLAB + MAX_SLAB / 8),
        "the next read's first slab"
    );
}
