//! The UDP listener's reads (several `SO_REUSEPORT` sockets, batched and
//! paced reads) against shutdown and reload: sent = delivered + counted
//! drops, and each sender's datagrams in order.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::util::*;

const SPREAD: &str = r#"
[[listeners]]
name = "spread"
protocol = "udp"
listen = "127.0.0.1:0"
sockets = 4
receive_buffer_bytes = 4194304
"#;

/// The sockets bound to `port` as /proc/net/udp lists them, and the sum
/// of their kernel drop counts (its last column).
fn kernel_sockets_and_drops(port: u16) -> (usize, u64) {
    let port = format!(":{port:04X}");
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let rows: Vec<u64> = table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&port))
        })
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    (rows.len(), rows.iter().sum())
}

/// The numbers `n` of each sender `k` (`sender={k} n={n}`), in the
/// order of `lines`.
fn numbers_per_sender(lines: &[String], senders: usize) -> Vec<Vec<u32>> {
    let mut numbers = vec![Vec::new(); senders];
    for line in lines {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = doc["message"].as_str().unwrap();
        let (k, n) = message
            .strip_prefix("sender=")
            .and_then(|r| r.split_once(" n="))
            .unwrap_or_else(|| panic!("{message}"));
        numbers[k.parse::<usize>().unwrap()].push(n.parse().unwrap());
    }
    numbers
}

/// Wait for sluice to exit after a SIGTERM the test sent itself.
fn wait_exit(s: &mut Sluice) -> std::process::ExitStatus {
    let mut child = s.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "waited 20 s for sluice to exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send_round(senders: &[UdpSocket], to: SocketAddr, i: usize) {
    for (k, udp) in senders.iter().enumerate() {
        udp.send_to(format!("sender={k} n={i}").as_bytes(), to)
            .unwrap();
    }
}

/// A UDP listener with a tiny receive buffer is overrun by a burst sent
/// while sluice is stopped (SIGSTOP): the datagrams the kernel dropped
/// show in sluice's own counter as soon as it has read what the socket
/// held, with no later datagram needed to carry the count (with
/// `SO_RXQ_OVFL` the few datagrams queued before the overrun carried a
/// count of 0, and the drops showed only with the next datagram).
#[test]
fn udp_kernel_receive_buffer_drops_are_counted() {
    let extra = r#"
[[listeners]]
name = "small"
protocol = "udp"
listen = "127.0.0.1:0"
receive_buffer_bytes = 4096
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = s.addr("small");
    let padding = "x".repeat(900);
    s.signal("-STOP");
    for i in 0..2000 {
        udp.send_to(
            format!("<14>1 - h app - - - burst {i} {padding}").as_bytes(),
            to,
        )
        .unwrap();
    }
    let (_, kernel) = kernel_sockets_and_drops(to.port());
    s.signal("-CONT");
    let frames = || s.metric("sluice_listener_frames_total{listener=\"small\"}");
    let drops = || s.metric("sluice_listener_kernel_drops_total{listener=\"small\"}");
    wait_while!(10, || frames() + drops() < 2000);
    let (f, d) = (frames(), drops());
    println!("sent 2000, frames {f}, kernel drops {d} (/proc/net/udp: {kernel})");
    assert_eq!(f + d, 2000, "frames {f} + kernel drops {d}");
    assert_eq!(d, kernel);
    assert!(d > 0, "the burst did not overrun the buffer");
    let lines = s.wait_lines("events.ndjson", f as usize);
    assert_eq!(lines.len() as u64, f);
    assert!(s.stop().success());
}

