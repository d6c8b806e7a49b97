//! Issue #22, the outside tester's findings on RFC 3164 frames (kept
//! apart from `rfc3164.rs` to keep that file within 800 lines), and the
//! readings from before them.

mod issue22_l3 {
    use crate::decode::tests::{dec, json, rules};

    /// Issue #22 (outside tester): an impossible date or time deleted the
    /// timestamp's text. It now stays in the message, byte for byte, the
    /// event has no timestamp, and `timestamp_invalid` names the reading.
    #[test]
    fn impossible_bsd_date_or_time_keeps_its_text() {
        for rest in [
            "Nov 31 09:01:02 h a: m",
            "Nov  4 25:01:02 h a: m",
            "Nov  64 09:01:02 h a: m",
            "Aug 0 09:01:02 h a: m",
            "Nov  4 0001 09:01:02 h a: m",
            "Feb 29 2025 09:01:02 h a: m",
            "Nov  4 09:61:02 h a: m",
        ] {
            let frame = format!("<14>{rest}");
            let e = dec(&frame);
            let j = json(&e);
            assert_eq!(j["timestamp"], serde_json::Value::Null, "{frame}");
            assert_eq!(e.message(), rest, "{frame}");
            assert_eq!(rules(&e), ["timestamp_invalid"], "{frame}");
        }
        // A real date keeps reading as before.
        let e = dec("<14>Nov 30 09:01:02 h a: m");
        assert_eq!((e.hostname(), e.message()), (Some("h"), "m"));
        assert!(e.lenient.is_empty());
    }
}

/// Issue #22 (outside tester): the TAG forms rsyslog and syslog_loose both
/// read, each named.
mod issue22_l3_tags {
    use crate::decode::tests::{dec, rules};

    fn fields(e: &crate::event::Event) -> (Option<&str>, Option<&str>, Option<&str>, &str) {
        (e.hostname(), e.appname(), e.procid(), e.message())
    }

    #[test]
    fn the_word_after_the_hostname_is_a_tag_without_colon() {
        // rsyslog parsertest-parse1.sh 8bit.parse1 (and the upper-case month).
        let e = dec("<167>AUG 10 22:18:24 host tag This msg contains 8-bit European chars: äöü");
        assert_eq!(
            fields(&e),
            (
                Some("host"),
                Some("tag"),
                None,
                "This msg contains 8-bit European chars: äöü"
            )
        );
        assert_eq!(rules(&e), ["tag_without_colon", "month_case"]);
        // rsyslog parsertest-parse3.sh: TAG[PID] without colon.
        let e = dec("<175>Oct 16 2009 23:47:31 hostname tag[1234] This is a message");
        assert_eq!(
            fields(&e),
            (
                Some("hostname"),
                Some("tag"),
                Some("1234"),
                "This is a message"
            )
        );
        assert_eq!(rules(&e), ["tag_without_colon"]);
        // rsyslog mark.parse1 and malformed1.parse1: any word up to SP.
        let e = dec("<167>Feb 18 16:01:59 serverX -- MARK --");
        assert_eq!(fields(&e), (Some("serverX"), Some("--"), None, "MARK --"));
        let e = dec("<167>Oct  8 23:05:06 10.321.1.123 05\",result_code=200,b");
        assert_eq!(
            fields(&e),
            (
                Some("10.321.1.123"),
                Some("05\",result_code=200,b"),
                None,
                ""
            )
        );
        // A capitalised word, `-` (go-syslog, RFC 3164 §5.4 example 2,
        // Flume TestRfc3164HeaderApacheLogWithNulls) are message.
        for (frame, host, msg) in [
            (
                "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
                "10.0.0.99",
                "Use the BFG!",
            ),
            (
                "<166>Jul  6 20:33:28 ABC-1-234567 Some message here",
                "ABC-1-234567",
                "Some message here",
            ),
            (
                "<10>Nov  7 01:11:11 h - hyphen_null [07/Jun/2012]",
                "h",
                "- hyphen_null [07/Jun/2012]",
            ),
        ] {
            let e = dec(frame);
            assert_eq!(fields(&e), (Some(host), None, None, msg), "{frame}");
            assert!(e.lenient.is_empty(), "{frame}");
        }
        // An address or a number is message (an Apache access line).
        let e = dec("<13>Nov 24 11:34:53 web02 10.0.0.9 - kim [24/Nov/2026:11:34:53 +0100] x");
        assert_eq!(
            fields(&e),
            (
                Some("web02"),
                None,
                None,
                "10.0.0.9 - kim [24/Nov/2026:11:34:53 +0100] x"
            )
        );
        // A message that ends at the word after the hostname keeps an
        // empty message; a space after the hostname then more spaces is no TAG.
        let e = dec("<13>Nov 23 10:00:00 vm     at L1.main(L1.java:32)");
        assert_eq!(
            fields(&e),
            (Some("vm"), None, None, "    at L1.main(L1.java:32)")
        );
        assert!(e.lenient.is_empty());
    }

