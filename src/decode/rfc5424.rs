//! RFC 5424: `VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`,
//! with structured data that is nearly right recovered.

use std::sync::Arc;

use nom::IResult;
use nom::bytes::complete::{take_till1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::verify;

use super::sd_ids::SeenIds;
use super::time::{resolve, rfc3339, rfc3339_comma, rfc3339_rules, rfc3339_utc};
use super::words::graphic_run;
use super::{DecodeOptions, digits_value, is_digit, skip_blanks, skip_spaces, span_of, trim_end};
use crate::event::{
    Event, Lenient, LenientRule, Protocol, SdElement, SdParam, SdParams, Text, Timestamp,
};

/// `VERSION SP`: a non-zero digit followed by up to two digits.
pub(super) fn version(i: &[u8]) -> IResult<&[u8], u32> {
    // `1 `, the version every sender writes, without the combinators.
    if let [v @ b'1'..=b'9', b' ', rest @ ..] = i {
        return Ok((rest, u32::from(v - b'0')));
    }
    let (i, d) = verify(take_while_m_n(1, 3, is_digit), |d: &[u8]| d[0] != b'0')(i)?;
    let (i, _) = char(' ')(i)?;
    Ok((i, digits_value(d)))
}

/// PRINTUSASCII (`%d33-126`), the bytes of a header field (§6).
fn is_printusascii(b: u8) -> bool {
    b.wrapping_sub(b'!') <= b'~' - b'!'
}

/// A header field: NILVALUE or a run of non-space bytes, then SP. Bytes
/// outside PRINTUSASCII are read as part of the field, and name
/// [`LenientRule::HeaderNotPrintusascii`].
///
/// Inlined at its call sites: out of line (as it went once the leniency
/// checks grew it) it cost the e2e benchmark's decoding a call per field
/// (callgrind, README's Performance section).
#[inline(always)]
fn header_field<'a>(i: &'a [u8], lenient: &mut Lenient) -> IResult<&'a [u8], Option<&'a [u8]>> {
    // A word at a time ([`graphic_run`]), not memchr: its call cost more
    // than it saved on fields of a few bytes (callgrind, rfc5424_sd bench).
    // It stops at SP, a control byte or a byte from 0x80: SP on every
    // well-formed field, so the check costs nothing more there.
    match i.split_at_checked(graphic_run(i)) {
        Some((f, [b' ', rest @ ..])) if !f.is_empty() => Ok((
            extra_spaces(rest, lenient),
            if f == b"-" { None } else { Some(f) },
        )),
        _ => header_field_unusual(i, lenient),
    }
}

/// More spaces after the one that ends a header field: read past, and
/// [`LenientRule::HeaderExtraSpaces`] named (syslog_loose reads them).
#[inline(always)]
fn extra_spaces<'a>(i: &'a [u8], lenient: &mut Lenient) -> &'a [u8] {
    if i.first() == Some(&b' ') {
        lenient.insert(LenientRule::HeaderExtraSpaces);
        skip_spaces(i)
    } else {
        i
    }
}

/// [`header_field`] when the field holds bytes outside PRINTUSASCII (or is
/// not followed by SP): the field runs to SP as before, and the rule is
/// named when it is read.
#[cold]
fn header_field_unusual<'a>(
    i: &'a [u8],
    lenient: &mut Lenient,
) -> IResult<&'a [u8], Option<&'a [u8]>> {
    let (i, f) = take_till1(|b| b == b' ')(i)?;
    let (i, _) = char(' ')(i)?;
    lenient.insert(LenientRule::HeaderNotPrintusascii);
    Ok((extra_spaces(i, lenient), Some(f)))
}

