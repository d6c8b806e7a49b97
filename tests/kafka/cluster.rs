//! Edge → Kafka → indexer through the real binaries against real brokers
//! (issue #24): a partition leader killed on a 3-node cluster, an indexer
//! of a consumer group killed (and one stopped) mid-stream, and `/health`
//! and `/metrics` of an edge and an indexer while their only broker is
//! away. Each prints its figures; sent = delivered + counted drops.
//!
//! The edge: TCP in, a Kafka sink writing raw envelopes (acks = all,
//! idempotent, the defaults). The indexer: a Kafka listener, ECS
//! documents to a file sink. Frames carry a sequence number; an output
//! document's `_id` (what Elasticsearch would deduplicate by) is the one
//! its envelope names (`sluice.id`, `sluice.received`), read back from
//! the topic.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::kafka::{Kafka, KafkaRecord, shared};
use crate::util::*;

const ROUTE: &str = "events";

fn frame(i: usize) -> String {
    format!(
        "<14>1 2026-11-24T10:00:00Z host{} app - - - seq {i}",
        i % 16
    )
}

/// The cluster's brokers as a TOML list's items.
fn brokers(kafka: &Kafka) -> String {
    kafka
        .bootstrap
        .split(',')
        .map(|b| format!("\"{b}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An edge: TCP (and UDP) in, raw envelopes to `topic`.
fn cluster_edge_config(kafka: &Kafka, topic: &str) -> String {
    format!(
        r#"data_dir = "data"
{LISTENERS}
[[sinks]]
name = "to_kafka"
type = "kafka"
brokers = [{b}]
topic = "{topic}"
key = "{{host}}"
linger_ms = 20
batch_max_events = 200
message_timeout_secs = 10

[[routes]]
name = "raw"
sink = "to_kafka"
queue = {{ max_events = 1000, when_full = "block" }}
"#,
        b = brokers(kafka)
    )
}

/// An indexer of group `group`: `topic` to ECS documents in `out.ndjson`.
fn cluster_indexer_config(kafka: &Kafka, topic: &str, group: &str) -> String {
    format!(
        r#"shutdown_timeout_secs = 10
[admin]
listen = "127.0.0.1:0"
[[listeners]]
name = "from_kafka"
protocol = "kafka"
brokers = [{b}]
topics = ["{topic}"]
group_id = "{group}"
commit_interval_ms = 100
session_timeout_ms = 6000

[[sinks]]
name = "out"
type = "file"
path = "out.ndjson"

[[routes]]
name = "{ROUTE}"
sink = "out"
document = {{ format = "ecs" }}
queue = {{ max_events = 1000, when_full = "block" }}
"#,
        b = brokers(kafka)
    )
}

/// A TCP connection to `addr` whose writes fail loudly after 120 s.
fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    tcp
}

/// Frames `from..to`, `chunk` at a time, `pause` between chunks.
fn send(tcp: &mut TcpStream, from: usize, to: usize, chunk: usize, pause: Duration) {
    let all: Vec<usize> = (from..to).collect();
    for c in all.chunks(chunk) {
        let text: String = c.iter().map(|&i| frame(i) + "\n").collect();
        tcp.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("writing frames {}..: {e}", c[0]));
        std::thread::sleep(pause);
    }
}

/// A thread sending frames `from..to` as [`send`] does (100 at a time,
/// `pause` apart) that stops at `gate`: the call returns once the frames
/// before it are written, and the thread writes the rest when told to go
/// on. What the test does meanwhile comes mid-stream however fast the
/// machine is.
fn gated_sender(
    mut tcp: TcpStream,
    (from, gate, to): (usize, usize, usize),
    pause: Duration,
) -> (
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<TcpStream>,
) {
    let (at_gate, arrived) = std::sync::mpsc::channel::<()>();
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        send(&mut tcp, from, gate, 100, pause);
        at_gate.send(()).unwrap();
        wait.recv_timeout(Duration::from_secs(120))
            .expect("told to go on within 120 s");
        send(&mut tcp, gate, to, 100, pause);
        tcp
    });
    arrived
        .recv_timeout(Duration::from_secs(120))
        .expect("the frames before the gate written within 120 s");
    (go_on, sender)
}

