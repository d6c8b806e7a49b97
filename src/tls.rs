//! TLS for syslog listeners (RFC 5425): the reasons a handshake fails, as
//! counted in `sluice_listener_tls_handshakes_failed_total{reason}`. The
//! server configuration is built from PEM files in `config::tls`, when the
//! configuration is loaded.

use std::io;

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

    /// Classify the error a server handshake returned.
    pub fn classify(e: &io::Error) -> HandshakeFailure {
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return match tls {
                rustls::Error::NoCertificatesPresented => HandshakeFailure::NoClientCertificate,
                rustls::Error::InvalidCertificate(_) => HandshakeFailure::BadClientCertificate,
                _ => HandshakeFailure::Error,
            };
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => HandshakeFailure::Closed,
            _ => HandshakeFailure::Error,
        }
    }
}

/// The first byte of every TLS connection: a handshake record.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_errors_are_classified() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            HandshakeFailure::classify(&wrap(rustls::Error::NoCertificatesPresented)),
            HandshakeFailure::NoClientCertificate
        );
        assert_eq!(
            HandshakeFailure::classify(&wrap(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))),
            HandshakeFailure::BadClientCertificate
        );
        assert_eq!(
            HandshakeFailure::classify(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            HandshakeFailure::Closed
        );
        assert_eq!(
            HandshakeFailure::classify(&wrap(rustls::Error::DecryptError)),
            HandshakeFailure::Error
        );
        for (i, f) in HandshakeFailure::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
