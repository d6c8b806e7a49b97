//! Line-protocol encoding throughput: one point with 5 tags (host, app and
//! three captures) and 4 typed fields, from a decoded event and its pattern
//! captures, as a metric route makes it.
//!
//! Also a document's two RFC 3339 timestamps. Run: `cargo bench --bench
//! encode`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::testing::Config;
use sluice::testing::encode;
use sluice::testing::{DecodeOptions, decode};

fn bench_encode(c: &mut Criterion) {
    let config = Config::from_toml(
        r#"
[[listeners]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:0"
[[sinks]]
name = "out"
type = "stdout"
[[routes]]
name = "requests"
sink = "out"
pattern = 'request region=%{NOTSPACE:region} route=%{NOTSPACE:route} status=%{INT:status} bytes=%{INT:bytes:int} latency=%{NUMBER:latency:float} cached=%{WORD:cached:bool} user=%{QS:user:string}'
[routes.metric]
measurement = "http requests"
tags = ["region", "route", "status"]
[default_route]
sink = "out"
document = {}
"#,
        "bench",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let route = &config.routes[0];
    let re = route.pattern.clone().unwrap();
    let event = decode(
        Bytes::from_static(b"<134>1 2026-11-24T11:34:54.606Z web01.example.com api 4711 - - request region=eu-central-1 route=/api/v1/orders status=200 bytes=1532 latency=12.5 cached=true user=\"kim, the admin\""),
        None,
        0,
        &DecodeOptions::default(),
    );
    let captures = sluice::testing::Captures::from(re.captures(event.message()).unwrap());
    let mut errors = Vec::new();
    let record = encode(
        String::new(),
        &route.output,
        &route.name,
        &[],
        &event,
        Some(&captures),
        &mut errors,
    )
    .unwrap();
    assert!(errors.is_empty());
    assert_eq!(
        &*record.payload,
        "http\\ requests,app=api,host=web01.example.com,region=eu-central-1,route=/api/v1/orders,status=200 bytes=1532i,latency=12.5,cached=true,user=\"\\\"kim, the admin\\\"\" 1795520094606000000"
    );
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("point_5_tags_4_fields", |b| {
        b.iter(|| {
            let r = encode(
                String::new(),
                &route.output,
                &route.name,
                &[],
                &event,
                Some(&captures),
                &mut errors,
            );
            std::hint::black_box(r)
        })
    });
    group.finish();
}

/// An Elasticsearch document: a typical event encoded as ECS, given its id
/// and framed as a `_bulk` action + source pair.
fn bench_document(c: &mut Criterion) {
    use sluice::testing::DocumentFormat;
    use sluice::testing::{Item, bulk_body, document_hash, index_name};
    let event = decode(
        Bytes::from_static(b"<134>1 2026-11-24T11:34:54.606Z web01.example.com orders 17078 Audit [mdc@18060 requestId=\"r-42\" user=\"alice\"] Order created id=1001 customer=9912 total=129.95 currency=EUR"),
        Some("10.0.0.5:50122".parse().unwrap()),
        1_795_520_100_000_000_000,
        &DecodeOptions::default(),
    );
    let output = sluice::testing::OutputConfig::Document(DocumentFormat::Ecs { original: false });
    let mut errors = Vec::new();
    let mut group = c.benchmark_group("document");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ecs_bulk_item", |b| {
        b.iter(|| {
            let record = encode(
                String::new(),
                &output,
                "events",
                &[],
                &event,
                None,
                &mut errors,
            )
            .unwrap();
            let index = index_name("syslog-%Y.%m.%d", record.time_nanos);
            let item = Item {
                index: &index,
                id: Some(document_hash(&record.payload)),
                source: &record.payload,
                framed: None,
            };
            std::hint::black_box(bulk_body(std::slice::from_ref(&item), &[0]))
        })
    });
    group.finish();
}

/// A document's two timestamps (`@timestamp` and `event.created`, in the
/// same second, then 3 s apart) written into a reused buffer after some
/// text, as `encode` writes them.
fn bench_timestamps(c: &mut Criterion) {
    let mut group = c.benchmark_group("timestamps");
    group.throughput(Throughput::Elements(1));
    // Received 26 ms after the event's time.
    group.bench_function("document_pair", |b| document_pair(b, 26_000_000));
    // The sender's clock 3 s behind the receiver's (or a backlog of 3 s):
    // the two timestamps fall in different seconds.
    group.bench_function("document_pair_skewed", |b| document_pair(b, 3_000_000_000));
    group.finish();
}

/// The two timestamps of a document received `delay_nanos` after its
/// event's time.
fn document_pair(b: &mut criterion::Bencher<'_>, delay_nanos: i64) {
    use sluice::testing::{Timestamp, write_rfc3339};
    let base = 1_795_902_618_173_902_000i64;
    let mut out = String::with_capacity(1024);
    let mut i = 0i64;
    let at = |unix_nanos| Timestamp {
        unix_nanos,
        offset_secs: 0,
        frac_digits: 6,
    };
    b.iter(|| {
        i = (i + 1) % 1000;
        out.clear();
        out.push_str("{\"@timestamp\":\"");
        write_rfc3339(&mut out, &at(base + i * 1000));
        out.push_str("\",\"message\":\"x\",\"event\":{\"created\":\"");
        write_rfc3339(&mut out, &at(base + delay_nanos + i));
        std::hint::black_box(&out);
    })
}

criterion_group!(benches, bench_encode, bench_document, bench_timestamps);
criterion_main!(benches);
