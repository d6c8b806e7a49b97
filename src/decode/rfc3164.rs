//! RFC 3164 as senders write it: `TIMESTAMP HOSTNAME TAG[PID]: MSG`, any
//! part missing, Cisco's sequence numbers and clock markers, and the TAG
//! forms real daemons write.

use super::rfc3164_fast::header;
use super::time::{
    bsd_timestamp, bsd_timestamp_year_first, comma_fraction, iso_not_a_time, resolve, rfc3339,
    rfc3339_comma, rfc3339_rules, time_ends, zone_abbreviation,
};
use super::{DecodeOptions, Sender, skip_blanks, skip_spaces, span_of, trim_end};
use crate::event::{Event, Lenient, LenientRule, Protocol, SdElement, SdParam, Text};

/// Cisco IOS: `SEQ: ` before the header (`service sequence-numbers`), and
/// optionally `HOST: ` after it (`logging origin-id hostname`), or a second
/// counter (`105: 000104: `, go-syslog), or an empty one (`: `, both
/// disabled).
struct CiscoPrefix<'a> {
    /// The counters, in the order sent (none for `: `).
    seqs: [Option<&'a [u8]>; 2],
    host: Option<&'a [u8]>,
    /// The frame at the time.
    rest: &'a [u8],
}

fn cisco_prefix(i: &[u8]) -> Option<CiscoPrefix<'_>> {
    let digits = i.iter().take(10).take_while(|b| b.is_ascii_digit()).count();
    let rest = i[digits..].strip_prefix(b": ")?;
    let seq = (digits > 0).then(|| &i[..digits]);
    let starts_time = |r: &[u8]| {
        let r = r
            .strip_prefix(b"*")
            .or_else(|| r.strip_prefix(b"."))
            .unwrap_or(r);
        bsd_timestamp(r).is_ok()
    };
    if starts_time(rest) {
        return Some(CiscoPrefix {
            seqs: [seq, None],
            host: None,
            rest,
        });
    }
    // An empty counter is a Cisco prefix only right before the time.
    let seq = seq?;
    let host_len = rest
        .iter()
        .take(256)
        .take_while(|b| !matches!(b, b' ' | b':'))
        .count();
    let after_host = rest[host_len..].strip_prefix(b": ")?;
    if host_len > 0 && starts_time(after_host) {
        let word = &rest[..host_len];
        // A second counter, not a hostname.
        let (second, host) = match word.iter().all(u8::is_ascii_digit) {
            true => (Some(word), None),
            false => (None, Some(word)),
        };
        return Some(CiscoPrefix {
            seqs: [Some(seq), second],
            host,
            rest: after_host,
        });
    }
    None
}

/// RFC 3164 as senders write it: `TIMESTAMP HOSTNAME TAG[PID]: MSG`, any part
/// of which may be missing, plus Cisco's sequence numbers and clock-sync
/// markers (kept as RFC 5424 `meta sequenceId` and `timeQuality isSynced`).
/// Forms the RFC does not allow are read as rsyslog, Flume and syslog_loose
/// read them, and marked in `event.lenient`.
pub(super) fn rfc3164(all: &[u8], after_pri: &[u8], event: &mut Event, opts: &DecodeOptions) {
    event.protocol = Protocol::Rfc3164;
    event.valid = true;
    let span = |piece: &[u8]| Text::Span(span_of(all, piece));
    // The usual frame, read as [`general`] reads it (a property test holds
    // them to it).
    if let Some(h) = header(after_pri, event.received_nanos, event.facility, opts) {
        event.timestamp = Some(h.timestamp);
        event.hostname = Some(span(h.host));
        event.appname = Some(span(h.app));
        event.procid = h.pid.map(span);
        event.message = span(h.message);
        event.lenient = Lenient::default();
        return;
    }
    general(all, after_pri, event, opts);
}

