//! TCP (and TLS) connections: the accept loop with its connection limits,
//! and one task per connection that reads, frames and hands frames on.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::tls::handshake;
use super::{DRAIN_IDLE, READ_CHUNK, UNDELIMITED_PAUSE, sleep_until_some};
use crate::config::ListenerConfig;
use crate::framing::{FrameItem, SyslogFramer};
use crate::ingest::{PipelineHandle, Reader, StagingPool, now_nanos};
use crate::log_limit::LogLimiter;
use crate::telemetry::ListenerMetrics;

/// A listening socket on the listener's address with its `listen_backlog`
/// (tokio's `TcpListener::bind` fixes it at 128: a burst of 400 senders
/// connecting at once hung in `connect`, the kernel dropping their SYNs).
/// Linux caps the backlog at `net.core.somaxconn`; a capped one is logged.
pub(super) fn bind(config: &ListenerConfig) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = config.listen;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's bind: a restarted sluice rebinds its port at once.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(config.listen_backlog).unwrap_or(i32::MAX))?;
    if let Some(max) = somaxconn() {
        if max < config.listen_backlog {
            tracing::warn!(listener = %config.name, listen_backlog = config.listen_backlog, somaxconn = max, "listen_backlog capped by the kernel: raise net.core.somaxconn");
        }
    }
    TcpListener::from_std(socket.into())
}

/// The kernel's cap on listening backlogs, when it can be read.
fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Bytes a listener's TLS connections read into, all together, when many
/// are open: up to [`READ_CHUNK`] each while at most 96 are, and an equal
/// share of this when more are (at least [`MIN_READ`]). A TLS connection
/// waits for bytes with its buffer; a plain one waits without and reads
/// up to [`READ_CHUNK`] under its turn ([`read_turn`]). Between reads a
/// connection of many keeps none ([`keeps_buffers`]). At 1,000
/// connections 64 KiB buffers kept by each (and no turns) peaked at
/// 338 MiB of RSS.
const READ_BUDGET: usize = 6 * 1024 * 1024;
/// Smallest read size, however many connections are open.
const MIN_READ: usize = 4 * 1024;

/// The most a TLS connection of `open` reads at once.
fn read_size(open: usize) -> usize {
    (READ_BUDGET / open.max(1)).clamp(MIN_READ, READ_CHUNK)
}

/// Connections of a listener that hand frames on at once: one per CPU
/// (at least 2); the others wait their turn, in order, with what they
/// read. A reader whose route queue is full (`block`) waits holding the
/// records of its read: without a bound a thousand connections did so at
/// once (hundreds of MiB), and each batch a sink took woke all of them to
/// compete for its room. While these wait on a full queue, the listener's
/// other connections are not read either (TCP backpressure, as for them).
fn readers_at_once() -> usize {
    static AT_ONCE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *AT_ONCE.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
}

/// Whether a connection keeps its read buffer and staging lists between
/// reads, with `open` connections open: only while no more are open than
/// read at once ([`readers_at_once`]), all of them reading. Beyond that a
/// connection waits for its turn as often as it reads, and what it kept
/// waited with it: a read buffer grown past [`READ_CHUNK`] by the frames
/// left in it and the staging lists sized for its largest read (at 64
/// connections most of the peak RSS over one connection's; figures under
/// *Performance* in README.md).
fn keeps_buffers(open: usize) -> bool {
    open <= readers_at_once()
}

pub(super) async fn serve_tcp(
    listener: TcpListener,
    config: ListenerConfig,
    pipeline: Arc<PipelineHandle>,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let turns = Arc::new(Semaphore::new(readers_at_once()));
    let staging = Arc::new(StagingPool::new(readers_at_once()));
    let peers = config.max_connections_per_peer.map(PeerSlots::new);
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            biased;
            // Connections the kernel completed before the drain began hold
            // frames sent before SIGTERM: take them from the backlog (they
            // are read like the open ones), then stop accepting.
            _ = shutdown.cancelled() => match from_backlog(&listener) {
                Some(a) => Ok(a),
                None => break,
            },
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
        let (open, turns, staging) = (permits.clone(), turns.clone(), staging.clone());
        // One span per connection: what is logged while serving it
        // (handshake, timeouts, read errors) carries listener and peer.
        let span = tracing::info_span!("connection", listener = %config.name, %peer);
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut peer_slot = peer_slot;
            // One reader for both: a TLS stream once its handshake is done.
            let stream = match &config.tls {
                None => Some(Either::Left(stream)),
                Some(tls) => match handshake(stream, tls, &shutdown).await {
                    Ok(stream) => Some(Either::Right(stream)),
                    Err(failure) => {
                        metrics.tls_handshakes_failed[failure.index()].inc();
                        tracing::debug!(listener = %config.name, %peer, reason = failure.as_str(), "TLS handshake failed: closing");
                        None
                    }
                },
            };
            if let Some(stream) = stream {
                connection(
                    stream,
                    peer,
                    &config,
                    (&pipeline, &metrics),
                    (&shutdown, &open, &turns),
                    &staging,
                    &mut peer_slot,
                )
                .await;
            }
            metrics.connections_open.dec();
            drop(peer_slot);
            drop(permit);
        }.instrument(span));
    }
}

