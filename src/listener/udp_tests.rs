//! Tests of the UDP listener's receive path (`udp.rs`).

use super::*;

/// A batch holds several datagrams with their peers; one longer than
/// the slot is flagged.
#[tokio::test]
async fn receives_a_batch_with_peers_and_truncation() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    configure(&socket, None).unwrap();
    let socket = socket.into_std().unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = socket.local_addr().unwrap();
    sender.send_to(b"one", to).unwrap();
    sender.send_to(b"two", to).unwrap();
    sender.send_to(&[b'x'; 100], to).unwrap();
    let mut r = BatchReceiver::new(64);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while got.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 10 s for 3 datagrams: {got:?}"
        );
        match r.receive(&socket) {
            Ok(n) => {
                for i in 0..n {
                    let (bytes, peer, cut) = r.datagram(i);
                    got.push((bytes.to_vec(), peer, cut));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let me = sender.local_addr().unwrap();
    assert_eq!(got[0], (b"one".to_vec(), Some(me), false));
    assert_eq!(got[1], (b"two".to_vec(), Some(me), false));
    assert_eq!(got[2].0.len(), 64);
    assert!(got[2].2, "truncated");
}

/// The frames of a batch are slices of one buffer, in order, without the
/// datagrams not kept; once they are dropped the next batch goes into
/// the same block, and while one is held the next batch still fits
/// after it.
#[test]
fn a_batch_is_packed_into_one_reused_block() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = socket.local_addr().unwrap();
    let mut r = BatchReceiver::new(200);
    let batch = |datagrams: &[&[u8]], r: &mut BatchReceiver| {
        for d in datagrams {
            sender.send_to(d, to).unwrap();
        }
        let mut n = 0;
        while n < datagrams.len() {
            n = r.receive(&socket).unwrap();
        }
        n
    };
    let n = batch(&[b"one", b"skipped", b"three"], &mut r);
    assert_eq!(n, 3);
    let mut keep = [false; BATCH];
    keep[0] = true;
    keep[2] = true;
    let frames = r.pack(n, &keep);
    assert_eq!(&frames[..], b"onethree");
    let (one, three) = (frames.slice(0..3), frames.slice(3..8));
    assert_eq!(three.as_ptr(), one.as_ptr().wrapping_add(3), "one buffer");
    let block = one.as_ptr();
    drop((frames, three));
    // `one` still held: the next batch goes after it in the same block.
    let n = batch(&[b"four"], &mut r);
    keep[0] = true;
    let four = r.pack(n, &keep);
    assert_eq!(&four[..], b"four");
    assert_eq!(four.as_ptr(), block.wrapping_add(8));
    drop((one, four));
    // Nothing held and the rest of the block too small: it is reused
    // from its start rather than a new one taken.
    let big = [b'x'; 200];
    let datagrams: Vec<&[u8]> = (0..BATCH).map(|_| &big[..]).collect();
    let n = batch(&datagrams, &mut r);
    assert_eq!(n, BATCH);
    let all = r.pack(n, &[true; BATCH]);
    assert_eq!(all.len(), 200 * BATCH);
    let again = batch(&datagrams, &mut r);
    drop(all);
    let all = r.pack(again, &[true; BATCH]);
    const {
        assert!(
            12 + 200 * BATCH * 2 > PACK_BLOCK,
            "the second batch must not fit"
        )
    };
    assert_eq!(all.as_ptr(), block, "the block is reused");
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
/// received or counted as a kernel drop, and the count is there as
/// soon as the socket is drained (no later datagram needed to carry
/// it).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_drops_are_counted() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let granted = configure(&socket, Some(4096)).unwrap().granted;
    assert!(granted < 64 * 1024, "granted {granted}");
    let socket = socket.into_std().unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = socket.local_addr().unwrap();
    for _ in 0..500 {
        sender.send_to(&[b'x'; 1000], to).unwrap();
    }
    // Loopback delivers within send_to: all 500 are queued or dropped.
    let mut r = BatchReceiver::new(2048);
    let mut drops = KernelDrops::default();
    let mut received = 0;
    loop {
        match r.receive(&socket) {
            Ok(n) => received += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let dropped = drops.take(&socket);
    println!("received {received}, kernel drops {dropped}");
    assert!(dropped > 0, "the buffer held everything: {received}");
    assert_eq!(received + dropped, 500);
    // Counted once: the next reading has nothing new.
    assert_eq!(drops.take(&socket), 0);
}

/// The pause: the longest when the buffer holds many pauses at the rate
/// read, the shortest when it does not, in between by the buffer's share.
#[test]
fn the_pause_follows_the_rate_and_the_buffer() {
    // 150 k datagrams of 256 bytes per second: 150 per millisecond.
    let at_150k = Read {
        datagrams: 150,
        bytes: 150 * 256,
        over: Duration::from_millis(1),
    };
    // 8 MiB (4 MiB asked, doubled): 1/8 of it lasts 5.5 ms at that rate.
    assert_eq!(pause(8 << 20, at_150k), PAUSE_MAX);
    // 1 MiB: 0.7 ms, under the shortest.
    assert_eq!(pause(1 << 20, at_150k), PAUSE_MIN);
    // 2 MiB: 1.4 ms.
    let p = pause(2 << 20, at_150k);
    assert!(
        p > Duration::from_micros(1300) && p < Duration::from_micros(1450),
        "{p:?}"
    );
    // A third of the rate: three times as long.
    let at_50k = Read {
        over: Duration::from_millis(3),
        ..at_150k
    };
    assert!(
        pause(2 << 20, at_50k) == PAUSE_MAX,
        "{:?}",
        pause(2 << 20, at_50k)
    );
    // Datagrams read at once after a wake-up: no rate known yet.
    let burst = Read {
        over: Duration::ZERO,
        ..at_150k
    };
    assert_eq!(pause(8 << 20, burst), PAUSE_MIN);
    // Big datagrams are charged by their size.
    let big = Read {
        datagrams: 150,
        bytes: 150 * 8192,
        over: Duration::from_millis(1),
    };
    assert_eq!(pause(8 << 20, big), PAUSE_MIN);
}
