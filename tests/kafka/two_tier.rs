//! Two tiers through both real binaries (issue #24): an edge `sluice`
//! (TCP and UDP listeners, a Kafka sink writing raw envelopes) → the real
//! broker → an indexer `sluice` (a Kafka listener, ECS documents to the
//! `_bulk` stand-in, which keeps every document by its `_id`).
//!
//! (a) what the indexer makes of the frames is what the edge itself makes
//! of them (same documents, same `_id`s); (b) an edge killed with records
//! in its spill log loses none of them; (c) an indexer whose sink refuses
//! pauses and lags, drops nothing, and drains once the sink is back.
//! Every test prints its figures (sent, delivered, distinct, drops, lag).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::util::kafka::{es_events_route, shared};
use crate::util::*;

/// An edge: UDP (default zone) and TCP (`Asia/Tokyo` for zone-less
/// stamps) listeners, a raw-envelope Kafka sink keyed by host (more
/// settings in `sink`), the route `edge` to it with the queue `queue`
/// (inline TOML), then `extra`.
fn two_tier_edge_config(
    kafka: &Kafka,
    topic: &str,
    sink: &str,
    queue: &str,
    extra: &str,
) -> String {
    format!(
        r#"
data_dir = "data"
shutdown_timeout_secs = 10
[admin]
listen = "127.0.0.1:0"
[[listeners]]
name = "udp"
protocol = "udp"
listen = "127.0.0.1:0"
[[listeners]]
name = "tcp"
protocol = "tcp"
listen = "127.0.0.1:0"
timezone = "Asia/Tokyo"
multiline = false
[[sinks]]
name = "kafka"
type = "kafka"
brokers = ["{b}"]
topic = "{topic}"
key = "{{host}}"
payload = "raw"
linger_ms = 20
message_timeout_secs = 5
{sink}
[[routes]]
name = "edge"
sink = "kafka"
queue = {queue}
{extra}
"#,
        b = kafka.bootstrap
    )
}

/// An indexer: a Kafka listener `from_kafka` in `group` reading `topic`,
/// at most `max_in_flight` records of a partition not yet done with, its
/// documents to `es`.
fn two_tier_indexer_config(
    kafka: &Kafka,
    topic: &str,
    group: &str,
    max_in_flight: usize,
    es: &EsServer,
) -> String {
    format!(
        r#"
data_dir = "data"
shutdown_timeout_secs = 10
[admin]
listen = "127.0.0.1:0"
[[listeners]]
name = "from_kafka"
protocol = "kafka"
brokers = ["{b}"]
topics = ["{topic}"]
group_id = "{group}"
commit_interval_ms = 100
max_in_flight = {max_in_flight}
{route}
"#,
        b = kafka.bootstrap,
        route = es_events_route(es)
    )
}

/// Every record the process counted as dropped, for any reason, at any
/// stage (queues, sinks, the Kafka listener, UDP datagrams the kernel
/// dropped or the listener skipped).
fn two_tier_drops(s: &Sluice) -> u64 {
    [
        "sluice_queue_dropped_records_total",
        "sluice_sink_failed_records_total",
        "sluice_queue_spill_corrupt_records_total",
        "sluice_listener_kafka_dropped_records_total",
        "sluice_listener_kernel_drops_total",
        "sluice_listener_skipped_frames_total",
    ]
    .iter()
    .map(|m| s.metric_sum(m, ""))
    .sum()
}

/// The indexer's consumer lag by partition, as /metrics shows it.
fn two_tier_lag(s: &Sluice) -> BTreeMap<String, u64> {
    let lag: BTreeMap<String, u64> = s
        .scrape()
        .lines()
        .filter(|l| l.starts_with("sluice_listener_kafka_consumer_lag_records{"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            let partition = labels.split("partition=\"").nth(1)?.split('"').next()?;
            Some((partition.to_owned(), value.parse().ok()?))
        })
        .collect();
    observed(format!("consumer lag by partition: {lag:?}"));
    lag
}

