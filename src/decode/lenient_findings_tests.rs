//! Issue #22, the outside tester's open findings: SD-IDs by the thousand,
//! words that cannot be a TAG, TAGs with unusual bytes, timestamps that
//! are not times.

use crate::decode::rfc5424::structured_data_counted;
use crate::decode::tests::{dec, rules};
use crate::event::LenientRule;

/// `[i0 x="1"][i1 x="1"]…`: `n` elements, all with distinct SD-IDs of the
/// same first byte (so the 64-bit filter cannot tell them apart).
fn distinct_ids(n: usize) -> String {
    (0..n).map(|k| format!("[i{k} x=\"1\"]")).collect()
}

/// 5,000 distinct SD-IDs in one 64 KB frame took 1.1 s (debug): each new
/// ID was compared with every earlier one. The comparisons are now at most
/// 34 per element (32 byte-wise, then a hash set).
#[test]
fn distinct_sd_ids_cost_comparisons_linear_in_their_number() {
    for n in [10, 100, 5_000] {
        let sd = distinct_ids(n);
        let (read, comparisons) = structured_data_counted(sd.as_bytes(), sd.as_bytes());
        assert_eq!(read.elements.len(), n);
        assert!(read.rest.is_empty() && read.kept_from.is_none());
        assert!(
            !read.lenient.contains(LenientRule::SdDuplicateId),
            "{n} ids"
        );
        println!("{n} distinct SD-IDs: {comparisons} comparisons");
        assert!(
            comparisons <= 34 * n,
            "{n} distinct SD-IDs took {comparisons} comparisons (bound {})",
            34 * n
        );
    }
}

/// Past the byte-wise comparisons, a repeated SD-ID is still found, and
/// every element is kept.
#[test]
fn a_repeated_sd_id_is_found_after_thousands_of_others() {
    for n in [5, 40, 5_000] {
        for repeat in [0, n / 2, n - 1] {
            let sd = format!("{}[i{repeat} y=\"2\"]", distinct_ids(n));
            let (read, _) = structured_data_counted(sd.as_bytes(), sd.as_bytes());
            assert_eq!(read.elements.len(), n + 1, "{n} ids, i{repeat} again");
            assert!(
                read.lenient.contains(LenientRule::SdDuplicateId),
                "{n} ids, i{repeat} again"
            );
        }
    }
    let frame = format!(
        "<13>1 2025-03-01T08:00:00Z h a - - {}[i7 y=\"2\"] m",
        distinct_ids(3_000)
    );
    let e = dec(&frame);
    assert_eq!(rules(&e), vec!["sd_duplicate_id"]);
    assert_eq!(e.structured_data.len(), 3_001);
    assert_eq!(e.message(), "m");
}

fn fields(e: &crate::event::Event) -> (Option<&str>, Option<&str>, Option<&str>, &str) {
    (e.hostname(), e.appname(), e.procid(), e.message())
}

/// The first word of a message sent without TAG was taken for the app
/// (`tag_without_colon`), leaving routes that match the message without
/// it. Words that cannot be a program's name stay message; rsyslog and
/// syslog_loose take any word (rsyslog added `force.tagEndingByColon`,
/// 8.2508.0, to refuse them all).
#[test]
fn words_that_cannot_be_a_program_name_stay_message() {
    for msg in [
        r#"{"level":"info","msg":"started"}"#,
        r#"{"level": "info"}"#,
        "level=info msg=started",
        r#""GET / HTTP/1.1" 200 512"#,
        "[2025-01-01 10:00:00] started",
        "<INFO> started",
        "'quoted' text",
        "(note) text",
        "INFO started",
        "WARN disk almost full",
        "WARNING disk almost full",
        "ERROR failed",
        "error failed",
        "DEBUG x=1",
        "TRACE enter",
        "FATAL out of memory",
        "NOTICE x",
        "CRITICAL x",
        "SEVERE x",
        "Ärger im Büro",
        "done, and more",
        "finished. next",
    ] {
        let frame = format!("<13>Nov  4 09:01:02 host {msg}");
        let e = dec(&frame);
        assert_eq!(fields(&e), (Some("host"), None, None, msg), "{frame}");
        assert!(e.lenient.is_empty(), "{frame}: {:?}", rules(&e));
    }
}

