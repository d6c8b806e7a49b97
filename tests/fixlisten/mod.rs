//! Defects an outside tester found in listeners and config (issues #20 and
//! #26 follow-up): an embedded header forging an event on an opted-in
//! listener, shipped configs that opted their generic TCP port in, a type
//! error inside `[[sinks]]` that lost its key and line, `check` passing a
//! file sink path `run` cannot open, `max_connections_per_peer` counting a
//! peer's closed connections, and the start-up line naming port 0.

use std::process::Command;

use super::{EVENTS_ROUTE, Sluice, config, read_lines, wait_while};

/// The README tour's `logger -T` line whose text quotes an RFC 5424
/// header, sent to a listener with `framing = "log4j2_undelimited"`: one
/// event, not a second one forged from the quoted header.
#[test]
fn logger_line_quoting_a_header_is_one_event_on_an_opted_in_listener() {
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
    // The marker comes on its own connection, after the first closed.
    wait_while(10, || {
        !read_lines(&s.path("events.ndjson"))
            .iter()
            .any(|l| l.contains("the end"))
    });
    let events: Vec<serde_json::Value> = read_lines(&s.path("events.ndjson"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let splits = s.metric("sluice_listener_undelimited_splits_total{listener=\"l4j2\"}");
    eprintln!("events: {events:#?}\nundelimited splits: {splits}");
    assert!(
        events.iter().any(|e| e["message"] == "the end"),
        "waited 10 s for the marker event: {events:#?}"
    );
    assert_eq!(events.len(), 2, "one event per logger call: {events:#?}");
    // The two connections' events may be written in either order.
    let billing = events
        .iter()
        .find(|e| e["appname"] == "billing")
        .unwrap_or_else(|| panic!("no billing event: {events:#?}"));
    assert_eq!(billing["message"], forged);
    assert_eq!(splits, 0);
    assert!(s.stop().success());
}
