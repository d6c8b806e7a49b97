//! `Record`: one route output, encoded once. The output stage makes it, the
//! queue (and its spill log) holds it, the sinks write it; a foundation, so
//! none of them imports the encoder to name it.
//!
//! [`Ack`] is how a source that must know when its input is safe (the
//! Kafka listener: it commits an offset only then) learns it: the event
//! and every record made from it hold a clone, and the last one dropped —
//! delivered, written to a spill log, dead-lettered or dropped and
//! counted — tells the source. Records of other listeners carry none.

use std::sync::Arc;

mod payload;
pub use payload::Payload;
pub(crate) use payload::{SLAB_BYTES, Slab, SlabPool, slab_size};

/// One encoded output: a line-protocol line (no trailing newline) or a JSON
/// document (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub payload: Payload,
    /// Event time (or receive time), ns since the epoch.
    pub time_nanos: i64,
    /// For documents: a stable identity of (route, frame, peer, receive
    /// time), so a document sent twice can be recognised (Elasticsearch `_id`).
    pub key: Option<[u8; 16]>,
    /// Only for routes to a Kafka sink (one pointer, `None` for every
    /// other record): the topic and key rendered from the event, and for
    /// the `raw` payload the frame with its envelope.
    pub kafka: Option<Box<KafkaPart>>,
    /// The input's acknowledgement, released when this record is done with
    /// (see the module doc); `None` for listeners that need none.
    pub ack: Option<Ack>,
}

/// What a Kafka record needs beyond the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaPart {
    pub topic: String,
    /// The record's key (the sink's `key` template), or none.
    pub key: Option<String>,
    /// `payload = "raw"`: the frame and its receive metadata (the record's
    /// value and headers); `payload` is then empty.
    pub envelope: Option<Envelope>,
}

impl KafkaPart {
    /// Bytes it holds (what a queue's byte bound counts).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<KafkaPart>()
            + self.topic.len()
            + self.key.as_ref().map_or(0, String::len)
            + self.envelope.as_ref().map_or(0, |e| e.frame.len())
    }
}

/// The raw envelope (format version [`Envelope::VERSION`]): one frame as the
/// edge listener received it, and what an indexer needs to decode it as
/// if it had received it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The frame's bytes as received (after framing), not the decoder's
    /// UTF-8 text.
    pub frame: bytes::Bytes,
    /// Receive time, ns since the Unix epoch.
    pub received_nanos: i64,
    pub peer: Option<std::net::SocketAddr>,
    /// The edge listener's name.
    pub listener: std::sync::Arc<str>,
    /// The edge listener's framing, spelled as in the config (`datagram`
    /// for UDP).
    pub framing: std::sync::Arc<str>,
    /// The edge process's start-up nonce and the frame's number: the
    /// document identity's context.
    pub nonce: u64,
    pub frame_number: u64,
    /// The listener's timezone for zone-less timestamps, as configured;
    /// `None`: the default.
    pub timezone: Option<std::sync::Arc<str>>,
}

impl Envelope {
    /// `sluice.envelope`: the format version.
    pub const VERSION: &'static str = "1";

    /// `sluice.id`: the nonce then the frame number, 16 lowercase hex
    /// digits each.
    pub fn id(&self) -> String {
        format!("{:016x}{:016x}", self.nonce, self.frame_number)
    }
}

/// What an [`Ack`] reports to when its last clone is dropped.
pub trait AckTarget: Send + Sync {
    /// The input at `offset` of `slot` (the target's own name for where
    /// it came from, e.g. one assignment of one partition) is done with.
    fn done(&self, slot: u64, offset: i64);
}

/// A shared acknowledgement: the input is done with when the last clone
/// is dropped. Equal only to its own clones.
#[derive(Clone)]
pub struct Ack(Arc<AckInner>);

enum AckInner {
    Offset {
        target: Arc<dyn AckTarget>,
        slot: u64,
        offset: i64,
    },
    /// An event joined from frames with acks of their own: done when both are.
    Both(Ack, Ack),
}

impl Ack {
    pub fn new(target: Arc<dyn AckTarget>, slot: u64, offset: i64) -> Ack {
        Ack(Arc::new(AckInner::Offset {
            target,
            slot,
            offset,
        }))
    }

    /// One ack for an event made of two inputs (a multi-line join).
    pub fn join(a: Option<Ack>, b: Option<Ack>) -> Option<Ack> {
        match (a, b) {
            (Some(a), Some(b)) if Arc::ptr_eq(&a.0, &b.0) => Some(a),
            (Some(a), Some(b)) => Some(Ack(Arc::new(AckInner::Both(a, b)))),
            (a, b) => a.or(b),
        }
    }
}

impl Drop for AckInner {
    fn drop(&mut self) {
        if let AckInner::Offset {
            target,
            slot,
            offset,
        } = self
        {
            target.done(*slot, *offset);
        }
    }
}

impl PartialEq for Ack {
    fn eq(&self, other: &Ack) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Ack {}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            AckInner::Offset { slot, offset, .. } => write!(f, "Ack({slot}@{offset})"),
            AckInner::Both(a, b) => write!(f, "Ack({a:?}+{b:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(u64, i64)>>);
    impl AckTarget for Seen {
        fn done(&self, slot: u64, offset: i64) {
            self.0.lock().unwrap().push((slot, offset));
        }
    }

    /// An ack is reported once, when its last clone goes; a joined ack
    /// reports both parts only when the join goes.
    #[test]
    fn ack_reports_when_the_last_clone_is_dropped() {
        let seen = Arc::new(Seen::default());
        let a = Ack::new(seen.clone(), 0, 10);
        let a2 = a.clone();
        drop(a);
        assert!(seen.0.lock().unwrap().is_empty());
        let b = Ack::new(seen.clone(), 3, 7);
        let joined = Ack::join(Some(a2), Some(b)).unwrap();
        let record_copy = joined.clone();
        drop(joined);
        assert!(seen.0.lock().unwrap().is_empty());
        drop(record_copy);
        let mut got = seen.0.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, vec![(0, 10), (3, 7)]);
    }
}
