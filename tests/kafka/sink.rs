//! The Kafka sink through the real binary into a real broker (issue #24):
//! what lands in the topic, byte for byte, with its envelope headers.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::kafka::{Kafka, KafkaRecord, shared};
use crate::util::*;

/// A config of the test listeners and `sinks_and_routes`.
pub(super) fn kafka_config(sinks_and_routes: &str) -> String {
    format!("data_dir = \"data\"\n{LISTENERS}\n{sinks_and_routes}")
}

/// Records of `topic` once there are at least `n` (waits up to `secs`).
pub(super) fn wait_records(kafka: &Kafka, topic: &str, n: usize, secs: u64) -> Vec<KafkaRecord> {
    let mut got = Vec::new();
    wait_until(secs, &format!("{n} records in topic {topic}"), || {
        got = kafka.read_topic(topic);
        got.len() >= n
    });
    got
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// (a) N frames over TCP and N over UDP to a route with a raw-payload
/// Kafka sink (key = host) and to a route with an ECS-payload one: the
/// raw topic holds exactly 2N distinct records whose values are the
/// frames byte for byte and whose headers name the listener, its framing,
/// the sender's address, a receive time within the test and a distinct
/// id; one host's records share one partition; the ECS topic holds the
/// same 2N messages as documents.
#[test]
fn kafka_sink_raw_envelope_and_ecs_documents_over_tcp_and_udp() {
    let Some(kafka) = shared() else { return };
    kafka.create_topic("edge.raw", 3, 1, &[]);
    kafka.create_topic("docs.ecs", 2, 1, &[]);
    let config = kafka_config(&format!(
        r#"
[[sinks]]
name = "kafka_raw"
type = "kafka"
brokers = ["{b}"]
topic = "edge.{{route}}"
key = "{{host}}"
payload = "raw"
linger_ms = 20

[[sinks]]
name = "kafka_ecs"
type = "kafka"
brokers = ["{b}"]
topic = "docs.{{route}}"
payload = "ecs"
compression = "lz4"

[[routes]]
name = "raw"
sink = "kafka_raw"

[[routes]]
name = "ecs"
sink = "kafka_ecs"
"#,
        b = kafka.bootstrap
    ));
    let mut sluice = Sluice::start(&config);
    let n = 300;
    let started = now_nanos();
    // TCP: newline-framed; UDP: one frame a datagram. Four hosts.
    let frame = |via: &str, i: usize| {
        format!(
            "<14>1 2026-11-24T10:00:00Z host{} app - - - {via} message {i} \u{e9}",
            i % 4
        )
    };
    let mut tcp = TcpStream::connect(sluice.addr("tcp")).unwrap();
    let tcp_peer = tcp.local_addr().unwrap();
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend_from_slice(frame("tcp", i).as_bytes());
        bytes.push(b'\n');
    }
    tcp.write_all(&bytes).unwrap();
    drop(tcp);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_peer = udp.local_addr().unwrap();
    for i in 0..n {
        udp.send_to(frame("udp", i).as_bytes(), sluice.addr("udp"))
            .unwrap();
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let raw = wait_records(kafka, "edge.raw", 2 * n, 60);
    let ecs = wait_records(kafka, "docs.ecs", 2 * n, 60);
    let finished = now_nanos();
    eprintln!(
        "sent {} (tcp {n}, udp {n}); raw topic {}, ecs topic {}",
        2 * n,
        raw.len(),
        ecs.len()
    );
    assert_eq!(raw.len(), 2 * n, "exactly the frames sent, none twice");
    assert_eq!(ecs.len(), 2 * n);

    let mut values = HashSet::new();
    let mut ids = HashSet::new();
    let mut partition_of_host: BTreeMap<Vec<u8>, HashSet<i32>> = BTreeMap::new();
    for r in &raw {
        let text = String::from_utf8(r.value.clone()).unwrap();
        let (listener, framing, peer) = if text.contains(" tcp message ") {
            ("tcp", "auto", tcp_peer)
        } else {
            ("udp", "datagram", udp_peer)
        };
        assert_eq!(r.header("sluice.envelope").as_deref(), Some("1"), "{r:?}");
        assert_eq!(r.header("sluice.listener").as_deref(), Some(listener));
        assert_eq!(r.header("sluice.framing").as_deref(), Some(framing));
        assert_eq!(r.header("sluice.peer"), Some(peer.to_string()));
        assert_eq!(r.header("sluice.timezone"), None, "default timezone");
        let received: i64 = r.header("sluice.received").unwrap().parse().unwrap();
        assert!(
            (started..=finished).contains(&received),
            "received {received} not within the test ({started}..{finished})"
        );
        let id = r.header("sluice.id").unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(ids.insert(id), "ids are distinct");
        let host = text.split(' ').nth(2).unwrap();
        assert_eq!(r.key.as_deref(), Some(host.as_bytes()), "key = {{host}}");
        partition_of_host
            .entry(host.as_bytes().to_vec())
            .or_default()
            .insert(r.partition);
        assert!(values.insert(r.value.clone()), "values are distinct");
    }
    for via in ["tcp", "udp"] {
        for i in 0..n {
            assert!(
                values.contains(frame(via, i).as_bytes()),
                "{via} frame {i} not in the topic"
            );
        }
    }
    for (host, partitions) in &partition_of_host {
        assert_eq!(
            partitions.len(),
            1,
            "{} in partitions {partitions:?}",
            String::from_utf8_lossy(host)
        );
    }
    let mut messages = HashSet::new();
    for r in &ecs {
        let doc: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(r.key, None);
        assert!(r.headers.is_empty());
        messages.insert(doc["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(messages.len(), 2 * n);
    assert!(messages.contains("udp message 7 \u{e9}"), "{messages:?}");

    let produced = sluice.metric("sluice_sink_kafka_produced_records_total{sink=\"kafka_raw\"}");
    assert_eq!(produced, 2 * n as u64);
    assert_eq!(
        sluice.metric("sluice_sink_records_sent_total{sink=\"kafka_raw\",route=\"raw\"}"),
        2 * n as u64
    );
    let bytes_total: u64 = raw.iter().map(|r| r.value.len() as u64).sum();
    assert_eq!(
        sluice.metric("sluice_sink_kafka_produced_bytes_total{sink=\"kafka_raw\"}"),
        bytes_total
    );
    assert!(sluice.stop().success());
}

/// A route with a `[routes.metric]` table to a Kafka sink of
/// `payload = "line_protocol"`: each matching frame becomes one record
/// holding the route's point, the line Telegraf's `kafka_consumer` reads
/// (measurement, host and app tags, every key=number pair a float field,
/// the frame's time in nanoseconds); a frame without numbers is no point.
#[test]
fn kafka_sink_line_protocol_payload_is_the_routes_point() {
    let Some(kafka) = shared() else { return };
    kafka.create_topic("points.lp", 1, 1, &[]);
    let config = kafka_config(&format!(
        r#"
[[sinks]]
name = "kafka_lp"
type = "kafka"
brokers = ["{b}"]
topic = "points.lp"
payload = "line_protocol"

[[routes]]
name = "status"
sink = "kafka_lp"
pattern = '(?:^|\s)[A-Za-z_][A-Za-z0-9_.\-]*=-?[0-9]'
final = true
[routes.metric]
measurement = "status"
key_values = true

[[sinks]]
name = "rest"
type = "file"
path = "rest.ndjson"

[[routes]]
name = "rest"
sink = "rest"
[routes.document]
"#,
        b = kafka.bootstrap
    ));
    let sluice = Sluice::start(&config);
    let n = 50;
    let mut tcp = TcpStream::connect(sluice.addr("tcp")).unwrap();
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend_from_slice(
            format!(
                "<14>1 2026-11-24T10:00:{:02}Z web{} orders - - - status code=200 latency_ms={i}.5\n",
                i % 60,
                i % 2
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(b"<14>1 2026-11-24T10:00:00Z web0 orders - - - no numbers here\n");
    }
    tcp.write_all(&bytes).unwrap();
    drop(tcp);
    let records = wait_records(kafka, "points.lp", n, 60);
    // The frames without numbers took the other route: all of them are
    // there, so the topic is complete when the file is.
    assert_eq!(sluice.wait_lines("rest.ndjson", n).len(), n);
    eprintln!(
        "sent {} frames ({n} with numbers); points topic {}",
        2 * n,
        records.len()
    );
    assert_eq!(
        records.len(),
        n,
        "one point per frame with numbers, none for the others"
    );
    let mut lines: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    lines.sort();
    let mut expected: Vec<String> = (0..n)
        .map(|i| {
            let nanos = 1_795_514_400_000_000_000_i64 + (i as i64 % 60) * 1_000_000_000;
            format!(
                "status,app=orders,host=web{} code=200,latency_ms={i}.5 {nanos}",
                i % 2
            )
        })
        .collect();
    expected.sort();
    for (got, want) in lines.iter().zip(&expected) {
        assert_eq!(got.trim_end_matches('\n'), want, "all points: {lines:?}");
    }
}
