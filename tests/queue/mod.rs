//! Per-route queues: block, drop, timeouts, SIGTERM with data in flight, the durable spill log.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::es_server::EsServer;

use crate::util::*;

const BLOCKING_EVENTS_ROUTE: &str = r#"
[[routes]]
name = "events"
sink = "events"
document = {}
queue = { max_events = 1000, when_full = "block" }
"#;

/// Connections a sender opened and wrote to before SIGTERM, but that the
/// accept loop had not taken yet (still in the kernel's backlog), are
/// accepted and read during the drain too: their frames were sent before
/// the signal. sluice is stopped (SIGSTOP) while the senders connect and
/// write, so every connection is still in the backlog when SIGTERM comes.
#[test]
fn sigterm_reads_connections_still_in_the_accept_backlog() {
    let mut s = Sluice::start(&config("", BLOCKING_EVENTS_ROUTE));
    s.signal("-STOP");
    // Fewer than the listening socket's backlog (128), so every connect
    // completes while sluice is stopped.
    let (conns, per_conn) = (100, 5);
    let mut open = Vec::new();
    for c in 0..conns {
        let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
        let frames: Vec<u8> = (0..per_conn)
            .flat_map(|i| format!("<14>1 - h app - - - conn {c} message {i}\n").into_bytes())
            .collect();
        conn.write_all(&frames).unwrap();
        open.push(conn);
    }
    s.signal("-TERM");
    s.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = s.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "sluice did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    let delivered = read_lines(&s.path("events.ndjson")).len();
    eprintln!(
        "sent {} frames on {conns} connections, delivered {delivered}",
        conns * per_conn
    );
    assert_eq!(
        delivered,
        conns * per_conn,
        "every frame written before SIGTERM is delivered"
    );
    drop(open);
}

#[test]
fn sigterm_with_data_in_flight_loses_nothing() {
    let mut s = Sluice::start(&config("", BLOCKING_EVENTS_ROUTE));
    let n = 20_000;
    let payload = numbered_frames(n);
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.write_all(&payload).unwrap();
    // SIGTERM while the frames are still being read and written, connection open.
    let status = s.stop();
    assert!(status.success(), "exit status {status:?}");
    let lines = read_lines(&s.path("events.ndjson"));
    assert_eq!(
        lines.len(),
        n,
        "every frame written before SIGTERM is delivered"
    );
    let got = messages(&lines);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &format!("message {i}"));
    }
}

#[test]
fn drop_newest_counts_every_drop() {
    let routes = r#"
[[routes]]
name = "events"
sink = "events"
document = {}
queue = { max_events = 10, when_full = "drop_newest" }
"#;
    let mut s = Sluice::start(&config("", routes));
    let n = 5_000;
    let payload = numbered_frames(n);
    tcp_send(s.addr("tcp"), &payload);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("sluice_listener_frames_total{listener=\"tcp\"}") < n as u64 {
        assert!(Instant::now() < deadline, "frames not all read");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dropped = s.metric("sluice_queue_dropped_records_total{route=\"events\",reason=\"full\"}");
    assert!(s.stop().success());
    let delivered = read_lines(&s.path("events.ndjson")).len() as u64;
    assert_eq!(
        delivered + dropped,
        n as u64,
        "delivered {delivered} + dropped {dropped}"
    );
}

/// `block` with `block_timeout_ms` against a stalled sink: the TCP reader
/// waits for room at most that long per record, then drops and counts it;
/// when the sink recovers, what was queued arrives. Sent = delivered +
/// counted drops, exactly.
#[test]
fn block_with_a_timeout_drops_and_counts_when_the_sink_stays_stalled() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "to_es"
sink = "es"
document = {}
[routes.queue]
max_events = 10
when_full = "block"
block_timeout_ms = 20
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    tcp_send(s.addr("tcp"), &numbered_frames(100));
    let dropped =
        || s.metric("sluice_queue_dropped_records_total{route=\"to_es\",reason=\"block_timeout\"}");
    // Every frame read and its push settled (queued, or dropped after the
    // wait): the last frame is counted as read before its push returns.
    let pushed = || s.metric("sluice_queue_pushed_records_total{route=\"to_es\"}");
    wait_while!(20, || pushed() + dropped() < 100);
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"tcp\"}"),
        100
    );
    let d = dropped();
    assert_eq!(pushed() + d, 100);
    assert!(d > 0 && d < 100, "dropped {d}");
    es.knobs(|k| k.fail_requests = 0);
    wait_while!(30, || (es.total() as u64) < 100 - d);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(es.total() as u64 + d, 100, "delivered + dropped");
    assert_eq!(
        s.metric("sluice_queue_pushed_records_total{route=\"to_es\"}") + d,
        100
    );
    assert!(s.stop().success());
}

