//! Stopping an indexer whose sink is down (issue #24, N2), through the
//! real binary against the real broker: what it still holds at the
//! shutdown deadline carries Kafka offsets it did not commit, so it is
//! not lost (the next start reads it again) and not reported as lost.

use super::{indexer_config, kafka_metric};
use crate::util::kafka::shared;
use crate::util::*;

/// The sink refuses; 300 records are consumed and held in the queue. At
/// the stop the deadline passes with them: the process exits 0 and says
/// they are read again, and an indexer of the same group started after
/// the sink is back stores all 300.
#[test]
fn kafka_listener_stopped_with_its_sink_down_loses_nothing() {
    let Some(kafka) = shared() else { return };
    let (topic, group) = ("source.stopdown", "stopdown");
    kafka.create_topic(topic, 2, 1, &[]);
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = usize::MAX);
    let mut a = Sluice::start(&indexer_config(kafka, topic, group, &es, ""));
    let n = 300;
    super::reset_lag::produce_plain(kafka, topic, "stopdown", 0..n);
    let in_flight = "sluice_listener_kafka_in_flight_records{listener=\"from_kafka\"}";
    wait_until(60, "all 300 records consumed and in flight", || {
        let got = a.metric(in_flight);
        observed(format!("in flight {got}"));
        got == n as u64
    });
    let commits = kafka_metric(&a, "commits", "");
    let status = a.stop();
    let log = a.stderr();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("lost") || l.contains("read again"))
        .collect();
    eprintln!("stopped with the sink down: {status}, commits before {commits}; {said:?}");
    assert!(
        log.contains("whose Kafka offsets were not committed are read again"),
        "{said:?}"
    );
    assert!(!log.contains("were lost at shutdown"), "{said:?}");
    assert!(status.success(), "{status}: {said:?}");

    es.knobs(|k| k.fail_requests = 0);
    let mut b = Sluice::start(&indexer_config(kafka, topic, group, &es, ""));
    wait_until(60, "the next indexer to store all 300", || {
        let stored = super::reset_lag::stored(&es, "stopdown");
        stored >= n
    });
    assert!(b.stop().success());
}