    #[test]
    fn two_spaces_punctuation_and_long_tags() {
        // go-syslog rfc3164/machine_test.go: two spaces before the TAG.
        let e = dec("<132> Apr  4 19:32:33 ix2105  IP6[015]: Beyond scope for packet");
        assert_eq!(
            fields(&e),
            (
                Some("ix2105"),
                Some("IP6"),
                Some("015"),
                "Beyond scope for packet"
            )
        );
        assert_eq!(rules(&e), ["space_after_pri", "tag_after_spaces"]);
        // go-syslog (UniFi): `,` and `+` in the TAG.
        let e = dec("<30>Apr 29 11:44:07 cabinet b4fbe48b48ad,UAP-nanoHD-6.6.55+15189: stahtd: x");
        assert_eq!(
            fields(&e),
            (
                Some("cabinet"),
                Some("b4fbe48b48ad,UAP-nanoHD-6.6.55+15189"),
                None,
                "stahtd: x"
            )
        );
        assert_eq!(rules(&e), ["tag_punctuation", "tag_long"]);
        // A TAG over RFC 3164's 32 bytes, with and without colon.
        let long = "A".repeat(60);
        let e = dec(&format!("<14>Aug 30 23:00:05 X4711 {long}: m"));
        assert_eq!(fields(&e), (Some("X4711"), Some(long.as_str()), None, "m"));
        assert_eq!(rules(&e), ["tag_long"]);
        let e = dec(&format!("<14>Aug 30 23:00:05 X4711 {long}"));
        assert_eq!(fields(&e), (Some("X4711"), Some(long.as_str()), None, ""));
        assert_eq!(rules(&e), ["tag_without_colon", "tag_long"]);
        // Beyond 255 bytes it is message.
        let longer = "A".repeat(256);
        let e = dec(&format!("<14>Aug 30 23:00:05 X4711 {longer}: m"));
        assert_eq!(e.appname(), None);
        assert_eq!(e.message(), format!("{longer}: m"));
    }

    /// rsyslog tests/pmrfc3164-defaultTag.sh: two or more spaces after the
    /// hostname, then `word:` with no SP after the colon, is no TAG
    /// (`%syslogtag%` empty, `%msg%` the text with its spaces); syslog_loose
    /// reads no TAG after two spaces, and go-syslog's TAG needs `: `. The
    /// TAG after spaces stays for `TAG:`/`TAG[PID]:` followed by SP or end.
    #[test]
    fn two_spaces_then_word_colon_text_is_no_tag() {
        for (frame, msg) in [
            ("<129>Mar 10 01:00:00 Hostname1  msgnum:1", " msgnum:1"),
            ("<129>Mar 10 01:00:00 Hostname2   msgnum:2", "  msgnum:2"),
            ("<129>Mar 10 01:00:00 h  app[12]:x", " app[12]:x"),
        ] {
            let e = dec(frame);
            let host = frame.split(' ').nth(3);
            assert_eq!(fields(&e), (host, None, None, msg), "{frame}");
            assert!(e.lenient.is_empty(), "{frame}");
        }
        for (frame, app, pid, msg) in [
            ("<129>Mar 10 01:00:00 h  app: x", "app", None, "x"),
            ("<129>Mar 10 01:00:00 h  app[12]:", "app", Some("12"), ""),
        ] {
            let e = dec(frame);
            assert_eq!(fields(&e), (Some("h"), Some(app), pid, msg), "{frame}");
            assert_eq!(rules(&e), ["tag_after_spaces"], "{frame}");
        }
    }
}

