//! The TLS listener (RFC 5425) with certificates generated here by rcgen: a
//! private CA, the server's certificate, a client certificate, and a client
//! certificate from a CA the listener does not trust.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::util::{EVENTS_ROUTE, Sluice, ca, config, leaf, messages, read_lines, wait_while};

struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    client: (rcgen::Certificate, rcgen::KeyPair),
    rogue_client: (rcgen::Certificate, rcgen::KeyPair),
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("sluice test CA");
        let server = leaf(&["localhost", "127.0.0.1"], &ca);
        let client = leaf(&["billing.example"], &ca);
        let rogue = ca_rogue();
        let rogue_client = leaf(&["billing.example"], &rogue);
        std::fs::write(dir.path().join("ca.pem"), ca.0.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), server.0.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server.1.serialize_pem()).unwrap();
        Pki {
            dir,
            ca: ca.0,
            client,
            rogue_client,
        }
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    /// A rustls client trusting the test CA, with `cert` as its client
    /// certificate if given.
    fn client(&self, cert: Option<&(rcgen::Certificate, rcgen::KeyPair)>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        match cert {
            None => builder.with_no_client_auth(),
            Some((c, k)) => builder
                .with_client_auth_cert(
                    vec![c.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(k.serialize_der().into()),
                )
                .unwrap(),
        }
    }
}

fn ca_rogue() -> (rcgen::Certificate, rcgen::KeyPair) {
    ca("some other CA")
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: rustls::ClientConfig) -> TlsStream {
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Octet-counted RFC 5424 frames "message FROM" … "message TO-1".
fn octet_frames(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| {
            let msg = format!("<14>1 - h app - - - message {i}");
            format!("{} {msg}", msg.len()).into_bytes()
        })
        .collect()
}

/// A client whose connection the server refuses after the handshake
/// attempt: writing and reading fail or see the connection end, and
/// nothing it sent is delivered.
fn rejected_client(addr: SocketAddr, config: rustls::ClientConfig) {
    let mut s = connect(addr, config);
    let _ = s.write_all(b"<14>1 - h app - - - must not arrive\n");
    let _ = s.flush();
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "the server kept the connection: {r:?}"
    );
}

/// A good mTLS client streams octet-counted frames while, on the same
/// listener, a client with no certificate, one with a certificate from an
/// untrusted CA, a plain-TCP client and a client that never finishes its
/// handshake are each refused and counted by reason. The good client's
/// stream goes on and every one of its messages arrives, in order.
#[test]
fn tls_listener_with_client_certificates_refuses_bad_clients_and_keeps_good_ones() {
    let pki = Pki::new();
    let listener = format!(
        r#"
[[listeners]]
name = "tls"
protocol = "tls"
listen = "127.0.0.1:0"
[listeners.tls]
cert_file = "{}"
key_file = "{}"
client_ca_file = "{}"
handshake_timeout_secs = 1
"#,
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem")
    );
    let mut s = Sluice::start(&config(&listener, EVENTS_ROUTE));
    let addr = s.addr("tls");
    let reason = |r: &str| {
        s.metric(&format!(
            "sluice_listener_tls_handshakes_failed_total{{listener=\"tls\",reason=\"{r}\"}}"
        ))
    };

    let mut good = connect(addr, pki.client(Some(&pki.client)));
    good.write_all(&octet_frames(0, 500)).unwrap();
    good.flush().unwrap();

    // Connects and says nothing: closed at the handshake timeout.
    let mut staller = TcpStream::connect(addr).unwrap();
    rejected_client(addr, pki.client(None));
    rejected_client(addr, pki.client(Some(&pki.rogue_client)));
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .write_all(b"<14>1 - h app - - - plain text on the TLS port\n")
        .unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(plain.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");

    wait_while!(10, || reason("timeout") < 1);
    staller
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(staller.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");

    good.write_all(&octet_frames(500, 1000)).unwrap();
    good.flush().unwrap();
    let lines = s.wait_lines("events.ndjson", 1000);
    let got = messages(&lines);
    let want: Vec<String> = (0..1000).map(|i| format!("message {i}")).collect();
    let first_difference = got.iter().zip(&want).position(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "{} messages, first difference at {first_difference:?}: {:?}",
        got.len(),
        first_difference.map(|i| &got[i])
    );

    assert_eq!(reason("timeout"), 1);
    assert_eq!(reason("no_client_certificate"), 1);
    assert_eq!(reason("bad_client_certificate"), 1);
    assert_eq!(reason("not_tls"), 1);
    assert_eq!(reason("closed") + reason("error"), 0);
    assert_eq!(
        s.metric("sluice_listener_connections_accepted_total{listener=\"tls\"}"),
        5
    );
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"tls\"}"),
        1000
    );
    drop(good);
    assert!(s.stop().success());
    assert_eq!(read_lines(&s.path("events.ndjson")).len(), 1000);
}

/// Without client_ca_file a client needs no certificate; LF framing is
/// accepted on the TLS port too.
#[test]
fn tls_listener_without_client_auth_accepts_lf_frames() {
    let pki = Pki::new();
    let listener = format!(
        r#"
[[listeners]]
name = "tls"
protocol = "tls"
listen = "127.0.0.1:0"
tls = {{ cert_file = "{}", key_file = "{}" }}
"#,
        pki.path("server.pem"),
        pki.path("server.key"),
    );
    let mut s = Sluice::start(&config(&listener, EVENTS_ROUTE));
    let mut c = connect(s.addr("tls"), pki.client(None));
    c.write_all(b"<14>1 - h app - - - over tls\n<14>1 - h app - - - second\n")
        .unwrap();
    c.flush().unwrap();
    let lines = s.wait_lines("events.ndjson", 2);
    assert_eq!(messages(&lines), ["over tls", "second"]);
    drop(c);
    assert!(s.stop().success());
}

/// A TLS listener whose files are wrong is a config error naming the key
/// and the file; `sluice check` reports the TLS settings of a good one.
#[test]
fn tls_config_errors_name_the_key_and_file() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let check = |tls: &str| {
        let text = format!(
            "[[listeners]]\nname = \"tls\"\nprotocol = \"tls\"\nlisten = \"127.0.0.1:0\"\n{tls}\n[[sinks]]\nname = \"f\"\ntype = \"file\"\npath = \"f\"\n[[routes]]\nname = \"r\"\nsink = \"f\"\ndocument = {{}}\n"
        );
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(crate::util::BIN)
            .args(["check", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = check(&format!(
        "[listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem")
    ));
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("client certificates required, handshake_timeout_secs 10"),
        "{stdout}"
    );

    let missing = Path::new(&pki.path("nope.key")).display().to_string();
    let (code, _, stderr) = check(&format!(
        "[listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{missing}\"",
        pki.path("server.pem")
    ));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("sluice.toml:7") && stderr.contains("listeners[0].tls.key_file"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot read {missing}")),
        "{stderr}"
    );

    let (code, _, stderr) = check("");
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("listeners[0].protocol") && stderr.contains("[listeners.tls]"),
        "{stderr}"
    );
}
