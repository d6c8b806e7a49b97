//! What the stages count by: the multi-line joiner's flush reasons, the
//! TLS handshake failures, a queue's counters. Here, not in the stages, so
//! telemetry imports no stage.

use prometheus_client::metrics::counter::Counter;

/// Why a pending event was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// The window passed without a continuation.
    Window,
    /// A new (non-continuation) event of the same sender arrived.
    NextEvent,
    /// The next continuation would pass `max_lines`.
    LineLimit,
    /// The next continuation would pass `max_bytes`.
    ByteLimit,
    /// More than `max_pending` senders were pending.
    Capacity,
    /// The listener or connection is closing.
    Close,
}

impl Flush {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Flush::Window => "window",
            Flush::NextEvent => "next_event",
            Flush::LineLimit => "line_limit",
            Flush::ByteLimit => "byte_limit",
            Flush::Capacity => "capacity",
            Flush::Close => "close",
        }
    }

    pub(crate) const ALL: [Flush; 6] = [
        Flush::Window,
        Flush::NextEvent,
        Flush::LineLimit,
        Flush::ByteLimit,
        Flush::Capacity,
        Flush::Close,
    ];
}

/// Why a TLS handshake did not complete; the connection is closed and
/// counted under this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// No handshake within the listener's `handshake_timeout_secs`.
    Timeout,
    /// The first byte was not a TLS handshake record: plain syslog (or
    /// anything else) sent to the TLS port.
    NotTls,
    /// mTLS: the client presented no certificate.
    NoClientCertificate,
    /// The client's certificate did not verify against the client CA.
    BadClientCertificate,
    /// The peer closed the connection during the handshake.
    Closed,
    /// Any other TLS or socket error.
    Error,
}

impl HandshakeFailure {
    pub(crate) const ALL: [HandshakeFailure; 6] = [
        HandshakeFailure::Timeout,
        HandshakeFailure::NotTls,
        HandshakeFailure::NoClientCertificate,
        HandshakeFailure::BadClientCertificate,
        HandshakeFailure::Closed,
        HandshakeFailure::Error,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::NotTls => "not_tls",
            HandshakeFailure::NoClientCertificate => "no_client_certificate",
            HandshakeFailure::BadClientCertificate => "bad_client_certificate",
            HandshakeFailure::Closed => "closed",
            HandshakeFailure::Error => "error",
        }
    }

    /// Index into [`HandshakeFailure::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one route queue, resolved once at start-up (see
/// `queue`).
#[derive(Clone, Default)]
pub(crate) struct QueueMetrics {
    pub pushed: Counter,
    pub popped: Counter,
    pub dropped_full: Counter,
    pub dropped_oldest: Counter,
    pub dropped_full_udp: Counter,
    pub dropped_block_timeout: Counter,
    pub dropped_shutdown: Counter,
    /// Left at the shutdown deadline, but carrying a Kafka ack whose
    /// offset was not committed (the consumer closed first): read again
    /// at the next start, so not lost (`reason="uncommitted"`).
    pub released_uncommitted: Counter,
    /// Records written to the spill log.
    pub spilled: Counter,
    /// Spill log full too (`reason="spill_full"`) or failing (`spill_error`).
    pub dropped_spill_full: Counter,
    pub dropped_spill_error: Counter,
    /// Records in the spill log not yet acknowledged by the sink.
    pub spill_pending: prometheus_client::metrics::gauge::Gauge,
    /// Records lost to corruption in the spill log (see `queue::spill`).
    pub spill_corrupt: Counter,
}