/// The documents of an indexer's output: (sequence number, document).
fn documents(s: &Sluice) -> Vec<(usize, serde_json::Value)> {
    read_lines(&s.path("out.ndjson"))
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let seq = v["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("seq "))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no sequence number in {v}"));
            (seq, v)
        })
        .collect()
}

fn distinct_seqs(docs: &[(usize, serde_json::Value)]) -> usize {
    docs.iter().map(|d| d.0).collect::<HashSet<_>>().len()
}

/// The `_id` an envelope gives its documents on route `route`: the edge's
/// nonce and frame number (`sluice.id`), its receive time.
fn envelope_id(route: &str, r: &KafkaRecord) -> String {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_128_with_seed};
    let id = r.header("sluice.id").expect("sluice.id");
    let nonce = u64::from_str_radix(&id[..16], 16).unwrap();
    let number = u64::from_str_radix(&id[16..], 16).unwrap();
    let received: i64 = r.header("sluice.received").unwrap().parse().unwrap();
    let mut context = [0u8; 24];
    context[0..8].copy_from_slice(&nonce.to_le_bytes());
    context[8..16].copy_from_slice(&number.to_le_bytes());
    context[16..24].copy_from_slice(&received.to_le_bytes());
    xxh3_128_with_seed(&context, xxh3_64(route.as_bytes()))
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the topic holds: sequence number → (`_id`, partition). Every
/// copy of a frame in the topic (a produce retried) names the same id.
fn topic_ids(kafka: &Kafka, topic: &str) -> (HashMap<usize, (String, i32)>, usize) {
    let records = kafka.read_topic(topic);
    let mut ids: HashMap<usize, (String, i32)> = HashMap::new();
    for r in &records {
        let text = String::from_utf8_lossy(&r.value);
        let seq: usize = text
            .rsplit_once("seq ")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("no sequence number in record {text:?}"));
        let id = envelope_id(ROUTE, r);
        if let Some((was, _)) = ids.insert(seq, (id.clone(), r.partition)) {
            assert_eq!(was, id, "two copies of frame {seq} with different ids");
        }
    }
    (ids, records.len())
}

/// The output's documents by `_id`: every sequence number 0..n present,
/// exactly n distinct ids, every duplicate identical to its first copy.
/// Returns (documents, distinct ids).
fn check_ids(
    what: &str,
    docs: &[(usize, serde_json::Value)],
    ids: &HashMap<usize, (String, i32)>,
    n: usize,
) -> (usize, usize) {
    let mut by_id: HashMap<&str, &serde_json::Value> = HashMap::new();
    for (seq, doc) in docs {
        let (id, _) = ids
            .get(seq)
            .unwrap_or_else(|| panic!("{what}: document of frame {seq} not in the topic"));
        match by_id.get(id.as_str()) {
            Some(first) => assert_eq!(*first, doc, "{what}: duplicate of {id} differs"),
            None => {
                by_id.insert(id, doc);
            }
        }
    }
    let seqs: BTreeSet<usize> = docs.iter().map(|d| d.0).collect();
    let missing: Vec<usize> = (0..n).filter(|i| !seqs.contains(i)).take(10).collect();
    assert!(missing.is_empty(), "{what}: frames lost, e.g. {missing:?}");
    assert_eq!(by_id.len(), n, "{what}: distinct _id");
    (docs.len(), by_id.len())
}

/// Records an edge or indexer dropped and counted, for any reason.
fn counted_drops(s: &Sluice) -> u64 {
    s.metric_sum("sluice_queue_dropped_records_total", "")
        + s.metric_sum("sluice_sink_failed_records_total", "")
        + s.metric_sum("sluice_listener_kafka_dropped_records_total", "")
        + s.metric_sum("sluice_route_conversion_errors_total", "")
}

