//! Issue #22, the outside tester's findings on spacing and timestamps:
//! readings that were silent (or refused) now name their rule.

use crate::decode::tests::{dec, dec_with, json, log4j, rules};
use crate::event::Protocol;

/// syslog_loose reads these; spaces between header fields are separators.
#[test]
fn spaces_after_pri_and_inside_the_rfc5424_header() {
    for (frame, want) in [
        (
            "<13> 1 2025-03-01T08:00:00Z h a - - - m",
            vec!["space_after_pri"],
        ),
        (
            "<13>\t1 2025-03-01T08:00:00Z h a - - - m",
            vec!["space_after_pri"],
        ),
        (
            "<13>1  2025-03-01T08:00:00Z h a - - - m",
            vec!["header_extra_spaces"],
        ),
        (
            "<13>1 2025-03-01T08:00:00Z h  a -  -   - m",
            vec!["header_extra_spaces"],
        ),
    ] {
        let e = dec(frame);
        assert_eq!(e.protocol, Protocol::Rfc5424, "{frame}");
        assert_eq!(json(&e)["timestamp"], "2025-03-01T08:00:00Z", "{frame}");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("h"), Some("a"), "m"),
            "{frame}"
        );
        assert_eq!(rules(&e), want, "{frame}");
    }
    // Spaces after SD belong to MSG.
    let e = dec("<13>1 2025-03-01T08:00:00Z h a - - -   m");
    assert_eq!((e.message(), rules(&e)), ("  m", vec![]));
    // A tab (and spaces) between PRI and a BSD timestamp.
    let e = dec("<13>\t Dec  1 08:00:00 h a: m");
    assert_eq!(json(&e)["timestamp"], "2026-12-01T08:00:00Z");
    assert_eq!(
        (e.hostname(), e.appname(), e.message()),
        (Some("h"), Some("a"), "m")
    );
    assert_eq!(rules(&e), ["space_after_pri"]);
}

/// RFC 5424 §6.2.3: `T` and `Z` upper case, `TIME-NUMOFFSET` with a colon,
/// at most 6 fraction digits, seconds 00-59 (RFC 3339 allows 60).
#[test]
fn rfc5424_time_forms_name_their_rule() {
    for (frame, ts, want) in [
        (
            "<14>1 2025-07-01t08:00:00z h a - - - m",
            "2025-07-01T08:00:00Z",
            vec!["timestamp_lowercase"],
        ),
        (
            "<14>1 2025-07-01T08:00:00+0200 h a - - - m",
            "2025-07-01T08:00:00+02:00",
            vec!["timestamp_offset_without_colon"],
        ),
        (
            "<14>1 2025-07-01T08:00:00.1234567Z h a - - - m",
            "2025-07-01T08:00:00.1234567Z",
            vec!["timestamp_fraction_long"],
        ),
        (
            "<14>1 2025-07-01T08:00:00.123456789123Z h a - - - m",
            "2025-07-01T08:00:00.123456789Z",
            vec!["timestamp_fraction_long"],
        ),
        (
            "<14>1 2016-12-31T23:59:60Z h a - - - m",
            "2016-12-31T23:59:59Z",
            vec!["timestamp_leap_second"],
        ),
    ] {
        let e = dec(frame);
        assert_eq!(e.protocol, Protocol::Rfc5424, "{frame}");
        assert_eq!(json(&e)["timestamp"], ts, "{frame}");
        assert_eq!((e.hostname(), e.message()), (Some("h"), "m"), "{frame}");
        assert_eq!(rules(&e), want, "{frame}");
    }
    // Six digits and an upper-case T/Z with a colon in the offset: no rule.
    let e = dec("<14>1 2025-07-01T08:00:00.123456+02:00 h a - - - m");
    assert!(e.lenient.is_empty());
}

/// The same in RFC 3164 frames: a leap second, digits past nanoseconds.
#[test]
fn rfc3164_time_forms_name_their_rule() {
    let e = dec("<14>Dec 31 2016 23:59:60 h a: m");
    assert_eq!(json(&e)["timestamp"], "2016-12-31T23:59:59Z");
    assert_eq!(rules(&e), ["timestamp_leap_second"]);
    let e = dec("<14>Nov  4 09:01:02.123456789012 h a: m");
    assert_eq!(json(&e)["timestamp"], "2026-11-04T09:01:02.123456789Z");
    assert_eq!((e.hostname(), e.message()), (Some("h"), "m"));
    assert_eq!(rules(&e), ["timestamp_fraction_long"]);
    // Cisco's milliseconds and an ISO time with 7 digits in RFC 3164 are fine.
    let e = dec("<14>2025-07-01T08:00:00.1234567Z h a: m");
    assert!(e.lenient.is_empty());
}

