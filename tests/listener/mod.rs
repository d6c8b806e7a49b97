//! UDP, TCP and the logger tool in; framing limits, connection limits and the input counters.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn udp_and_tcp_in_both_framings_reach_the_file_sink() {
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 2026-11-23T10:00:00Z h app - - - via udp",
        s.addr("udp"),
    )
    .unwrap();
    s.wait_lines("events.ndjson", 1);
    tcp_send(
        s.addr("tcp"),
        b"<14>1 - h app - - - lf one\n<14>1 - h app - - - lf two\r\n",
    );
    s.wait_lines("events.ndjson", 3);
    let a = "<14>1 - h app - - - octet one";
    let b = "<14>1 - h app - - - octet two";
    tcp_send(
        s.addr("tcp"),
        format!("{} {a}{} {b}", a.len(), b.len()).as_bytes(),
    );
    s.wait_lines("events.ndjson", 5);
    // One connection mixing both framings, frame by frame.
    let c = "<14>1 - h app - - - mixed octet";
    tcp_send(
        s.addr("tcp"),
        format!(
            "<14>1 - h app - - - mixed lf\n{} {c}<14>1 - h app - - - mixed lf again\n",
            c.len()
        )
        .as_bytes(),
    );
    let lines = s.wait_lines("events.ndjson", 8);
    let mut got = messages(&lines);
    got[1..].sort();
    assert_eq!(
        got,
        [
            "via udp",
            "lf one",
            "lf two",
            "mixed lf",
            "mixed lf again",
            "mixed octet",
            "octet one",
            "octet two"
        ]
    );
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"udp\"}"),
        1
    );
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"tcp\"}"),
        7
    );
    assert!(s.stop().success());
}

#[test]
fn oversized_frame_and_garbage_count_are_counted_and_the_connection_goes_on() {
    let extra = r#"
[[listeners]]
name = "small"
protocol = "tcp"
listen = "127.0.0.1:0"
max_frame_bytes = 64
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let mut conn = TcpStream::connect(s.addr("small")).unwrap();
    let big = format!("<14>{}\n", "x".repeat(200));
    // A count over the maximum frames by LF (issue #20 item 7): this line is
    // itself too long, so it is skipped up to its LF.
    let big_counted = format!("100 <14>{}\n", "y".repeat(96));
    conn.write_all(big.as_bytes()).unwrap();
    conn.write_all(b"<14>after oversized lf\n").unwrap();
    conn.write_all(big_counted.as_bytes()).unwrap();
    conn.write_all(b"<14>after oversized count\n").unwrap();
    // A count too long to be one, and a count not followed by a syslog frame.
    conn.write_all(b"99999999999999 <14>garbage count\n")
        .unwrap();
    conn.write_all(b"12 not syslog after count\n").unwrap();
    conn.write_all(b"<14>after garbage\n").unwrap();
    conn.flush().unwrap();
    let lines = s.wait_lines("events.ndjson", 5);
    assert_eq!(
        messages(&lines),
        [
            "after oversized lf",
            "after oversized count",
            "99999999999999 <14>garbage count",
            "12 not syslog after count",
            "after garbage"
        ]
    );
    let small = |what: &str| format!("{what}{{listener=\"small\",reason=");
    assert_eq!(
        s.metric(&(small("sluice_listener_skipped_frames_total") + "\"oversized\"}")),
        2
    );
    assert_eq!(
        s.metric(&(small("sluice_listener_framing_fallbacks_total") + "\"bad_octet_count\"}")),
        1
    );
    assert_eq!(
        s.metric(&(small("sluice_listener_framing_fallbacks_total") + "\"count_over_max\"}")),
        1
    );
    assert_eq!(
        s.metric(
            &(small("sluice_listener_framing_fallbacks_total") + "\"count_not_followed_by_pri\"}")
        ),
        1
    );
    assert_eq!(
        s.metric("sluice_listener_invalid_frames_total{listener=\"small\"}"),
        2
    );
    assert_eq!(
        s.metric("sluice_listener_connections_open{listener=\"small\"}"),
        1
    );
    drop(conn);
    assert!(s.stop().success());
}

