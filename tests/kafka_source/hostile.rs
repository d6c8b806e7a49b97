//! Records an outside tester found hostile to the Kafka listener (issue
//! #24's defects D1, D4–D7): a header name that is not UTF-8 or that
//! holds a NUL, repeated `sluice.*` headers, a receive time out of range,
//! and plain records of different partitions that must not join.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedHeaders, Header, OwnedHeaders};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{RECEIVED, envelope, flush, indexer_config, kafka_metric, producer, send};
use crate::util::kafka::shared;
use crate::util::*;

/// `headers` with one more header whose name is `name`'s bytes exactly
/// (rdkafka's `Header` takes a `&str`; Kafka's names are bytes).
fn with_raw_header(headers: OwnedHeaders, name: &[u8], value: &[u8]) -> OwnedHeaders {
    // rdkafka hands out the native list only as a `&BorrowedHeaders`,
    // which is that pointer (`BorrowedHeaders::from_native_ptr`).
    let native = headers.as_borrowed() as *const BorrowedHeaders
        as *mut rdkafka::bindings::rd_kafka_headers_t;
    // SAFETY: `native` is the live header list `headers` owns (not
    // shared: `headers` is ours until returned); librdkafka copies the
    // name (`name.len()` bytes, NULs included) and the value.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_header_add(
            native,
            name.as_ptr().cast(),
            name.len() as isize,
            value.as_ptr().cast(),
            value.len() as isize,
        )
    };
    assert_eq!(
        err,
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
    );
    headers
}

/// The group's committed offset of partition 0 of `topic`.
fn committed(kafka: &Kafka, group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .ok()?;
    match got.find_partition(topic, 0)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// A header name that is not UTF-8 killed the consumer thread (rdkafka
/// unwraps `to_str()` on every name), and the group could not get past
/// the record. Such a name is no `sluice.*` header: the record reads as
/// if it were absent. A name cut at a NUL is not `sluice.envelope`; a
/// repeated `sluice.*` header and a receive time out of range make a
/// malformed envelope, dropped and counted. Everything after is
/// delivered, and the offsets are committed past all of it.
#[test]
fn hostile_headers_are_counted_and_the_listener_goes_on() {
    let Some(kafka) = shared() else { return };
    let topic = "source.hostile";
    kafka.create_topic(topic, 1, 1, &[]);
    let es = EsServer::start();
    let producer = producer(kafka);
    let mut sent = 0i64;
    let mut produce = |payload: &[u8], headers: Option<OwnedHeaders>| {
        send(&producer, topic, Some(0), payload, headers);
        sent += 1;
    };
    // Plain: its only header has a name that is not UTF-8.
    produce(
        b"<14>1 - host app - - - odd name",
        Some(with_raw_header(OwnedHeaders::new(), b"\xff\xfebad", b"x")),
    );
    // An envelope with such an extra header stays an envelope.
    produce(
        b"<14>1 - host app - - - odd envelope",
        Some(with_raw_header(
            envelope(1, RECEIVED, Some("192.0.2.7:40001"), None),
            b"\xff\xfe",
            b"y",
        )),
    );
    // `sluice.envelope\0not-really` is not `sluice.envelope`: plain.
    produce(
        b"<14>1 - host app - - - nul name",
        Some(with_raw_header(
            OwnedHeaders::new(),
            b"sluice.envelope\0not-really",
            b"9",
        )),
    );
    // A version header before a valid set: malformed, not version 1.
    let twice = OwnedHeaders::new().insert(Header {
        key: "sluice.envelope",
        value: Some("2"),
    });
    let (received, id) = (RECEIVED.to_string(), format!("{:032x}", 7));
    let twice = [
        ("sluice.envelope", "1"),
        ("sluice.received", received.as_str()),
        ("sluice.id", id.as_str()),
        ("sluice.peer", "192.0.2.7:1"),
    ]
    .into_iter()
    .fold(twice, |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    });
    produce(b"<14>1 - host app - - - twice", Some(twice));
    // A receive time in 2262.
    let far = OwnedHeaders::new()
        .insert(Header {
            key: "sluice.envelope",
            value: Some("1"),
        })
        .insert(Header {
            key: "sluice.received",
            value: Some(&i64::MAX.to_string()),
        })
        .insert(Header {
            key: "sluice.id",
            value: Some(&format!("{:032x}", 8)),
        });
    produce(b"<14>1 - host app - - - far future", Some(far));
    let good = 5;
    for j in 0..good {
        produce(format!("<14>1 - host app - - - good {j}").as_bytes(), None);
    }
    flush(&producer);

    let group = "hostile";
    let mut s = Sluice::start(&indexer_config(kafka, topic, group, &es, ""));
    let expected = 3 + good;
    wait_while!(30, || {
        let stored = es.total();
        let log = s.stderr();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        let (status, health) = s.health_status();
        observed(format!(
            "stored {stored} of {expected}; health {status} {health}; log tail {tail:?}"
        ));
        stored < expected
    });
    let docs = es.docs("syslog");
    let mut messages: Vec<String> = docs
        .values()
        .map(|d| d["message"].as_str().unwrap_or("").to_owned())
        .collect();
    messages.sort();
    let mut want = vec![
        "nul name".to_owned(),
        "odd envelope".to_owned(),
        "odd name".to_owned(),
    ];
    want.extend((0..good).map(|j| format!("good {j}")));
    want.sort();
    assert_eq!(messages, want);
    let envelope_doc = docs
        .values()
        .find(|d| d["message"] == "odd envelope")
        .unwrap();
    assert_eq!(envelope_doc["source"]["port"], 40001, "{envelope_doc}");
    let (envelopes, plains, broken, version) = (
        kafka_metric(&s, "records", ",kind=\"envelope\""),
        kafka_metric(&s, "records", ",kind=\"plain\""),
        kafka_metric(&s, "dropped_records", ",reason=\"envelope\""),
        kafka_metric(&s, "dropped_records", ",reason=\"envelope_version\""),
    );
    println!(
        "sent {sent}: delivered {} = envelope {envelopes} + plain {plains}; dropped envelope {broken}, envelope_version {version}",
        docs.len()
    );
    assert_eq!(
        (envelopes, plains, broken, version),
        (1, 2 + good as u64, 2, 0)
    );
    assert_eq!(docs.len() as i64 + broken as i64, sent);
    assert!(s.stop().success());
    // Stopped: what was done with is committed, the hostile records too.
    assert_eq!(committed(kafka, group, topic), Some(sent));
}

