//! Frame → [`Event`]: RFC 5424 and RFC 3164 (and what real senders call RFC 3164).
//!
//! The grammar is written with nom over the frame's bytes, field by field as
//! the RFCs define it, and is lenient: a frame that fits neither grammar
//! still becomes an event, flagged `valid = false`, with the raw text as its
//! message. Nothing here allocates for an ordinary message; header fields are
//! spans of the frame.
//!
//! Time: a timestamp without an offset is read in the configured timezone
//! (never the host's), and an RFC 3164 timestamp without a year gets the year
//! Flume gives it: the receive year, unless that puts it more than a month
//! ahead (last year's) or more than eleven months back (next year's).
//!
//! Rooms: [`rfc5424`] (the RFC 5424 grammar and structured data),
//! [`rfc3164`] (BSD frames as senders write them: Cisco prefixes, TAG forms),
//! [`rfc3164_fast`] (the usual `Mmm dd HH:MM:SS HOST TAG[PID]: MSG` in one
//! pass, read as [`rfc3164`] reads it),
//! [`time`] (RFC 3339 and BSD timestamps, year inference, zones),
//! [`sd_ids`] (repeated SD-IDs found in time linear in their number),
//! [`words`] (header fields and fractions read eight bytes at a time).

#[cfg(test)]
mod lenient_findings_tests;
#[cfg(test)]
mod lenient_tests;
mod lossy_names;
#[cfg(test)]
mod open_readings_tests;
mod rfc3164;
mod rfc3164_fast;
#[cfg(test)]
mod rfc3164_tests;
mod rfc5424;
mod sd_ids;
mod time;
mod words;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use nom::IResult;
use nom::bytes::complete::take_while_m_n;

use crate::event::{Event, Lenient, LenientRule, Protocol, Span, Text};
use crate::text::text_of;

pub(crate) use crate::config::{DecodeMode, DecodeOptions, Sender};

/// Decode one frame. Never fails: see the module docs.
pub fn decode(
    raw: Bytes,
    peer: Option<SocketAddr>,
    received_nanos: i64,
    opts: &DecodeOptions,
) -> Event {
    let mut event = Event::without_text(0, None, peer, received_nanos);
    decode_into(&mut event, raw, opts);
    event
}

/// [`decode`] into `event`, fresh from [`Event::without_text`] with the
/// frame's peer and receive time (its length and lossy bytes are set
/// here). A reader decodes into its own stack slot: an event returned by
/// value was copied whole on its way out.
pub(crate) fn decode_into(event: &mut Event, raw: Bytes, opts: &DecodeOptions) {
    let (text, lossy_raw) = text_of(raw);
    event.begin_text(text.len(), lossy_raw);
    // Line ends and NULs that end the frame are trailers: no header field
    // reads them (`… localhost \n`, `… h app - -\r\n`); the frame keeps them.
    let all = trim_end(text.as_bytes());
    // One call site each for the two grammars (a second one, for frames
    // without PRI, kept LLVM from inlining them: about 150 instructions a
    // RFC 3164 frame, callgrind).
    let (after_pri, prival, opening) = match pri(all) {
        Ok((rest, prival)) => (Some(rest), Some(prival), None),
        Err(_) => match pri_after_space(all) {
            Some((rest, prival)) => (Some(rest), Some(prival), None),
            // No PRI: facility and severity stay empty (syslog_loose, VRL).
            None => match opening_without_pri(all) {
                Some(opening) => (Some(all), None, Some(opening)),
                None => (None, None, None),
            },
        },
    };
    if let Some(rest) = after_pri {
        if let Some(prival) = prival {
            event.facility = Some(prival >> 3);
            event.severity = Some(prival & 7);
        }
        if !rfc5424::rfc5424(all, rest, event, opts) {
            rfc3164::rfc3164(all, rest, event, opts);
        }
        if let Some(opening) = opening {
            // Undecoded, the whole frame is the message, trailer and all.
            pri_assumed(event, text.len(), opening);
        } else if all.first() != Some(&b'<') {
            // The PRI came after whitespace ([`pri_after_space`]).
            event.lenient.insert(LenientRule::SpaceBeforePri);
        }
    }
    if event.lossy_utf8 && event.lenient.contains(LenientRule::SdNameInvalid) {
        lossy_names::escape_sd_names(all, event);
    }
    event.set_text(text);
    if event.protocol == Protocol::Unknown {
        return;
    }
    if event.appname.is_none() {
        if let Some(app) = &opts.app_name {
            event.appname = Some(Text::Owned(app.clone()));
        }
    }
    if let Some(escape) = opts.newline_escape.as_deref() {
        unescape_newlines(event, escape);
    }
}