/// What the corpus needs stays a TAG: lower-case words, non-ASCII ones
/// (syslog_loose's own test), rsyslog's malformed1 and weird.parse1.
#[test]
fn words_that_may_be_a_program_name_stay_the_tag() {
    for (frame, app, msg) in [
        (
            "<46>Jan 5 10:01:00 Übergröße außerplanmäßig größenordnungsmäßig",
            "außerplanmäßig",
            "größenordnungsmäßig",
        ),
        (
            "<167>Oct  8 23:05:06 10.321.1.123 05\",result_code=200,b",
            "05\",result_code=200,b",
            "",
        ),
        ("<167>Feb 18 16:01:59 serverX -- MARK --", "--", "MARK --"),
        ("<13>Nov  4 09:01:02 host tag msg", "tag", "msg"),
        ("<13>Nov  4 09:01:02 host information x", "information", "x"),
    ] {
        let e = dec(frame);
        assert_eq!((e.appname(), e.message()), (Some(app), msg), "{frame}");
        assert_eq!(rules(&e), vec!["tag_without_colon"], "{frame}");
    }
    let aaa = "A".repeat(46);
    let e = dec(&format!("<14>Aug 30 23:00:05 X4711 {aaa}"));
    assert_eq!(e.appname(), Some(aaa.as_str()));
}

/// No hostname: rsyslog (pmrfc3164.c: a word of hostname bytes ending
/// alphanumeric, then SP) and syslog_loose read `connection` as the host
/// and `from` as the TAG. A hostname cannot be told from a word, so
/// Sluice reads it the same: every byte is kept in a field.
#[test]
fn a_frame_without_hostname_reads_as_the_references_read_it() {
    let e = dec("<13>Dec  1 08:00:00 connection from 10.0.0.1");
    assert_eq!(
        fields(&e),
        (Some("connection"), Some("from"), None, "10.0.0.1")
    );
    assert_eq!(rules(&e), vec!["tag_without_colon"]);
}