/// Issue #22, decided and documented (README, Decoding): NULs and line
/// ends at the end of a frame are trailers, a NUL inside is text; an SD-ID
/// repeated without parameters adds nothing to the JSON object, but the
/// event keeps every element.
#[test]
fn trailing_nul_and_repeated_empty_elements() {
    for frame in [
        "<14>1 - h a - - - m\0",
        "<14>1 - h a - - - m\r\n\0",
        "<14>Nov  4 09:01:02 h a: m\0",
    ] {
        let e = dec(frame);
        assert_eq!((e.message(), rules(&e)), ("m", vec![]), "{frame:?}");
    }
    let e = dec("<14>1 - h a - - - m\0x");
    assert_eq!(e.message(), "m\0x");
    let e = dec(r#"<14>1 - h a - - [a x="1"][a][a x="2"] m"#);
    assert_eq!(e.structured_data.len(), 3);
    assert_eq!(
        json(&e)["structured_data"],
        serde_json::json!({"a": {"x": ["1", "2"]}})
    );
    assert_eq!(rules(&e), ["sd_duplicate_id"]);
}

/// syslog_loose `handles_weird_whitespace` (also Vector's syslog source
/// tests): a frame that opens with a line end and indentation before the
/// PRI, as rsyslog's omfwd template wrote it. The whitespace before `<`
/// is skipped and named; what follows the MSG stays MSG, byte for byte.
#[test]
fn whitespace_before_the_pri_is_skipped_and_named() {
    let e = dec(
        "\n            <13>1 2019-02-13T19:48:34+00:00 74794bfb6795 root 8449 - [meta sequenceId=\"1\"] i am foobar\n            ",
    );
    assert_eq!(e.protocol, Protocol::Rfc5424);
    assert_eq!((e.facility, e.severity), (Some(1), Some(5)));
    assert_eq!(json(&e)["timestamp"], "2019-02-13T19:48:34Z");
    assert_eq!(
        (e.hostname(), e.appname(), e.procid(), e.message()),
        (
            Some("74794bfb6795"),
            Some("root"),
            Some("8449"),
            "i am foobar\n            "
        )
    );
    assert_eq!(json(&e)["structured_data"]["meta"]["sequenceId"], "1");
    assert_eq!(rules(&e), vec!["space_before_pri"]);
    // RFC 3164, after SP, HT, CR and LF.
    let e = dec(" \t\r\n<13>Nov  4 09:01:02 host app[7]: m");
    assert_eq!(
        (e.protocol, e.hostname(), e.appname(), e.message()),
        (Protocol::Rfc3164, Some("host"), Some("app"), "m")
    );
    assert_eq!(rules(&e), vec!["space_before_pri"]);
    // Whitespace before anything but a PRI stays undecoded (stack-trace
    // lines), as does a PRI after other bytes.
    for frame in [
        "    at a.B.c(B.java:1)",
        "\t<b>bold</b>",
        "x <13>Nov  4 09:01:02 h a: m",
    ] {
        let e = dec(frame);
        assert_eq!((e.facility, e.message()), (None, frame), "{frame:?}");
    }
}

/// go-syslog's `rfc3164/example_test.go` (`Example_custom_stamp2`) reads a
/// BSD time written year first, `2020 Jul 16 02:15:13`, as it reads
/// `Jul 16 2020 02:15:13`: the year, the time, then the hostname.
#[test]
fn a_bsd_time_written_year_first_is_read_with_its_year() {
    for (frame, host, message) in [
        (
            r#"<134>2020 Jul 16 02:15:13 an 200050021 id=OS time="2020-7-16 02:15:13""#,
            "an",
            r#"200050021 id=OS time="2020-7-16 02:15:13""#,
        ),
        ("<13>2019 Dec  2 16:31:03 host app: Test", "host", "Test"),
    ] {
        let e = dec(frame);
        let j = json(&e);
        assert_eq!(e.protocol, Protocol::Rfc3164, "{frame}");
        assert_eq!(j["hostname"], host, "{frame}");
        assert_eq!(j["message"], message, "{frame}");
        assert!(
            rules(&e).contains(&"timestamp_year_first"),
            "{frame}: {:?}",
            rules(&e)
        );
    }
    assert_eq!(
        json(&dec("<13>2019 Dec  2 16:31:03 host app: Test"))["timestamp"],
        "2019-12-02T16:31:03Z"
    );
    assert_eq!(
        json(&dec(r#"<134>2020 Jul 16 02:15:13 an x"#))["timestamp"],
        "2020-07-16T02:15:13Z"
    );
    // Digits that are no year before a time stay the message.
    let e = dec("<13>20 Dec  2 16:31:03 host app: Test");
    assert_eq!(json(&e)["timestamp"], serde_json::Value::Null);
    assert!(!rules(&e).contains(&"timestamp_year_first"));
}

/// A datagram that ends in a line end or a NUL right after a header field
/// (rsyslog `empty.parse1`: `<14>Jan  6 2009 15:22:26 localhost \n`): the
/// trailer is no part of that field, as it is no part of a message.
#[test]
fn a_frame_trailer_is_no_part_of_the_last_header_field() {
    use serde_json::json;
    for (frame, field, want) in [
        (
            "<14>Jan  6 2009 15:22:26 localhost \n",
            "hostname",
            json!("localhost"),
        ),
        (
            "<14>Jan  6 2009 15:22:26 localhost \n",
            "appname",
            json!(null),
        ),
        ("<14>Aug 30 23:00:05 X4711 AAAA\n", "appname", json!("AAAA")),
        (
            "<14>Aug 30 23:00:05 X4711 tag[12]\r\n",
            "procid",
            json!("12"),
        ),
        ("<14>Aug 30 23:00:05 X4711\n", "hostname", json!("X4711")),
        (
            "<13>Dec  1 08:00:00\n",
            "timestamp",
            json!("2026-12-01T08:00:00Z"),
        ),
        (
            "<13>Dec  1 08:00:00 h kernel:\0",
            "appname",
            json!("kernel"),
        ),
        ("<13>1 2025-03-01T08:00:00Z h\n", "hostname", json!("h")),
        (
            "<13>1 2025-03-01T08:00:00Z h app - -\r\n",
            "msgid",
            json!(null),
        ),
        (
            "<13>1 2025-03-01T08:00:00Z h app - - -\n",
            "structured_data",
            json!(null),
        ),
    ] {
        let e = dec(frame);
        assert_eq!(json(&e)[field], want, "{frame:?}");
        assert_eq!(json(&e)["message"], "", "{frame:?}");
        for rule in [
            "hostname_control_bytes",
            "header_not_printusascii",
            "timestamp_invalid",
            "sd_malformed",
        ] {
            assert!(!rules(&e).contains(&rule), "{frame:?}: {:?}", rules(&e));
        }
    }
    // The frame itself keeps its trailer.
    let e = dec("<14>Aug 30 23:00:05 X4711 AAAA\n");
    assert_eq!(e.text().as_bytes().last(), Some(&b'\n'));
}

/// rsyslog (`permit.squareBracketsInHostname`) reads an IP literal in
/// brackets as the hostname, brackets kept: `[2001:db8::2]`,
/// `[192.0.2.1]`. Only an IP address: `[INFO]` stays the message.
#[test]
fn a_bracketed_ip_literal_is_the_hostname() {
    for (frame, host) in [
        (
            "<129>Mar 10 01:00:00 [2001:db8::2] tag: msgnum:2",
            "[2001:db8::2]",
        ),
        (
            "<129>Mar 10 01:00:00 [192.0.2.1] tag: msgnum:1",
            "[192.0.2.1]",
        ),
    ] {
        let e = dec(frame);
        let j = json(&e);
        assert_eq!(j["hostname"], host, "{frame}");
        assert_eq!(j["appname"], "tag", "{frame}");
        assert!(
            j["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("msgnum:")),
            "{frame}"
        );
        assert!(
            rules(&e).contains(&"hostname_bracketed"),
            "{frame}: {:?}",
            rules(&e)
        );
    }
    for frame in [
        "<13>Mar 10 01:00:00 [INFO] started",
        "<13>Mar 10 01:00:00 [1.2] started",
        "<13>Mar 10 01:00:00 [cafe] started",
    ] {
        let e = dec(frame);
        assert_eq!(json(&e)["hostname"], serde_json::Value::Null, "{frame}");
        assert!(!rules(&e).contains(&"hostname_bracketed"), "{frame}");
    }
}

/// A log4j listener reads the word after the time as the hostname,
/// whatever it is, as it always did: a bracketed IP literal there is no
/// lenient reading (a strict log4j listener keeps accepting it), as
/// `[INFO]` in the same place is none.
#[test]
fn a_bracketed_hostname_on_a_log4j_listener_names_no_rule() {
    for (frame, host) in [
        ("<13>Mar 10 01:00:00 [192.0.2.1] started", "[192.0.2.1]"),
        ("<13>Mar 10 01:00:00 [INFO] started", "[INFO]"),
    ] {
        let e = dec_with(frame.as_bytes(), &log4j());
        assert_eq!(json(&e)["hostname"], host, "{frame}");
        assert_eq!(rules(&e), Vec::<&str>::new(), "{frame}");
    }
}

/// A frame without PRI that opens like a header but is none stays
/// undecoded with its raw text as the message, trailer and all, as every
/// other undecodable frame (`garbage\n`): only decoded header fields and
/// messages leave the trailer out.
#[test]
fn an_undecoded_frame_without_pri_keeps_its_trailer_in_the_message() {
    for frame in [
        "Mar 00 24:00:00 x\n",
        "Mar 00 2100 02:15:13.1234\t\n\0",
        "Dec 32 08:00:00 host app: m\r\n",
        "garbage\n",
    ] {
        let e = dec(frame);
        assert_eq!(e.protocol, Protocol::Unknown, "{frame:?}");
        assert_eq!(e.message(), frame, "{frame:?}");
    }
}
