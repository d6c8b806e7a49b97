//! Timestamps: RFC 3339 (RFC 5424's and the ISO form some BSD senders
//! write) and BSD `Mmm dd hh:mm:ss`, the year a BSD timestamp lacks, and
//! the configured zone for times written without an offset.

use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use nom::IResult;
use nom::branch::alt;
use nom::bytes::complete::{take_while_m_n, take_while1};
use nom::character::complete::char;
use nom::combinator::{opt, verify};
use nom::sequence::preceded;

use super::words::{FRACTION_SCALE, utc_fraction};
use super::{DecodeOptions, digits_value, is_digit, num};
use crate::event::{Lenient, LenientRule, Timestamp};
use crate::text::{civil_from_days, days_from_civil};

/// Fractional seconds: keeps up to 9 digits, reads past the rest (their
/// count names [`LenientRule::TimestampFractionLong`]; a cap here left
/// the digits past it glued to the next field).
fn fraction(i: &[u8]) -> IResult<&[u8], (u32, u8)> {
    let (i, d) = preceded(char('.'), take_while1(is_digit))(i)?;
    let kept = &d[..d.len().min(9)];
    let digits = kept.len() as u8;
    let nanos = digits_value(kept) * 10u32.pow(9 - u32::from(digits));
    Ok((i, (nanos, digits)))
}

/// `,` and the digits of a fraction of the second (log4j's and Python's
/// ISO 8601 layouts write `09:01:02,123`; ISO 8601 allows the comma as
/// decimal sign): the frame after the digits, the nanoseconds and digits
/// kept (up to 9), and how many digits were written.
pub(super) fn comma_fraction(i: &[u8]) -> Option<(&[u8], (u32, u8), usize)> {
    let d = i.strip_prefix(b",")?;
    let written = d.iter().take_while(|b| b.is_ascii_digit()).count();
    if written == 0 {
        return None;
    }
    let kept = &d[..written.min(9)];
    let nanos = digits_value(kept) * 10u32.pow(9 - kept.len() as u32);
    Some((&d[written..], (nanos, kept.len() as u8), written))
}

