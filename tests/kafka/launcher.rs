//! The test launcher itself: a topic created, records produced with keys
//! and headers read back byte for byte, and a node stopped and started
//! again keeps what it had.

use crate::util::kafka::shared;
use crate::util::*;

fn record(key: Option<&[u8]>, value: &[u8], headers: &[(&str, &[u8])]) -> KafkaRecord {
    KafkaRecord {
        partition: -1,
        offset: -1,
        key: key.map(<[u8]>::to_vec),
        value: value.to_vec(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(v.to_vec())))
            .collect(),
    }
}

#[test]
fn kafka_launcher_round_trips_records_with_keys_and_headers() {
    let Some(kafka) = shared() else { return };
    kafka.create_topic("launcher.roundtrip", 3, 1, &["max.message.bytes=100000"]);
    let sent = vec![
        record(
            Some(b"web01"),
            b"<13>1 - web01 app - - - hello",
            &[("sluice.envelope", b"1")],
        ),
        // Not UTF-8: bytes go through untouched.
        record(None, &[0, 0xff, 0xfe, b'\n'], &[]),
        record(Some(b"web01"), b"second", &[("a", b"x"), ("b", b"")]),
    ];
    kafka.produce("launcher.roundtrip", &sent);
    let got = kafka.read_topic("launcher.roundtrip");
    assert_eq!(got.len(), sent.len(), "{got:?}");
    for s in &sent {
        let found = got
            .iter()
            .find(|g| g.value == s.value)
            .unwrap_or_else(|| panic!("{:?} not read back: {got:?}", s.value));
        assert_eq!(found.key, s.key);
        assert_eq!(found.headers, s.headers);
        assert_eq!(
            found.header("sluice.envelope"),
            s.headers
                .first()
                .filter(|h| h.0 == "sluice.envelope")
                .map(|_| "1".to_owned())
        );
    }
    // One key, one partition.
    let web01: Vec<_> = got
        .iter()
        .filter(|g| g.key.as_deref() == Some(b"web01"))
        .collect();
    assert_eq!(web01[0].partition, web01[1].partition);
    assert_eq!(kafka.leader("launcher.roundtrip", 0), Some(0));
}

/// A node stopped and started again (same ports, same data) serves what
/// it had; what the tests of a broker outage rely on.
#[test]
fn kafka_launcher_restarts_a_stopped_node_with_its_data() {
    if !kafka_available() {
        return;
    }
    let kafka = Kafka::start(1, &[]);
    kafka.create_topic("restart", 1, 1, &[]);
    kafka.produce("restart", &[record(None, b"before", &[])]);
    kafka.stop_node(0);
    kafka.start_node(0);
    kafka.produce("restart", &[record(None, b"after", &[])]);
    let got = kafka.read_topic("restart");
    let values: Vec<&[u8]> = got.iter().map(|r| r.value.as_slice()).collect();
    assert_eq!(values, vec![b"before".as_slice(), b"after"]);
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1]);
}

/// Three nodes, replication factor 3, `min.insync.replicas = 2`: with the
/// partition's leader killed, another node leads and nothing acknowledged
/// is lost.
#[test]
fn kafka_launcher_three_nodes_survive_a_killed_leader() {
    if !kafka_available() {
        return;
    }
    let kafka = Kafka::start(3, &[]);
    assert_eq!(kafka.ports.len(), 3);
    let listed: Vec<String> = kafka
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    assert_eq!(kafka.bootstrap, listed.join(","));
    kafka.create_topic("leader", 1, 3, &["min.insync.replicas=2"]);
    kafka.produce("leader", &[record(None, b"one", &[])]);
    let leader = kafka.leader("leader", 0).expect("a leader");
    kafka.kill_node(leader);
    kafka.produce("leader", &[record(None, b"two", &[])]);
    let now = kafka.leader("leader", 0).expect("a new leader");
    assert_ne!(now, leader);
    let values: Vec<Vec<u8>> = kafka
        .read_topic("leader")
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values, vec![b"one".to_vec(), b"two".to_vec()]);
}