/// The RFC 5424 grammar over `all`, the frame without its trailers (line
/// ends and NULs: [`super::decode_into`] trims them). Returns false (and
/// leaves the event untouched) when the header does not fit, so the
/// caller can try RFC 3164.
///
/// Lenient where senders break it and Flume reads them anyway (each marked
/// in `event.lenient`): a timestamp without offset; a header that ends after
/// the hostname (the rest is the message); a frame that ends after MSGID;
/// structured data that is nearly right (see [`structured_data`]).
pub(super) fn rfc5424(
    all: &[u8],
    after_pri: &[u8],
    event: &mut Event,
    opts: &DecodeOptions,
) -> bool {
    // `<13> 1 …`, `<13>\t1 …`: blanks before the version (syslog_loose).
    let (after_pri, blank) = match after_pri.first() {
        Some(b' ' | b'\t') => (skip_blanks(after_pri), true),
        _ => (after_pri, false),
    };
    let Ok((i, _version)) = version(after_pri) else {
        return false;
    };
    let mut lenient = Lenient::default();
    if blank {
        lenient.insert(LenientRule::SpaceAfterPri);
    }
    let i = extra_spaces(i, &mut lenient);
    let Some((i, timestamp)) = timestamp_field(i, &mut lenient, opts) else {
        return false;
    };
    let i = extra_spaces(i, &mut lenient);
    let text = |f: Option<&[u8]>| f.map(|f| Text::Span(span_of(all, f)));
    let (i, hostname) = match header_field(i, &mut lenient) {
        Ok(r) => r,
        Err(_) => {
            // `TIMESTAMP HOSTNAME` and the end of the frame (or not even a
            // hostname): the header is cut short, nothing is lost.
            if i.contains(&b' ') {
                return false;
            }
            lenient.insert(LenientRule::HeaderFieldsMissing);
            if i.len() > HOSTNAME_MAX {
                lenient.insert(LenientRule::HeaderFieldLong);
            }
            event.protocol = Protocol::Rfc5424;
            event.valid = true;
            event.timestamp = timestamp;
            event.hostname = text(Some(i).filter(|h| !h.is_empty() && *h != b"-"));
            event.message = Text::Span(span_of(all, &i[i.len()..]));
            event.lenient = lenient;
            return true;
        }
    };
    if field_len(hostname) > HOSTNAME_MAX {
        lenient.insert(LenientRule::HeaderFieldLong);
    }
    event.protocol = Protocol::Rfc5424;
    event.valid = true;
    event.timestamp = timestamp;
    event.hostname = text(hostname);
    // APP-NAME SP PROCID SP MSGID: when these are not all there, the header
    // ended at the hostname and the rest is message (Flume's reading: it
    // keeps the timestamp and host and nothing else).
    let after_host = i;
    let mut fields_lenient = Lenient::default();
    let fields = app_proc_msgid(i, &mut fields_lenient)
        .filter(|(rest, app, proc, msgid)| !fields_missing(rest, *app, *proc, *msgid));
    let Some((i, appname, procid, msgid)) = fields else {
        lenient.insert(LenientRule::HeaderFieldsMissing);
        event.message = Text::Span(span_of(all, trim_end(after_host)));
        event.lenient = lenient;
        return true;
    };
    lenient.extend(fields_lenient);
    // The lengths are known from the scan: three comparisons, one branch.
    if (field_len(appname) > APP_NAME_MAX)
        | (field_len(procid) > PROCID_MAX)
        | (field_len(msgid) > MSGID_MAX)
    {
        lenient.insert(LenientRule::HeaderFieldLong);
    }
    event.appname = text(appname);
    event.procid = text(procid);
    event.msgid = text(msgid);

    let (rest, kept_from) = match i {
        // NILVALUE, the usual structured data: read here, without the
        // general reader's call (callgrind, README's Performance section),
        // and the event's list left as it is (empty: the event is fresh),
        // not replaced by another empty one (an out-of-line drop).
        [b'-'] | [b'-', b' ', ..] => {
            debug_assert!(event.structured_data.is_empty(), "a fresh event");
            (&i[1..], None)
        }
        _ => {
            let sd = structured_data(all, i);
            event.structured_data = sd.elements;
            lenient.extend(sd.lenient);
            (sd.rest, sd.kept_from)
        }
    };
    let msg = match kept_from {
        // Structured data that could not all be read stays in the
        // message, byte for byte.
        Some(kept) => kept,
        None => {
            let msg = match rest.split_first() {
                Some((b' ', msg)) => msg,
                None => rest,
                // `[a x="1"]garbage`: MSG is what follows the element.
                Some(_) => {
                    lenient.insert(LenientRule::SdNoSpaceBeforeMsg);
                    rest
                }
            };
            // RFC 5424 §6.4: MSG-UTF8 = BOM UTF-8-STRING. The BOM is
            // part of MSG and stays in the message, as syslog_loose,
            // go-syslog and Flume keep it (the router matches patterns
            // after it).
            msg
        }
    };
    event.lenient = lenient;
    // `msg` ends where `all` does, whose trailers are already trimmed.
    event.message = Text::Span(span_of(all, msg));
    true
}