/// A PRI after whitespace (SP, HT, CR, LF) that opens the frame
/// (syslog_loose `handles_weird_whitespace`: `\n    <13>1 …`, a
/// template's indentation): the PRI and what follows it, read as usual
/// ([`LenientRule::SpaceBeforePri`]). Only a PRI: whitespace before
/// anything else (a stack-trace line) stays undecoded. Out of line, as
/// [`opening_without_pri`].
#[cold]
#[inline(never)]
fn pri_after_space(all: &[u8]) -> Option<(&[u8], u8)> {
    let blank = all
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    if blank == 0 {
        return None;
    }
    pri(&all[blank..]).ok()
}

/// What opens a frame without PRI that may be syslog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// A timestamp: BSD, ISO, or an RFC 5424 version and an ISO time.
    Time,
    /// An RFC 5424 version and NILVALUE (`1 - host app - - - msg`).
    NilTime,
}

/// How a frame without PRI opens, when it may be syslog. Such a frame's
/// header is read as after a PRI, as rsyslog and syslog_loose read it,
/// with no facility or severity (syslog_loose `parse_missing_pri`, VRL
/// `missing_pri`: the sender gave none, and an assumed `<13>` could not
/// be told from a sent one), and [`pri_assumed`] names
/// [`LenientRule::PriMissing`] or, when the reading does not hold, puts
/// the frame back to undecoded. Any other frame without PRI stays
/// undecoded: no header is forged from text. Out of line: framed syslog
/// has a PRI.
#[cold]
#[inline(never)]
fn opening_without_pri(all: &[u8]) -> Option<Opening> {
    match all.first() {
        Some(b) if b.is_ascii_alphabetic() => {
            time::bsd_timestamp(all).is_ok().then_some(Opening::Time)
        }
        Some(b) if b.is_ascii_digit() => {
            if time::rfc3339(all).is_ok() {
                return Some(Opening::Time);
            }
            let (after, _) = rfc5424::version(all).ok()?;
            if time::rfc3339(after).is_ok() {
                Some(Opening::Time)
            } else {
                after.starts_with(b"- ").then_some(Opening::NilTime)
            }
        }
        _ => None,
    }
}

/// After a frame without PRI was read as after one: the rule, or the
/// frame back to undecoded (`len` bytes of text) when the reading does
/// not hold: no timestamp read after all (`Nov 31 …`, `09:01:02,x`), or,
/// after `1 - ` (no PRI, no time: only the grammar says it is syslog),
/// anything short of a whole RFC 5424 header read without a lenient rule
/// (HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA), so text such as
/// `1 - just some text` is not forged into one.
#[cold]
#[inline(never)]
fn pri_assumed(event: &mut Event, len: usize, opening: Opening) {
    let holds = match opening {
        Opening::Time => event.timestamp.is_some(),
        Opening::NilTime => event.protocol == Protocol::Rfc5424 && event.lenient.is_empty(),
    };
    if holds {
        event.lenient.insert(LenientRule::PriMissing);
    } else {
        undecoded(event, len);
    }
}

/// Back to what [`Event::without_text`] made: nothing decoded, the whole
/// text (`len` bytes) the message.
fn undecoded(event: &mut Event, len: usize) {
    event.protocol = Protocol::Unknown;
    event.valid = false;
    event.facility = None;
    event.severity = None;
    event.timestamp = None;
    event.hostname = None;
    event.appname = None;
    event.procid = None;
    event.msgid = None;
    event.structured_data.clear();
    event.message = Text::Span(Span::new(0, len));
    event.lenient = Lenient::default();
}

/// log4j2's `newLineEscape` replaced each `\r?\n` of the message with
/// `escape`; put the newlines back.
fn unescape_newlines(event: &mut Event, escape: &str) {
    if escape.is_empty() {
        return;
    }
    let message = event.message();
    if memchr::memmem::find(message.as_bytes(), escape.as_bytes()).is_none() {
        return;
    }
    let restored = message.replace(escape, "\n");
    if let Text::Span(span) = event.message {
        event.frame_message = Some(span);
    }
    event.message = Text::Owned(Arc::from(restored));
}

fn span_of(all: &[u8], piece: &[u8]) -> Span {
    let start = piece.as_ptr() as usize - all.as_ptr() as usize;
    Span::new(start, start + piece.len())
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn digits_value(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
}

fn num<const N: usize>(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, d) = take_while_m_n(N, N, is_digit)(i)?;
    Ok((i, digits_value(d)))
}

