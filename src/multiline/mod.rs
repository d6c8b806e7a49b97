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
//! - a frame without a PRI (a bare continuation line on a stream; also one
//!   whose PRI comes after spaces, an indented line) — joined to the newest
//!   pending event of the same peer.
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

use crate::event::{Event, LenientRule, Text};
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
    let m = event.message_after_bom();
    if without_pri(event) {
        // Read by the decoder or not (a line opening with a time has its
        // header read, `pri_missing`), a line without PRI continues the
        // sender's newest event. An empty frame continues nothing:
        // appended, it would add only a line end to another event.
        return if event.text().is_empty() {
            Continuation::No
        } else {
            Continuation::Bare
        };
    }
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

/// Whether the frame had no PRI: undecoded, or its header read without
/// one ([`LenientRule::PriMissing`]; its facility is empty as well, the
/// rule says so outright), or a PRI read after the whitespace that opens
/// the line ([`LenientRule::SpaceBeforePri`]: to a joining listener an
/// indented line is a continuation, whatever follows its indentation).
fn without_pri(event: &Event) -> bool {
    event.facility.is_none()
        || event.lenient.contains(LenientRule::PriMissing)
        || event.lenient.contains(LenientRule::SpaceBeforePri)
}

/// The PRI the sender wrote, which framed continuations must carry.
fn sent_pri(event: &Event) -> Option<u8> {
    if without_pri(event) {
        None
    } else {
        event.pri()
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

/// Who sent a frame: the stream it came on within the listener (a Kafka
/// record's topic and partition; 0 on the socket listeners) and its peer.
/// Frames join only within one; each has at most one pending event (an
/// event that does not continue it emits it first).
type Peer = (u64, Option<SocketAddr>);

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
        self.push_on(0, event, now, out);
    }

    /// Whether `event` is a line without PRI that an event pending for its
    /// peer on join stream `stream` would take whole ([`Joiner::push_on`]):
    /// what the decoder read of it is then not used.
    pub(crate) fn continues_bare(&self, stream: u64, event: &Event) -> bool {
        classify(event) == Continuation::Bare && self.pending.get((stream, event.peer)).is_some()
    }

    /// [`Joiner::push`] for an event of join stream `stream` (see [`Peer`]).
    pub(crate) fn push_on(
        &mut self,
        stream: u64,
        mut event: Event,
        now: Instant,
        out: &mut Vec<Event>,
    ) {
        let peer = (stream, event.peer);
        let pri = sent_pri(&event);
        let kind = classify(&event);
        let target = self.pending.get(peer).filter(|p| match kind {
            Continuation::No => false,
            Continuation::Bare => true,
            Continuation::Line | Continuation::ExceptionHeader => p.pri == pri,
            Continuation::SplitPart => p.pri == pri && p.message().ends_with("..."),
        });
        if let Some(p) = target {
            let (add, separator) = match kind {
                // After the BOM of an RFC 5424 MSG: the joined message
                // keeps the first frame's only, at its start.
                Continuation::SplitPart => (event.message_after_bom().get(3..).unwrap_or(""), ""),
                // The whole line, as it was sent.
                Continuation::Bare => (event.text(), "\n"),
                _ => (event.message_after_bom(), "\n"),
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
                    // The joined event is done with only when every frame is.
                    if event.ack.is_some() {
                        p.event.ack =
                            crate::record::Ack::join(p.event.ack.take(), event.ack.take());
                    }
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
mod tests;