/// One connection still waiting in the listening socket's backlog, without
/// waiting for one: `None` once the backlog is empty (or on any error —
/// the listener is closing).
fn from_backlog(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    let (socket, addr) = socket2::SockRef::from(listener).accept().ok()?;
    let peer = addr.as_socket()?;
    let stream = std::net::TcpStream::from(socket);
    stream.set_nonblocking(true).ok()?;
    Some((TcpStream::from_std(stream).ok()?, peer))
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

/// Read what `stream` has, at most `max` bytes, onto the end of `buf`.
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<usize> {
    stream.read_buf(&mut (&mut *buf).limit(max)).await
}

/// A connection's stream as [`connection`] reads it: a plain TCP stream can
/// be waited on without a buffer, a TLS one cannot.
trait Plain {
    fn plain(&self) -> Option<&TcpStream>;
}

impl<T> Plain for Either<TcpStream, T> {
    fn plain(&self) -> Option<&TcpStream> {
        match self {
            Either::Left(tcp) => Some(tcp),
            Either::Right(_) => None,
        }
    }
}

/// Wait for bytes and read them, with the listener's turn held for the
/// read's frames (see [`readers_at_once`]). A plain TCP connection waits
/// for readiness without a buffer, then for its turn, then reads up to
/// [`READ_CHUNK`]: only connections whose turn it is hold a full read
/// buffer (unless it `keep`s its buffers, see [`keeps_buffers`], one whose
/// read finds nothing gives it back before it waits again), so a thousand connections read as much at
/// once as one does (with a read of [`read_size`] each, reads at 1,000
/// connections were 6 KiB and nine times as many). A TLS connection reads
/// up to `want`, then waits for its turn after the select. Cancel-safe:
/// nothing is read before the last await.
async fn read_turn<'t, S: AsyncRead + Unpin + Plain>(
    stream: &mut S,
    buf: &mut BytesMut,
    (want, keep): (usize, bool),
    turns: &'t Semaphore,
) -> (std::io::Result<usize>, Option<SemaphorePermit<'t>>) {
    let Some(tcp) = stream.plain() else {
        buf.reserve(want);
        return (read_some(stream, buf, want).await, None);
    };
    loop {
        if let Err(e) = tcp.readable().await {
            return (Err(e), None);
        }
        // Never closed, so never an error.
        let turn = turns.acquire().await.ok();
        buf.reserve(READ_CHUNK);
        let asked = buf.capacity() - buf.len();
        let mut took = None;
        // As tokio's own `read` does on Linux: a read shorter than asked
        // took every byte the socket held, so its readiness is cleared
        // (`try_io` clears it when told WouldBlock; a byte that arrived
        // since sets it again) and the next wait sleeps until new bytes
        // arrive. `try_read_buf` alone leaves it set: the next wait woke
        // at once, took a turn and read nothing.
        let read = tcp.try_io(Interest::READABLE, || {
            let n = tcp.try_read_buf(buf)?;
            took = Some(n);
            if 0 < n && n < asked {
                Err(std::io::ErrorKind::WouldBlock.into())
            } else {
                Ok(n)
            }
        });
        match (read, took) {
            (_, Some(n)) => return (Ok(n), turn),
            // Readiness was stale all the same (a wake-up without bytes).
            // With many connections open the buffer just reserved goes
            // back before the wait, as after a read: each otherwise waited
            // out its sender's pauses holding 64 KiB, and at the start of a
            // run of 1,000 connections, whose first reads were short, all
            // at once (60 MiB of live heap).
            (Err(e), None) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !keep {
                    keep_partial(buf);
                }
            }
            (r, None) => return (r, turn),
        }
    }
}

