//! Faults between the Kafka sink and the broker (issue #24): the broker
//! stopped for 30 s under load, and records Kafka refuses for good.
//! Every case checks sent = delivered + counted drops, exactly, and
//! prints its figures.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::sink::{kafka_config, wait_records};
use crate::util::kafka::{Kafka, shared};
use crate::util::*;

fn frame(i: usize) -> String {
    format!(
        "<14>1 2026-11-24T10:00:00Z host{} app - - - outage message {i}",
        i % 3
    )
}

/// Distinct values of `topic` (and how many records it holds in all).
fn distinct(kafka: &Kafka, topic: &str) -> (HashSet<Vec<u8>>, usize) {
    let all = kafka.read_topic(topic);
    let n = all.len();
    (all.into_iter().map(|r| r.value).collect(), n)
}

/// (b) The only broker stopped (SIGTERM) for 30 s while frames keep
/// coming over TCP, then started again: a `block` route and a durable
/// (spill) route both deliver every frame, and count no drop. While the
/// broker is away, /health names the sink's failure.
#[test]
fn kafka_broker_outage_of_30_s_loses_nothing_on_block_and_durable_routes() {
    if !kafka_available() {
        return;
    }
    let kafka = Kafka::start(1, &[]);
    kafka.create_topic("out.blk", 1, 1, &[]);
    kafka.create_topic("out.dur", 1, 1, &[]);
    let config = kafka_config(&format!(
        r#"
[[sinks]]
name = "kafka"
type = "kafka"
brokers = ["{b}"]
topic = "out.{{route}}"
key = "{{host}}"
linger_ms = 20
batch_max_events = 200
message_timeout_secs = 5

[[routes]]
name = "blk"
sink = "kafka"
queue = {{ max_events = 300, when_full = "block" }}

[[routes]]
name = "dur"
sink = "kafka"
queue = {{ max_events = 300, durable = true }}
"#,
        b = kafka.bootstrap
    ));
    let mut sluice = Sluice::start(&config);
    let (before, during) = (500, 1500);
    let mut tcp = TcpStream::connect(sluice.addr("tcp")).unwrap();
    let first: String = (0..before).map(|i| frame(i) + "\n").collect();
    tcp.write_all(first.as_bytes()).unwrap();
    wait_records(&kafka, "out.blk", before, 60);
    wait_records(&kafka, "out.dur", before, 60);

    kafka.stop_node(0);
    let stopped = Instant::now();
    // The rest is sent while the broker is away, 100 frames every 200 ms:
    // the block route's queue fills and the reader stops reading, so the
    // writer blocks too (its socket buffer full): a thread, bounded by
    // the frames it has.
    let sender = std::thread::spawn(move || {
        for chunk in (before..before + during).collect::<Vec<_>>().chunks(100) {
            let text: String = chunk.iter().map(|&i| frame(i) + "\n").collect();
            tcp.write_all(text.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    wait_until(
        30,
        "the sink to report the broker's absence on /health",
        || sluice.sink_health("kafka", "blk").1.is_some(),
    );
    let (status, error) = sluice.sink_health("kafka", "blk");
    eprintln!("during the outage: /health {status}, kafka/blk: {error:?}");
    let outage = Duration::from_secs(30).saturating_sub(stopped.elapsed());
    std::thread::sleep(outage);
    kafka.start_node(0);
    eprintln!("broker away {:.1} s", stopped.elapsed().as_secs_f64());
    wait_until(120, "the sender to have written every frame", || {
        sender.is_finished()
    });
    sender.join().unwrap();

    let sent = before + during;
    wait_records(&kafka, "out.blk", sent, 180);
    wait_records(&kafka, "out.dur", sent, 180);
    let drops = sluice.metric_sum("sluice_queue_dropped_records_total", "")
        + sluice.metric_sum("sluice_sink_failed_records_total", "")
        + sluice.metric_sum(
            "sluice_sink_kafka_delivery_failures_total",
            "reason=\"message_too_large\"",
        );
    for route in ["blk", "dur"] {
        let (values, records) = distinct(&kafka, &format!("out.{route}"));
        eprintln!(
            "route {route}: sent {sent}, delivered {} distinct ({records} records), counted drops {drops}",
            values.len()
        );
        for i in 0..sent {
            assert!(
                values.contains(frame(i).as_bytes()),
                "{route}: frame {i} lost"
            );
        }
        assert_eq!(values.len(), sent, "{route}: sent = delivered + drops (0)");
    }
    assert_eq!(drops, 0);
    let retried = sluice.metric_sum("sluice_sink_kafka_delivery_failures_total", "");
    eprintln!("delivery reports that failed and were produced again: {retried}");
    assert!(sluice.stop().success());
}

/// (c) Records larger than the sink's `max_message_bytes` are refused by
/// the producer for good: dead-lettered and counted with their reason,
/// the rest delivered; sent = delivered + counted drops, exactly.
#[test]
fn kafka_records_too_large_are_dead_lettered_and_counted_the_rest_delivered() {
    let Some(kafka) = shared() else { return };
    kafka.create_topic("big.too", 1, 1, &[]);
    let config = kafka_config(&format!(
        r#"
[[sinks]]
name = "kafka"
type = "kafka"
brokers = ["{b}"]
topic = "big.too"
max_message_bytes = 2000
linger_ms = 20

[[routes]]
name = "r"
sink = "kafka"
"#,
        b = kafka.bootstrap
    ));
    let mut sluice = Sluice::start(&config);
    let n = 200;
    // Every tenth frame is 3000 bytes long.
    let frame = |i: usize| {
        let pad = if i % 10 == 3 {
            "x".repeat(3000)
        } else {
            String::new()
        };
        format!("<14>1 2026-11-24T10:00:00Z h app - - - big {i} {pad}")
    };
    let text: String = (0..n).map(|i| frame(i) + "\n").collect();
    tcp_send(sluice.addr("tcp"), text.as_bytes());
    let large = (0..n).filter(|i| i % 10 == 3).count();
    let good = n - large;
    wait_records(kafka, "big.too", good, 60);
    let rejected_metric =
        "sluice_sink_failed_records_total{sink=\"kafka\",route=\"r\",reason=\"rejected\"}";
    wait_until(30, "the large records counted as rejected", || {
        sluice.metric(rejected_metric) >= large as u64
    });
    let (values, records) = distinct(kafka, "big.too");
    let rejected = sluice.metric(rejected_metric);
    let too_large = sluice.metric(
        "sluice_sink_kafka_delivery_failures_total{sink=\"kafka\",reason=\"message_too_large\"}",
    );
    let dead = read_lines(&sluice.path("data/dead-letter/kafka.ndjson"));
    eprintln!(
        "sent {n}: delivered {} ({records} records), rejected {rejected} (message_too_large {too_large}), dead-lettered {}",
        values.len(),
        dead.len()
    );
    assert_eq!(records, good);
    assert_eq!(values.len() as u64 + rejected, n as u64);
    assert_eq!(rejected, large as u64);
    assert_eq!(too_large, large as u64);
    assert_eq!(dead.len(), large);
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .starts_with("message_too_large"),
            "{v}"
        );
        assert_eq!(v["topic"], "big.too");
        assert!(v["value"].as_str().unwrap().len() > 3000);
    }
    for i in (0..n).filter(|i| i % 10 != 3) {
        assert!(values.contains(frame(i).as_bytes()), "frame {i} lost");
    }
    assert!(sluice.stop().success());
}
