//! Issue #20 items 1, 7 and 11 through the real binary: what a TCP listener
//! trusts in a byte stream (embedded headers, octet counts) and how long a
//! connection may hold a frame open.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{EVENTS_ROUTE, Sluice, config, messages, read_lines, wait_until};

/// The forged line of issue #20 item 1: one nginx event whose query string
/// carries a whole RFC 5424 header.
const FORGED: &str = "<14>1 2025-01-01T00:00:00Z web01 nginx - - - GET /search?q=<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6";

/// Sum of every sample whose name and labels start with `prefix`.
fn metric_sum(s: &Sluice, prefix: &str) -> u64 {
    s.metric_sum(prefix, "")
}

/// Frames lost on `listener` or in the route `events`, all reasons.
fn counted_drops(s: &Sluice, listener: &str) -> u64 {
    metric_sum(
        s,
        &format!("sluice_listener_skipped_frames_total{{listener=\"{listener}\""),
    ) + metric_sum(s, "sluice_queue_dropped_records_total{route=\"events\"")
}

/// Issue #20 item 1: under `lf`, `auto` and `octet` a header inside a
/// message is text: one event with the whole text, and the LF lines after
/// it stay separate events (the connection is not taken for undelimited).
#[test]
fn issue20_forged_header_stays_inside_its_message_under_every_framing() {
    let extra = r#"
[[listeners]]
name = "lf"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "lf"
[[listeners]]
name = "auto"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "auto"
[[listeners]]
name = "octet"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "octet"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let listeners = ["lf", "auto", "octet"];
    for name in listeners {
        let mut conn = TcpStream::connect(s.addr(name)).unwrap();
        let stream = format!(
            "{FORGED}\n<14>1 - h app - - - {name} after one\n<14>1 - h app - - - {name} after two\n"
        );
        conn.write_all(stream.as_bytes()).unwrap();
    }
    let sent = 3 * listeners.len();
    wait_until(10, "9 events in events.ndjson", || {
        read_lines(&s.path("events.ndjson")).len() >= sent
    });
    // Let anything forged that would follow arrive too.
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_lines(&s.path("events.ndjson"));
    eprintln!("forged: sent {sent} frames, {} events", lines.len());
    assert_eq!(lines.len(), sent, "one event per frame sent: {lines:#?}");
    let forged: Vec<&String> = lines.iter().filter(|l| l.contains("dc01")).collect();
    assert_eq!(forged.len(), 3, "one forged-text event per listener");
    for l in forged {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["hostname"], "web01", "{l}");
        assert_eq!(v["appname"], "nginx", "{l}");
        assert_eq!(
            v["message"],
            "GET /search?q=<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6",
            "{l}"
        );
    }
    let mut got = messages(&lines);
    got.sort();
    for name in listeners {
        for n in ["one", "two"] {
            let want = format!("{name} after {n}");
            assert!(got.contains(&want), "{want:?} missing: {got:#?}");
        }
        assert_eq!(
            s.metric(&format!(
                "sluice_listener_undelimited_splits_total{{listener=\"{name}\"}}"
            )),
            0,
            "{name}"
        );
    }
    assert!(s.stop().success());
}

/// The opt-in (`framing = "log4j2_undelimited"`) splits a stream that runs
/// frames together, but not a connection that already delivered a
/// delimited frame: there the header is text again.
#[test]
fn issue20_log4j2_undelimited_splits_only_until_a_delimited_frame() {
    let extra = r#"
[[listeners]]
name = "log4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "log4j2_undelimited"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let addr = s.addr("log4j2");
    // log4j2 newLine=false: split at each header, the last one after a pause.
    let mut undelimited = TcpStream::connect(addr).unwrap();
    undelimited
        .write_all(b"<14>1 - h app - - - run one<14>1 - h app - - - run two")
        .unwrap();
    wait_until(10, "the 2 undelimited events", || {
        read_lines(&s.path("events.ndjson")).len() >= 2
    });
    // A delimited sender on the same listener: LF first, then the forgery.
    let mut delimited = TcpStream::connect(addr).unwrap();
    let stream = format!("<14>1 - h app - - - lf first\n{FORGED}\n<14>1 - h app - - - lf third\n");
    delimited.write_all(stream.as_bytes()).unwrap();
    wait_until(10, "5 events", || {
        read_lines(&s.path("events.ndjson")).len() >= 5
    });
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_lines(&s.path("events.ndjson"));
    let got = messages(&lines);
    eprintln!("log4j2_undelimited: sent 5 frames, {} events", lines.len());
    assert_eq!(
        got,
        [
            "run one",
            "run two",
            "lf first",
            "GET /search?q=<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6",
            "lf third",
        ]
    );
    assert_eq!(
        s.metric("sluice_listener_undelimited_splits_total{listener=\"log4j2\"}"),
        1
    );
    drop((undelimited, delimited));
    assert!(s.stop().success());
}

