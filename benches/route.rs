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
use sluice::config::Config;
use sluice::decode::{DecodeOptions, decode};
use sluice::event::Event;
use sluice::router::Router;

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
                .filter_map(|r| r.pattern.as_deref())
                .map(|p| Regex::new(p).unwrap())
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

criterion_group!(benches, bench_route);
criterion_main!(benches);
