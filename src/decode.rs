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
//! that puts it closest to the receive time (a December message received in
//! January belongs to last year).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use nom::IResult;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{map_res, opt, verify};
use nom::sequence::{delimited, preceded};

use crate::event::{Event, Protocol, SdElement, SdParam, Span, Text, Timestamp, days_from_civil};

/// What the decoder needs besides the frame.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Zone for timestamps written without an offset.
    pub timezone: Tz,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { timezone: Tz::UTC }
    }
}

/// Decode one frame. Never fails: see the module docs.
pub fn decode(
    raw: Bytes,
    peer: Option<SocketAddr>,
    received_nanos: i64,
    opts: &DecodeOptions,
) -> Event {
    let mut event = Event::undecoded(raw, peer, received_nanos);
    let text = event.text_handle();
    let all = text.as_bytes();
    let Ok((rest, prival)) = pri(all) else {
        return event;
    };
    event.facility = Some(prival >> 3);
    event.severity = Some(prival & 7);
    if !rfc5424(all, rest, &mut event, opts) {
        rfc3164(all, rest, &mut event, opts);
    }
    event
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

/// `<PRIVAL>`, PRIVAL 0..=191.
pub fn pri(i: &[u8]) -> IResult<&[u8], u8> {
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

/// `VERSION SP`: a non-zero digit followed by up to two digits.
fn version(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, d) = verify(take_while_m_n(1, 3, is_digit), |d: &[u8]| d[0] != b'0')(i)?;
    let (i, _) = char(' ')(i)?;
    Ok((i, digits_value(d)))
}

/// A header field: NILVALUE or a run of non-space bytes, then SP.
fn header_field(i: &[u8]) -> IResult<&[u8], Option<&[u8]>> {
    let (i, f) = take_till1(|b| b == b' ')(i)?;
    let (i, _) = char(' ')(i)?;
    Ok((i, if f == b"-" { None } else { Some(f) }))
}

/// Fractional seconds: keeps up to 9 digits, ignores the rest.
fn fraction(i: &[u8]) -> IResult<&[u8], (u32, u8)> {
    let (i, d) = preceded(char('.'), take_while_m_n(1, 32, is_digit))(i)?;
    let kept = &d[..d.len().min(9)];
    let digits = kept.len() as u8;
    let nanos = digits_value(kept) * 10u32.pow(9 - u32::from(digits));
    Ok((i, (nanos, digits)))
}

/// `Z` or `±HH:MM` (also `±HHMM`), in seconds east of UTC.
fn utc_offset(i: &[u8]) -> IResult<&[u8], i32> {
    alt((
        |i| {
            let (i, _) = alt((char('Z'), char('z')))(i)?;
            Ok((i, 0))
        },
        |i| {
            let (i, sign) = alt((char('+'), char('-')))(i)?;
            let (i, h) = verify(num::<2>, |h| *h <= 23)(i)?;
            let (i, _) = opt(char(':'))(i)?;
            let (i, m) = verify(num::<2>, |m| *m <= 59)(i)?;
            let secs = (h * 3600 + m * 60) as i32;
            Ok((i, if sign == '-' { -secs } else { secs }))
        },
    ))(i)
}

struct CivilTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    frac_digits: u8,
}

impl CivilTime {
    fn valid(&self) -> bool {
        NaiveDate::from_ymd_opt(self.year as i32, self.month, self.day).is_some()
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
    }

    /// Seconds since the epoch if this civil time were UTC (leap second folded).
    fn unix_secs_as_utc(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second.min(59))
    }

    fn with_offset(&self, offset_secs: i32) -> Timestamp {
        let secs = self.unix_secs_as_utc() - i64::from(offset_secs);
        Timestamp {
            unix_nanos: secs.saturating_mul(1_000_000_000) + i64::from(self.nanos),
            offset_secs,
            frac_digits: self.frac_digits,
        }
    }

    /// Resolve a zone-less civil time in `tz`. In a DST gap the offset in
    /// force just before the gap is used; in an overlap the earlier instant.
    fn in_zone(&self, tz: &Tz) -> Option<Timestamp> {
        if *tz == Tz::UTC {
            return Some(self.with_offset(0));
        }
        let naive = NaiveDate::from_ymd_opt(self.year as i32, self.month, self.day)?.and_hms_opt(
            self.hour,
            self.minute,
            self.second.min(59),
        )?;
        let offset = match tz.offset_from_local_datetime(&naive).earliest() {
            Some(o) => o.fix().local_minus_utc(),
            None => tz.offset_from_utc_datetime(&naive).fix().local_minus_utc(),
        };
        Some(self.with_offset(offset))
    }
}

