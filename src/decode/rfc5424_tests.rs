//! RFC 5424 decoding tests (moved from `rfc5424.rs`: file size limit).

use crate::decode::DecodeOptions;
use crate::decode::tests::{dec, dec_with, json, rules};
use crate::event::Protocol;

#[test]
fn rfc5424_full() {
    let e = dec(
        r#"<158>1 2026-11-23T22:57:51.012Z vm orders 28965 Audit [mdc@18060 requestId="r-42" user="alice \"the admin\" [ops\]\\x"] Order created id=1001"#,
    );
    let j = json(&e);
    assert_eq!(j["protocol"], "rfc5424");
    assert_eq!(j["facility"], 19);
    assert_eq!(j["severity"], 6);
    assert_eq!(j["timestamp"], "2026-11-23T22:57:51.012Z");
    assert_eq!(j["hostname"], "vm");
    assert_eq!(j["appname"], "orders");
    assert_eq!(j["procid"], "28965");
    assert_eq!(j["msgid"], "Audit");
    assert_eq!(
        j["structured_data"]["mdc@18060"]["user"],
        r#"alice "the admin" [ops]\x"#
    );
    assert_eq!(j["structured_data"]["mdc@18060"]["requestId"], "r-42");
    assert_eq!(j["message"], "Order created id=1001");
    assert_eq!(j["valid"], true);
}

#[test]
fn rfc5424_nil_fields_and_offset() {
    let e = dec("<13>1 2026-11-23T10:00:00.123456+09:00 - - - - -");
    let j = json(&e);
    assert_eq!(j["timestamp"], "2026-11-23T10:00:00.123456+09:00");
    assert!(j["hostname"].is_null());
    assert!(j["appname"].is_null());
    assert!(j["structured_data"].is_null());
    assert_eq!(j["message"], "");
    // RFC 5424 §6.4: the BOM is MSG's first bytes, kept as sent.
    let e = dec("<13>1 - host app - - - \u{feff}hello");
    assert_eq!(e.message(), "\u{feff}hello");
    assert!(e.timestamp.is_none());
}

#[test]
fn rfc5424_version_and_hostname_forms() {
    for host in ["web01.example.com", "192.0.2.7", "2001:db8::7"] {
        let e = dec(&format!("<14>1 2026-11-23T10:00:00Z {host} app - - - hi"));
        assert_eq!(e.hostname(), Some(host));
    }
    // VERSION must not start with 0: such a frame is read as RFC 3164.
    assert_eq!(dec("<14>01 - - - - - - m").protocol, Protocol::Rfc3164);
    assert_eq!(dec("<14>2 - h a p m - x").protocol, Protocol::Rfc5424);
}