/// Serve one connection. `peer_slot` (its `max_connections_per_peer`
/// slot) is given back as soon as the peer closes, before the last frames
/// are handed on. `permits`: the listener's connection permits, whose use
/// says how many connections are open (see [`read_size`]); `turns`: see
/// [`readers_at_once`]; `staging`: the staging lists connections that do
/// not keep theirs ([`keeps_buffers`]) pass on to the next that reads.
async fn connection<S: AsyncRead + Unpin + Plain>(
    mut stream: S,
    peer: SocketAddr,
    config: &ListenerConfig,
    (pipeline, metrics): (&PipelineHandle, &ListenerMetrics),
    (shutdown, permits, turns): (&CancellationToken, &Semaphore, &Semaphore),
    staging: &StagingPool,
    peer_slot: &mut Option<PeerSlot>,
) {
    let mut reader = Reader::new(pipeline, config, metrics, true);
    let mut framer = SyslogFramer::new(config.max_frame_bytes, config.framing);
    let mut buf = BytesMut::new();
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
        let open = open_connections(config, permits);
        let (want, keep) = (read_size(open), keeps_buffers(open));
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
        let (read, turn) = tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                continue;
            }
            // Bytes already sent come before the timers (see serve_udp).
            r = tokio::time::timeout_at(idle_deadline, read_turn(&mut stream, &mut buf, (want, keep), turns)) => match r {
                Err(_elapsed) => (Read::Idle, None),
                Ok((Ok(0), turn)) => (Read::Eof, turn),
                Ok((Ok(n), turn)) => (Read::Bytes(n), turn),
                Ok((Err(e), turn)) => (Read::Failed(e), turn),
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
            _ = sleep_until_some(frame_deadline), if frame_deadline.is_some() => (Read::FrameTimeout, None),
        };
        let eof = ends_stream(read, draining, peer, config, metrics);
        if eof {
            // The peer is done (or dropped): its slot is free now, not
            // after what it sent is handed on.
            drop(peer_slot.take());
        }
        // Never closed, so never an error.
        let turn = if turn.is_some() {
            turn
        } else {
            turns.acquire().await.ok()
        };
        reader.reuse_staging(staging);
        let completed = hand_on(
            &mut framer,
            &mut buf,
            eof,
            peer,
            config,
            metrics,
            &mut reader,
        )
        .await;
        reader.end_of_batch().await;
        drop(turn);
        // Counted again: `keep` was taken before the wait, and a connection
        // that began while its listener's first connections were opening
        // would keep a full buffer (and staging) through its next wait.
        if !keeps_buffers(open_connections(config, permits)) {
            keep_partial(&mut buf);
            reader.release_staging(staging);
        }
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
        count_framer_stats(&mut framer, metrics);
        if eof {
            break;
        }
    }
    reader.close().await;
}

/// Connections of the listener open now (its permits in use).
fn open_connections(config: &ListenerConfig, permits: &Semaphore) -> usize {
    config
        .max_connections
        .saturating_sub(permits.available_permits())
}

/// With more connections open than keep their buffers ([`keeps_buffers`]),
/// the read's buffer goes back and the connection keeps
/// only what is left of a frame, copied: the buffer's spare capacity does
/// not say how large an allocation it holds (after the frames are split
/// off it is a tail of the 64 KiB read; keeping it, 1,000 connections
/// peaked at 243 MiB of RSS). The reader's staging lists go to the
/// listener's pool ([`Reader::release_staging`]).
fn keep_partial(buf: &mut BytesMut) {
    *buf = if buf.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&buf[..])
    };
}

/// Count how a wait for bytes ended; `true` when the connection is done
/// reading (end of stream, idle, frame timeout or a read error).
fn ends_stream(
    read: Read,
    draining: bool,
    peer: SocketAddr,
    config: &ListenerConfig,
    metrics: &ListenerMetrics,
) -> bool {
    match read {
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
    }
}

