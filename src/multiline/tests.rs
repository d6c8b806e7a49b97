use super::*;
use crate::config::DEFAULT_WINDOW;
use crate::decode::{DecodeOptions, decode};
use bytes::Bytes;
use std::time::Duration;

fn ev(peer: u16, frame: &str) -> Event {
    let peer: SocketAddr = format!("127.0.0.1:{peer}").parse().unwrap();
    decode(
        Bytes::copy_from_slice(frame.as_bytes()),
        Some(peer),
        0,
        &DecodeOptions::default(),
    )
}

fn joiner() -> Joiner {
    Joiner::new(MultilineConfig::default())
}

#[test]
fn stack_trace_frames_become_one_event() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    for f in [
        "<187>ERROR [main] Svc - Order failed\n",
        "<187>java.lang.IllegalStateException: boom",
        "<187>    at L1.main(L1.java:32)",
        "<187>Caused by: java.io.IOException: disk gone",
        "<187>    ... 2 more",
    ] {
        j.push(ev(1, f), now, &mut out);
    }
    assert!(out.is_empty(), "nothing is emitted inside the window");
    j.expire(now + DEFAULT_WINDOW, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "ERROR [main] Svc - Order failed\njava.lang.IllegalStateException: boom\n    at L1.main(L1.java:32)\nCaused by: java.io.IOException: disk gone\n    ... 2 more"
    );
    let stats = j.take_stats();
    assert_eq!(stats.joined_frames, 4);
    assert_eq!(stats.flushes[Flush::Window as usize], 1);
}

/// A joined event holds the acks of all its frames: none is reported
/// done while the event (or a record made of it) lives.
#[test]
fn a_joined_event_holds_every_frames_ack() {
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<i64>>);
    impl crate::record::AckTarget for Seen {
        fn done(&self, _: u64, offset: i64) {
            self.0.lock().unwrap().push(offset);
        }
    }
    let seen = Arc::new(Seen::default());
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    for (offset, f) in [
        "<187>ERROR [main] Svc - Order failed",
        "<187>java.lang.IllegalStateException: boom",
        "<187>    at L1.main(L1.java:32)",
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = ev(1, f);
        e.ack = Some(crate::record::Ack::new(seen.clone(), 0, offset as i64));
        j.push(e, now, &mut out);
    }
    j.expire(now + DEFAULT_WINDOW, &mut out);
    assert_eq!(out.len(), 1);
    assert!(seen.0.lock().unwrap().is_empty(), "the joined event lives");
    out.clear();
    let mut done = seen.0.lock().unwrap().clone();
    done.sort();
    assert_eq!(done, vec![0, 1, 2]);
}

#[test]
fn split_parts_are_joined_without_their_dots() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    // log4j 1.2's frames, read as a `sender = "log4j"` listener reads
    // them (a generic one takes the word after the hostname for a TAG).
    let ev = |peer: u16, frame: &str| {
        let peer: SocketAddr = format!("127.0.0.1:{peer}").parse().unwrap();
        let opts = DecodeOptions {
            sender: crate::config::Sender::Log4j,
            ..DecodeOptions::default()
        };
        decode(
            Bytes::copy_from_slice(frame.as_bytes()),
            Some(peer),
            0,
            &opts,
        )
    };
    j.push(
        ev(1, "<190>Nov 24 11:34:50 vm first half..."),
        now,
        &mut out,
    );
    j.push(ev(1, "<190>Nov 24 11:34:50 vm ...second..."), now, &mut out);
    j.push(ev(1, "<190>Nov 24 11:34:50 vm ...end"), now, &mut out);
    j.close(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message(), "first halfsecondend");
    assert_eq!(out[0].hostname(), Some("vm"));
}

#[test]
fn a_new_event_emits_the_pending_one_at_once() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    j.push(ev(1, "<190>first"), now, &mut out);
    j.push(ev(1, "<190>second"), now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message(), "first");
    assert_eq!(j.take_stats().flushes[Flush::NextEvent as usize], 1);
}

