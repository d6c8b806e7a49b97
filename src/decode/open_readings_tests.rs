//! Issue #22, the open readings (lenient6): frames without PRI, a tab
//! between header fields, comma fractions, SD names outside the grammar,
//! extra spaces inside an SD element. Each reading names its rule.

use bytes::Bytes;

use crate::decode::tests::{RECEIVED_2026_11_24, dec, dec_with, json, log4j, rules};
use crate::decode::{DecodeOptions, decode};
use crate::event::Protocol;

/// A frame without PRI has its header read as after one (rsyslog,
/// parser.c; syslog_loose tests.rs `parse_missing_pri`,
/// `parse_missing_pri_5424`; VRL `parse_syslog` `missing_pri`), and its
/// facility and severity stay empty, as syslog_loose and VRL leave them:
/// the sender gave none, and an assumed `<13>` could not be told from one
/// sent.
#[test]
fn frames_without_pri_read_the_header_and_leave_facility_and_severity_empty() {
    let e = dec("Nov 24 09:01:02 h app: no pri");
    assert_eq!(
        (e.protocol, e.facility, e.severity, e.pri()),
        (Protocol::Rfc3164, None, None, None)
    );
    assert_eq!(
        (
            json(&e)["facility"].is_null(),
            json(&e)["severity"].is_null()
        ),
        (true, true)
    );
    assert!(e.valid);
    assert_eq!(json(&e)["timestamp"], "2026-11-24T09:01:02Z");
    assert_eq!(
        (e.hostname(), e.appname(), e.message()),
        (Some("h"), Some("app"), "no pri")
    );
    assert_eq!(rules(&e), ["pri_missing"]);
    // An ISO time opening the frame: read as after `<13>` (RFC 3164 with an
    // ISO time: host, the word after it as TAG).
    let e = dec("2025-03-01T08:00:00Z h app - - - m");
    let after_pri = dec("<13>2025-03-01T08:00:00Z h app - - - m");
    assert_eq!(json(&e)["timestamp"], "2025-03-01T08:00:00Z");
    assert_eq!(
        (e.hostname(), e.appname(), e.message()),
        (
            after_pri.hostname(),
            after_pri.appname(),
            after_pri.message()
        )
    );
    let mut want = rules(&after_pri);
    want.push("pri_missing");
    assert_eq!(rules(&e), want);
    // RFC 5424 without PRI (syslog_loose `parse_missing_pri_5424`; rsyslog
    // reads `1 ` after a missing PRI as RFC 5424).
    let e = dec(
        "1 2020-05-22T14:59:09.250-03:00 OX-XXX-MX204 OX-XXX-CONTEUDO:rpd 6589 - - bgp_listen_accept: x",
    );
    assert_eq!(
        (e.protocol, e.facility, e.severity),
        (Protocol::Rfc5424, None, None)
    );
    assert_eq!(json(&e)["timestamp"], "2020-05-22T14:59:09.250-03:00");
    assert_eq!(
        (e.hostname(), e.appname(), e.procid(), e.message()),
        (
            Some("OX-XXX-MX204"),
            Some("OX-XXX-CONTEUDO:rpd"),
            Some("6589"),
            "bgp_listen_accept: x"
        )
    );
    assert_eq!(rules(&e), ["pri_missing"]);
}

