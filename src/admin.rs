//! The admin HTTP listener: `GET /metrics`, `GET /health` and `POST /reload`,
//! with the access checks a mutating request must pass ([`admit`]), on a
//! bounded number of connections.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::log_limit::LogLimiter;
use crate::telemetry::{AdminMetrics, Telemetry};

/// Why a mutating admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `Host` is missing or not the admin address (DNS rebinding).
    Host,
    /// `Origin` is present and not the admin address (a web page's POST).
    Origin,
    /// `[admin] token` is set and the request lacks `Bearer <token>`.
    Token,
}

/// May this request change anything (`POST /reload`)? Its `Host` and, when
/// present, its `Origin` must name the admin address: its IP and port, a
/// loopback IP or `localhost` with its port, any IP with its port when it
/// listens on all addresses, or an entry of `[admin] allowed_hosts`. Then,
/// with `[admin] token`, `Authorization: Bearer <token>` is required.
pub(crate) fn admit(
    headers: &axum::http::HeaderMap,
    access: &crate::config::AdminAccess,
    local: std::net::SocketAddr,
) -> Result<(), Refusal> {
    use axum::http::header;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(Refusal::Host)?;
    if !authority_allowed(host, access, local) {
        return Err(Refusal::Host);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let authority = origin.to_str().ok().and_then(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
        });
        match authority {
            Some(a) if !a.contains('/') && authority_allowed(a, access, local) => {}
            _ => return Err(Refusal::Origin),
        }
    }
    if let Some(token) = &access.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                let (scheme, value) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
            })
            .ok_or(Refusal::Token)?;
        if !same_secret(given.as_bytes(), token.as_bytes()) {
            return Err(Refusal::Token);
        }
    }
    Ok(())
}

/// Compare in time that depends on the lengths only, not on where the
/// first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
        diff |= usize::from(std::hint::black_box(x));
    }
    diff == 0
}

/// Does `authority` (`host[:port]`, from `Host` or `Origin`) name the admin
/// address bound at `local`?
fn authority_allowed(
    authority: &str,
    access: &crate::config::AdminAccess,
    local: std::net::SocketAddr,
) -> bool {
    let authority = authority.trim().to_ascii_lowercase();
    if access
        .allowed_hosts
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&authority))
    {
        return true;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return false,
            },
            None => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority.as_str(), None),
        },
    };
    // No port: the scheme's default, 80 (an https origin on 443 is not us).
    let port = match port.map(str::parse::<u16>) {
        None => 80,
        Some(Ok(p)) => p,
        Some(Err(_)) => return false,
    };
    if port != local.port() {
        return false;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host == "localhost"
        || access
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host))
    {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == local.ip() || ip.is_loopback() || local.ip().is_unspecified(),
        Err(_) => false,
    }
}

/// Serve `/metrics`, `/health` and (with `reload`) `POST /reload` on an
/// already-bound listener until `shutdown`. `POST /reload` is let through
/// only by [`admit`]; refusals are counted.
pub(crate) async fn serve_admin(
    listener: tokio::net::TcpListener,
    telemetry: Arc<Telemetry>,
    reload: Option<tokio::sync::mpsc::Sender<crate::reload::ReloadRequest>>,
    access: crate::config::AdminAccess,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::routing::{get, post};

    let local = listener.local_addr()?;
    let access = Arc::new(access);
    let admin_metrics = telemetry.admin.clone();
    let telemetry_admin = telemetry.admin.clone();

    let metrics = {
        let telemetry = telemetry.clone();
        move || {
            let telemetry = telemetry.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    telemetry.encode(),
                )
            }
        }
    };
    let health = move || {
        let telemetry = telemetry.clone();
        async move {
            let (code, body) = telemetry.health();
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                [(header::CONTENT_TYPE, "application/json")],
                body + "\n",
            )
        }
    };
    let reload = move |headers: axum::http::HeaderMap| {
        let reload = reload.clone();
        let access = access.clone();
        let metrics = admin_metrics.clone();
        async move {
            let json = |code: StatusCode, v: serde_json::Value| {
                (
                    code,
                    [(header::CONTENT_TYPE, "application/json")],
                    v.to_string() + "\n",
                )
            };
            if let Err(refusal) = admit(&headers, &access, local) {
                let (counter, code, error) = match refusal {
                    Refusal::Host => (
                        &metrics.refused_host,
                        StatusCode::FORBIDDEN,
                        "Host is not the admin address",
                    ),
                    Refusal::Origin => (
                        &metrics.refused_origin,
                        StatusCode::FORBIDDEN,
                        "Origin is not the admin address",
                    ),
                    Refusal::Token => (
                        &metrics.refused_token,
                        StatusCode::UNAUTHORIZED,
                        "needs Authorization: Bearer <[admin] token>",
                    ),
                };
                counter.inc();
                return json(code, serde_json::json!({"reloaded": false, "error": error}));
            }
            let Some(reload) = reload else {
                return json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"reloaded": false, "error": "reload is not available"}),
                );
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            if reload
                .send(crate::reload::ReloadRequest { reply: Some(tx) })
                .await
                .is_err()
            {
                return json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"reloaded": false, "error": "shutting down"}),
                );
            }
            match rx.await {
                Ok(Ok(summary)) => json(
                    StatusCode::OK,
                    serde_json::json!({"reloaded": true, "summary": summary}),
                ),
                Ok(Err(error)) => json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"reloaded": false, "error": error}),
                ),
                Err(_) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"reloaded": false, "error": "shutting down"}),
                ),
            }
        }
    };
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/reload", post(reload));
    serve_bounded(listener, app, &telemetry_admin, shutdown).await;
    Ok(())
}

