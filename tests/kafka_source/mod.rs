//! The Kafka listener (`protocol = "kafka"`, issue #24) through the real
//! binary: raw envelopes decoded as the edge received them (receive time,
//! peer, zone, `_id`), plain and refused records counted, and at least
//! once end to end — an indexer killed mid-stream loses nothing its
//! survivor does not re-read, a sink that is down pauses, never drops.
//!
//! Against the real broker (`util::kafka`, Kafka 4.4 KRaft); each test
//! uses its own topic on the shared single-node cluster.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::util::kafka::{es_events_route, shared};
use crate::util::*;

mod hostile;
mod repaused;
mod reset_lag;
mod shutdown;

const NONCE: u64 = 0x5eed_0000_0000_0001;
/// 2026-03-07T12:00:00Z: an RFC 3164 `Mar  7` stamp gets this year.
const RECEIVED: i64 = 1_772_884_800_000_000_000;

fn producer(kafka: &Kafka) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// An envelope's headers, as an edge's Kafka sink writes them.
fn envelope(
    frame_number: u64,
    received: i64,
    peer: Option<&str>,
    tz: Option<&str>,
) -> OwnedHeaders {
    let id = format!("{NONCE:016x}{frame_number:016x}");
    let received = received.to_string();
    let mut h = OwnedHeaders::new()
        .insert(Header {
            key: "sluice.envelope",
            value: Some("1"),
        })
        .insert(Header {
            key: "sluice.received",
            value: Some(received.as_str()),
        })
        .insert(Header {
            key: "sluice.listener",
            value: Some("tcp"),
        })
        .insert(Header {
            key: "sluice.framing",
            value: Some("auto"),
        })
        .insert(Header {
            key: "sluice.id",
            value: Some(id.as_str()),
        });
    if let Some(p) = peer {
        h = h.insert(Header {
            key: "sluice.peer",
            value: Some(p),
        });
    }
    if let Some(tz) = tz {
        h = h.insert(Header {
            key: "sluice.timezone",
            value: Some(tz),
        });
    }
    h
}

fn send(
    producer: &BaseProducer,
    topic: &str,
    partition: Option<i32>,
    payload: &[u8],
    headers: Option<OwnedHeaders>,
) {
    let mut r = BaseRecord::<(), [u8]>::to(topic).payload(payload);
    if let Some(h) = headers {
        r = r.headers(h);
    }
    if let Some(p) = partition {
        r = r.partition(p);
    }
    let mut r = r;
    loop {
        match producer.send(r) {
            Ok(()) => return,
            Err((e, back)) => {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "produce: {e}"
                );
                producer.poll(Duration::from_millis(10));
                r = back;
            }
        }
    }
}

