//! The UDP listener: a datagram is a frame. One task per socket reads
//! batches and hands their datagrams to its reader.
//!
//! Batched UDP receive: up to [`BATCH`] datagrams per
//! `recvmmsg(2)` call, and the kernel's count of datagrams it dropped for
//! this socket (full receive buffer), read from the `SO_RXQ_OVFL` control
//! message that comes with each datagram.
//!
//! The kernel's counter is cumulative per socket; [`BatchReceiver`] turns it
//! into increments. Drops that happen after the last datagram received are
//! reported with the next one.
//!
//! On platforms other than Linux this falls back to one `recv_from` per
//! datagram without a drop counter.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{MAX_DATAGRAM, sleep_until_some};
use crate::config::ListenerConfig;
use crate::ingest::{PipelineHandle, Reader, now_nanos};
use crate::log_limit::LogLimiter;
use crate::telemetry::ListenerMetrics;

/// Datagrams per receive call.
pub(crate) const BATCH: usize = 32;

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

/// Set the socket's receive buffer and enable `SO_RXQ_OVFL`.
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
    set_int_option(socket, libc::SO_RXQ_OVFL, 1)?;
    Ok(ReceiveBuffer {
        granted: s.recv_buffer_size()?,
        forced,
    })
}

/// `setsockopt(SOL_SOCKET, option, value)` for an int option.
#[cfg(target_os = "linux")]
fn set_int_option(
    socket: &tokio::net::UdpSocket,
    option: libc::c_int,
    value: usize,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
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
    #[cfg(target_os = "linux")]
    controls: Vec<u64>,
    /// The kernel's cumulative drop count last seen.
    kernel_drops_seen: u32,
}

/// Room for one `SO_RXQ_OVFL` control message (a u32), in u64 words so the
/// buffer is aligned for `cmsghdr`.
#[cfg(target_os = "linux")]
const CONTROL_WORDS: usize = 8;

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
            #[cfg(target_os = "linux")]
            controls: vec![0; CONTROL_WORDS * BATCH],
            kernel_drops_seen: 0,
        }
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
    /// (at least 1) and how many the kernel dropped since the last call;
    /// `WouldBlock` when none is queued.
    #[cfg(target_os = "linux")]
    pub(crate) fn receive(&mut self, socket: &tokio::net::UdpSocket) -> io::Result<(usize, u64)> {
        use std::os::fd::AsRawFd;
        // SAFETY: all-zero iovec and mmsghdr are valid values; every pointer
        // set below points into a buffer owned by `self` that outlives the
        // call, with the length given beside it.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above, an all-zero mmsghdr is a valid value.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let base = self.buffers.as_mut_ptr();
        let controls = self.controls.as_mut_ptr();
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
            // SAFETY: i * CONTROL_WORDS + CONTROL_WORDS <= controls.len().
            h.msg_control = unsafe { controls.add(i * CONTROL_WORDS) }.cast();
            h.msg_controllen = CONTROL_WORDS * 8;
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
        let mut latest = None;
        for (i, h) in headers.iter().enumerate().take(n) {
            self.lengths[i] = h.msg_len as usize;
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.peers[i] = socket_addr(&self.addrs[i], h.msg_hdr.msg_namelen);
            if let Some(count) = overflow_count(&h.msg_hdr) {
                latest = Some(count);
            }
        }
        let mut dropped = 0;
        if let Some(count) = latest {
            dropped = count.wrapping_sub(self.kernel_drops_seen) as u64;
            self.kernel_drops_seen = count;
        }
        Ok((n, dropped))
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn receive(&mut self, socket: &tokio::net::UdpSocket) -> io::Result<(usize, u64)> {
        let slot = self.slot;
        let (n, peer) = socket.try_recv_from(&mut self.buffers[..slot])?;
        self.lengths[0] = n;
        self.truncated[0] = false;
        self.peers[0] = Some(peer);
        Ok((1, 0))
    }
}