/// RFC 5424 §6: the most bytes HOSTNAME, APP-NAME, PROCID and MSGID may
/// hold. A longer field is read as sent, and names
/// [`LenientRule::HeaderFieldLong`].
const HOSTNAME_MAX: usize = 255;
const APP_NAME_MAX: usize = 48;
const PROCID_MAX: usize = 128;
const MSGID_MAX: usize = 32;

/// A header field's length in bytes (NILVALUE: 0).
#[inline(always)]
fn field_len(f: Option<&[u8]>) -> usize {
    f.map_or(0, <[u8]>::len)
}

/// TIMESTAMP SP: NILVALUE or an RFC 3339 time (its rules in `lenient`),
/// and the frame after it; `None` when it is neither (the frame is then no
/// RFC 5424 one). Inlined: it runs for every RFC 5424 frame.
#[inline(always)]
fn timestamp_field<'a>(
    i: &'a [u8],
    lenient: &mut Lenient,
    opts: &DecodeOptions,
) -> Option<(&'a [u8], Option<Timestamp>)> {
    if let Some(i) = i.strip_prefix(b"- ") {
        Some((i, None))
    } else if let Some((rest, ts)) = rfc3339_utc(i) {
        // The common form: no rule applies, nothing to resolve.
        Some((rest.strip_prefix(b" ").unwrap_or(rest), Some(ts)))
    } else {
        match rfc3339(i) {
            Ok((rest, (t, offset))) => {
                let (rest, t, offset) = match rest.first() {
                    None | Some(b' ') => {
                        lenient.extend(rfc3339_rules(&i[..i.len() - rest.len()], 6));
                        (rest, t, offset)
                    }
                    // `08:00:00,123Z`: the comma fraction, in the RFC 5424
                    // field too (§6.2.3 writes `.`; nothing is lost
                    // reading it, and the rule says so).
                    Some(_) => match rfc3339_comma(i, 6) {
                        Some((rest, t, offset, rules))
                            if matches!(rest.first(), None | Some(b' ')) =>
                        {
                            lenient.extend(rules);
                            (rest, t, offset)
                        }
                        _ => return None,
                    },
                };
                // Nothing after the timestamp: a header cut short.
                let i = rest.strip_prefix(b" ").unwrap_or(rest);
                if offset.is_none() {
                    lenient.insert(LenientRule::TimestampWithoutOffset);
                }
                // A leap second where the offset puts none: not a time,
                // read as RFC 3164 (`timestamp_invalid`, text kept).
                let ts = resolve(&t, offset, opts)?;
                Some((i, Some(ts)))
            }
            Err(_) => None,
        }
    }
}

/// Whether three words after the hostname are the message's and not
/// APP-NAME, PROCID and MSGID (`db01 nightly backup finished in 42s`): the
/// STRUCTURED-DATA slot after them is neither `-` nor `[`, and none of them
/// is NILVALUE (a `-` there is a header the sender wrote, and then the SD
/// is malformed, [`LenientRule::SdMalformed`]). Either reading keeps every
/// byte; this one is Flume's, which keeps timestamp and host only.
fn fields_missing(
    sd: &[u8],
    app: Option<&[u8]>,
    proc: Option<&[u8]>,
    msgid: Option<&[u8]>,
) -> bool {
    !matches!(sd.first(), None | Some(b'-' | b'['))
        && app.is_some()
        && proc.is_some()
        && msgid.is_some()
}