/// [`rfc3339`] of a time whose fraction follows a comma
/// (`2025-03-01T08:00:00,123Z`): the frame after it, the time, its
/// offset, and its rules ([`rfc3339_rules`] with
/// [`LenientRule::TimestampCommaFraction`]). `None` when no comma and
/// digit follow the seconds. Out of line: only times [`rfc3339`] read up
/// to a comma get here.
#[cold]
#[inline(never)]
pub(super) fn rfc3339_comma(
    i: &[u8],
    max_frac_digits: usize,
) -> Option<(&[u8], CivilTime, Option<i32>, Lenient)> {
    if i.get(19) != Some(&b',') || !i.get(20).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    // The time up to a blank (bounded: 9 digits are kept, and a longer
    // run is not a time's).
    let len = i
        .iter()
        .take(256)
        .position(|b| matches!(b, b' ' | b'\t'))
        .unwrap_or(i.len().min(256));
    let mut dotted = i[..len].to_vec();
    dotted[19] = b'.';
    let (rest, (t, offset)) = rfc3339(&dotted).ok()?;
    let consumed = dotted.len() - rest.len();
    let mut rules = rfc3339_rules(&dotted[..consumed], max_frac_digits);
    rules.insert(LenientRule::TimestampCommaFraction);
    Some((&i[consumed..], t, offset, rules))
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

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

#[derive(Debug)]
pub(super) struct CivilTime {
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
    /// Year, month, day, hour, minute and second as read, and the fraction
    /// of the second: nanoseconds and the digits it was written with.
    pub(super) fn new(fields: [u32; 6], (nanos, frac_digits): (u32, u8)) -> CivilTime {
        let [year, month, day, hour, minute, second] = fields;
        CivilTime {
            year: i64::from(year),
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            frac_digits,
        }
    }

    /// A real date and time, within the years an `i64` of nanoseconds
    /// holds (1678..=2261); anything else is not taken for a timestamp, so
    /// its text stays in the message.
    fn valid(&self) -> bool {
        (1678..=2261).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && (self.second < 60 || self.second == 60 && leap_second_minute(self.minute))
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

/// Whether a leap second (`:60`) may fall in this minute of a local
/// clock. It is inserted at 23:59:60 UTC, so clocks show it at minute 59,
/// or at 29 or 44 in zones offset by a half or three quarters of an hour
/// (India, Newfoundland; Nepal). The hour is not checked: the zone that
/// shifts it is often not in the frame. `:60` at any other minute is not
/// a time ([`LenientRule::TimestampInvalid`]); once the offset is known
/// (the frame's or the listener's zone), [`resolve`] keeps only the
/// minute it puts the leap second in.
fn leap_second_minute(minute: u32) -> bool {
    matches!(minute, 59 | 29 | 44)
}

/// Whether `i` starts like `YYYY-MM-DDTHH:MM:SS` but is no real date and
/// time (`2025-02-30T…`, `…T25:00:00`): [`LenientRule::TimestampInvalid`],
/// its text stays in the message.
/// Also any other text that begins with the date and `T` but is not a time
/// [`time_ends`] after (`…T10:00Z`, `…+24:00`, `…00.Z`, `…00,5Z` (a
/// comma fraction is read before this is asked, [`rfc3339_comma`]),
/// `…00Zh`), and a leap second where the offset puts none.
pub(super) fn iso_not_a_time(i: &[u8], opts: &DecodeOptions) -> bool {
    let Some(p) = i.first_chunk::<11>() else {
        return false;
    };
    let date_shaped = [0, 1, 2, 3, 5, 6, 8, 9]
        .iter()
        .all(|&k| p[k].is_ascii_digit())
        && p[4] == b'-'
        && p[7] == b'-'
        && p[10] | 0x20 == b't';
    date_shaped
        && !matches!(rfc3339(i), Ok((rest, (t, offset)))
            if time_ends(rest) && resolve(&t, offset, opts).is_some())
}

/// Whether a time may end where `rest` begins: at a space, at the end of
/// the frame, or at Cisco's `: ` (`TIME: MSG`). A time glued to anything
/// else (`09:01:02;123`, `09:01:02:h`, `…00Zh`) is not one; callers
/// read a comma fraction (`09:01:02,123`) and a tab before asking again.
#[inline]
pub(super) fn time_ends(rest: &[u8]) -> bool {
    matches!(rest, [] | [b' ', ..] | [b':'] | [b':', b' ', ..])
}

/// RFC 3339 `FULL-DATE "T" FULL-TIME` (`T` or `t`); the offset may be
/// missing (then the configured zone applies).
pub(super) fn rfc3339(i: &[u8]) -> IResult<&[u8], (CivilTime, Option<i32>)> {
    // `YYYY-MM-DDTHH:MM:SS` has fixed places: read by hand (nom's combinator
    // per field cost ten times more, and this runs for every RFC 5424 frame).
    let Some((dt, i)) = i.split_first_chunk::<19>() else {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Eof,
        )));
    };
    // A stream's timestamps share their second: the last two valid
    // `YYYY-MM-DDTHH:MM:SS` read (two: frames of two senders interleave)
    // and their fields are kept per thread, and are not read again.
    type Read = ([u8; 19], [u32; 6]);
    thread_local! {
        static LAST: std::cell::Cell<[Option<Read>; 2]> =
            const { std::cell::Cell::new([None, None]) };
    }
    let last = LAST.get();
    let hit = last.iter().flatten().find(|(text, _)| text == dt);
    let fields = match hit {
        Some((_, fields)) => *fields,
        None => {
            let Some(fields) = date_time_fields(dt) else {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Verify,
                )));
            };
            LAST.set([Some((*dt, fields)), last[0]]);
            fields
        }
    };
    // `.` and its digits (9 kept); a `.` without a digit is not taken.
    let digits = match i.split_first() {
        Some((b'.', rest)) => rest.iter().take_while(|b| b.is_ascii_digit()).count(),
        _ => 0,
    };
    let (i, frac) = if digits > 0 {
        let kept = &i[1..1 + digits.min(9)];
        let nanos = digits_value(kept) * 10u32.pow(9 - kept.len() as u32);
        (&i[1 + digits..], Some((nanos, kept.len() as u8)))
    } else {
        (i, None)
    };
    let (i, offset) = opt(utc_offset)(i)?;
    let t = CivilTime::new(fields, frac.unwrap_or((0, 0)));
    Ok((i, (t, offset)))
}