/// `sluice spill verify DIR` reads each route's spill log without starting
/// the service: pending records per route, and a torn tail reported (exit 1)
/// but left in place for the service to truncate.
#[test]
fn spill_verify_reports_pending_records_and_corruption() {
    use sluice::testing::{Fsync, SpillLog, SpillOptions};
    let data = tempfile::tempdir().unwrap();
    let options = SpillOptions {
        segment_bytes: 1024,
        max_bytes: 1 << 20,
        fsync: Fsync::EveryBatch,
    };
    let mut scratch = Vec::new();
    for (route, n) in [("errors", 3u64), ("events", 120)] {
        let (mut log, _) = SpillLog::open(&data.path().join(route), options.clone()).unwrap();
        for i in 0..n {
            let r = sluice::testing::Record {
                payload: format!("{{\"message\":\"m{i}\"}}").into(),
                time_nanos: i as i64,
                key: None,
                kafka: None,
                ack: None,
            };
            log.append(&[r], &mut scratch).unwrap();
        }
        if route == "events" {
            let mut read = Vec::new();
            log.read_batch(20, &mut read).unwrap();
            log.ack().unwrap();
        }
    }
    let verify = || {
        let out = Command::new(BIN)
            .args(["spill", "verify", data.path().to_str().unwrap()])
            .output()
            .unwrap();
        let reports: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code(), reports)
    };
    let (code, reports) = verify();
    assert_eq!(code, Some(0));
    assert_eq!(reports[0]["route"], "errors");
    assert_eq!(reports[0]["pending_records"], 3);
    assert_eq!(reports[1]["route"], "events");
    assert_eq!(reports[1]["pending_records"], 100);
    assert!(reports[1]["segments"].as_u64().unwrap() > 1);
    // A crash mid-write leaves a torn record at the end.
    let errors = data.path().join("errors");
    let seg = std::fs::read_dir(&errors)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[9, 0, 0, 0, 1, 2])
        .unwrap();
    let (code, reports) = verify();
    assert_eq!(code, Some(1));
    assert_eq!(reports[0]["pending_records"], 3);
    assert_eq!(reports[0]["corrupt"][0][1], len);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        len + 6,
        "verify changes nothing"
    );
}