/// Datagrams wait in four sockets' buffers while sluice is stopped
/// (SIGSTOP); SIGTERM then SIGCONT: shutdown takes everything each socket
/// holds before it exits, every sender's datagrams in order.
#[test]
fn udp_shutdown_takes_what_each_reuseport_socket_holds() {
    let mut s = Sluice::start(&config(SPREAD, EVENTS_ROUTE));
    let to = s.addr("spread");
    assert_eq!(kernel_sockets_and_drops(to.port()).0, 4);
    let senders: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    // Few enough that even the kernel's usual 208 KiB buffer holds a
    // socket's share (the test needs no kernel drop to be exact).
    let per_sender = 60;
    s.signal("-STOP");
    for i in 0..per_sender {
        send_round(&senders, to, i);
    }
    let sent = (per_sender * senders.len()) as u64;
    let (_, kernel_drops) = kernel_sockets_and_drops(to.port());
    s.signal("-TERM");
    s.signal("-CONT");
    assert!(wait_exit(&mut s).success());
    let lines = read_lines(&s.path("events.ndjson"));
    println!(
        "sent {sent}, delivered {}, kernel drops {kernel_drops}",
        lines.len()
    );
    assert_eq!(
        kernel_drops, 0,
        "the buffers overflowed: the test needs fewer datagrams"
    );
    assert_eq!(lines.len() as u64, sent);
    // One reader per socket and the kernel keeps a sender on one socket:
    // each sender's datagrams in the order sent.
    let expected: Vec<u32> = (0..per_sender as u32).collect();
    for (k, numbers) in numbers_per_sender(&lines, senders.len()).iter().enumerate() {
        assert_eq!(numbers, &expected, "sender {k}");
    }
}

/// Reloads while eight senders stream into four sockets: the listener goes
/// on reading through each pipeline swap; sent = delivered + counted drops
/// (kernel and queue, from /metrics), each datagram delivered once.
#[test]
fn udp_reload_during_traffic_loses_nothing() {
    let v1 = config(SPREAD, EVENTS_ROUTE);
    let mut s = Sluice::start(&v1);
    let to = s.addr("spread");
    let admin = s.admin_addr();
    let per_sender = 2000;
    // The senders stop at half their datagrams until the first reload is
    // answered: at least one swap comes mid-traffic however late this
    // thread runs; more follow while they send the rest.
    let (reloaded, go_on) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        let senders: Vec<UdpSocket> = (0..8)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for i in 0..per_sender {
            if i == per_sender / 2 {
                go_on
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the first reload answered within 60 s");
            }
            send_round(&senders, to, i);
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut reloads = 0;
    while reloads == 0 || (!sender.is_finished() && reloads < 5) {
        let (status, body) = http(admin, "POST", "/reload", b"");
        assert_eq!(status, 200, "{body}");
        reloads += 1;
        if reloads == 1 {
            reloaded.send(()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    sender.join().unwrap();
    let sent = (per_sender * 8) as u64;
    let frames = || s.metric("sluice_listener_frames_total{listener=\"spread\"}");
    let kernel = || s.metric("sluice_listener_kernel_drops_total{listener=\"spread\"}");
    wait_while!(10, || frames() + kernel() < sent);
    let queue = s.metric_sum("sluice_queue_dropped_records_total", "route=\"events\"");
    let (f, k) = (frames(), kernel());
    let lines = s.wait_lines("events.ndjson", (f - queue) as usize);
    println!(
        "{reloads} reloads; sent {sent}, frames {f}, delivered {}, kernel drops {k}, queue drops {queue}",
        lines.len()
    );
    assert!(reloads > 0);
    assert_eq!(f + k, sent, "frames {f} + kernel drops {k}");
    assert_eq!(lines.len() as u64 + queue, f);
    // Each datagram once. Not their order: records routed by the retired
    // pipeline drain through its own sink while the new one writes (README,
    // "Hot reload"), so order holds between reloads only.
    let expected: Vec<u32> = (0..per_sender as u32).collect();
    for (k, mut numbers) in numbers_per_sender(&lines, 8).into_iter().enumerate() {
        numbers.sort_unstable();
        assert_eq!(numbers, expected, "sender {k}");
    }
    assert!(s.stop().success());
}