/// [`rfc3164`] for every form: `event` is marked RFC 3164 and valid.
#[inline]
pub(super) fn general(all: &[u8], after_pri: &[u8], event: &mut Event, opts: &DecodeOptions) {
    let span = |piece: &[u8]| Text::Span(span_of(all, piece));
    let mut lenient = Lenient::default();

    let (mut i, mut cisco) = before_header(all, after_pri, event, &mut lenient);

    let (have_timestamp, zone_named) = match timestamp(all, i, event, opts, &mut lenient) {
        Some((rest, zone_named)) => {
            i = rest;
            (true, zone_named)
        }
        None => (false, false),
    };
    if have_timestamp {
        if let Some(rest) = i.strip_prefix(b": ") {
            if cisco || zone_named || rest.first() == Some(&b'%') {
                // `TIME: MSG`, the Cisco shape: no hostname after the time.
                cisco = true;
            } else {
                // `Mar 7 2008 19:06:53: example tag: …` (rsyslog
                // rfc3164.sh): a colon after the time, then the header
                // goes on.
                lenient.insert(LenientRule::ColonAfterTimestamp);
            }
            i = rest;
        } else if let Some(rest) = i.strip_prefix(b" ") {
            i = rest;
        }
    }
    let generic = opts.sender == Sender::Generic;
    // A hostname (or `-`) was read and one space after it: the next word
    // is the TAG, colon or not (rsyslog, syslog_loose).
    let mut after_host = false;
    if have_timestamp && !cisco {
        // HOSTNAME, unless the next word is already the TAG. Exactly one
        // space is consumed after it: log4j stack-trace lines start with
        // four spaces that belong to the message.
        // The scan stops at SP, a control byte or a byte from 0x80 (read
        // as signed: one comparison a byte, as cheap as `!= b' '`): SP on
        // a usual hostname, so the control-byte check below costs nothing
        // more there. DEL is read past unnoticed.
        let mut word_len = i.iter().take_while(|b| **b as i8 > b' ' as i8).count();
        let mut control = false;
        let mut tag_after_tab = None;
        if i.get(word_len).is_some_and(|b| *b != b' ') {
            (word_len, control, tag_after_tab) = word_with_unusual_bytes(i, word_len, generic);
        }
        let (word, rest) = i.split_at(word_len);
        // A log4j listener takes any word here for the hostname: only a
        // generic one reads a bracketed IP literal as a lenient reading.
        let bracketed = generic && bracketed_ip_literal(word);
        let looks_like_tag = generic
            && !bracketed
            && (word.ends_with(b":")
                || word.contains(&b'[')
                // No hostname begins so: Snare's `#001`, a Cisco mnemonic.
                || matches!(word.first(), Some(b'#' | b'%')));
        if word_len > 0 && !looks_like_tag {
            if word == b"-" {
                // RFC 5424's NILVALUE where the hostname is.
                lenient.insert(LenientRule::HostnameNil);
            } else {
                event.hostname = Some(span(word));
                if control {
                    lenient.insert(LenientRule::HostnameControlBytes);
                }
                if bracketed {
                    lenient.insert(LenientRule::HostnameBracketed);
                }
            }
            match (tag_after_tab, rest.split_first()) {
                (Some(at_tag), _) => {
                    // `host\ttag: x`: a tab for the space.
                    lenient.insert(LenientRule::HeaderTab);
                    after_host = true;
                    i = at_tag;
                }
                (None, Some((_, rest))) => {
                    after_host = true;
                    i = rest;
                }
                (None, None) => {
                    // `<14>Nov  2 2024 10:11:12 fw01`: the hostname ends
                    // the frame (rsyslog weird.parse1, syslog_loose).
                    lenient.insert(LenientRule::HeaderWithoutMessage);
                    i = rest;
                }
            }
        }
    }
    if let Some(rest) = log4j_facility_prefix(i, event.facility) {
        if opts.strip_facility_prefix {
            i = rest;
        }
    } else if generic && cisco {
        // `TIME: %FACILITY-SEVERITY-MNEMONIC: MSG`: the mnemonic is the app,
        // as after a hostname (Cisco ASA).
        if let Some(tag) = cisco_mnemonic_tag(i) {
            event.appname = tag.app.map(span);
            lenient.extend(tag.lenient);
            i = tag.rest.strip_prefix(b" ").unwrap_or(tag.rest);
        }
    } else if generic {
        let tag = match tag_and_pid(i, have_timestamp) {
            None if after_host => tag_after_host(i, opts.app_name.is_none()),
            tag => tag,
        };
        if let Some(tag) = tag {
            event.appname = tag.app.map(span);
            event.procid = tag.pid.map(span);
            lenient.extend(tag.lenient);
            i = tag.rest.strip_prefix(b" ").unwrap_or(tag.rest);
            i = sd_after_tag(all, i, event, &mut lenient).unwrap_or(i);
        }
    }
    event.message = span(trim_end(i));
    event.lenient = lenient;
}