/// A durable route (fsync after each batch of frames read), `kill -9` in
/// the middle of a load, garbage appended to
/// the log's tail, restart: every record the log held before the kill is
/// delivered (in order, as a prefix of what was sent), the torn tail is
/// truncated and counted, and the restarted sluice carries on.
#[test]
fn durable_route_survives_kill_9_and_a_torn_tail() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "durable"
sink = "es"
document = {}
[routes.queue]
durable = true
fsync = "batch"
spill_segment_bytes = 65536
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let addr = s.addr("tcp");
    // The sender writes at most the first half before the kill: it waits
    // there for the kill, then writes into a dead connection, where it
    // stops. The kill comes in the middle of the load however fast sluice
    // logs what it reads.
    let (n, half) = (20_000, 10_000);
    let (killed, go_on) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        for i in 0..n {
            if i == half {
                go_on
                    .recv_timeout(Duration::from_secs(60))
                    .expect("sluice killed within 60 s");
            }
            if c.write_all(format!("<14>1 - h app - - - message {i}\n").as_bytes())
                .is_err()
            {
                return i;
            }
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        n
    });
    let spilled = || s.metric("sluice_queue_spilled_records_total{route=\"durable\"}");
    wait_while!(20, || spilled() < 3000);
    let written = spilled() as usize;
    assert!((3000..=half).contains(&written), "{written} logged");
    s.kill9();
    // The sender is cut off before or after the gate (the kill can come
    // while it writes the first half); it waits no longer either way.
    let _ = killed.send(());
    let sent = sender.join().unwrap();
    assert!(
        sent < n,
        "the kill came in the middle of the load: {sent} of {n} written"
    );
    // A crash mid-write: a torn record at the end of the last segment.
    let log_dir = s.path("sluice-data/spill/durable");
    let segments = crate::util::spill_segments(&log_dir);
    assert!(segments.len() > 1, "{segments:?}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(segments.last().unwrap())
        .unwrap()
        .write_all(&[200, 1, 0, 0, 7, 7, 7, 7, 1, 2, 3])
        .unwrap();
    es.knobs(|k| k.fail_requests = 0);
    s.relaunch();
    wait_while!(30, || stored_numbers(&es).len() < written);
    std::thread::sleep(Duration::from_millis(300));
    let got = stored_numbers(&es);
    eprintln!(
        "kill -9 with {written} records in the log ({sent} sent); {} delivered after the restart",
        got.len()
    );
    assert!(
        got.len() >= written,
        "{} delivered, {written} were in the log",
        got.len()
    );
    assert!(
        got.iter().enumerate().all(|(i, &n)| i == n),
        "delivered messages are a prefix of the stream"
    );
    assert_eq!(
        s.metric("sluice_queue_spill_corrupt_records_total{route=\"durable\"}"),
        1
    );
    wait_while!(10, || {
        s.metric("sluice_queue_spill_pending_records{route=\"durable\"}") > 0
    });
    assert_eq!(
        s.metric("sluice_queue_spill_pending_records{route=\"durable\"}"),
        0
    );
    // The restarted sluice takes new data on the same log.
    tcp_send(s.addr("tcp"), b"<14>1 - h app - - - message 999999\n");
    wait_while!(10, || !stored_numbers(&es).contains(&999_999));
    assert!(stored_numbers(&es).contains(&999_999));
    assert!(s.stop().success());
}

/// Ten minutes of a 250 msg/s service's logging (150,000 messages of about
/// 600 bytes, 90 MB) into a route whose sink is down: the queue holds 2 MiB
/// in memory and spills the rest, so sluice's peak RSS stays near its
/// fixed size; when the sink comes back every message arrives.
#[test]
fn a_long_outage_spills_to_disk_and_memory_stays_bounded() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "spilling"
sink = "es"
document = {}
[routes.queue]
max_events = 100000
max_bytes = 2097152
when_full = "spill"
fsync = "never"
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let baseline = s.peak_rss_kib();
    let padding = "p".repeat(560);
    let mut frames = Vec::with_capacity(100 << 20);
    for i in 0..150_000 {
        frames.extend_from_slice(format!("<14>1 - h app - - - message {i} {padding}\n").as_bytes());
    }
    tcp_send(s.addr("tcp"), &frames);
    drop(frames);
    wait_while!(60, || {
        s.metric("sluice_queue_pushed_records_total{route=\"spilling\"}") < 150_000
    });
    assert_eq!(
        s.metric("sluice_queue_pushed_records_total{route=\"spilling\"}"),
        150_000
    );
    let spilled = s.metric("sluice_queue_spilled_records_total{route=\"spilling\"}");
    assert!(spilled > 140_000, "spilled {spilled}");
    let peak = s.peak_rss_kib();
    eprintln!("spilled {spilled} of 150000; peak RSS {peak} KiB, idle {baseline} KiB");
    // Queue bytes (2 MiB) plus a fixed overhead of 48 MiB over the idle size.
    assert!(
        peak < baseline + 2048 + 48 * 1024,
        "peak RSS {peak} KiB, idle {baseline} KiB"
    );
    es.knobs(|k| k.fail_requests = 0);
    wait_while!(120, || es.total() < 150_000);
    assert_eq!(es.total(), 150_000);
    assert!(s.stop().success());
}

