//! Events → events: joins what a sender split over several frames back into
//! one event.
//!
//! log4j 1.2's `SyslogAppender` sends a logged error as one datagram for the
//! message and one per stack-trace line, with the same PRI (and header);
//! a message longer than about 1 KiB is cut into parts that end and start
//! with `...`. A log4j2 message with real newlines sent over TCP with
//! `newLine=true` arrives as several lines, the later ones without a PRI.
//! The joiner keeps the latest event of each peer for a short window and
//! appends to it what continues it (a continuation with a PRI must carry the
//! same PRI):
//!
//! - a stack-trace line: `    at `, `    ... N more`, `    Suppressed: `,
//!   any line starting with four spaces or a tab, `Caused by: `, and an
//!   exception header (`java.lang.IllegalStateException: boom`) — joined with
//!   a newline;
//! - a split part (`...text`) after a part that ends with `...` — joined
//!   without the dots;
//! - a frame without a PRI (a bare continuation line on a stream) — joined
//!   to the newest pending event of the same peer.
//!
//! A pending event is emitted when the window passes without a continuation,
//! at once when the next event of the same peer arrives that does not
//! continue it (whatever its PRI: one peer's events leave in the order they
//! arrived; RFC 3164 times are whole seconds, so nothing downstream could
//! restore it), when its line or byte limit would be exceeded, when more than
//! `max_pending` senders are pending (oldest first), and on shutdown. Every
//! reason is counted. Joining never drops a frame: a continuation that does
//! not fit becomes an event of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use crate::event::{Event, Text};
pub(crate) use crate::telemetry::Flush;

pub(crate) use crate::config::MultilineConfig;

/// How a frame relates to the event before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continuation {
    /// Not a continuation.
    No,
    /// A stack-trace line: joined with a newline.
    Line,
    /// An exception header line (`a.b.SomeException: text`): a continuation
    /// only right after an event of the same sender.
    ExceptionHeader,
    /// `...text`, the rest of a split message: joined without the dots.
    SplitPart,
    /// A frame without a PRI: joined with a newline to the sender's newest event.
    Bare,
}

fn classify(event: &Event) -> Continuation {
    if event.facility.is_none() {
        return Continuation::Bare;
    }
    let m = event.message();
    if m.starts_with("...") {
        Continuation::SplitPart
    } else if m.starts_with("    ") || m.starts_with('\t') || m.starts_with("Caused by: ") {
        Continuation::Line
    } else if is_exception_header(m) {
        Continuation::ExceptionHeader
    } else {
        Continuation::No
    }
}

/// `java.lang.IllegalStateException`, optionally followed by `: message`:
/// a dotted Java class name whose last part ends in Exception, Error or
/// Throwable.
fn is_exception_header(m: &str) -> bool {
    let name = m.split_once(": ").map_or(m, |(name, _)| name);
    let Some((package, class)) = name.rsplit_once('.') else {
        return false;
    };
    let java_ident = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    !package.is_empty()
        && package.split('.').all(java_ident)
        && java_ident(class)
        && (class.ends_with("Exception")
            || class.ends_with("Error")
            || class.ends_with("Throwable"))
}

type Key = (Option<SocketAddr>, Option<u8>);

struct Pending {
    key: Key,
    event: Event,
    /// The joined message, once a continuation was appended.
    joined: Option<String>,
    lines: usize,
    deadline: Instant,
    /// Sequence number of the last frame, to find a peer's newest event.
    last_seq: u64,
}

impl Pending {
    fn message(&self) -> &str {
        self.joined
            .as_deref()
            .unwrap_or_else(|| self.event.message())
    }

    fn into_event(self) -> Event {
        let mut event = self.event;
        if let Some(joined) = self.joined {
            if let Text::Span(span) = event.message {
                event.frame_message = Some(span);
            }
            event.message = Text::Owned(Arc::from(joined));
        }
        event
    }
}

/// Counts of what the joiner did, for the listener's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JoinStats {
    /// Frames appended to an earlier event.
    pub joined_frames: u64,
    /// Events emitted, by [`Flush`] reason (index = position in [`Flush::ALL`]).
    pub flushes: [u64; 6],
}

/// The multi-line joiner of one listener (UDP) or connection (TCP).
pub struct Joiner {
    config: MultilineConfig,
    /// Pending events, oldest first. Small: bounded by `max_pending`.
    pending: Vec<Pending>,
    /// No pending event is due before this (a lower bound: extending an
    /// event's window does not move it). `None` when nothing is pending.
    earliest: Option<Instant>,
    seq: u64,
    stats: JoinStats,
}

