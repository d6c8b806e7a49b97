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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::framing::{FrameItem, SyslogFramer};
use crate::log_limit::LogLimiter;
use crate::pipeline::{PipelineHandle, Reader, now_nanos};
use crate::telemetry::ListenerMetrics;
use crate::tls::{HandshakeFailure, ListenerTls, TLS_HANDSHAKE_RECORD};
use crate::udp_receive::{self, BatchReceiver};

/// How long a stream without delimiters may pause before its last message
/// is taken as complete.
pub const UNDELIMITED_PAUSE: Duration = Duration::from_millis(100);
/// How long a closing connection waits for more bytes already sent.
pub const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Read size for TCP.
const READ_CHUNK: usize = 64 * 1024;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, thiserror::Error)]
#[error("listener {name:?}: cannot bind {protocol} {addr}: {source}")]
pub struct BindError {
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
}

/// A listener bound to its address, not yet serving.
pub struct BoundListener {
    pub config: ListenerConfig,
    socket: Socket,
    pub local_addr: SocketAddr,
}

impl BoundListener {
    pub async fn bind(config: &ListenerConfig) -> Result<BoundListener, BindError> {
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
                        udp_receive::bind_reuse_port(addr)
                    } else {
                        UdpSocket::bind(addr).await
                    }
                    .map_err(err)?;
                    addr = socket.local_addr().map_err(err)?;
                    let buffer = udp_receive::configure(&socket, config.receive_buffer_bytes)
                        .map_err(err)?;
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
                Socket::Tcp(TcpListener::bind(config.listen).await.map_err(err)?)
            }
        };
        let local_addr = match &socket {
            Socket::Udp(s) => s.first().map_or(Ok(config.listen), UdpSocket::local_addr),
            Socket::Tcp(s) => s.local_addr(),
        }
        .map_err(err)?;
        Ok(BoundListener {
            config: config.clone(),
            socket,
            local_addr,
        })
    }

    /// Serve until `shutdown`; connection tasks go on `tracker`.
    pub async fn serve(
        self,
        pipeline: Arc<PipelineHandle>,
        metrics: ListenerMetrics,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        match self.socket {
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
                    tasks.spawn(serve_udp(
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
                serve_tcp(listener, self.config, pipeline, metrics, shutdown, tracker).await
            }
        }
    }
}

pub fn protocol_name(p: ListenerProtocol) -> &'static str {
    match p {
        ListenerProtocol::Udp => "udp",
        ListenerProtocol::Tcp => "tcp",
        ListenerProtocol::Tls => "tls",
    }
}

async fn serve_udp(
    socket: UdpSocket,
    config: ListenerConfig,
    pipeline: Arc<PipelineHandle>,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
) {
    let mut reader = Reader::new(&pipeline, &config, &metrics, false);
    // One byte more than a frame may hold, so an oversized datagram shows.
    let mut batch = BatchReceiver::new((config.max_frame_bytes + 1).min(MAX_DATAGRAM));
    loop {
        let deadline = reader.deadline();
        // Datagrams already received come before the joiner's timer: one may
        // continue an event whose window passed while this task waited.
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = socket.async_io(Interest::READABLE, || batch.receive(&socket)) => r,
            _ = sleep_until_some(deadline), if deadline.is_some() => {
                reader.expire().await;
                continue;
            }
        };
        match received {
            Ok((n, dropped)) => {
                metrics.kernel_drops.inc_by(dropped);
                udp_batch(&batch, n, &config, &metrics, &mut reader).await;
                reader.end_of_batch().await;
            }
            Err(e) => {
                metrics.read_errors.inc();
                static LOG: LogLimiter = LogLimiter::new(10_000);
                if let Some(suppressed) = LOG.allow() {
                    tracing::warn!(listener = %config.name, error = %e, suppressed, "udp receive failed");
                }
            }
        }
    }
    // Take what the kernel already holds before closing.
    while let Ok((n, dropped)) = batch.receive(&socket) {
        metrics.kernel_drops.inc_by(dropped);
        udp_batch(&batch, n, &config, &metrics, &mut reader).await;
    }
    reader.close().await;
}