/// (rest, APP-NAME, PROCID, MSGID)
type AppProcMsgid<'a> = (
    &'a [u8],
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    Option<&'a [u8]>,
);

/// `APP-NAME SP PROCID SP MSGID`, then SP or the end of the frame (no SD,
/// no MSG: lenient, [`LenientRule::SdMissing`]).
fn app_proc_msgid<'a>(i: &'a [u8], lenient: &mut Lenient) -> Option<AppProcMsgid<'a>> {
    let (i, appname) = header_field(i, lenient).ok()?;
    let (i, procid) = header_field(i, lenient).ok()?;
    let (i, msgid) = match header_field(i, lenient) {
        // `MSGID SP` and the end of the frame: no SD either.
        Ok((i, msgid)) if i.is_empty() => {
            lenient.insert(LenientRule::SdMissing);
            (i, msgid)
        }
        Ok(r) => r,
        Err(_) => match take_till1::<_, _, nom::error::Error<&[u8]>>(|b| b == b' ')(i) {
            Ok((i, f)) if i.is_empty() => {
                lenient.insert(LenientRule::SdMissing);
                if !f.iter().all(|b| is_printusascii(*b)) {
                    lenient.insert(LenientRule::HeaderNotPrintusascii);
                }
                (i, if f == b"-" { None } else { Some(f) })
            }
            _ => return None,
        },
    };
    Some((i, appname, procid, msgid))
}

/// What [`structured_data`] read.
pub(super) struct SdRead<'a> {
    pub(super) elements: Vec<SdElement>,
    /// The frame after the last element read.
    pub(super) rest: &'a [u8],
    /// Where the message starts when structured data could not all be
    /// read: from the first element that was not well-formed on, the text
    /// stays in the message as sent.
    pub(super) kept_from: Option<&'a [u8]>,
    pub(super) lenient: Lenient,
}

/// `SD = NILVALUE / 1*SD-ELEMENT`, nearly-right elements recovered: every
/// well-formed element and parameter is kept; spaces around `=` are
/// skipped; a parameter without a value is left out of its element and the
/// element's text stays in the message; an element that cannot be read
/// ends the structured data, and it and what follows stay in the message.
pub(super) fn structured_data<'a>(all: &[u8], i: &'a [u8]) -> SdRead<'a> {
    sd_elements(all, i, &mut SeenIds::new())
}

/// [`structured_data`] and the SD-ID comparisons it made.
#[cfg(test)]
pub(super) fn structured_data_counted<'a>(all: &[u8], i: &'a [u8]) -> (SdRead<'a>, usize) {
    let mut seen_ids = SeenIds::new();
    let read = sd_elements(all, i, &mut seen_ids);
    (read, seen_ids.comparisons)
}