#[test]
fn senders_are_kept_apart_by_peer_and_a_peers_order_is_kept() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    j.push(ev(1, "<187>error one"), now, &mut out);
    j.push(ev(2, "<187>error two"), now, &mut out);
    // Peer 1's error leaves before its info: a trace line after the
    // info cannot join the error any more (that would reorder them).
    j.push(ev(1, "<190>info one"), now, &mut out);
    j.push(ev(2, "<187>    at two"), now, &mut out);
    j.push(ev(1, "<187>    at one"), now, &mut out);
    j.close(&mut out);
    let of_peer = |port: u16| -> Vec<&str> {
        out.iter()
            .filter(|e| e.peer.map(|p| p.port()) == Some(port))
            .map(|e| e.message())
            .collect()
    };
    assert_eq!(of_peer(1), ["error one", "info one", "    at one"]);
    assert_eq!(of_peer(2), ["error two\n    at two"]);
}

#[test]
fn window_expiry_is_per_event() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    j.push(ev(1, "<187>error"), now, &mut out);
    j.expire(now + DEFAULT_WINDOW - Duration::from_millis(1), &mut out);
    assert!(out.is_empty());
    // A continuation after the window is an event of its own.
    j.expire(now + DEFAULT_WINDOW, &mut out);
    j.push(ev(1, "<187>    at late"), now + DEFAULT_WINDOW, &mut out);
    j.close(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].message(), "    at late");
}

#[test]
fn a_continuation_extends_the_window() {
    let mut j = joiner();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut out = Vec::new();
    j.push(ev(1, "<187>error"), t0, &mut out);
    j.push(ev(1, "<187>    at one"), t0 + ms(40), &mut out);
    j.expire(t0 + ms(60), &mut out);
    assert!(out.is_empty(), "the window runs from the last frame");
    assert_eq!(j.next_deadline(), Some(t0 + ms(90)));
    j.expire(t0 + ms(90), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message(), "error\n    at one");
    assert_eq!(j.next_deadline(), None);
}

#[test]
fn limits_split_rather_than_drop() {
    let mut j = Joiner::new(MultilineConfig {
        max_lines: 2,
        ..MultilineConfig::default()
    });
    let now = Instant::now();
    let mut out = Vec::new();
    for f in ["<187>e", "<187>    at 1", "<187>    at 2", "<187>    at 3"] {
        j.push(ev(1, f), now, &mut out);
    }
    j.close(&mut out);
    let messages: Vec<&str> = out.iter().map(|e| e.message()).collect();
    assert_eq!(messages, ["e\n    at 1", "    at 2\n    at 3"]);
    assert_eq!(j.take_stats().flushes[Flush::LineLimit as usize], 1);

    let mut j = Joiner::new(MultilineConfig {
        max_bytes: 10,
        ..MultilineConfig::default()
    });
    let mut out = Vec::new();
    for f in ["<187>error", "<187>    at 1"] {
        j.push(ev(1, f), now, &mut out);
    }
    j.close(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(j.take_stats().flushes[Flush::ByteLimit as usize], 1);
}

#[test]
fn pending_senders_are_bounded() {
    let mut j = Joiner::new(MultilineConfig {
        max_pending: 2,
        ..MultilineConfig::default()
    });
    let now = Instant::now();
    let mut out = Vec::new();
    for peer in 1..=3 {
        j.push(ev(peer, "<14>hello"), now, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peer.map(|p| p.port()), Some(1));
}

#[test]
fn bare_lines_join_the_peers_newest_event() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    j.push(
        ev(
            1,
            "<163>1 2026-11-24T11:34:37.138Z vm orders 1 - - Order failed",
        ),
        now,
        &mut out,
    );
    j.push(
        ev(1, "java.lang.IllegalStateException: boom"),
        now,
        &mut out,
    );
    j.push(
        ev(1, "\tat Log4j2Demo.main(Log4j2Demo.java:21)"),
        now,
        &mut out,
    );
    j.close(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "Order failed\njava.lang.IllegalStateException: boom\n\tat Log4j2Demo.main(Log4j2Demo.java:21)"
    );
    assert_eq!(out[0].appname(), Some("orders"));
}

/// A line without PRI that opens with a time (a log line quoted in a
/// message: the decoder reads its header, `pri_missing`) is still a bare
/// continuation: joined whole, as every line without PRI; a `<13>` line
/// does not continue it (its PRI was assumed, not sent).
#[test]
fn bare_lines_opening_with_a_time_join_whole() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    for f in [
        "<163>1 2026-11-24T11:34:37.138Z vm orders 1 - - Order failed",
        "2026-11-24T11:34:37Z vm other: quoted",
        "Nov 24 11:34:37 vm other: quoted too",
    ] {
        j.push(ev(1, f), now, &mut out);
    }
    j.close(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "Order failed\n2026-11-24T11:34:37Z vm other: quoted\nNov 24 11:34:37 vm other: quoted too"
    );
    // Alone, it is an event of its own; a framed `<13>` stack-trace line
    // after it is not its continuation.
    out.clear();
    for f in ["Nov 24 11:34:37 vm app: alone", "<13>    at A.b(A.java:1)"] {
        j.push(ev(2, f), now, &mut out);
    }
    j.close(&mut out);
    let messages: Vec<&str> = out.iter().map(Event::message).collect();
    assert_eq!(messages, ["alone", "    at A.b(A.java:1)"]);
}