#[test]
fn connections_over_the_limit_are_refused_and_idle_ones_closed() {
    let extra = r#"
[[listeners]]
name = "limited"
protocol = "tcp"
listen = "127.0.0.1:0"
max_connections = 2
idle_timeout_secs = 3
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let addr = s.addr("limited");
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    first
        .write_all(b"<14>1 - h app - - - from first\n")
        .unwrap();
    second
        .write_all(b"<14>1 - h app - - - from second\n")
        .unwrap();
    s.wait_lines("events.ndjson", 2);
    // A third connection is accepted by the kernel, then closed by sluice
    // at once, while the two hold their slots: that is before their idle
    // timeout ends, which only time can show (3 s from their frames, not
    // 1 s, so a loaded machine gets to the third's accept in time).
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(third.read(&mut buf), Ok(0)),
        "refused connection is closed (EOF, not a read timeout)"
    );
    assert_eq!(
        s.metric("sluice_listener_connections_rejected_total{listener=\"limited\",reason=\"max_connections\"}"),
        1
    );
    // The established senders are unaffected; after 3 s of silence both
    // are closed as idle, which frees their slots.
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        matches!(first.read(&mut buf), Ok(0)),
        "idle connection is closed (EOF, not a read timeout)"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("sluice_listener_connections_open{listener=\"limited\"}") != 0 {
        assert!(Instant::now() < deadline, "idle connections not closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.metric("sluice_listener_connections_closed_abnormally_total{listener=\"limited\",reason=\"idle_timeout\"}"),
        2
    );
    tcp_send(addr, b"<14>1 - h app - - - after the idle ones left\n");
    let lines = s.wait_lines("events.ndjson", 3);
    let mut got = messages(&lines);
    got.sort();
    assert_eq!(
        got,
        ["after the idle ones left", "from first", "from second"]
    );
    assert!(s.stop().success());
}

#[test]
fn logger_from_util_linux_reaches_it() {
    if !logger_available() {
        return;
    }
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let udp = s.addr("udp").port().to_string();
    let tcp = s.addr("tcp").port().to_string();
    let runs: [(&[&str], &str); 4] = [
        (&["-P", &udp, "-d"], "logger udp rfc5424"),
        (&["-P", &tcp, "-T"], "logger tcp"),
        (&["-P", &tcp, "-T", "--octet-count"], "logger tcp octet"),
        (&["-P", &udp, "-d", "--rfc3164"], "logger udp rfc3164"),
    ];
    for (i, (args, msg)) in runs.iter().enumerate() {
        let status = Command::new("logger")
            .args(["-n", "127.0.0.1", "-t", "tester"])
            .args(*args)
            .arg(msg)
            .status()
            .unwrap();
        assert!(status.success());
        s.wait_lines("events.ndjson", i + 1);
    }
    let lines = s.wait_lines("events.ndjson", 4);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let protocols: Vec<&str> = events
        .iter()
        .map(|e| e["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["rfc5424", "rfc5424", "rfc5424", "rfc3164"]);
    for (e, (_, msg)) in events.iter().zip(runs.iter()) {
        assert_eq!(e["message"], *msg);
        assert_eq!(e["appname"], "tester");
        assert_eq!(e["valid"], true);
    }
    assert!(s.stop().success());
}

/// `sockets = 4`: four UDP sockets share the port (SO_REUSEPORT), each
/// read by its own task. Every datagram of 16 senders arrives, and each
/// sender's datagrams keep their order (the kernel keeps a sender on one
/// socket).
#[test]
fn udp_listener_with_several_reuseport_sockets_loses_nothing() {
    let extra = r#"
[[listeners]]
name = "spread"
protocol = "udp"
listen = "127.0.0.1:0"
sockets = 4
receive_buffer_bytes = 1048576
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let to = s.addr("spread");
    // The four sockets, as the kernel lists them (local port in hex).
    let port = format!(":{:04X} ", to.port());
    let udp_table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let bound = udp_table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| format!("{a} ").ends_with(&port))
        })
        .count();
    assert_eq!(bound, 4, "{udp_table}");
    // The buffer the kernel granted: the request doubled, unless
    // net.core.rmem_max caps it and sluice may not force it (not root).
    let rmem_max: u64 = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let expected = if root { 1048576 } else { rmem_max.min(1048576) } * 2;
    assert_eq!(
        s.metric("sluice_listener_receive_buffer_bytes{listener=\"spread\"}"),
        expected
    );
    let senders: Vec<UdpSocket> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for i in 0..250 {
        for (k, udp) in senders.iter().enumerate() {
            udp.send_to(
                format!("<14>1 - h app - - - sender={k} n={i}").as_bytes(),
                to,
            )
            .unwrap();
        }
        if i % 25 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let lines = s.wait_lines("events.ndjson", 4000);
    assert_eq!(lines.len(), 4000);
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"spread\"}"),
        4000
    );
    let mut next = [0u32; 16];
    for line in &lines {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = doc["message"].as_str().unwrap();
        let mut parts = message.split(' ');
        let k: usize = parts
            .next()
            .unwrap()
            .trim_start_matches("sender=")
            .parse()
            .unwrap();
        let n: u32 = parts
            .next()
            .unwrap()
            .trim_start_matches("n=")
            .parse()
            .unwrap();
        assert_eq!(n, next[k], "sender {k} out of order");
        next[k] += 1;
    }
    assert!(s.stop().success());
}