/// `<PRIVAL>`, PRIVAL 0..=191: one to three digits. By the frame's
/// shape, not by nom's combinators (their calls and checks cost more than
/// the PRI is long); `pri_nom`, the grammar as it was written, holds
/// it to the same answers in the tests.
pub(crate) fn pri(i: &[u8]) -> IResult<&[u8], u8> {
    let d = |b: u8| u32::from(b - b'0');
    let (value, rest) = match i {
        [b'<', a @ b'0'..=b'9', b'>', rest @ ..] => (d(*a), rest),
        [b'<', a @ b'0'..=b'9', b @ b'0'..=b'9', b'>', rest @ ..] => (d(*a) * 10 + d(*b), rest),
        [
            b'<',
            a @ b'0'..=b'9',
            b @ b'0'..=b'9',
            c @ b'0'..=b'9',
            b'>',
            rest @ ..,
        ] => (d(*a) * 100 + d(*b) * 10 + d(*c), rest),
        _ => (u32::MAX, i),
    };
    match u8::try_from(value) {
        Ok(prival) if prival <= 191 => Ok((rest, prival)),
        _ => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::MapRes,
        ))),
    }
}

/// [`pri`] by nom's combinators, as it was written before.
#[cfg(test)]
fn pri_nom(i: &[u8]) -> IResult<&[u8], u8> {
    use nom::character::complete::char;
    use nom::combinator::map_res;
    use nom::sequence::delimited;
    map_res(
        delimited(char('<'), take_while_m_n(1, 3, is_digit), char('>')),
        |d: &[u8]| {
            u8::try_from(digits_value(d))
                .ok()
                .filter(|v| *v <= 191)
                .ok_or(())
        },
    )(i)
}

fn skip_spaces(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|b| **b == b' ').count();
    &i[n..]
}

