//! Sinks answering what a healthy engine would not (issue 20, items 8–10):
//! an InfluxDB 1.x 400 that names no line, Elasticsearch items answered
//! 429 for a while, a 200 that is not a `_bulk` answer, a `Retry-After`
//! of an hour. Every case checks sent = delivered + counted drops, exactly,
//! and prints its figures.
//!
//! A real `influxd` never answers a 400 that names no line for a
//! well-formed write, so the InfluxDB cases use a stand-in here; the
//! Elasticsearch cases use the in-repo `_bulk` stand-in's knobs.

use std::time::Instant;

use crate::util::{EsServer, InfluxStandIn, Sluice, es_config, read_lines, tcp_send, wait_while};

/// Metric lines `m_<kind>` from frames `kind=<word> n=<number>`.
fn influx_sluice(url: &str) -> Sluice {
    let usage = r#"
[[routes]]
name = "usage"
sink = "influx"
final = true
pattern = 'kind=(?P<kind>\w+) n=(?P<n>\d+)'
[routes.metric]
measurement = "m_{kind}"
fields = { n = "int" }
"#;
    Sluice::start(&crate::util::influx_config_at(
        url,
        "db",
        crate::util::BATCH_100,
        usage,
    ))
}

fn frames(n: usize, kind: impl Fn(usize) -> &'static str) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            format!(
                "<14>1 2026-11-24T10:00:{:02}Z h app - - - kind={} n={i}\n",
                i % 60,
                kind(i)
            )
            .into_bytes()
        })
        .collect()
}

const INFLUX_SENT: &str = "sluice_sink_records_sent_total{sink=\"influx\",route=\"usage\"}";
const INFLUX_REJECTED: &str =
    "sluice_sink_failed_records_total{sink=\"influx\",route=\"usage\",reason=\"rejected\"}";
const INFLUX_GAVE_UP: &str =
    "sluice_sink_failed_records_total{sink=\"influx\",route=\"usage\",reason=\"gave_up\"}";