/// Issue #22 (outside tester): Cisco IOS forms from go-syslog's
/// rfc3164/machine_test.go.
mod issue22_l3_cisco {
    use crate::decode::tests::{dec, json, rules};
    use serde_json::json;

    #[test]
    fn the_mnemonic_after_a_cisco_time_is_the_app() {
        for (frame, sd) in [
            (
                "<189>643: *Jan  8 19:46:03.295: %LINEPROTO-5-UPDOWN: Line protocol up",
                json!({"meta": {"sequenceId": "643"}, "timeQuality": {"isSynced": "0"}}),
            ),
            (
                "<189>643: Jan  8 19:46:03.295: %LINEPROTO-5-UPDOWN: Line protocol up",
                json!({"meta": {"sequenceId": "643"}}),
            ),
        ] {
            let e = dec(frame);
            let j = json(&e);
            assert_eq!(j["timestamp"], "2026-01-08T19:46:03.295Z", "{frame}");
            assert_eq!(e.hostname(), None, "{frame}");
            assert_eq!(e.appname(), Some("%LINEPROTO-5-UPDOWN"), "{frame}");
            assert_eq!(e.message(), "Line protocol up", "{frame}");
            assert_eq!(j["structured_data"], sd, "{frame}");
            assert_eq!(rules(&e), ["tag_cisco_mnemonic"], "{frame}");
        }
        let e = dec("<189>269614: myhostname: Apr 11 10:02:08: %LINEPROTO-5-UPDOWN: Line up");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("myhostname"), Some("%LINEPROTO-5-UPDOWN"), "Line up")
        );
    }

    #[test]
    fn two_counters_and_an_empty_one() {
        // `logging` counter, then `service sequence-numbers`: both kept,
        // neither is a hostname.
        let e = dec("<189>105: 000104: Mar 12 07:12:10: %SYS-5-CONFIG_I: Configured");
        let j = json(&e);
        assert_eq!(e.hostname(), None);
        assert_eq!(
            j["structured_data"],
            json!({"meta": {"sequenceId": ["105", "000104"]}})
        );
        assert_eq!(j["timestamp"], "2026-03-12T07:12:10Z");
        assert_eq!(
            (e.appname(), e.message()),
            (Some("%SYS-5-CONFIG_I"), "Configured")
        );
        // Both disabled: an empty counter before the time.
        let e = dec("<189>: Mar 12 07:10:10: %SYS-5-CONFIG_I: Configured");
        let j = json(&e);
        assert_eq!(j["timestamp"], "2026-03-12T07:10:10Z");
        assert_eq!(j["structured_data"], serde_json::Value::Null);
        assert_eq!(
            (e.appname(), e.message()),
            (Some("%SYS-5-CONFIG_I"), "Configured")
        );
    }

    /// A zone name other than UTC/GMT was read as UTC and its text
    /// dropped: the name is kept, the time read in the listener's zone.
    #[test]
    fn a_zone_name_is_kept() {
        let e = dec("<189>Mar  1 00:12:49.135 CET: %SYS-5-RESTART: up");
        let j = json(&e);
        assert_eq!(j["timestamp"], "2026-03-01T00:12:49.135Z");
        assert_eq!(j["structured_data"], json!({"zone": {"name": "CET"}}));
        assert_eq!((e.appname(), e.message()), (Some("%SYS-5-RESTART"), "up"));
        assert_eq!(rules(&e), ["tag_cisco_mnemonic", "timestamp_zone_name"]);
        // UTC names its offset: nothing to keep, no rule for the zone.
        let e = dec("<189>Mar  1 00:12:49.135 UTC: %SYS-5-RESTART: up");
        assert_eq!(json(&e)["structured_data"], serde_json::Value::Null);
        assert_eq!(rules(&e), ["tag_cisco_mnemonic"]);
    }
}