/// The common RFC 5424 timestamp, `YYYY-MM-DDTHH:MM:SS[.f]Z` with 1 to 6
/// fraction digits (or none), upper-case `T` and `Z`, followed by a space
/// or the end: the time and the frame after it, exactly what [`rfc3339`],
/// [`rfc3339_rules`] (none apply) and [`resolve`] give it. `None` for
/// every other form (they take that path). A stream's timestamps share
/// their second, so the seconds since the epoch of the last
/// `YYYY-MM-DDTHH:MM:SS` read are kept per thread.
#[inline]
pub(super) fn rfc3339_utc(i: &[u8]) -> Option<(&[u8], Timestamp)> {
    let (dt, rest) = i.split_first_chunk::<19>()?;
    let (nanos, digits, rest) = match rest.split_first() {
        Some((b'.', frac)) => {
            let (value, n) = utc_fraction(frac)?;
            (value * FRACTION_SCALE[n], n as u8, &frac[n..])
        }
        _ => (0, 0, rest),
    };
    let rest = rest.strip_prefix(b"Z")?;
    if !matches!(rest.first(), None | Some(b' ')) || dt[10] != b'T' {
        return None;
    }
    thread_local! {
        static LAST: std::cell::Cell<Option<([u8; 19], i64)>> =
            const { std::cell::Cell::new(None) };
    }
    let secs = match LAST.get() {
        Some((text, secs)) if text == *dt => secs,
        _ => {
            let fields = date_time_fields(dt)?;
            // A leap second is for the general path and its rules.
            if fields[5] == 60 {
                return None;
            }
            let secs = CivilTime::new(fields, (0, 0)).unix_secs_as_utc();
            LAST.set(Some((*dt, secs)));
            secs
        }
    };
    Some((
        rest,
        Timestamp {
            unix_nanos: secs.saturating_mul(1_000_000_000) + i64::from(nanos),
            offset_secs: 0,
            frac_digits: digits,
        },
    ))
}

/// Whether `dt` has the shape `YYYY-MM-DDTHH:MM:SS` (`T` or `t`).
#[inline]
fn iso_shaped(dt: &[u8; 19]) -> bool {
    // Without branches per byte (a `match` on the place compiled to a jump
    // table that mispredicted).
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    DIGITS
        .iter()
        .fold(true, |ok, &k| ok & (dt[k].wrapping_sub(b'0') < 10))
        & (dt[4] == b'-')
        & (dt[7] == b'-')
        & (dt[10] | 0x20 == b't')
        & (dt[13] == b':')
        & (dt[16] == b':')
}

/// Year, month, day, hour, minute and second of `YYYY-MM-DDTHH:MM:SS` (`T`
/// or `t`), if it has that shape and is a real date and time
/// ([`CivilTime::valid`]).
fn date_time_fields(dt: &[u8; 19]) -> Option<[u32; 6]> {
    if !iso_shaped(dt) {
        return None;
    }
    let field = |at: usize, len: usize| digits_value(&dt[at..at + len]);
    let fields = [
        field(0, 4),
        field(5, 2),
        field(8, 2),
        field(11, 2),
        field(14, 2),
        field(17, 2),
    ];
    CivilTime::new(fields, (0, 0)).valid().then_some(fields)
}

