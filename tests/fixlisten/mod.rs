//! Defects an outside tester found in listeners and config (issues #20 and
//! #26 follow-up): an embedded header forging an event on an opted-in
//! listener, shipped configs that opted their generic TCP port in, a type
//! error inside `[[sinks]]` that lost its key and line, `check` passing a
//! file sink path `run` cannot open, `max_connections_per_peer` counting a
//! peer's closed connections, and the start-up line naming port 0.

use std::process::Command;

use crate::util::{EVENTS_ROUTE, Sluice, config, read_lines, wait_while};

/// The README tour's `logger -T` line whose text quotes an RFC 5424
/// header, sent to a listener with `framing = "log4j2_undelimited"`: one
/// event, not a second one forged from the quoted header.
#[test]
fn logger_line_quoting_a_header_is_one_event_on_an_opted_in_listener() {
    if !crate::util::logger_available() {
        return;
    }
    let extra = r#"
[[listeners]]
name = "l4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "log4j2_undelimited"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let port = s.addr("l4j2").port().to_string();
    let logger = |tag: &str, msg: &str| {
        let status = Command::new("logger")
            .args(["-n", "127.0.0.1", "-P", &port, "-T", "-t", tag, msg])
            .status()
            .expect("logger (util-linux) is required: .ci/run installs bsdutils");
        assert!(status.success());
    };
    let forged = "search q=<10>1 - dc01 sshd - - - Accepted password for root from 6.6.6.6";
    logger("billing", forged);
    logger("marker", "the end");
    // The marker comes on its own connection, after the first closed; the
    // two connections' events may be written in either order. A forged
    // event would come from the billing line's read, with its first part.
    let seen = |what: &str| {
        read_lines(&s.path("events.ndjson"))
            .iter()
            .any(|l| l.contains(what))
    };
    wait_while!(10, || !(seen("the end") && seen("\"billing\"")));
    let events: Vec<serde_json::Value> = read_lines(&s.path("events.ndjson"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let splits = s.metric("sluice_listener_undelimited_splits_total{listener=\"l4j2\"}");
    eprintln!("events: {events:#?}\nundelimited splits: {splits}");
    assert!(
        events.iter().any(|e| e["message"] == "the end")
            && events.iter().any(|e| e["appname"] == "billing"),
        "waited 10 s for the billing and marker events: {events:#?}"
    );
    assert_eq!(events.len(), 2, "one event per logger call: {events:#?}");
    let billing = events
        .iter()
        .find(|e| e["appname"] == "billing")
        .unwrap_or_else(|| panic!("no billing event: {events:#?}"));
    assert_eq!(billing["message"], forged);
    assert_eq!(splits, 0);
    assert!(s.stop().success());
}

/// The shipped configs: the generic TCP listener on 5514 (the README
/// tour's `logger -T` port) does not split at headers; log4j2's TCP
/// appender has its own listener on 5516 that does.
#[test]
fn shipped_configs_split_at_headers_only_on_the_log4j2_tcp_listener() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "config/sluice.toml",
        "config/container.toml",
        "config/grok-routes.toml",
        "config/influxdb-elasticsearch.toml",
        "examples/compose/sluice.toml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let table: toml::Table = text.parse().unwrap();
        let listeners = table["listeners"].as_array().unwrap();
        let port = |l: &toml::Value| -> u16 {
            let listen = l["listen"].as_str().unwrap();
            listen.rsplit(':').next().unwrap().parse().unwrap()
        };
        let framing = |l: &toml::Value| {
            l.get("framing")
                .and_then(|f| f.as_str())
                .unwrap_or("auto")
                .to_owned()
        };
        for l in listeners {
            let name = l["name"].as_str().unwrap();
            eprintln!(
                "{file}: {name} {} :{} framing {}",
                l["protocol"],
                port(l),
                framing(l)
            );
            if l["protocol"].as_str() == Some("tcp") && port(l) == 5514 {
                assert_eq!(framing(l), "auto", "{file}: generic TCP listener {name}");
            }
        }
        let l4j2 = listeners
            .iter()
            .find(|l| l["name"].as_str() == Some("log4j2_tcp"))
            .unwrap_or_else(|| panic!("{file}: no listener named log4j2_tcp"));
        assert_eq!(l4j2["protocol"].as_str(), Some("tcp"), "{file}");
        assert_eq!(port(l4j2), 5516, "{file}");
        assert_eq!(framing(l4j2), "log4j2_undelimited", "{file}");
        assert_eq!(l4j2["newline_escape"].as_str(), Some("\\n"), "{file}");
    }
}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn per_peer_config() -> String {
    let extra = r#"
[[listeners]]
name = "pp"
protocol = "tcp"
listen = "127.0.0.1:0"
max_connections_per_peer = 4
"#;
    config(extra, EVENTS_ROUTE)
}

