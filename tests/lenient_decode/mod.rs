//! Issue #22: leniency is visible, never silent. The lenient rule a frame
//! needed is in its document and counted in `/metrics` by rule; a
//! `decode = "strict"` listener rejects such frames and counts each one.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{EVENTS_ROUTE, Sluice, config, read_lines, sluice_parse, wait_while};

/// Frames that need a lenient rule, with the rule.
const LENIENT: [(&str, &str); 33] = [
    (
        "<86>Nov  4 09:01:02 web01 cron(pam_unix)[2211]: session closed",
        "tag_with_parens",
    ),
    (
        "<166>Nov  4 09:01:02 fw01 %ASA-6-302013: Built outbound",
        "tag_cisco_mnemonic",
    ),
    ("<13> Dec  1 08:00:00 web02 app: hello", "space_after_pri"),
    (
        "<14>1 2025-03-01T08:00:00Z db01 backup done",
        "header_fields_missing",
    ),
    (
        r#"<14>1 2025-03-01T08:00:00Z h app - - [meta sequenceId= "5"] msg"#,
        "sd_space_around_equals",
    ),
    ("<30>kernel: eth0: link up", "tag_without_header"),
    // An outside tester's frames that strict listeners used to accept.
    (
        r#"<13>1 2025-03-01T08:00:00Z db01 app 12 ID [a x="1"]garbage"#,
        "sd_no_space_before_msg",
    ),
    (
        r#"<13>1 2025-03-01T08:00:00Z db01 app 12 ID [meta ip="a]b"] bracket in a value"#,
        "sd_value_unescaped_bracket",
    ),
    (
        "<13>1 2025-03-01T08:00:00Z h\u{1}st app 1 ID - a control byte in the hostname",
        "header_not_printusascii",
    ),
    (
        "<13>Dec  1 08:00:00 ho\u{0}st app[1]: a NUL in the hostname",
        "hostname_control_bytes",
    ),
    (
        r#"<13>1 2025-03-01T08:00:00Z db01 app 12 ID [a x="1"][a x="2"] one id twice"#,
        "sd_duplicate_id",
    ),
    // The outside tester's second round (issue #22): each class named.
    (
        "<14>Nov 31 09:01:02 h a: an impossible date",
        "timestamp_invalid",
    ),
    (
        "<13>Nov  4 09:01:02 host tag no colon after the tag",
        "tag_without_colon",
    ),
    (
        "<13>Nov  4 09:01:02 host  IP6[015]: two spaces before the tag",
        "tag_after_spaces",
    ),
    (
        "<13>Nov  4 09:01:02 host aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: a long tag",
        "tag_long",
    ),
    (
        "<13>NOV  4 09:01:02 host app: an upper-case month",
        "month_case",
    ),
    (
        "<189>Mar  1 00:12:49.135 CET: a zone name",
        "timestamp_zone_name",
    ),
    (
        r#"<46>Jan  5 15:33:03 h rsyslogd: [origin software="rsyslogd"] sd in an RFC 3164 frame"#,
        "sd_in_rfc3164",
    ),
    (
        "<13>1  2025-03-01T08:00:00Z h app - - - two spaces after the version",
        "header_extra_spaces",
    ),
    (
        "<14>1 2025-07-01t08:00:00z h app - - - lower-case t and z",
        "timestamp_lowercase",
    ),
    (
        "<14>1 2025-07-01T08:00:00+0200 h app - - - offset without colon",
        "timestamp_offset_without_colon",
    ),
    (
        "<14>1 2025-07-01T08:00:00.1234567Z h app - - - seven fraction digits",
        "timestamp_fraction_long",
    ),
    (
        "<14>1 2016-12-31T23:59:60Z h app - - - a leap second",
        "timestamp_leap_second",
    ),
    (
        "<13>Nov  4 09:01:02 host prógram[12]: a non-ASCII byte in the tag",
        "tag_unusual_bytes",
    ),
    (
        "<13>Feb 29 09:01:02 host app: a leap day without a year",
        "timestamp_leap_day",
    ),
    // The open readings (lenient6).
    (
        "Nov  4 09:01:02 host app: a frame without PRI",
        "pri_missing",
    ),
    (
        "<13>Nov  4 09:01:02 host\ttag: a tab before the tag",
        "header_tab",
    ),
    (
        "<13>Nov  4 09:01:02,123 host app: a comma fraction",
        "timestamp_comma_fraction",
    ),
    (
        "<13>1 2025-03-01T08:00:00Z h app - - [a\u{1}b x=\"1\"] a control byte in an SD-ID",
        "sd_name_invalid",
    ),
    (
        "<13>1 2025-03-01T08:00:00Z h app - - [a x=\"1\" ] a space before the bracket",
        "sd_extra_spaces",
    ),
    // Issue #22 (lenient7b): syslog_loose `handles_weird_whitespace`.
    (
        " \t<13>Nov  4 09:01:02 host app: whitespace before the PRI",
        "space_before_pri",
    ),
    // lenient7a: no PRI and a NILVALUE time before a whole RFC 5424
    // header; an APP-NAME over RFC 5424's 48 bytes.
    (
        "1 - host app - - - a frame without PRI or time",
        "pri_missing",
    ),
    (
        "<14>1 2025-03-01T08:00:00Z h aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa - - - an app name over 48 bytes",
        "header_field_long",
    ),
];