/// Issue 20 item 8: a 1.x 400 whose body names no line (here: any request
/// holding a `m_poison` line is refused whole, as a proxy or an old server
/// may) is not a partial write. The batch is bisected: every good line is
/// stored once, every poison line dead-lettered with the reason, none
/// counted as sent.
#[test]
fn influxdb_v1_400_naming_no_line_is_bisected_not_counted_as_sent() {
    let influx = InfluxStandIn::start(|lines| {
        if lines.iter().any(|l| l.starts_with("m_poison")) {
            (400, r#"{"error":"request refused"}"#.to_owned())
        } else {
            (204, String::new())
        }
    });
    let mut s = influx_sluice(&influx.url);
    let n = 40;
    let poison = |i: usize| i % 10 == 3;
    tcp_send(
        s.addr("tcp"),
        &frames(n, |i| if poison(i) { "poison" } else { "good" }),
    );
    wait_while!(20, || {
        s.metric(INFLUX_SENT) + s.metric(INFLUX_REJECTED) + s.metric(INFLUX_GAVE_UP) < n as u64
    });
    let (sent, rejected, gave_up) = (
        s.metric(INFLUX_SENT),
        s.metric(INFLUX_REJECTED),
        s.metric(INFLUX_GAVE_UP),
    );
    let stored = influx.stored();
    let dead = read_lines(&s.path("sluice-data/dead-letter/influx.ndjson"));
    println!(
        "sent {n} frames: stored {}, records_sent {sent}, rejected {rejected}, gave_up {gave_up}, dead-letter lines {}, requests {}",
        stored.len(),
        dead.len(),
        influx.requests()
    );
    let mut stored_ns: Vec<usize> = stored
        .iter()
        .map(|l| {
            l.split("n=")
                .nth(1)
                .unwrap()
                .split('i')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    stored_ns.sort_unstable();
    let good: Vec<usize> = (0..n).filter(|&i| !poison(i)).collect();
    assert_eq!(stored_ns, good, "every good line stored, each once");
    assert_eq!(
        sent,
        good.len() as u64,
        "records_sent counts only what was stored"
    );
    assert_eq!(
        rejected,
        (n - good.len()) as u64,
        "each poison line rejected"
    );
    assert_eq!(gave_up, 0);
    assert_eq!(
        sent + rejected + gave_up,
        n as u64,
        "sent = delivered + counted drops"
    );
    assert_eq!(dead.len(), n - good.len(), "{dead:?}");
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["line"].as_str().unwrap().starts_with("m_poison,"), "{v}");
        assert!(
            v["reason"].as_str().unwrap().contains("request refused"),
            "{v}"
        );
    }
    assert!(s.stop().success());
}

/// Issue 20 item 8, as reported: every write answered
/// `400 {"error":"gzip: invalid header"}`. Nothing is stored, so nothing
/// may be counted as sent: every record is dead-lettered with the reason.
#[test]
fn influxdb_v1_400_gzip_invalid_header_dead_letters_every_record() {
    let influx = InfluxStandIn::start(|_| (400, r#"{"error":"gzip: invalid header"}"#.to_owned()));
    let mut s = influx_sluice(&influx.url);
    let n = 20;
    tcp_send(s.addr("tcp"), &frames(n, |_| "good"));
    wait_while!(20, || {
        s.metric(INFLUX_SENT) + s.metric(INFLUX_REJECTED) + s.metric(INFLUX_GAVE_UP) < n as u64
    });
    let (sent, rejected, gave_up) = (
        s.metric(INFLUX_SENT),
        s.metric(INFLUX_REJECTED),
        s.metric(INFLUX_GAVE_UP),
    );
    let dead = read_lines(&s.path("sluice-data/dead-letter/influx.ndjson"));
    println!(
        "sent {n} frames: stored {}, records_sent {sent}, rejected {rejected}, gave_up {gave_up}, dead-letter lines {}, requests {}",
        influx.stored().len(),
        dead.len(),
        influx.requests()
    );
    assert_eq!(sent, 0, "nothing was stored, so nothing is counted as sent");
    assert_eq!(rejected, n as u64);
    assert_eq!(gave_up, 0);
    assert_eq!(dead.len(), n, "every record dead-lettered: {dead:?}");
    let mut ns: Vec<usize> = dead
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(
                v["reason"]
                    .as_str()
                    .unwrap()
                    .contains("gzip: invalid header"),
                "{v}"
            );
            let line = v["line"].as_str().unwrap();
            line.split("n=")
                .nth(1)
                .unwrap()
                .split('i')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..n).collect::<Vec<_>>(), "each record's own line");
    assert!(s.stop().success());
}

const ALL_TO_ES: &str = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
const ES_SENT: &str = "sluice_sink_records_sent_total{sink=\"es\",route=\"all\"}";
const ES_RETRIES: &str = "sluice_sink_retries_total{sink=\"es\",route=\"all\"}";
const ES_REJECTED: &str =
    "sluice_sink_failed_records_total{sink=\"es\",route=\"all\",reason=\"rejected\"}";
const ES_GAVE_UP: &str =
    "sluice_sink_failed_records_total{sink=\"es\",route=\"all\",reason=\"gave_up\"}";
const ES_UP: &str = "sluice_sink_up{sink=\"es\",route=\"all\"}";

/// `sluice_sink_up` for the route, which must be exposed.
fn sink_up(s: &Sluice) -> u64 {
    s.required_metric(ES_UP)
}

/// The sink's entry in `/health`: (overall status, its error).
fn es_health(s: &Sluice) -> (String, Option<String>) {
    s.sink_health("es", "all")
}

/// While a fault lasts: `/health` degraded naming `reason`, `sink_up` 0,
/// retries counted, nothing stored. Then the fault ends (`end`) and every
/// record is stored exactly once: sent = stored + counted drops.
fn es_fault_is_seen_and_nothing_lost(
    es: &EsServer,
    s: &mut Sluice,
    end: impl FnOnce(),
    reason: &str,
) {
    let n = 30;
    let frames: String = (0..n)
        .map(|i| format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n"))
        .collect();
    tcp_send(s.addr("tcp"), frames.as_bytes());
    let seen = |s: &Sluice| {
        let (status, error) = es_health(s);
        status == "degraded" && error.is_some_and(|e| e.contains(reason))
    };
    wait_while!(15, || !seen(s) || s.metric(ES_RETRIES) < 4);
    let (status, error) = es_health(s);
    let (up, retries) = (sink_up(s), s.metric(ES_RETRIES));
    println!(
        "during the fault: /health {status} ({error:?}), sink_up {up}, retries {retries}, stored {}, requests {}",
        es.total(),
        es.state.lock().unwrap().requests
    );
    assert!(
        seen(s),
        "waited 15 s for /health to be degraded naming {reason:?}: {status} {error:?}"
    );
    assert_eq!(up, 0, "sluice_sink_up while the fault lasts");
    assert!(
        retries >= 4,
        "retries counted while the fault lasts: {retries}"
    );
    assert_eq!(es.total(), 0, "nothing stored while the fault lasts");
    end();
    wait_while!(30, || es.total() < n || s.metric(ES_SENT) < n as u64);
    let (sent, rejected, gave_up) = (
        s.metric(ES_SENT),
        s.metric(ES_REJECTED),
        s.metric(ES_GAVE_UP),
    );
    println!(
        "after the fault: sent {n} frames, stored {}, records_sent {sent}, rejected {rejected}, gave_up {gave_up}, retries {}",
        es.total(),
        s.metric(ES_RETRIES)
    );
    assert_eq!(es.total(), n, "waited 30 s for every document to be stored");
    assert_eq!(sent, n as u64);
    assert_eq!((rejected, gave_up), (0, 0));
    assert_eq!(
        n as u64,
        es.total() as u64 + rejected + gave_up,
        "sent = stored + counted drops"
    );
    wait_while!(10, || es_health(s).0 != "ok" || sink_up(s) != 1);
    assert_eq!(
        es_health(s).0,
        "ok",
        "/health back to ok once the fault ended"
    );
    assert_eq!(sink_up(s), 1);
}

/// Issue 20 item 9: every item answered 429 for a while.
#[test]
fn elasticsearch_items_answered_429_show_on_health_and_are_retried() {
    let es = EsServer::start();
    es.knobs(|k| k.items_429 = true);
    let mut s = Sluice::start(&es_config(&[es.url()], "", ALL_TO_ES));
    es_fault_is_seen_and_nothing_lost(&es, &mut s, || es.knobs(|k| k.items_429 = false), "429");
    assert!(es.state.lock().unwrap().answered_429 >= 60);
    assert!(s.stop().success());
}

/// Issue 20 item 9: a 200 whose body is not a `_bulk` answer (a proxy's
/// page) is a failure, retried, and shown.
#[test]
fn elasticsearch_200_that_is_not_a_bulk_answer_is_a_failure() {
    let es = EsServer::start();
    es.knobs(|k| k.not_bulk_200 = true);
    let mut s = Sluice::start(&es_config(&[es.url()], "", ALL_TO_ES));
    es_fault_is_seen_and_nothing_lost(
        &es,
        &mut s,
        || es.knobs(|k| k.not_bulk_200 = false),
        "not a _bulk answer",
    );
    assert!(s.stop().success());
}

/// A node that accepts requests and never answers: each request times
/// out (`timeout_secs = 1`), is retried and shown; once the node answers
/// again everything is stored once.
#[test]
fn elasticsearch_node_that_hangs_is_a_failure_shown_and_retried() {
    let es = EsServer::start();
    es.knobs(|k| k.hang = true);
    let config =
        es_config(&[es.url()], "", ALL_TO_ES).replace("timeout_secs = 5", "timeout_secs = 1");
    let mut s = Sluice::start(&config);
    es_fault_is_seen_and_nothing_lost(&es, &mut s, || es.knobs(|k| k.hang = false), "timed out");
    assert!(s.stop().success());
}

/// Issue 20 item 10: a 503 with `Retry-After: 3600` once; with
/// `max_backoff_secs = 1` the record is stored within seconds, not an
/// hour.
#[test]
fn elasticsearch_retry_after_is_capped_by_max_backoff_secs() {
    let es = EsServer::start();
    es.knobs(|k| {
        k.fail_requests = 1;
        k.retry_after_secs = Some(3600);
    });
    let mut s = Sluice::start(&es_config(&[es.url()], "max_backoff_secs = 1", ALL_TO_ES));
    let started = Instant::now();
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - one\n",
    );
    // A few multiples of max_backoff_secs, far below the hour asked for.
    wait_while!(5, || es.total() < 1);
    let took = started.elapsed();
    let (requests, retries) = (es.state.lock().unwrap().requests, s.metric(ES_RETRIES));
    println!(
        "stored {} after {took:?}; requests {requests}, retries {retries}, records_sent {}",
        es.total(),
        s.metric(ES_SENT)
    );
    assert_eq!(
        es.total(),
        1,
        "waited 5 s for the record after a 503 with Retry-After: 3600 and max_backoff_secs = 1: the wait was not capped"
    );
    assert_eq!(requests, 2, "the 503, then the write");
    assert_eq!(retries, 1);
    wait_while!(5, || s.metric(ES_SENT) < 1);
    let (sent, rejected, gave_up) = (
        s.metric(ES_SENT),
        s.metric(ES_REJECTED),
        s.metric(ES_GAVE_UP),
    );
    println!("records_sent {sent}, rejected {rejected}, gave_up {gave_up}");
    assert_eq!(
        (sent, rejected, gave_up),
        (1, 0, 0),
        "sent = stored + counted drops"
    );
    assert!(s.stop().success());
}