/// `[2001:db8::2]`, `[192.0.2.1]`: an IP address in brackets, the form
/// rsyslog's `permit.squareBracketsInHostname` reads as a hostname.
fn bracketed_ip_literal(word: &[u8]) -> bool {
    word.strip_prefix(b"[")
        .and_then(|w| w.strip_suffix(b"]"))
        .and_then(|ip| std::str::from_utf8(ip).ok())
        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
}

/// The timestamp: BSD (with Cisco's zone name) or ISO. Returns the frame
/// after it and whether a zone name followed the time; `None` when there is
/// none (or it is not a real time: then nothing is consumed).
fn timestamp<'a>(
    all: &[u8],
    i: &'a [u8],
    event: &mut Event,
    opts: &DecodeOptions,
    lenient: &mut Lenient,
) -> Option<(&'a [u8], bool)> {
    // `2020 Jul 16 …`: the time after its year (`ti`).
    let bsd = match bsd_timestamp(i) {
        Ok((rest, t)) => Some((i, rest, t)),
        Err(_) => bsd_timestamp_year_first(i).map(|(rest, t)| (&i[5..], rest, t)),
    };
    if let Some((ti, rest, t)) = bsd {
        let (rest, t, comma) = if time_ends(rest) {
            (rest, t, None)
        } else if let Some((rest, fraction, written)) =
            bsd_comma_fraction(rest).filter(|_| !t.has_fraction())
        {
            (rest, t.with_fraction(fraction), Some(written))
        } else {
            // `00:12:135 host`, `09:01:02, h`, `09:01:02:h`: the time
            // glued to text is not a time (its tail is not the hostname);
            // the text stays in the message.
            lenient.insert(LenientRule::TimestampInvalid);
            return None;
        };
        let time_text = &ti[..ti.len() - rest.len()];
        let (rest, offset, zone) = match zone_abbreviation(rest) {
            Ok((rest, (offset, name))) => (rest, offset, Some((offset, name))),
            Err(_) => (rest, None, None),
        };
        let Some(ts) = t.resolve(offset, event.received_nanos, opts) else {
            // `Nov 31`, `25:01:02`: not a time. Its text and everything
            // after it stay the message, byte for byte.
            lenient.insert(LenientRule::TimestampInvalid);
            return None;
        };
        event.timestamp = Some(ts);
        lenient.extend(t.rules(time_text));
        if let Some(written) = comma {
            lenient.insert(LenientRule::TimestampCommaFraction);
            if written > 9 {
                lenient.insert(LenientRule::TimestampFractionLong);
            }
        }
        if t.leap_day_elsewhere(offset, event.received_nanos, opts) {
            lenient.insert(LenientRule::TimestampLeapDay);
        }
        if !month_as_written(ti) {
            lenient.insert(LenientRule::MonthCase);
        }
        if ti.len() < i.len() {
            lenient.insert(LenientRule::TimestampYearFirst);
        }
        if let Some((None, name)) = zone {
            // CET, CST: kept, the time read in the listener's zone.
            lenient.insert(LenientRule::TimestampZoneName);
            event.structured_data.push(SdElement {
                id: Text::Static("zone"),
                params: smallvec::smallvec![SdParam {
                    name: Text::Static("name"),
                    value: Text::Span(span_of(all, name)),
                }],
            });
        }
        return Some((rest, zone.is_some()));
    }
    let Ok((mut rest, (mut t, mut offset))) = rfc3339(i) else {
        if iso_time_invalid(i, opts) {
            lenient.insert(LenientRule::TimestampInvalid);
        }
        return None;
    };
    let ends = time_ends;
    let mut comma_rules = None;
    if !ends(rest) {
        // `…00,123Z`: a comma fraction; anything else glued to the time
        // makes it none.
        match rfc3339_comma(i, 9) {
            Some((r, comma_t, comma_offset, rules)) if ends(r) => {
                (rest, t, offset) = (r, comma_t, comma_offset);
                comma_rules = Some(rules);
            }
            _ => {
                lenient.insert(LenientRule::TimestampInvalid);
                return None;
            }
        }
    }
    let Some(ts) = resolve(&t, offset, opts) else {
        // A leap second where none falls: not a time, its text stays in
        // the message.
        lenient.insert(LenientRule::TimestampInvalid);
        return None;
    };
    event.timestamp = Some(ts);
    lenient.extend(comma_rules.unwrap_or_else(|| rfc3339_rules(&i[..i.len() - rest.len()], 9)));
    Some((rest, false))
}