/// Frames that fit RFC 5424 / RFC 3164 as written.
const FITTING: [&str; 2] = [
    "<14>1 2025-03-01T08:00:00Z h app - - - fits RFC 5424",
    "<34>Oct 11 22:14:15 mymachine su: fits RFC 3164",
];

const ROUNDS: usize = 25;

/// Every frame of [`LENIENT`] and [`FITTING`], `ROUNDS` times, LF-framed
/// on one connection.
fn send_rounds(s: &Sluice, listener: &str) -> usize {
    let mut c = TcpStream::connect(s.addr(listener)).unwrap();
    let mut sent = 0;
    for _ in 0..ROUNDS {
        for frame in LENIENT.iter().map(|(f, _)| *f).chain(FITTING) {
            c.write_all(frame.as_bytes()).unwrap();
            c.write_all(b"\n").unwrap();
            sent += 1;
        }
    }
    c.flush().unwrap();
    sent
}

#[test]
fn lenient_frames_are_marked_counted_by_rule_and_rejected_by_a_strict_listener() {
    let extra = r#"
[[listeners]]
name = "strict"
protocol = "tcp"
listen = "127.0.0.1:0"
decode = "strict"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let m = |sample: String| s.metric(&sample);

    // The default listener ("tcp", lenient) takes everything and marks it.
    let sent_lenient = send_rounds(&s, "tcp");
    let lines = s.wait_lines("events.ndjson", sent_lenient);
    assert_eq!(
        lines.len(),
        sent_lenient,
        "waited for every event of the lenient listener"
    );
    let mut marked = 0;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = v["message"].as_str().unwrap();
        match LENIENT.iter().find(|(f, _)| f.ends_with(message)) {
            Some((_, rule)) => {
                assert_eq!(v["lenient"], serde_json::json!([rule]), "{line}");
                if *rule == "pri_missing" {
                    // No PRI: no facility or severity is made up.
                    assert!(v["facility"].is_null() && v["severity"].is_null(), "{line}");
                    assert!(v["hostname"].is_string(), "{line}");
                }
                marked += 1;
            }
            None => assert!(v.get("lenient").is_none(), "{line}"),
        }
    }
    assert_eq!(marked, ROUNDS * LENIENT.len());

    // The strict listener delivers what fits and rejects the rest, counted.
    let sent_strict = send_rounds(&s, "strict");
    let rejected =
        || s.metric("sluice_listener_skipped_frames_total{listener=\"strict\",reason=\"strict\"}");
    let want_rejected = (ROUNDS * LENIENT.len()) as u64;
    wait_while!(10, || rejected() < want_rejected);
    let all = s.wait_lines("events.ndjson", sent_lenient + ROUNDS * FITTING.len());
    std::thread::sleep(Duration::from_millis(300));
    let delivered_strict = read_lines(&s.path("events.ndjson")).len() - sent_lenient;
    let rejected_strict = rejected();
    eprintln!(
        "strict listener: sent {sent_strict}, delivered {delivered_strict}, rejected (counted) {rejected_strict}; lenient listener: sent {sent_lenient}, delivered {}",
        lines.len()
    );
    assert_eq!(
        sent_strict as u64,
        delivered_strict as u64 + rejected_strict,
        "sent = delivered + counted drops ({} lines in all)",
        all.len()
    );
    assert_eq!(rejected_strict, want_rejected);
    for line in &read_lines(&s.path("events.ndjson"))[sent_lenient..] {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("lenient").is_none(), "strict delivered {line}");
    }

    // Both listeners count every rule that fired; the lenient one rejects
    // nothing.
    for (_, rule) in LENIENT {
        let frames = LENIENT.iter().filter(|(_, r)| *r == rule).count();
        for listener in ["tcp", "strict"] {
            let n = m(format!(
                "sluice_decode_lenient_frames_total{{listener=\"{listener}\",rule=\"{rule}\"}}"
            ));
            eprintln!("{listener} {rule}: {n}");
            assert_eq!(n, (ROUNDS * frames) as u64, "{listener} {rule}");
        }
    }
    assert_eq!(
        m("sluice_listener_skipped_frames_total{listener=\"tcp\",reason=\"strict\"}".into()),
        0
    );
    assert!(s.stop().success());
}