fn flush(producer: &BaseProducer) {
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// The `_id` the edge process (nonce [`NONCE`]) gives frame `number`
/// received at `received` on route `route` (`document_key`).
fn edge_id(route: &str, number: u64, received: i64) -> String {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_128_with_seed};
    let mut context = [0u8; 24];
    context[0..8].copy_from_slice(&NONCE.to_le_bytes());
    context[8..16].copy_from_slice(&number.to_le_bytes());
    context[16..24].copy_from_slice(&received.to_le_bytes());
    xxh3_128_with_seed(&context, xxh3_64(route.as_bytes()))
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An indexer: the kafka listener, documents to the `_bulk` stand-in.
fn indexer_config(
    kafka: &Kafka,
    topic: &str,
    group: &str,
    es: &EsServer,
    extra_listener: &str,
) -> String {
    format!(
        r#"
shutdown_timeout_secs = 10
[admin]
listen = "127.0.0.1:0"
[[listeners]]
name = "from_kafka"
protocol = "kafka"
brokers = ["{}"]
topics = ["{topic}"]
group_id = "{group}"
commit_interval_ms = 100
{extra_listener}
{route}"#,
        kafka.bootstrap,
        route = es_events_route(es)
    )
}

fn kafka_metric(s: &Sluice, name: &str, labels: &str) -> u64 {
    s.metric(&format!(
        "sluice_listener_kafka_{name}_total{{listener=\"from_kafka\"{labels}}}"
    ))
}

/// Envelopes are decoded as the edge received them: its receive time
/// decides an RFC 3164 year, its zone reads a zone-less stamp, its peer
/// is the source, and the `_id` is the one the edge computes. Plain
/// records are decoded as received now from no peer; envelopes of another
/// version or with a broken header are dropped and counted.
#[test]
fn kafka_listener_decodes_envelopes_as_the_edge_received_them() {
    let Some(kafka) = shared() else { return };
    let topic = "source.decode";
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    let producer = producer(kafka);
    let n = 40u64;
    for i in 0..n {
        let frame = format!("<13>Mar  7 19:06:53 web01 app: envelope {i}");
        let received = RECEIVED + i as i64;
        let tz = (i % 2 == 0).then_some("Asia/Tokyo");
        send(
            &producer,
            topic,
            None,
            frame.as_bytes(),
            Some(envelope(i, received, Some("192.0.2.7:40001"), tz)),
        );
    }
    for j in 0..5 {
        send(
            &producer,
            topic,
            None,
            format!("<14>1 - host app - - - plain {j}").as_bytes(),
            None,
        );
    }
    let bad_version = OwnedHeaders::new()
        .insert(Header {
            key: "sluice.envelope",
            value: Some("2"),
        })
        .insert(Header {
            key: "sluice.received",
            value: Some("1"),
        });
    send(
        &producer,
        topic,
        None,
        b"<14>1 - h a - - - v2",
        Some(bad_version),
    );
    let no_id = OwnedHeaders::new()
        .insert(Header {
            key: "sluice.envelope",
            value: Some("1"),
        })
        .insert(Header {
            key: "sluice.received",
            value: Some("1"),
        });
    send(
        &producer,
        topic,
        None,
        b"<14>1 - h a - - - no id",
        Some(no_id),
    );
    flush(&producer);

    let mut s = Sluice::start(&indexer_config(kafka, topic, "decode", &es, ""));
    let expected = n as usize + 5;
    wait_while!(30, || {
        let stored = es.total();
        let log = s.stderr();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        observed(format!(
            "log tail {tail:?}; stored {stored}; {}",
            s.scrape()
                .lines()
                .filter(|l| l.starts_with("sluice_listener_kafka")
                    || l.starts_with("sluice_queue_pushed")
                    || l.starts_with("sluice_sink_"))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        stored < expected
    });
    let docs = es.docs("syslog");
    assert_eq!(docs.len(), expected);
    for i in 0..n {
        let received = RECEIVED + i as i64;
        let id = edge_id("events", i, received);
        let doc = docs
            .get(&id)
            .unwrap_or_else(|| panic!("envelope {i}: no document with the edge's _id {id}"));
        assert_eq!(doc["message"], format!("envelope {i}"));
        // Zone-less BSD stamp: 19:06:53 in the edge listener's zone
        // (Asia/Tokyo = UTC+9 on even records, the indexer's UTC on odd
        // ones), in the year of the receive time.
        let want = if i % 2 == 0 {
            "2026-03-07T10:06:53.000Z"
        } else {
            "2026-03-07T19:06:53.000Z"
        };
        assert_eq!(doc["@timestamp"], want, "envelope {i}: {doc}");
        assert_eq!(doc["source"]["address"], "192.0.2.7", "{doc}");
        assert_eq!(doc["source"]["port"], 40001, "{doc}");
        assert_eq!(
            doc["event"]["created"], "2026-03-07T12:00:00.000000Z",
            "{doc}"
        );
    }
    let plain: Vec<_> = docs
        .values()
        .filter(|d| d["message"].as_str().unwrap_or("").starts_with("plain "))
        .collect();
    assert_eq!(plain.len(), 5);
    for d in plain {
        assert!(d.get("source").is_none(), "a plain record has no peer: {d}");
    }
    let (envelopes, plains) = (
        kafka_metric(&s, "records", ",kind=\"envelope\""),
        kafka_metric(&s, "records", ",kind=\"plain\""),
    );
    let version = kafka_metric(&s, "dropped_records", ",reason=\"envelope_version\"");
    let broken = kafka_metric(&s, "dropped_records", ",reason=\"envelope\"");
    observed(format!(
        "kafka records: envelope {envelopes}, plain {plains}, dropped envelope_version {version}, envelope {broken}"
    ));
    assert_eq!((envelopes, plains, version, broken), (n, 5, 1, 1));
    assert!(s.stop().success());
}

/// A healthy indexer reading a backlog faster than its pipeline takes it
/// does not pause: a hand-off to the pipeline that is full for a moment
/// is not backpressure (pausing makes librdkafka drop what it prefetched
/// and fetch and decompress it again). Every record arrives, and no
/// partition was ever paused (`sluice_listener_kafka_pauses_total`).
#[test]
fn kafka_listener_reading_a_backlog_with_a_healthy_sink_never_pauses() {
    let Some(kafka) = shared() else { return };
    let topic = "source.backlog";
    kafka.create_topic(topic, 4, 1, &[]);
    let es = EsServer::start();
    let producer = producer(kafka);
    let n = 20_000usize;
    for i in 0..n {
        let frame = format!("<14>1 - host{} app - - - backlog {i}", i % 16);
        // Spread evenly: 5,000 a partition, below max_in_flight (10,000),
        // whose pause is backpressure indeed.
        send(
            &producer,
            topic,
            Some((i % 4) as i32),
            frame.as_bytes(),
            None,
        );
    }
    flush(&producer);

    let mut s = Sluice::start(&indexer_config(kafka, topic, "backlog", &es, ""));
    wait_while!(120, || {
        let stored = es.total();
        observed(format!(
            "stored {stored} of {n}; pauses {}; in flight {}",
            kafka_metric(&s, "pauses", ""),
            s.metric("sluice_listener_kafka_in_flight_records{listener=\"from_kafka\"}")
        ));
        stored < n
    });
    let plain = kafka_metric(&s, "records", ",kind=\"plain\"");
    let pauses = kafka_metric(&s, "pauses", "");
    let rebalances = kafka_metric(&s, "rebalances", "");
    eprintln!(
        "backlog of {n}: stored {}, consumed {plain}, partition pauses {pauses}, rebalances {rebalances}",
        es.total()
    );
    assert_eq!(es.total(), n);
    assert_eq!(pauses, 0, "partitions paused with a healthy sink");
    assert!(s.stop().success());
}