fn sd_elements<'a, 'f>(all: &'f [u8], i: &'a [u8], seen_ids: &mut SeenIds<'f>) -> SdRead<'a> {
    let mut read = SdRead {
        elements: Vec::new(),
        rest: i,
        kept_from: None,
        lenient: Lenient::default(),
    };
    if i.is_empty() {
        return read;
    }
    if let Some(rest) = i.strip_prefix(b"-") {
        if rest.is_empty() || rest[0] == b' ' {
            read.rest = rest;
            return read;
        }
    }
    if i.first() != Some(&b'[') {
        read.lenient.insert(LenientRule::SdMalformed);
        read.kept_from = Some(i);
        return read;
    }
    // Built here rather than by `reserve` on the empty list: the
    // out-of-line growth path cost about 20 instructions a frame.
    read.elements = Vec::with_capacity(2);
    let mut i = i;
    while i.first() == Some(&b'[') {
        // An element's rules count only when the element is read.
        let mut lenient = Lenient::default();
        // The element is filled where it lies in the list: built aside and
        // moved in, its inline parameters were copied twice (memcpy,
        // about 80 instructions a frame on the rfc5424_sd bench).
        read.elements.push(SdElement {
            id: Text::Static(""),
            params: SdParams::new(),
        });
        let read_element = match read.elements.split_last_mut() {
            Some((element, earlier)) => {
                let seen = Seen {
                    earlier,
                    ids: &mut *seen_ids,
                };
                sd_element(all, i, &mut lenient, element, seen)
            }
            None => break,
        };
        match read_element {
            Ok((rest, complete)) => {
                read.lenient.extend(lenient);
                if !complete && read.kept_from.is_none() {
                    read.kept_from = Some(i);
                }
                i = rest;
            }
            Err(_) => {
                read.elements.pop();
                read.lenient.insert(LenientRule::SdMalformed);
                if read.kept_from.is_none() {
                    read.kept_from = Some(i);
                }
                break;
            }
        }
    }
    read.rest = i;
    read
}

/// A byte of an SD-NAME (§6.3.2: PRINTUSASCII but `=`, SP, `]`, `"`).
const NAME: u8 = 0;
/// A byte that ends an SD-NAME: `SP = ] "`.
const NAME_END: u8 = 1;
/// A byte the grammar does not allow in an SD-NAME that does not end it
/// either: controls, DEL, bytes from 0x80 ([`LenientRule::SdNameInvalid`]).
const NAME_UNUSUAL: u8 = 2;

/// The class of each byte in an SD-NAME, one table look-up a byte
/// instead of four comparisons: the scan stops at an unusual byte as at
/// an end, so checking the name costs one comparison after it.
const SD_NAME_BYTES: [u8; 256] = {
    let mut t = [NAME; 256];
    let mut b = 0;
    while b < 256 {
        if b <= 0x20 || b >= 0x7f {
            t[b] = NAME_UNUSUAL;
        }
        b += 1;
    }
    t[b' ' as usize] = NAME_END;
    t[b'=' as usize] = NAME_END;
    t[b']' as usize] = NAME_END;
    t[b'"' as usize] = NAME_END;
    t
};

/// §6.3.2/§6.3.3: an SD-NAME is at most 32 bytes.
const SD_NAME_MAX: usize = 32;

/// An SD-ID or PARAM-NAME, up to `SP = ] "`. One with bytes outside
/// PRINTUSASCII or over 32 bytes is read the same and names
/// [`LenientRule::SdNameInvalid`].
#[inline(always)]
fn sd_name<'a>(i: &'a [u8], lenient: &mut Lenient) -> IResult<&'a [u8], &'a [u8]> {
    match take_till1::<_, _, nom::error::Error<&[u8]>>(|b: u8| {
        SD_NAME_BYTES[usize::from(b)] != NAME
    })(i)
    {
        Ok((rest, name))
            if name.len() <= SD_NAME_MAX
                && rest
                    .first()
                    .is_none_or(|b| SD_NAME_BYTES[usize::from(*b)] == NAME_END) =>
        {
            Ok((rest, name))
        }
        _ => sd_name_unusual(i, lenient),
    }
}

/// [`sd_name`] past bytes outside the grammar, or over 32 bytes.
#[cold]
#[inline(never)]
fn sd_name_unusual<'a>(i: &'a [u8], lenient: &mut Lenient) -> IResult<&'a [u8], &'a [u8]> {
    let (rest, name) = take_till1(|b: u8| SD_NAME_BYTES[usize::from(b)] == NAME_END)(i)?;
    lenient.insert(LenientRule::SdNameInvalid);
    Ok((rest, name))
}

/// The SD-IDs read before the current element, for
/// [`LenientRule::SdDuplicateId`].
struct Seen<'e, 'f> {
    earlier: &'e [SdElement],
    ids: &'e mut SeenIds<'f>,
}