#[test]
fn sluice_parse_shows_the_rule_and_what_a_strict_listener_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "[[listeners]]\nname = \"s\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\ndecode = \"strict\"\n\
         [[sinks]]\nname = \"out\"\ntype = \"stdout\"\n[default_route]\nsink = \"out\"\ndocument = {}\n",
    )
    .unwrap();
    let input = b"<86>Nov  4 09:01:02 web01 cron(pam_unix)[2211]: session closed\n<34>Oct 11 22:14:15 mymachine su: fits\n";
    let plain = sluice_parse(&["--framing", "lf"], input);
    assert_eq!(plain[0]["appname"], "cron(pam_unix)");
    assert_eq!(plain[0]["lenient"], serde_json::json!(["tag_with_parens"]));
    assert!(plain[0].get("rejected").is_none());
    assert!(plain[1].get("lenient").is_none());
    let strict = sluice_parse(
        &[
            "-c",
            path.to_str().unwrap(),
            "--listener",
            "s",
            "--framing",
            "lf",
        ],
        input,
    );
    assert_eq!(strict[0]["rejected"], "strict");
    assert_eq!(strict[0]["lenient"], serde_json::json!(["tag_with_parens"]));
    assert!(strict[0].get("routes").is_none());
    assert!(strict[1].get("rejected").is_none());
    assert_eq!(strict[1]["message"], "fits");
}

/// syslog_loose `handles_weird_whitespace` as one datagram: LF and
/// indentation before the PRI are skipped and named, the trailing ones
/// stay in MSG; a strict listener rejects the frame.
#[test]
fn whitespace_before_the_pri_is_named_and_rejected_by_a_strict_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "[[listeners]]\nname = \"s\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\ndecode = \"strict\"\n\
         [[sinks]]\nname = \"out\"\ntype = \"stdout\"\n[default_route]\nsink = \"out\"\ndocument = {}\n",
    )
    .unwrap();
    let input = b"\n            <13>1 2019-02-13T19:48:34+00:00 74794bfb6795 root 8449 - [meta sequenceId=\"1\"] i am foobar\n            ";
    let plain = sluice_parse(&["--framing", "datagram"], input);
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0]["hostname"], "74794bfb6795");
    assert_eq!(plain[0]["appname"], "root");
    assert_eq!(plain[0]["structured_data"]["meta"]["sequenceId"], "1");
    assert_eq!(plain[0]["message"], "i am foobar\n            ");
    assert_eq!(plain[0]["lenient"], serde_json::json!(["space_before_pri"]));
    let strict = sluice_parse(&["-c", path.to_str().unwrap(), "--listener", "s"], input);
    assert_eq!(strict[0]["rejected"], "strict");
    assert_eq!(
        strict[0]["lenient"],
        serde_json::json!(["space_before_pri"])
    );
}
