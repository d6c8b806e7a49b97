//! Captured log4j traffic: stack traces joined, log4j2 TCP split at headers.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use crate::util::*;

/// Frames captured from the real appenders (tests/corpus/capture.py), by sender.
fn captured(sender: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/log4j-captured.jsonl"
    ))
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["sender"] == sender)
        .map(|v| {
            let h = v["hex"].as_str().unwrap();
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn log4j_1_2_stack_traces_and_split_messages_arrive_as_one_event_each() {
    let extra = r#"
[[listeners]]
name = "log4j"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
strip_facility_prefix = true
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let datagrams = captured("log4j1 header=true facilityPrinting=true");
    assert_eq!(datagrams.len(), 17);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        udp.send_to(d, s.addr("log4j")).unwrap();
    }
    s.wait_lines("events.ndjson", 6);
    // Give a wrongly split event time to show up as a seventh line.
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_lines(&s.path("events.ndjson"));
    let mut got = messages(&lines);
    got.sort();
    let long = format!(
        "INFO  [main] com.example.Svc - long message:{}",
        (0..300).map(|i| format!(" word{i}")).collect::<String>()
    );
    let trace = "ERROR [main] com.example.Svc - Order failed id=1001\n\
java.lang.IllegalStateException: boom\n    at Log4j1Demo.fail(Log4j1Demo.java:31)\n    at Log4j1Demo.main(Log4j1Demo.java:16)\n    Suppressed: java.lang.RuntimeException: cleanup failed\n    \tat Log4j1Demo.fail(Log4j1Demo.java:32)\n    \t... 1 more\nCaused by: java.io.IOException: disk gone\n    ... 2 more";
    let mut want = vec![
        trace.to_owned(),
        "INFO  [main] com.example.Svc - Hello from log4j 1.2".to_owned(),
        "INFO  [main] com.example.Svc - caf\u{fffd} cr\u{fffd}me".to_owned(),
        long,
        "INFO  [main] com.example.Svc - two lines\nsecond line".to_owned(),
        "WARN  [main] com.example.Svc - status heap_used=1234 heap_max=4096 threads=17".to_owned(),
    ];
    want.sort();
    assert_eq!(got, want);
    let l = "listener=\"log4j\"";
    assert_eq!(
        s.metric(&format!("sluice_listener_frames_total{{{l}}}")),
        17
    );
    assert_eq!(
        s.metric(&format!(
            "sluice_listener_multiline_joined_frames_total{{{l}}}"
        )),
        11
    );
    let flushed: u64 = ["window", "next_event"]
        .iter()
        .map(|r| {
            s.metric(&format!(
                "sluice_listener_multiline_events_total{{{l},reason=\"{r}\"}}"
            ))
        })
        .sum();
    assert_eq!(flushed, 6);
    assert_eq!(
        s.metric(&format!("sluice_listener_lossy_utf8_frames_total{{{l}}}")),
        1
    );
    assert!(s.stop().success());
}

/// `sluice parse` takes frames through the listeners' own path
/// (`ingest::FramePath`): the captured log4j 1.2 stack trace, split over
/// eleven datagrams, makes the same six documents through `parse` as
/// through `run` (receive time and peer aside, which only `run` knows).
#[test]
fn parse_and_run_agree_on_a_log4j_stack_trace() {
    let extra = r#"
[[listeners]]
name = "log4j"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
strip_facility_prefix = true
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let datagrams = captured("log4j1 header=true facilityPrinting=true");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        udp.send_to(d, s.addr("log4j")).unwrap();
    }
    s.wait_lines("events.ndjson", 6);
    // Give a wrongly split event time to show up as a seventh line.
    std::thread::sleep(Duration::from_millis(300));
    let without_receipt = |mut v: serde_json::Value| {
        let o = v.as_object_mut().unwrap();
        assert!(o.remove("received_at").is_some() && o.remove("peer").is_some());
        v
    };
    let mut run: Vec<serde_json::Value> = read_lines(&s.path("events.ndjson"))
        .iter()
        .map(|l| without_receipt(serde_json::from_str(l).unwrap()))
        .collect();
    assert!(s.stop().success());

    // The same datagrams, octet-counted on stdin, through the same listener.
    let mut input = Vec::new();
    for d in &datagrams {
        input.extend_from_slice(format!("{} ", d.len()).as_bytes());
        input.extend_from_slice(d);
    }
    let config = s.path("sluice.toml");
    let reports = sluice_parse(
        &[
            "-c",
            config.to_str().unwrap(),
            "--listener",
            "log4j",
            "--framing",
            "octet",
        ],
        &input,
    );
    let mut parse: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| without_receipt(r["routes"][0]["document"].clone()))
        .collect();
    let key = |v: &serde_json::Value| v["message"].as_str().unwrap().to_owned();
    run.sort_by_key(key);
    parse.sort_by_key(key);
    println!(
        "run: {} documents, parse: {} documents",
        run.len(),
        parse.len()
    );
    assert_eq!(run.len(), 6);
    assert_eq!(parse, run);
}

#[test]
fn log4j2_tcp_without_delimiters_is_split_at_each_header() {
    // Splitting at headers is the listener's opt-in (issue #20 item 1).
    let extra = r#"
[[listeners]]
name = "log4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "log4j2_undelimited"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let stream = captured("log4j2 RFC5424 tcp newLine=false").remove(0);
    // The connection stays open: the last message has no end but the pause.
    let mut conn = TcpStream::connect(s.addr("log4j2")).unwrap();
    conn.write_all(&stream).unwrap();
    let lines = s.wait_lines("events.ndjson", 5);
    assert_eq!(
        messages(&lines),
        [
            "Hello from log4j2",
            "status heap_used=1234 heap_max=4096 threads=17",
            "Order created id=1001",
            "Order failed id=1002",
            "two lines\nsecond line",
        ]
    );
    let mdc: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(
        mdc["structured_data"]["mdc@32473"]["user"],
        "alice \"the admin\" [ops]\\x"
    );
    assert_eq!(
        s.metric("sluice_listener_undelimited_splits_total{listener=\"log4j2\"}"),
        4
    );
    drop(conn);
    assert!(s.stop().success());
}
