//! Issue #26 items 1 and 4, through the real binary: the `flume` document
//! shape against what Flume 1.9's syslog sources and its
//! `ElasticSearchLogStashEventSerializer` wrote for the same frames, and one
//! sender's events leaving the multi-line joiner in arrival order.

use std::net::UdpSocket;
use std::time::Duration;

use super::{Sluice, config, messages};

const EVENTS_ROUTE: &str = "
[[routes]]
name = \"events\"
sink = \"events\"
document = {}
";

/// Issue #26 item 4: INFO one, WARN two, INFO three, ERROR four, INFO five,
/// 5 ms apart over UDP to a `sender = "log4j"` listener (multi-line joining
/// on, its default) came out one, three, two, four, five.
#[test]
fn a_log4j_senders_events_leave_the_joiner_in_arrival_order() {
    let extra = r#"
[[listeners]]
name = "log4j"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    // log4j 1.2's SyslogAppender with header=false: `<PRI>text`, facility
    // user (1): INFO 14, WARN 12, ERROR 11.
    let sent = [
        "<14>INFO one",
        "<12>WARN two",
        "<14>INFO three",
        "<11>ERROR four",
        "<14>INFO five",
    ];
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for frame in sent {
        udp.send_to(frame.as_bytes(), s.addr("log4j")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let lines = s.wait_lines("events.ndjson", sent.len());
    assert_eq!(
        lines.len(),
        sent.len(),
        "waited 10 s for {} documents: {lines:?}",
        sent.len()
    );
    let got = messages(&lines);
    eprintln!(
        "sent {} in order, delivered {}: {got:?}",
        sent.len(),
        got.len()
    );
    let want: Vec<&str> = sent.iter().map(|f| &f[4..]).collect();
    assert_eq!(got, want, "one peer's events in arrival order");
    assert!(s.stop().success());
    assert_eq!(s.wait_lines("events.ndjson", sent.len()).len(), sent.len());
}