/// A line that opens with spaces and then a PRI-like `<13>` (a quoted
/// frame in an indented message line; the decoder reads it with
/// `space_before_pri`) is still a line without PRI to the joiner, as it
/// was when the decoder left it undecoded: joined whole.
#[test]
fn indented_lines_with_a_pri_after_the_spaces_join_whole() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    for f in [
        "<163>1 2026-11-24T11:34:37.138Z vm orders 1 - - Order failed",
        "    <13>Nov 24 11:34:37 vm other: quoted",
    ] {
        j.push(ev(1, f), now, &mut out);
    }
    j.close(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "Order failed\n    <13>Nov 24 11:34:37 vm other: quoted"
    );
}

/// Issue #26 item 4: INFO one, WARN two, INFO three, ERROR four, INFO
/// five from one peer, 5 ms apart (a paused clock), came out one, three,
/// two, four, five: a held event of one PRI outlived later events of
/// another. One peer's events leave in arrival order.
#[tokio::test(start_paused = true)]
async fn one_peers_events_leave_in_arrival_order_whatever_their_pri() {
    let mut j = joiner();
    let mut out = Vec::new();
    for (pri, text) in [
        (14, "INFO one"),
        (12, "WARN two"),
        (14, "INFO three"),
        (11, "ERROR four"),
        (14, "INFO five"),
    ] {
        j.push(ev(1, &format!("<{pri}>{text}")), Instant::now(), &mut out);
        j.expire(Instant::now(), &mut out);
        tokio::time::advance(Duration::from_millis(5)).await;
    }
    tokio::time::advance(DEFAULT_WINDOW).await;
    j.expire(Instant::now(), &mut out);
    let messages: Vec<&str> = out.iter().map(|e| e.message()).collect();
    assert_eq!(
        messages,
        [
            "INFO one",
            "WARN two",
            "INFO three",
            "ERROR four",
            "INFO five"
        ]
    );
}