/// One `[SD-ID PARAM="VALUE" …]`, read into `element` (empty when
/// called; partly filled when this fails, and then dropped by the caller).
/// The bool is false when a parameter had no value (it is left out, and
/// the caller keeps the element's text).
fn sd_element<'a, 'f>(
    all: &'f [u8],
    i: &'a [u8],
    lenient: &mut Lenient,
    element: &mut SdElement,
    seen: Seen<'_, 'f>,
) -> IResult<&'a [u8], bool> {
    let (mut i, id) = sd_name(
        i.strip_prefix(b"[")
            .ok_or(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Char,
            )))?,
        lenient,
    )?;
    element.id = Text::Span(span_of(all, id));
    if seen.ids.repeated(all, seen.earlier, id) {
        lenient.insert(LenientRule::SdDuplicateId);
    }
    let params = &mut element.params;
    let mut complete = true;
    loop {
        let rest = skip_spaces(i);
        let spaces = i.len() - rest.len();
        if let Some(rest) = rest.strip_prefix(b"]") {
            if spaces > 0 {
                // `[a x="1" ]`: no SP before `]` in §6.3.
                lenient.insert(LenientRule::SdExtraSpaces);
            }
            return Ok((rest, complete));
        }
        match spaces {
            // Parameters must be separated by a space.
            0 => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Space,
                )));
            }
            1 => {}
            // `[a  x="1"]`, `[a x="1"  y="2"]`: one SP in §6.3.
            _ => lenient.insert(LenientRule::SdExtraSpaces),
        }
        let (after_name, name) = sd_name(rest, lenient)?;
        // Strictly `="` (every well-formed parameter: no further checks);
        // otherwise spaces around `=` are read past.
        let quoted = match after_name.strip_prefix(b"=\"") {
            Some(quoted) => quoted,
            None => match lenient_equals(after_name, lenient) {
                Ok(quoted) => quoted,
                Err(next) => {
                    complete = false;
                    i = next;
                    continue;
                }
            },
        };
        let (rest, value) = sd_value(all, quoted, lenient)?;
        params.push(SdParam {
            name: Text::Span(span_of(all, name)),
            value,
        });
        i = rest;
    }
}

/// A parameter's `=` and opening quote when they are not exactly `="`:
/// spaces around `=` are read past (`sequenceId= "5"`), and `Ok` is the
/// value after the quote. `Err` is where the element goes on when the
/// parameter has no value (`[origin ip]`, `[origin ip=]`,
/// `[origin ip= next="x"]`).
#[cold]
fn lenient_equals<'a>(after_name: &'a [u8], lenient: &mut Lenient) -> Result<&'a [u8], &'a [u8]> {
    let Some(after_eq) = skip_spaces(after_name).strip_prefix(b"=") else {
        lenient.insert(LenientRule::SdParamWithoutValue);
        return Err(after_name);
    };
    let Some(quoted) = skip_spaces(after_eq).strip_prefix(b"\"") else {
        lenient.insert(LenientRule::SdParamWithoutValue);
        return Err(after_eq);
    };
    // Not `="` (the caller's fast path), so there were spaces around `=`.
    lenient.insert(LenientRule::SdSpaceAroundEquals);
    Ok(quoted)
}

/// PARAM-VALUE up to the closing quote; `\"`, `\\` and `\]` are unescaped,
/// any other backslash is kept (RFC 5424 §6.3.3). A `]` that is not
/// escaped stays in the value and names
/// [`LenientRule::SdValueUnescapedBracket`].
fn sd_value<'a>(all: &[u8], i: &'a [u8], lenient: &mut Lenient) -> IResult<&'a [u8], Text> {
    let mut escaped = false;
    let mut k = 0;
    // memchr3 jumps to the next quote, backslash or unescaped `]` (values
    // such as trace ids are 16 to 32 bytes; a byte loop cost about 4
    // instructions a byte).
    while let Some(n) = memchr::memchr3(b'"', b'\\', b']', &i[k..]) {
        k += n;
        match i[k] {
            b']' => {
                lenient.insert(LenientRule::SdValueUnescapedBracket);
                k += 1;
            }
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

#[cfg(test)]
#[path = "rfc5424_tests.rs"]
mod tests;
