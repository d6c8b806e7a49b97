//! TLS for syslog listeners (RFC 5425): the reasons a handshake fails, as
//! counted in `sluice_listener_tls_handshakes_failed_total{reason}`. The
//! server configuration is built from PEM files in `config::tls`, when the
//! configuration is loaded.

pub use crate::config::{DEFAULT_HANDSHAKE_TIMEOUT, ListenerTls, TlsError, server_config};

/// Why a TLS handshake did not complete; the connection is closed and
/// counted under this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
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
    pub const ALL: [HandshakeFailure; 6] = [
        HandshakeFailure::Timeout,
        HandshakeFailure::NotTls,
        HandshakeFailure::NoClientCertificate,
        HandshakeFailure::BadClientCertificate,
        HandshakeFailure::Closed,
        HandshakeFailure::Error,
    ];

    pub fn as_str(self) -> &'static str {
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
    pub fn index(self) -> usize {
        self as usize
    }
}