/// Admin connections served at once; one more is closed at accept and
/// counted (`sluice_admin_refused_requests_total{reason="connections"}`).
pub(crate) const ADMIN_MAX_CONNECTIONS: usize = 64;
/// An admin connection must have sent a request's headers this soon after
/// it opened or after its previous response.
pub(crate) const ADMIN_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// An admin connection is closed this long after it opened, whatever it does.
pub(crate) const ADMIN_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The admin port's accept loop: at most [`ADMIN_MAX_CONNECTIONS`]
/// connections, each with a header and an overall timeout, so clients that
/// open connections and send nothing cannot keep `/health` from answering
/// or hold file descriptors for long.
async fn serve_bounded(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    metrics: &AdminMetrics,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let permits = Arc::new(tokio::sync::Semaphore::new(ADMIN_MAX_CONNECTIONS));
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                static LOG: LogLimiter = LogLimiter::new(10_000);
                if let Some(suppressed) = LOG.allow() {
                    tracing::warn!(error = %e, suppressed, "admin accept failed");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.refused_connections.inc();
            static LOG: LogLimiter = LogLimiter::new(10_000);
            if let Some(suppressed) = LOG.allow() {
                tracing::warn!(
                    max = ADMIN_MAX_CONNECTIONS,
                    suppressed,
                    "admin connection refused: connection limit reached"
                );
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let deadline = tokio::time::sleep(ADMIN_CONNECTION_TIMEOUT);
            tokio::pin!(deadline);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = &mut deadline => return,
                _ = shutdown.cancelled() => {}
            }
            // Shutting down: let a request in flight finish, briefly.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        });
    }
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod admit_tests {
    use super::{Refusal, admit};
    use crate::config::AdminAccess;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn host_and_origin_must_name_the_admin_address() {
        let local = "127.0.0.1:9901".parse().unwrap();
        let open = AdminAccess::default();
        let check = |pairs: &[(&'static str, &str)]| admit(&headers(pairs), &open, local);
        for host in [
            "127.0.0.1:9901",
            "localhost:9901",
            "LOCALHOST:9901",
            "[::1]:9901",
        ] {
            assert_eq!(check(&[("host", host)]), Ok(()), "{host}");
        }
        for host in [
            "evil.example:9901",
            "127.0.0.1:9902",
            "127.0.0.1",
            "10.0.0.1:9901",
            "[::1]x",
        ] {
            assert_eq!(check(&[("host", host)]), Err(Refusal::Host), "{host}");
        }
        assert_eq!(check(&[]), Err(Refusal::Host));
        let h = ("host", "127.0.0.1:9901");
        assert_eq!(check(&[h, ("origin", "http://127.0.0.1:9901")]), Ok(()));
        assert_eq!(check(&[h, ("origin", "http://localhost:9901")]), Ok(()));
        for origin in [
            "null",
            "http://evil.example",
            "http://127.0.0.1:9901/x",
            "file://",
            "http://127.0.0.1",
        ] {
            assert_eq!(
                check(&[h, ("origin", origin)]),
                Err(Refusal::Origin),
                "{origin}"
            );
        }
        // Listening on all addresses: any IP literal with the port, never a name.
        let any = "0.0.0.0:9901".parse().unwrap();
        assert_eq!(
            admit(&headers(&[("host", "10.1.2.3:9901")]), &open, any),
            Ok(())
        );
        assert_eq!(
            admit(&headers(&[("host", "rebound.example:9901")]), &open, any),
            Err(Refusal::Host)
        );
        let named = AdminAccess {
            token: None,
            allowed_hosts: vec!["sluice.internal".into(), "proxy.example:443".into()],
        };
        for host in ["sluice.internal:9901", "proxy.example:443"] {
            assert_eq!(
                admit(&headers(&[("host", host)]), &named, local),
                Ok(()),
                "{host}"
            );
        }
        assert_eq!(
            admit(&headers(&[("host", "sluice.internal:80")]), &named, local),
            Err(Refusal::Host)
        );
    }

    #[test]
    fn a_token_needs_the_exact_bearer() {
        let local = "127.0.0.1:9901".parse().unwrap();
        let access = AdminAccess {
            token: Some("s3cret".into()),
            allowed_hosts: Vec::new(),
        };
        let h = ("host", "127.0.0.1:9901");
        let check = |auth: Option<&str>| {
            let mut pairs = vec![h];
            if let Some(a) = auth {
                pairs.push(("authorization", a));
            }
            admit(&headers(&pairs), &access, local)
        };
        assert_eq!(check(Some("Bearer s3cret")), Ok(()));
        assert_eq!(check(Some("bearer s3cret")), Ok(()));
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Basic s3cret"),
            Some("Bearer "),
        ] {
            assert_eq!(check(bad), Err(Refusal::Token), "{bad:?}");
        }
        // The host is checked first: a foreign page learns nothing about the token.
        assert_eq!(
            admit(
                &headers(&[
                    ("host", "evil.example:9901"),
                    ("authorization", "Bearer s3cret")
                ]),
                &access,
                local
            ),
            Err(Refusal::Host)
        );
    }
}
