//! The UDP listener: a datagram is a frame. One task per socket reads
//! batches and hands their datagrams to its reader.
//!
//! Batched UDP receive: up to [`BATCH`] datagrams per `recvmmsg(2)` call,
//! and a wake-up takes what the socket holds (up to [`DRAIN_MAX`]
//! datagrams) before it pushes what they produced into the queues: one
//! push and one wake-up of each sink per wake-up of the reader, not per
//! call. The reads go on until a call finds the socket empty, not only
//! until one returns fewer than [`BATCH`]: what arrived while a batch was
//! handed on is taken in the same wake-up (on a loaded machine, where
//! that takes long, stopping at a short batch made more and smaller
//! wake-ups).
//!
//! The datagrams a call returns are copied one after another into one
//! buffer and each frame is a slice of it ([`BatchReceiver::pack`]): no
//! allocation per datagram, and the buffer is reused once the frames of
//! earlier batches are gone (a frame still held, e.g. by the multi-line
//! joiner, keeps only its own block alive).
//!
//! Wake-ups are paced while traffic flows. An idle reader has the runtime
//! watch its socket and sleeps until a datagram arrives ([`Next::Wait`]);
//! once it has read something it stops watching and reads again after a
//! pause ([`Next::Pause`]), and watches again only when a read finds
//! nothing. While the socket is not watched, arrivals wake no thread (with
//! the socket watched throughout, the runtime's edge-triggered `epoll`
//! woke a thread for every datagram that arrived during a pause), so
//! datagrams are taken a batch at a time rather than a wake-up each, for
//! up to [`PAUSE_MAX`] more latency. The pause ([`pause`]) is as long as
//! the receive buffer holds several pauses' worth at the rate just read,
//! within [`PAUSE_MIN`]..=[`PAUSE_MAX`]: each wake-up costs the same
//! (timer, thread wake-ups, a push and a sink request per route), so
//! fewer, deeper batches cost less per datagram. Only a socket whose
//! receive buffer holds what arrives meanwhile pauses
//! ([`PAUSE_MIN_BUFFER`]).
//!
//! The kernel's count of datagrams it dropped for this socket (full receive
//! buffer) is read with `getsockopt(SO_MEMINFO)` after each wake-up's reads
//! (one call per wake-up, rather than an `SO_RXQ_OVFL` control message
//! built and parsed with every datagram); the counter is cumulative per
//! socket and [`KernelDrops`] turns it into increments.
//!
//! On Unix platforms other than Linux this falls back to one `recv_from`
//! per datagram without a drop counter.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{MAX_DATAGRAM, sleep_until_some};
use crate::config::ListenerConfig;
use crate::ingest::{PipelineHandle, Reader, now_nanos};
use crate::log_limit::LogLimiter;
use crate::telemetry::ListenerMetrics;

/// Datagrams per receive call.
pub(crate) const BATCH: usize = 64;
/// The packing buffer's block ([`BatchReceiver::pack`]): a batch's frames
/// go into the free room of the current block, and a block is given up
/// (a new one taken, or the same one reused when no frame of it is left)
/// only when a batch does not fit.
const PACK_BLOCK: usize = 16 * 1024;
/// Datagrams one wake-up takes at most before it pushes what they
/// produced (and lets other tasks run).
const DRAIN_MAX: usize = 1024;
/// The shortest and longest time the reader waits, its socket unwatched,
/// before it reads again after a wake-up that read something. The longest
/// bounds the latency pacing adds (log4j senders: #25's p50 of 5 ms).
const PAUSE_MIN: Duration = Duration::from_millis(1);
const PAUSE_MAX: Duration = Duration::from_millis(3);
/// A pause fills at most this share (1/n) of the receive buffer at the
/// rate last read: the rest is for a reader that runs late on a loaded
/// machine.
const PAUSE_FILL: u128 = 8;
/// What the kernel charges a datagram of `n` bytes is at most `2 n` plus
/// this (its `sk_buff` and the slab rounding; measured on loopback: 832
/// bytes for 64, 1,280 for 256, 2,304 for 1,024).
const DATAGRAM_OVERHEAD: u64 = 768;
/// The receive buffer a socket needs to pause: 1 MiB holds about 800
/// datagrams of 256 bytes, several [`PAUSE_MIN`]s' worth at 150 k/s.
/// Below it (the kernel's usual 208 KiB) the reader never pauses.
const PAUSE_MIN_BUFFER: usize = 1 << 20;