/// `prógram[12]:`: a TAG with a colon and a byte outside the TAG classes
/// kept its colon and `[PID]` inside the app.
#[test]
fn a_tag_with_unusual_bytes_loses_its_colon_and_pid() {
    for (frame, app, pid) in [
        (
            "<13>Nov  4 09:01:02 h prógram[12]: started",
            "prógram",
            Some("12"),
        ),
        ("<13>Nov  4 09:01:02 h prógram: started", "prógram", None),
        (
            "<13>Nov  4 09:01:02 h my*app[7]: started",
            "my*app",
            Some("7"),
        ),
    ] {
        let e = dec(frame);
        assert_eq!(
            fields(&e),
            (Some("h"), Some(app), pid, "started"),
            "{frame}"
        );
        assert_eq!(rules(&e), vec!["tag_unusual_bytes"], "{frame}");
    }
    // Read on a listener with `app_name` too, as any `TAG:` is.
    let opts = crate::decode::DecodeOptions {
        app_name: Some("orders".into()),
        ..Default::default()
    };
    let e = crate::decode::tests::dec_with(
        "<13>Nov  4 09:01:02 h prógram[12]: started".as_bytes(),
        &opts,
    );
    assert_eq!((e.appname(), e.procid()), (Some("prógram"), Some("12")));
    // Text that opens a JSON document is no TAG, colon or not.
    let e = dec(r#"<13>Nov  4 09:01:02 h {"lével": "x"}"#);
    assert_eq!((e.appname(), e.message()), (None, r#"{"lével": "x"}"#));
}

/// An impossible ISO date or time fell back to RFC 3164 naming no rule;
/// it now names `timestamp_invalid` and keeps the text after PRI, byte
/// for byte (as an impossible BSD date does).
#[test]
fn an_impossible_iso_time_names_timestamp_invalid_and_keeps_its_text() {
    for rest in [
        "1 2025-02-30T08:00:00Z h a - - - m",
        "1 2025-07-01T25:00:00Z h a - - - m",
        "2025-02-30T08:00:00Z h a: m",
        "2025-07-01T08:30:60Z h a: m",
    ] {
        let e = dec(&format!("<14>{rest}"));
        assert_eq!(e.timestamp, None, "{rest}");
        assert_eq!(fields(&e), (None, None, None, rest), "{rest}");
        assert_eq!(rules(&e), vec!["timestamp_invalid"], "{rest}");
    }
}

/// 40 fraction digits stopped the fraction at 32 and left the frame to RFC
/// 3164 naming no rule; every digit is now read past (9 kept).
#[test]
fn a_fraction_of_forty_digits_is_read_past() {
    let digits = "1".repeat(40);
    let e = dec(&format!("<14>1 2025-07-01T08:00:00.{digits}Z h a - - - m"));
    assert_eq!(
        crate::decode::tests::json(&e)["timestamp"],
        "2025-07-01T08:00:00.111111111Z"
    );
    assert_eq!(fields(&e), (Some("h"), Some("a"), None, "m"));
    assert_eq!(rules(&e), vec!["timestamp_fraction_long"]);
    let e = dec(&format!("<14>Nov  4 09:01:02.{digits} h a: m"));
    assert_eq!(fields(&e), (Some("h"), Some("a"), None, "m"));
    assert_eq!(rules(&e), vec!["timestamp_fraction_long"]);
}

/// `00:12:135 host`: the time glued to text gave its tail (`5`) to the
/// hostname. It is not a time: its text stays in the message.
#[test]
fn a_time_glued_to_text_is_not_a_time() {
    for frame in [
        "<189>Mar  1 00:12:135 host a: up",
        "<14>Nov  4 09:01:02host a: m",
    ] {
        let e = dec(frame);
        assert_eq!(e.timestamp, None, "{frame}");
        assert_eq!(e.hostname(), None, "{frame}");
        assert_eq!(e.message(), &frame[frame.find('>').unwrap() + 1..]);
        assert_eq!(rules(&e), vec!["timestamp_invalid"], "{frame}");
    }
}

/// `:60` was taken at any minute. A leap second falls at 23:59:60 UTC:
/// minute 59 of a local clock, or 29/44 in half- and three-quarter-hour
/// zones. Elsewhere it is not a time.
#[test]
fn a_leap_second_only_where_one_can_fall() {
    let e = dec("<14>1 2016-12-31T23:59:60Z h a - - - m");
    assert_eq!(rules(&e), vec!["timestamp_leap_second"]);
    let e = dec("<14>1 2017-01-01T05:29:60+05:30 h a - - - m");
    assert_eq!(rules(&e), vec!["timestamp_leap_second"]);
    let e = dec("<14>Dec 31 23:59:60 h a: m");
    assert_eq!(rules(&e), vec!["timestamp_leap_second"]);
    let e = dec("<14>Nov  4 09:30:60 h a: m");
    assert_eq!((e.timestamp, e.message()), (None, "Nov  4 09:30:60 h a: m"));
    assert_eq!(rules(&e), vec!["timestamp_invalid"]);
}

/// `Feb 29` without a year, received in 2026: read in the latest leap
/// year (2024; a stamp is never put more than a month ahead), no longer
/// silently.
#[test]
fn feb_29_without_a_year_names_its_rule() {
    let e = dec("<14>Feb 29 09:01:02 h a: m");
    assert_eq!(
        crate::decode::tests::json(&e)["timestamp"],
        "2024-02-29T09:01:02Z"
    );
    assert_eq!(rules(&e), vec!["timestamp_leap_day"]);
    // With its year, or a day every year has, no rule.
    let e = dec("<14>Feb 29 2024 09:01:02 h a: m");
    assert!(e.lenient.is_empty(), "{:?}", rules(&e));
    let e = dec("<14>Feb 28 09:01:02 h a: m");
    assert!(e.lenient.is_empty(), "{:?}", rules(&e));
}

/// Issue #22 re-check 1: a time glued to punctuation (BSD) or to anything
/// (ISO) was read as a time, its tail taken for the hostname and the
/// fields shifted, naming no rule. Now no timestamp, `timestamp_invalid`,
/// the text from the time on kept byte for byte. (A comma and digits are
/// a fraction since lenient6, `timestamp_comma_fraction`: ISO 8601 allows
/// the comma; `;123` is no fraction.)
#[test]
fn a_time_glued_to_anything_but_a_space_is_not_a_time() {
    for (frame, msg) in [
        (
            "<13>Nov  4 09:01:02;123 h app: x",
            "Nov  4 09:01:02;123 h app: x",
        ),
        ("<13>Nov  4 09:01:02:h app: x", "Nov  4 09:01:02:h app: x"),
        (
            "<13>Nov  4 09:01:02.123.4 h app: x",
            "Nov  4 09:01:02.123.4 h app: x",
        ),
        ("<13>Nov  4 09:01:02. h app: x", "Nov  4 09:01:02. h app: x"),
        (
            "<13>2025-12-01T10:00:00Zh app: x",
            "2025-12-01T10:00:00Zh app: x",
        ),
        (
            "<13>2025-12-01T10:00:00+01:00h app: x",
            "2025-12-01T10:00:00+01:00h app: x",
        ),
        (
            "<13>2025-12-01T10:00:00h app: x",
            "2025-12-01T10:00:00h app: x",
        ),
        (
            "<13>2025-12-01T10:00:00.5Zh app: x",
            "2025-12-01T10:00:00.5Zh app: x",
        ),
        (
            "<13>2025-12-01T10:00:00;123 h app: x",
            "2025-12-01T10:00:00;123 h app: x",
        ),
    ] {
        let e = dec(frame);
        assert_eq!(fields(&e), (None, None, None, msg), "{frame}");
        assert_eq!(e.timestamp, None, "{frame}");
        assert_eq!(rules(&e), vec!["timestamp_invalid"], "{frame}");
    }
    // What ends a time is unchanged: a space, the end, Cisco's `: `.
    for frame in [
        "<13>Nov  4 09:01:02 h app: x",
        "<13>Nov  4 09:01:02.123 h app: x",
        "<13>2025-12-01T10:00:00Z h app: x",
    ] {
        let e = dec(frame);
        assert_eq!(fields(&e), (Some("h"), Some("app"), None, "x"), "{frame}");
        assert!(e.lenient.is_empty(), "{frame}: {:?}", rules(&e));
    }
    let e = dec("<189>Nov  4 09:01:02: %SYS-5-CONFIG_I: Configured");
    assert!(e.timestamp.is_some());
    assert_eq!(e.appname(), Some("%SYS-5-CONFIG_I"));
}

/// Re-check 2: an RFC 5424 timestamp that is not one fell back to RFC 3164
/// without a header, naming no rule, so a strict listener accepted it.
#[test]
fn a_broken_rfc5424_timestamp_is_timestamp_invalid() {
    for frame in [
        "<14>1 2025-06-30T10:00:00+24:00 h app - - - x",
        "<14>1 2025-06-30T10:00:00+23:60 h app - - - x",
        "<14>1 2025-06-30T10:00:00+0260 h app - - - x",
        "<14>1 2025-06-30T10:00:00+02 h app - - - x",
        "<14>1 2025-06-30T10:00Z h app - - - x",
        "<14>1 2025-06-30T10:00:00.Z h app - - - x",
        "<14>1 2025-06-30T10:00:00;5Z h app - - - x",
        "<14>1 2025-06-30T10:00:00,Z h app - - - x",
        "<14>1 2025-06-30T10:00:00Zh app - - - x",
        "<29>1 2006-01-02T15:04:05Z+07:00 - - - - -",
    ] {
        let e = dec(frame);
        assert_eq!(e.timestamp, None, "{frame}");
        assert_eq!(rules(&e), vec!["timestamp_invalid"], "{frame}");
        assert_eq!(e.message(), &frame[4..], "{frame}");
        assert_eq!(e.hostname(), None, "{frame}");
    }
}

/// Re-check 3: a TAG with bytes `tag_and_pid` does not read, and a colon
/// not followed by a space, took the colon and the message into the app.
/// It ends at the colon as an ASCII TAG does (`app:x`: app `app`, message
/// `x`), as syslog_loose reads it.
#[test]
fn an_unusual_tag_ends_at_its_colon() {
    for (frame, app, pid) in [
        ("<13>Nov  4 09:01:02 h prógram:x", "prógram", None),
        ("<13>Nov  4 09:01:02 h prógram[12]:x", "prógram", Some("12")),
        ("<13>Nov  4 09:01:02 h ab*c:x", "ab*c", None),
    ] {
        let e = dec(frame);
        assert_eq!(fields(&e), (Some("h"), Some(app), pid, "x"), "{frame}");
        assert_eq!(rules(&e), vec!["tag_unusual_bytes"], "{frame}");
    }
    let e = dec("<13>Nov  4 09:01:02 h app:x");
    assert_eq!(fields(&e), (Some("h"), Some("app"), None, "x"));
    let e = dec("<13>Nov  4 09:01:02 h prógram: x y");
    assert_eq!(fields(&e), (Some("h"), Some("prógram"), None, "x y"));
}

/// Re-check 4: `:60` at minute 29 or 44 was a leap second even with `Z`.
/// A leap second falls at 23:59:60 UTC: a clock shows it at minute 59 at
/// whole-hour offsets, 29 at `±hh:30`, 44 at `+hh:45` (the frame's offset,
/// or the listener's zone when the frame has none).
#[test]
fn a_leap_second_only_where_the_offset_puts_one() {
    for frame in [
        "<14>1 2025-06-30T23:29:60Z h app - - - x",
        "<14>1 2025-06-30T23:44:60+00:00 h app - - - x",
        "<14>1 2025-06-30T05:59:60+05:30 h app - - - x",
        "<13>2025-06-30T23:29:60Z h app: x",
        "<13>Jun 30 23:29:60 h app: x",
        "<13>Jun 30 23:44:60 UTC: h app: x",
    ] {
        let e = dec(frame);
        assert_eq!(e.timestamp, None, "{frame}");
        assert_eq!(rules(&e), vec!["timestamp_invalid"], "{frame}");
    }
    for frame in [
        "<14>1 2025-06-30T23:59:60Z h app - - - x",
        "<14>1 2025-07-01T05:29:60+05:30 h app - - - x",
        "<14>1 2025-06-30T20:29:60-03:30 h app - - - x",
        "<14>1 2025-07-01T05:44:60+05:45 h app - - - x",
        "<13>Jun 30 23:59:60 h app: x",
    ] {
        let e = dec(frame);
        assert!(e.timestamp.is_some(), "{frame}");
        assert!(
            rules(&e).contains(&"timestamp_leap_second"),
            "{frame}: {:?}",
            rules(&e)
        );
    }
    // Without an offset in the frame, the listener's zone decides.
    let kolkata = crate::decode::DecodeOptions {
        timezone: chrono_tz::Asia::Kolkata,
        ..Default::default()
    };
    let e = crate::decode::tests::dec_with(b"<13>Jul  1 05:29:60 h app: x", &kolkata);
    assert!(e.timestamp.is_some());
    assert_eq!(rules(&e), vec!["timestamp_leap_second"]);
    let e = crate::decode::tests::dec_with(b"<13>Jul  1 05:59:60 h app: x", &kolkata);
    assert_eq!(rules(&e), vec!["timestamp_invalid"]);
}
