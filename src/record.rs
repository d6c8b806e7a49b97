//! `Record`: one route output, encoded once. The output stage makes it, the
//! queue (and its spill log) holds it, the sinks write it; a foundation, so
//! none of them imports the encoder to name it.

/// One encoded output: a line-protocol line (no trailing newline) or a JSON
/// document (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub payload: String,
    /// Event time (or receive time), ns since the epoch.
    pub time_nanos: i64,
    /// For documents: a stable identity of (route, frame, peer, receive
    /// time), so a document sent twice can be recognised (Elasticsearch `_id`).
    pub key: Option<[u8; 16]>,
    /// Only for routes to a Kafka sink (one pointer, `None` for every
    /// other record): the topic and key rendered from the event, and for
    /// the `raw` payload the frame with its envelope.
    pub kafka: Option<Box<KafkaPart>>,
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
