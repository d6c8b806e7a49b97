//! A TLS listener's `[listeners.tls]` (RFC 5425): the server's rustls
//! configuration built from PEM files when the configuration is loaded, so
//! `sluice check` reports an unreadable certificate or a key that does not
//! match it.

use super::*;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Handshake timeout when the listener sets none.
pub(super) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS listener's settings, with the server configuration already built.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub server: Arc<rustls::ServerConfig>,
    pub handshake_timeout: Duration,
    /// Clients must present a certificate signed by `client_ca_file`.
    pub client_auth: bool,
    pub cert_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")]
    NoCertificate { path: PathBuf },
    #[error(
        "{path}: no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY) in it"
    )]
    NoKey { path: PathBuf },
    #[error("{path}: client CA certificate rejected: {source}")]
    ClientCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{path}: no usable client CA certificate: {message}")]
    ClientVerifier { path: PathBuf, message: String },
    #[error("certificate {cert} with key {key}: {source}")]
    Server {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoCertificate {
            path: path.to_owned(),
        },
        other => TlsError::Read {
            path: path.to_owned(),
            message: other.to_string(),
        },
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Build the server configuration: certificate chain and key from PEM
/// files, and with `client_ca_file`, client certificates required and
/// verified against it.
pub(super) fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_file.to_owned(),
        },
        other => TlsError::Read {
            path: key_file.to_owned(),
            message: other.to_string(),
        },
    })?;
    let server_err = |source| TlsError::Server {
        cert: cert_file.to_owned(),
        key: key_file.to_owned(),
        source,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(server_err)?;
    let builder = match client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|source| TlsError::ClientCa {
                    path: ca.to_owned(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientVerifier {
                    path: ca.to_owned(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(server_err)?;
    Ok(Arc::new(config))
}

impl Validator<'_, '_> {
    /// Load a TLS listener's certificate, key and client CA now, so a bad
    /// file is a config error (and `sluice check` finds it).
    pub(super) fn listener_tls(&self, base: &[Seg], t: RawTls) -> Result<ListenerTls, ConfigError> {
        let dir = self.config_dir();
        let timeout = match t.handshake_timeout_secs {
            None => DEFAULT_HANDSHAKE_TIMEOUT,
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
        let server = server_config(&cert, &key, ca.as_deref()).map_err(|e| {
            let field = match &e {
                TlsError::Read { path, .. } | TlsError::NoCertificate { path }
                    if Some(path) == ca.as_ref() =>
                {
                    "client_ca_file"
                }
                TlsError::ClientCa { .. } | TlsError::ClientVerifier { .. } => "client_ca_file",
                TlsError::Read { path, .. } | TlsError::NoKey { path } if *path == key => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A self-signed `localhost` certificate and its key, written to
    /// `c.pem` and `k.pem` in `dir`.
    fn cert_and_key(dir: &Path) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let c = write(dir, "c.pem", &cert.pem());
        let k = write(dir, "k.pem", &key.serialize_pem());
        (c, k)
    }

    #[test]
    fn a_matching_certificate_and_key_make_a_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = cert_and_key(dir.path());
        assert!(server_config(&c, &k, None).is_ok());
        // The certificate as its own client CA: mTLS configured.
        assert!(server_config(&c, &k, Some(&c)).is_ok());
    }

    #[test]
    fn errors_name_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = cert_and_key(dir.path());
        let other = rcgen::KeyPair::generate().unwrap();
        let wrong_key = write(dir.path(), "other.pem", &other.serialize_pem());
        let missing = dir.path().join("missing.pem");

        let e = server_config(&missing, &k, None).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot read {}", missing.display())),
            "{e}"
        );
        let e = server_config(&k, &k, None).unwrap_err().to_string();
        assert!(e.contains("k.pem: no PEM certificate"), "{e}");
        let e = server_config(&c, &c, None).unwrap_err().to_string();
        assert!(e.contains("c.pem: no PEM private key"), "{e}");
        let e = server_config(&c, &wrong_key, None).unwrap_err().to_string();
        assert!(e.contains("c.pem") && e.contains("other.pem"), "{e}");
        let e = server_config(&c, &k, Some(&k)).unwrap_err().to_string();
        assert!(e.contains("k.pem: no PEM certificate"), "{e}");
    }
}