/// A thousand senders pending at once (a UDP listener of log4j
/// services): each expires at its own deadline, in order, and a
/// continuation that restarted one window keeps that event back.
#[test]
fn many_senders_expire_each_at_its_own_deadline() {
    let mut j = joiner();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut out = Vec::new();
    // Peers 1..=99 start at 0 ms, 100..=199 at 1 ms, … 1000 at 10 ms.
    for peer in 1..=1000u16 {
        let at = t0 + ms(u64::from(peer) / 100);
        j.push(ev(peer, &format!("<187>error {peer}")), at, &mut out);
    }
    // Peer 1's window restarts at 10 ms.
    j.push(ev(1, "<187>    at one"), t0 + ms(10), &mut out);
    assert!(out.is_empty());
    assert_eq!(j.next_deadline(), Some(t0 + DEFAULT_WINDOW));
    let port = |e: &Event| e.peer.map_or(0, |p| p.port());
    j.expire(t0 + DEFAULT_WINDOW + ms(2), &mut out);
    let ports: Vec<u16> = out.iter().map(port).collect();
    assert_eq!(ports, (2..=299).collect::<Vec<u16>>());
    out.clear();
    j.expire(t0 + DEFAULT_WINDOW + ms(7), &mut out);
    let ports: Vec<u16> = out.iter().map(port).collect();
    assert_eq!(ports, (300..=799).collect::<Vec<u16>>());
    out.clear();
    j.close(&mut out);
    assert_eq!(out.len(), 202, "peers 800..=1000 and peer 1");
    assert_eq!(port(&out[201]), 1, "peer 1's window passes last");
    assert_eq!(out[201].message(), "error 1\n    at one");
    assert!(j.is_empty() && j.next_deadline().is_none());
    let stats = j.take_stats();
    assert_eq!(stats.flushes[Flush::Window as usize], 298 + 500);
    assert_eq!(stats.flushes[Flush::Close as usize], 202);
}

/// The store finds every pending peer whether it scans or indexes, as
/// it grows past [`SCANNED`] and shrinks back.
#[test]
fn the_store_finds_each_peer_scanned_or_indexed() {
    let mut store = Store::default();
    let peer = |n: u16| (0, Some(SocketAddr::from(([127, 0, 0, 1], n))));
    for n in 1..=40u16 {
        let event = ev(n, "<14>x");
        store.insert(Pending {
            peer: peer(n),
            pri: event.pri(),
            event,
            joined: None,
            lines: 1,
            stamp: u64::from(n),
        });
        assert_eq!(store.index.is_empty(), n <= SCANNED as u16);
    }
    let mut left: Vec<u16> = (1..=40).collect();
    for n in [
        1, 40, 7, 20, 21, 2, 39, 3, 38, 4, 37, 5, 36, 6, 35, 8, 34, 9, 33, 10, 32, 11, 31, 12, 30,
        13, 29, 14, 28, 15, 27,
    ] {
        assert_eq!(store.remove(peer(n)).map(|p| p.stamp), Some(u64::from(n)));
        left.retain(|&m| m != n);
        assert!(store.remove(peer(n)).is_none());
        for &m in &left {
            assert_eq!(
                store.get(peer(m)).map(|p| p.stamp),
                Some(u64::from(m)),
                "{m}"
            );
        }
    }
    assert_eq!(store.len(), 9);
    assert!(!store.index.is_empty(), "indexed until it shrinks to 8");
    store.remove(peer(16));
    assert!(store.index.is_empty());
    assert!(store.get(peer(26)).is_some() && store.get(peer(16)).is_none());
}

/// Each continuation starts a new deadline entry; the ones it made
/// stale are dropped, so a long trace does not grow the queue.
#[test]
fn the_deadline_queue_stays_bounded_by_what_is_pending() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    j.push(ev(1, "<187>error"), now, &mut out);
    j.push(ev(2, "<187>error"), now, &mut out);
    for i in 0..900 {
        j.push(ev(1 + i % 2, &format!("<187>    at {i}")), now, &mut out);
        assert!(j.due.len() <= 2 * j.pending.len() + 65, "{}", j.due.len());
    }
    for i in 0..900 {
        // One event after another from one sender: emitted at once.
        j.push(ev(3, &format!("<190>info {i}")), now, &mut out);
        assert!(j.due.len() <= 2 * j.pending.len() + 65, "{}", j.due.len());
    }
    assert_eq!(out.len(), 899);
    j.close(&mut out);
    assert_eq!(out.len(), 902);
    assert_eq!(out[900].message().lines().count(), 451);
}