/// A counter of the indexer's Kafka listener.
fn listener_counter(s: &Sluice, name: &str) -> u64 {
    s.metric(&format!(
        "sluice_listener_kafka_{name}_total{{listener=\"from_kafka\"}}"
    ))
}

/// The listener's periodic commits reach `/metrics`: their results are
/// counted (`commits_total`), so a failed one would be too.
#[track_caller]
fn assert_commits_counted(s: &Sluice) {
    let (commits, failures) = (
        listener_counter(s, "commits"),
        listener_counter(s, "commit_failures"),
    );
    eprintln!("indexer: {commits} commits, {failures} failed");
    assert!(commits > 0, "no commit counted ({failures} failed)");
}

/// The Kafka sink's delivery failures by reason (non-zero ones).
fn delivery_failures(s: &Sluice) -> String {
    s.scrape()
        .lines()
        .filter(|l| {
            l.starts_with("sluice_sink_kafka_delivery_failures_total") && !l.ends_with(" 0")
        })
        .filter_map(|l| {
            let (_, reason) = l.split_once("reason=\"")?;
            let (reason, _) = reason.split_once('"')?;
            Some(format!("{reason} {}", l.rsplit(' ').next()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// (a) Three brokers, replication factor 3, `min.insync.replicas = 2`,
/// four partitions: the leader of the busiest partition is killed
/// (`kill -9`) while the edge produces. Every frame reaches the
/// indexer's output, duplicates are of the same `_id` and identical, and
/// neither tier drops anything.
#[test]
fn kafka_cluster_leader_killed_mid_stream_loses_nothing() {
    if !kafka_available() {
        return;
    }
    let kafka = Kafka::start(3, &[]);
    let topic = "cluster.leader";
    kafka.create_topic(topic, 4, 3, &["min.insync.replicas=2"]);
    let mut edge = Sluice::start(&cluster_edge_config(&kafka, topic));
    let mut indexer = Sluice::start(&cluster_indexer_config(&kafka, topic, "cluster-a"));
    let (first, n) = (1000, 3000);
    let mut tcp = connect(edge.addr("tcp"));
    send(&mut tcp, 0, first, 100, Duration::ZERO);
    wait_until(60, "the first frames at the indexer's output", || {
        documents(&indexer).len() >= 100
    });
    let per_partition =
        kafka
            .read_topic(topic)
            .iter()
            .fold(HashMap::<i32, usize>::new(), |mut m, r| {
                *m.entry(r.partition).or_default() += 1;
                m
            });
    let (&busiest, _) = per_partition.iter().max_by_key(|(_, c)| **c).unwrap();
    let leader = kafka
        .leader(topic, busiest as u32)
        .expect("the busiest partition's leader");
    // The leader is killed once 600 more frames are written, before the
    // other 1,400.
    let (go_on, sender) = gated_sender(tcp, (first, first + 600, n), Duration::from_millis(50));
    let killed_at = Instant::now();
    kafka.kill_node(leader);
    go_on.send(()).unwrap();
    eprintln!(
        "phase: killed node {leader}, leader of partition {busiest} (records per partition {per_partition:?})"
    );
    wait_until(120, "the sender to have written every frame", || {
        sender.is_finished()
    });
    let _tcp = sender.join().unwrap();
    wait_until(180, "every frame at the indexer's output", || {
        distinct_seqs(&documents(&indexer)) >= n
    });
    let new_leader = kafka.leader(topic, busiest as u32);
    eprintln!(
        "all {n} frames out {:.1} s after the kill; partition {busiest} now led by {new_leader:?}",
        killed_at.elapsed().as_secs_f64()
    );
    assert_ne!(new_leader, Some(leader));

    let (ids, in_topic) = topic_ids(&kafka, topic);
    let docs = documents(&indexer);
    let (total, distinct) = check_ids("leader loss", &docs, &ids, n);
    let (edge_drops, indexer_drops) = (counted_drops(&edge), counted_drops(&indexer));
    eprintln!(
        "leader loss: sent {n}; topic {in_topic} records, {} frames; output {total} documents, {distinct} distinct _id; \
         drops edge {edge_drops} indexer {indexer_drops}; delivery failures retried: [{}]; \
         indexer commits {}, commit failures {}, rebalances {}",
        ids.len(),
        delivery_failures(&edge),
        listener_counter(&indexer, "commits"),
        listener_counter(&indexer, "commit_failures"),
        listener_counter(&indexer, "rebalances"),
    );
    assert_eq!(ids.len(), n, "frames in the topic");
    assert_eq!(distinct as u64 + edge_drops + indexer_drops, n as u64);
    assert_eq!((edge_drops, indexer_drops), (0, 0));
    assert_commits_counted(&indexer);
    assert!(edge.stop().success());
    assert!(indexer.stop().success());
}

/// (b) Two indexers in one group on a 4-partition topic. One is killed
/// (`kill -9`) mid-stream: the survivor is assigned its partitions
/// (`rebalances_total` grows) and writes their frames; the union of both
/// outputs holds every frame and exactly N distinct `_id`s. Then the
/// killed one comes back and the other is stopped (SIGTERM) mid-stream:
/// what it had done with is committed on the way out, so nothing of it is
/// written twice.
#[test]
fn kafka_cluster_indexer_killed_its_partitions_go_to_the_survivor() {
    let Some(kafka) = shared() else { return };
    let topic = "cluster.rebalance";
    kafka.create_topic(topic, 4, 1, &[]);
    let edge = Sluice::start(&cluster_edge_config(kafka, topic));
    let indexer_config = cluster_indexer_config(kafka, topic, "cluster-b");
    let mut a = Sluice::start(&indexer_config);
    let mut b = Sluice::start(&indexer_config);
    let rebalances =
        |s: &Sluice| s.metric("sluice_listener_kafka_rebalances_total{listener=\"from_kafka\"}");
    let mut tcp = connect(edge.addr("tcp"));
    // Until both have partitions, and both write.
    let mut sent = 0;
    wait_until(60, "both indexers to write documents", || {
        send(&mut tcp, sent, sent + 100, 100, Duration::from_millis(100));
        sent += 100;
        !documents(&a).is_empty() && !documents(&b).is_empty()
    });
    let n1 = sent + 2000;
    // A is killed once half of these are written, before the other half:
    // its partitions still have frames to come, which only B can write.
    let (go_on, sender) = gated_sender(tcp, (sent, sent + 1000, n1), Duration::from_millis(100));
    let (a_before, b_before, b_rebalances) = (documents(&a), documents(&b).len(), rebalances(&b));
    a.kill9();
    go_on.send(()).unwrap();
    eprintln!(
        "phase 1: indexer A killed with {} documents written, B has {b_before}",
        a_before.len()
    );
    wait_until(120, "the sender to have written every frame", || {
        sender.is_finished()
    });
    let mut tcp = sender.join().unwrap();
    wait_until(120, "every frame in the union of both outputs", || {
        let mut all = documents(&a);
        all.extend(documents(&b));
        distinct_seqs(&all) >= n1
    });
    let (ids, in_topic) = topic_ids(kafka, topic);
    let a_partitions: BTreeSet<i32> = a_before.iter().map(|(s, _)| ids[s].1).collect();
    let b_docs = documents(&b);
    let b_took: BTreeSet<i32> = b_docs
        .iter()
        .skip(b_before)
        .map(|(s, _)| ids[s].1)
        .filter(|p| a_partitions.contains(p))
        .collect();
    let mut all = documents(&a);
    all.extend(b_docs.iter().cloned());
    let (total, distinct) = check_ids("indexer killed", &all, &ids, n1);
    eprintln!(
        "indexer killed: sent {n1}; topic {in_topic} records; A wrote {} (partitions {a_partitions:?}), \
         B {b_before} then {} (took A's partitions {b_took:?}); union {total} documents, {distinct} distinct _id, \
         {} read twice; B's rebalances {b_rebalances} → {}",
        a_before.len(),
        b_docs.len(),
        total - distinct,
        rebalances(&b)
    );
    assert!(
        rebalances(&b) > b_rebalances,
        "the survivor was not rebalanced"
    );
    assert_eq!(
        b_took, a_partitions,
        "the survivor took the dead one's partitions"
    );
    assert_eq!(counted_drops(&edge) + counted_drops(&b), 0);
    assert_commits_counted(&b);

    // Graceful: A back (same directory, its output appended), B stopped.
    a.relaunch();
    let a_had = documents(&a).len();
    let mut n2 = n1;
    wait_until(60, "the restarted indexer to write documents", || {
        send(&mut tcp, n2, n2 + 100, 100, Duration::from_millis(100));
        n2 += 100;
        documents(&a).len() > a_had
    });
    let n = n2 + 2000;
    let (go_on, sender) = gated_sender(tcp, (n2, n2 + 1000, n), Duration::from_millis(100));
    let b_docs_at_stop = {
        let status = b.stop();
        assert!(status.success(), "indexer B's exit: {status}");
        documents(&b)
    };
    go_on.send(()).unwrap();
    eprintln!(
        "phase 2: indexer B stopped with {} documents written, A has {}",
        b_docs_at_stop.len(),
        documents(&a).len()
    );
    wait_until(120, "the sender to have written every frame", || {
        sender.is_finished()
    });
    let _tcp = sender.join().unwrap();
    wait_until(
        120,
        "every frame of the second phase at the outputs",
        || {
            let mut all = documents(&a);
            all.extend(b_docs_at_stop.iter().cloned());
            distinct_seqs(&all) >= n
        },
    );
    let (ids, _) = topic_ids(kafka, topic);
    let mut all = documents(&a);
    all.extend(b_docs_at_stop.iter().cloned());
    let (total, distinct) = check_ids("indexer stopped", &all, &ids, n);
    let phase2: Vec<&(usize, serde_json::Value)> = all.iter().filter(|d| d.0 >= n1).collect();
    let phase2_distinct = phase2.iter().map(|d| d.0).collect::<HashSet<_>>().len();
    let (a_drops, edge_drops) = (counted_drops(&a), counted_drops(&edge));
    eprintln!(
        "indexer stopped (SIGTERM): frames {n1}..{n}: {} documents, {phase2_distinct} distinct, {} written twice; \
         in all: {total} documents, {distinct} distinct _id; drops edge {edge_drops} indexer {a_drops}",
        phase2.len(),
        phase2.len() - phase2_distinct
    );
    assert_eq!(
        phase2.len(),
        phase2_distinct,
        "what the stopped indexer was done with was read again"
    );
    assert_eq!(distinct as u64 + edge_drops + a_drops, n as u64);
    assert!(a.stop().success());
}

/// The `/health` JSON of an entry whose name is `name` in `list`
/// (`sinks` or `listeners`), as text.
fn health_entry(s: &Sluice, list: &str, key: &str, name: &str) -> (String, String) {
    let (_, h) = s.health_status();
    let entry = h[list]
        .as_array()
        .and_then(|a| a.iter().find(|e| e[key] == name).cloned())
        .unwrap_or_default();
    (
        h["status"].as_str().unwrap_or("").to_owned(),
        entry.to_string(),
    )
}

/// (c) An idle edge (Kafka sink) and an idle indexer (Kafka listener):
/// with their only broker stopped, both say `degraded` on `/health`,
/// naming Kafka; with it back, `ok`. Then, under load with the broker
/// away: the sink counts its failed delivery reports by reason, times
/// its produce rounds, and delivers everything once the broker is back.
#[test]
fn kafka_cluster_health_follows_the_broker_idle_and_under_load() {
    if !kafka_available() {
        return;
    }
    let kafka = Kafka::start(1, &[]);
    let topic = "cluster.health";
    kafka.create_topic(topic, 1, 1, &[]);
    let mut edge = Sluice::start(&cluster_edge_config(&kafka, topic));
    let mut indexer = Sluice::start(&cluster_indexer_config(&kafka, topic, "cluster-c"));
    let sink = |s: &Sluice| health_entry(s, "sinks", "sink", "to_kafka");
    let listener = |s: &Sluice| health_entry(s, "listeners", "listener", "from_kafka");
    wait_until(60, "both /health ok with the broker up", || {
        sink(&edge).0 == "ok" && listener(&indexer).0 == "ok"
    });

    kafka.stop_node(0);
    let stopped = Instant::now();
    wait_until(60, "the idle edge's /health degraded, naming kafka", || {
        let (status, entry) = sink(&edge);
        status == "degraded" && entry.to_lowercase().contains("kafka")
    });
    let edge_after = stopped.elapsed();
    wait_until(
        60,
        "the idle indexer's /health degraded, naming kafka",
        || {
            let (status, entry) = listener(&indexer);
            status == "degraded" && entry.contains("kafka: ")
        },
    );
    eprintln!(
        "broker stopped: edge degraded after {:.1} s: {}; indexer after {:.1} s: {}",
        edge_after.as_secs_f64(),
        sink(&edge).1,
        stopped.elapsed().as_secs_f64(),
        listener(&indexer).1
    );
    kafka.start_node(0);
    let started = Instant::now();
    wait_until(60, "both /health ok again with the broker back", || {
        sink(&edge).0 == "ok" && listener(&indexer).0 == "ok"
    });
    eprintln!(
        "broker back: both ok after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Under load: 300 frames while the broker is away.
    kafka.stop_node(0);
    let n = 300;
    let mut tcp = connect(edge.addr("tcp"));
    send(&mut tcp, 0, n, 100, Duration::ZERO);
    wait_until(60, "failed delivery reports counted", || {
        edge.metric_sum("sluice_sink_kafka_delivery_failures_total", "") > 0
    });
    let (status, entry) = sink(&edge);
    eprintln!("under load, broker away: /health {status}, sink {entry}");
    assert_eq!(status, "degraded");
    kafka.start_node(0);
    wait_until(120, "every frame at the indexer's output", || {
        distinct_seqs(&documents(&indexer)) >= n
    });
    let latency =
        edge.required_metric("sluice_sink_request_duration_seconds_count{sink=\"to_kafka\"}");
    let retried = edge.metric_sum("sluice_sink_kafka_delivery_failures_total", "");
    let produced = edge.metric("sluice_sink_kafka_produced_records_total{sink=\"to_kafka\"}");
    let (ids, in_topic) = topic_ids(&kafka, topic);
    let (total, distinct) = check_ids("broker away", &documents(&indexer), &ids, n);
    let drops = counted_drops(&edge) + counted_drops(&indexer);
    eprintln!(
        "broker away under load: sent {n}; delivery failures [{}] ({retried}); produced {produced}, topic {in_topic}; \
         produce rounds timed {latency}; output {total} documents, {distinct} distinct _id; drops {drops}",
        delivery_failures(&edge)
    );
    assert!(latency > 0);
    assert!(retried > 0);
    assert_eq!(distinct as u64 + drops, n as u64);
    assert_eq!(drops, 0);
    wait_until(60, "both /health ok after the load", || {
        sink(&edge).0 == "ok" && listener(&indexer).0 == "ok"
    });
    assert!(edge.stop().success());
    assert!(indexer.stop().success());
}