/// Plain records carry no peer: all of them shared one join stream, so
/// a continuation line on one partition joined an event of another. The
/// join stream of a record is its topic and partition (and its peer).
#[test]
fn plain_records_of_different_partitions_do_not_join() {
    let Some(kafka) = shared() else { return };
    let topic = "source.join";
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    let producer = producer(kafka);
    let mut s = Sluice::start(&indexer_config(
        kafka,
        topic,
        "join",
        &es,
        "multiline = true\nmultiline_window_ms = 10000",
    ));
    let frames = [
        (
            0,
            "<13>Mar  7 19:06:53 hostA appA: failed java.lang.IllegalStateException: boom",
        ),
        (1, "\tat com.tenantB.Secret.run(Secret.java:1)"),
        (0, "\tat com.tenantA.Own.run(Own.java:2)"),
    ];
    // One at a time, each taken (pending in the joiner, whose window is
    // 10 s) before the next is produced: the order is the listener's.
    for (n, (partition, frame)) in frames.iter().enumerate() {
        send(&producer, topic, Some(*partition), frame.as_bytes(), None);
        flush(&producer);
        wait_while!(30, || {
            let taken = kafka_metric(&s, "records", ",kind=\"plain\"");
            observed(format!("records taken {taken}, want {}", n + 1));
            taken <= n as u64
        });
    }
    wait_while!(30, || {
        let stored = es.total();
        observed(format!(
            "stored {stored} of 2: {:?}",
            es.docs("syslog")
                .values()
                .map(|d| d["message"].to_string())
                .collect::<Vec<_>>()
        ));
        stored < 2
    });
    let mut messages: Vec<String> = es
        .docs("syslog")
        .values()
        .map(|d| d["message"].as_str().unwrap_or("").to_owned())
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            "\tat com.tenantB.Secret.run(Secret.java:1)",
            "failed java.lang.IllegalStateException: boom\n\tat com.tenantA.Own.run(Own.java:2)",
        ]
    );
    assert!(s.stop().success());
}