/// RFC 3339 `FULL-DATE "T" FULL-TIME`; the offset may be missing (then the
/// configured zone applies). A space instead of `T` is accepted.
fn rfc3339(i: &[u8]) -> IResult<&[u8], (CivilTime, Option<i32>)> {
    let (i, year) = num::<4>(i)?;
    let (i, _) = char('-')(i)?;
    let (i, month) = num::<2>(i)?;
    let (i, _) = char('-')(i)?;
    let (i, day) = num::<2>(i)?;
    let (i, _) = alt((char('T'), char('t')))(i)?;
    let (i, hour) = num::<2>(i)?;
    let (i, _) = char(':')(i)?;
    let (i, minute) = num::<2>(i)?;
    let (i, _) = char(':')(i)?;
    let (i, second) = num::<2>(i)?;
    let (i, frac) = opt(fraction)(i)?;
    let (i, offset) = opt(utc_offset)(i)?;
    let (nanos, frac_digits) = frac.unwrap_or((0, 0));
    let t = CivilTime {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
        nanos,
        frac_digits,
    };
    if !t.valid() {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((i, (t, offset)))
}

fn resolve(t: &CivilTime, offset: Option<i32>, opts: &DecodeOptions) -> Option<Timestamp> {
    match offset {
        Some(o) => Some(t.with_offset(o)),
        None => t.in_zone(&opts.timezone),
    }
}

/// The RFC 5424 grammar. Returns false (and leaves the event untouched) when
/// the header does not fit, so the caller can try RFC 3164.
fn rfc5424(all: &[u8], after_pri: &[u8], event: &mut Event, opts: &DecodeOptions) -> bool {
    let Ok((i, _version)) = version(after_pri) else {
        return false;
    };
    let (i, timestamp) = if let Ok((i, _)) = tag::<_, _, nom::error::Error<&[u8]>>("- ")(i) {
        (i, None)
    } else {
        match rfc3339(i) {
            Ok((i, (t, offset))) => match char::<_, nom::error::Error<&[u8]>>(' ')(i) {
                Ok((i, _)) => (i, resolve(&t, offset, opts)),
                Err(_) => return false,
            },
            Err(_) => return false,
        }
    };
    let Ok((i, hostname)) = header_field(i) else {
        return false;
    };
    let Ok((i, appname)) = header_field(i) else {
        return false;
    };
    let Ok((i, procid)) = header_field(i) else {
        return false;
    };
    // MSGID may be the last thing in the frame (no SD, no MSG): lenient.
    let (i, msgid) = match header_field(i) {
        Ok(r) => r,
        Err(_) => match take_till1::<_, _, nom::error::Error<&[u8]>>(|b| b == b' ')(i) {
            Ok((i, f)) if i.is_empty() => (i, if f == b"-" { None } else { Some(f) }),
            _ => return false,
        },
    };
    let text = |f: Option<&[u8]>| f.map(|f| Text::Span(span_of(all, f)));
    event.protocol = Protocol::Rfc5424;
    event.valid = true;
    event.timestamp = timestamp;
    event.hostname = text(hostname);
    event.appname = text(appname);
    event.procid = text(procid);
    event.msgid = text(msgid);

    let rest = match structured_data(all, i) {
        Ok((rest, sd)) => {
            event.structured_data = sd;
            rest
        }
        // Malformed structured data: keep it as part of the message.
        Err(_) => i,
    };
    let msg = rest.strip_prefix(b" ").unwrap_or(rest);
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    event.message = Text::Span(span_of(all, trim_end(msg)));
    true
}

/// `SD = NILVALUE / 1*SD-ELEMENT`.
fn structured_data<'a>(all: &[u8], i: &'a [u8]) -> IResult<&'a [u8], Vec<SdElement>> {
    if i.is_empty() {
        return Ok((i, Vec::new()));
    }
    if let Some(rest) = i.strip_prefix(b"-") {
        if rest.is_empty() || rest[0] == b' ' {
            return Ok((rest, Vec::new()));
        }
    }
    let mut elements = Vec::new();
    let mut i = i;
    while i.first() == Some(&b'[') {
        let (rest, element) = sd_element(all, i)?;
        elements.push(element);
        i = rest;
    }
    if elements.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    }
    Ok((i, elements))
}