/// `block` against a stalled sink: once the queue and the socket buffers
/// are full the sender's writes stop completing (TCP backpressure); when the
/// sink resumes, everything arrives, in the order it was sent.
#[test]
fn block_stops_the_tcp_sender_and_everything_arrives_in_order() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "blocking"
sink = "es"
document = {}
[routes.queue]
max_events = 100
when_full = "block"
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    // 20,000 frames of ~600 bytes: more than the socket buffers hold.
    let n = 20_000;
    let pad = "p".repeat(570);
    let payload: Vec<u8> = (0..n)
        .flat_map(|i| format!("<14>1 - h app - - - message {i} {pad}\n").into_bytes())
        .collect();
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.set_nonblocking(true).unwrap();
    // Write until the kernel refuses more: sluice has stopped reading.
    let mut written = 0;
    let stalled_at = loop {
        match conn.write(&payload[written..]) {
            Ok(k) => written += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(300));
                match conn.write(&payload[written..]) {
                    Ok(k) => written += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break written,
                    Err(e) => panic!("{e}"),
                }
            }
            Err(e) => panic!("{e}"),
        }
        assert!(written < payload.len(), "the sender was never held back");
    };
    assert!(stalled_at < payload.len());
    let frames = s.metric("sluice_listener_frames_total{listener=\"tcp\"}");
    assert!(frames < n as u64, "sluice read {frames} of {n}");
    // The sink resumes: the sender finishes, everything arrives in order.
    es.knobs(|k| k.fail_requests = 0);
    conn.set_nonblocking(false).unwrap();
    conn.write_all(&payload[written..]).unwrap();
    wait_while!(60, || es.total() < n);
    let got = stored_in_order(&es);
    let want: Vec<String> = (0..n).map(|i| format!("message {i} {pad}")).collect();
    assert!(
        got == want,
        "{} stored; first out of order at {:?}",
        got.len(),
        got.iter().zip(&want).position(|(g, w)| g != w)
    );
    assert_eq!(
        s.metric("sluice_queue_dropped_records_total{route=\"blocking\",reason=\"full\"}"),
        0
    );
    drop(conn);
    assert!(s.stop().success());
}

/// Two routes from one listener, one into a stalled sink with a small
/// drop_newest queue: the other route (blocking, so it loses nothing of a
/// burst) delivers everything while the first is stalled, and the stalled
/// route's drops are counted exactly.
#[test]
fn a_stalled_route_does_not_hold_back_the_others() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "to_file"
sink = "events"
document = {}
[routes.queue]
when_full = "block"
[[routes]]
name = "to_stalled_es"
sink = "es"
document = {}
[routes.queue]
max_events = 100
when_full = "drop_newest"
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let n = 20_000;
    tcp_send(s.addr("tcp"), &numbered_frames(n));
    wait_while!(30, || read_lines(&s.path("events.ndjson")).len() < n);
    let lines = read_lines(&s.path("events.ndjson"));
    assert_eq!(lines.len(), n, "the healthy route delivered everything");
    assert_eq!(es.total(), 0, "the other sink is still stalled");
    // The stalled route's push of the last message settles after the file
    // route's: wait until every message is queued or dropped there.
    let es_dropped =
        || s.metric("sluice_queue_dropped_records_total{route=\"to_stalled_es\",reason=\"full\"}");
    let es_pushed = || s.metric("sluice_queue_pushed_records_total{route=\"to_stalled_es\"}");
    wait_while!(10, || es_pushed() + es_dropped() < n as u64);
    let dropped = es_dropped();
    assert_eq!(es_pushed() + dropped, n as u64);
    assert!(dropped > 0);
    es.knobs(|k| k.fail_requests = 0);
    wait_while!(30, || (es.total() as u64) + dropped < n as u64);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        es.total() as u64 + dropped,
        n as u64,
        "delivered + dropped = sent"
    );
    assert!(s.stop().success());
}
