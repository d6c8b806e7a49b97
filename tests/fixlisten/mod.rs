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