fn sd_name(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_till1(|b| matches!(b, b' ' | b'=' | b']' | b'"'))(i)
}

fn sd_element<'a>(all: &[u8], i: &'a [u8]) -> IResult<&'a [u8], SdElement> {
    let (mut i, id) = preceded(char('['), sd_name)(i)?;
    let mut params = Vec::new();
    loop {
        let rest = skip_spaces(i);
        if let Some(rest) = rest.strip_prefix(b"]") {
            return Ok((
                rest,
                SdElement {
                    id: Text::Span(span_of(all, id)),
                    params,
                },
            ));
        }
        if rest.len() == i.len() {
            // Parameters must be separated by a space.
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Space,
            )));
        }
        let (rest, name) = sd_name(rest)?;
        let (rest, _) = tag("=\"")(rest)?;
        let (rest, value) = sd_value(all, rest)?;
        params.push(SdParam {
            name: Text::Span(span_of(all, name)),
            value,
        });
        i = rest;
    }
}

fn skip_spaces(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|b| **b == b' ').count();
    &i[n..]
}

/// PARAM-VALUE up to the closing quote; `\"`, `\\` and `\]` are unescaped,
/// any other backslash is kept (RFC 5424 §6.3.3).
fn sd_value<'a>(all: &[u8], i: &'a [u8]) -> IResult<&'a [u8], Text> {
    let mut escaped = false;
    let mut k = 0;
    while k < i.len() {
        match i[k] {
            b'\\' if k + 1 < i.len() && matches!(i[k + 1], b'"' | b'\\' | b']') => {
                escaped = true;
                k += 2;
            }
            b'"' => {
                let raw = &i[..k];
                let text = if escaped {
                    let mut out = Vec::with_capacity(raw.len());
                    let mut j = 0;
                    while j < raw.len() {
                        if raw[j] == b'\\'
                            && j + 1 < raw.len()
                            && matches!(raw[j + 1], b'"' | b'\\' | b']')
                        {
                            out.push(raw[j + 1]);
                            j += 2;
                        } else {
                            out.push(raw[j]);
                            j += 1;
                        }
                    }
                    // Only ASCII bytes were removed, so this stays UTF-8.
                    Text::Owned(Arc::from(String::from_utf8_lossy(&out).as_ref()))
                } else {
                    Text::Span(span_of(all, raw))
                };
                return Ok((&i[k + 1..], text));
            }
            _ => k += 1,
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Eof,
    )))
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| matches!(c, b'\n' | b'\r' | b'\0'))
        .count();
    &b[..b.len() - n]
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

/// `Mmm dd hh:mm:ss` with the day space-padded (`Jan  5`) or not.
fn bsd_timestamp(i: &[u8]) -> IResult<&[u8], (u32, u32, u32, u32, u32)> {
    let (i, m) = month(i)?;
    let (i, _) = char(' ')(i)?;
    let (i, _) = opt(char(' '))(i)?;
    let (i, d) = take_while_m_n(1, 2, is_digit)(i)?;
    let (i, _) = char(' ')(i)?;
    let (i, hh) = num::<2>(i)?;
    let (i, _) = char(':')(i)?;
    let (i, mm) = num::<2>(i)?;
    let (i, _) = char(':')(i)?;
    let (i, ss) = num::<2>(i)?;
    Ok((i, (m, digits_value(d), hh, mm, ss)))
}

/// The year that puts `month/day time` (read in `tz`) closest to `received_nanos`.
fn nearest_year(
    (month, day, hour, minute, second): (u32, u32, u32, u32, u32),
    received_nanos: i64,
    opts: &DecodeOptions,
) -> Option<Timestamp> {
    let received_secs = received_nanos.div_euclid(1_000_000_000);
    let received_year = chrono::DateTime::from_timestamp(received_secs, 0)
        .map(|utc| {
            use chrono::Datelike;
            utc.with_timezone(&opts.timezone).year()
        })
        .unwrap_or(1970);
    (received_year - 1..=received_year + 1)
        .filter_map(|year| {
            let t = CivilTime {
                year: i64::from(year),
                month,
                day,
                hour,
                minute,
                second,
                nanos: 0,
                frac_digits: 0,
            };
            if t.valid() {
                t.in_zone(&opts.timezone)
            } else {
                None
            }
        })
        .min_by_key(|ts| (ts.unix_nanos.div_euclid(1_000_000_000) - received_secs).abs())
}

