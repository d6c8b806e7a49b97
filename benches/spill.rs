//! Spill log throughput on this machine's disk, per fsync policy: append
//! 20,000 records of 256 payload bytes in batches of 100 or one by one (as
//! the route queue does), and replay them (read and acknowledge). Events/s come from
//! criterion's element throughput; MB/s from its byte throughput.
//!
//! Run: `cargo bench --bench spill` (the log lives in a temp dir on the
//! disk of $TMPDIR).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::testing::{Fsync, Record, SpillLog, SpillOptions};

const RECORDS: usize = 20_000;
const BATCH: usize = 100;

fn records() -> Vec<Record> {
    (0..RECORDS)
        .map(|i| Record {
            payload: format!("{i:08} {}", "x".repeat(247)).into(),
            time_nanos: i as i64,
            key: Some([i as u8; 16]),
            kafka: None,
            ack: None,
        })
        .collect()
}

fn options(fsync: Fsync) -> SpillOptions {
    SpillOptions {
        segment_bytes: 64 * 1024 * 1024,
        max_bytes: 1 << 34,
        fsync,
    }
}

fn bench_spill(c: &mut Criterion) {
    let records = records();
    let bytes: u64 = records.iter().map(|r| r.payload.len() as u64).sum();
    // (name, policy, records per append): the route queue appends a
    // reader's records for the route at once (up to 1024; one when a
    // sender sends one at a time), so "always" costs between the batch
    // and the per-record cases.
    for (name, fsync, per_append) in [
        ("never", Fsync::Never, BATCH),
        ("interval_10ms", Fsync::IntervalMs(10), BATCH),
        ("every_batch_of_100", Fsync::EveryBatch, BATCH),
        ("every_record", Fsync::EveryBatch, 1),
    ] {
        let mut g = c.benchmark_group(format!("spill_write_fsync_{name}"));
        g.sample_size(10);
        for (unit, throughput) in [
            ("events", Throughput::Elements(RECORDS as u64)),
            ("bytes", Throughput::Bytes(bytes)),
        ] {
            g.throughput(throughput);
            g.bench_function(unit, |b| {
                b.iter_batched(
                    || tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
                    |dir| {
                        let (mut log, _) = SpillLog::open(dir.path(), options(fsync))
                            .unwrap_or_else(|e| panic!("{e}"));
                        let mut scratch = Vec::new();
                        for chunk in records.chunks(per_append) {
                            log.append(chunk, &mut scratch)
                                .unwrap_or_else(|e| panic!("{e}"));
                            log.maybe_sync().unwrap_or_else(|e| panic!("{e}"));
                        }
                        log.sync().unwrap_or_else(|e| panic!("{e}"));
                        dir
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        g.finish();
    }

    let mut g = c.benchmark_group("spill_replay");
    g.sample_size(10);
    for (unit, throughput) in [
        ("events", Throughput::Elements(RECORDS as u64)),
        ("bytes", Throughput::Bytes(bytes)),
    ] {
        g.throughput(throughput);
        g.bench_function(unit, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
                    let (mut log, _) = SpillLog::open(dir.path(), options(Fsync::Never))
                        .unwrap_or_else(|e| panic!("{e}"));
                    let mut scratch = Vec::new();
                    for chunk in records.chunks(BATCH) {
                        log.append(chunk, &mut scratch)
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                    dir
                },
                |dir| {
                    // Open checks every record (as after a crash), then the
                    // sink's reads and acks.
                    let (mut log, recovery) =
                        SpillLog::open(dir.path(), options(Fsync::EveryBatch))
                            .unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(recovery.pending_records, RECORDS as u64);
                    let mut out = Vec::with_capacity(1000);
                    while log.read_batch(1000, &mut out).unwrap_or(0) > 0 {
                        log.ack().unwrap_or_else(|e| panic!("{e}"));
                        out.clear();
                    }
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_spill);
criterion_main!(benches);