/// A comma fraction after a BSD time (`09:01:02,123`), then the end of a
/// time: the frame after it, the fraction, and the digits written. Out of
/// line: only times [`time_ends`] refused get here.
#[cold]
#[inline(never)]
fn bsd_comma_fraction(rest: &[u8]) -> Option<(&[u8], (u32, u8), usize)> {
    let (after, fraction, written) = comma_fraction(rest)?;
    time_ends(after).then_some((after, fraction, written))
}

/// `2025-02-30T…` where a timestamp would be, also after an RFC 5424
/// version (`1 2025-02-30T…` comes here when RFC 5424 could not read it).
/// Out of line: only frames without a timestamp get here.
#[cold]
#[inline(never)]
fn iso_time_invalid(i: &[u8], opts: &DecodeOptions) -> bool {
    let after_version = i
        .iter()
        .position(|b| *b == b' ')
        .map_or(i, |sp| &i[sp + 1..]);
    let version = i.len() - after_version.len() <= 4 && i.first().is_some_and(u8::is_ascii_digit);
    iso_not_a_time(i, opts) || version && iso_not_a_time(after_version, opts)
}

/// `%FACILITY-SEVERITY-MNEMONIC:` after a Cisco time. Out of line: the
/// hot path keeps one call of [`tag_and_pid`], inlined.
#[cold]
#[inline(never)]
fn cisco_mnemonic_tag(i: &[u8]) -> Option<Tag<'_>> {
    tag_and_pid(i, true)
        .filter(|t| t.pid.is_none() && t.lenient.contains(LenientRule::TagCiscoMnemonic))
}

/// RFC 5424 structured data after the TAG (and spaces): rsyslog's own
/// start line. Read only when every element is well-formed and has a
/// parameter (`[INFO] started` is message); returns the MSG after it.
fn sd_after_tag<'a>(
    all: &[u8],
    i: &'a [u8],
    event: &mut Event,
    lenient: &mut Lenient,
) -> Option<&'a [u8]> {
    let at = skip_spaces(i);
    if at.first() != Some(&b'[') {
        return None;
    }
    let sd = super::rfc5424::structured_data(all, at);
    let whole = sd.kept_from.is_none()
        && !sd.elements.is_empty()
        && sd.elements.iter().all(|e| !e.params.is_empty())
        && matches!(sd.rest.first(), None | Some(b' '));
    if !whole {
        return None;
    }
    event.structured_data.extend(sd.elements);
    lenient.insert(LenientRule::SdInRfc3164);
    lenient.extend(sd.lenient);
    Some(sd.rest.strip_prefix(b" ").unwrap_or(sd.rest))
}

