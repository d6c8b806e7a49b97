//! Offsets that go back and lag while paused (issue #24, D2 and D3),
//! through the real binary against the real broker.
//!
//! (a) The topic is deleted and created again under a running indexer: its
//! partitions' offsets start from 0 again, below what the indexer has
//! done with and committed. That is a reset: every record of the new
//! topic is delivered, the resets are counted, and the group's commits
//! follow the new offsets. (b) A sink that refuses pauses the partitions;
//! records produced after the pause still show in the consumer lag
//! (librdkafka's statistics, which come from fetches, stop with them).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{flush, indexer_config, kafka_metric, producer, send};
use crate::util::kafka::shared;
use crate::util::*;

/// The offsets `group` has committed for `topic`'s `partitions`
/// (`None`: none), asked of the broker (no group membership).
fn committed(kafka: &Kafka, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let offsets = (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect();
    observed(format!("group {group} committed on {topic}: {offsets:?}"));
    offsets
}

/// The consumer lag by partition, as /metrics shows it.
fn lag(s: &Sluice) -> BTreeMap<String, u64> {
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

/// Produce plain records `"{what} {i}"` for `i` in `range`, alternating
/// between partitions 0 and 1.
fn produce_plain(kafka: &Kafka, topic: &str, what: &str, range: std::ops::Range<usize>) {
    let producer = producer(kafka);
    for i in range {
        let frame = format!("<14>1 2026-11-24T10:00:00Z host app - - - {what} {i}");
        send(
            &producer,
            topic,
            Some((i % 2) as i32),
            frame.as_bytes(),
            None,
        );
    }
    flush(&producer);
}

/// Messages stored by `es` that start with `what `.
fn stored(es: &EsServer, what: &str) -> usize {
    let prefix = format!("{what} ");
    let n = es
        .docs("syslog")
        .values()
        .filter(|d| {
            d["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&prefix))
        })
        .count();
    observed(format!("stored {what}: {n}"));
    n
}

/// (a) D2: 400 records (200 a partition) delivered and committed; the
/// topic deleted and created again; 100 records (50 a partition, offsets
/// 0..50, below the 200 committed) produced to it: all 100 are delivered,
/// the resets counted, and the group's committed offsets become 50 and 50.
#[test]
fn kafka_listener_reads_a_topic_deleted_and_created_again() {
    let Some(kafka) = shared() else { return };
    let topic = "source.recreate";
    let group = "recreate";
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    let mut s = Sluice::start(&indexer_config(kafka, topic, group, &es, ""));
    produce_plain(kafka, topic, "old", 0..400);
    wait_until(60, "the 400 records of the first topic stored", || {
        stored(&es, "old") >= 400
    });
    wait_until(30, "the group to commit 200 and 200", || {
        committed(kafka, group, topic, 2) == [Some(200), Some(200)]
    });
    kafka.delete_topic(topic);
    kafka.create_topic(topic, 2, 1, &[]);
    produce_plain(kafka, topic, "new", 0..100);
    let mut new = 0;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            60,
            "the 100 records of the topic created again stored",
            || {
                new = stored(&es, "new");
                new >= 100
            },
        )
    }));
    let resets = kafka_metric(&s, "offset_resets", "");
    let commits = committed(kafka, group, topic, 2);
    let kafka_lines: Vec<String> = s
        .scrape()
        .lines()
        .filter(|l| l.starts_with("sluice_listener_kafka"))
        .map(str::to_owned)
        .collect();
    eprintln!(
        "topic recreated: new records stored {new} of 100, offset resets {resets}, \
         committed {commits:?}; {kafka_lines:?}"
    );
    if let Err(e) = waited {
        std::panic::resume_unwind(e);
    }
    // Counted at the poller's next commit tick, which may come after the
    // records are stored.
    wait_until(10, "the offsets that went back counted as resets", || {
        kafka_metric(&s, "offset_resets", "") >= 1
    });
    wait_until(30, "the group to commit 50 and 50 on the new topic", || {
        committed(kafka, group, topic, 2) == [Some(50), Some(50)]
    });
    assert_eq!(stored(&es, "new"), 100);
    assert_eq!(
        kafka_metric(&s, "dropped_records", ",reason=\"no_value\""),
        0
    );
    assert!(s.stop().success());
}

