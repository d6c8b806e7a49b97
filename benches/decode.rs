//! Decoder throughput, sluice against syslog_loose, on the same frames in the
//! same run. Inputs are the checked-in files under benches/corpus/:
//!
//! - `rfc5424-sd.txt`: RFC 5424 with structured data;
//! - `rfc3164.txt`: RFC 3164 as real senders write it;
//! - `rfc5424-typical.txt`: one typical ~200-byte RFC 5424 message.
//!
//! Before measuring, every frame is decoded by both and the results are
//! compared field by field: the bench refuses to run on a frame the two read
//! differently, so the figures compare the same work.
//!
//! sluice starts from the frame's bytes (UTF-8 validation included);
//! syslog_loose is given a ready `&str`. It is measured twice: as
//! `parse_message` (which asks the local clock for the year of every BSD
//! timestamp) and with a fixed year and zone (`parse_message_with_year_tz`),
//! its fastest configuration.
//!
//! Run: `cargo bench --bench decode`. Timings move with the machine's load
//! (several-fold on a shared VM); instruction counts do not: run the bench
//! binary under `valgrind --tool=callgrind … --bench --profile-time 2
//! rfc3164/sluice` and divide the inclusive Ir of `Bencher::iter` by the
//! calls of `sluice::decode::decode`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice::testing::{DecodeOptions, decode};
use syslog_loose::Variant;

const RECEIVED: i64 = 1_795_500_000_000_000_000;

fn corpus(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Both decoders' reading of `frame`, as comparable strings.
fn readings(frame: &str) -> (Vec<String>, Vec<String>) {
    let e = decode(
        Bytes::copy_from_slice(frame.as_bytes()),
        None,
        RECEIVED,
        &DecodeOptions::default(),
    );
    let ts = |nanos: i64| DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339();
    let mut ours = vec![
        format!("{:?}", e.facility),
        format!("{:?}", e.severity),
        format!("{:?}", e.timestamp.map(|t| ts(t.unix_nanos))),
        format!("{:?}", e.hostname()),
        format!("{:?}", e.appname()),
        format!("{:?}", e.procid()),
        format!("{:?}", e.msgid()),
        e.message().to_owned(),
    ];
    for el in &e.structured_data {
        ours.push(e.resolve(&el.id).to_owned());
        for p in &el.params {
            ours.push(format!("{}={}", e.resolve(&p.name), e.resolve(&p.value)));
        }
    }
    let m = syslog_loose::parse_message_with_year_tz(frame, |_| 2026, Some(Utc), Variant::Either);
    let mut theirs = vec![
        format!("{:?}", m.facility.map(|f| f as u8)),
        format!("{:?}", m.severity.map(|s| s as u8)),
        format!(
            "{:?}",
            m.timestamp.and_then(|t| t.timestamp_nanos_opt()).map(ts)
        ),
        format!("{:?}", m.hostname),
        format!("{:?}", m.appname),
        format!("{:?}", m.procid.map(|p| p.to_string())),
        format!("{:?}", m.msgid),
        m.msg.to_owned(),
    ];
    for el in &m.structured_data {
        theirs.push(el.id.to_owned());
        for (k, v) in &el.params {
            theirs.push(format!("{k}={v}"));
        }
    }
    (ours, theirs)
}

fn bench_group(c: &mut Criterion, name: &str, text: &str) {
    let frames = corpus(text);
    for f in &frames {
        let (ours, theirs) = readings(f);
        assert_eq!(
            ours, theirs,
            "sluice and syslog_loose read {f:?} differently"
        );
    }
    let bytes: Vec<Bytes> = frames
        .iter()
        .map(|f| Bytes::copy_from_slice(f.as_bytes()))
        .collect();
    let opts = DecodeOptions::default();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function(BenchmarkId::new("sluice", frames.len()), |b| {
        b.iter(|| {
            for f in &bytes {
                std::hint::black_box(decode(f.clone(), None, RECEIVED, &opts));
            }
        })
    });
    group.bench_function(
        BenchmarkId::new("syslog_loose_parse_message", frames.len()),
        |b| {
            b.iter(|| {
                for f in &frames {
                    std::hint::black_box(syslog_loose::parse_message(f, Variant::Either));
                }
            })
        },
    );
    group.bench_function(
        BenchmarkId::new("syslog_loose_fixed_year", frames.len()),
        |b| {
            b.iter(|| {
                for f in &frames {
                    std::hint::black_box(syslog_loose::parse_message_with_year_tz(
                        f,
                        |_| 2026,
                        Some(Utc),
                        Variant::Either,
                    ));
                }
            })
        },
    );
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    bench_group(c, "rfc5424_sd", include_str!("corpus/rfc5424-sd.txt"));
    bench_group(c, "rfc3164", include_str!("corpus/rfc3164.txt"));
    bench_group(
        c,
        "rfc5424_typical_200b",
        include_str!("corpus/rfc5424-typical.txt"),
    );
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
