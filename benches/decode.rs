//! Decoder throughput over a small checked-in corpus (tests/corpus/frames.txt):
//! one RFC 5424 frame with structured data, one without, and RFC 3164 frames.
//! Run: `cargo bench --bench decode`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::decode::{DecodeOptions, decode};

fn corpus() -> Vec<Bytes> {
    include_str!("../tests/corpus/frames.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Bytes::copy_from_slice(l.as_bytes()))
        .collect()
}

fn bench_decode(c: &mut Criterion) {
    let frames = corpus();
    let bytes: usize = frames.iter().map(Bytes::len).sum();
    let opts = DecodeOptions::default();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for f in &frames {
                std::hint::black_box(decode(f.clone(), None, 1_795_500_000_000_000_000, &opts));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