/// The lenient rules an RFC 3339 time read by [`rfc3339`] needs: `text` is
/// what it consumed (`YYYY-MM-DDTHH:MM:SS` and fraction and offset), and
/// more than `max_frac_digits` fraction digits is
/// [`LenientRule::TimestampFractionLong`] (RFC 5424: 6; else 9, past which
/// digits are dropped).
pub(super) fn rfc3339_rules(text: &[u8], max_frac_digits: usize) -> Lenient {
    let mut lenient = Lenient::default();
    if text.get(10) == Some(&b't') || text.last() == Some(&b'z') {
        lenient.insert(LenientRule::TimestampLowercase);
    }
    if text.get(17..19) == Some(b"60") {
        lenient.insert(LenientRule::TimestampLeapSecond);
    }
    let tail = text.get(19..).unwrap_or_default();
    let digits = match tail.split_first() {
        Some((b'.', frac)) => frac.iter().take_while(|b| b.is_ascii_digit()).count(),
        _ => 0,
    };
    if digits > max_frac_digits {
        lenient.insert(LenientRule::TimestampFractionLong);
    }
    let offset = tail
        .get(digits + usize::from(digits > 0)..)
        .unwrap_or_default();
    if offset.len() == 5 && matches!(offset[0], b'+' | b'-') {
        lenient.insert(LenientRule::TimestampOffsetWithoutColon);
    }
    lenient
}

pub(super) fn resolve(
    t: &CivilTime,
    offset: Option<i32>,
    opts: &DecodeOptions,
) -> Option<Timestamp> {
    let ts = match offset {
        Some(o) => t.with_offset(o),
        None => t.in_zone(&opts.timezone)?,
    };
    (t.second != 60 || leap_second_at(t.minute, ts.offset_secs)).then_some(ts)
}

/// Whether a clock `offset_secs` east of UTC shows the leap second
/// (23:59:60 UTC) in `minute`: 59 at whole-hour offsets (`Z`, `+01:00`),
/// 29 at `±hh:30`, 44 at `+hh:45`.
#[cold]
fn leap_second_at(minute: u32, offset_secs: i32) -> bool {
    i64::from(minute) == (59 + i64::from(offset_secs) / 60).rem_euclid(60)
}

/// A month's three letters, any case (`Nov`, `NOV`, `nov`).
fn month_number(m: [u8; 3]) -> Option<u32> {
    // `| 0x20` lower-cases a letter, and maps no other byte onto one.
    let month = match [m[0] | 0x20, m[1] | 0x20, m[2] | 0x20] {
        [b'j', b'a', b'n'] => 1,
        [b'f', b'e', b'b'] => 2,
        [b'm', b'a', b'r'] => 3,
        [b'a', b'p', b'r'] => 4,
        [b'm', b'a', b'y'] => 5,
        [b'j', b'u', b'n'] => 6,
        [b'j', b'u', b'l'] => 7,
        [b'a', b'u', b'g'] => 8,
        [b's', b'e', b'p'] => 9,
        [b'o', b'c', b't'] => 10,
        [b'n', b'o', b'v'] => 11,
        [b'd', b'e', b'c'] => 12,
        _ => return None,
    };
    Some(month)
}

/// A BSD timestamp: `Mmm dd [yyyy ]hh:mm:ss[.fff]`, the day space-padded
/// (`Jan  5`) or not; the year and fraction are what Cisco and others add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BsdTime {
    month: u32,
    day: u32,
    year: Option<i64>,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    frac_digits: u8,
}

