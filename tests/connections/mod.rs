//! Many TCP connections at once (issue #25): the listening backlog a
//! listener asks the kernel for.

use std::net::SocketAddr;
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
