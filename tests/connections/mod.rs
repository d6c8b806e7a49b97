//! Many TCP connections at once (issue #25): the listening backlog a
//! listener asks the kernel for, and a thousand concurrent connections
//! each delivering its frames, exactly.

use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use crate::util::*;

/// The backlog of the listening socket on `addr`, as `ss` reports it (the
/// Send-Q column of a listening socket), or `None` without `ss`.
#[track_caller]
fn listen_backlog(addr: SocketAddr) -> Option<u32> {
    if !tool_available(
        "the listen_backlog test",
        missing_command("ss", &["-V"], "install iproute2"),
    ) {
        return None;
    }
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{}", addr.port())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // State Recv-Q Send-Q Local Peer
    let line = text
        .lines()
        .find(|l| l.contains(&addr.to_string()))
        .unwrap_or_else(|| panic!("no listening socket on {addr} in `ss -ltn`: {text:?}"));
    Some(line.split_whitespace().nth(2).unwrap().parse().unwrap())
}

/// tokio's `TcpListener::bind` listens with a backlog of 128: 400 senders
/// connecting at once hung in `connect`. The default is 1024 now (capped
/// by `net.core.somaxconn`), and `listen_backlog` sets it.
#[test]
fn a_tcp_listener_listens_with_its_configured_backlog() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let Some(default) = listen_backlog(s.addr("tcp")) else {
        return;
    };
    println!("backlog of a listener by default: {default} (somaxconn {somaxconn})");
    assert_eq!(default, 1024.min(somaxconn), "the default listen_backlog");
    assert!(s.stop().success());
    let extra = r#"
[[listeners]]
name = "burst"
protocol = "tcp"
listen = "127.0.0.1:0"
listen_backlog = 300
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    assert_eq!(
        listen_backlog(s.addr("burst")),
        Some(300.min(somaxconn)),
        "listen_backlog = 300"
    );
    assert!(s.stop().success());
}

/// Raise this process's open-files limit to its hard limit (a thousand
/// sockets here; the soft default is often 1024).
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain structs in and out.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// A thousand connections open at once (a connection's read size shrinks
/// as more are open), each sending three frames: every frame arrives
/// once, none is lost, none refused.
#[test]
fn a_thousand_concurrent_connections_each_deliver_every_frame() {
    const CONNECTIONS: usize = 1000;
    const FRAMES: usize = 3;
    raise_nofile_limit();
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let addr = s.addr("tcp");
    let mut conns: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|c| {
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {c}: connect: {e}"))
        })
        .collect();
    let open = "sluice_listener_connections_open{listener=\"tcp\"}";
    wait_until(60, "all connections open at once", || {
        s.metric(open) == CONNECTIONS as u64
    });
    for (c, conn) in conns.iter_mut().enumerate() {
        let frames: String = (0..FRAMES)
            .map(|f| format!("<14>1 - h app - - - conn {c} frame {f}\n"))
            .collect();
        conn.write_all(frames.as_bytes()).unwrap();
    }
    let sent = (CONNECTIONS * FRAMES) as u64;
    let frames = "sluice_listener_frames_total{listener=\"tcp\"}";
    wait_until(
        60,
        "every frame read while the connections are open",
        || s.metric(frames) == sent,
    );
    assert_eq!(s.metric(open), CONNECTIONS as u64, "still all open");
    drop(conns);
    wait_until(60, "every connection closed", || s.metric(open) == 0);
    wait_until(60, "every frame in the events file", || {
        read_lines(&s.path("events.ndjson")).len() as u64 >= sent
    });
    let rejected = s.metric_sum("sluice_listener_connections_rejected_total", "");
    let accepted = s.metric("sluice_listener_connections_accepted_total{listener=\"tcp\"}");
    let dropped = s.metric_sum("sluice_queue_dropped_records_total", "");
    assert!(s.stop().success());
    let lines = read_lines(&s.path("events.ndjson"));
    let got = messages(&lines);
    let distinct: HashSet<&String> = got.iter().collect();
    println!(
        "sent {sent} frames over {CONNECTIONS} connections: delivered {} ({} distinct), \
         accepted {accepted}, refused {rejected}, dropped {dropped}",
        got.len(),
        distinct.len()
    );
    assert_eq!((accepted, rejected, dropped), (CONNECTIONS as u64, 0, 0));
    assert_eq!(got.len() as u64, sent, "sent = delivered");
    assert_eq!(distinct.len() as u64, sent, "each frame once");
    for c in [0, CONNECTIONS / 2, CONNECTIONS - 1] {
        for f in 0..FRAMES {
            let m = format!("conn {c} frame {f}");
            assert!(distinct.contains(&m), "{m} missing");
        }
    }
}