/// Issue #20 item 7: a count far above `max_frame_bytes` is a framing error
/// for that frame, read as an LF line and counted; the 5,000 frames after
/// it on the same connection are delivered.
#[test]
fn issue20_huge_octet_count_falls_back_to_lf_and_what_follows_is_delivered() {
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let good = 5_000;
    let mut stream = b"999999999 <13>oops\n".to_vec();
    for i in 0..good {
        let frame = format!("<14>1 - h app - - - good {i}");
        stream.extend_from_slice(format!("{} {frame}", frame.len()).as_bytes());
    }
    let sent = good + 1;
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.write_all(&stream).unwrap();
    conn.flush().unwrap();
    drop(conn);
    let fallbacks =
        "sluice_listener_framing_fallbacks_total{listener=\"tcp\",reason=\"count_over_max\"}";
    wait_until(20, "all frames to be delivered or counted", || {
        read_lines(&s.path("events.ndjson")).len() as u64 + counted_drops(&s, "tcp") >= sent as u64
            || s.metric(
                "sluice_listener_skipped_frames_total{listener=\"tcp\",reason=\"oversized\"}",
            ) > 0
    });
    // The connection closed; anything still in flight has landed by now.
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_lines(&s.path("events.ndjson"));
    let delivered = lines.len() as u64;
    let drops = counted_drops(&s, "tcp");
    let fell_back = s.metric(fallbacks);
    eprintln!(
        "huge count: sent {sent}, delivered {delivered}, counted drops {drops}, count_over_max fallbacks {fell_back}"
    );
    assert_eq!(
        sent as u64,
        delivered + drops,
        "sent = delivered + counted drops"
    );
    assert_eq!(drops, 0);
    assert_eq!(fell_back, 1);
    let got = messages(&lines);
    assert_eq!(got[0], "999999999 <13>oops");
    assert_eq!(got[1], "good 0");
    assert_eq!(got[good], format!("good {}", good - 1));
    assert!(s.stop().success());
}

/// Issue #20 item 11: a connection that trickles one byte at a time is
/// closed once its frame has been open `frame_timeout_secs`, counted, and
/// what it sent is kept as a frame; a sender beside it keeps delivering.
#[test]
fn issue20_trickling_connection_is_closed_at_frame_timeout() {
    let extra = r#"
[[listeners]]
name = "guarded"
protocol = "tcp"
listen = "127.0.0.1:0"
frame_timeout_secs = 1
idle_timeout_secs = 60
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let addr = s.addr("guarded");
    let mut good = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    let trickle = b"<14>1 - h app - - - trickle that never ends";
    let (mut trickled, mut good_sent) = (0, 0);
    let closed = "sluice_listener_connections_closed_abnormally_total{listener=\"guarded\",reason=\"frame_timeout\"}";
    // 4 s in 100 ms ticks: a good frame every tick, a slow byte every third.
    for tick in 0..40 {
        good.write_all(format!("<14>1 - h app - - - good {tick}\n").as_bytes())
            .unwrap();
        good_sent += 1;
        if tick % 3 == 0 && slow.write_all(&trickle[trickled..=trickled]).is_ok() {
            trickled += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("trickle: {trickled} bytes written in 4 s, {good_sent} good frames");
    // Nothing else closes it (idle_timeout_secs = 60): waited for, as a
    // sluice short of CPU may close it later than the 4 s of the ticks.
    wait_until(10, "the frame_timeout close counted", || {
        s.metric(closed) > 0
    });
    assert_eq!(
        s.metric(closed),
        1,
        "the trickling connection was closed for frame_timeout"
    );
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    match slow.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("trickling connection still open: {other:?}"),
    }
    // The good connection is still served after the slow one was closed.
    good.write_all(b"<14>1 - h app - - - good last\n").unwrap();
    good_sent += 1;
    let sent = good_sent + 1;
    wait_until(10, "every good frame and the trickled one", || {
        read_lines(&s.path("events.ndjson")).len() as u64 + counted_drops(&s, "guarded") >= sent
    });
    let lines = read_lines(&s.path("events.ndjson"));
    let drops = counted_drops(&s, "guarded");
    eprintln!(
        "trickle: sent {sent} frames (1 unfinished), delivered {}, counted drops {drops}, frame_timeout closes {}",
        lines.len(),
        s.metric(closed)
    );
    assert_eq!(
        sent,
        lines.len() as u64 + drops,
        "sent = delivered + counted drops"
    );
    let got = messages(&lines);
    for i in 0..40 {
        assert!(got.contains(&format!("good {i}")), "good {i} missing");
    }
    assert!(got.contains(&"good last".to_owned()));
    assert_eq!(
        s.metric("sluice_listener_connections_open{listener=\"guarded\"}"),
        1
    );
    drop(good);
    assert!(s.stop().success());
}

/// Issue #20 item 11: `max_connections_per_peer` refuses a peer's extra
/// connection (closed at once, counted) while other slots stay free.
#[test]
fn issue20_connections_over_the_per_peer_limit_are_refused_and_counted() {
    let extra = r#"
[[listeners]]
name = "per_peer"
protocol = "tcp"
listen = "127.0.0.1:0"
max_connections = 16
max_connections_per_peer = 2
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let addr = s.addr("per_peer");
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    first.write_all(b"<14>1 - h app - - - first\n").unwrap();
    second.write_all(b"<14>1 - h app - - - second\n").unwrap();
    wait_until(10, "2 events", || {
        read_lines(&s.path("events.ndjson")).len() >= 2
    });
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(third.read(&mut byte), Ok(0)),
        "the peer's third connection is closed (EOF, not a read timeout)"
    );
    let refused = "sluice_listener_connections_rejected_total{listener=\"per_peer\",reason=\"max_connections_per_peer\"}";
    assert_eq!(s.metric(refused), 1);
    // A freed slot can be taken again.
    drop(first);
    wait_until(10, "the first connection to close", || {
        s.metric("sluice_listener_connections_open{listener=\"per_peer\"}") == 1
    });
    let mut fourth = TcpStream::connect(addr).unwrap();
    fourth.write_all(b"<14>1 - h app - - - fourth\n").unwrap();
    wait_until(10, "3 events", || {
        read_lines(&s.path("events.ndjson")).len() >= 3
    });
    let lines = read_lines(&s.path("events.ndjson"));
    eprintln!(
        "per peer: 4 connections, {} refused, {} events",
        s.metric(refused),
        lines.len()
    );
    let got = messages(&lines);
    // The first two connections race each other; the fourth comes last.
    let mut first_two = got[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["first", "second"]);
    assert_eq!(got[2..], ["fourth"]);
    assert_eq!(s.metric(refused), 1);
    drop((second, third, fourth));
    assert!(s.stop().success());
}

