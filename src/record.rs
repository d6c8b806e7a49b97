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
}