/// Issue #22 (outside tester): rsyslog's own start line carries RFC 5424
/// structured data in an RFC 3164 frame (syslog_loose tests/tests.rs).
mod issue22_l3_sd {
    use crate::decode::tests::{dec, json, rules};
    use serde_json::json;

    #[test]
    fn well_formed_sd_after_the_tag_is_read() {
        for frame in [
            r#"<46>Jan  5 15:33:03 plertrood-ThinkPad-X220 rsyslogd:  [origin software="rsyslogd" swVersion="8.32.0" x-pid="20506" x-info="http://www.rsyslog.com"] start"#,
            r#"<46>2019-02-13T21:53:30.605850+00:00 plertrood-ThinkPad-X220 rsyslogd: [origin software="rsyslogd" swVersion="8.32.0" x-pid="20506" x-info="http://www.rsyslog.com"] start"#,
        ] {
            let e = dec(frame);
            let j = json(&e);
            assert_eq!(
                j["structured_data"],
                json!({"origin": {"software": "rsyslogd", "swVersion": "8.32.0", "x-pid": "20506", "x-info": "http://www.rsyslog.com"}}),
                "{frame}"
            );
            assert_eq!((e.appname(), e.message()), (Some("rsyslogd"), "start"));
            assert_eq!(rules(&e), ["sd_in_rfc3164"], "{frame}");
        }
        // Not well-formed: the text stays the message as sent.
        let frame = r#"<46>Jan  5 15:33:03 h rsyslogd:  [software="rsyslogd"] start"#;
        let e = dec(frame);
        assert_eq!(json(&e)["structured_data"], serde_json::Value::Null);
        assert_eq!(e.message(), r#" [software="rsyslogd"] start"#);
        assert!(e.lenient.is_empty());
        // Brackets in an ordinary message are not structured data.
        let e = dec("<13>Nov  4 09:01:02 h app: [INFO] started");
        assert_eq!(e.message(), "[INFO] started");
        assert!(e.structured_data.is_empty());
    }
}

/// Moved from `rfc3164.rs` (file size limit).
mod hostname {
    use crate::decode::tests::{dec, rules};

    /// Issue #22, an outside tester's frame: control bytes in the hostname
    /// were read silently. The word is still the hostname (nothing is lost:
    /// the bytes are kept), and the rule is named.
    #[test]
    fn issue22_control_bytes_in_hostname_name_their_rule() {
        let e = dec("<13>Dec  1 08:00:00 ho\u{0}st app[1]: x");
        assert_eq!(
            (e.hostname(), e.appname(), e.procid(), e.message()),
            (Some("ho\u{0}st"), Some("app"), Some("1"), "x")
        );
        assert_eq!(rules(&e), ["hostname_control_bytes"]);
        let e = dec("<13>Dec  1 08:00:00 ho\tst app[1]: x");
        assert_eq!(
            (e.hostname(), rules(&e)),
            (Some("ho\tst"), vec!["hostname_control_bytes"])
        );
        // A UTF-8 hostname is not a control byte: no rule.
        let e = dec("<13>Dec  1 08:00:00 höst app[1]: x");
        assert_eq!((e.hostname(), rules(&e)), (Some("höst"), vec![]));
    }
}

/// Moved from `rfc3164.rs` (file size limit).
mod log4j {
    use std::sync::Arc;

    use crate::decode::DecodeOptions;
    use crate::decode::tests::{dec_with, log4j};

    #[test]
    fn a_configured_app_name_is_not_displaced_by_a_word_without_colon() {
        // A listener with `app_name` says its senders name no TAG: the
        // first word of the message stays message (found by an outside
        // tester: `order 42 shipped` lost `order` to the app field).
        let opts = DecodeOptions {
            app_name: Some(Arc::from("orders")),
            ..DecodeOptions::default()
        };
        let e = dec_with(b"<13>Dec  1 08:00:00 web02 order 42 shipped", &opts);
        assert_eq!(e.appname(), Some("orders"));
        assert_eq!(e.message(), "order 42 shipped");
        assert!(
            e.lenient.is_empty(),
            "{:?}",
            e.lenient.iter().collect::<Vec<_>>()
        );
        // A TAG with its colon is still the frame's own, as before.
        let e = dec_with(b"<13>Dec  1 08:00:00 web02 billing: paid", &opts);
        assert_eq!(e.appname(), Some("billing"));
        assert_eq!(e.message(), "paid");
        // Without app_name the word is read as TAG (rsyslog, syslog_loose).
        let e = dec_with(
            b"<13>Dec  1 08:00:00 web02 order 42 shipped",
            &DecodeOptions::default(),
        );
        assert_eq!(e.appname(), Some("order"));
    }