/// Spaces and tabs.
fn skip_blanks(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &i[n..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| matches!(c, b'\n' | b'\r' | b'\0'))
        .count();
    &b[..b.len() - n]
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const RECEIVED_2026_11_24: i64 = 1_795_500_000 * 1_000_000_000; // 2026-11-25T…Z region

    pub(super) fn dec(s: &str) -> Event {
        decode(
            Bytes::copy_from_slice(s.as_bytes()),
            None,
            RECEIVED_2026_11_24,
            &DecodeOptions::default(),
        )
    }

    pub(super) fn json(e: &Event) -> serde_json::Value {
        let mut s = String::new();
        e.write_canonical_json(&mut s);
        serde_json::from_str(&s).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The PRI read by shape answers as nom's grammar does: the same
        /// value and rest, or an error, on frames that open with `<`,
        /// digits and `>` in every arrangement.
        #[test]
        fn pri_reads_what_the_nom_grammar_reads(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    3 => proptest::prelude::Just(b'<'),
                    3 => proptest::prelude::Just(b'>'),
                    6 => b'0'..=b'9',
                    1 => proptest::prelude::any::<u8>(),
                ],
                0..8,
            ),
        ) {
            let (got, want) = (pri(&bytes), pri_nom(&bytes));
            proptest::prop_assert_eq!(got.is_ok(), want.is_ok());
            proptest::prop_assert_eq!(got.ok(), want.ok());
        }

        /// The same, on PRIs as senders write them and nearly: every
        /// value up to 999, zero-padded to up to five digits, with or
        /// without its brackets, then any bytes.
        #[test]
        fn pri_reads_what_the_nom_grammar_reads_of_every_value(
            value in 0u32..1000,
            width in 0usize..6,
            open in proptest::bool::weighted(0.9),
            close in proptest::bool::weighted(0.9),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4),
        ) {
            let mut bytes = Vec::new();
            if open {
                bytes.push(b'<');
            }
            bytes.extend_from_slice(format!("{value:0width$}").as_bytes());
            if close {
                bytes.push(b'>');
            }
            bytes.extend_from_slice(&tail);
            let (got, want) = (pri(&bytes), pri_nom(&bytes));
            proptest::prop_assert_eq!(got.is_ok(), want.is_ok());
            proptest::prop_assert_eq!(got.ok(), want.ok());
        }
    }

    #[test]
    fn pri_bounds() {
        assert_eq!(pri(b"<0>").unwrap().1, 0);
        assert_eq!(pri(b"<191>").unwrap().1, 191);
        assert!(pri(b"<192>").is_err());
        assert!(pri(b"<>").is_err());
        assert!(pri(b"<1234>").is_err());
        assert!(pri(b"13>").is_err());
        assert_eq!(pri(b"<013>1").unwrap(), (&b"1"[..], 13));
        assert!(pri(b"<1x>").is_err());
        assert!(pri(b"<256>").is_err());
    }

    #[test]
    fn undecodable_frame_keeps_raw_text() {
        let e = dec("no pri at all");
        let j = json(&e);
        assert_eq!(j["valid"], false);
        assert_eq!(j["protocol"], "unknown");
        assert_eq!(j["message"], "no pri at all");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let e = decode(
            Bytes::from_static(b"<14>caf\xe9 ok"),
            None,
            RECEIVED_2026_11_24,
            &DecodeOptions::default(),
        );
        assert!(e.lossy_utf8);
        assert_eq!(e.message(), "caf\u{fffd} ok");
    }

    pub(super) fn dec_with(s: &[u8], opts: &DecodeOptions) -> Event {
        decode(Bytes::copy_from_slice(s), None, RECEIVED_2026_11_24, opts)
    }

    pub(super) fn log4j() -> DecodeOptions {
        DecodeOptions {
            sender: Sender::Log4j,
            ..DecodeOptions::default()
        }
    }

    #[test]
    fn newline_escape_is_turned_back_into_newlines() {
        let opts = DecodeOptions {
            newline_escape: Some("\\n".into()),
            ..DecodeOptions::default()
        };
        let e = dec_with(b"<163>1 2026-11-24T11:34:37.138Z vm orders 1 - - failed\\njava.lang.X: boom\\n\tat A.b(A.java:1)", &opts);
        assert_eq!(e.message(), "failed\njava.lang.X: boom\n\tat A.b(A.java:1)");
        // Without the option the sequence stays as sent.
        let e = dec(r"<14>1 - h a - - - a\nb");
        assert_eq!(e.message(), r"a\nb");
    }

    #[test]
    fn missing_pri_keeps_everything() {
        for frame in ["<>x", "<192>x", "<14"] {
            let e = dec(frame);
            assert!(!e.valid, "{frame}");
            assert_eq!(e.message(), frame);
            assert_eq!(e.facility, None);
        }
    }

    pub(super) fn rules(e: &Event) -> Vec<&'static str> {
        e.lenient.iter().map(LenientRule::as_str).collect()
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn header_token() -> impl Strategy<Value = Option<String>> {
            // PRINTUSASCII without space; "-" alone is NILVALUE.
            proptest::option::of("[!-~]{1,32}".prop_filter("not NILVALUE", |s| s != "-"))
        }

        fn sd_name() -> impl Strategy<Value = String> {
            "[!#-<>-\\\\^-~]{1,32}"
        }

        #[derive(Debug, Clone)]
        struct Generated {
            pri: u8,
            timestamp: Option<(chrono::DateTime<chrono::FixedOffset>, u8)>,
            hostname: Option<String>,
            appname: Option<String>,
            procid: Option<String>,
            msgid: Option<String>,
            sd: Vec<(String, Vec<(String, String)>)>,
            bom: bool,
            message: String,
        }

        fn timestamp() -> impl Strategy<Value = (chrono::DateTime<chrono::FixedOffset>, u8)> {
            (
                0i64..7_000_000_000,
                0u32..1_000_000,
                0u8..=6,
                -(14 * 60)..=(14 * 60i32),
            )
                .prop_map(|(secs, micros, digits, offset_min)| {
                    let keep = 10u32.pow(6 - u32::from(digits));
                    let nanos = (micros / keep) * keep * 1000;
                    let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
                    let t = chrono::DateTime::from_timestamp(secs, nanos)
                        .unwrap()
                        .with_timezone(&offset);
                    (t, digits)
                })
        }

        fn generated() -> impl Strategy<Value = Generated> {
            (
                0u8..=191,
                proptest::option::of(timestamp()),
                (
                    header_token(),
                    header_token(),
                    header_token(),
                    header_token(),
                ),
                proptest::collection::vec(
                    (
                        sd_name(),
                        proptest::collection::vec((sd_name(), "\\PC{0,12}"), 0..4),
                    ),
                    0..3,
                ),
                any::<bool>(),
                // MSG: anything printable (newlines inside), not ending in a
                // line end, not starting with a BOM.
                "(\\PC|\n){0,40}".prop_filter("no leading BOM, no trailing line end", |m| {
                    !m.starts_with('\u{feff}') && !m.ends_with(['\n', '\r'])
                }),
            )
                .prop_map(
                    |(pri, timestamp, (hostname, appname, procid, msgid), sd, bom, message)| {
                        Generated {
                            pri,
                            timestamp,
                            hostname,
                            appname,
                            procid,
                            msgid,
                            sd,
                            bom,
                            message,
                        }
                    },
                )
        }

        fn render(g: &Generated) -> String {
            let nil = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
            let ts = match &g.timestamp {
                None => "-".to_owned(),
                Some((t, digits)) => {
                    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
                    if *digits > 0 {
                        let frac = format!("{:09}", t.timestamp_subsec_nanos());
                        s.push('.');
                        s.push_str(&frac[..usize::from(*digits)]);
                    }
                    let off = t.offset().local_minus_utc();
                    if off == 0 {
                        s.push('Z');
                    } else {
                        let sign = if off < 0 { '-' } else { '+' };
                        s.push_str(&format!(
                            "{sign}{:02}:{:02}",
                            off.abs() / 3600,
                            off.abs() % 3600 / 60
                        ));
                    }
                    s
                }
            };
            let mut sd = String::new();
            for (id, params) in &g.sd {
                sd.push('[');
                sd.push_str(id);
                for (k, v) in params {
                    let escaped = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace(']', "\\]");
                    sd.push_str(&format!(" {k}=\"{escaped}\""));
                }
                sd.push(']');
            }
            if sd.is_empty() {
                sd.push('-');
            }
            let mut frame = format!(
                "<{}>1 {ts} {} {} {} {} {sd}",
                g.pri,
                nil(&g.hostname),
                nil(&g.appname),
                nil(&g.procid),
                nil(&g.msgid)
            );
            if g.bom || !g.message.is_empty() {
                frame.push(' ');
                if g.bom {
                    frame.push('\u{feff}');
                }
                frame.push_str(&g.message);
            }
            frame
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn rfc5424_round_trips_field_by_field(g in generated()) {
                let frame = render(&g);
                let e = dec(&frame);
                prop_assert!(e.valid);
                prop_assert_eq!(e.protocol, Protocol::Rfc5424);
                prop_assert_eq!(e.pri(), Some(g.pri));
                match (&g.timestamp, e.timestamp) {
                    (None, None) => {}
                    (Some((t, digits)), Some(got)) => {
                        prop_assert_eq!(got.unix_nanos, t.timestamp_nanos_opt().unwrap());
                        prop_assert_eq!(got.offset_secs, t.offset().local_minus_utc());
                        prop_assert_eq!(got.frac_digits, *digits);
                    }
                    (want, got) => prop_assert!(false, "timestamp {want:?} decoded as {got:?}"),
                }
                prop_assert_eq!(e.hostname(), g.hostname.as_deref());
                prop_assert_eq!(e.appname(), g.appname.as_deref());
                prop_assert_eq!(e.procid(), g.procid.as_deref());
                prop_assert_eq!(e.msgid(), g.msgid.as_deref());
                prop_assert_eq!(e.structured_data.len(), g.sd.len());
                for (got, (id, params)) in e.structured_data.iter().zip(&g.sd) {
                    prop_assert_eq!(e.resolve(&got.id), id.as_str());
                    let got_params: Vec<(&str, &str)> = got
                        .params
                        .iter()
                        .map(|p| (e.resolve(&p.name), e.resolve(&p.value)))
                        .collect();
                    let want: Vec<(&str, &str)> =
                        params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    prop_assert_eq!(got_params, want);
                }
                let message = if g.bom { format!("\u{feff}{}", g.message) } else { g.message.clone() };
                prop_assert_eq!(e.message(), message.as_str());
            }

            #[test]
            fn arbitrary_bytes_decode_without_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..300),
                log4j in any::<bool>(),
                strip in any::<bool>(),
            ) {
                let opts = DecodeOptions {
                    sender: if log4j { Sender::Log4j } else { Sender::Generic },
                    strip_facility_prefix: strip,
                    newline_escape: Some("\\n".into()),
                    ..DecodeOptions::default()
                };
                let e = dec_with(&bytes, &opts);
                let j = json(&e);
                prop_assert!(j.is_object());
                // The text is never lost: invalid frames keep all of it.
                if !e.valid {
                    let text = String::from_utf8_lossy(&bytes);
                    prop_assert_eq!(e.message(), text.as_ref());
                }
            }

            #[test]
            fn syslog_shaped_bytes_decode_without_panic(
                s in "<[0-9]{1,3}>(1 )?[A-Za-z0-9 :.*\\[\\]=\"\\\\@-]{0,80}",
            ) {
                let e = dec(&s);
                prop_assert!(json(&e).is_object());
            }
        }
    }
}
