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

/// Who sent a frame: its peer. A peer has at most one pending event (an
/// event that does not continue it emits it first).
type Peer = Option<SocketAddr>;

struct Pending {
    peer: Peer,
    /// The PRI every framed continuation must carry.
    pri: Option<u8>,
    event: Event,
    /// The joined message, once a continuation was appended.
    joined: Option<String>,
    lines: usize,
    /// Which entry of [`Joiner::due`] is this event's current one.
    stamp: u64,
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

/// Pending events, found by peer: a few are scanned (a TCP connection's
/// joiner holds one peer's), more are indexed by a hash map (a UDP
/// listener of a thousand log4j senders holds a thousand, and scanning
/// them per frame doubled its CPU per message; hashing every frame cost a
/// single stream 15 % more instructions). SipHash: a UDP listener's peers
/// are whoever sends, so their hashes must not be theirs to choose.
#[derive(Default)]
struct Store {
    list: Vec<Pending>,
    /// Position in `list` by peer; in use (not empty) while `list` is
    /// longer than [`SCANNED`] (until it shrinks to half that).
    index: std::collections::HashMap<Peer, usize>,
}

/// Pending events looked up by a scan rather than the index.
const SCANNED: usize = 16;

impl Store {
    fn len(&self) -> usize {
        self.list.len()
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn find(&self, peer: Peer) -> Option<usize> {
        if self.index.is_empty() {
            self.list.iter().position(|p| p.peer == peer)
        } else {
            self.index.get(&peer).copied()
        }
    }

    fn get(&self, peer: Peer) -> Option<&Pending> {
        self.list.get(self.find(peer)?)
    }

    fn get_mut(&mut self, peer: Peer) -> Option<&mut Pending> {
        let i = self.find(peer)?;
        self.list.get_mut(i)
    }

    /// Add `p`, whose peer has nothing pending.
    fn insert(&mut self, p: Pending) {
        let peer = p.peer;
        self.list.push(p);
        if !self.index.is_empty() {
            self.index.insert(peer, self.list.len() - 1);
        } else if self.list.len() > SCANNED {
            self.index = self
                .list
                .iter()
                .enumerate()
                .map(|(i, p)| (p.peer, i))
                .collect();
        }
    }

    fn remove(&mut self, peer: Peer) -> Option<Pending> {
        let i = self.find(peer)?;
        let p = self.list.swap_remove(i);
        if !self.index.is_empty() {
            self.index.remove(&peer);
            if let Some(moved) = self.list.get(i) {
                self.index.insert(moved.peer, i);
            }
            if self.list.len() <= SCANNED / 2 {
                self.index.clear();
            }
        }
        Some(p)
    }

    fn drain(&mut self) -> std::vec::Drain<'_, Pending> {
        self.index.clear();
        self.list.drain(..)
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
///
/// Pending events are found by peer ([`Store`]) and leave by deadline from
/// a queue in the order their windows were last started, which is
/// deadline order (the window is one length for all): expiry looks only
/// at what is due.
pub struct Joiner {
    config: MultilineConfig,
    /// Pending events, at most one per peer and `max_pending` in all.
    pending: Store,
    /// `(deadline, peer, stamp)` per window started, oldest first; an entry
    /// whose stamp is no longer its peer's pending one is stale (that event
    /// left, or a continuation restarted its window) and is skipped.
    /// Compacted when stale entries outnumber live ones.
    due: std::collections::VecDeque<(Instant, Peer, u64)>,
    stamp: u64,
    stats: JoinStats,
}

impl Joiner {
    pub fn new(config: MultilineConfig) -> Self {
        Joiner {
            config,
            pending: Default::default(),
            due: Default::default(),
            stamp: 0,
            stats: JoinStats::default(),
        }
    }

    /// Counters since the last call, then reset.
    pub fn take_stats(&mut self) -> JoinStats {
        std::mem::take(&mut self.stats)
    }

    /// When the earliest pending event may be due (never later than it is).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            None
        } else {
            self.due.front().map(|d| d.0)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn emit(&mut self, peer: Peer, why: Flush, out: &mut Vec<Event>) {
        if let Some(p) = self.pending.remove(peer) {
            self.stats.flushes[why as usize] += 1;
            out.push(p.into_event());
        }
        if self.pending.is_empty() {
            self.due.clear();
        }
    }

    /// Start (or restart) `peer`'s window at `now`: a new queue entry,
    /// whose stamp is returned.
    fn schedule(&mut self, peer: Peer, now: Instant) -> u64 {
        self.stamp += 1;
        // Never before the newest entry, so the queue stays in deadline
        // order even for a caller whose clock steps back (a window is
        // only ever lengthened by it).
        let deadline = (now + self.config.window).max(self.due.back().map_or(now, |d| d.0));
        self.due.push_back((deadline, peer, self.stamp));
        if self.due.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            let stamp = self.stamp;
            self.due.retain(|&(_, peer_of, s)| {
                s == stamp || pending.get(peer_of).is_some_and(|p| p.stamp == s)
            });
        }
        self.stamp
    }

    /// The peer of the live entry at the head of the queue (stale entries
    /// before it are dropped), if its deadline is at or before `until`.
    fn head(&mut self, until: Option<Instant>) -> Option<Peer> {
        while let Some(&(deadline, peer, stamp)) = self.due.front() {
            if until.is_some_and(|u| deadline > u) {
                return None;
            }
            if self.pending.get(peer).is_some_and(|p| p.stamp == stamp) {
                return Some(peer);
            }
            self.due.pop_front();
        }
        None
    }

    /// Take one decoded event; completed events are appended to `out`.
    pub fn push(&mut self, event: Event, now: Instant, out: &mut Vec<Event>) {
        let peer = event.peer;
        let pri = event.pri();
        let kind = classify(&event);
        let target = self.pending.get(peer).filter(|p| match kind {
            Continuation::No => false,
            Continuation::Bare => true,
            Continuation::Line | Continuation::ExceptionHeader => p.pri == pri,
            Continuation::SplitPart => p.pri == pri && p.message().ends_with("..."),
        });
        if let Some(p) = target {
            let (add, separator) = match kind {
                Continuation::SplitPart => (event.message().get(3..).unwrap_or(""), ""),
                _ => (event.message(), "\n"),
            };
            let bytes = p.message().len() + separator.len() + add.len();
            if p.lines + 1 > self.config.max_lines {
                self.emit(peer, Flush::LineLimit, out);
            } else if bytes > self.config.max_bytes {
                self.emit(peer, Flush::ByteLimit, out);
            } else {
                let stamp = self.schedule(peer, now);
                if let Some(p) = self.pending.get_mut(peer) {
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
                    p.stamp = stamp;
                    p.event.lossy_utf8 |= event.lossy_utf8;
                }
                self.stats.joined_frames += 1;
                return;
            }
        }
        // Not joined: it starts a pending event of its own, after whatever
        // its peer has pending (of any PRI): a peer's events leave in
        // arrival order.
        if self.pending.find(peer).is_some() {
            self.emit(peer, Flush::NextEvent, out);
        }
        if self.pending.len() >= self.config.max_pending.max(1) {
            // The one whose window started longest ago.
            if let Some(oldest) = self.head(None) {
                self.emit(oldest, Flush::Capacity, out);
            }
        }
        let stamp = self.schedule(peer, now);
        self.pending.insert(Pending {
            peer,
            pri,
            event,
            joined: None,
            lines: 1,
            stamp,
        });
    }

    /// Emit every event whose window has passed. Cheap when none is due,
    /// so a reader may call it after every frame.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Event>) {
        while let Some(peer) = self.head(Some(now)) {
            self.emit(peer, Flush::Window, out);
        }
    }

    /// Emit everything (the listener or connection is closing), in the
    /// order their windows would have passed.
    pub fn close(&mut self, out: &mut Vec<Event>) {
        while let Some(peer) = self.head(None) {
            self.emit(peer, Flush::Close, out);
        }
        // Nothing is left without an entry; this only keeps it certain.
        for p in self.pending.drain() {
            self.stats.flushes[Flush::Close as usize] += 1;
            out.push(p.into_event());
        }
        self.due.clear();
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
        let peer = |n: u16| Some(SocketAddr::from(([127, 0, 0, 1], n)));
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
            1, 40, 7, 20, 21, 2, 39, 3, 38, 4, 37, 5, 36, 6, 35, 8, 34, 9, 33, 10, 32, 11, 31, 12,
            30, 13, 29, 14, 28, 15, 27,
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
}