pub(super) fn bsd_timestamp(i: &[u8]) -> IResult<&[u8], BsdTime> {
    // Fixed places but for the day's padding, the year and the fraction:
    // read by hand (nom's combinator per field cost about 500 instructions
    // a frame, and this runs for every RFC 3164 frame). The nom grammar it
    // replaced is the reference of a property test below.
    bsd_time(i).ok_or(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

fn bsd_time(i: &[u8]) -> Option<(&[u8], BsdTime)> {
    let d = |b: u8| b.is_ascii_digit().then(|| u32::from(b - b'0'));
    // `Mmm ` then an optional second space (`Nov  4`).
    let (m, i) = i.split_first_chunk::<3>()?;
    let month = month_number(*m)?;
    let i = i.strip_prefix(b" ")?;
    let i = i.strip_prefix(b" ").unwrap_or(i);
    // DAY, one or two digits, and a space.
    let (day, i) = match i {
        [a, b' ', rest @ ..] => (d(*a)?, rest),
        [a, b, b' ', rest @ ..] => (d(*a)? * 10 + d(*b)?, rest),
        _ => return None,
    };
    // An optional `YYYY ` (Cisco and others).
    let (year, i) = match i {
        [a, b, c, e, b' ', rest @ ..] => match (d(*a), d(*b), d(*c), d(*e)) {
            (Some(a), Some(b), Some(c), Some(e)) => {
                (Some(i64::from(a * 1000 + b * 100 + c * 10 + e)), rest)
            }
            _ => (None, i),
        },
        _ => (None, i),
    };
    // `hh:mm:ss`.
    let (hms, i) = i.split_first_chunk::<8>()?;
    let [h1, h2, b':', m1, m2, b':', s1, s2] = *hms else {
        return None;
    };
    let hour = d(h1)? * 10 + d(h2)?;
    let minute = d(m1)? * 10 + d(m2)?;
    let second = d(s1)? * 10 + d(s2)?;
    let (i, (nanos, frac_digits)) = match i.first() {
        Some(b'.') => fraction(i).unwrap_or((i, (0, 0))),
        _ => (i, (0, 0)),
    };
    Some((
        i,
        BsdTime {
            month,
            day,
            year,
            hour,
            minute,
            second,
            nanos,
            frac_digits,
        },
    ))
}

/// A BSD time written year first, `2020 Jul 16 02:15:13` (go-syslog's
/// `Example_custom_stamp2`): the time with that year. Not when the time
/// has a year of its own after the day.
pub(super) fn bsd_timestamp_year_first(i: &[u8]) -> Option<(&[u8], BsdTime)> {
    let [a, b, c, e, b' ', rest @ ..] = i else {
        return None;
    };
    let d = |x: &u8| x.is_ascii_digit().then(|| i64::from(x - b'0'));
    let year = d(a)? * 1000 + d(b)? * 100 + d(c)? * 10 + d(e)?;
    let (rest, t) = bsd_time(rest)?;
    t.year.is_none().then_some((
        rest,
        BsdTime {
            year: Some(year),
            ..t
        },
    ))
}

impl BsdTime {
    /// This time with the fraction `(nanos, digits)` (a comma fraction,
    /// read after it).
    /// Whether the time was written with a fraction (`09:01:02.5`).
    pub(super) fn has_fraction(&self) -> bool {
        self.frac_digits > 0
    }

    pub(super) fn with_fraction(self, (nanos, frac_digits): (u32, u8)) -> BsdTime {
        BsdTime {
            nanos,
            frac_digits,
            ..self
        }
    }

    /// The lenient rules this time needs: a leap second, or digits past
    /// the nanosecond (`text` is what [`bsd_timestamp`] consumed).
    pub(super) fn rules(&self, text: &[u8]) -> Lenient {
        let mut lenient = Lenient::default();
        if self.second == 60 {
            lenient.insert(LenientRule::TimestampLeapSecond);
        }
        if self.frac_digits == 9 {
            let dot = text.iter().rposition(|b| *b == b'.').unwrap_or(text.len());
            if text.len() - dot > 10 {
                lenient.insert(LenientRule::TimestampFractionLong);
            }
        }
        lenient
    }

    /// `Feb 29` without a year, where the year [`Self::inferred_year`]
    /// gives has none: it is read in the latest leap year before, and
    /// [`LenientRule::TimestampLeapDay`] says so.
    #[inline]
    pub(super) fn leap_day_elsewhere(
        &self,
        offset: Option<i32>,
        received_nanos: i64,
        opts: &DecodeOptions,
    ) -> bool {
        self.month == 2
            && self.day == 29
            && self.leap_day_without_year(offset, received_nanos, opts)
    }

    #[cold]
    #[inline(never)]
    fn leap_day_without_year(
        &self,
        offset: Option<i32>,
        received_nanos: i64,
        opts: &DecodeOptions,
    ) -> bool {
        self.year.is_none()
            && days_in_month(self.inferred_year(offset, received_nanos, opts), 2) != 29
    }

    fn civil(&self, year: i64) -> CivilTime {
        CivilTime {
            year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            nanos: self.nanos,
            frac_digits: self.frac_digits,
        }
    }

    /// Resolve in `offset` (if the sender named a zone) or the configured
    /// zone; without a year, the year [`Self::inferred_year`] gives.
    ///
    /// A stream's BSD timestamps share their second and arrive within the
    /// same receive second: the last whole second resolved is kept per
    /// thread with everything it depends on (the fraction does not move
    /// the year or the zone's offset, so it is added afterwards).
    pub(super) fn resolve(
        &self,
        offset: Option<i32>,
        received_nanos: i64,
        opts: &DecodeOptions,
    ) -> Option<Timestamp> {
        type Key = (BsdTime, Option<i32>, i64, Tz);
        thread_local! {
            static LAST: std::cell::Cell<Option<(Key, Option<Timestamp>)>> =
                const { std::cell::Cell::new(None) };
        }
        let whole = BsdTime {
            nanos: 0,
            frac_digits: 0,
            ..*self
        };
        let key = (
            whole,
            offset,
            received_nanos.div_euclid(1_000_000_000),
            opts.timezone,
        );
        let resolved = match LAST.get() {
            Some((k, ts)) if k == key => ts,
            _ => {
                let ts = whole.resolve_uncached(offset, received_nanos, opts);
                LAST.set(Some((key, ts)));
                ts
            }
        };
        resolved.map(|ts| Timestamp {
            unix_nanos: ts.unix_nanos + i64::from(self.nanos),
            frac_digits: self.frac_digits,
            ..ts
        })
    }

    fn resolve_uncached(
        &self,
        offset: Option<i32>,
        received_nanos: i64,
        opts: &DecodeOptions,
    ) -> Option<Timestamp> {
        let at = |year: i64| {
            let t = self.civil(year);
            if t.valid() {
                resolve(&t, offset, opts)
            } else {
                None
            }
        };
        if let Some(year) = self.year {
            return at(year);
        }
        let year = self.inferred_year(offset, received_nanos, opts);
        if let Some(ts) = at(year) {
            return Some(ts);
        }
        // 29 February in a year without one: the latest leap year before
        // (a stamp is never put more than a month ahead, as above).
        (year - 8..year).rev().find_map(at)
    }

    /// The year Flume's `SyslogUtils` gives a stamp without one: the
    /// receive year, the year before if the stamp is then more than one
    /// month after the receive time (the stamp moved back one calendar
    /// month is still after it), the year after if it is more than eleven
    /// months before it (moved on eleven months, still before). Logs
    /// arrive late, not early: the window runs from eleven months back to
    /// one month ahead. Months move as `Calendar.add` moves them, the day
    /// kept within the month (`Mar 31` one month back is `Feb 28`).
    fn inferred_year(&self, offset: Option<i32>, received_nanos: i64, opts: &DecodeOptions) -> i64 {
        let received_secs = received_nanos.div_euclid(1_000_000_000);
        let (year, received_month) = year_month_at(received_secs, opts.timezone);
        // A stamp in the receive month or before it, in the receive year,
        // is within the window without a calendar sum (one month back is
        // before the receive time, eleven on is in the next year), except
        // a January stamp received in December: its eleven months on end
        // in this December. The sums below cost about 200 instructions a
        // frame (callgrind, `cargo bench --bench decode` rfc3164).
        if self.month <= received_month && !(self.month == 1 && received_month == 12) {
            return year;
        }
        let shifted_secs = |(y, month): (i64, u32)| {
            let t = CivilTime {
                year: y,
                month,
                day: self.day.min(days_in_month(y, month)),
                second: self.second.min(59),
                nanos: 0,
                ..self.civil(y)
            };
            let ts = match offset {
                Some(o) => Some(t.with_offset(o)),
                None => t.in_zone(&opts.timezone),
            };
            ts.map(|ts| ts.unix_nanos.div_euclid(1_000_000_000))
        };
        let month_before = if self.month == 1 {
            (year - 1, 12)
        } else {
            (year, self.month - 1)
        };
        let eleven_after = if self.month == 1 {
            (year, 12)
        } else {
            (year + 1, self.month - 1)
        };
        if shifted_secs(month_before).is_some_and(|s| s > received_secs) {
            year - 1
        } else if shifted_secs(eleven_after).is_some_and(|s| s < received_secs) {
            year + 1
        } else {
            year
        }
    }
}

/// The year and month in `tz` at `secs` since the epoch. A stream's frames share
/// their receive second, so the last answer is kept per thread and asked
/// again only when the second or the zone changes (outside UTC the answer
/// goes through chrono-tz's transition table).
fn year_month_at(secs: i64, tz: Tz) -> (i64, u32) {
    type Last = Option<(i64, Tz, (i64, u32))>;
    thread_local! {
        static LAST: std::cell::Cell<Last> =
            const { std::cell::Cell::new(None) };
    }
    if let Some((s, z, year_month)) = LAST.get() {
        if s == secs && z == tz {
            return year_month;
        }
    }
    let year_month = if tz == Tz::UTC {
        let (year, month, _) = civil_from_days(secs.div_euclid(86_400));
        (year, month)
    } else {
        chrono::DateTime::from_timestamp(secs, 0).map_or((1970, 1), |utc| {
            use chrono::Datelike;
            let local = utc.with_timezone(&tz);
            (i64::from(local.year()), local.month())
        })
    };
    LAST.set(Some((secs, tz, year_month)));
    year_month
}

/// Zone names Cisco devices print after the time (`clock timezone`); a word
/// outside this list is a hostname or TAG, not a zone.
const ZONE_ABBREVIATIONS: [&[u8]; 24] = [
    b"UTC", b"GMT", b"CET", b"CEST", b"EET", b"EEST", b"WET", b"WEST", b"EST", b"EDT", b"CST",
    b"CDT", b"MST", b"MDT", b"PST", b"PDT", b"BST", b"IST", b"JST", b"KST", b"HKT", b"SGT",
    b"AEST", b"AEDT",
];

/// A zone abbreviation after a BSD time (`UTC`, `CET`; Cisco's
/// `show-timezone`). Only UTC/GMT name an offset; other abbreviations are
/// ambiguous and fall back to the configured zone. Returns the offset and
/// the name.
pub(super) fn zone_abbreviation(i: &[u8]) -> IResult<&[u8], (Option<i32>, &[u8])> {
    let (i, _) = char(' ')(i)?;
    let (i, name) = take_while_m_n(1, 5, |b: u8| b.is_ascii_uppercase())(i)?;
    if i.first() != Some(&b':') || !ZONE_ABBREVIATIONS.contains(&name) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    }
    Ok((i, (matches!(name, b"UTC" | b"GMT").then_some(0), name)))
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