    #[test]
    fn log4j_app_name_comes_from_config() {
        let opts = DecodeOptions {
            app_name: Some(Arc::from("orders")),
            ..log4j()
        };
        let e = dec_with(b"<14>Hello", &opts);
        assert_eq!(e.appname(), Some("orders"));
        // A frame that names its app keeps it.
        let e = dec_with(b"<14>1 - h billing - - - m", &opts);
        assert_eq!(e.appname(), Some("billing"));
    }
}

/// The RFC 3164 readings before issue #22's findings (moved from
/// `rfc3164.rs` to keep that file within 800 lines).
mod basics {
    use crate::decode::DecodeOptions;
    use crate::decode::tests::{dec, dec_with, json, log4j, rules};
    use crate::event::Protocol;

    #[test]
    fn rfc3164_with_tag_and_space_padded_day() {
        let e = dec("<34>Oct  5 22:14:15 mymachine su[230]: 'su root' failed");
        let j = json(&e);
        assert_eq!(j["protocol"], "rfc3164");
        assert_eq!(j["timestamp"], "2026-10-05T22:14:15Z");
        assert_eq!(j["hostname"], "mymachine");
        assert_eq!(j["appname"], "su");
        assert_eq!(j["procid"], "230");
        assert_eq!(j["message"], "'su root' failed");
    }