#[test]
fn rfc5424_several_sd_elements_and_duplicate_params() {
    let e = dec(r#"<14>1 - h a - - [a@1 k="1" k="2"][b x="\]"] msg"#);
    assert_eq!(e.structured_data.len(), 2);
    let a = &e.structured_data[0];
    assert_eq!(e.resolve(&a.id), "a@1");
    let values: Vec<&str> = a.params.iter().map(|p| e.resolve(&p.value)).collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(e.resolve(&e.structured_data[1].params[0].value), "]");
    assert_eq!(e.message(), "msg");
    assert_eq!(
        json(&e)["structured_data"]["a@1"]["k"],
        serde_json::json!(["1", "2"])
    );
}

/// The decoder keeps the last two date-times it read (per thread):
/// three taking turns (each evicting one), two alternating, and an
/// impossible one in between are each read as written.
#[test]
fn date_times_taking_turns_are_each_read_as_written() {
    let times = [
        "2026-11-24T11:34:54.606Z",
        "2003-10-11T22:14:15.003+01:00",
        "1999-12-31T23:59:59-05:30",
    ];
    for k in [0, 1, 0, 2, 1, 0, 3, 1, 0, 0, 2, 2, 1] {
        let Some(written) = times.get(k) else {
            let e = dec("<14>1 2026-02-30T11:34:54Z h a - - - m");
            assert_eq!(e.protocol, Protocol::Rfc3164);
            continue;
        };
        let e = dec(&format!("<14>1 {written} h a - - - m"));
        assert_eq!(json(&e)["timestamp"], *written);
    }
}

/// Issue #22: RFC 5424 frames that break the grammar but Flume reads.
#[test]
fn issue22_rfc5424_fields_missing_after_hostname() {
    let e = dec("<14>1 2025-03-01T08:00:00 db01 backup done");
    assert_eq!(e.protocol, Protocol::Rfc5424);
    assert_eq!(json(&e)["timestamp"], "2025-03-01T08:00:00Z");
    assert_eq!(
        (e.hostname(), e.appname(), e.message()),
        (Some("db01"), None, "backup done")
    );
    assert_eq!(
        rules(&e),
        ["header_fields_missing", "timestamp_without_offset"]
    );
    let e = dec("<10>1 2012-04-13T11:11:11.999 - some msg");
    assert_eq!(json(&e)["timestamp"], "2012-04-13T11:11:11.999Z");
    assert_eq!((e.hostname(), e.message()), (None, "some msg"));
    let e = dec("<14>1 2025-03-01T08:00:00Z db01");
    assert_eq!((e.hostname(), e.message()), (Some("db01"), ""));
    assert_eq!(rules(&e), ["header_fields_missing"]);
    // Read in the listener's zone.
    let opts = DecodeOptions {
        timezone: "Europe/Berlin".parse().unwrap(),
        ..DecodeOptions::default()
    };
    let e = dec_with(b"<14>1 2025-07-01T08:00:00.25 db01 app - - - m", &opts);
    assert_eq!(json(&e)["timestamp"], "2025-07-01T08:00:00.25+02:00");
    assert_eq!(rules(&e), ["timestamp_without_offset"]);
    // The frame ends after MSGID.
    let e = dec("<14>1 2025-03-01T08:00:00Z h app 1 ID");
    assert_eq!((e.msgid(), rules(&e)), (Some("ID"), vec!["sd_missing"]));
}

/// Issue #22: structured data that is nearly right.
#[test]
fn issue22_structured_data_nearly_right() {
    let e = dec(r#"<14>1 2025-03-01T08:00:00Z h app - - [meta sequenceId= "5"] msg"#);
    assert_eq!(e.sd_param("meta", "sequenceId"), Some("5"));
    assert_eq!(e.message(), "msg");
    assert_eq!(rules(&e), ["sd_space_around_equals"]);
    // A parameter without a value: the element and its well-formed
    // parameters are recovered; its text stays in the message.
    for frame in [
        r#"<14>1 2025-03-01T08:00:00Z h app - - [a x="1"][origin ip software="s"] msg"#,
        r#"<14>1 2025-03-01T08:00:00Z h app - - [a x="1"][origin ip= software="s"] msg"#,
    ] {
        let e = dec(frame);
        assert_eq!(e.sd_param("a", "x"), Some("1"), "{frame}");
        assert_eq!(e.sd_param("origin", "software"), Some("s"), "{frame}");
        assert_eq!(e.sd_param("origin", "ip"), None, "{frame}");
        let at = frame.find("[origin").unwrap();
        assert_eq!(e.message(), &frame[at..], "{frame}");
        assert_eq!(rules(&e), ["sd_param_without_value"], "{frame}");
    }
    // An element that cannot be read: the ones before it are kept.
    let frame = r#"<14>1 2025-03-01T08:00:00Z h app - - [a x="1"][broken m"#;
    let e = dec(frame);
    assert_eq!(e.sd_param("a", "x"), Some("1"));
    assert_eq!(
        (e.message(), rules(&e)),
        ("[broken m", vec!["sd_malformed"])
    );
}

/// Issue #22, an outside tester's frames: readings that kept everything
/// but named no rule, so strict listeners accepted them. Each now names
/// its rule (and strict rejects it, as it does every rule).
#[test]
fn issue22_unusual_readings_name_their_rule() {
    const H: &str = "<13>1 2025-03-01T08:00:00Z db01 app 12 ID";
    // (a) No space between SD and MSG: nothing is lost reading `garbage`
    // as the message, but §6 requires the SP.
    let e = dec(&format!(r#"{H} [a x="1"]garbage"#));
    assert_eq!((e.sd_param("a", "x"), e.message()), (Some("1"), "garbage"));
    assert_eq!(rules(&e), ["sd_no_space_before_msg"]);
    // (b) The frame ends after MSGID and a space: SD is missing just as
    // without the space.
    let e = dec(&format!("{H} "));
    assert_eq!((e.msgid(), rules(&e)), (Some("ID"), vec!["sd_missing"]));
    // (c) `]` unescaped in a PARAM-VALUE (§6.3.3: MUST be escaped):
    // read up to the closing quote, which keeps the `]`.
    let e = dec(&format!(r#"{H} [meta ip="a]b"] msg"#));
    assert_eq!(
        (e.sd_param("meta", "ip"), e.message()),
        (Some("a]b"), "msg")
    );
    assert_eq!(rules(&e), ["sd_value_unescaped_bracket"]);
    // An escaped one is the RFC's form: no rule.
    let e = dec(&format!(r#"{H} [meta ip="a\]b"] msg"#));
    assert_eq!((e.sd_param("meta", "ip"), rules(&e)), (Some("a]b"), vec![]));
    // (d) Bytes outside PRINTUSASCII in header fields (§6: HOSTNAME,
    // APP-NAME, PROCID, MSGID are 1*PRINTUSASCII): kept as sent (the
    // invalid UTF-8 replaced, the frame's bytes kept in its raw form).
    let e = dec_with(
        b"<13>1 2025-03-01T08:00:00Z h\xffst a\xfep 1 ID - m",
        &DecodeOptions::default(),
    );
    assert_eq!(
        (e.protocol, e.hostname(), e.appname(), e.message()),
        (
            Protocol::Rfc5424,
            Some("h\u{fffd}st"),
            Some("a\u{fffd}p"),
            "m"
        )
    );
    assert_eq!(rules(&e), ["header_not_printusascii"]);
    let e = dec("<13>1 2025-03-01T08:00:00Z h\u{1}st app 1 I\tD - m");
    assert_eq!((e.hostname(), e.msgid()), (Some("h\u{1}st"), Some("I\tD")));
    assert_eq!(rules(&e), ["header_not_printusascii"]);
    // (f) An SD-ID twice (§6.3.2: MUST NOT): every value is kept, in
    // order.
    let e = dec(&format!(r#"{H} [a x="1"][a x="2"] m"#));
    assert_eq!(
        json(&e)["structured_data"]["a"]["x"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(rules(&e), ["sd_duplicate_id"]);
    // A parameter twice is the RFC's own form (§6.3.3: "An SD-PARAM
    // MAY be repeated multiple times inside an SD-ELEMENT"): no rule.
    let e = dec(&format!(r#"{H} [a x="1" x="2"] m"#));
    assert_eq!(
        json(&e)["structured_data"]["a"]["x"],
        serde_json::json!(["1", "2"])
    );
    assert!(e.lenient.is_empty());
    // Distinct ids and names: no rule.
    let e = dec(&format!(r#"{H} [a x="1" y="2"][b x="3"] m"#));
    assert!(e.lenient.is_empty());
}

mod issue22_l3 {
    use crate::decode::tests::{dec, json, rules};
    use crate::event::Protocol;

    /// Issue #22 (outside tester): fields missing after the hostname and a
    /// message of three words or more were read as APP-NAME, PROCID and
    /// MSGID, the fourth word taken for malformed structured data.
    #[test]
    fn fields_missing_before_a_long_message() {
        let e = dec("<14>1 2025-03-01T08:00:00 db01 nightly backup finished in 42s");
        assert_eq!(e.protocol, Protocol::Rfc5424);
        assert_eq!(json(&e)["timestamp"], "2025-03-01T08:00:00Z");
        assert_eq!(
            (e.hostname(), e.appname(), e.procid(), e.msgid()),
            (Some("db01"), None, None, None)
        );
        assert_eq!(e.message(), "nightly backup finished in 42s");
        assert_eq!(
            rules(&e),
            ["header_fields_missing", "timestamp_without_offset"]
        );
        // A NILVALUE among APP-NAME, PROCID and MSGID is a header the sender
        // wrote: malformed SD stays malformed SD (kept in the message).
        let e = dec("<14>1 2025-03-01T08:00:00Z h app - ID garbage here");
        assert_eq!(
            (e.appname(), e.msgid(), e.message()),
            (Some("app"), Some("ID"), "garbage here")
        );
        assert_eq!(rules(&e), ["sd_malformed"]);
    }
}

/// RFC 5424 §6: HOSTNAME 1*255, APP-NAME 1*48, PROCID 1*128, MSGID 1*32
/// PRINTUSASCII. A longer field is read as sent and names
/// `header_field_long` (go-syslog machine_test.go rejects these:
/// `<1>1 - - abcdefghilmnopqrstuvzabcdefghilmnopqrstuvzabcdefX - - -`, a
/// 49-byte APP-NAME, and `<1>1 - - - - abcdefghilmnopqrstuvzabcdefghilmX -`,
/// a 33-byte MSGID); a field at its limit names nothing.
#[test]
fn header_fields_over_their_rfc5424_length_are_read_and_named() {
    let app49 = "abcdefghilmnopqrstuvzabcdefghilmnopqrstuvzabcdefX";
    let e = dec(&format!("<1>1 - - {app49} - - -"));
    assert_eq!((e.protocol, e.appname()), (Protocol::Rfc5424, Some(app49)));
    assert_eq!(rules(&e), ["header_field_long"]);
    let msgid33 = "abcdefghilmnopqrstuvzabcdefghilmX";
    let e = dec(&format!("<1>1 - - - - {msgid33} -"));
    assert_eq!((e.protocol, e.msgid()), (Protocol::Rfc5424, Some(msgid33)));
    assert_eq!(rules(&e), ["header_field_long"]);
    let (h256, p129) = ("h".repeat(256), "7".repeat(129));
    let e = dec(&format!("<14>1 - {h256} app - - - m"));
    assert_eq!((e.hostname(), e.message()), (Some(h256.as_str()), "m"));
    assert_eq!(rules(&e), ["header_field_long"]);
    let e = dec(&format!("<14>1 - h app {p129} - - m"));
    assert_eq!((e.procid(), e.message()), (Some(p129.as_str()), "m"));
    assert_eq!(rules(&e), ["header_field_long"]);
    // A long hostname in a header cut short after it.
    let e = dec(&format!("<14>1 2025-03-01T08:00:00Z {h256}"));
    assert_eq!(e.hostname(), Some(h256.as_str()));
    assert_eq!(rules(&e), ["header_fields_missing", "header_field_long"]);
    // At the limits: nothing named.
    let (h, a, p, m) = (
        "h".repeat(255),
        "a".repeat(48),
        "7".repeat(128),
        "M".repeat(32),
    );
    let e = dec(&format!("<14>1 - {h} {a} {p} {m} - x"));
    assert_eq!(
        (
            e.hostname(),
            e.appname(),
            e.procid(),
            e.msgid(),
            e.message()
        ),
        (
            Some(h.as_str()),
            Some(a.as_str()),
            Some(p.as_str()),
            Some(m.as_str()),
            "x"
        )
    );
    assert!(e.lenient.is_empty(), "{:?}", rules(&e));
}