/// Frame `i` of (a): RFC 5424 with structured data, procid and msgid, or
/// RFC 3164 without a year and without a zone (then the listener's zone
/// and the receive time's year decide the time), over `via`.
fn two_tier_frame(via: &str, i: usize) -> String {
    if i % 2 == 0 {
        format!(
            "<{pri}>1 2026-11-24T10:00:00.{ms:03}Z host{h} app{a} {pid} ID{m} \
             [seq@32473 via=\"{via}\" n=\"{i}\"][origin ip=\"192.0.2.{h}\"] {via} 5424 message {i}",
            pri = 8 * (i % 24) + i % 8,
            ms = i % 1000,
            h = i % 5,
            a = i % 3,
            pid = 1000 + i % 7,
            m = i % 4,
        )
    } else {
        format!(
            "<{pri}>Mar  7 19:06:{s:02} web{h} daemon{a}[{pid}]: {via} 3164 message {i}",
            pri = 8 * (i % 24) + (i + 3) % 8,
            s = i % 60,
            h = i % 5,
            a = i % 3,
            pid = 2000 + i % 7,
        )
    }
}

/// The message part of a document, as text.
fn two_tier_message(doc: &serde_json::Value) -> String {
    doc["message"].as_str().unwrap_or_default().to_owned()
}

