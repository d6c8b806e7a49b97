//! A partition paused, revoked and assigned back (issue #24, N1), through
//! the real binary against the real broker.
//!
//! librdkafka keeps an application's pause across a revocation and a new
//! assignment, while the listener forgets a revoked partition with its
//! pause: unless the listener resumes what it is assigned, a partition
//! paused before a rebalance stays paused for good (its lag stands,
//! nothing resumes it, /health says ok).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{indexer_config, kafka_metric};
use crate::util::kafka::shared;
use crate::util::*;

/// The distinct `"{what} {i}"` messages `es` stored.
fn stored_numbers_of(es: &EsServer, what: &str) -> HashSet<usize> {
    let prefix = format!("{what} ");
    es.docs("syslog")
        .values()
        .filter_map(|d| d["message"].as_str()?.strip_prefix(&prefix)?.parse().ok())
        .collect()
}

/// The sink refuses (503) and 1000 records (500 a partition) pause both
/// partitions at `max_in_flight` (100). A second member joins the group
/// (both partitions are revoked, one is assigned back), the sink answers
/// again, the member leaves (the other comes back): every record is then
/// stored, none stays behind a pause nobody resumes.
#[test]
fn kafka_listener_resumes_a_paused_partition_assigned_back() {
    let Some(kafka) = shared() else { return };
    let (topic, group) = ("source.repaused", "repaused");
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = usize::MAX);
    let mut s = Sluice::start(&indexer_config(
        kafka,
        topic,
        group,
        &es,
        "max_in_flight = 100",
    ));
    let n = 1000;
    super::reset_lag::produce_plain(kafka, topic, "repaused", 0..n);
    let paused = "sluice_listener_kafka_paused_partitions{listener=\"from_kafka\"}";
    wait_until(60, "both partitions paused at max_in_flight", || {
        s.metric(paused) == 2
    });
    let rebalances = kafka_metric(&s, "rebalances", "");

    // The joiner: a member of the same group in this process; it commits
    // nothing, so what it reads is read again by the indexer.
    let joiner: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    joiner.subscribe(&[topic]).unwrap();
    wait_until(30, "the joiner to be assigned a partition", || {
        let _ = joiner.poll(Duration::from_millis(100));
        let got = joiner.assignment().map(|a| a.count()).unwrap_or(0);
        observed(format!("joiner assigned {got} partition(s)"));
        got == 1
    });
    wait_until(30, "the indexer to be revoked and assigned again", || {
        kafka_metric(&s, "rebalances", "") >= rebalances + 2
    });
    es.knobs(|k| k.fail_requests = 0);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let _ = joiner.poll(Duration::from_millis(100));
    }
    // Closes it: it leaves the group, its partition comes back.
    drop(joiner);

    let metrics = |s: &Sluice| -> String {
        s.scrape()
            .lines()
            .filter(|l| {
                l.starts_with("sluice_listener_kafka_paused")
                    || l.starts_with("sluice_listener_kafka_in_flight")
                    || l.starts_with("sluice_listener_kafka_consumer_lag")
                    || l.starts_with("sluice_listener_kafka_rebalances")
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut got = 0;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(60, "every record stored once the sink is back", || {
            got = stored_numbers_of(&es, "repaused").len();
            observed(format!("stored {got} of {n}; {}", metrics(&s)));
            got == n
        })
    }));
    eprintln!(
        "paused, revoked, assigned back: stored {got} of {n}; {}",
        metrics(&s)
    );
    if let Err(e) = waited {
        std::panic::resume_unwind(e);
    }
    assert_eq!(
        stored_numbers_of(&es, "repaused"),
        (0..n).collect::<HashSet<_>>()
    );
    // What was read again (nothing was committed before the rebalances)
    // is done with too: no partition is left behind.
    wait_until(30, "the lag to fall back to 0 on both partitions", || {
        let l = super::reset_lag::lag(&s);
        l.len() == 2 && l.values().all(|&v| v == 0)
    });
    assert_eq!(s.metric(paused), 0, "no partition left paused");
    assert!(s.stop().success());
}