/// No PRI and a NILVALUE timestamp (syslog_loose tests.rs
/// `<14>1 - 10.0.4.87 Serial-Debugger - - - Serializer started!` without
/// its PRI; go-syslog machine_test.go `122 - - - - - -`, which it rejects
/// for the missing PRI): read with `pri_missing` when the whole RFC 5424
/// header after the `-` parses, as syslog_loose and rsyslog read it.
#[test]
fn frames_without_pri_and_a_nil_time_read_a_whole_rfc5424_header() {
    let e = dec("1 - 10.0.4.87 Serial-Debugger - - - Serializer started!");
    assert_eq!(
        (e.protocol, e.valid, e.facility, e.severity, e.timestamp),
        (Protocol::Rfc5424, true, None, None, None)
    );
    assert_eq!(
        (
            e.hostname(),
            e.appname(),
            e.procid(),
            e.msgid(),
            e.message()
        ),
        (
            Some("10.0.4.87"),
            Some("Serial-Debugger"),
            None,
            None,
            "Serializer started!"
        )
    );
    assert_eq!(rules(&e), ["pri_missing"]);
    let e = dec("122 - - - - - -");
    assert_eq!(
        (e.protocol, e.hostname(), e.message()),
        (Protocol::Rfc5424, None, "")
    );
    assert_eq!(rules(&e), ["pri_missing"]);
    let e = dec(r#"1 - h app 12 ID7 [x@1 a="b"] m"#);
    assert_eq!(
        (e.procid(), e.msgid(), e.sd_param("x@1", "a"), e.message()),
        (Some("12"), Some("ID7"), Some("b"), "m")
    );
    assert_eq!(rules(&e), ["pri_missing"]);
}

/// Text that opens with `1 - ` but is no whole RFC 5424 header after it
/// stays undecoded: without a PRI or a time, only the whole grammar says
/// it is syslog.
#[test]
fn frames_without_pri_and_a_nil_time_but_no_whole_header_stay_undecoded() {
    for frame in [
        "1 - just some text",
        "1 - a b c d e f",
        "1 - h app - -",
        "1 - h app - - [broken",
        "1 - h app - - [x a] m",
        "1 -  h app - - - extra space",
        "1 - h app - - -x",
        "1 - h",
        "1 - ",
    ] {
        let e = dec(frame);
        assert_eq!(
            (e.protocol, e.valid, e.message()),
            (Protocol::Unknown, false, frame),
            "{frame:?}"
        );
        assert!(e.lenient.is_empty(), "{frame:?}");
    }
}

/// No header is forged from text that does not open with a real time.
#[test]
fn frames_without_pri_or_time_stay_undecoded() {
    for frame in [
        "no pri at all",
        "Status: ok",
        "Nov 31 09:01:02 h app: not a date",
        "Nov 24 09:01:02,x h",
        "2025-02-30T08:00:00Z h app: not a date",
        "12: Nov 24 09:01:02 h app: a Cisco counter first",
        " Nov 24 09:01:02 h app: a space first",
        "    at com.example.Svc.run(Svc.java:12)",
        "...the rest of a split message",
        "",
    ] {
        let e = dec(frame);
        assert!(!e.valid, "{frame:?}");
        assert_eq!(
            (e.protocol, e.facility, e.message()),
            (Protocol::Unknown, None, frame)
        );
        assert!(e.lenient.is_empty(), "{frame:?}");
    }
}

/// A log4j listener reads the header as after its own PRI: no TAG, the
/// app from `app_name`.
#[test]
fn frames_without_pri_on_a_log4j_listener() {
    let opts = DecodeOptions {
        app_name: Some("orders".into()),
        ..log4j()
    };
    let e = dec_with(b"Nov 24 11:34:50 vm INFO  [main] Svc - hello", &opts);
    assert_eq!(
        (e.pri(), e.hostname(), e.appname(), e.message()),
        (None, Some("vm"), Some("orders"), "INFO  [main] Svc - hello")
    );
    assert_eq!(rules(&e), ["pri_missing"]);
}

/// A tab between hostname and TAG (rsyslog reads the word with the tab as
/// TAG, `host#011tag:`; syslog_loose host `host`, message `tag: x`): both
/// keep every byte, so does this reading, which also has the TAG.
#[test]
fn a_tab_between_hostname_and_tag() {
    let e = dec("<13>Nov 24 09:01:02 host\ttag: x");
    assert_eq!(
        (e.hostname(), e.appname(), e.message()),
        (Some("host"), Some("tag"), "x")
    );
    assert_eq!(rules(&e), ["header_tab"]);
    let e = dec("<13>Nov 24 09:01:02 host\ttag[12]: x");
    assert_eq!(
        (e.hostname(), e.appname(), e.procid(), e.message()),
        (Some("host"), Some("tag"), Some("12"), "x")
    );
    assert_eq!(rules(&e), ["header_tab"]);
    // A tab inside a word not followed by `TAG:` stays the hostname's byte.
    let e = dec("<13>Dec  1 08:00:00 ho\tst app[1]: x");
    assert_eq!(
        (e.hostname(), rules(&e)),
        (Some("ho\tst"), vec!["hostname_control_bytes"])
    );
}

/// log4j's `%d{ISO8601}` and Python logging write `09:01:02,123`; ISO 8601
/// allows the comma as decimal sign.
#[test]
fn comma_fractions_are_read() {
    for (frame, ts, want) in [
        (
            "<13>Nov 24 09:01:02,123 h app: x",
            "2026-11-24T09:01:02.123Z",
            vec!["timestamp_comma_fraction"],
        ),
        (
            "<13>2025-03-01T08:00:00,5Z h app: x",
            "2025-03-01T08:00:00.5Z",
            vec!["timestamp_comma_fraction"],
        ),
        (
            "<13>Nov 24 09:01:02,1234567891 h app: x",
            "2026-11-24T09:01:02.123456789Z",
            vec!["timestamp_fraction_long", "timestamp_comma_fraction"],
        ),
    ] {
        let e = dec(frame);
        assert_eq!(json(&e)["timestamp"], ts, "{frame}");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("h"), Some("app"), "x"),
            "{frame}"
        );
        assert_eq!(rules(&e), want, "{frame}");
    }
    // The RFC 5424 TIMESTAMP field: read with the same rule.
    let e = dec("<14>1 2025-03-01T08:00:00,123+01:00 h app - - - m");
    assert_eq!(e.protocol, Protocol::Rfc5424);
    assert_eq!(json(&e)["timestamp"], "2025-03-01T08:00:00.123+01:00");
    assert_eq!((e.hostname(), e.message()), (Some("h"), "m"));
    assert_eq!(rules(&e), ["timestamp_comma_fraction"]);
    // A comma without digits is no fraction: the time is not one.
    let e = dec("<13>Nov 24 09:01:02, h app: x");
    assert_eq!((e.timestamp, rules(&e)), (None, vec!["timestamp_invalid"]));
}