/// RFC 3164 as senders write it: `TIMESTAMP HOSTNAME TAG[PID]: MSG`, any part
/// of which may be missing.
fn rfc3164(all: &[u8], after_pri: &[u8], event: &mut Event, opts: &DecodeOptions) {
    event.protocol = Protocol::Rfc3164;
    event.valid = true;
    let mut i = after_pri;
    let mut have_timestamp = false;
    if let Ok((rest, parts)) = bsd_timestamp(i) {
        event.timestamp = nearest_year(parts, event.received_nanos, opts);
        have_timestamp = true;
        i = rest;
    } else if let Ok((rest, (t, offset))) = rfc3339(i) {
        event.timestamp = resolve(&t, offset, opts);
        have_timestamp = true;
        i = rest;
    }
    if have_timestamp {
        i = skip_spaces(i);
        // HOSTNAME, unless the next word is already the TAG.
        if let Ok((rest, word)) = take_till1::<_, _, nom::error::Error<&[u8]>>(|b| b == b' ')(i) {
            let looks_like_tag = word.ends_with(b":") || word.contains(&b'[');
            if !looks_like_tag && !rest.is_empty() {
                event.hostname = Some(Text::Span(span_of(all, word)));
                i = skip_spaces(rest);
            }
        }
    }
    if let Some((app, pid, rest)) = tag_and_pid(i) {
        event.appname = Some(Text::Span(span_of(all, app)));
        event.procid = pid.map(|p| Text::Span(span_of(all, p)));
        i = rest.strip_prefix(b" ").unwrap_or(rest);
    }
    event.message = Text::Span(span_of(all, trim_end(i)));
}

/// `TAG[PID]:` or `TAG:`; TAG is up to 48 of `[A-Za-z0-9_./-]`.
/// (TAG, PID, rest of the frame)
type TagPid<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

fn tag_and_pid(i: &[u8]) -> Option<TagPid<'_>> {
    let n = i
        .iter()
        .take(49)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        .count();
    if n == 0 || n > 48 {
        return None;
    }
    let (app, rest) = i.split_at(n);
    if let Some(rest) = rest.strip_prefix(b":") {
        return Some((app, None, rest));
    }
    let inner = rest.strip_prefix(b"[")?;
    let close = inner.iter().take(129).position(|b| *b == b']')?;
    let (pid, rest) = inner.split_at(close);
    let rest = rest.strip_prefix(b"]:")?;
    Some((app, if pid.is_empty() { None } else { Some(pid) }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED_2026_11_24: i64 = 1_795_500_000 * 1_000_000_000; // 2026-11-25T…Z region

    fn dec(s: &str) -> Event {
        decode(
            Bytes::copy_from_slice(s.as_bytes()),
            None,
            RECEIVED_2026_11_24,
            &DecodeOptions::default(),
        )
    }

    fn json(e: &Event) -> serde_json::Value {
        let mut s = String::new();
        e.write_canonical_json(&mut s);
        serde_json::from_str(&s).unwrap()
    }

    #[test]
    fn pri_bounds() {
        assert_eq!(pri(b"<0>").unwrap().1, 0);
        assert_eq!(pri(b"<191>").unwrap().1, 191);
        assert!(pri(b"<192>").is_err());
        assert!(pri(b"<>").is_err());
        assert!(pri(b"<1234>").is_err());
        assert!(pri(b"13>").is_err());
    }

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
        let e = dec("<13>1 - host app - - - \u{feff}hello");
        assert_eq!(e.message(), "hello");
        assert!(e.timestamp.is_none());
    }

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
    fn rfc3164_year_nearest_to_receive_time() {
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
    fn zone_less_timestamps_use_configured_zone() {
        let opts = DecodeOptions {
            timezone: "Asia/Tokyo".parse().unwrap(),
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
    fn log4j_header_false_has_no_hostname_or_tag() {
        let e = dec("<14>Hello from log4j 1.2 default");
        assert_eq!(e.protocol, Protocol::Rfc3164);
        assert_eq!(e.hostname(), None);
        assert_eq!(e.appname(), None);
        assert_eq!(e.message(), "Hello from log4j 1.2 default");
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
}