/// `sluice parse --framing` offers the same choice as a listener: the
/// forged line is one message under `lf`, `auto` and `octet`, and only the
/// opt-in cuts it, and only in a stream with no LF in hand before the next
/// header (a line whose LF is in hand stays whole).
#[test]
fn issue20_parse_splits_at_headers_only_when_asked() {
    let input = format!("{FORGED}\n");
    for framing in ["lf", "auto", "octet"] {
        let out = crate::util::sluice_parse(&["--framing", framing], input.as_bytes());
        assert_eq!(out.len(), 1, "{framing}: {out:?}");
        assert_eq!(out[0]["hostname"], "web01");
        assert!(
            out[0]["message"]
                .as_str()
                .unwrap()
                .ends_with("Accepted password for root from 6.6.6.6"),
            "{framing}: {out:?}"
        );
    }
    let out = crate::util::sluice_parse(&["--framing", "log4j2_undelimited"], input.as_bytes());
    assert_eq!(out.len(), 1, "its LF in hand: {out:?}");
    let undelimited = FORGED.as_bytes();
    let out = crate::util::sluice_parse(&["--framing", "log4j2_undelimited"], undelimited);
    assert_eq!(out.len(), 2, "{out:?}");
    // With --listener and no --framing, as that listener cuts its streams.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    let extra = r#"
[[listeners]]
name = "log4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "log4j2_undelimited"
"#;
    std::fs::write(&cfg, config(extra, EVENTS_ROUTE)).unwrap();
    let cfg = cfg.to_str().unwrap();
    for (listener, events) in [("tcp", 1), ("log4j2", 2)] {
        let out = crate::util::sluice_parse(&["-c", cfg, "--listener", listener], undelimited);
        assert_eq!(out.len(), events, "--listener {listener}: {out:?}");
    }
    let out = crate::util::sluice_parse(
        &["-c", cfg, "--listener", "log4j2", "--framing", "lf"],
        undelimited,
    );
    assert_eq!(out.len(), 1, "--framing wins over the listener's: {out:?}");
}