/// What may stand between PRI and the timestamp: Cisco's `SEQ: ` (and
/// `HOST: `), spaces (lenient), a clock-sync marker `*`/`.`. Returns the
/// frame at the timestamp and whether the frame had a Cisco prefix.
fn before_header<'a>(
    all: &[u8],
    after_pri: &'a [u8],
    event: &mut Event,
    lenient: &mut Lenient,
) -> (&'a [u8], bool) {
    let span = |piece: &[u8]| Text::Span(span_of(all, piece));
    let mut cisco = false;
    let mut i = after_pri;
    if let Some(prefix) = cisco_prefix(i) {
        cisco = true;
        let params: crate::event::SdParams = prefix
            .seqs
            .iter()
            .flatten()
            .map(|seq| SdParam {
                name: Text::Static("sequenceId"),
                value: span(seq),
            })
            .collect();
        if !params.is_empty() {
            event.structured_data.push(SdElement {
                id: Text::Static("meta"),
                params,
            });
        }
        event.hostname = prefix.host.map(span);
        i = prefix.rest;
    } else if matches!(i.first(), Some(b' ' | b'\t')) {
        // `<13> Dec  1 08:00:00 …` (HP ProCurve, rsyslog reads it): spaces
        // (or tabs) between PRI and a timestamp. Spaces before anything
        // else are message.
        let rest = skip_blanks(i);
        if bsd_timestamp(rest).is_ok() || rfc3339(rest).is_ok() {
            lenient.insert(LenientRule::SpaceAfterPri);
            i = rest;
        }
    }
    if let Some(rest) = i.strip_prefix(b"*").or_else(|| i.strip_prefix(b".")) {
        if bsd_timestamp(rest).is_ok() {
            event.structured_data.push(SdElement {
                id: Text::Static("timeQuality"),
                params: smallvec::smallvec![SdParam {
                    name: Text::Static("isSynced"),
                    value: Text::Static("0"),
                }],
            });
            i = rest;
        }
    }
    (i, cisco)
}

/// `Mmm` as RFC 3164 writes it: an upper-case letter, two lower-case.
pub(super) fn month_as_written(m: &[u8]) -> bool {
    matches!(m, [a, b, c, ..] if a.is_ascii_uppercase() && b.is_ascii_lowercase() && c.is_ascii_lowercase())
}

/// log4j 1.2 `facilityPrinting=true`: the PRI's own facility name and a
/// colon (`local7:`) before the text. Returns the text after it.
/// The word up to SP when it holds bytes outside PRINTUSASCII: its length,
/// and whether any is a control byte (below 0x20; UTF-8 is not). Unless
/// (on a generic listener) a tab ends the first `word_len` bytes and
/// `TAG:` or `TAG[PID]:` follows it (`host\ttag: x`): then the word is
/// those bytes, and the third value the frame at the TAG.
#[cold]
fn word_with_unusual_bytes(
    i: &[u8],
    word_len: usize,
    generic: bool,
) -> (usize, bool, Option<&[u8]>) {
    if generic && word_len > 0 && i.get(word_len) == Some(&b'\t') {
        let at = skip_blanks(&i[word_len..]);
        if tag_and_pid(at, true).is_some_and(|t| t.app.is_some()) {
            return (word_len, false, Some(at));
        }
    }
    let len = memchr::memchr(b' ', i).unwrap_or(i.len());
    let control = i[..len].iter().any(|b| *b < b' ');
    (len, control, None)
}

pub(super) fn log4j_facility_prefix(i: &[u8], facility: Option<u8>) -> Option<&[u8]> {
    let code = facility?;
    if (12..=15).contains(&code) {
        // log4j has no names for these facilities.
        return None;
    }
    let name = crate::config::facility_name(code).as_bytes();
    i.strip_prefix(name)?.strip_prefix(b":")
}