/// RFC 5424 §6.3.3: SD-NAME = 1*32PRINTUSASCII except `=`, SP, `]`, `"`.
#[test]
fn sd_names_outside_the_grammar_name_their_rule() {
    const H: &str = "<13>1 2025-03-01T08:00:00Z h app - -";
    for sd in [
        "[a\u{1}b x=\"1\"]",
        "[ab x\u{7f}y=\"1\"]",
        "[ünï x=\"1\"]",
        "[a aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\"1\"]",
        "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa x=\"1\"]",
    ] {
        let e = dec(&format!("{H} {sd} m"));
        assert_eq!((e.structured_data.len(), e.message()), (1, "m"), "{sd}");
        assert_eq!(rules(&e), ["sd_name_invalid"], "{sd}");
    }
    // 32 bytes is the limit, not past it.
    let e = dec(&format!("{H} [{} x=\"1\"] m", "a".repeat(32)));
    assert!(e.lenient.is_empty());
}

/// Two SD-IDs that differ only in bytes that are not UTF-8 are two
/// elements, not one: the names keep the bytes, escaped.
#[test]
fn non_utf8_sd_ids_stay_distinct() {
    let frame =
        b"<13>1 2025-03-01T08:00:00Z h app - - [a\xff x=\"1\"][a\xfe x=\"2\"][b\\c y=\"3\"] m";
    let e = decode(
        Bytes::from_static(frame),
        None,
        RECEIVED_2026_11_24,
        &DecodeOptions::default(),
    );
    let sd = &json(&e)["structured_data"];
    assert_eq!(sd["a\\xFF"]["x"], "1", "{sd}");
    assert_eq!(sd["a\\xFE"]["x"], "2", "{sd}");
    // In such a frame a backslash is escaped too, so no name can pass for
    // another.
    assert_eq!(sd["b\\\\c"]["y"], "3", "{sd}");
    assert_eq!(rules(&e), ["sd_name_invalid"]);
    // The same bytes twice are one SD-ID twice.
    let e = decode(
        Bytes::from_static(b"<13>1 - h app - - [a\xff x=\"1\"][a\xff x=\"2\"] m"),
        None,
        RECEIVED_2026_11_24,
        &DecodeOptions::default(),
    );
    assert_eq!(
        json(&e)["structured_data"]["a\\xFF"]["x"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(rules(&e), ["sd_duplicate_id", "sd_name_invalid"]);
}

/// More than one space between the SD-ID and a parameter or between
/// parameters, or a space before `]` (§6.3: one SP before each PARAM, none
/// before `]`): read as before, now named.
#[test]
fn extra_spaces_inside_an_sd_element() {
    const H: &str = "<13>1 2025-03-01T08:00:00Z h app - -";
    for sd in [
        "[a  x=\"1\"]",
        "[a x=\"1\"  y=\"2\"]",
        "[a x=\"1\" ]",
        "[a ]",
    ] {
        let e = dec(&format!("{H} {sd} m"));
        assert_eq!(e.message(), "m", "{sd}");
        assert_eq!(e.structured_data.len(), 1, "{sd}");
        assert_eq!(rules(&e), ["sd_extra_spaces"], "{sd}");
    }
    let e = dec(&format!("{H} [a x=\"1\"  y=\"2\"] m"));
    assert_eq!(
        (e.sd_param("a", "x"), e.sd_param("a", "y")),
        (Some("1"), Some("2"))
    );
    let e = dec(&format!("{H} [a x=\"1\" y=\"2\"][b] m"));
    assert!(e.lenient.is_empty());
}

/// Outside check (att6, F2): a tab right after the time is a tab-separated
/// application log (zap, TSV layouts), not a header: reading it as one
/// made the log level the hostname and `main.go` the app. The time glued
/// to a tab is no time, and the text stays the message, byte for byte.
#[test]
fn a_tab_after_the_time_opens_no_header() {
    for frame in [
        "<13>Nov 24 09:01:02\tINFO\tmain.go:12\tstarted server",
        "<13>2025-03-01T08:00:00Z\tINFO\tmain\tstarted",
        "<13>Nov 24 09:01:02\thost tag: x",
    ] {
        let e = dec(frame);
        assert_eq!(
            (e.timestamp, e.hostname(), e.appname(), e.message()),
            (None, None, None, &frame[4..]),
            "{frame}"
        );
        assert_eq!(rules(&e), ["timestamp_invalid"], "{frame}");
    }
}

/// Outside check (att6, F1): a dot fraction followed by a comma one
/// (`09:01:02.5,6`) replaced the first fraction with the second, losing
/// `.5` from every field. No time has two fractions: it is not a time.
#[test]
fn a_dot_fraction_then_a_comma_fraction_is_no_time() {
    for frame in [
        "<13>Nov 24 09:01:02.5,6 h app: m",
        "<13>Nov 24 09:01:02.123,456 h app: m",
        "<13>Nov 24 09:01:02.9999999999,1 h app: m",
    ] {
        let e = dec(frame);
        assert_eq!(
            (e.timestamp, e.hostname(), e.message()),
            (None, None, &frame[4..]),
            "{frame}"
        );
        assert_eq!(rules(&e), ["timestamp_invalid"], "{frame}");
    }
}