/// Hand every frame complete in `buf` to the reader (at end of stream,
/// the rest as well); oversized and truncated frames are counted.
/// `true` when at least one frame ended.
async fn hand_on(
    framer: &mut SyslogFramer,
    buf: &mut BytesMut,
    eof: bool,
    peer: SocketAddr,
    config: &ListenerConfig,
    metrics: &ListenerMetrics,
    reader: &mut Reader<'_>,
) -> bool {
    let received = now_nanos();
    let mut completed = false;
    loop {
        // The common frame without the decoder's item and result (the
        // path `decode` and `decode_eof` take first themselves).
        if let Some(frame) = framer.common_frame(buf) {
            completed = true;
            if reader.take_frame(frame, Some(peer), received) {
                reader.push().await;
            }
            continue;
        }
        let item = if eof {
            framer.decode_eof(buf)
        } else {
            framer.decode(buf)
        };
        // The framer never fails on input; an Err is not expected, but it
        // would only end this connection.
        let Ok(Some(item)) = item else { break };
        completed = true;
        match item {
            FrameItem::Frame(frame) => {
                // No future per frame (see `Reader::take_frame`).
                if reader.take_frame(frame, Some(peer), received) {
                    reader.push().await;
                }
            }
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
    completed
}

/// Add the framer's fallback and split counts to the listener's metrics.
fn count_framer_stats(framer: &mut SyslogFramer, metrics: &ListenerMetrics) {
    let stats = framer.take_stats();
    metrics.octet_count_fallbacks.inc_by(stats.octet_fallbacks);
    metrics.bad_octet_counts.inc_by(stats.bad_octet_counts);
    metrics
        .count_over_max_fallbacks
        .inc_by(stats.count_over_max);
    metrics.undelimited_splits.inc_by(stats.undelimited_splits);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A client and the server side of its connection, as a plain stream.
    async fn connected() -> (TcpStream, Either<TcpStream, TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, Either::Left(server))
    }

    /// A connection of many that read all its socket held goes back to
    /// waiting for bytes with no more than the partial frame it kept: no
    /// read buffer reserved for a read that found nothing (at 1,000
    /// connections, that was a 64 KiB allocation each, 60 MiB in all).
    #[tokio::test]
    async fn a_connection_waiting_for_bytes_holds_no_read_buffer() {
        let (mut client, mut stream) = connected().await;
        let turns = Semaphore::new(1);
        let sent = b"<14>1 - h app - - - one\n<14>1 - h app - - - tw";
        client.write_all(sent).await.unwrap();
        let mut buf = BytesMut::new();
        let mut read = 0;
        while read < sent.len() {
            let (n, turn) = read_turn(&mut stream, &mut buf, (MIN_READ, false), &turns).await;
            read += n.unwrap();
            drop(turn);
        }
        // What `connection` does with many connections open: the whole
        // frame is handed on, the partial one kept.
        drop(buf.split_to(24));
        keep_partial(&mut buf);
        assert_eq!(&buf[..], b"<14>1 - h app - - - tw");
        let waited = tokio::time::timeout(
            Duration::from_millis(100),
            read_turn(&mut stream, &mut buf, (MIN_READ, false), &turns),
        )
        .await;
        assert!(waited.is_err(), "nothing more was sent");
        assert!(
            buf.capacity() < 1024,
            "waiting with a buffer of {} bytes",
            buf.capacity()
        );
        assert_eq!(&buf[..], b"<14>1 - h app - - - tw");
    }

    /// Only while no more connections are open than read at once do they
    /// keep their read buffers and staging lists between reads: at 64
    /// (one of #25's scenarios), where every read's 64 KiB buffer is full
    /// size, each waited for its turn with its buffer and lists.
    #[test]
    fn connections_beyond_those_read_at_once_keep_no_buffers_between_reads() {
        let at_once = readers_at_once();
        assert!(keeps_buffers(1) && keeps_buffers(at_once));
        assert!(!keeps_buffers(at_once + 1));
        assert_eq!(read_size(64), READ_CHUNK, "a full read each");
        assert!(!keeps_buffers(64));
        assert!(!keeps_buffers(1000));
    }

    /// A read that takes less than it asked for took every byte the
    /// socket held: the connection's next wait sleeps until more bytes
    /// arrive, rather than waking at once to take its turn, reserve a
    /// buffer and read nothing (as after every such read before).
    #[tokio::test]
    async fn a_read_that_takes_every_byte_waits_for_new_ones() {
        let (mut client, mut stream) = connected().await;
        let turns = Semaphore::new(1);
        let sent = b"<14>1 - h app - - - one\n";
        client.write_all(sent).await.unwrap();
        let mut buf = BytesMut::new();
        while buf.len() < sent.len() {
            let (n, turn) = read_turn(&mut stream, &mut buf, (READ_CHUNK, true), &turns).await;
            assert!(n.unwrap() > 0);
            drop(turn);
        }
        let tcp = stream.plain().unwrap();
        let woke = tokio::time::timeout(Duration::from_millis(100), tcp.readable()).await;
        assert!(woke.is_err(), "readable with nothing to read");
        client
            .write_all(b"<14>1 - h app - - - two\n")
            .await
            .unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(10), tcp.readable()).await;
        assert!(woke.is_ok(), "not readable once new bytes arrived");
    }
}
