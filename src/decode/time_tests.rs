//! Tests of `time.rs` (kept apart to keep that file within 800 lines).

use super::*;
use bytes::Bytes;

use crate::decode::decode;
use crate::decode::tests::{RECEIVED_2026_11_24, dec, json};
use crate::event::Protocol;
use crate::text::days_from_civil;
use proptest::prelude::*;

/// The per-thread caches (receive year, last BSD second resolved) give
/// what an uncached read gives: the same second with another fraction,
/// received in another year, or read in another zone, one after the other.
#[test]
fn cached_bsd_seconds_keep_fraction_year_and_zone_apart() {
    let jan_2027 = days_from_civil(2027, 1, 2) * 86_400 * 1_000_000_000;
    let jun_2026 = days_from_civil(2026, 6, 2) * 86_400 * 1_000_000_000;
    let berlin = DecodeOptions {
        timezone: chrono_tz::Europe::Berlin,
        ..DecodeOptions::default()
    };
    let utc = DecodeOptions::default();
    let ts = |frame: &'static [u8], received: i64, opts: &DecodeOptions| {
        let e = decode(Bytes::from_static(frame), None, received, opts);
        json(&e)["timestamp"].as_str().unwrap().to_owned()
    };
    let cases: [(&'static [u8], i64, &DecodeOptions, &str); 6] = [
        (
            b"<13>Dec 31 23:59:00 h app: m",
            jan_2027,
            &utc,
            "2026-12-31T23:59:00Z",
        ),
        (
            b"<13>Dec 31 23:59:00.250 h app: m",
            jan_2027,
            &utc,
            "2026-12-31T23:59:00.250Z",
        ),
        (
            b"<13>Dec 31 23:59:00.5 h app: m",
            jun_2026,
            &utc,
            "2025-12-31T23:59:00.5Z",
        ),
        (
            b"<13>Dec 31 23:59:00 h app: m",
            jun_2026,
            &berlin,
            "2025-12-31T23:59:00+01:00",
        ),
        (
            b"<13>Dec 31 23:59:00 h app: m",
            jan_2027,
            &berlin,
            "2026-12-31T23:59:00+01:00",
        ),
        (
            b"<13>Dec 31 23:59:00 h app: m",
            jan_2027,
            &utc,
            "2026-12-31T23:59:00Z",
        ),
    ];
    for (frame, received, opts, want) in cases {
        assert_eq!(
            ts(frame, received, opts),
            want,
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
}

#[test]
fn rfc3164_december_stamp_received_in_january_is_last_years() {
    // Received in early January 2027: a 31 Dec message is from 2026.
    let jan_2027 = days_from_civil(2027, 1, 2) * 86_400 * 1_000_000_000;
    let e = decode(
        Bytes::from_static(b"<13>Dec 31 23:59:00 h app: m"),
        None,
        jan_2027,
        &DecodeOptions::default(),
    );
    assert_eq!(json(&e)["timestamp"], "2026-12-31T23:59:00Z");
}

#[test]
fn rfc3164_year_inference_half_a_year_away_and_on_29_february() {
    // Received 2026-11-24T06:00Z: 26 May and 24 May 2026 are half a year
    // back, both the receive year's (the nearest-year rule gave 24 May
    // 2027); 24 December is a month ahead, this year's.
    for (frame, want) in [
        ("<13>May 26 12:00:00 h a: m", "2026-05-26T12:00:00Z"),
        ("<13>May 24 12:00:00 h a: m", "2026-05-24T12:00:00Z"),
        ("<13>Dec 24 00:00:00 h a: m", "2026-12-24T00:00:00Z"),
        ("<13>Jun  1 00:00:00 h a: m", "2026-06-01T00:00:00Z"),
        // 29 February: the latest leap year, not a lost timestamp.
        ("<13>Feb 29 12:00:00 h a: m", "2024-02-29T12:00:00Z"),
    ] {
        assert_eq!(json(&dec(frame))["timestamp"], want, "{frame}");
    }
}

/// Flume's `SyslogUtils` rule (issue #22): the receive year, unless the
/// stamp is more than one month in the future (the year before) or more
/// than eleven months in the past (the year after). Vector and rsyslog
/// also keep the receive year for stamps 6 to 11 months back.
#[test]
fn rfc3164_year_as_flume_infers_it() {
    let at = |y: i64, m: u32, d: u32, secs: i64| {
        (days_from_civil(y, m, d) * 86_400 + secs) * 1_000_000_000
    };
    let dec_at = |frame: &'static [u8], received: i64| {
        let e = decode(
            Bytes::from_static(frame),
            None,
            received,
            &DecodeOptions::default(),
        );
        (
            json(&e)["timestamp"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            e.lenient.contains(LenientRule::TimestampLeapDay),
        )
    };
    let dec_7 = at(2026, 12, 7, 12 * 3600);
    let cases: [(&'static [u8], i64, &str, bool); 11] = [
        // Ten months back: still the receive year (nearest-year gave 2027).
        (
            b"<13>Feb  7 12:02:00 h a: m",
            dec_7,
            "2026-02-07T12:02:00Z",
            false,
        ),
        (
            b"<13>Jun  1 00:00:00 h a: m",
            dec_7,
            "2026-06-01T00:00:00Z",
            false,
        ),
        // Less than one month ahead: the receive year or the next.
        (
            b"<13>Jan  6 12:00:00 h a: m",
            dec_7,
            "2027-01-06T12:00:00Z",
            false,
        ),
        (
            b"<13>Dec 31 23:00:00 h a: m",
            dec_7,
            "2026-12-31T23:00:00Z",
            false,
        ),
        // Eleven months back exactly stays; a second less than eleven
        // months back would be more than one month ahead next year.
        (
            b"<13>Jan  7 12:00:00 h a: m",
            dec_7,
            "2026-01-07T12:00:00Z",
            false,
        ),
        (
            b"<13>Jan  7 11:59:59 h a: m",
            dec_7,
            "2027-01-07T11:59:59Z",
            false,
        ),
        // More than one month ahead: the year before.
        (
            b"<13>Feb  3 00:00:00 h a: m",
            at(2027, 1, 2, 0),
            "2026-02-03T00:00:00Z",
            false,
        ),
        (
            b"<13>Feb  1 23:59:59 h a: m",
            at(2027, 1, 2, 0),
            "2027-02-01T23:59:59Z",
            false,
        ),
        // Received 2027-01-02: a December stamp is last year's.
        (
            b"<13>Dec 31 23:59:00 h a: m",
            at(2027, 1, 2, 0),
            "2026-12-31T23:59:00Z",
            false,
        ),
        // 29 February: the latest leap year at or before the year the
        // rule gives, never one more than a month ahead.
        (
            b"<13>Feb 29 12:00:00 h a: m",
            dec_7,
            "2024-02-29T12:00:00Z",
            true,
        ),
        (
            b"<13>Feb 29 12:00:00 h a: m",
            at(2028, 1, 10, 0),
            "2024-02-29T12:00:00Z",
            true,
        ),
    ];
    for (frame, received, want, leap) in cases {
        let frame_text = String::from_utf8_lossy(frame);
        assert_eq!(
            dec_at(frame, received),
            (want.to_owned(), leap),
            "{frame_text}"
        );
    }
    // In a leap year from 29 January on, 29 February is this year's.
    assert_eq!(
        dec_at(b"<13>Feb 29 12:00:00 h a: m", at(2028, 1, 30, 0)),
        ("2028-02-29T12:00:00Z".to_owned(), false)
    );
}

#[test]
fn zone_less_timestamps_use_configured_zone() {
    let opts = DecodeOptions {
        timezone: "Asia/Tokyo".parse().unwrap(),
        ..DecodeOptions::default()
    };
    let e = decode(
        Bytes::from_static(b"<13>Nov 23 10:00:00 h app: m"),
        None,
        RECEIVED_2026_11_24,
        &opts,
    );
    assert_eq!(json(&e)["timestamp"], "2026-11-23T10:00:00+09:00");
}

#[test]
fn rfc5424_timestamp_forms() {
    let cases = [
        ("2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z"),
        ("2026-11-23T10:00:00.1+01:00", "2026-11-23T10:00:00.1+01:00"),
        (
            "2026-11-23T10:00:00.123456-05:30",
            "2026-11-23T10:00:00.123456-05:30",
        ),
        ("2026-11-23T10:00:00.012Z", "2026-11-23T10:00:00.012Z"),
    ];
    for (written, printed) in cases {
        let e = dec(&format!("<14>1 {written} h a - - - m"));
        assert_eq!(json(&e)["timestamp"], printed, "{written}");
    }
    // An impossible date is not a timestamp: the frame is not RFC 5424.
    assert_eq!(
        dec("<14>1 2026-02-30T10:00:00Z h a - - - m").protocol,
        Protocol::Rfc3164
    );
}

/// What the general path makes of an RFC 5424 TIMESTAMP field that no
/// lenient rule touches: the frame after it and the resolved time.
fn rfc3339_general(i: &[u8]) -> Option<(&[u8], Timestamp)> {
    let (rest, (t, offset)) = rfc3339(i).ok()?;
    let rules = rfc3339_rules(&i[..i.len() - rest.len()], 6);
    let opts = DecodeOptions::default();
    (matches!(rest.first(), None | Some(b' ')) && rules.is_empty() && offset.is_some())
        .then(|| resolve(&t, offset, &opts).map(|ts| (rest, ts)))
        .flatten()
}

/// The UTC fast path takes the common forms and leaves every other one
/// (rules to report, an offset, a leap second, no real date) to the
/// general path.
#[test]
fn rfc3339_utc_takes_only_the_plain_utc_forms() {
    for taken in [
        "2026-11-28T10:00:00.123456Z host",
        "2026-11-28T10:00:00.123456Z",
        "2026-11-28T10:00:00Z h",
        "2026-11-28T10:00:00.1Z h",
        "2024-02-29T23:59:59.000001Z h",
    ] {
        let got = rfc3339_utc(taken.as_bytes());
        assert!(got.is_some(), "{taken}");
        assert_eq!(got, rfc3339_general(taken.as_bytes()), "{taken}");
        assert_eq!(rfc3339_utc(taken.as_bytes()), got, "again: {taken}");
    }
    for left in [
        "2026-11-28t10:00:00Z h",
        "2026-11-28T10:00:00z h",
        "2026-11-28T10:00:00.1234567Z h",
        "2026-11-28T10:00:00.Z h",
        "2026-11-28T10:00:00+00:00 h",
        "2026-11-28T10:00:00 h",
        "2026-11-28T10:00:00Zh",
        "2016-12-31T23:59:60Z h",
        "2026-02-29T10:00:00Z h",
        "2026-11-28T24:00:00Z h",
        "2026-11-28T10:00:00",
        "2026-11-28T10:00",
    ] {
        assert_eq!(rfc3339_utc(left.as_bytes()), None, "{left}");
    }
}

proptest! {
    /// Whatever the UTC fast path takes, the general path reads the same:
    /// the same time, the same rest of the frame, and no lenient rule.
    #[test]
    fn rfc3339_utc_agrees_with_the_general_path(
        day in 1u32..=31,
        hms in (0u32..25, 0u32..60, 0u32..=60),
        t in "[Tt]",
        frac in "(\\.[0-9]{0,8}|)",
        offset in "(Z|z|\\+00:00|)",
        rest in "( h|h|)",
        cut in proptest::option::weighted(0.2, 0usize..40),
    ) {
        let (h, m, sec) = hms;
        let text = format!("2024-02-{day:02}{t}{h:02}:{m:02}:{sec:02}{frac}{offset}{rest}");
        let bytes = &text.as_bytes()[..cut.unwrap_or(40).min(text.len())];
        if let Some(fast) = rfc3339_utc(bytes) {
            prop_assert_eq!(Some(fast), rfc3339_general(bytes), "{:?}", text);
        }
    }
}

#[test]
fn rfc3164_year_fraction_and_iso_timestamps() {
    let e = dec("<13>Nov 23 2025 10:00:00 h app: m");
    assert_eq!(json(&e)["timestamp"], "2025-11-23T10:00:00Z");
    let e = dec("<13>Nov 23 10:00:00.250 h app: m");
    assert_eq!(json(&e)["timestamp"], "2026-11-23T10:00:00.250Z");
    let e = dec("<13>2026-11-23T10:00:00+02:00 h app[7]: m");
    assert_eq!(json(&e)["timestamp"], "2026-11-23T10:00:00+02:00");
    assert_eq!(e.hostname(), Some("h"));
    assert_eq!(e.procid(), Some("7"));
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month(i: &[u8]) -> IResult<&[u8], u32> {
    let (rest, m) = take_while_m_n(3, 3, |b: u8| b.is_ascii_alphabetic())(i)?;
    match MONTHS.iter().position(|name| name.eq_ignore_ascii_case(m)) {
        Some(p) => Ok((rest, p as u32 + 1)),
        None => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        ))),
    }
}

/// The BSD timestamp grammar as nom combinators: the reference the
/// hand-read [`bsd_timestamp`] is checked against.
fn bsd_timestamp_nom(i: &[u8]) -> IResult<&[u8], BsdTime> {
    let (i, month) = month(i)?;
    let (i, _) = char(' ')(i)?;
    let (i, _) = opt(char(' '))(i)?;
    let (i, d) = take_while_m_n(1, 2, is_digit)(i)?;
    let (i, _) = char(' ')(i)?;
    let (i, year) = opt(|i| {
        let (i, y) = num::<4>(i)?;
        let (i, _) = char(' ')(i)?;
        Ok((i, y))
    })(i)?;
    let (i, (hour, minute, second)) = hms(i)?;
    let (i, frac) = opt(fraction)(i)?;
    let (nanos, frac_digits) = frac.unwrap_or((0, 0));
    Ok((
        i,
        BsdTime {
            month,
            day: digits_value(d),
            year: year.map(i64::from),
            hour,
            minute,
            second,
            nanos,
            frac_digits,
        },
    ))
}

/// `HH:MM:SS`, as both nom grammars read it.
fn hms(i: &[u8]) -> IResult<&[u8], (u32, u32, u32)> {
    let (i, hour) = num::<2>(i)?;
    let (i, _) = char(':')(i)?;
    let (i, minute) = num::<2>(i)?;
    let (i, _) = char(':')(i)?;
    let (i, second) = num::<2>(i)?;
    Ok((i, (hour, minute, second)))
}

/// The RFC 3339 grammar as nom combinators: the reference the
/// hand-read [`rfc3339`] is checked against.
fn rfc3339_nom(i: &[u8]) -> IResult<&[u8], (CivilTime, Option<i32>)> {
    let (i, year) = num::<4>(i)?;
    let (i, _) = char('-')(i)?;
    let (i, month) = num::<2>(i)?;
    let (i, _) = char('-')(i)?;
    let (i, day) = num::<2>(i)?;
    let (i, _) = alt((char('T'), char('t')))(i)?;
    let (i, (hour, minute, second)) = hms(i)?;
    let (i, frac) = opt(fraction)(i)?;
    let (i, offset) = opt(utc_offset)(i)?;
    let t = CivilTime::new(
        [year, month, day, hour, minute, second],
        frac.unwrap_or((0, 0)),
    );
    if !t.valid() {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((i, (t, offset)))
}

proptest! {
        /// The hand-read date-time agrees with the nom grammar it
        /// replaced (kept below as the reference) on near-miss text:
        /// wrong separators, short fields, `.` without digits, fractions
        /// of 0 to 40 digits, offsets, and cuts anywhere.
        #[test]
        fn rfc3339_agrees_with_the_nom_grammar(
            // Mostly valid fields and separators, sometimes not.
            fields in (
                prop_oneof![9 => 1900u32..2200, 1 => 0u32..10_000],
                prop_oneof![9 => 1u32..=12, 1 => 0u32..100],
                prop_oneof![9 => 1u32..=31, 1 => 0u32..100],
                prop_oneof![9 => 0u32..24, 1 => 0u32..100],
                prop_oneof![9 => 0u32..60, 1 => 0u32..100],
            ),
            seps in (
                prop_oneof![9 => Just('-'), 1 => Just('/')],
                prop_oneof![6 => Just('T'), 2 => Just('t'), 1 => Just(' ')],
                prop_oneof![9 => Just(':'), 1 => Just('.')],
            ),
            dot in "\\.?",
            frac in "[0-9]{0,40}",
            offset in "(Z|z|[+-][0-9]{2}:?[0-9]{2}|[+-][0-9]|)",
            rest in "[ a-z0-9]{0,3}",
            cut in proptest::option::weighted(0.3, 0usize..80),
        ) {
            let ((year, month, day, hour, minute), (dash, t, colon)) = (fields, seps);
            let date = format!(
                "{year:04}{dash}{month:02}-{day:02}{t}{hour:02}:{minute:02}{colon}{:02}",
                (minute * 7 + hour) % 61
            );
            let text = format!("{date}{dot}{frac}{offset}{rest}");
            let bytes = &text.as_bytes()[..cut.unwrap_or(80).min(text.len())];
            let ok = |r: IResult<&[u8], (CivilTime, Option<i32>)>| {
                r.ok().map(|(rest, (t, o))| (rest.to_vec(), format!("{t:?}"), o))
            };
            let want = ok(rfc3339_nom(bytes));
            prop_assert_eq!(ok(rfc3339(bytes)), want.clone(), "{:?}", text);
            // Again: the per-thread cache of the last date-time holds
            // this one now (when it was valid).
            prop_assert_eq!(ok(rfc3339(bytes)), want, "again: {:?}", text);
        }

        /// The hand-read BSD timestamp agrees with the nom grammar it
        /// replaced (kept above as the reference) on near-miss text:
        /// months in any case and misspelt, one or two spaces, days of
        /// 0 to 3 digits, years of 3 to 5 digits, wrong separators,
        /// fractions of 0 to 40 digits, and cuts anywhere.
        #[test]
        fn bsd_timestamp_agrees_with_the_nom_grammar(
            month in "(Jan|FEB|mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Foo|No|N0v|[A-Za-z@\\[{]{3})",
            pad in "( |  | {0}|\t)",
            day in "[0-9]{0,3}|[0-9]x",
            year in "([0-9]{3,5} |[0-9]{4}x|)",
            hms in "[0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{1,3}[:.][0-9]{2}[:.][0-9]{1,2}",
            dot in "\\.?",
            frac in "[0-9]{0,40}",
            rest in "[ a-z0-9:]{0,3}",
            cut in proptest::option::weighted(0.3, 0usize..90),
        ) {
            let text = format!("{month}{pad}{day} {year}{hms}{dot}{frac}{rest}");
            let bytes = &text.as_bytes()[..cut.unwrap_or(90).min(text.len())];
            let ok = |r: IResult<&[u8], BsdTime>| {
                r.ok().map(|(rest, t)| (rest.to_vec(), format!("{t:?}")))
            };
            prop_assert_eq!(ok(bsd_timestamp(bytes)), ok(bsd_timestamp_nom(bytes)), "{:?}", text);
        }
}
