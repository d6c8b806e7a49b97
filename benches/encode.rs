//! Line-protocol encoding throughput: one point with 5 tags (host, app and
//! three captures) and 4 typed fields, from a decoded event and its pattern
//! captures, as a metric route makes it.
//!
//! Run: `cargo bench --bench encode`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use regex::Regex;
use sluice::config::Config;
use sluice::decode::{DecodeOptions, decode};
use sluice::route::encode;

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
    let re = Regex::new(route.pattern.as_deref().unwrap()).unwrap();
    let event = decode(
        Bytes::from_static(b"<134>1 2026-11-24T11:34:54.606Z web01.example.com api 4711 - - request region=eu-central-1 route=/api/v1/orders status=200 bytes=1532 latency=12.5 cached=true user=\"kim, the admin\""),
        None,
        0,
        &DecodeOptions::default(),
    );
    let captures = re.captures(event.message()).unwrap();
    let mut errors = Vec::new();
    let record = encode(
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
        record.payload,
        "http\\ requests,app=api,host=web01.example.com,region=eu-central-1,route=/api/v1/orders,status=200 bytes=1532i,latency=12.5,cached=true,user=\"\\\"kim, the admin\\\"\" 1795520094606000000"
    );
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("point_5_tags_4_fields", |b| {
        b.iter(|| {
            let r = encode(
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

criterion_group!(benches, bench_encode);
criterion_main!(benches);