/// A UDP socket bound to `addr` with `SO_REUSEPORT`, so that several
/// sockets share the address and the kernel spreads datagrams over them by
/// sender (a sender's datagrams stay on one socket).
pub(crate) fn bind_reuse_port(addr: std::net::SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// What [`configure`] got from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceiveBuffer {
    /// The size read back (Linux doubles a request for its bookkeeping).
    pub(crate) granted: usize,
    /// The request was over `net.core.rmem_max` and was set anyway with
    /// `SO_RCVBUFFORCE` (the process has `CAP_NET_ADMIN`).
    pub(crate) forced: bool,
}

/// Set the socket's receive buffer and check that its drop count can be
/// read (`SO_MEMINFO`, Linux 4.12 and later).
///
/// `SO_RCVBUF` is capped at `net.core.rmem_max`; when that cap cuts the
/// request and the process may (`CAP_NET_ADMIN`, e.g. root), the request
/// is set with `SO_RCVBUFFORCE` instead, as rsyslog does. Otherwise the
/// capped size stands and the caller reports it.
pub(crate) fn configure(
    socket: &tokio::net::UdpSocket,
    receive_buffer: Option<usize>,
) -> io::Result<ReceiveBuffer> {
    let s = socket2::SockRef::from(socket);
    let mut forced = false;
    if let Some(bytes) = receive_buffer {
        s.set_recv_buffer_size(bytes)?;
        #[cfg(target_os = "linux")]
        if s.recv_buffer_size()? < bytes {
            // EPERM without CAP_NET_ADMIN: the capped size stands.
            forced = set_int_option(socket, libc::SO_RCVBUFFORCE, bytes).is_ok();
        }
    }
    #[cfg(target_os = "linux")]
    kernel_drop_count(socket)?;
    Ok(ReceiveBuffer {
        granted: s.recv_buffer_size()?,
        forced,
    })
}

/// `setsockopt(SOL_SOCKET, option, value)` for an int option.
#[cfg(target_os = "linux")]
fn set_int_option(
    socket: &impl std::os::fd::AsRawFd,
    option: libc::c_int,
    value: usize,
) -> io::Result<()> {
    let value = libc::c_int::try_from(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "socket option out of range"))?;
    // SAFETY: a valid fd, a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Buffers for one batch, reused for every call.
pub(crate) struct BatchReceiver {
    slot: usize,
    buffers: Vec<u8>,
    lengths: [usize; BATCH],
    truncated: [bool; BATCH],
    peers: [Option<SocketAddr>; BATCH],
    #[cfg(target_os = "linux")]
    addrs: Vec<libc::sockaddr_storage>,
    /// Where [`BatchReceiver::pack`] copies the datagrams it keeps.
    packed: BytesMut,
}

impl BatchReceiver {
    /// Datagrams up to `slot` bytes are received whole; longer ones are
    /// flagged truncated.
    pub(crate) fn new(slot: usize) -> BatchReceiver {
        BatchReceiver {
            slot,
            buffers: vec![0; slot * BATCH],
            lengths: [0; BATCH],
            truncated: [false; BATCH],
            peers: [None; BATCH],
            #[cfg(target_os = "linux")]
            // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            packed: BytesMut::with_capacity(PACK_BLOCK),
        }
    }

    /// The datagrams `i < n` of the last batch with `keep[i]`, copied one
    /// after another into one buffer, in order: each one's frame is the
    /// next `datagram(i).0.len()` bytes of the result (`Bytes::slice`).
    /// One copy per datagram and no allocation per datagram; the block is
    /// reused once no frame of it is left.
    pub(crate) fn pack(&mut self, n: usize, keep: &[bool; BATCH]) -> Bytes {
        let kept = || (0..n.min(BATCH)).filter(|&i| keep[i]);
        let total = kept().map(|i| self.lengths[i].min(self.slot)).sum();
        // Room left in the block: nothing. Otherwise the whole block again
        // when no frame of it is left, else a new one of PACK_BLOCK (or
        // `total`) bytes.
        self.packed.reserve(total);
        for i in kept() {
            let start = i * self.slot;
            let len = self.lengths[i].min(self.slot);
            self.packed
                .extend_from_slice(&self.buffers[start..start + len]);
        }
        self.packed.split().freeze()
    }