    #[test]
    fn rfc3164_missing_hostname_and_tag_forms() {
        let e = dec("<13>Nov 23 10:00:00 sshd[42]: Accepted");
        assert_eq!(
            (e.hostname(), e.appname(), e.procid()),
            (None, Some("sshd"), Some("42"))
        );
        let e = dec("<13>Nov 23 10:00:00 h cron: job");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("h"), Some("cron"), "job")
        );
        // The word after the hostname is the TAG, colon or not (rsyslog,
        // syslog_loose; named tag_without_colon).
        let e = dec("<13>Nov 23 10:00:00 h just words");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("h"), Some("just"), "words")
        );
        // No header: only the unmistakable TAG[PID]: form is a TAG.
        let e = dec("<13>Status: ok");
        assert_eq!((e.appname(), e.message()), (None, "Status: ok"));
        let e = dec("<13>app[9]: started");
        assert_eq!(
            (e.appname(), e.procid(), e.message()),
            (Some("app"), Some("9"), "started")
        );
    }

    #[test]
    fn cisco_sequence_numbers_and_clock_markers() {
        let e = dec("<189>15: *Mar  1 00:12:49.135: %SYS-5-CONFIG_I: Configured from console");
        let j = json(&e);
        assert_eq!(j["structured_data"]["meta"]["sequenceId"], "15");
        assert_eq!(j["structured_data"]["timeQuality"]["isSynced"], "0");
        // 1 March is closer to 24 Nov 2026 in 2027 (97 days) than in 2026.
        assert_eq!(j["timestamp"], "2026-03-01T00:12:49.135Z");
        assert_eq!(j["hostname"], serde_json::Value::Null);
        // The mnemonic is the app (issue #22, as for Cisco ASA).
        assert_eq!(j["appname"], "%SYS-5-CONFIG_I");
        assert_eq!(j["message"], "Configured from console");

        let e = dec("<190>2041: core1: .Nov 23 2026 11:34:50.123 UTC: %LINK-3-UPDOWN: down");
        let j = json(&e);
        assert_eq!(j["hostname"], "core1");
        assert_eq!(j["structured_data"]["meta"]["sequenceId"], "2041");
        assert_eq!(j["structured_data"]["timeQuality"]["isSynced"], "0");
        assert_eq!(j["timestamp"], "2026-11-23T11:34:50.123Z");
        assert_eq!((e.appname(), e.message()), (Some("%LINK-3-UPDOWN"), "down"));

        // Synchronised clock, no sequence number, UTC: no structured data added.
        let e = dec("<189>Mar  1 00:12:49.135 UTC: %SYS-5-RESTART: up");
        assert!(e.structured_data.is_empty());
        assert_eq!(e.message(), "up");
    }

    #[test]
    fn log4j_header_false_has_no_hostname_or_tag() {
        let e = dec("<14>Hello from log4j 1.2 default");
        assert_eq!(e.protocol, Protocol::Rfc3164);
        assert_eq!(e.hostname(), None);
        assert_eq!(e.appname(), None);
        assert_eq!(e.message(), "Hello from log4j 1.2 default");
    }

    #[test]
    fn log4j_frames_never_carry_a_tag() {
        let e = dec_with(b"<166>Nov 24 11:34:34 vm Status: ok", &log4j());
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("vm"), None, "Status: ok")
        );
        // The generic reading takes the same word for a TAG.
        let e = dec("<166>Nov 24 11:34:34 vm Status: ok");
        assert_eq!(e.appname(), Some("Status"));
        // Stack-trace lines keep their four leading spaces.
        let e = dec_with(
            b"<187>Nov 24 11:34:31 vm     at L1.main(L1.java:32)",
            &log4j(),
        );
        assert_eq!(e.message(), "    at L1.main(L1.java:32)");
        let e = dec("<187>    at L1.main(L1.java:32)");
        assert_eq!(e.message(), "    at L1.main(L1.java:32)");
    }

    #[test]
    fn log4j_facility_printing_is_recognised_and_stripped_when_configured() {
        let frame = b"<188>Nov 24 11:34:33 vm local7:WARN  [main] Svc - disk 91%";
        let e = dec_with(frame, &DecodeOptions::default());
        assert_eq!(
            e.appname(),
            None,
            "the PRI's own facility name is not a TAG"
        );
        assert_eq!(e.message(), "local7:WARN  [main] Svc - disk 91%");
        let strip = DecodeOptions {
            strip_facility_prefix: true,
            ..DecodeOptions::default()
        };
        let e = dec_with(frame, &strip);
        assert_eq!(e.message(), "WARN  [main] Svc - disk 91%");
        // Another facility's name is a TAG like any other.
        let e = dec_with(b"<188>Nov 24 11:34:33 vm local3:x", &strip);
        assert_eq!((e.appname(), e.message()), (Some("local3"), "x"));
        // Without a header (log4j header=false) too.
        let e = dec_with(b"<188>local7:WARN x", &strip);
        assert_eq!(e.message(), "WARN x");
    }

    /// Issue #22: RFC 3164 TAG forms real daemons write.
    #[test]
    fn issue22_tag_forms_real_daemons_write() {
        // PAM and older daemons: parentheses before the PID.
        let e = dec("<86>Nov  4 09:01:02 web01 cron(pam_unix)[2211]: session opened");
        assert_eq!(
            (e.hostname(), e.appname(), e.procid(), e.message()),
            (
                Some("web01"),
                Some("cron(pam_unix)"),
                Some("2211"),
                "session opened"
            )
        );
        assert_eq!(rules(&e), ["tag_with_parens"]);
        // Cisco ASA/PIX mnemonic where the TAG is, after a host and without one.
        let e = dec("<166>Nov  4 09:01:02 fw01 %ASA-6-302013: Built outbound TCP");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("fw01"), Some("%ASA-6-302013"), "Built outbound TCP")
        );
        assert_eq!(rules(&e), ["tag_cisco_mnemonic"]);
        let e = dec("<166>Nov  4 09:01:02 %ASA-6-302013: Built outbound TCP");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (None, Some("%ASA-6-302013"), "Built outbound TCP")
        );
        assert_eq!(rules(&e), ["tag_cisco_mnemonic"]);
        let e = dec("<166>%ASA-6-302013: Built outbound TCP");
        assert_eq!(
            (e.appname(), e.message()),
            (Some("%ASA-6-302013"), "Built outbound TCP")
        );
        assert_eq!(rules(&e), ["tag_cisco_mnemonic", "tag_without_header"]);
        // A TAG that begins with punctuation.
        let e = dec("<13>Nov  4 09:01:02 host #tag[12]: message");
        assert_eq!(
            (e.hostname(), e.appname(), e.procid(), e.message()),
            (Some("host"), Some("#tag"), Some("12"), "message")
        );
        assert_eq!(rules(&e), ["tag_punctuation"]);
        // Snare's `#001` counter where the hostname would be (rsyslog reallife.parse1).
        let e = dec("<175>Oct 16 23:47:31 #001 MSWinEventLog 0#011Security");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (None, Some("#001"), "MSWinEventLog 0#011Security")
        );
        assert_eq!(rules(&e), ["tag_punctuation"]);
        // An empty TAG, with and without a hostname.
        let e = dec("<166>Nov  4 2025 09:01:02 fw01 : %ASA-6-302013: Built");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("fw01"), None, "%ASA-6-302013: Built")
        );
        assert_eq!(rules(&e), ["tag_empty"]);
        let e = dec("<13>Nov  4 09:01:02 : message");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (None, None, "message")
        );
        assert_eq!(rules(&e), ["tag_empty"]);
        // A TAG with no timestamp and no host.
        let e = dec("<30>kernel: eth0: link up");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (None, Some("kernel"), "eth0: link up")
        );
        assert_eq!(rules(&e), ["tag_without_header"]);
        // What log4j 1.2 (header=false) writes stays message: a capital
        // first letter, an exception class name.
        for frame in [
            "<13>Status: ok",
            "<11>java.lang.IllegalStateException: boom",
        ] {
            let e = dec(frame);
            assert_eq!((e.appname(), e.message()), (None, &frame[4..]), "{frame}");
            assert_eq!(rules(&e), Vec::<&str>::new(), "{frame}");
        }
        // A frame the RFC allows fires no rule.
        let e = dec("<13>Nov  4 09:01:02 host su[230]: ok");
        assert!(e.lenient.is_empty());
        assert!(json(&e).get("lenient").is_none());
    }

    /// Issue #22: a space between PRI and timestamp; a header without MSG.
    #[test]
    fn issue22_spacing_and_partial_headers() {
        let e = dec("<13> Dec  1 08:00:00 web02 app: hello");
        assert_eq!(json(&e)["timestamp"], "2026-12-01T08:00:00Z");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("web02"), Some("app"), "hello")
        );
        assert_eq!(rules(&e), ["space_after_pri"]);
        let e = dec("<13> 2025-12-01T08:00:00Z web02 app: hello");
        assert_eq!(json(&e)["timestamp"], "2025-12-01T08:00:00Z");
        assert_eq!((e.hostname(), e.appname()), (Some("web02"), Some("app")));
        assert_eq!(json(&e)["lenient"], serde_json::json!(["space_after_pri"]));
        // A colon after the time, then hostname and TAG (rsyslog
        // rfc3164.sh); Cisco's `TIME: %MNEMONIC` stays as it was.
        let e = dec("<167>Mar 7 2008 19:06:53: example tag: testmessage");
        assert_eq!(
            (e.hostname(), e.appname(), e.message()),
            (Some("example"), Some("tag"), "testmessage")
        );
        assert_eq!(rules(&e), ["colon_after_timestamp"]);
        // Spaces before text that is not a timestamp are message.
        let e = dec("<13> hello");
        assert_eq!((e.message(), rules(&e)), (" hello", vec![]));
        for (frame, ts) in [
            ("<14>Nov  2 2024 10:11:12 fw01", "2024-11-02T10:11:12Z"),
            ("<14>Nov  2 10:11:12 fw01", "2026-11-02T10:11:12Z"),
        ] {
            let e = dec(frame);
            assert_eq!(json(&e)["timestamp"], ts, "{frame}");
            assert_eq!((e.hostname(), e.message()), (Some("fw01"), ""), "{frame}");
            assert_eq!(rules(&e), ["header_without_message"], "{frame}");
        }
    }
}
