//! A TLS listener's `[listeners.tls]`: certificates loaded at validation.

#[allow(unused_imports)]
use super::*;

impl Validator<'_, '_> {
    /// Load a TLS listener's certificate, key and client CA now, so a bad
    /// file is a config error (and `sluice check` finds it).
    pub(super) fn listener_tls(&self, base: &[Seg], t: RawTls) -> Result<ListenerTls, ConfigError> {
        let dir = self.config_dir();
        let timeout = match t.handshake_timeout_secs {
            None => crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            Some(s @ 1..=300) => Duration::from_secs(s),
            Some(_) => {
                return Err(self.err(
                    &at(base, "handshake_timeout_secs"),
                    "must be between 1 and 300",
                ));
            }
        };
        let (cert, key) = (dir.join(&t.cert_file), dir.join(&t.key_file));
        let ca = t.client_ca_file.as_ref().map(|c| dir.join(c));
        let server = crate::tls::server_config(&cert, &key, ca.as_deref()).map_err(|e| {
            let field = match &e {
                crate::tls::TlsError::Read { path, .. }
                | crate::tls::TlsError::NoCertificate { path }
                    if Some(path) == ca.as_ref() =>
                {
                    "client_ca_file"
                }
                crate::tls::TlsError::ClientCa { .. }
                | crate::tls::TlsError::ClientVerifier { .. } => "client_ca_file",
                crate::tls::TlsError::Read { path, .. } | crate::tls::TlsError::NoKey { path }
                    if *path == key =>
                {
                    "key_file"
                }
                _ => "cert_file",
            };
            self.err(&at(base, field), e.to_string())
        })?;
        Ok(ListenerTls {
            server,
            handshake_timeout: timeout,
            client_auth: ca.is_some(),
            cert_file: cert,
        })
    }
}