    /// The `i`th datagram of the last batch: bytes, peer, and whether it was
    /// longer than the slot (then the bytes are cut).
    pub(crate) fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>, bool) {
        let start = i * self.slot;
        (
            &self.buffers[start..start + self.lengths[i].min(self.slot)],
            self.peers[i],
            self.truncated[i],
        )
    }

    /// Receive what is queued, without blocking: the number of datagrams
    /// (at least 1); `WouldBlock` when none is queued.
    #[cfg(target_os = "linux")]
    pub(crate) fn receive(&mut self, socket: &std::net::UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: all-zero iovec and mmsghdr are valid values; every pointer
        // set below points into a buffer owned by `self` that outlives the
        // call, with the length given beside it.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above, an all-zero mmsghdr is a valid value.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let base = self.buffers.as_mut_ptr();
        for i in 0..BATCH {
            iovecs[i] = libc::iovec {
                // SAFETY: i * slot + slot <= buffers.len().
                iov_base: unsafe { base.add(i * self.slot) }.cast(),
                iov_len: self.slot,
            };
            let h = &mut headers[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovecs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: `headers` holds BATCH initialised mmsghdr values whose
        // pointers are valid (see above); MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in headers.iter().enumerate().take(n) {
            self.lengths[i] = h.msg_len as usize;
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.peers[i] = socket_addr(&self.addrs[i], h.msg_hdr.msg_namelen);
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn receive(&mut self, socket: &std::net::UdpSocket) -> io::Result<usize> {
        let slot = self.slot;
        let (n, peer) = socket.recv_from(&mut self.buffers[..slot])?;
        self.lengths[0] = n;
        self.truncated[0] = false;
        self.peers[0] = Some(peer);
        Ok(1)
    }
}

/// The kernel's cumulative count of datagrams it dropped for a socket
/// (`SK_MEMINFO_DROPS` of `SO_MEMINFO`: a full receive buffer, mostly).
#[cfg(target_os = "linux")]
fn kernel_drop_count(socket: &impl std::os::fd::AsRawFd) -> io::Result<u32> {
    /// `SO_MEMINFO` (asm-generic/socket.h; the libc crate has the offsets
    /// but not the option on every target).
    const SO_MEMINFO: libc::c_int = 55;
    /// `SK_MEMINFO_VARS`: the values the kernel fills.
    const VARS: usize = 9;
    let mut info = [0u32; VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid fd, a pointer to a live array and its size in `len`.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let drops = libc::SK_MEMINFO_DROPS as usize;
    if (len as usize) < (drops + 1) * std::mem::size_of::<u32>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SO_MEMINFO without a drop count",
        ));
    }
    Ok(info[drops])
}

/// Turns a socket's cumulative kernel drop count into increments.
#[derive(Default)]
pub(crate) struct KernelDrops {
    /// The count last seen.
    seen: u32,
}