/// Hand the `n` datagrams of a batch to the reader; oversized ones are
/// skipped and counted.
async fn udp_batch(
    batch: &BatchReceiver,
    n: usize,
    config: &ListenerConfig,
    metrics: &ListenerMetrics,
    reader: &mut Reader<'_>,
) {
    let received = now_nanos();
    for i in 0..n {
        let (bytes, peer, truncated) = batch.datagram(i);
        if let (Some(allow), Some(p)) = (&config.allow, peer) {
            if !allow.allows(p.ip()) {
                metrics.denied_frames.inc();
                continue;
            }
        }
        metrics.bytes.inc_by(bytes.len() as u64);
        if truncated || bytes.len() > config.max_frame_bytes {
            metrics.oversized_frames.inc();
            static LOG: LogLimiter = LogLimiter::new(10_000);
            if let Some(suppressed) = LOG.allow() {
                tracing::info!(listener = %config.name, peer = %peer.map_or_else(String::new, |p| p.to_string()), max_frame_bytes = config.max_frame_bytes, suppressed, "oversized datagram dropped (counted in sluice_listener_oversized_frames_total)");
            }
            continue;
        }
        reader
            .frame(Bytes::copy_from_slice(bytes), peer, received)
            .await;
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

async fn serve_tcp(
    listener: TcpListener,
    config: ListenerConfig,
    pipeline: Arc<PipelineHandle>,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let peers = config.max_connections_per_peer.map(PeerSlots::new);
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                metrics.accept_errors.inc();
                static LOG: LogLimiter = LogLimiter::new(10_000);
                if let Some(suppressed) = LOG.allow() {
                    tracing::warn!(listener = %config.name, error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Some(allow) = &config.allow {
            if !allow.allows(peer.ip()) {
                metrics.connections_denied.inc();
                tracing::debug!(listener = %config.name, %peer, "connection refused: source not in allow");
                drop(stream);
                continue;
            }
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.connections_rejected.inc();
            static LOG: LogLimiter = LogLimiter::new(10_000);
            if let Some(suppressed) = LOG.allow() {
                tracing::warn!(listener = %config.name, %peer, max = config.max_connections, suppressed, "connection refused: max_connections reached");
            }
            drop(stream);
            continue;
        };
        let peer_slot = match &peers {
            None => None,
            Some(peers) => match peers.take(peer.ip(), &stream) {
                Some(slot) => Some(slot),
                None => {
                    metrics.connections_rejected_per_peer.inc();
                    static LOG: LogLimiter = LogLimiter::new(10_000);
                    if let Some(suppressed) = LOG.allow() {
                        tracing::warn!(listener = %config.name, %peer, max = peers.max, suppressed, "connection refused: max_connections_per_peer reached");
                    }
                    drop(stream);
                    continue;
                }
            },
        };
        metrics.connections_accepted.inc();
        metrics.connections_open.inc();
        let (config, pipeline, metrics, shutdown) = (
            config.clone(),
            pipeline.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut peer_slot = peer_slot;
            match &config.tls {
                None => {
                    connection(
                        stream,
                        peer,
                        &config,
                        (&pipeline, &metrics),
                        &shutdown,
                        &mut peer_slot,
                    )
                    .await
                }
                Some(tls) => match handshake(stream, tls, &shutdown).await {
                    Ok(stream) => {
                        connection(
                            stream,
                            peer,
                            &config,
                            (&pipeline, &metrics),
                            &shutdown,
                            &mut peer_slot,
                        )
                        .await
                    }
                    Err(failure) => {
                        metrics.tls_handshakes_failed[failure.index()].inc();
                        tracing::debug!(listener = %config.name, %peer, reason = failure.as_str(), "TLS handshake failed: closing");
                    }
                },
            }
            metrics.connections_open.dec();
            drop(peer_slot);
            drop(permit);
        });
    }
}

type HeldSockets = Arc<Mutex<HashMap<IpAddr, Vec<HeldSocket>>>>;

/// Connections held per source address, for `max_connections_per_peer`.
/// Taken after the listener's permit, so it holds at most
/// `max_connections` sockets.
///
/// A connection's slot is given back when its reader sees the peer close,
/// but the accept loop can run ahead of the connection tasks (a sender
/// that connects, writes and closes in a loop has only one connection
/// open, yet several may wait for their task to read the close). So a
/// peer at its limit has its held sockets looked at before it is refused:
/// those the peer already closed (`POLLRDHUP`) do not count.
struct PeerSlots {
    max: usize,
    next_id: std::sync::atomic::AtomicU64,
    held: HeldSockets,
}

/// One connection of a peer: its socket as the kernel knows it (fd and
/// sockfs inode, so a closed fd reused by another file is never mistaken
/// for it).
struct HeldSocket {
    id: u64,
    fd: std::os::fd::RawFd,
    inode: u64,
}

impl HeldSocket {
    /// Still the same socket, and its peer has not closed it.
    fn peer_open(&self) -> bool {
        socket_inode(self.fd) == Some(self.inode) && !peer_closed(self.fd)
    }
}

/// The inode of the file `fd` refers to.
fn socket_inode(fd: std::os::fd::RawFd) -> Option<u64> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a `stat` into the buffer it is given and only
    // reads `fd`; an fd that is not open is an error (EBADF), not UB.
    let rc = unsafe { libc::fstat(fd, stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: fstat returned 0, so it filled the buffer.
    let stat = unsafe { stat.assume_init() };
    Some(stat.st_ino)
}

/// Has the peer of socket `fd` closed (or reset) its side? Unread data
/// does not hide it: `POLLRDHUP` is set once the peer's FIN arrived.
fn peer_closed(fd: std::os::fd::RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, timeout 0: poll returns at once.
    let rc = unsafe { libc::poll(&mut poll, 1, 0) };
    rc > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

impl PeerSlots {
    fn new(max: usize) -> PeerSlots {
        PeerSlots {
            max,
            next_id: std::sync::atomic::AtomicU64::new(0),
            held: Arc::default(),
        }
    }

    /// A slot for `stream` of `ip`, or `None` when `ip` holds `max` open
    /// connections already.
    fn take(&self, ip: IpAddr, stream: &TcpStream) -> Option<PeerSlot> {
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        let inode = socket_inode(fd)?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let sockets = held.entry(ip).or_default();
        if sockets.len() >= self.max {
            // Bounded by `max`.
            sockets.retain(HeldSocket::peer_open);
        }
        if sockets.len() >= self.max {
            return None;
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        sockets.push(HeldSocket { id, fd, inode });
        Some(PeerSlot {
            ip,
            id,
            held: self.held.clone(),
        })
    }
}

/// One connection's slot of its peer; given back on drop.
struct PeerSlot {
    ip: IpAddr,
    id: u64,
    held: HeldSockets,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sockets) = held.get_mut(&self.ip) {
            sockets.retain(|s| s.id != self.id);
            if sockets.is_empty() {
                held.remove(&self.ip);
            }
        }
    }
}

/// The server side of a TLS handshake, bounded by the listener's timeout
/// and by shutdown. Plain text on the TLS port is recognised by its first
/// byte (not a TLS handshake record) and refused without a TLS alert.
async fn handshake(
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
            Err(e) => return Err(HandshakeFailure::classify(&e)),
        }
        acceptor
            .accept(stream)
            .await
            .map_err(|e| HandshakeFailure::classify(&e))
    };
    tokio::select! {
        r = tokio::time::timeout(tls.handshake_timeout, attempt) => {
            r.unwrap_or(Err(HandshakeFailure::Timeout))
        }
        _ = shutdown.cancelled() => Err(HandshakeFailure::Closed),
    }
}

/// Serve one connection. `peer_slot` (its `max_connections_per_peer`
/// slot) is given back as soon as the peer closes, before the last frames
/// are handed on.
async fn connection<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    config: &ListenerConfig,
    (pipeline, metrics): (&PipelineHandle, &ListenerMetrics),
    shutdown: &CancellationToken,
    peer_slot: &mut Option<PeerSlot>,
) {
    let mut reader = Reader::new(pipeline, config, metrics, true);
    let mut framer = SyslogFramer::new(config.max_frame_bytes, config.framing);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut draining = shutdown.is_cancelled();
    // When the first byte of the frame in progress arrived (moved on by
    // time this connection spent waiting on the pipeline, which is not the
    // sender's doing); `None` between frames.
    let mut frame_started: Option<Instant> = None;
    // When the last frame ended (or the connection opened): the idle
    // timeout runs from here, so bytes that carry no frame (blank lines)
    // do not keep a connection open.
    let mut last_frame = Instant::now();
    loop {
        buf.reserve(READ_CHUNK);
        let deadline = reader.deadline();
        // A stream without delimiters (log4j2 newLine=false) holds its last
        // message until the next one starts: emit it once the sender pauses.
        let undelimited = framer.holds_undelimited_frame(&buf);
        let frame_deadline = frame_started.map(|t| t + config.frame_timeout);
        let idle_deadline = if draining {
            Instant::now() + DRAIN_IDLE
        } else {
            last_frame + config.idle_timeout
        };
        let read = tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                continue;
            }
            // Bytes already sent come before the timers (see serve_udp).
            r = tokio::time::timeout_at(idle_deadline, stream.read_buf(&mut buf)) => match r {
                Err(_elapsed) => Read::Idle,
                Ok(Ok(0)) => Read::Eof,
                Ok(Ok(n)) => Read::Bytes(n),
                Ok(Err(e)) => Read::Failed(e),
            },
            _ = sleep_until_some(deadline), if deadline.is_some() => {
                let waited = Instant::now();
                reader.expire().await;
                if let Some(t) = &mut frame_started {
                    *t += waited.elapsed();
                }
                last_frame += waited.elapsed();
                continue;
            }
            _ = tokio::time::sleep(UNDELIMITED_PAUSE), if undelimited => {
                if let Some(FrameItem::Frame(frame)) = framer.flush_undelimited(&mut buf) {
                    reader.frame(frame, Some(peer), now_nanos()).await;
                    reader.end_of_batch().await;
                    last_frame = Instant::now();
                }
                if !framer.mid_frame(&buf) {
                    frame_started = None;
                }
                continue;
            }
            _ = sleep_until_some(frame_deadline), if frame_deadline.is_some() => Read::FrameTimeout,
        };
        let eof = match read {
            Read::Idle => {
                if !draining {
                    metrics.idle_timeouts.inc();
                    tracing::debug!(listener = %config.name, %peer, "idle timeout: closing");
                }
                true
            }
            Read::FrameTimeout => {
                // What the frame holds so far is taken as at end of stream.
                metrics.frame_timeouts.inc();
                static LOG: LogLimiter = LogLimiter::new(10_000);
                if let Some(suppressed) = LOG.allow() {
                    tracing::warn!(listener = %config.name, %peer, frame_timeout_secs = config.frame_timeout.as_secs(), suppressed, "frame not complete within frame_timeout_secs: closing");
                }
                true
            }
            Read::Eof => true,
            Read::Bytes(n) => {
                metrics.bytes.inc_by(n as u64);
                false
            }
            Read::Failed(e) => {
                metrics.read_errors.inc();
                tracing::debug!(listener = %config.name, %peer, error = %e, "read failed: closing");
                true
            }
        };
        if eof {
            // The peer is done (or dropped): its slot is free now, not
            // after what it sent is handed on.
            drop(peer_slot.take());
        }
        let received = now_nanos();
        let mut completed = false;
        loop {
            let item = if eof {
                framer.decode_eof(&mut buf)
            } else {
                framer.decode(&mut buf)
            };
            // The framer never fails on input; an Err is not expected, but it
            // would only end this connection.
            let Ok(Some(item)) = item else { break };
            completed = true;
            match item {
                FrameItem::Frame(frame) => reader.frame(frame, Some(peer), received).await,
                FrameItem::Oversized => {
                    metrics.oversized_frames.inc();
                    static LOG: LogLimiter = LogLimiter::new(10_000);
                    if let Some(suppressed) = LOG.allow() {
                        tracing::info!(listener = %config.name, %peer, max_frame_bytes = config.max_frame_bytes, suppressed, "oversized frame skipped (counted in sluice_listener_oversized_frames_total)");
                    }
                }
                FrameItem::Truncated => {
                    metrics.truncated_frames.inc();
                }
            }
        }
        reader.end_of_batch().await;
        // A frame that ended in this read: the one left in progress (if
        // any) began in it too.
        frame_started = match frame_started {
            _ if !framer.mid_frame(&buf) => None,
            Some(t) if !completed => Some(t),
            _ => Some(Instant::now()),
        };
        if completed {
            last_frame = Instant::now();
        }
        let stats = framer.take_stats();
        metrics.octet_count_fallbacks.inc_by(stats.octet_fallbacks);
        metrics.bad_octet_counts.inc_by(stats.bad_octet_counts);
        metrics
            .count_over_max_fallbacks
            .inc_by(stats.count_over_max);
        metrics.undelimited_splits.inc_by(stats.undelimited_splits);
        if eof {
            break;
        }
    }
    reader.close().await;
}

/// What a connection's wait for bytes ended with.
enum Read {
    Bytes(usize),
    Eof,
    /// No byte for `idle_timeout_secs`.
    Idle,
    /// The frame in progress was not complete within `frame_timeout_secs`.
    FrameTimeout,
    Failed(std::io::Error),
}
