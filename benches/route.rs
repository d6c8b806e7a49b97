//! Routing cost against the number of routes: 1, 10, 100 and 1000 grok
//! routes over a mixed corpus in which at most one route matches a message
//! (benches/corpus/route-messages.txt). `sluice` is the router as it runs
//! (cheap header conditions, one pass over all patterns, captures only for
//! the routes that matched); `one_by_one` is the naive loop a parser per
//! pattern amounts to (every route's regex run on every message), for
//! contrast.
//!
//! Run: `cargo bench --bench route`.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regex::Regex;
use sluice::testing::Config;
use sluice::testing::Event;
use sluice::testing::Router;
use sluice::testing::{DecodeOptions, decode};

/// A config with `n` grok routes, each with its own service name literal.
fn config(n: usize) -> Config {
    let mut text = String::from(
        "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"out\"\ntype = \"stdout\"\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[routes]]\nname = \"svc{i}\"\nsink = \"out\"\npattern = 'svc{i:04} request %{{WORD:verb}} %{{URIPATHPARAM:path}} status=%{{INT:status:int}} took=%{{NUMBER:ms:float}}ms'\n[routes.metric]\nmeasurement = \"requests\"\ntags = [\"verb\"]\n"
        ));
    }
    text.push_str("[default_route]\nsink = \"out\"\ndocument = {}\n");
    Config::from_toml(&text, "bench").unwrap_or_else(|e| panic!("{e}"))
}

fn corpus() -> Vec<Event> {
    include_str!("corpus/route-messages.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            decode(
                Bytes::copy_from_slice(l.as_bytes()),
                None,
                1_795_500_000_000_000_000,
                &DecodeOptions::default(),
            )
        })
        .collect()
}

fn bench_route(c: &mut Criterion) {
    let events = corpus();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(events.len() as u64));
    for n in [1usize, 10, 100, 1000] {
        let config = config(n);
        let router = Router::new(&config.routes).unwrap();
        // Every message goes where it should: svc0000 lines to route 0,
        // the rest to the default route.
        let mut out = Vec::new();
        for e in &events {
            out.clear();
            router.route(e, &mut out);
            assert_eq!(out.len(), 1, "{}", e.message());
        }
        group.bench_function(BenchmarkId::new("sluice", n), |b| {
            let mut out = Vec::with_capacity(4);
            b.iter(|| {
                for e in &events {
                    out.clear();
                    router.route(e, &mut out);
                    std::hint::black_box(&out);
                }
            })
        });
        if n <= 100 {
            let regexes: Vec<Regex> = config
                .routes
                .iter()
                .filter_map(|r| r.pattern.clone())
                .collect();
            group.bench_function(BenchmarkId::new("one_by_one", n), |b| {
                b.iter(|| {
                    for e in &events {
                        for re in &regexes {
                            std::hint::black_box(re.captures(e.message()));
                        }
                    }
                })
            });
        }
    }
    group.finish();
}

/// The blaster's traffic (`--size 256`): a status line and an event line.
const E2E_LINES: [(&str, &str); 2] = [
    (
        "status_line",
        "<134>1 2026-11-28T21:50:18.173902Z host00 app0 1000 - - status route=/api/v1/orders code=503 latency_ms=0.0 bytes=200 seq=0 sent=1795902618173902091 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ),
    (
        "event_line",
        "<134>1 2026-11-28T21:50:18.173902Z host01 app1 1001 - - INFO  [worker-1] com.example.Orders - order processed id=1 seq=1 sent=1795902618173902091 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ),
];

/// The end-to-end benchmark's router (benches/e2e/sluice.toml: nine grok
/// metric routes and a document route) over the blaster's traffic: a status
/// line, which one metric route takes with six captures, and an event line,
/// which no grok route takes (the blaster sends one status line in four).
fn bench_e2e_router(c: &mut Criterion) {
    let text = include_str!("e2e/sluice.toml").replace("${BLASTER_SINK}", "http://127.0.0.1:9");
    let config =
        Config::from_toml(&text, "benches/e2e/sluice.toml").unwrap_or_else(|e| panic!("{e}"));
    let router = Router::new(&config.routes).unwrap();
    let cases = [
        (
            E2E_LINES[0].0,
            E2E_LINES[0].1,
            &["http_status", "events"][..],
        ),
        (E2E_LINES[1].0, E2E_LINES[1].1, &["events"][..]),
    ];
    let mut group = c.benchmark_group("route_e2e_config");
    group.throughput(Throughput::Elements(1));
    for (name, line, want) in cases {
        let event = decode(
            Bytes::from_static(line.as_bytes()),
            None,
            0,
            &DecodeOptions::default(),
        );
        let mut out = Vec::with_capacity(4);
        router.route(&event, &mut out);
        let names: Vec<&str> = out.iter().map(|m| router.route_name(m.route)).collect();
        assert_eq!(names, want);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                router.route(&event, &mut out);
                std::hint::black_box(&out);
            })
        });
    }
    group.finish();
}

/// A reader's whole work per frame of the e2e benchmark: decode, route and
/// encode for every matching route (document key included), as
/// `Pipeline::dispatch` does before records are queued.
fn bench_e2e_reader(c: &mut Criterion) {
    let text = include_str!("e2e/sluice.toml").replace("${BLASTER_SINK}", "http://127.0.0.1:9");
    let config =
        Config::from_toml(&text, "benches/e2e/sluice.toml").unwrap_or_else(|e| panic!("{e}"));
    let router = Router::new(&config.routes).unwrap();
    let peer = Some("127.0.0.1:50122".parse().unwrap());
    let mut group = c.benchmark_group("reader_e2e_config");
    group.throughput(Throughput::Elements(1));
    for (name, line) in E2E_LINES {
        let frame = Bytes::from_static(line.as_bytes());
        let mut errors = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(4);
                let event = decode(
                    frame.clone(),
                    peer,
                    1_795_902_618_200_000_000,
                    &DecodeOptions::default(),
                );
                router.route(&event, &mut out);
                let mut records = Vec::with_capacity(2);
                for m in &out {
                    let route = &config.routes[m.route];
                    records.push(sluice::testing::encode(
                        String::new(),
                        &route.output,
                        &route.name,
                        router.capture_names(m.route),
                        &event,
                        m.captures.as_ref(),
                        &mut errors,
                    ));
                }
                std::hint::black_box(records)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_route, bench_e2e_router, bench_e2e_reader);
criterion_main!(benches);