impl KernelDrops {
    /// Datagrams the kernel dropped for `socket` since the last call.
    #[cfg(target_os = "linux")]
    pub(crate) fn take(&mut self, socket: &std::net::UdpSocket) -> u64 {
        match kernel_drop_count(socket) {
            Ok(count) => {
                let new = count.wrapping_sub(self.seen);
                self.seen = count;
                u64::from(new)
            }
            // Checked at bind time (`configure`); the count is read again
            // at the next wake-up.
            Err(_) => 0,
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn take(&mut self, _socket: &std::net::UdpSocket) -> u64 {
        0
    }
}

#[cfg(target_os = "linux")]
fn socket_addr(a: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match a.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let v4 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let v6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// What a reader does after a wake-up's reads.
#[derive(Clone, Copy)]
enum Next {
    /// Nothing was waiting: watch the socket and sleep until a datagram
    /// arrives.
    Wait,
    /// It stopped at [`DRAIN_MAX`]: read on after letting other tasks run.
    Now,
    /// Traffic flows: read again at this instant without watching the
    /// socket meanwhile, so arrivals wake no one.
    Pause(Instant),
}

/// The socket's descriptor, watched by the runtime only while the reader
/// waits ([`Next::Wait`]): registered then, deregistered when it pauses.
struct Watched(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for Watched {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// Serve one UDP socket until `shutdown`, then take what the kernel
/// already holds.
pub(super) async fn serve_udp(
    socket: UdpSocket,
    config: ListenerConfig,
    pipeline: Arc<PipelineHandle>,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
) {
    use std::os::fd::AsRawFd;
    use tokio::io::unix::AsyncFd;
    let buffer = socket2::SockRef::from(&socket)
        .recv_buffer_size()
        .unwrap_or(0);
    // The runtime's own registration would wake this task's thread for
    // every datagram that arrives during a pause; readiness is watched
    // through `Watched` instead.
    let socket = match socket.into_std() {
        Ok(s) => s,
        Err(e) => return receive_failed(&config, &metrics, &e),
    };
    let mut reader = Reader::new(&pipeline, &config, &metrics, false);
    // One byte more than a frame may hold, so an oversized datagram shows.
    let mut batch = BatchReceiver::new(slot(config.max_frame_bytes));
    let mut drops = KernelDrops::default();
    let mut watch: Option<AsyncFd<Watched>> = None;
    let mut next = Next::Wait;
    // Since when the datagrams of the next wake-up have been arriving.
    let mut since = Instant::now();
    loop {
        let deadline = reader.deadline();
        // Datagrams already received come before the joiner's timer: one may
        // continue an event whose window passed while this task waited.
        match next {
            Next::Now => {
                tokio::task::yield_now().await;
                if shutdown.is_cancelled() {
                    break;
                }
            }
            Next::Pause(at) => {
                watch = None;
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(at) => {}
                    _ = sleep_until_some(deadline), if deadline.is_some() => {
                        reader.expire().await;
                        continue;
                    }
                }
            }
            Next::Wait => {
                if watch.is_none() {
                    // SAFETY: `socket` owns the descriptor and outlives
                    // `watch` (declared after it, dropped before the final
                    // reads); `Watched` always returns it.
                    let registered = unsafe {
                        AsyncFd::register_with_interest(
                            Watched(socket.as_raw_fd()),
                            Interest::READABLE,
                        )
                    };
                    match registered.map_err(|e| e.into_parts().1) {
                        Ok(w) => watch = Some(w),
                        Err(e) => {
                            // Read again after a pause instead.
                            receive_failed(&config, &metrics, &e);
                            next = Next::Pause(Instant::now() + PAUSE_MIN);
                            continue;
                        }
                    }
                }
                let Some(w) = &watch else { continue };
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    ready = w.readable() => match ready {
                        // Cleared before the reads, which go on until the
                        // socket is empty: a datagram that arrives after
                        // this sets it again.
                        Ok(mut guard) => {
                            guard.clear_ready();
                            since = Instant::now();
                        }
                        Err(e) => {
                            receive_failed(&config, &metrics, &e);
                            break;
                        }
                    },
                    _ = sleep_until_some(deadline), if deadline.is_some() => {
                        reader.expire().await;
                        continue;
                    }
                }
            }
        }
        let (taken, emptied) = drain(&socket, &mut batch, &config, &metrics, &mut reader).await;
        metrics.kernel_drops.inc_by(drops.take(&socket));
        reader.end_of_batch().await;
        let now = Instant::now();
        let read = Read {
            datagrams: taken.datagrams,
            bytes: taken.bytes,
            over: now.saturating_duration_since(since),
        };
        since = now;
        next = match (emptied, taken.datagrams) {
            (false, _) => Next::Now,
            (true, 0) => Next::Wait,
            (true, _) if buffer >= PAUSE_MIN_BUFFER => Next::Pause(now + pause(buffer, read)),
            (true, _) => Next::Wait,
        };
    }
    drop(watch);
    // Take what the kernel already holds before closing.
    while let Ok(n) = batch.receive(&socket) {
        udp_batch(&mut batch, n, &config, &metrics, &mut reader).await;
    }
    metrics.kernel_drops.inc_by(drops.take(&socket));
    reader.close().await;
}

/// What a wake-up read: `datagrams` of `bytes` in all, which arrived
/// `over` this long.
#[derive(Debug, Clone, Copy, Default)]
struct Read {
    datagrams: usize,
    bytes: u64,
    over: Duration,
}

/// The pause after a wake-up that read `read` from a socket with a
/// receive buffer of `buffer` bytes: as long as arrivals at that rate fill
/// at most 1/[`PAUSE_FILL`] of the buffer, within
/// [`PAUSE_MIN`]..=[`PAUSE_MAX`].
fn pause(buffer: usize, read: Read) -> Duration {
    let charged = (2 * read.bytes + DATAGRAM_OVERHEAD * read.datagrams as u64).max(1);
    let nanos = read.over.as_nanos() * (buffer as u128) / PAUSE_FILL / u128::from(charged);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).clamp(PAUSE_MIN, PAUSE_MAX)
}

/// Read what the socket holds, up to [`DRAIN_MAX`] datagrams, into the
/// reader: what was taken (its `over` unset), and whether the socket was
/// left empty.
async fn drain(
    socket: &std::net::UdpSocket,
    batch: &mut BatchReceiver,
    config: &ListenerConfig,
    metrics: &ListenerMetrics,
    reader: &mut Reader<'_>,
) -> (Read, bool) {
    let mut taken = Read::default();
    while taken.datagrams < DRAIN_MAX {
        match batch.receive(socket) {
            Ok(n) => {
                taken.bytes += udp_batch(batch, n, config, metrics, reader).await;
                taken.datagrams += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (taken, true),
            Err(e) => {
                // Counted; the socket is read again after a pause or wait.
                receive_failed(config, metrics, &e);
                return (taken, true);
            }
        }
    }
    (taken, false)
}

fn receive_failed(config: &ListenerConfig, metrics: &ListenerMetrics, e: &io::Error) {
    metrics.read_errors.inc();
    static LOG: LogLimiter = LogLimiter::new(10_000);
    if let Some(suppressed) = LOG.allow() {
        tracing::warn!(listener = %config.name, error = %e, suppressed, "udp receive failed");
    }
}

/// Hand the `n` datagrams of a batch to the reader; oversized ones are
/// skipped and counted. The frames are slices of one buffer
/// ([`BatchReceiver::pack`]) and the byte count is added once per batch.
/// Returns the bytes of the datagrams allowed in.
async fn udp_batch(
    batch: &mut BatchReceiver,
    n: usize,
    config: &ListenerConfig,
    metrics: &ListenerMetrics,
    reader: &mut Reader<'_>,
) -> u64 {
    let received = now_nanos();
    let n = n.min(BATCH);
    let mut keep = [false; BATCH];
    let mut bytes = 0;
    for (i, kept) in keep.iter_mut().enumerate().take(n) {
        let (data, peer, truncated) = batch.datagram(i);
        if let (Some(allow), Some(p)) = (&config.allow, peer) {
            if !allow.allows(p.ip()) {
                metrics.denied_frames.inc();
                continue;
            }
        }
        bytes += data.len() as u64;
        if oversized(data.len(), truncated, config.max_frame_bytes) {
            metrics.oversized_frames.inc();
            static LOG: LogLimiter = LogLimiter::new(10_000);
            if let Some(suppressed) = LOG.allow() {
                tracing::info!(listener = %config.name, peer = %peer.map_or_else(String::new, |p| p.to_string()), max_frame_bytes = config.max_frame_bytes, suppressed, "oversized datagram dropped (counted in sluice_listener_oversized_frames_total)");
            }
            continue;
        }
        *kept = true;
    }
    if bytes > 0 {
        metrics.bytes.inc_by(bytes);
    }
    let frames = batch.pack(n, &keep);
    let mut at = 0;
    for (i, _) in keep.iter().enumerate().take(n).filter(|(_, k)| **k) {
        let (data, peer, _) = batch.datagram(i);
        let end = at + data.len();
        reader.frame(frames.slice(at..end), peer, received).await;
        at = end;
    }
    bytes
}

/// The receive slot for a listener's datagrams: one byte more than a frame
/// may hold, so an oversized datagram shows.
fn slot(max_frame_bytes: usize) -> usize {
    (max_frame_bytes + 1).min(MAX_DATAGRAM)
}

/// What the UDP listener makes of one datagram (`truncated`: longer than
/// its receive slot): the frame, exactly the datagram's bytes (a trailing
/// LF included: it counts towards the limit), or `None` when it is
/// oversized (skipped and counted as `reason="oversized"`).
fn datagram_frame(bytes: &[u8], truncated: bool, max_frame_bytes: usize) -> Option<Bytes> {
    if oversized(bytes.len(), truncated, max_frame_bytes) {
        return None;
    }
    Some(Bytes::copy_from_slice(bytes))
}

/// Whether a datagram of `len` bytes (`truncated`: longer than its receive
/// slot) is skipped as oversized.
fn oversized(len: usize, truncated: bool, max_frame_bytes: usize) -> bool {
    truncated || len > max_frame_bytes
}

/// `input` as one datagram received by a UDP listener with
/// `max_frame_bytes` (for `sluice parse`): the frame it would take, or
/// `None` when it would skip it as oversized.
pub(crate) fn as_datagram(input: &[u8], max_frame_bytes: usize) -> Option<Bytes> {
    let slot = slot(max_frame_bytes);
    datagram_frame(
        &input[..input.len().min(slot)],
        input.len() > slot,
        max_frame_bytes,
    )
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