/// A known sequence of good, oversized, garbage and denied inputs on TCP
/// and UDP, and the exact counters it leaves in /metrics.
#[test]
fn metrics_count_good_oversized_garbage_and_denied_inputs_exactly() {
    let extra = r#"
[[listeners]]
name = "t"
protocol = "tcp"
listen = "127.0.0.1:0"
max_frame_bytes = 100
[[listeners]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:0"
max_frame_bytes = 100
[[listeners]]
name = "t_closed"
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["192.0.2.0/24", "2001:db8::/32"]
[[listeners]]
name = "u_closed"
protocol = "udp"
listen = "127.0.0.1:0"
allow = ["192.0.2.7"]
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let good = "<14>1 - h app - - - good\n";
    let oversized = format!("<14>1 - h app - - - {}\n", "x".repeat(200));
    let garbage = "\u{1}\u{2} not syslog at all\n";
    let mut t = TcpStream::connect(s.addr("t")).unwrap();
    for frame in [good, good, &oversized, garbage, good] {
        t.write_all(frame.as_bytes()).unwrap();
    }
    t.flush().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [good, &oversized, garbage, good] {
        udp.send_to(d.trim_end().as_bytes(), s.addr("u")).unwrap();
    }
    for d in [good, good, good] {
        udp.send_to(d.as_bytes(), s.addr("u_closed")).unwrap();
    }
    // Denied at accept: the connection is closed before a byte is read.
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr("t_closed")).unwrap();
        let _ = c.write_all(good.as_bytes());
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read(&mut [0u8; 8]).unwrap_or(0), 0, "closed");
    }
    // TCP: 3 good + garbage; UDP: 2 good + garbage.
    let lines = s.wait_lines("events.ndjson", 7);
    wait_while!(5, || {
        s.metric("sluice_listener_denied_frames_total{listener=\"u_closed\"}") < 3
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(read_lines(&s.path("events.ndjson")).len(), 7, "{lines:?}");

    let m = |name: &str, labels: &str| s.metric(&format!("{name}{{{labels}}}"));
    for l in ["t", "u"] {
        let listener = format!("listener=\"{l}\"");
        assert_eq!(
            m("sluice_listener_frames_total", &listener),
            if l == "t" { 4 } else { 3 },
            "{l}"
        );
        assert_eq!(
            m("sluice_listener_invalid_frames_total", &listener),
            1,
            "{l}"
        );
        assert_eq!(
            m(
                "sluice_listener_skipped_frames_total",
                &format!("{listener},reason=\"oversized\"")
            ),
            1,
            "{l}"
        );
    }
    assert_eq!(
        m(
            "sluice_listener_connections_accepted_total",
            "listener=\"t\""
        ),
        1
    );
    assert_eq!(
        m(
            "sluice_listener_connections_rejected_total",
            "listener=\"t_closed\",reason=\"not_allowed\""
        ),
        2
    );
    assert_eq!(
        m(
            "sluice_listener_connections_accepted_total",
            "listener=\"t_closed\""
        ),
        0
    );
    assert_eq!(
        m("sluice_listener_frames_total", "listener=\"t_closed\""),
        0
    );
    assert_eq!(
        m(
            "sluice_listener_denied_frames_total",
            "listener=\"u_closed\""
        ),
        3
    );
    assert_eq!(
        m("sluice_listener_frames_total", "listener=\"u_closed\""),
        0
    );
    assert_eq!(
        m("sluice_router_matched_events_total", "route=\"events\""),
        7
    );
    assert_eq!(
        m("sluice_queue_pushed_records_total", "route=\"events\""),
        7
    );
    drop(t);
    assert!(s.stop().success());
    assert_eq!(read_lines(&s.path("events.ndjson")).len(), 7);
}

/// A flood of 200 connections beyond max_connections is refused and
/// counted while two established senders keep streaming; the refusal is
/// logged once (rate-limited), as JSON with --log-format json.
#[test]
fn a_connection_flood_is_refused_counted_and_logged_once() {
    let extra = r#"
[[listeners]]
name = "limited"
protocol = "tcp"
listen = "127.0.0.1:0"
max_connections = 2
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), config(extra, EVENTS_ROUTE)).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["--log-format", "json", "run", "-c", "sluice.toml"]);
    let s = Sluice::spawn(cmd, dir);
    let addr = s.addr("limited");
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    wait_while!(5, || {
        s.metric("sluice_listener_connections_open{listener=\"limited\"}") < 2
    });
    for i in 0..200 {
        a.write_all(format!("<14>1 - h app - - - a {i}\n").as_bytes())
            .unwrap();
        b.write_all(format!("<14>1 - h app - - - b {i}\n").as_bytes())
            .unwrap();
        let mut flood = TcpStream::connect(addr).unwrap();
        flood
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(flood.read(&mut [0u8; 1]).unwrap_or(0), 0, "refused");
    }
    let lines = s.wait_lines("events.ndjson", 400);
    assert_eq!(lines.len(), 400);
    assert_eq!(
        s.metric("sluice_listener_connections_rejected_total{listener=\"limited\",reason=\"max_connections\"}"),
        200
    );
    let mut s = s;
    drop((a, b));
    assert!(s.stop().success());
    let log = std::fs::read_to_string(s.path("stderr.log")).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        entries
            .iter()
            .all(|e| e["level"].is_string() && e["timestamp"].is_string())
    );
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e["message"] == "connection refused: max_connections reached")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["listener"], "limited");
}
