//! Sockets → frames: UDP (a datagram is a frame), TCP (RFC 6587 framing,
//! see [`crate::framing`]) and TLS (RFC 5425: TCP's framing inside rustls).
//!
//! A TLS connection holds its connection permit from accept on; its
//! handshake is bounded by `handshake_timeout_secs`, and one that fails
//! (timeout, plain text on the TLS port, missing or bad client certificate)
//! closes that connection only and is counted by reason.
//!
//! TCP connections are bounded by a semaphore (`max_connections`; a
//! connection over the limit is closed at once and counted), optionally per
//! source address (`max_connections_per_peer`, likewise; only connections
//! the peer still holds open count: one whose peer closed it frees its slot
//! at once, even while its last frames are still being handed on), by an idle
//! timeout that runs from the last frame (bytes that carry none, such as
//! blank lines, do not reset it), and by a frame timeout: a frame must be complete
//! `frame_timeout_secs` after its first byte, so a sender trickling a byte
//! at a time (slowloris) cannot hold a slot; such a connection is closed
//! and counted, and what it sent is kept as at end of stream. On shutdown a listener stops accepting, and each connection reads
//! what is already in hand (until the peer closes or no byte arrives for
//! [`DRAIN_IDLE`]) before it closes, so frames the sender already wrote are
//! not lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::ingest::PipelineHandle;
use crate::telemetry::{Degraded, KafkaSourceMetrics, ListenerMetrics};

mod kafka;
mod tcp;
mod tls;
mod udp;

pub(crate) use udp::as_datagram;

/// How long a stream without delimiters may pause before its last message
/// is taken as complete.
pub(crate) const UNDELIMITED_PAUSE: Duration = Duration::from_millis(100);
/// How long a closing connection waits for more bytes already sent.
pub(crate) const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Largest read of one TCP connection (see [`tcp::read_size`]).
const READ_CHUNK: usize = 64 * 1024;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, thiserror::Error)]
#[error("listener {name:?}: cannot bind {protocol} {addr}: {source}")]
pub(crate) struct BindError {
    pub name: String,
    pub protocol: &'static str,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

enum Socket {
    /// One or more (`sockets`, bound with `SO_REUSEPORT`).
    Udp(Vec<UdpSocket>),
    /// TCP, and TLS when the config carries a TLS setting.
    Tcp(TcpListener),
    /// A Kafka consumer, made when it starts serving.
    Kafka,
}

/// A listener bound to its address, not yet serving.
pub(crate) struct BoundListener {
    pub(crate) config: ListenerConfig,
    socket: Socket,
    pub(crate) local_addr: SocketAddr,
}

impl BoundListener {
    pub(crate) async fn bind(config: &ListenerConfig) -> Result<BoundListener, BindError> {
        let err = |source| BindError {
            name: config.name.clone(),
            protocol: protocol_name(config.protocol),
            addr: config.listen,
            source,
        };
        let socket = match config.protocol {
            ListenerProtocol::Udp => {
                let mut sockets = Vec::with_capacity(config.sockets);
                // The first socket takes the configured address (port 0: a
                // free one); the others join it on the port it got.
                let mut addr = config.listen;
                for _ in 0..config.sockets.max(1) {
                    let socket = if config.sockets > 1 {
                        udp::bind_reuse_port(addr)
                    } else {
                        UdpSocket::bind(addr).await
                    }
                    .map_err(err)?;
                    addr = socket.local_addr().map_err(err)?;
                    let buffer =
                        udp::configure(&socket, config.receive_buffer_bytes).map_err(err)?;
                    if let (true, Some(asked)) = (sockets.is_empty(), config.receive_buffer_bytes) {
                        if buffer.forced {
                            tracing::info!(listener = %config.name, asked, granted = buffer.granted, "receive_buffer_bytes is over net.core.rmem_max: set with SO_RCVBUFFORCE");
                        } else if buffer.granted < asked {
                            // Linux doubles the request and caps it at net.core.rmem_max.
                            tracing::warn!(listener = %config.name, asked, granted = buffer.granted, "receive_buffer_bytes capped by the kernel: raise net.core.rmem_max (or run with CAP_NET_ADMIN)");
                        }
                    }
                    sockets.push(socket);
                }
                Socket::Udp(sockets)
            }
            ListenerProtocol::Tcp | ListenerProtocol::Tls => {
                Socket::Tcp(tcp::bind(config).map_err(err)?)
            }
            ListenerProtocol::Kafka => {
                kafka::check(config).map_err(|e| err(std::io::Error::other(e)))?;
                Socket::Kafka
            }
        };
        let local_addr = match &socket {
            Socket::Udp(s) => s.first().map_or(Ok(config.listen), UdpSocket::local_addr),
            Socket::Tcp(s) => s.local_addr(),
            Socket::Kafka => Ok(config.listen),
        }
        .map_err(err)?;
        Ok(BoundListener {
            config: config.clone(),
            socket,
            local_addr,
        })
    }

    /// Serve until `shutdown`; connection tasks go on `tracker`.
    pub(crate) async fn serve(
        self,
        pipeline: Arc<PipelineHandle>,
        metrics: ListenerMetrics,
        kafka: Option<(KafkaSourceMetrics, Degraded)>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        match self.socket {
            Socket::Kafka => {
                let (kafka_metrics, degraded) = kafka.unwrap_or_default();
                kafka::serve_kafka(
                    self.config,
                    pipeline,
                    metrics,
                    kafka_metrics,
                    degraded,
                    shutdown,
                )
                .await
            }
            Socket::Udp(sockets) => {
                // Each socket its own task and reader: the kernel keeps a
                // sender on one socket, so multi-datagram messages still
                // meet in one joiner.
                if let Some(first) = sockets.first() {
                    if let Ok(n) = socket2::SockRef::from(first).recv_buffer_size() {
                        metrics
                            .receive_buffer_bytes
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
                let mut tasks = tokio::task::JoinSet::new();
                for socket in sockets {
                    tasks.spawn(udp::serve_udp(
                        socket,
                        self.config.clone(),
                        pipeline.clone(),
                        metrics.clone(),
                        shutdown.clone(),
                    ));
                }
                while tasks.join_next().await.is_some() {}
            }
            Socket::Tcp(listener) => {
                tcp::serve_tcp(listener, self.config, pipeline, metrics, shutdown, tracker).await
            }
        }
    }
}

pub(crate) fn protocol_name(p: ListenerProtocol) -> &'static str {
    match p {
        ListenerProtocol::Udp => "udp",
        ListenerProtocol::Tcp => "tcp",
        ListenerProtocol::Tls => "tls",
        ListenerProtocol::Kafka => "kafka",
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}