/// RFC 3164 §4.1.3: a TAG MUST NOT exceed 32 bytes; longer ones name
/// [`LenientRule::TagLong`].
pub(super) const TAG_RFC_BYTES: usize = 32;
/// The longest TAG read: syslog_loose reads any length and rsyslog up to
/// 511 bytes; 255 holds every program name and device prefix seen in the
/// public suites (the longest, 46 bytes, rsyslog weird.parse1) with room,
/// and bounds the scan of a word that is not one.
const TAG_MAX_BYTES: usize = 255;

/// After `HOSTNAME SP`, what [`tag_and_pid`] did not take: `TAG:` or
/// `TAG[PID]:` after more spaces ([`LenientRule::TagAfterSpaces`]), or
/// the word up to SP as TAG without colon, `TAG[PID]` or `TAG`
/// ([`LenientRule::TagWithoutColon`]) when [`could_be_tag`]. Spaces not followed by `TAG:` are
/// message (log4j stack-trace lines begin with four). No TAG without
/// colon when `without_colon` is false: a listener with `app_name` says
/// its senders name none, so the first word stays message.
#[cold]
#[inline(never)]
fn tag_after_host(i: &[u8], without_colon: bool) -> Option<Tag<'_>> {
    if i.first() == Some(&b' ') {
        let mut tag = tag_and_pid(skip_spaces(i), true)?;
        // `host  msgnum:1`: after spaces only `TAG:`/`TAG[PID]:` then SP
        // or end is a TAG (rsyslog pmrfc3164-defaultTag.sh, go-syslog).
        if tag.rest.first().is_some_and(|b| *b != b' ') {
            return None;
        }
        tag.lenient.insert(LenientRule::TagAfterSpaces);
        return Some(tag);
    }
    let len = match i.iter().take(TAG_MAX_BYTES + 1).position(|b| *b == b' ') {
        Some(len) => len,
        None if i.len() <= TAG_MAX_BYTES => i.len(),
        None => return None,
    };
    let (word, rest) = i.split_at(len);
    // `prógram[12]: …`, `prógram:x`: a TAG with a colon whose bytes
    // [`tag_and_pid`] does not read; colon and `[PID]` are not the app's,
    // and it ends at the first colon as an ASCII one does (`app:x`).
    // Read as the TAG it is, on any listener, unless it cannot be a name.
    let (word, rest, colon) = match word.iter().position(|b| *b == b':') {
        Some(c) if c > 0 => (&word[..c], &i[c + 1..], true),
        _ => (word, rest, false),
    };
    let taken = if colon {
        !cannot_be_a_name(word)
    } else {
        without_colon && could_be_tag(word)
    };
    if !taken {
        return None;
    }
    let (app, pid) = match word.iter().position(|b| *b == b'[') {
        Some(open) if open > 0 && open + 2 < word.len() && word.ends_with(b"]") => {
            (&word[..open], Some(&word[open + 1..word.len() - 1]))
        }
        _ => (word, None),
    };
    let mut lenient = Lenient::default();
    lenient.insert(if colon {
        LenientRule::TagUnusualBytes
    } else {
        LenientRule::TagWithoutColon
    });
    if app.len() > TAG_RFC_BYTES {
        lenient.insert(LenientRule::TagLong);
    }
    Some(Tag {
        app: Some(app),
        pid,
        rest,
        lenient,
    })
}

