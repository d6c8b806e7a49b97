//! The accept side of a TLS listener (RFC 5425): the bounded server
//! handshake and the classification of why one failed. The server's rustls
//! configuration is built from the PEM files in [`crate::config::tls`].

use std::io;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::ListenerTls;
use crate::telemetry::HandshakeFailure;

/// The server side of a TLS handshake, bounded by the listener's timeout
/// and by shutdown. Plain text on the TLS port is recognised by its first
/// byte (not a TLS handshake record) and refused without a TLS alert.
pub(super) async fn handshake(
    stream: TcpStream,
    tls: &ListenerTls,
    shutdown: &CancellationToken,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, HandshakeFailure> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let attempt = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) => return Err(HandshakeFailure::Closed),
            Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => return Err(HandshakeFailure::NotTls),
            Ok(_) => {}
            Err(e) => return Err(classify(&e)),
        }
        acceptor.accept(stream).await.map_err(|e| classify(&e))
    };
    tokio::select! {
        r = tokio::time::timeout(tls.handshake_timeout, attempt) => {
            r.unwrap_or(Err(HandshakeFailure::Timeout))
        }
        _ = shutdown.cancelled() => Err(HandshakeFailure::Closed),
    }
}

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Classify the error a server handshake returned.
pub(super) fn classify(e: &io::Error) -> HandshakeFailure {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_errors_are_classified() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            classify(&wrap(rustls::Error::NoCertificatesPresented)),
            HandshakeFailure::NoClientCertificate
        );
        assert_eq!(
            classify(&wrap(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))),
            HandshakeFailure::BadClientCertificate
        );
        assert_eq!(
            classify(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            HandshakeFailure::Closed
        );
        assert_eq!(
            classify(&wrap(rustls::Error::DecryptError)),
            HandshakeFailure::Error
        );
        for (i, f) in HandshakeFailure::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
