//! TLS for syslog listeners (RFC 5425): the reasons a handshake fails, as
//! counted in `sluice_listener_tls_handshakes_failed_total{reason}`. The
//! server configuration is built from PEM files in `config::tls`, when the
//! configuration is loaded.

use std::io;

pub use crate::config::{DEFAULT_HANDSHAKE_TIMEOUT, ListenerTls, TlsError, server_config};
pub use crate::telemetry::HandshakeFailure;

impl HandshakeFailure {
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