/// Whether a word after the hostname, without colon, may be the TAG.
/// rsyslog and syslog_loose take any word; that makes the first word of a
/// message sent without TAG the app, and routes matching the message miss
/// it. Not a TAG, so message (each a corpus case):
/// - a word opening a sentence or NILVALUE, as go-syslog and Flume read
///   them (`10.0.0.99 Use the BFG!`, RFC 3164 §5.4; `Some message here`;
///   `host - hyphen_null…`): a capitalised word (`Use`, `Ärger`), `-`;
/// - digits and dots (`10.0.0.9`, `42`: an Apache access line);
/// - a word that opens a JSON document, a quotation, a bracketed or
///   parenthesised part (`{"level":…`, `"GET`, `[2025-01-01`, `<INFO>`,
///   `(x)`), or is `key=value` (`level=info`);
/// - a log level as loggers print it (`INFO`, `WARN`, `error`: see
///   [`LOG_LEVELS`]);
/// - a word ending as words in a sentence do (`,` `.` `;` `!` `?`).
///
/// Kept: lower-case words (`tag`, `außerplanmäßig`, syslog_loose's own
/// test), `--`, rsyslog's `05",result_code=200,b` and 46 `A`s.
fn could_be_tag(word: &[u8]) -> bool {
    let Some((&first, _)) = word.split_first() else {
        return false;
    };
    let ends_sentence = matches!(word.last(), Some(b',' | b'.' | b';' | b'!' | b'?'));
    let digits_and_dots = word.iter().all(|b| b.is_ascii_digit() || *b == b'.');
    !(cannot_be_a_name(word)
        || first == b'-' && word.len() == 1
        || ends_sentence
        || digits_and_dots
        || capitalised(word)
        || LOG_LEVELS.iter().any(|l| word.eq_ignore_ascii_case(l)))
}

/// A word that opens a JSON document, a quotation, a bracketed or
/// parenthesised part (`{"level"`, `"GET`, `[2025-01-01`, `<INFO>`), or
/// is `key=value` (`level=info`): text, never a program's name, colon or
/// not.
fn cannot_be_a_name(word: &[u8]) -> bool {
    matches!(word.first(), Some(b'{' | b'[' | b'"' | b'\'' | b'<' | b'(')) || key_value(word)
}

/// Words a logger prints first for its level (log4j, java.util.logging,
/// syslog's own severity names, Go and Python loggers), matched in any
/// case: no program sends its name so without a colon.
const LOG_LEVELS: [&[u8]; 18] = [
    b"TRACE",
    b"DEBUG",
    b"FINE",
    b"FINER",
    b"FINEST",
    b"INFO",
    b"NOTICE",
    b"WARN",
    b"WARNING",
    b"ERR",
    b"ERROR",
    b"CRIT",
    b"CRITICAL",
    b"ALERT",
    b"EMERG",
    b"FATAL",
    b"SEVERE",
    b"PANIC",
];

/// One upper-case letter, then lower-case letters only (`Use`, `Ärger`):
/// the first word of a sentence. Non-ASCII words are read as UTF-8.
fn capitalised(word: &[u8]) -> bool {
    if word.is_ascii() {
        return matches!(word, [first, rest @ ..] if first.is_ascii_uppercase()
            && !rest.is_empty() && rest.iter().all(u8::is_ascii_lowercase));
    }
    let Ok(word) = std::str::from_utf8(word) else {
        return false;
    };
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase)
        && chars.clone().next().is_some()
        && chars.all(char::is_lowercase)
}

/// `key=value`: a name of letters, digits and `_.-` before the first `=`.
fn key_value(word: &[u8]) -> bool {
    let Some(eq) = word.iter().position(|b| *b == b'=') else {
        return false;
    };
    eq > 0
        && word[..eq]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A TAG read by [`tag_and_pid`].
struct Tag<'a> {
    /// `None` for an empty TAG (`: message`).
    app: Option<&'a [u8]>,
    pid: Option<&'a [u8]>,
    /// The frame after `TAG[PID]:`.
    rest: &'a [u8],
    lenient: Lenient,
}

/// Bytes RFC 3164 senders put in a TAG: letters, digits and `_./-`.
pub(super) const TAG_CLASSIC: u8 = 1;
/// PAM's parentheses (`cron(pam_unix)`).
const TAG_PAREN: u8 = 2;
/// What real daemons put there besides: Cisco's `%`, `#`, `@`, and UniFi's
/// `,` and `+` (`b4fbe48b48ad,UAP-nanoHD-6.6.55+15189:`).
const TAG_PUNCT: u8 = 4;

/// The class of every byte in a TAG, 0 for a byte that ends it: one table
/// look-up per byte, so the TAG is scanned once and its lenient rules come
/// from the classes seen.
pub(super) const TAG_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-') {
            TAG_CLASSIC
        } else if matches!(c, b'(' | b')') {
            TAG_PAREN
        } else if matches!(c, b'%' | b'#' | b'@' | b',' | b'+') {
            TAG_PUNCT
        } else {
            0
        };
        b += 1;
    }
    t
};