/// (b) D3: the sink refuses every request (503); 1000 records fill the
/// partitions' `max_in_flight` (100 each) and pause them; 2000 more are
/// produced while paused. Nothing is committed, so the lag is every
/// record produced: the gauge must reach 3000 (not stop at what was
/// fetched before the pause). Once the sink answers, all is stored and
/// the lag falls back to 0.
#[test]
fn kafka_listener_lag_grows_while_partitions_are_paused() {
    let Some(kafka) = shared() else { return };
    let topic = "source.pausedlag";
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = usize::MAX);
    let mut s = Sluice::start(&indexer_config(
        kafka,
        topic,
        "pausedlag",
        &es,
        "max_in_flight = 100",
    ));
    produce_plain(kafka, topic, "lag", 0..1000);
    let paused = "sluice_listener_kafka_paused_partitions{listener=\"from_kafka\"}";
    wait_until(60, "both partitions paused at max_in_flight", || {
        s.metric(paused) == 2
    });
    produce_plain(kafka, topic, "lag", 1000..3000);
    let in_flight = s.metric("sluice_listener_kafka_in_flight_records{listener=\"from_kafka\"}");
    let mut seen = BTreeMap::new();
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            30,
            "the lag to count the 3000 records produced (statistics every 5 s)",
            || {
                seen = lag(&s);
                seen.values().sum::<u64>() >= 3000
            },
        )
    }));
    eprintln!(
        "paused: lag {seen:?} (sum {}), in flight {in_flight}, produced 3000, stored {}",
        seen.values().sum::<u64>(),
        es.total()
    );
    if let Err(e) = waited {
        std::panic::resume_unwind(e);
    }
    assert_eq!(
        seen.values().sum::<u64>(),
        3000,
        "nothing committed: lag = produced"
    );
    assert_eq!(es.total(), 0, "the stand-in refused every request");
    es.knobs(|k| k.fail_requests = 0);
    wait_until(120, "every record stored once the sink is back", || {
        stored(&es, "lag") >= 3000
    });
    wait_until(30, "the lag to fall back to 0 on both partitions", || {
        let l = lag(&s);
        l.len() == 2 && l.values().all(|&v| v == 0)
    });
    assert!(s.stop().success());
}

/// A SIGTERMed indexer leaves the group: with a 60 s session timeout, a
/// second indexer started after it stopped gets the partitions at once
/// and stores what is produced then (were the first one still a member,
/// the group would wait out its session before assigning anything).
#[test]
fn kafka_listener_leaves_the_group_when_stopped() {
    let Some(kafka) = shared() else { return };
    let topic = "source.leave";
    let group = "leave";
    kafka.create_topic(topic, 2, 1, &[]);
    let (es_a, es_b) = (EsServer::start(), EsServer::start());
    let session = "session_timeout_ms = 60000";
    let mut a = Sluice::start(&indexer_config(kafka, topic, group, &es_a, session));
    produce_plain(kafka, topic, "first", 0..100);
    wait_until(60, "indexer A to store the first 100", || {
        stored(&es_a, "first") >= 100
    });
    assert!(a.stop().success());
    let mut b = Sluice::start(&indexer_config(kafka, topic, group, &es_b, session));
    produce_plain(kafka, topic, "second", 0..100);
    wait_until(
        30,
        "indexer B to store the 100 produced after A stopped (A left the group)",
        || stored(&es_b, "second") >= 100,
    );
    assert_eq!(stored(&es_b, "first"), 0, "A committed what it stored");
    assert!(b.stop().success());
}