/// The `SO_RXQ_OVFL` counter in a received message's control data.
#[cfg(target_os = "linux")]
fn overflow_count(h: &libc::msghdr) -> Option<u32> {
    // SAFETY: `h` was filled by recvmmsg; CMSG_FIRSTHDR/CMSG_NXTHDR stay
    // within msg_control..msg_control + msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
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

/// Serve one UDP socket until `shutdown`, then take what the kernel
/// already holds.
pub(super) async fn serve_udp(
    socket: UdpSocket,
    config: ListenerConfig,
    pipeline: Arc<PipelineHandle>,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
) {
    let mut reader = Reader::new(&pipeline, &config, &metrics, false);
    // One byte more than a frame may hold, so an oversized datagram shows.
    let mut batch = BatchReceiver::new(slot(config.max_frame_bytes));
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
        let Some(frame) = datagram_frame(bytes, truncated, config.max_frame_bytes) else {
            metrics.oversized_frames.inc();
            static LOG: LogLimiter = LogLimiter::new(10_000);
            if let Some(suppressed) = LOG.allow() {
                tracing::info!(listener = %config.name, peer = %peer.map_or_else(String::new, |p| p.to_string()), max_frame_bytes = config.max_frame_bytes, suppressed, "oversized datagram dropped (counted in sluice_listener_oversized_frames_total)");
            }
            continue;
        };
        reader.frame(frame, peer, received).await;
    }
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
    if truncated || bytes.len() > max_frame_bytes {
        return None;
    }
    Some(Bytes::copy_from_slice(bytes))
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
mod tests {
    use super::*;

    /// A batch holds several datagrams with their peers; one longer than
    /// the slot is flagged.
    #[tokio::test]
    async fn receives_a_batch_with_peers_and_truncation() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        configure(&socket, None).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        sender.send_to(b"one", to).unwrap();
        sender.send_to(b"two", to).unwrap();
        sender.send_to(&[b'x'; 100], to).unwrap();
        let mut r = BatchReceiver::new(64);
        let mut got = Vec::new();
        while got.len() < 3 {
            socket.readable().await.unwrap();
            match r.receive(&socket) {
                Ok((n, dropped)) => {
                    assert_eq!(dropped, 0);
                    for i in 0..n {
                        let (bytes, peer, cut) = r.datagram(i);
                        got.push((bytes.to_vec(), peer, cut));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
        }
        let me = sender.local_addr().unwrap();
        assert_eq!(got[0], (b"one".to_vec(), Some(me), false));
        assert_eq!(got[1], (b"two".to_vec(), Some(me), false));
        assert_eq!(got[2].0.len(), 64);
        assert!(got[2].2, "truncated");
    }

    /// A request over `net.core.rmem_max` is forced through when the process
    /// may (`CAP_NET_ADMIN`: CI runs as root), and capped otherwise.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_buffer_over_rmem_max_is_forced_when_permitted() {
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let asked = rmem_max * 4;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let got = configure(&socket, Some(asked)).unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            assert!(got.forced, "{got:?}");
            // The kernel doubles what it is given.
            assert_eq!(got.granted, asked * 2, "{got:?}");
        } else {
            assert!(!got.forced, "{got:?}");
            assert_eq!(got.granted, rmem_max * 2, "{got:?}");
        }
        // Within the cap nothing is forced.
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let got = configure(&socket, Some(4096)).unwrap();
        assert!(!got.forced, "{got:?}");
    }

    /// Overrun a small receive buffer: every datagram sent is either
    /// received or counted as a kernel drop.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn kernel_drops_are_counted() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let granted = configure(&socket, Some(4096)).unwrap().granted;
        assert!(granted < 64 * 1024, "granted {granted}");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        for _ in 0..500 {
            sender.send_to(&[b'x'; 1000], to).unwrap();
        }
        // The last one, after the buffer drained, carries the final count.
        let mut r = BatchReceiver::new(2048);
        let (mut received, mut dropped) = (0, 0);
        let mut sent_last = false;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match r.receive(&socket) {
                Ok((n, d)) => {
                    received += n as u64;
                    dropped += d;
                    if sent_last && received + dropped == 501 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !sent_last {
                        sender.send_to(b"last", to).unwrap();
                        sent_last = true;
                    }
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(100),
                        socket.readable(),
                    )
                    .await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(dropped > 0, "the buffer held everything: {received}");
        assert_eq!(received + dropped, 501);
    }
}