impl Joiner {
    pub fn new(config: MultilineConfig) -> Self {
        Joiner {
            config,
            pending: Vec::new(),
            earliest: None,
            seq: 0,
            stats: JoinStats::default(),
        }
    }

    /// Counters since the last call, then reset.
    pub fn take_stats(&mut self) -> JoinStats {
        std::mem::take(&mut self.stats)
    }

    /// When the earliest pending event may be due (never later than it is).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn emit(&mut self, index: usize, why: Flush, out: &mut Vec<Event>) {
        let p = self.pending.remove(index);
        self.stats.flushes[why as usize] += 1;
        out.push(p.into_event());
    }

    /// Take one decoded event; completed events are appended to `out`.
    pub fn push(&mut self, mut event: Event, now: Instant, out: &mut Vec<Event>) {
        self.seq += 1;
        let key: Key = (event.peer, event.pri());
        let kind = classify(&event);
        let target = match kind {
            Continuation::No => None,
            Continuation::Bare => self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, p)| p.key.0 == key.0)
                .max_by_key(|(_, p)| p.last_seq)
                .map(|(i, _)| i),
            Continuation::Line | Continuation::ExceptionHeader => {
                self.pending.iter().position(|p| p.key == key)
            }
            Continuation::SplitPart => self
                .pending
                .iter()
                .position(|p| p.key == key && p.message().ends_with("...")),
        };
        if let Some(index) = target {
            let (add, separator) = match kind {
                Continuation::SplitPart => (event.message().get(3..).unwrap_or(""), ""),
                _ => (event.message(), "\n"),
            };
            let p = &self.pending[index];
            let bytes = p.message().len() + separator.len() + add.len();
            let limit = if p.lines + 1 > self.config.max_lines {
                Some(Flush::LineLimit)
            } else if bytes > self.config.max_bytes {
                Some(Flush::ByteLimit)
            } else {
                None
            };
            match limit {
                Some(why) => self.emit(index, why, out),
                None => {
                    let window = self.config.window;
                    let seq = self.seq;
                    let p = &mut self.pending[index];
                    let joined = p.joined.get_or_insert_with(|| {
                        let mut s = String::with_capacity(bytes.max(256));
                        s.push_str(p.event.message());
                        s
                    });
                    if kind == Continuation::SplitPart {
                        joined.truncate(joined.len() - 3);
                    }
                    joined.push_str(separator);
                    joined.push_str(add);
                    p.lines += 1;
                    p.deadline = now + window;
                    p.last_seq = seq;
                    p.event.lossy_utf8 |= event.lossy_utf8;
                    // The joined event is done with only when every frame is.
                    if event.ack.is_some() {
                        p.event.ack =
                            crate::record::Ack::join(p.event.ack.take(), event.ack.take());
                    }
                    self.stats.joined_frames += 1;
                    return;
                }
            }
        }
        // Not joined: it starts a pending event of its own, after whatever
        // its peer has pending (of any PRI): a peer's events leave in
        // arrival order. There is at most one, as this keeps it so.
        if let Some(index) = self.pending.iter().position(|p| p.key.0 == key.0) {
            self.emit(index, Flush::NextEvent, out);
        }
        if self.pending.len() >= self.config.max_pending.max(1) {
            self.emit(0, Flush::Capacity, out);
        }
        let deadline = now + self.config.window;
        self.earliest = Some(self.earliest.map_or(deadline, |e| e.min(deadline)));
        self.pending.push(Pending {
            key,
            event,
            joined: None,
            lines: 1,
            deadline,
            last_seq: self.seq,
        });
    }

    /// Emit every event whose window has passed. Cheap when none is due,
    /// so a reader may call it after every frame.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Event>) {
        if self.earliest.is_none_or(|e| e > now) {
            return;
        }
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].deadline <= now {
                self.emit(i, Flush::Window, out);
            } else {
                i += 1;
            }
        }
        self.earliest = self.pending.iter().map(|p| p.deadline).min();
    }

    /// Emit everything (the listener or connection is closing).
    pub fn close(&mut self, out: &mut Vec<Event>) {
        while !self.pending.is_empty() {
            self.emit(0, Flush::Close, out);
        }
        self.earliest = None;
    }
}

#[cfg(test)]
mod tests {
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
}