#[test]
fn exception_headers_are_recognised_by_shape() {
    assert!(is_exception_header("java.lang.IllegalStateException: boom"));
    assert!(is_exception_header("com.example.Outer$InnerError"));
    assert!(!is_exception_header("com.example.Svc - started"));
    assert!(!is_exception_header("Exception: boom"));
    assert!(!is_exception_header("status ok"));
    // An exception header with nothing pending is just an event.
    let mut j = joiner();
    let mut out = Vec::new();
    j.push(
        ev(1, "<187>java.lang.IllegalStateException: boom"),
        Instant::now(),
        &mut out,
    );
    j.close(&mut out);
    assert_eq!(out[0].message(), "java.lang.IllegalStateException: boom");
}

/// Frames join only within one stream (a Kafka record's topic and
/// partition): plain Kafka records, all without a peer, joined across
/// partitions when the peer alone was the key.
#[test]
fn streams_do_not_join_each_other() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    let plain = |frame: &str| {
        decode(
            Bytes::copy_from_slice(frame.as_bytes()),
            None,
            0,
            &DecodeOptions::default(),
        )
    };
    j.push_on(
        1,
        plain("<187>error java.lang.IllegalStateException: boom"),
        now,
        &mut out,
    );
    j.push_on(
        2,
        plain("\tat com.tenantB.Secret.run(Secret.java:1)"),
        now,
        &mut out,
    );
    j.push_on(
        1,
        plain("\tat com.tenantA.Own.run(Own.java:2)"),
        now,
        &mut out,
    );
    j.close(&mut out);
    let mut messages: Vec<&str> = out.iter().map(Event::message).collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        [
            "\tat com.tenantB.Secret.run(Secret.java:1)",
            "error java.lang.IllegalStateException: boom\n\tat com.tenantA.Own.run(Own.java:2)",
        ]
    );
}

/// An empty frame (an empty datagram, an octet-counted `0 `, a Kafka
/// record with an empty value) continues nothing: it is an event of its
/// own, after the peer's pending one, never a line end appended to it.
#[test]
fn an_empty_frame_is_not_a_continuation() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    j.push(ev(1, "<187>error"), now, &mut out);
    j.push(ev(1, ""), now, &mut out);
    j.close(&mut out);
    let messages: Vec<&str> = out.iter().map(Event::message).collect();
    assert_eq!(messages, ["error", ""]);
}

/// RFC 5424 frames whose MSG opens with a BOM (§6.4: the message keeps
/// it): a stack-trace line, an exception header and a `...` split part
/// after the BOM still continue the event, joined without their BOMs (the
/// joined message keeps the first frame's only, at its start).
#[test]
fn continuations_after_a_bom_are_joined() {
    let mut j = joiner();
    let now = Instant::now();
    let mut out = Vec::new();
    for f in [
        "<11>1 - h app - - - \u{feff}Order failed",
        "<11>1 - h app - - - \u{feff}java.lang.IllegalStateException: boom",
        "<11>1 - h app - - - \u{feff}\tat A.b(A.java:1)",
        "<11>1 - h app - - - \u{feff}Caused by: x...",
        "<11>1 - h app - - - \u{feff}...rest",
    ] {
        j.push(ev(1, f), now, &mut out);
    }
    j.expire(now + DEFAULT_WINDOW, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "\u{feff}Order failed\njava.lang.IllegalStateException: boom\n\tat A.b(A.java:1)\nCaused by: xrest"
    );
}