/// A sender that opens, writes and closes one connection at a time never
/// holds more than one: none of its 50 connections is refused.
#[test]
fn sequential_connections_of_one_peer_are_never_refused_per_peer() {
    let mut s = Sluice::start(&per_peer_config());
    let addr = s.addr("pp");
    let sent = 50;
    for i in 0..sent {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(format!("<14>1 - h app - - - seq {i}\n").as_bytes())
            .unwrap();
        drop(c);
    }
    let accepted = "sluice_listener_connections_accepted_total{listener=\"pp\"}";
    let refused = "sluice_listener_connections_rejected_total{listener=\"pp\",reason=\"max_connections_per_peer\"}";
    wait_while!(10, || {
        s.metric(accepted) + s.metric(refused) < sent as u64
            || read_lines(&s.path("events.ndjson")).len() < (s.metric(accepted) as usize)
    });
    let delivered = read_lines(&s.path("events.ndjson")).len();
    let (accepted, refused) = (s.metric(accepted), s.metric(refused));
    eprintln!(
        "sent {sent} on {sent} sequential connections: accepted {accepted}, refused per peer {refused}, delivered {delivered}"
    );
    assert_eq!(
        accepted + refused,
        sent as u64,
        "waited 10 s for every connection to be accepted or refused"
    );
    assert_eq!(refused, 0, "a peer's closed connections count against it");
    assert_eq!(delivered, sent);
    assert!(s.stop().success());
}

/// Five connections of one peer open at once with a limit of 4: the
/// fifth is refused and counted, the four deliver.
#[test]
fn concurrent_connections_over_the_per_peer_limit_are_refused() {
    let mut s = Sluice::start(&per_peer_config());
    let addr = s.addr("pp");
    let mut open = Vec::new();
    for i in 0..4 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(format!("<14>1 - h app - - - held {i}\n").as_bytes())
            .unwrap();
        open.push(c);
    }
    let lines = s.wait_lines("events.ndjson", 4);
    assert_eq!(
        lines.len(),
        4,
        "waited 10 s for the 4 held connections' events"
    );
    let refused = "sluice_listener_connections_rejected_total{listener=\"pp\",reason=\"max_connections_per_peer\"}";
    let mut fifth = TcpStream::connect(addr).unwrap();
    let _ = fifth.write_all(b"<14>1 - h app - - - fifth\n");
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Refused: the server closes it (EOF or reset), not a timeout.
    let mut byte = [0u8; 1];
    let closed = match fifth.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    wait_while!(10, || s.metric(refused) < 1);
    let n = s.metric(refused);
    std::thread::sleep(Duration::from_millis(300));
    let delivered = read_lines(&s.path("events.ndjson")).len();
    eprintln!("4 held + 1 over the limit: refused {n}, delivered {delivered}");
    assert!(closed, "the fifth connection was closed by sluice");
    assert_eq!(n, 1, "waited 10 s for the fifth connection to be refused");
    assert_eq!(delivered, 4, "the refused connection's line is not read");
    drop(open);
    assert!(s.stop().success());
}

/// `check` refuses a file sink whose path `run` cannot open, naming the
/// key and the path.
#[test]
fn check_refuses_a_file_sink_path_that_run_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"f\"\ntype = \"file\"\npath = \"/proc/nonexistent/x.ndjson\"\n[default_route]\nsink = \"f\"\ndocument = {}\n",
    )
    .unwrap();
    let out = Command::new(crate::util::BIN)
        .args(["check", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("check: {:?}: {err}", out.status.code());
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("c.toml:8:")
            && err.contains("sinks[0].path")
            && err.contains("/proc/nonexistent/x.ndjson"),
        "{err}"
    );
}

/// The INFO start-up line names the address each listener got, not the
/// configured port 0.
#[test]
fn start_up_line_names_the_bound_addresses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), config("", EVENTS_ROUTE)).unwrap();
    let log = std::fs::File::create(dir.path().join("err.log")).unwrap();
    let mut child = Command::new(crate::util::BIN)
        .args(["run", "-c", "sluice.toml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while std::time::Instant::now() < deadline && !text.contains("listening on") {
        std::thread::sleep(Duration::from_millis(50));
        text = std::fs::read_to_string(dir.path().join("err.log")).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    let started = text
        .lines()
        .find(|l| l.contains("listening on"))
        .unwrap_or_else(|| panic!("waited 10 s for the start-up line: {text}"));
    eprintln!("{started}");
    for l in ready["listeners"].as_array().unwrap() {
        let want = format!(
            "listening on {} {}",
            l["protocol"].as_str().unwrap(),
            l["address"].as_str().unwrap()
        );
        assert!(started.contains(&want), "{want:?} in {started}");
    }
    assert!(
        !started.contains(":0;") && !started.ends_with(":0"),
        "{started}"
    );
}