/// A Cisco mnemonic, `%FACILITY-SEVERITY-MNEMONIC` (`%ASA-6-302013`,
/// `%SYS-5-CONFIG_I`).
fn is_cisco_mnemonic(app: &[u8]) -> bool {
    let Some(rest) = app.strip_prefix(b"%") else {
        return false;
    };
    rest.iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
        && rest
            .windows(3)
            .any(|w| w[0] == b'-' && (b'0'..=b'7').contains(&w[1]) && w[2] == b'-')
}

/// `TAG[PID]:` or `TAG:`; TAG is up to [`TAG_MAX_BYTES`]. After a timestamp also an
/// empty TAG (`: message`) and a `#`-led word without colon (Snare's
/// `#001`, as rsyslog reads it). Without a header only what cannot be
/// message text is a TAG: `TAG[PID]:`, and `TAG: ` where TAG is a program
/// name in lower case or a Cisco mnemonic (`kernel: `, not `Status: `, not
/// `java.lang.IllegalStateException: `).
#[inline]
fn tag_and_pid(i: &[u8], have_timestamp: bool) -> Option<Tag<'_>> {
    let mut lenient = Lenient::default();
    if have_timestamp {
        if let Some(rest) = i.strip_prefix(b":") {
            if rest.is_empty() || rest[0] == b' ' {
                lenient.insert(LenientRule::TagEmpty);
                return Some(Tag {
                    app: None,
                    pid: None,
                    rest,
                    lenient,
                });
            }
        }
    }
    // One pass: the TAG's length and the union of its bytes' classes.
    let mut n = 0;
    let mut seen = 0;
    for &b in i.iter().take(TAG_MAX_BYTES + 1) {
        let class = TAG_BYTES[usize::from(b)];
        if class == 0 {
            break;
        }
        seen |= class;
        n += 1;
    }
    if n == 0 || n > TAG_MAX_BYTES {
        return None;
    }
    let (app, rest) = i.split_at(n);
    if n > TAG_RFC_BYTES {
        lenient.insert(LenientRule::TagLong);
    }
    if seen & TAG_PAREN != 0 {
        lenient.insert(LenientRule::TagWithParens);
    } else if seen & TAG_PUNCT != 0 {
        // A Cisco mnemonic begins with `%`, which is not a classic byte.
        if is_cisco_mnemonic(app) {
            lenient.insert(LenientRule::TagCiscoMnemonic);
        } else {
            lenient.insert(LenientRule::TagPunctuation);
        }
    }
    let (pid, rest) = if let Some(rest) = rest.strip_prefix(b":") {
        (None, rest)
    } else if let Some(inner) = rest.strip_prefix(b"[") {
        let close = inner.iter().take(129).position(|b| *b == b']')?;
        let (pid, rest) = inner.split_at(close);
        let rest = rest.strip_prefix(b"]:")?;
        if pid.is_empty() {
            (None, rest)
        } else {
            // Without a header, `TAG[PID]:` has always been a TAG.
            return Some(Tag {
                app: Some(app),
                pid: Some(pid),
                rest,
                lenient,
            });
        }
    } else if have_timestamp && app.first() == Some(&b'#') && rest.first() == Some(&b' ') {
        (None, rest)
    } else {
        return None;
    };
    if !have_timestamp {
        let program = app.first().is_some_and(|b| b.is_ascii_lowercase())
            && app.iter().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'.' | b'/' | b'-')
            });
        let followed = rest.first() == Some(&b' ');
        if !(followed && (program || lenient.contains(LenientRule::TagCiscoMnemonic))) {
            return None;
        }
        lenient.insert(LenientRule::TagWithoutHeader);
    }
    Some(Tag {
        app: Some(app),
        pid,
        rest,
        lenient,
    })
}
