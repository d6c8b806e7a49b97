//! `sluice health`: ask a running sluice's `/health` (a container HEALTHCHECK).

use std::process::ExitCode;

use crate::config::Config;

/// `sluice health`: GET /health at the config's admin address; exit 0 on
/// 200 (ok or degraded), 1 on anything else or no answer within 5 s.
pub(super) fn health(config: Config) -> ExitCode {
    use std::io::{Read as _, Write as _};
    let Some(mut addr) = config.admin else {
        eprintln!(
            "error: {}: the admin listener is disabled ([admin] enabled = false): nothing to ask",
            config.origin
        );
        return ExitCode::from(2);
    };
    // A wildcard listen address is asked on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let timeout = std::time::Duration::from_secs(5);
    let answer = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        write!(
            s,
            "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        // Bounded: /health is a small JSON object.
        s.take(1 << 20).read_to_end(&mut raw)?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    })();
    match answer {
        Ok(text) => {
            let status = text.split_whitespace().nth(1).unwrap_or("?");
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
            println!("{body}");
            if status == "200" {
                ExitCode::SUCCESS
            } else {
                eprintln!("error: http://{addr}/health answered {status}");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: http://{addr}/health: {e}");
            ExitCode::from(1)
        }
    }
}
