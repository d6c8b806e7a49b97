//! The common RFC 3164 frame, `Mmm dd HH:MM:SS HOST TAG[PID]: MSG` (or
//! `TAG: MSG`), read in one pass without the general path of
//! [`super::rfc3164`]: exactly what that path reads for it, with no lenient
//! rule. Every other form (and every form a rule names) is left to it.

use chrono_tz::Tz;

use super::rfc3164::{
    TAG_BYTES, TAG_CLASSIC, TAG_RFC_BYTES, log4j_facility_prefix, month_as_written,
};
use super::time::bsd_timestamp;
use super::{DecodeOptions, Sender, trim_end};
use crate::event::{Lenient, Timestamp};

/// What the fast path read: the pieces of the frame and the time.
pub(super) struct Header<'a> {
    pub(super) timestamp: Timestamp,
    pub(super) host: &'a [u8],
    pub(super) app: &'a [u8],
    pub(super) pid: Option<&'a [u8]>,
    pub(super) message: &'a [u8],
}

/// A byte [`header`] takes into a hostname: what the general path takes
/// (above SP, below 0x80, DEL too) but `:` and `[` (a zone name, a TAG:
/// the general path decides).
const HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = (c as i8) > (b' ' as i8) && c != b':' && c != b'[';
        b += 1;
    }
    t
};

/// `Mmm dd HH:MM:SS HOST TAG[PID]: MSG` (day `dd` or ` d`) on a generic
/// listener, where `i` is the frame after PRI; `None` for any other form.
#[inline]
pub(super) fn header<'a>(
    i: &'a [u8],
    received_nanos: i64,
    facility: Option<u8>,
    opts: &DecodeOptions,
) -> Option<Header<'a>> {
    if opts.sender != Sender::Generic {
        return None;
    }
    let (stamp, rest) = i.split_first_chunk::<16>()?;
    let (stamp, sp) = stamp.split_first_chunk::<15>()?;
    if sp != [b' '] {
        return None;
    }
    let timestamp = bsd_stamp(stamp, received_nanos, opts)?;
    // HOSTNAME, then one SP.
    let host_len = rest
        .iter()
        .take_while(|b| HOST_BYTES[usize::from(**b)])
        .count();
    let (host, rest) = rest.split_at(host_len);
    let rest = rest.strip_prefix(b" ")?;
    if matches!(host, [] | [b'-'] | [b'#' | b'%', ..]) {
        return None;
    }
    // TAG: RFC 3164's bytes, up to its 32.
    let at_tag = rest;
    let tag_len = rest
        .iter()
        .take(TAG_RFC_BYTES + 1)
        .take_while(|b| TAG_BYTES[usize::from(**b)] == TAG_CLASSIC)
        .count();
    if tag_len == 0 || tag_len > TAG_RFC_BYTES {
        return None;
    }
    let (app, rest) = rest.split_at(tag_len);
    let (pid, rest) = match rest.split_first() {
        Some((b'[', inner)) => {
            let close = inner.iter().take(129).position(|b| *b == b']')?;
            let (pid, rest) = inner.split_at(close);
            let rest = rest.strip_prefix(b"]:")?;
            if pid.is_empty() {
                return None;
            }
            (Some(pid), rest)
        }
        Some((b':', after)) => {
            // log4j 1.2's `facility:` is not a TAG.
            if log4j_facility_prefix(at_tag, facility).is_some() {
                return None;
            }
            (None, after)
        }
        _ => return None,
    };
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    // Structured data after the TAG (rsyslog) is the general path's.
    if matches!(rest.first(), Some(b' ' | b'[')) {
        return None;
    }
    Some(Header {
        timestamp,
        host,
        app,
        pid,
        message: trim_end(rest),
    })
}

/// `Mmm dd HH:MM:SS` resolved as the general path resolves it when no zone
/// name follows, or `None` when it would name a lenient rule (month case,
/// leap second, leap day elsewhere) or is no time. A stream's stamps share
/// their second and arrive within one receive second: the last one taken
/// is kept per thread with what its reading depends on.
#[inline]
fn bsd_stamp(text: &[u8; 15], received_nanos: i64, opts: &DecodeOptions) -> Option<Timestamp> {
    let tz = opts.timezone;
    type Last = Option<([u8; 15], i64, Tz, Timestamp)>;
    thread_local! {
        static LAST: std::cell::Cell<Last> = const { std::cell::Cell::new(None) };
    }
    let second = received_nanos.div_euclid(1_000_000_000);
    if let Some((t, s, z, ts)) = LAST.get() {
        if t == *text && s == second && z == tz {
            return Some(ts);
        }
    }
    let ts = bsd_stamp_uncached(text, received_nanos, opts)?;
    LAST.set(Some((*text, second, tz, ts)));
    Some(ts)
}

#[inline(never)]
fn bsd_stamp_uncached(
    text: &[u8; 15],
    received_nanos: i64,
    opts: &DecodeOptions,
) -> Option<Timestamp> {
    if !month_as_written(text) {
        return None;
    }
    let (rest, t) = bsd_timestamp(text).ok()?;
    let plain = rest.is_empty()
        && t.rules(text) == Lenient::default()
        && !t.leap_day_elsewhere(None, received_nanos, opts);
    plain
        .then(|| t.resolve(None, received_nanos, opts))
        .flatten()
}

#[cfg(test)]
#[path = "rfc3164_fast_tests.rs"]
mod tests;