/// TLS listeners share the connection loop: a client trickling plaintext
/// a byte at a time inside TLS is closed at `frame_timeout_secs` and
/// counted, while a TLS client beside it keeps delivering.
#[test]
fn issue20_trickling_tls_connection_is_closed_at_frame_timeout() {
    use crate::util::{ca, leaf};
    let dir = tempfile::tempdir().unwrap();
    let authority = ca("framing test CA");
    let server = leaf(&["localhost"], &authority);
    let path = |f: &str| dir.path().join(f).display().to_string();
    std::fs::write(path("server.pem"), server.0.pem()).unwrap();
    std::fs::write(path("server.key"), server.1.serialize_pem()).unwrap();
    let extra = format!(
        r#"
[[listeners]]
name = "tls"
protocol = "tls"
listen = "127.0.0.1:0"
frame_timeout_secs = 1
idle_timeout_secs = 60
[listeners.tls]
cert_file = "{}"
key_file = "{}"
"#,
        path("server.pem"),
        path("server.key")
    );
    let mut s = Sluice::start(&config(&extra, EVENTS_ROUTE));
    let addr = s.addr("tls");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(authority.0.der().clone()).unwrap();
    let client = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let connect = || {
        let conn = rustls::ClientConnection::new(
            client.clone(),
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    };
    let (mut good, mut slow) = (connect(), connect());
    let trickle = b"<14>1 - h app - - - trickle that never ends";
    let (mut trickled, mut good_sent) = (0u64, 0u64);
    // 3 s in 100 ms ticks: a good frame every tick, a slow byte every third.
    for tick in 0..30 {
        good.write_all(format!("<14>1 - h app - - - good {tick}\n").as_bytes())
            .unwrap();
        good.flush().unwrap();
        good_sent += 1;
        let t = trickled as usize;
        if tick % 3 == 0 && slow.write_all(&trickle[t..=t]).is_ok() && slow.flush().is_ok() {
            trickled += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed = "sluice_listener_connections_closed_abnormally_total{listener=\"tls\",reason=\"frame_timeout\"}";
    // Nothing else closes it (idle_timeout_secs = 60): waited for, as a
    // sluice short of CPU may close it later than the 3 s of the ticks.
    wait_until(10, "the frame_timeout close counted", || {
        s.metric(closed) > 0
    });
    assert_eq!(
        s.metric(closed),
        1,
        "the trickling TLS connection was closed for frame_timeout"
    );
    let mut byte = [0u8; 1];
    let r = slow.read(&mut byte);
    assert!(
        matches!(&r, Ok(0))
            || matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut),
        "trickling TLS connection still open: {r:?}"
    );
    let sent = good_sent + 1;
    wait_until(10, "every good TLS frame and the trickled one", || {
        read_lines(&s.path("events.ndjson")).len() as u64 + counted_drops(&s, "tls") >= sent
    });
    let lines = read_lines(&s.path("events.ndjson"));
    let drops = counted_drops(&s, "tls");
    eprintln!(
        "tls trickle: {trickled} bytes trickled; sent {sent} frames (1 unfinished), delivered {}, counted drops {drops}",
        lines.len()
    );
    assert_eq!(
        sent,
        lines.len() as u64 + drops,
        "sent = delivered + counted drops"
    );
    let got = messages(&lines);
    for i in 0..30 {
        assert!(got.contains(&format!("good {i}")), "good {i} missing");
    }
    drop(good);
    assert!(s.stop().success());
}

/// Bytes that carry no frame (blank lines between frames) do not keep a
/// connection alive: `idle_timeout_secs` runs from the last frame, so a
/// slowloris sending "\n" every 200 ms is closed as idle and counted.
#[test]
fn issue20_blank_lines_do_not_keep_a_connection_open() {
    let extra = r#"
[[listeners]]
name = "idle"
protocol = "tcp"
listen = "127.0.0.1:0"
idle_timeout_secs = 1
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let mut conn = TcpStream::connect(s.addr("idle")).unwrap();
    conn.write_all(b"<14>1 - h app - - - the only frame\n")
        .unwrap();
    let idle = "sluice_listener_connections_closed_abnormally_total{listener=\"idle\",reason=\"idle_timeout\"}";
    // A blank line every 200 ms until the close is counted (at least 3 s,
    // three times the idle timeout; at most 10 s, however late sluice
    // gets to it): the blank lines go on while it is closed.
    let started = std::time::Instant::now();
    let mut blanks = 0;
    while started.elapsed() < Duration::from_secs(3) || s.metric(idle) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited 10 s for the connection sending blank lines to be closed as idle"
        );
        if conn.write_all(b"\n").is_ok() {
            blanks += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "blank lines: {blanks} written in {:.1} s, idle closes {}",
        started.elapsed().as_secs_f64(),
        s.metric(idle)
    );
    assert_eq!(
        s.metric(idle),
        1,
        "the connection sending only blank lines was closed as idle"
    );
    let lines = s.wait_lines("events.ndjson", 1);
    assert_eq!(messages(&lines), ["the only frame"]);
    assert!(s.stop().success());
}