/// (a) 2,000 frames over TCP and 2,000 over UDP into an edge whose route
/// `edge` writes raw envelopes to Kafka and whose route `events` writes
/// ECS documents to a `_bulk` stand-in: the single-process run, seeing
/// the same frames at the same receive times. An indexer reads the topic
/// and writes its route `events` to a second stand-in. The two stand-ins
/// must hold exactly the same documents under exactly the same `_id`s:
/// header fields (host, app, procid, msgid, facility, severity,
/// structured data), the receive time (`event.created`), the event time
/// (RFC 3164 stamps without a year or zone, read in the TCP listener's
/// `Asia/Tokyo` and the UDP listener's UTC), the peer and the message.
/// sent = delivered + counted drops (UDP datagrams the kernel dropped
/// are counted by the edge; at this rate, there are none).
#[test]
fn two_tier_edge_kafka_indexer_documents_and_ids_match_a_single_process_run() {
    let Some(kafka) = shared() else { return };
    let topic = "tt.match";
    kafka.create_topic(topic, 3, 1, &[]);
    let (es_edge, es_indexer) = (EsServer::start(), EsServer::start());
    let queue = "{ max_events = 100000, when_full = \"block\" }";
    let mut edge = Sluice::start(&two_tier_edge_config(
        kafka,
        topic,
        "",
        queue,
        &es_events_route(&es_edge),
    ));
    let mut indexer = Sluice::start(&two_tier_indexer_config(
        kafka,
        topic,
        "tt-match",
        10_000,
        &es_indexer,
    ));
    let n = 2000;
    let mut tcp = TcpStream::connect(edge.addr("tcp")).unwrap();
    let tcp_peer = tcp.local_addr().unwrap();
    let text: String = (0..n).map(|i| two_tier_frame("tcp", i) + "\n").collect();
    tcp.write_all(text.as_bytes()).unwrap();
    drop(tcp);
    // UDP at a modest rate (20 datagrams, then 5 ms).
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_peer = udp.local_addr().unwrap();
    for i in 0..n {
        udp.send_to(two_tier_frame("udp", i).as_bytes(), edge.addr("udp"))
            .unwrap();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let sent = 2 * n as u64;
    // Every frame read or counted as dropped by the edge.
    let mut accounted = (0, 0);
    wait_until(60, "the edge to read or count every frame sent", || {
        accounted = (
            edge.metric_sum("sluice_listener_frames_total", ""),
            two_tier_drops(&edge),
        );
        accounted.0 + accounted.1 >= sent
    });
    let (read, edge_drops) = accounted;
    let expected = read as usize;
    wait_until(
        120,
        "the edge's own documents and the indexer's to hold every frame read",
        || es_edge.total() >= expected && es_indexer.total() >= expected,
    );
    let (single, two_tier) = (es_edge.docs("syslog"), es_indexer.docs("syslog"));
    let indexer_drops = two_tier_drops(&indexer);
    let messages: HashSet<String> = two_tier.values().map(two_tier_message).collect();
    eprintln!(
        "sent {sent} (tcp {n}, udp {n}); edge read {read}, counted drops {edge_drops}; \
         single-process documents {}, indexer documents {} ({} distinct messages), \
         indexer counted drops {indexer_drops}",
        single.len(),
        two_tier.len(),
        messages.len()
    );
    assert_eq!(read + edge_drops, sent, "sent = read + counted drops");
    assert_eq!(
        two_tier.len() as u64 + edge_drops,
        sent,
        "sent = delivered + drops"
    );
    assert_eq!(messages.len(), two_tier.len(), "one document per frame");
    assert_eq!(indexer_drops, 0);
    assert_eq!(single.len(), two_tier.len());
    for (id, doc) in &single {
        let Some(other) = two_tier.get(id) else {
            panic!("the indexer has no document with the edge's _id {id}: {doc}");
        };
        assert_eq!(other, doc, "_id {id}: indexer (left) and edge (right)");
    }
    // What makes the comparison mean something: the fields are there,
    // and the zone-less stamps were read in each listener's zone.
    let by_message: HashMap<String, &serde_json::Value> = two_tier
        .values()
        .map(|d| (two_tier_message(d), d))
        .collect();
    for (via, peer, zone_hour) in [("tcp", tcp_peer, 10), ("udp", udp_peer, 19)] {
        for i in [0, 1, 1234, 1999] {
            let rfc = if i % 2 == 0 { 5424 } else { 3164 };
            let message = format!("{via} {rfc} message {i}");
            let Some(doc) = by_message.get(&message) else {
                assert!(edge_drops > 0, "{message:?} missing with no drop counted");
                continue;
            };
            let syslog = &doc["log"]["syslog"];
            assert_eq!(doc["source"]["port"], peer.port(), "{doc}");
            assert!(doc["event"]["created"].is_string(), "{doc}");
            if i % 2 == 0 {
                assert_eq!(syslog["procid"], (1000 + i % 7).to_string(), "{doc}");
                assert_eq!(syslog["msgid"], format!("ID{}", i % 4), "{doc}");
                assert_eq!(syslog["structured_data"]["seq@32473"]["via"], via, "{doc}");
                assert_eq!(syslog["severity"]["code"], (i % 8) as u64, "{doc}");
            } else {
                let stamp = doc["@timestamp"].as_str().unwrap_or_default();
                let want = format!("-03-07T{zone_hour}:06:{:02}.000Z", i % 60);
                assert!(stamp.ends_with(&want), "{via} {i}: {stamp}, want *{want}");
                assert_eq!(syslog["hostname"], format!("web{}", i % 5), "{doc}");
            }
        }
    }
    assert!(indexer.stop().success());
    assert!(edge.stop().success());
}

/// (b) The edge crashes with records in its spill log. The edge's route
/// to Kafka is `durable`: every record is appended to the spill log
/// before anything else, and leaves it only once Kafka has it. The only
/// broker is stopped, frames go on arriving over TCP and pile up in the
/// log; then the edge is killed (`kill -9`), the broker started again
/// after 30 s away, and the edge restarted on the same data_dir.
///
/// Accounting. TCP has no application-level acknowledgement: "acked by
/// the edge" here means appended to the spill log, which the edge counts
/// (`sluice_queue_spilled_records_total`). The sender stops before the
/// kill and the test waits until that count settles at what it sent, so
/// the drops are what the edge had not accepted by the kill (sent −
/// spilled, none here) plus what it counted dropped; every frame appended
/// must reach the indexer: sent = delivered (distinct, by sequence
/// number) + drops, exactly.
#[test]
fn two_tier_edge_killed_with_a_spill_log_loses_nothing_it_accepted() {
    if !kafka_available() {
        return;
    }
    let kafka = Kafka::start(1, &[]);
    let topic = "tt.crash";
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    let mut indexer = Sluice::start(&two_tier_indexer_config(
        &kafka, topic, "tt-crash", 10_000, &es,
    ));
    let queue = "{ max_events = 200, durable = true }";
    let mut edge = Sluice::start(&two_tier_edge_config(
        &kafka,
        topic,
        // Small batches: the restarted edge drains its log in many rounds.
        "batch_max_events = 20",
        queue,
        "",
    ));
    let frame = |i: usize| {
        format!(
            "<14>1 2026-11-24T10:00:00Z host{} app - - - crash {i}",
            i % 4
        )
    };
    let (before, during) = (500, 3000);
    let text: String = (0..before).map(|i| frame(i) + "\n").collect();
    tcp_send(edge.addr("tcp"), text.as_bytes());
    wait_until(
        60,
        "the indexer to store the frames sent before the outage",
        || es.total() >= before,
    );

    kafka.stop_node(0);
    let stopped = Instant::now();
    // Under load through the outage: 100 frames every 300 ms, 9 s.
    let mut tcp = TcpStream::connect(edge.addr("tcp")).unwrap();
    for chunk in (before..before + during).collect::<Vec<_>>().chunks(100) {
        let text: String = chunk.iter().map(|&i| frame(i) + "\n").collect();
        tcp.write_all(text.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(tcp);
    let sent = (before + during) as u64;
    let spilled_metric = "sluice_queue_spilled_records_total{route=\"edge\"}";
    let mut spilled = 0;
    wait_until(
        60,
        "the edge to append every frame sent to its spill log",
        || {
            spilled = edge.metric(spilled_metric);
            spilled >= sent
        },
    );
    let pending = edge.metric("sluice_queue_spill_pending_records{route=\"edge\"}");
    let drops_before_kill = two_tier_drops(&edge);
    let stored_before_kill = es.total();
    edge.kill9();
    eprintln!(
        "edge killed {:.1} s into the outage: sent {sent}, spilled {spilled}, pending in the \
         spill log {pending}, counted drops {drops_before_kill}, stored at the indexer {stored_before_kill}",
        stopped.elapsed().as_secs_f64()
    );
    assert!(
        pending >= during as u64,
        "the outage kept the frames in the spill log ({pending} pending)"
    );
    std::thread::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed()));
    kafka.start_node(0);
    eprintln!("broker away {:.1} s", stopped.elapsed().as_secs_f64());
    edge.relaunch();
    // Killed again once it has begun to drain its log into Kafka (what
    // it had delivered but not yet marked in the log goes again: the
    // `_id`s absorb it), and restarted.
    let pending_at_second_kill = wait_for(60, "the restarted edge to drain its spill log", || {
        let pending = edge.metric("sluice_queue_spill_pending_records{route=\"edge\"}");
        (pending < during as u64).then_some(pending)
    });
    let drops_at_second_kill = two_tier_drops(&edge);
    edge.kill9();
    edge.relaunch();
    eprintln!(
        "edge killed again while draining, {pending_at_second_kill} records pending, restarted"
    );
    let accepted = spilled;
    let not_accepted = sent - accepted;
    let expected = (accepted - drops_before_kill) as usize;
    wait_until(
        180,
        "the indexer to store every frame the edge accepted",
        || es.total() >= expected,
    );
    wait_until(60, "the edge's spill log to drain", || {
        edge.metric("sluice_queue_spill_pending_records{route=\"edge\"}") == 0
    });
    let docs = es.docs("syslog");
    let messages: HashSet<String> = docs.values().map(two_tier_message).collect();
    let drops = not_accepted + drops_before_kill + drops_at_second_kill + two_tier_drops(&edge);
    let indexer_drops = two_tier_drops(&indexer);
    let in_topic = kafka.read_topic(topic).len();
    eprintln!(
        "sent {sent}: {in_topic} records in the topic, delivered {} distinct ids, {} distinct \
         messages; drops: not accepted {not_accepted}, counted by the edge {}, by the indexer \
         {indexer_drops}",
        docs.len(),
        messages.len(),
        drops - not_accepted
    );
    for i in 0..before + during {
        assert!(messages.contains(&format!("crash {i}")), "frame {i} lost");
    }
    assert_eq!(messages.len(), docs.len(), "one document per frame");
    assert_eq!(docs.len() as u64 + drops, sent, "sent = delivered + drops");
    assert_eq!((drops, indexer_drops), (0, 0));
    assert!(edge.stop().success());
    assert!(indexer.stop().success());
}

/// (c) The indexer's sink refuses every request (503) for 15 s while the
/// edge goes on writing to Kafka: the indexer drops nothing, its
/// partitions pause at `max_in_flight` (100), its consumer lag grows;
/// once the sink answers again everything drains, the lag falls back to
/// 0, and the stand-in holds every frame once (the `_id`s absorb any
/// document sent twice).
#[test]
fn two_tier_indexer_sink_down_pauses_lags_and_drains_without_a_drop() {
    let Some(kafka) = shared() else { return };
    let topic = "tt.down";
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = usize::MAX);
    let queue = "{ max_events = 100000, when_full = \"block\" }";
    let mut edge = Sluice::start(&two_tier_edge_config(kafka, topic, "", queue, ""));
    let mut indexer = Sluice::start(&two_tier_indexer_config(kafka, topic, "tt-down", 100, &es));
    let frame = |i: usize| {
        format!(
            "<14>1 2026-11-24T10:00:00Z host{} app - - - down {i}",
            i % 8
        )
    };
    let n = 3000;
    let down = Instant::now();
    let mut tcp = TcpStream::connect(edge.addr("tcp")).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let text: String = chunk.iter().map(|&i| frame(i) + "\n").collect();
        tcp.write_all(text.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(tcp);
    let sent = n as u64;
    wait_until(60, "the edge to write every frame to Kafka", || {
        edge.metric("sluice_sink_kafka_produced_records_total{sink=\"kafka\"}") >= sent
    });
    let mut lag_max = 0;
    wait_until(
        60,
        "the indexer's consumer lag to grow (statistics every 5 s)",
        || {
            lag_max = lag_max.max(two_tier_lag(&indexer).values().sum());
            lag_max > 0
        },
    );
    let paused_metric = "sluice_listener_kafka_paused_partitions{listener=\"from_kafka\"}";
    let mut paused_max = 0;
    wait_until(
        30,
        "the indexer to pause partitions at max_in_flight",
        || {
            paused_max = paused_max.max(indexer.metric(paused_metric));
            paused_max > 0
        },
    );
    let in_flight =
        indexer.metric("sluice_listener_kafka_in_flight_records{listener=\"from_kafka\"}");
    while down.elapsed() < Duration::from_secs(15) {
        lag_max = lag_max.max(two_tier_lag(&indexer).values().sum());
        paused_max = paused_max.max(indexer.metric(paused_metric));
        std::thread::sleep(Duration::from_millis(500));
    }
    let stored_while_down = es.total();
    let drops_while_down = two_tier_drops(&indexer);
    es.knobs(|k| k.fail_requests = 0);
    eprintln!(
        "sink down {:.1} s: lag max {lag_max}, paused partitions max {paused_max}, in flight \
         {in_flight}, stored {stored_while_down}, indexer drops {drops_while_down}",
        down.elapsed().as_secs_f64()
    );
    assert_eq!(stored_while_down, 0, "the stand-in refused every request");
    assert_eq!(drops_while_down, 0, "a sink that is down drops nothing");
    assert!(
        in_flight >= 100,
        "a partition paused with max_in_flight (100) in flight ({in_flight})"
    );
    wait_until(
        120,
        "the indexer to store every frame once the sink is back",
        || es.total() >= n,
    );
    wait_until(
        60,
        "the consumer lag to fall back to 0 on both partitions",
        || {
            let lag = two_tier_lag(&indexer);
            lag.len() == 2 && lag.values().all(|&l| l == 0)
        },
    );
    let docs = es.docs("syslog");
    let messages: HashSet<String> = docs.values().map(two_tier_message).collect();
    let consumed = indexer
        .metric("sluice_listener_kafka_records_total{listener=\"from_kafka\",kind=\"envelope\"}");
    let stored_sent =
        indexer.metric("sluice_sink_records_sent_total{sink=\"es\",route=\"events\"}");
    let drops = two_tier_drops(&edge) + two_tier_drops(&indexer);
    eprintln!(
        "sent {sent}: delivered {} distinct ids, {} distinct messages; records consumed \
         {consumed}, documents the sink counted sent {stored_sent}; drops {drops}; lag max {lag_max}",
        docs.len(),
        messages.len()
    );
    for i in 0..n {
        assert!(messages.contains(&format!("down {i}")), "frame {i} lost");
    }
    assert_eq!(docs.len(), n, "delivered = sent");
    assert_eq!(consumed, sent, "no record handed on twice");
    assert_eq!(stored_sent, sent, "no document written twice");
    assert_eq!(messages.len(), n, "one document per frame");
    assert_eq!(drops, 0);
    assert!(lag_max > 0 && paused_max > 0);
    assert!(indexer.stop().success());
    assert!(edge.stop().success());
}

/// Each partition's lag is reported by the indexer that owns it, and by
/// no other: an indexer that loses a partition in a rebalance stops
/// reporting its lag. Indexer A, whose sink refuses (503), owns both
/// partitions and lags on both; B joins the group, takes one and drains
/// it; A must no longer show a lag for it. Then A's sink is back and
/// every frame is stored, by one indexer or the other, under its `_id`.
#[test]
fn two_tier_lag_is_reported_by_the_partitions_owner_only() {
    let Some(kafka) = shared() else { return };
    let topic = "tt.owner";
    kafka.create_topic(topic, 2, 1, &[]);
    let (es_a, es_b) = (EsServer::start(), EsServer::start());
    es_a.knobs(|k| k.fail_requests = usize::MAX);
    let queue = "{ max_events = 100000, when_full = \"block\" }";
    let mut edge = Sluice::start(&two_tier_edge_config(kafka, topic, "", queue, ""));
    let group = "tt-owner";
    let mut a = Sluice::start(&two_tier_indexer_config(kafka, topic, group, 10_000, &es_a));
    let n = 1000;
    let text: String = (0..n)
        .map(|i| {
            format!(
                "<14>1 2026-11-24T10:00:00Z host{} app - - - owner {i}\n",
                i % 8
            )
        })
        .collect();
    tcp_send(edge.addr("tcp"), text.as_bytes());
    wait_until(60, "indexer A to lag on both partitions", || {
        let lag = two_tier_lag(&a);
        lag.len() == 2 && lag.values().all(|&l| l > 0)
    });
    let mut b = Sluice::start(&two_tier_indexer_config(kafka, topic, group, 10_000, &es_b));
    wait_until(60, "indexer B to store what it took", || es_b.total() > 0);
    let (mut lag_a, mut lag_b) = (BTreeMap::new(), BTreeMap::new());
    wait_until(
        60,
        "each partition's lag to be reported by one indexer",
        || {
            (lag_a, lag_b) = (two_tier_lag(&a), two_tier_lag(&b));
            !lag_a.is_empty()
                && !lag_b.is_empty()
                && lag_a.len() + lag_b.len() == 2
                && lag_a.keys().all(|p| !lag_b.contains_key(p))
        },
    );
    eprintln!("after the rebalance: lag at A {lag_a:?}, at B {lag_b:?}");
    es_a.knobs(|k| k.fail_requests = 0);
    let mut ids = HashSet::new();
    wait_until(60, "A and B to store every frame", || {
        ids = es_a.docs("syslog").into_keys().collect();
        ids.extend(es_b.docs("syslog").into_keys());
        ids.len() >= n
    });
    wait_until(60, "the lag to fall back to 0", || {
        let (la, lb) = (two_tier_lag(&a), two_tier_lag(&b));
        la.values().chain(lb.values()).all(|&l| l == 0) && la.len() + lb.len() == 2
    });
    let (stored_a, stored_b) = (es_a.total(), es_b.total());
    let drops = two_tier_drops(&edge) + two_tier_drops(&a) + two_tier_drops(&b);
    eprintln!(
        "sent {n}: {} distinct ids, stored by A {stored_a}, by B {stored_b}, drops {drops}",
        ids.len()
    );
    assert_eq!(ids.len(), n, "sent = delivered");
    assert_eq!(drops, 0);
    assert!(b.stop().success());
    assert!(a.stop().success());
    assert!(edge.stop().success());
}
