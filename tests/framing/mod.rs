//! Issue #20 items 1, 7 and 11 through the real binary: what a TCP listener
//! trusts in a byte stream (embedded headers, octet counts) and how long a
//! connection may hold a frame open.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{EVENTS_ROUTE, Sluice, config, messages, read_lines};

/// The forged line of issue #20 item 1: one nginx event whose query string
/// carries a whole RFC 5424 header.
const FORGED: &str = "<14>1 2025-01-01T00:00:00Z web01 nginx - - - GET /search?q=<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6";

/// Sum of every sample whose name and labels start with `prefix`.
fn metric_sum(s: &Sluice, prefix: &str) -> u64 {
    s.scrape()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Frames lost on `listener` or in the route `events`, all reasons.
fn counted_drops(s: &Sluice, listener: &str) -> u64 {
    metric_sum(
        s,
        &format!("sluice_listener_skipped_frames_total{{listener=\"{listener}\""),
    ) + metric_sum(s, "sluice_queue_dropped_records_total{route=\"events\"")
}

/// Wait up to `secs` for `done`, failing loudly with `what` was awaited.
fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    wait_for(10, "9 events in events.ndjson", || {
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
    wait_for(10, "the 2 undelimited events", || {
        read_lines(&s.path("events.ndjson")).len() >= 2
    });
    // A delimited sender on the same listener: LF first, then the forgery.
    let mut delimited = TcpStream::connect(addr).unwrap();
    let stream = format!("<14>1 - h app - - - lf first\n{FORGED}\n<14>1 - h app - - - lf third\n");
    delimited.write_all(stream.as_bytes()).unwrap();
    wait_for(10, "5 events", || {
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
    wait_for(20, "all frames to be delivered or counted", || {
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

/// `sluice parse --framing` offers the same choice as a listener: the
/// forged line is one message under `lf`, `auto` and `octet`, and only the
/// opt-in cuts it.
#[test]
fn issue20_parse_splits_at_headers_only_when_asked() {
    let input = format!("{FORGED}\n");
    for framing in ["lf", "auto", "octet"] {
        let out = super::sluice_parse(&["--framing", framing], input.as_bytes());
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
    let out = super::sluice_parse(&["--framing", "log4j2_undelimited"], input.as_bytes());
    assert_eq!(out.len(), 2, "{out:?}");
}
