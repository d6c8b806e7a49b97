//! The sink against real engines, through the real `sluice` binary. Every
//! case runs against OpenSearch and Elasticsearch with the same body, and
//! checks sent = stored + counted drops exactly.

use super::super::{Sluice, config};
use super::{Engine, Kind};

/// One test per engine for `body`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn opensearch() {
                super::$name(super::Kind::OpenSearch)
            }
            #[test]
            fn elasticsearch() {
                super::$name(super::Kind::Elasticsearch)
            }
        }
    };
}

/// Sum of every sample of the families that count lost records: queue
/// drops (by reason) and sink failures (rejected, gave up).
fn counted_drops(s: &Sluice) -> u64 {
    s.scrape()
        .lines()
        .filter(|l| {
            l.starts_with("sluice_queue_dropped_records_total")
                || l.starts_with("sluice_sink_failed_records_total")
                || l.starts_with("sluice_route_conversion_errors_total")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A config with one Elasticsearch sink `es` writing to `index` on
/// `engine`, plus `extra_sink` keys and `routes`.
fn es_sink(engine: &Engine, index: &str, extra_sink: &str, routes: &str) -> String {
    let urls: Vec<String> = engine.urls().iter().map(|u| format!("\"{u}\"")).collect();
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "es"
type = "elasticsearch"
urls = [{}]
index = "{index}"
linger_ms = 50
timeout_secs = 10
{extra_sink}
{routes}
[default_route]
sink = "events"
document = {{}}
"#,
            urls.join(", ")
        ),
    )
}

// ------------------------------------------------------------------ cases

/// ECS and Flume documents land in the index of their UTC day, are found
/// by `_search` and counted by `_count`.
fn documents_land_and_are_searchable(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    let routes = r#"
[[sinks]]
name = "legacy"
type = "elasticsearch"
urls = [URLS]
index = "land-flume-%Y.%m.%d"
linger_ms = 50
[[routes]]
name = "ecs"
sink = "es"
appname = "billing"
document = {}
[[routes]]
name = "flume"
sink = "legacy"
appname = "orders"
document = { format = "flume" }
"#
    .replace(
        "URLS",
        &engine
            .urls()
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut s = Sluice::start(&es_sink(engine, "land-ecs-%Y.%m.%d", "", &routes));
    // 23:30+01:00 and 00:30+01:00 are both on the 23rd in UTC; 01:30+01:00
    // is on the 24th.
    let frames = "<134>1 2026-11-23T23:30:00.123+01:00 web01 billing 4711 GC - checkout done seq=1\n\
<134>1 2026-11-24T00:30:00.000+01:00 web01 billing 4711 GC - checkout done seq=2\n\
<134>1 2026-11-24T01:30:00.000+01:00 web01 billing 4711 GC - invoice sent seq=3\n\
<166>1 2026-11-24T10:00:00Z web02 orders - - - Order created id=1001 seq=4\n";
    super::super::tcp_send(s.addr("tcp"), frames.as_bytes());
    let sent = 4;
    let day23 = engine.wait_count("land-ecs-2026.11.23", 2, 30);
    let day24 = engine.wait_count("land-ecs-2026.11.24", 1, 30);
    let flume = engine.wait_count("land-flume-2026.11.24", 1, 30);
    let drops = counted_drops(&s);
    eprintln!(
        "{}: sent {sent}, stored {day23} + {day24} + {flume}, counted drops {drops}",
        kind.name()
    );
    assert_eq!((day23, day24, flume), (2, 1, 1), "documents per UTC day");
    assert_eq!(sent, day23 + day24 + flume + drops);
    // Searchable: the message is full text.
    let hits = engine.ok(
        "POST",
        "/land-ecs-*/_search",
        r#"{"query":{"match":{"message":"checkout"}}}"#,
    );
    assert_eq!(hits["hits"]["total"]["value"], 2, "{hits}");
    let doc = &engine.sources("land-ecs-2026.11.23")[0];
    assert_eq!(doc["host"]["hostname"], "web01", "{doc}");
    assert_eq!(doc["log"]["syslog"]["facility"]["name"], "local0", "{doc}");
    let hits = engine.ok(
        "POST",
        "/land-flume-*/_search",
        r#"{"query":{"match":{"@message":"created"}}}"#,
    );
    assert_eq!(hits["hits"]["total"]["value"], 1, "{hits}");
    assert_eq!(hits["hits"]["hits"][0]["_source"]["@source_host"], "web02");
    assert!(s.stop().success());
}
both!(documents_land_and_are_searchable);
