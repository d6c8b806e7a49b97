//! Issue #26 items 1 and 4, through the real binary: the `flume` document
//! shape against what Flume 1.9's syslog sources and its
//! `ElasticSearchLogStashEventSerializer` wrote for the same frames, and one
//! sender's events leaving the multi-line joiner in arrival order.

use std::net::UdpSocket;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::{Sluice, config, messages, tcp_send};

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

/// Routes for the Flume comparison: every frame through the flume shape
/// as Flume's syslog sources have it by default (`keepFields = false`),
/// with `keepFields = "timestamp hostname"` and with `keepFields = true`,
/// and the status lines through a pattern whose captures Flume's
/// `regex_extractor` interceptor would have put in headers.
const FLUME_ROUTES: &str = r#"
[[sinks]]
name = "keep"
type = "file"
path = "keep.ndjson"
[[sinks]]
name = "all"
type = "file"
path = "all.ndjson"
[[sinks]]
name = "status"
type = "file"
path = "status.ndjson"
[[routes]]
name = "flume"
sink = "events"
document = { format = "flume" }
[[routes]]
name = "flume_keep"
sink = "keep"
document = { format = "flume", keep_fields = "timestamp hostname" }
[[routes]]
name = "flume_all"
sink = "all"
document = { format = "flume", keep_fields = true }
[[routes]]
name = "status"
sink = "status"
pattern = 'code=(?P<code>\d+) latency_ms=(?P<latency_ms>[0-9.]+)'
document = { format = "flume" }
"#;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Issue #26 item 1: the `flume` shape is what Flume 1.9 wrote for the same
/// frame. The frames are those of Flume's own tests (flume-ng-core
/// `TestSyslogUtils`, named at each), the issue's sshd line and RFC 5424's
/// example 3; sent over TCP, LF-framed, as Flume's `syslogtcp` source read
/// them. Each expected document is what `SyslogUtils` (headers and body)
/// and `ElasticSearchLogStashEventSerializer` (the document) make of it:
///
/// - `@message`: the body, everything after the hostname (`SyslogUtils`'
///   BODY group); the whole frame when no pattern matched or the PRI was bad;
/// - `@timestamp`: the `timestamp` header as a UTC date with milliseconds
///   (Elasticsearch's XContentBuilder date printer);
/// - `@source_host`: the `host` header, when there is one;
/// - `@fields`: every header as a string, in the iteration order of Java's
///   `HashMap` (checked against OpenJDK 17): `Facility` = PRI / 8,
///   `Severity` = PRI % 8 (`0` and `0` for a bad PRI), `priority` (the PRI
///   digits, when a pattern matched), `version` (when the frame has one),
///   `timestamp` (epoch ms), `host`, `flume.syslog.status = Invalid` (bad
///   PRI), the pattern's captures.
///
/// A frame Flume gave no time gets the receive time, as Flume's `timestamp`
/// interceptor did (`RECEIVED` below: read back, checked to lie in the
/// window the frames were sent in).
#[test]
fn flume_documents_match_what_flume_wrote_for_flumes_own_test_frames() {
    let mut s = Sluice::start(&config("", FLUME_ROUTES));
    // RFC 3164 frames carry no year: like TestSyslogUtils.TestHeader9, a
    // time near now (an hour ago, whole seconds, UTC: the default zone).
    let then = chrono::Utc::now() - chrono::Duration::hours(1);
    let bsd = then.format("%b %e %H:%M:%S").to_string();
    let bsd_ms = then.timestamp() * 1000;
    let bsd_iso = chrono::DateTime::from_timestamp(then.timestamp(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    // (frame, expected document; RECEIVED = the receive time in epoch ms,
    // RECEIVED_ISO = the same as @timestamp writes it).
    let cases: Vec<(String, String)> = vec![
        // TestHeader0: no version; the offset applies.
        (
            "<10>2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg".into(),
            r#"{"@message":"some msg","@timestamp":"2012-04-13T03:11:11.000Z","@source_host":"ubuntu-11.cloudera.com","@fields":{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","timestamp":"1334286671000"}}"#.into(),
        ),
        // TestHeader2: version 1, `Z`.
        (
            "<10>1 2012-04-13T11:11:11Z ubuntu-11.cloudera.com some msg".into(),
            r#"{"@message":"some msg","@timestamp":"2012-04-13T11:11:11.000Z","@source_host":"ubuntu-11.cloudera.com","@fields":{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","version":"1","timestamp":"1334315471000"}}"#.into(),
        ),
        // TestHeader3 (and testKeepFields' frame): `+08:00`.
        (
            "<10>1 2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg".into(),
            r#"{"@message":"some msg","@timestamp":"2012-04-13T03:11:11.000Z","@source_host":"ubuntu-11.cloudera.com","@fields":{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","version":"1","timestamp":"1334286671000"}}"#.into(),
        ),
        // TestHeader4: `-` for the time: no `timestamp` header from the
        // source, the interceptor's receive time.
        (
            "<10>1 - ubuntu-11.cloudera.com some msg".into(),
            r#"{"@message":"some msg","@timestamp":"RECEIVED_ISO","@source_host":"ubuntu-11.cloudera.com","@fields":{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","version":"1","timestamp":"RECEIVED"}}"#.into(),
        ),
        // TestHeader5: `-` for the host: no `host` header, no @source_host;
        // no offset: the JVM's zone in Flume, UTC here (the test's JVM zone).
        (
            "<10>1 2012-04-13T11:11:11 - some msg".into(),
            r#"{"@message":"some msg","@timestamp":"2012-04-13T11:11:11.000Z","@fields":{"Severity":"2","Facility":"1","priority":"10","version":"1","timestamp":"1334315471000"}}"#.into(),
        ),
        // TestHeader8: milliseconds.
        (
            "<10>1 2012-04-13T11:11:11.999 ubuntu-11.cloudera.com some msg".into(),
            r#"{"@message":"some msg","@timestamp":"2012-04-13T11:11:11.999Z","@source_host":"ubuntu-11.cloudera.com","@fields":{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","version":"1","timestamp":"1334315471999"}}"#.into(),
        ),
        // TestHeader11: microseconds are cut to milliseconds. A listed
        // deviation: Flume parsed a stamp with a fraction without its
        // offset (`yyyy-MM-dd'T'HH:mm:ss.S` first), so its header was
        // 17:20:01.123 in the JVM's zone (1412356801123 in UTC); Sluice
        // writes the instant the sender meant, 2014-10-04T00:20:01.123Z.
        (
            "<10>2014-10-03T17:20:01.123456-07:00 ubuntu-11.cloudera.com some msg".into(),
            r#"{"@message":"some msg","@timestamp":"2014-10-04T00:20:01.123Z","@source_host":"ubuntu-11.cloudera.com","@fields":{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","timestamp":"1412382001123"}}"#.into(),
        ),
        // TestRfc3164HeaderApacheLogWithNulls: the body keeps its `-`.
        (
            format!("<10>{bsd} ubuntu-11.cloudera.com - hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]"),
            format!(r#"{{"@message":"- hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]","@timestamp":"{bsd_iso}","@source_host":"ubuntu-11.cloudera.com","@fields":{{"host":"ubuntu-11.cloudera.com","Severity":"2","Facility":"1","priority":"10","timestamp":"{bsd_ms}"}}}}"#),
        ),
        // Issue #26: the TAG stays in the body, as Flume's did.
        (
            format!("<38>{bsd} host1 sshd[123]: Accepted password for kim"),
            format!(r#"{{"@message":"sshd[123]: Accepted password for kim","@timestamp":"{bsd_iso}","@source_host":"host1","@fields":{{"host":"host1","Severity":"6","Facility":"4","priority":"38","timestamp":"{bsd_ms}"}}}}"#),
        ),
        // RFC 5424 section 6.5, example 3: app, procid, msgid and the
        // structured data stay in the body, the BOM too.
        (
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...".into(),
            "{\"@message\":\"evntslog - ID47 [exampleSDID@32473 iut=\\\"3\\\" eventSource=\\\"Application\\\" eventID=\\\"1011\\\"] \u{feff}An application event log entry...\",\"@timestamp\":\"2003-10-11T22:14:15.003Z\",\"@source_host\":\"mymachine.example.com\",\"@fields\":{\"host\":\"mymachine.example.com\",\"Severity\":\"5\",\"Facility\":\"20\",\"priority\":\"165\",\"version\":\"1\",\"timestamp\":\"1065910455003\"}}".into(),
        ),
        // testExtractGoodEvent: no pattern matches: the whole frame is the
        // body, no priority header.
        (
            "<10>Good good good data".into(),
            r#"{"@message":"<10>Good good good data","@timestamp":"RECEIVED_ISO","@fields":{"Severity":"2","Facility":"1","timestamp":"RECEIVED"}}"#.into(),
        ),
        // testExtractBadEvent1: PRI not numeric.
        (
            "<10F> bad bad data".into(),
            r#"{"@message":"<10F> bad bad data","@timestamp":"RECEIVED_ISO","@fields":{"Severity":"0","Facility":"0","flume.syslog.status":"Invalid","timestamp":"RECEIVED"}}"#.into(),
        ),
        // testExtractBadEvent2: no `<` first.
        (
            "hi guys! <10> bad bad data".into(),
            r#"{"@message":"hi guys! <10> bad bad data","@timestamp":"RECEIVED_ISO","@fields":{"Severity":"0","Facility":"0","flume.syslog.status":"Invalid","timestamp":"RECEIVED"}}"#.into(),
        ),
    ];
    // The migration guide's status line, through the pattern route.
    let status_frame =
        "<134>1 2026-12-06T10:00:00.000Z web01 billing - - - status code=200 latency_ms=1.5";
    let status_doc = r#"{"@message":"billing - - - status code=200 latency_ms=1.5","@timestamp":"2026-12-06T10:00:00.000Z","@source_host":"web01","@fields":{"code":"200","host":"web01","Severity":"6","Facility":"16","priority":"134","version":"1","timestamp":"1796551200000","latency_ms":"1.5"}}"#;

    let mut stream: Vec<u8> = Vec::new();
    for (frame, _) in &cases {
        stream.extend_from_slice(frame.as_bytes());
        stream.push(b'\n');
    }
    stream.extend_from_slice(status_frame.as_bytes());
    stream.push(b'\n');
    let before = now_ms();
    tcp_send(s.addr("tcp"), &stream);
    let n = cases.len() + 1;
    let docs = s.wait_lines("events.ndjson", n);
    let after = now_ms();
    assert_eq!(
        docs.len(),
        n,
        "waited 10 s for {n} flume documents: {docs:?}"
    );
    let mut compared = 0;
    for ((frame, want), got) in cases.iter().zip(&docs) {
        let parsed: serde_json::Value = serde_json::from_str(got).unwrap();
        let want = if want.contains("RECEIVED") {
            let received: i64 = parsed["@fields"]["timestamp"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no timestamp field in {got}"));
            assert!(
                (before..=after).contains(&received),
                "receive time {received} outside {before}..={after} for {frame:?}"
            );
            let iso = chrono::DateTime::from_timestamp_millis(received)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            want.replace("RECEIVED_ISO", &iso)
                .replace("RECEIVED", &received.to_string())
        } else {
            want.clone()
        };
        let want_value: serde_json::Value = serde_json::from_str(&want).unwrap();
        assert_eq!(parsed, want_value, "field for field, frame {frame:?}");
        assert_eq!(got, &want, "byte for byte, frame {frame:?}");
        compared += 1;
    }
    assert_eq!(
        docs[n - 1],
        status_doc
            .replace("\"code\":\"200\",", "")
            .replace(",\"latency_ms\":\"1.5\"", ""),
        "the status frame on the catch-all flume route has no captures"
    );

    // The pattern route: captures are @fields (Flume's regex_extractor).
    let status = s.wait_lines("status.ndjson", 1);
    assert_eq!(status, [status_doc.to_owned()]);

    // keepFields: testKeepFields' frame (and TestHeader4's, whose `-`
    // Flume wrote as "null").
    let keep = s.wait_lines("keep.ndjson", n);
    let all = s.wait_lines("all.ndjson", n);
    assert_eq!((keep.len(), all.len()), (n, n));
    let message = |line: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["@message"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        message(&keep[2]),
        "2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg"
    );
    assert_eq!(message(&keep[3]), "null ubuntu-11.cloudera.com some msg");
    for (i, (frame, _)) in cases.iter().enumerate() {
        assert_eq!(
            &message(&all[i]),
            frame,
            "keepFields = true keeps the frame"
        );
        // Only the body differs from the default document.
        let mut a: serde_json::Value = serde_json::from_str(&all[i]).unwrap();
        let mut d: serde_json::Value = serde_json::from_str(&docs[i]).unwrap();
        a["@message"] = serde_json::Value::Null;
        d["@message"] = serde_json::Value::Null;
        assert_eq!(a, d, "{frame:?}");
    }
    eprintln!(
        "sent {n} frames; {compared} flume documents equal to Flume's byte for byte, 1 with captures, {n} with keepFields each"
    );
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"tcp\"}"),
        n as u64
    );
    assert!(s.stop().success());
}
