//! The sink against real engines, through the real `sluice` binary. Every
//! case runs against OpenSearch and Elasticsearch with the same body, and
//! checks sent = stored + counted drops exactly.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{Engine, Kind};
use crate::util::{Sluice, config, read_lines, wait_while};

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
pub(super) fn counted_drops(s: &Sluice) -> u64 {
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

/// `n` frames "seq=I ..." from `from`, one TCP connection, LF framing.
pub(super) fn send_numbered(addr: SocketAddr, from: usize, n: usize, text: &str) {
    let mut c = TcpStream::connect(addr).unwrap();
    let mut buf = String::new();
    for i in from..from + n {
        buf.push_str(&format!(
            "<134>1 2026-11-24T10:00:00.000Z web01 app - - - seq={i} {text}\n"
        ));
        if buf.len() > 64 * 1024 {
            c.write_all(buf.as_bytes()).unwrap();
            buf.clear();
        }
    }
    c.write_all(buf.as_bytes()).unwrap();
}

/// The distinct `seq=` numbers among `docs`' messages, and how many docs
/// carried one.
fn seqs(docs: &[serde_json::Value]) -> (std::collections::BTreeSet<u64>, usize) {
    let mut set = std::collections::BTreeSet::new();
    let mut n = 0;
    for d in docs {
        let m = d["message"]
            .as_str()
            .or(d["@message"].as_str())
            .unwrap_or("");
        if let Some(v) = m
            .split_whitespace()
            .find_map(|w| w.strip_prefix("seq="))
            .and_then(|v| v.parse().ok())
        {
            set.insert(v);
            n += 1;
        }
    }
    (set, n)
}

fn wait_drained(s: &Sluice, engine: &Engine, index: &str, sent: u64, secs: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let stored = engine.count(index);
        let drops = counted_drops(s);
        if stored + drops >= sent || Instant::now() > deadline {
            return (stored, drops);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Remove what an earlier run against the same engine left (an engine
/// named by SLUICE_ENGINE_* lives across runs).
pub(super) fn fresh(engine: &Engine, paths: &[&str]) {
    for p in paths {
        let _ = engine.req("DELETE", p, "");
    }
}

// ------------------------------------------------------------------ cases

/// ECS and Flume documents land in the index of their UTC day, are found
/// by `_search` and counted by `_count`.
fn documents_land_and_are_searchable(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    fresh(
        engine,
        &["/land-ecs-2026.11.23,land-ecs-2026.11.24,land-flume-2026.11.24"],
    );
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
    crate::util::tcp_send(s.addr("tcp"), frames.as_bytes());
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

/// A node whose write pool is one thread with a queue of one (so concurrent
/// writers are refused with 429) and whose requests may be at most 256 KiB.
fn constrained(kind: Kind) -> Option<&'static Engine> {
    static OPENSEARCH: std::sync::OnceLock<Option<Engine>> = std::sync::OnceLock::new();
    static ELASTICSEARCH: std::sync::OnceLock<Option<Engine>> = std::sync::OnceLock::new();
    let cell = match kind {
        Kind::OpenSearch => &OPENSEARCH,
        Kind::Elasticsearch => &ELASTICSEARCH,
    };
    super::shared_with(
        cell,
        kind,
        match kind {
            Kind::OpenSearch => "OPENSEARCH_CONSTRAINED",
            Kind::Elasticsearch => "ELASTICSEARCH_CONSTRAINED",
        },
        &[
            "thread_pool.write.size=1",
            "thread_pool.write.queue_size=1",
            "http.max_content_length=256kb",
        ],
    )
}

/// Writes into an index with `index.blocks.write = true` (403
/// `cluster_block_exception`) and one with the flood-stage block
/// (`read_only_allow_delete`) are held and retried, not dead-lettered;
/// `/health` names the block meanwhile; once the blocks are lifted
/// everything arrives.
fn blocked_indices_are_held_until_the_block_is_lifted(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    fresh(engine, &["/blocked-write,blocked-flood"]);
    engine.ok(
        "PUT",
        "/blocked-write",
        r#"{"settings":{"index.blocks.write":true}}"#,
    );
    engine.ok(
        "PUT",
        "/blocked-flood",
        r#"{"settings":{"index.blocks.read_only_allow_delete":true}}"#,
    );
    let urls = engine
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(",");
    let routes = format!(
        r#"
[[sinks]]
name = "flood"
type = "elasticsearch"
urls = [{urls}]
index = "blocked-flood"
linger_ms = 50
[[routes]]
name = "w"
sink = "es"
appname = "app"
document = {{}}
[[routes]]
name = "f"
sink = "flood"
appname = "other"
document = {{}}
"#
    );
    let mut s = Sluice::start(&es_sink(engine, "blocked-write", "", &routes));
    let n = 200;
    send_numbered(s.addr("tcp"), 0, n, "held");
    let mut other = String::new();
    for i in 0..n {
        other.push_str(&format!(
            "<134>1 2026-11-24T10:00:00.000Z web01 other - - - seq={i} flood\n"
        ));
    }
    crate::util::tcp_send(s.addr("tcp"), other.as_bytes());
    let sent = 2 * n as u64;
    // Held: /health says why, nothing is dead-lettered.
    let blocked = |h: &serde_json::Value| h.to_string().contains("cluster_block_exception");
    wait_while!(30, || !blocked(&s.health()));
    let health = s.health();
    eprintln!("{}: /health while blocked: {health}", kind.name());
    assert!(
        blocked(&health),
        "waited 30 s for /health to name the block: {health}"
    );
    assert_eq!(health["status"], "degraded", "{health}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(counted_drops(&s), 0, "a block is not a reason to drop");
    assert!(read_lines(&s.path("sluice-data/dead-letter/es.ndjson")).is_empty());
    assert!(read_lines(&s.path("sluice-data/dead-letter/flood.ndjson")).is_empty());
    assert_eq!(
        engine.count("blocked-write") + engine.count("blocked-flood"),
        0
    );
    // Lifted: everything arrives.
    engine.ok(
        "PUT",
        "/blocked-write/_settings",
        r#"{"index.blocks.write":false}"#,
    );
    engine.ok(
        "PUT",
        "/blocked-flood/_settings",
        r#"{"index.blocks.read_only_allow_delete":null}"#,
    );
    let w = engine.wait_count("blocked-write", n as u64, 60);
    let f = engine.wait_count("blocked-flood", n as u64, 60);
    let drops = counted_drops(&s);
    eprintln!(
        "{}: sent {sent}, stored {w} + {f}, counted drops {drops}",
        kind.name()
    );
    assert_eq!((w, f), (n as u64, n as u64), "everything after the lift");
    assert_eq!(sent, w + f + drops);
    wait_while!(20, || s.health()["status"] != "ok");
    assert_eq!(s.health()["status"], "ok");
    assert!(s.stop().success());
}
both!(blocked_indices_are_held_until_the_block_is_lifted);

/// A capture whose value clashes with the index's mapping (`long`) is
/// dead-lettered with the engine's own reason; the rest is stored.
fn a_mapping_conflict_is_dead_lettered_with_the_engines_reason(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    fresh(engine, &["/conflict"]);
    engine.ok(
        "PUT",
        "/conflict",
        r#"{"mappings":{"properties":{"sluice":{"properties":{"captures":{"properties":{"code":{"type":"long"}}}}}}}}"#,
    );
    let routes = r#"
[[routes]]
name = "codes"
sink = "es"
pattern = 'code=(?P<code>\S+)'
document = {}
"#;
    let mut s = Sluice::start(&es_sink(engine, "conflict", "", routes));
    let mut frames = String::new();
    let n = 100;
    for i in 0..n {
        let code = if i % 25 == 3 {
            "abc".to_owned()
        } else {
            format!("{}", 200 + i)
        };
        frames.push_str(&format!(
            "<134>1 2026-11-24T10:00:00.000Z web01 app - - - seq={i} code={code}\n"
        ));
    }
    crate::util::tcp_send(s.addr("tcp"), frames.as_bytes());
    let (stored, drops) = wait_drained(&s, engine, "conflict", n, 30);
    eprintln!(
        "{}: sent {n}, stored {stored}, counted drops {drops}",
        kind.name()
    );
    assert_eq!(stored, 96);
    assert_eq!(
        s.metric(
            "sluice_sink_failed_records_total{sink=\"es\",route=\"codes\",reason=\"rejected\"}"
        ),
        4
    );
    assert_eq!(n, stored + drops);
    let dead = read_lines(&s.path("sluice-data/dead-letter/es.ndjson"));
    assert_eq!(dead.len(), 4);
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let reason = v["reason"].as_str().unwrap();
        // The engine's own words: its exception type and the field.
        assert!(
            reason.contains("400") && reason.contains("sluice.captures.code"),
            "{reason}"
        );
        assert_eq!(v["document"]["sluice"]["captures"]["code"], "abc", "{v}");
    }
    let (seqs, docs) = seqs(&engine.sources("conflict"));
    assert_eq!(docs, 96);
    assert!(seqs.iter().all(|i| i % 25 != 3));
    assert!(s.stop().success());
}
both!(a_mapping_conflict_is_dead_lettered_with_the_engines_reason);

/// The node's write pool is one thread with a queue of one and eight
/// neighbours write beside sluice: the node rejects items with 429, the
/// sink retries them, and every document is stored once.
fn real_429_rejections_lose_and_duplicate_nothing(kind: Kind) {
    let Some(engine) = constrained(kind) else {
        return;
    };
    fresh(
        engine,
        &[
            "/rejections",
            "/neighbour-0,neighbour-1,neighbour-2,neighbour-3,neighbour-4,neighbour-5,neighbour-6,neighbour-7",
        ],
    );
    let mut s = Sluice::start(&es_sink(
        engine,
        "rejections",
        "batch_max_bytes = 200000",
        // Blocking: the sender waits for the queue, so every drop would be
        // the sink's.
        "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\nqueue = { when_full = \"block\" }\n",
    ));
    let rejected_before = write_rejections(engine);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let node = engine.nodes[0];
    let neighbours: Vec<_> = (0..8)
        .map(|w| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut body = String::new();
                for i in 0..1000 {
                    body.push_str(&format!(
                        "{{\"index\":{{\"_index\":\"neighbour-{w}\"}}}}\n{{\"n\":{i},\"text\":\"a neighbour's document\"}}\n"
                    ));
                }
                let mut requests = 0;
                // Bounded: at most 40 requests each.
                while !done.load(std::sync::atomic::Ordering::Relaxed) && requests < 40 {
                    let _ = super::request(node, "POST", "/_bulk", &body);
                    requests += 1;
                }
                requests
            })
        })
        .collect();
    let n = 5_000;
    send_numbered(s.addr("tcp"), 0, n, "under load");
    let (stored, drops) = wait_drained(&s, engine, "rejections", n as u64, 180);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let requests: usize = neighbours.into_iter().map(|t| t.join().unwrap()).sum();
    let rejected = write_rejections(engine) - rejected_before;
    let (distinct, docs) = seqs(&engine.sources_all("rejections"));
    eprintln!(
        "{}: sent {n}, stored {stored} ({} distinct), counted drops {drops}; node rejected {rejected} write tasks; neighbours sent {requests} bulks",
        kind.name(),
        distinct.len()
    );
    assert!(rejected > 0, "the node rejected writes (429)");
    assert_eq!(docs, n, "no duplicates");
    assert_eq!(distinct.len(), n, "nothing lost");
    assert_eq!(n as u64, stored + drops);
    assert_eq!(drops, 0);
    assert!(s.stop().success());
}
both!(real_429_rejections_lose_and_duplicate_nothing);

/// `thread_pool.write.rejected` of the engine's (first) node.
fn write_rejections(engine: &Engine) -> u64 {
    let v = engine.ok("GET", "/_nodes/stats/thread_pool", "");
    v["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["thread_pool"]["write"]["rejected"].as_u64().unwrap())
        .sum()
}

/// A node that takes requests of at most 256 KiB: the sink splits its
/// 5 MiB batches and stores everything.
fn a_lowered_max_content_length_is_met_by_splitting(kind: Kind) {
    let Some(engine) = constrained(kind) else {
        return;
    };
    fresh(engine, &["/split"]);
    let mut s = Sluice::start(&es_sink(
        engine,
        "split",
        "gzip = false",
        "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n",
    ));
    let n = 5_000;
    send_numbered(s.addr("tcp"), 0, n, "split me");
    let (stored, drops) = wait_drained(&s, engine, "split", n as u64, 60);
    assert_eq!(stored, n as u64, "waited 60 s for every document");
    let (distinct, docs) = seqs(&engine.sources_all("split"));
    eprintln!(
        "{}: sent {n}, stored {stored} ({} distinct), counted drops {drops}",
        kind.name(),
        distinct.len()
    );
    assert_eq!((docs, distinct.len()), (n, n));
    assert_eq!(n as u64, stored + drops);
    assert!(s.stop().success());
}
both!(a_lowered_max_content_length_is_met_by_splitting);

/// `manage_template = true`: the template maps the ECS and Flume shapes and
/// the typed captures (a capture that arrives as "200" is a number, not
/// text); a restart keeps it; a newer version installed by someone else is
/// not overwritten.
fn a_managed_template_maps_the_document_types(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    fresh(engine, &["/typed-2026.11.24", "/_index_template/sluice-es"]);
    let routes = r#"
[[routes]]
name = "typed"
sink = "es"
appname = "web"
pattern = 'status=%{NUMBER:status:int} took=%{NUMBER:took:float}'
document = {}
[[routes]]
name = "legacy"
sink = "es"
appname = "orders"
document = { format = "flume" }
"#;
    let config = es_sink(
        engine,
        "typed-%Y.%m.%d",
        "manage_template = true\nilm_policy = \"sluice-logs\"",
        routes,
    );
    let mut s = Sluice::start(&config);
    crate::util::tcp_send(
        s.addr("tcp"),
        b"<134>1 2026-11-24T10:00:00Z web01 web - - - status=200 took=0.25 seq=1\n\
<166>1 2026-11-24T10:00:01Z web02 orders - - - Order created seq=2\n",
    );
    let stored = engine.wait_count("typed-2026.11.24", 2, 30);
    let drops = counted_drops(&s);
    eprintln!(
        "{}: sent 2, stored {stored}, counted drops {drops}",
        kind.name()
    );
    assert_eq!(stored, 2);
    assert_eq!(2, stored + drops);
    assert!(s.stop().success());
    let m = engine.ok("GET", "/typed-2026.11.24/_mapping", "");
    let p = &m["typed-2026.11.24"]["mappings"]["properties"];
    let ty = |path: &[&str]| {
        let mut v = p;
        for (k, part) in path.iter().enumerate() {
            v = &v[part];
            if k + 1 < path.len() {
                v = &v["properties"];
            }
        }
        v["type"].as_str().unwrap_or("none").to_owned()
    };
    let got = [
        ty(&["@timestamp"]),
        ty(&["message"]),
        ty(&["host", "hostname"]),
        ty(&["log", "syslog", "appname"]),
        ty(&["log", "syslog", "severity", "name"]),
        ty(&["log", "syslog", "facility", "name"]),
        ty(&["sluice", "captures", "status"]),
        ty(&["sluice", "captures", "took"]),
        ty(&["@message"]),
        ty(&["@source_host"]),
    ];
    eprintln!("{}: mapped types {got:?}", kind.name());
    assert_eq!(
        got,
        [
            "date", "text", "keyword", "keyword", "keyword", "keyword", "long", "double", "text",
            "keyword"
        ],
        "{m}"
    );
    // The capture is a number: a range query finds it.
    let hits = engine.ok(
        "POST",
        "/typed-*/_search",
        r#"{"query":{"range":{"sluice.captures.status":{"gte":100,"lt":300}}}}"#,
    );
    assert_eq!(hits["hits"]["total"]["value"], 1, "{hits}");
    // The template names the retention policy.
    let t = engine.ok("GET", "/_index_template/sluice-es", "");
    let t = &t["index_templates"][0]["index_template"];
    assert_eq!(t["version"], 1, "{t}");
    assert_eq!(t["_meta"]["ilm_policy"], "sluice-logs", "{t}");
    // Neither engine here has ILM/ISM installed: the policy is named in
    // _meta only, not as index.lifecycle.name (refused without ILM).
    assert!(
        t["template"]["settings"]["index"]["lifecycle"].is_null(),
        "{t}"
    );
    // The no-ILM warning names the engine detected (#23: it named
    // OpenSearch on Elasticsearch too).
    let named = match kind {
        Kind::OpenSearch => format!("OpenSearch {} has no ILM", super::OPENSEARCH_VERSION),
        Kind::Elasticsearch => format!("Elasticsearch {} has no ILM", super::ELASTICSEARCH_VERSION),
    };
    let stderr = s.stderr();
    let warn = stderr
        .lines()
        .find(|l| l.contains("has no ILM"))
        .unwrap_or("");
    eprintln!("{}: {warn}", kind.name());
    assert!(warn.contains(&named), "a WARN saying {named:?}:\n{stderr}");
    assert!(
        kind == Kind::OpenSearch || !warn.contains("OpenSearch"),
        "{warn}"
    );
    // A newer template (an operator's) is left alone by a restart.
    let mut newer = t.clone();
    newer["version"] = 99.into();
    engine.ok("PUT", "/_index_template/sluice-es", &newer.to_string());
    s.relaunch();
    crate::util::tcp_send(
        s.addr("tcp"),
        b"<134>1 2026-11-24T10:00:02Z web01 web - - - status=404 took=1 seq=3\n",
    );
    assert_eq!(engine.wait_count("typed-2026.11.24", 3, 30), 3);
    let t = engine.ok("GET", "/_index_template/sluice-es", "");
    assert_eq!(t["index_templates"][0]["index_template"]["version"], 99);
    assert!(s.stop().success());
}
both!(a_managed_template_maps_the_document_types);

/// `data_stream = "logs-sluice-default"`: documents go into the stream
/// (with `create`), and after a rollover into its new backing index.
fn a_data_stream_receives_documents_and_rolls_over(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    fresh(
        engine,
        &[
            "/_data_stream/logs-sluice-default",
            "/_index_template/sluice-ds",
        ],
    );
    let ds = "logs-sluice-default";
    let config = config(
        "",
        &format!(
            r#"
[[sinks]]
name = "ds"
type = "elasticsearch"
urls = ["{}"]
data_stream = "{ds}"
linger_ms = 50
[[routes]]
name = "all"
sink = "ds"
final = true
document = {{}}
[default_route]
sink = "events"
document = {{}}
"#,
            engine.urls()[0]
        ),
    );
    let mut s = Sluice::start(&config);
    send_numbered(s.addr("tcp"), 0, 100, "first");
    assert_eq!(engine.wait_count(ds, 100, 30), 100);
    let v = engine.ok("GET", &format!("/_data_stream/{ds}"), "");
    assert_eq!(
        v["data_streams"][0]["indices"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    engine.ok("POST", &format!("/{ds}/_rollover"), "");
    send_numbered(s.addr("tcp"), 100, 100, "second");
    let stored = engine.wait_count(ds, 200, 30);
    let drops = counted_drops(&s);
    let v = engine.ok("GET", &format!("/_data_stream/{ds}"), "");
    let backing: Vec<String> = v["data_streams"][0]["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index_name"].as_str().unwrap().to_owned())
        .collect();
    let newest = engine.count(backing.last().unwrap());
    eprintln!(
        "{}: sent 200, stored {stored} ({newest} in {}), counted drops {drops}",
        kind.name(),
        backing.last().unwrap()
    );
    assert_eq!(backing.len(), 2, "{v}");
    assert_eq!(newest, 100, "after the rollover into the new backing index");
    assert_eq!(200, stored + drops);
    assert!(s.stop().success());
}
// OpenSearch only: the Elasticsearch integ-test zip lacks the data-streams
// module (a `create` into a data stream answers 500 null_pointer_exception,
// `PUT /_data_stream/x` 405).
mod a_data_stream_receives_documents_and_rolls_over {
    #[test]
    fn opensearch() {
        super::a_data_stream_receives_documents_and_rolls_over(super::Kind::OpenSearch)
    }
}

/// A durable route, `kill -9` of sluice mid-stream, restart: the spill log
/// replays what it held; deterministic `_id`s make a replayed document
/// land once (`_count` = distinct). The frames not yet accepted at the
/// kill are sent again after the restart: in the end everything is
/// stored, once.
///
/// The replay's end is read from sluice (its spill log's pending records
/// reach 0), never guessed from a `_count` that stopped moving for a
/// while; and the index is read only once nothing writes to it (a
/// `search_after` walk over an index being written may see a document
/// twice or not at all).
fn kill_9_with_a_durable_route_stores_everything_once(kind: Kind) {
    let Some(engine) = super::shared(kind) else {
        return;
    };
    fresh(engine, &["/crash"]);
    let routes = r#"
[[routes]]
name = "durable"
sink = "es"
final = true
document = {}
[routes.queue]
durable = true
fsync = "batch"
"#;
    let started = Instant::now();
    let mut s = Sluice::start(&es_sink(engine, "crash", "", routes));
    let n = 10_000;
    // The sender writes at most the first half before the kill: it waits
    // there for the kill, then writes into a dead connection, where it
    // stops. The kill comes mid-stream however fast this machine stores.
    let half = n / 2;
    let addr = s.addr("tcp");
    let (killed, go_on) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        // Paced (2,000 a second at most): the durable log and the engine
        // hold a part of the first half each when the kill comes.
        for i in 0..n {
            if i == half {
                go_on
                    .recv_timeout(Duration::from_secs(300))
                    .expect("sluice killed within 300 s");
            }
            let frame = format!("<134>1 2026-11-24T10:00:00.000Z web01 app - - - seq={i} crash\n");
            if c.write_all(frame.as_bytes()).is_err() {
                return i;
            }
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        n
    });
    let pending = |s: &Sluice| s.metric("sluice_queue_spill_pending_records{route=\"durable\"}");
    wait_while!(120, || engine.count("crash") < 1_000);
    let at_kill = engine.count("crash");
    let logged = s.metric("sluice_queue_spilled_records_total{route=\"durable\"}");
    s.kill9();
    // The sender may be cut off before the gate (the kill can come while
    // it writes the first half); it waits no longer either way.
    let _ = killed.send(());
    let written = sender.join().unwrap();
    assert!(
        (1_000..=half as u64).contains(&at_kill),
        "waited 120 s for 1,000 stored before the kill, of the {half} sent so far: {at_kill} stored"
    );
    assert!(
        written < n,
        "the sender's writes after the kill fail: {written} of {n} written"
    );
    s.relaunch();
    let to_replay = pending(&s);
    wait_while!(120, || pending(&s) > 0);
    let left = pending(&s);
    assert_eq!(
        left, 0,
        "waited 120 s for the replay of {to_replay} records: {left} still pending"
    );
    let (distinct, docs) = seqs(&engine.sources_all("crash"));
    let k = distinct.len() as u64;
    eprintln!(
        "{}: {written} frames written before kill -9, {logged} in the spill log (at least), {at_kill} stored at the kill, {to_replay} replayed; {k} distinct stored after the replay ({docs} documents)",
        kind.name()
    );
    assert_eq!(docs as u64, k, "a replayed document landed once");
    assert!(k >= logged, "everything the log held was delivered");
    assert_eq!(distinct.iter().copied().max(), Some(k - 1), "a prefix");
    // The rest, after the restart.
    send_numbered(s.addr("tcp"), k as usize, n - k as usize, "crash");
    let (stored, drops) = wait_drained(&s, engine, "crash", n as u64, 120);
    assert_eq!(
        stored + drops,
        n as u64,
        "waited 120 s for {n} documents stored or counted as dropped"
    );
    let (distinct, docs) = seqs(&engine.sources_all("crash"));
    eprintln!(
        "{}: sent {n}, stored {stored} ({} distinct), counted drops {drops}; {:.1} s",
        kind.name(),
        distinct.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!((stored, docs, distinct.len()), (n as u64, n, n));
    assert_eq!(n as u64, stored + drops);
    assert!(s.stop().success());
}
both!(kill_9_with_a_durable_route_stores_everything_once);

/// A 3-node cluster (an index with a replica per shard) loses a node
/// (kill -9) mid-stream: the sink fails over to the others and every
/// document is stored once.
fn a_cluster_that_loses_a_node_stores_everything_once(kind: Kind) {
    let started = Instant::now();
    let Some(engine) = super::start(kind, 3, "256m", &[]) else {
        return;
    };
    let cluster_ready = started.elapsed();
    engine.ok(
        "PUT",
        "/failover",
        // Copies of the lost node's shards recover on the two left at
        // once (not after the default minute): the read below waits for
        // them instead of racing the recovery.
        r#"{"settings":{"number_of_shards":3,"number_of_replicas":1,"index.unassigned.node_left.delayed_timeout":"0s"}}"#,
    );
    let s = Sluice::start(&es_sink(
        &engine,
        "failover",
        "",
        "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\nqueue = { when_full = \"block\" }\n",
    ));
    let n = 20_000;
    // The sender writes the first half, then waits for the node to be
    // stopped before it writes the second: the stop comes mid-stream
    // however fast this machine stores the first half, and the second
    // half reaches a cluster that has lost a node.
    let half = n / 2;
    let addr = s.addr("tcp");
    let (stopped, go_on) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        for i in 0..n {
            if i == half {
                go_on
                    .recv_timeout(Duration::from_secs(300))
                    .expect("the node stopped within 300 s");
            }
            let frame =
                format!("<134>1 2026-11-24T10:00:00.000Z web01 app - - - seq={i} failover\n");
            c.write_all(frame.as_bytes()).unwrap();
            if i % 200 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    wait_while!(120, || engine.count("failover") < 3_000);
    let at_stop = engine.count("failover");
    assert!(
        (3_000..=half as u64).contains(&at_stop),
        "waited 120 s for 3,000 stored before the stop, of the {half} sent so far: {at_stop} stored"
    );
    engine.stop_node(2);
    stopped.send(()).unwrap();
    sender.join().unwrap();
    let mut s = s;
    let (stored, drops) = wait_drained(&s, &engine, "failover", n as u64, 300);
    assert_eq!(
        stored + drops,
        n as u64,
        "waited 300 s for {n} documents stored or counted as dropped"
    );
    // Read once the cluster has settled: every copy of every shard assigned
    // on the two nodes left, none initializing or relocating. A scroll that
    // meets a recovery or a relocation may miss a shard's page.
    let settled = engine.wait_settled("failover", 300);
    assert!(
        settled,
        "waited 300 s for index failover to be green with no shard initializing or relocating"
    );
    let (distinct, docs) = seqs(&engine.sources_all("failover"));
    eprintln!(
        "{}: sent {n}, stored {stored} ({} distinct, {docs} documents), counted drops {drops}, node n2 of 3 killed mid-stream at {at_stop} stored; cluster ready in {:.1} s, case {:.1} s in all",
        kind.name(),
        distinct.len(),
        cluster_ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let missing: Vec<u64> = (0..n as u64)
        .filter(|i| !distinct.contains(i))
        .take(10)
        .collect();
    assert_eq!(
        (stored, docs, distinct.len()),
        (n as u64, n, n),
        "(_count, documents read, distinct seqs) against {n} sent; first missing seqs {missing:?}"
    );
    assert_eq!(n as u64, stored + drops);
    assert!(s.stop().success());
}
both!(a_cluster_that_loses_a_node_stores_everything_once);
