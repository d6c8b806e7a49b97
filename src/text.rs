//! Text writers for the hot encode path: JSON string literals, zero-padded
//! digits, RFC 3339 timestamps, and the UTF-8 view of a frame's bytes.
//! Every `unsafe` byte write of the crate's text lives here, each with the
//! invariant that keeps the `String` valid UTF-8.

use std::fmt::Write as _;

use bytes::Bytes;
use bytestring::ByteString;

/// A frame's bytes as UTF-8 text without copying when they are valid UTF-8;
/// otherwise a lossy copy, and the original bytes.
pub(crate) fn text_of(raw: Bytes) -> (ByteString, Option<Bytes>) {
    // SIMD validation: every frame passes here (std's check was 1.7 % of
    // the reader's samples). Most frames are ASCII, which std's word-wise
    // `is_ascii` answers first (simdutf8 copies a short frame's tail into
    // a 64-byte block byte by byte).
    if raw.is_ascii() || simdutf8::basic::from_utf8(&raw).is_ok() {
        // SAFETY: `raw` was just checked to be valid UTF-8.
        (unsafe { ByteString::from_bytes_unchecked(raw) }, None)
    } else {
        let text = ByteString::from(String::from_utf8_lossy(&raw).into_owned());
        (text, Some(raw))
    }
}

/// An instant with the UTC offset it was written (or resolved) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Nanoseconds since the Unix epoch, UTC.
    pub unix_nanos: i64,
    /// Offset from UTC in seconds, as written (or as resolved from the
    /// configured timezone when the sender wrote none).
    pub offset_secs: i32,
    /// How many fractional-second digits to print (0..=9).
    pub frac_digits: u8,
}

/// Bytes a JSON string literal escapes: `"`, `\\`, controls and DEL.
static JSON_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

/// Whether none of `chunk`'s bytes needs escaping. Written as a plain
/// loop over a fixed-size block so that the compiler turns it into vector
/// compares (SSE2 on x86-64: four compares and a few ORs per 16 bytes,
/// one mask test per block).
#[inline(always)]
fn clean_block<const N: usize>(chunk: &[u8; N]) -> bool {
    let mut bad = 0u8;
    for &b in chunk {
        bad |= u8::from((b < 0x20) | (b == b'"') | (b == b'\\') | (b == 0x7f));
    }
    bad == 0
}

/// `bytes[i..i + N]` as a block, when that many bytes are left.
#[inline(always)]
fn block_at<const N: usize>(bytes: &[u8], i: usize) -> Option<&[u8; N]> {
    bytes.get(i..i.checked_add(N)?)?.try_into().ok()
}

/// How many bytes at the start of `bytes` need no escaping. Blocks of 64,
/// then of 16 bytes; a tail shorter than a block is checked as the last 16
/// bytes (overlapping bytes already passed) instead of byte by byte, so a
/// clean text of 16 bytes or more never takes the byte loop. The byte loop
/// is for short texts (route and host names) and for the block that holds
/// a byte to escape: the loop of blocks, words and bytes tried at every
/// byte this replaces cost 259 instructions for a 6-byte route name.
#[inline]
fn clean_prefix(bytes: &[u8]) -> usize {
    let mut i = 0;
    while block_at::<64>(bytes, i).is_some_and(clean_block) {
        i += 64;
    }
    while block_at::<16>(bytes, i).is_some_and(clean_block) {
        i += 16;
    }
    // Fewer than 16 bytes are left (all of `bytes` before `i` is clean):
    // the last 16 cover them.
    if i.saturating_add(16) > bytes.len()
        && bytes
            .len()
            .checked_sub(16)
            .and_then(|at| block_at::<16>(bytes, at))
            .is_some_and(clean_block)
    {
        return bytes.len();
    }
    while let Some(&b) = bytes.get(i) {
        if JSON_ESCAPE[usize::from(b)] {
            break;
        }
        i += 1;
    }
    i
}

/// Append the longest prefix of `s` that needs no escaping to `out`;
/// returns its length (the end of `s`, or the offset of an ASCII byte to
/// escape: a char boundary).
#[inline]
fn push_clean_prefix(out: &mut String, s: &str) -> usize {
    #[cfg(target_arch = "x86_64")]
    if s.len() >= 16 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; the bytes copied are a prefix of `s`
        // that ends before an ASCII byte or at its end: `out` stays valid
        // UTF-8.
        return unsafe { avx2::push_clean_prefix(out.as_mut_vec(), s.as_bytes()) };
    }
    let clean = clean_prefix(s.as_bytes());
    out.push_str(s.get(..clean).unwrap_or_default());
    clean
}

#[cfg(target_arch = "x86_64")]
mod avx2;
pub(crate) mod lanes;

/// Append `s` as a JSON string literal.
pub(crate) fn write_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    // bytes[..start] are written.
    let mut start = 0;
    loop {
        let clean = start + push_clean_prefix(out, s.get(start..).unwrap_or_default());
        let Some(&b) = bytes.get(clean) else { break };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = clean + 1;
    }
    out.push('"');
}

/// "00", "01", ... "99": digits are appended two at a time as `&str`
/// slices (no validation, no per-digit capacity check).
const DIGIT_PAIR_BYTES: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};
static DIGIT_PAIRS: &str = match std::str::from_utf8(&DIGIT_PAIR_BYTES) {
    Ok(s) => s,
    Err(_) => "",
};

/// `v % 100` as two digits.
#[inline]
fn digit_pair(v: u64) -> &'static str {
    let i = (v % 100) as usize * 2;
    DIGIT_PAIRS.get(i..i + 2).unwrap_or("00")
}

/// The last `digits` decimal digits of `v`, zero-padded (`digits` ≤ 20).
/// Pairs are split off the low end with constant divisors (multiplies, not
/// divisions) and written in place: `out` grows by a constant run of zeros
/// (a fixed-size copy, inlined), cut to `digits`, whose bytes are then set.
/// Digits made in a stack buffer and copied from it stalled every copy:
/// word loads of bytes just stored one or two at a time cannot be
/// forwarded from the store buffer (66 % of this function's samples).
#[inline]
fn push_digits(out: &mut String, v: u64, digits: u32) {
    const ZEROS: [u8; 20] = [b'0'; 20];
    let digits = digits.min(20) as usize;
    // SAFETY: the bytes added are ASCII zeros, then ASCII digits: `out`
    // stays valid UTF-8.
    let bytes = unsafe { out.as_mut_vec() };
    let start = bytes.len();
    bytes.extend_from_slice(&ZEROS);
    bytes.truncate(start + digits);
    let Some(buf) = bytes.get_mut(start..) else {
        return;
    };
    let mut n = v;
    let mut i = buf.len();
    // Eight digits at a time while there are eight to write (a 19-digit
    // nanosecond time: two words and three digits).
    while i >= 8 {
        let Some(eight) = buf.get_mut(i - 8..i) else {
            return;
        };
        eight.copy_from_slice(&eight_digits((n % 100_000_000) as u32));
        n /= 100_000_000;
        i -= 8;
    }
    while i >= 2 {
        let p = (n % 100) as usize * 2;
        n /= 100;
        buf[i - 2] = DIGIT_PAIR_BYTES[p];
        buf[i - 1] = DIGIT_PAIR_BYTES[p + 1];
        i -= 2;
    }
    if i == 1 {
        buf[0] = b'0' + (n % 10) as u8;
    }
}

/// `x` (below 10⁸) as eight decimal digits, zero-padded, computed in one
/// word: the halves split into 32-bit lanes, each lane into two 16-bit
/// lanes of pairs, each into two bytes of digits (a multiply and a shift
/// divide every lane at once; exact for these lane sizes, see the test).
#[inline]
fn eight_digits(x: u32) -> [u8; 8] {
    let x = u64::from(x);
    let v = (x / 10_000) | ((x % 10_000) << 32);
    let hundreds = ((v * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let v = hundreds | ((v - hundreds * 100) << 16);
    let tens = ((v * 103) >> 10) & 0x000f_000f_000f_000f;
    let v = tens | ((v - tens * 10) << 8);
    (v + 0x3030_3030_3030_3030).to_le_bytes()
}

/// `v` in decimal, zero-padded to at least `width` digits.
pub(crate) fn push_padded(out: &mut String, v: u64, width: usize) {
    let len = v.checked_ilog10().map_or(1, |l| l + 1);
    push_digits(out, v, len.max(u32::try_from(width).unwrap_or(20)));
}

/// [`write_rfc3339`]'s per-thread cache: the date-and-time text of the
/// last two seconds written, and the whole text of the last two instants.
struct SecondCache {
    entries: [(i64, [u8; 19]); 2],
    /// The entry to replace on a miss (the one used less recently).
    victim: u8,
    /// Whole texts, by instant, offset and precision.
    exact: [ExactText; 2],
    /// The exact entry to replace on a miss.
    exact_victim: u8,
}

/// An instant's whole RFC 3339 text as [`write_rfc3339`] wrote it.
#[derive(Clone, Copy)]
struct ExactText {
    ts: Timestamp,
    len: u8,
    text: [u8; RFC3339_ROOM],
}

/// Bytes [`write_rfc3339`] writes at most: `YYYY-MM-DDTHH:MM:SS`, `.` and
/// nine digits, `+hh:mm`.
const RFC3339_ROOM: usize = 35;

/// An [`ExactText`] that matches no timestamp (its precision is out of
/// range).
const NO_EXACT: ExactText = ExactText {
    ts: Timestamp {
        unix_nanos: i64::MIN,
        offset_secs: 0,
        frac_digits: u8::MAX,
    },
    len: 0,
    text: [0; RFC3339_ROOM],
};

thread_local! {
    static SECONDS: std::cell::RefCell<SecondCache> =
        const { std::cell::RefCell::new(SecondCache {
            entries: [(i64::MIN, [0; 19]), (i64::MIN, [0; 19])],
            victim: 0,
            exact: [NO_EXACT; 2],
            exact_victim: 0,
        }) };
}

/// Append `ts` as RFC 3339 with its own offset (`Z` for UTC).
pub fn write_rfc3339(out: &mut String, ts: &Timestamp) {
    // A document carries two instants (`@timestamp`, the sender's, and
    // `event.created`, the receive time), and every frame of one read
    // shares its receive time: the whole text of the last two instants is
    // kept per thread and copied when asked again.
    let copied = SECONDS.with_borrow_mut(|cache| {
        let way = cache.exact.iter().position(|e| e.ts == *ts)?;
        cache.exact_victim = (way ^ 1) as u8;
        let text = cache
            .exact
            .get(way)?
            .text
            .get(..usize::from(cache.exact.get(way)?.len))?;
        // SAFETY: `text` is ASCII that `format_rfc3339` wrote (copied
        // whole into the entry): `out` stays valid UTF-8.
        unsafe { out.as_mut_vec() }.extend_from_slice(text);
        Some(())
    });
    if copied.is_some() {
        return;
    }
    let start = out.len();
    format_rfc3339(out, ts);
    SECONDS.with_borrow_mut(|cache| {
        let way = usize::from(cache.exact_victim & 1);
        cache.exact_victim = (way ^ 1) as u8;
        let written = out.as_bytes().get(start..).unwrap_or_default();
        if let (Some(e), Some(text)) = (
            cache.exact.get_mut(way),
            written.get(..RFC3339_ROOM.min(written.len())),
        ) {
            e.ts = *ts;
            e.len = text.len() as u8;
            if let Some(dst) = e.text.get_mut(..text.len()) {
                dst.copy_from_slice(text);
            }
        }
    });
}

/// [`write_rfc3339`] without its cache of whole texts.
fn format_rfc3339(out: &mut String, ts: &Timestamp) {
    let local = ts
        .unix_nanos
        .div_euclid(1_000_000_000)
        .saturating_add(i64::from(ts.offset_secs));
    let nanos = ts.unix_nanos.rem_euclid(1_000_000_000) as u64;
    // This runs twice for every document, and a stream's timestamps share
    // their second: the `YYYY-MM-DDTHH:MM:SS` of the last two seconds are
    // kept per thread (two: `@timestamp` is the sender's clock and
    // `event.created` ours, which a skew or a backlog puts in different
    // seconds; one entry would miss on every call then).
    // Written in place: `out` grows by 35 zeros (19 + `.` + 9 digits +
    // `+hh:mm`, a fixed-size store), whose bytes are set and the rest cut.
    // Not through a stack buffer: copying bytes just stored one or two at a
    // time stalls on store forwarding (the copy was 3 % of the e2e profile).
    // SAFETY: the bytes added are ASCII zeros, then ASCII text, and the cut
    // falls after ASCII: `out` stays valid UTF-8.
    let bytes = unsafe { out.as_mut_vec() };
    let start = bytes.len();
    bytes.extend_from_slice(&[b'0'; RFC3339_ROOM]);
    let Some(buf) = bytes.get_mut(start..) else {
        return;
    };
    // The prefix is copied from the thread's cache itself. A copy of the
    // cache on the stack (what `Cell::get` makes) is stored in pieces of 16
    // and 8 bytes and was read back in pieces of 16 and 4 that straddle
    // them: such a load waits until the stores before it reach the cache
    // (on a buffer just taken from the pool, those miss), which was two
    // thirds of this function's samples.
    SECONDS.with_borrow_mut(|cache| {
        let hit = cache
            .entries
            .iter()
            .position(|(second, _)| *second == local);
        let way = match hit {
            Some(way) => way,
            None => {
                let way = usize::from(cache.victim & 1);
                cache.entries[way] = (local, date_time_text(local));
                way
            }
        };
        // The entry not used now is replaced next.
        cache.victim = (way ^ 1) as u8;
        buf[..19].copy_from_slice(&cache.entries[way].1);
    });
    let mut len = 19;
    if ts.frac_digits > 0 {
        // All nine digits, then cut to the precision: the leading `digits`
        // of the nine are `nanos / 10^(9 - digits)` without a division.
        buf[19] = b'.';
        buf[20] = b'0' + (nanos / 100_000_000) as u8;
        let mut rest = nanos % 100_000_000;
        for i in (0..4).rev() {
            let p = (rest % 100) as usize * 2;
            rest /= 100;
            buf[21 + 2 * i] = DIGIT_PAIR_BYTES[p];
            buf[22 + 2 * i] = DIGIT_PAIR_BYTES[p + 1];
        }
        len = 20 + usize::from(ts.frac_digits.min(9));
    }
    if ts.offset_secs == 0 {
        buf[len] = b'Z';
        len += 1;
    } else {
        let abs = u64::from(ts.offset_secs.unsigned_abs());
        buf[len] = if ts.offset_secs < 0 { b'-' } else { b'+' };
        buf[len + 1..len + 3].copy_from_slice(digit_pair(abs / 3600 % 100).as_bytes());
        buf[len + 3] = b':';
        buf[len + 4..len + 6].copy_from_slice(digit_pair(abs / 60 % 60).as_bytes());
        len += 6;
    }
    bytes.truncate(start + len);
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` since the epoch. Timestamps are i64
/// nanoseconds (years 1677 to 2262) plus an offset under a day, so the year
/// always has four digits.
fn date_time_text(secs: i64) -> [u8; 19] {
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u64;
    let mut t = *b"0000-00-00T00:00:00";
    let pairs = [
        (0, y / 100),
        (2, y % 100),
        (5, u64::from(m)),
        (8, u64::from(d)),
        (11, secs_of_day / 3600),
        (14, secs_of_day / 60 % 60),
        (17, secs_of_day % 60),
    ];
    for (at, v) in pairs {
        t[at..at + 2].copy_from_slice(digit_pair(v).as_bytes());
    }
    t
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// "00", "01", ... "ff".
const HEX_PAIR_BYTES: [u8; 512] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [0u8; 512];
    let mut i = 0;
    while i < 256 {
        t[2 * i] = DIGITS[i >> 4];
        t[2 * i + 1] = DIGITS[i & 15];
        i += 1;
    }
    t
};

/// Append `bytes` as lowercase hex digits.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    // Every `_bulk` item's `_id` is 16 bytes: written 16 digits a store.
    #[cfg(target_arch = "x86_64")]
    if let Ok(block) = <&[u8; 16]>::try_from(bytes) {
        // SAFETY: SSE2 is part of x86-64; 32 ASCII hex digits are
        // appended: `out` stays valid UTF-8.
        return unsafe { avx2::push_hex16(out.as_mut_vec(), block) };
    }
    // Written in place (see [`push_digits`]: digits made in a stack buffer
    // stall the copy that follows).
    // SAFETY: every byte added is an ASCII hex digit (zeros first, then
    // pairs from HEX_PAIR_BYTES): `out` stays valid UTF-8.
    let out = unsafe { out.as_mut_vec() };
    let start = out.len();
    out.resize(start + bytes.len() * 2, b'0');
    let Some(hex) = out.get_mut(start..) else {
        return;
    };
    for (pair, &b) in hex.chunks_exact_mut(2).zip(bytes) {
        let i = usize::from(b) * 2;
        pair[0] = HEX_PAIR_BYTES[i];
        pair[1] = HEX_PAIR_BYTES[i + 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_with_offset_and_fraction() {
        let mut s = String::new();
        // 2026-11-23T01:00:00.123Z printed in +09:00.
        let unix = days_from_civil(2026, 11, 23) * 86_400 + 3600;
        write_rfc3339(
            &mut s,
            &Timestamp {
                unix_nanos: unix * 1_000_000_000 + 123_000_000,
                offset_secs: 9 * 3600,
                frac_digits: 3,
            },
        );
        assert_eq!(s, "2026-11-23T10:00:00.123+09:00");
    }

    /// The cache of whole texts answers only for the same instant, offset
    /// and precision: asked again in turn with one of them changed, each
    /// call writes its own text.
    #[test]
    fn rfc3339_repeated_instants_keep_their_own_text() {
        let nanos = days_from_civil(2026, 12, 7) * 86_400_000_000_000 + 123_456_789;
        let at = |offset_secs, frac_digits| Timestamp {
            unix_nanos: nanos,
            offset_secs,
            frac_digits,
        };
        let cases = [
            (at(0, 6), "2026-12-07T00:00:00.123456Z"),
            (at(0, 3), "2026-12-07T00:00:00.123Z"),
            (at(3600, 3), "2026-12-07T01:00:00.123+01:00"),
            (at(0, 0), "2026-12-07T00:00:00Z"),
            (at(0, 9), "2026-12-07T00:00:00.123456789Z"),
            (
                Timestamp {
                    unix_nanos: nanos + 1,
                    ..at(0, 9)
                },
                "2026-12-07T00:00:00.123456790Z",
            ),
        ];
        for round in 0..3 {
            for (ts, want) in &cases {
                for _ in 0..=round {
                    let mut s = String::from("x");
                    write_rfc3339(&mut s, ts);
                    assert_eq!(s, format!("x{want}"), "{ts:?}");
                }
            }
        }
    }

    /// Every value of a four-digit half, in both halves of the word (the
    /// lanes are divided independently), against the formatter.
    #[test]
    fn eight_digits_match_format() {
        for half in 0..10_000u32 {
            for x in [half * 10_000 + half, half * 10_000 + 9_999 - half, half] {
                assert_eq!(eight_digits(x), *format!("{x:08}").as_bytes(), "{x}");
            }
        }
        assert_eq!(eight_digits(99_999_999), *b"99999999");
    }

    #[test]
    fn padded_numbers_match_format() {
        let mut values: Vec<u64> = (0..=1000).collect();
        for p in 1..20 {
            let t = 10u64.pow(p);
            values.extend([t - 1, t, t + 1, t.saturating_mul(7) - 3]);
        }
        values.extend([
            u64::MAX,
            1_795_860_000_123_456_789,
            12_345_678_901_234_567_890,
            10_203_040_506_070_809,
        ]);
        for v in values {
            for width in 0..=20 {
                let mut s = String::new();
                push_padded(&mut s, v, width);
                assert_eq!(s, format!("{v:0width$}"));
            }
        }
    }

    /// Against chrono, over 1900..2100 in uneven steps, going back and
    /// forth between seconds (the per-thread cache of the last second).
    #[test]
    fn rfc3339_matches_chrono() {
        let start = -2_208_988_800i64; // 1900-01-01
        let mut secs = start;
        let mut n = 0;
        while secs < 4_102_444_800 {
            for (s, frac_digits) in [
                (secs, 6u8),
                (secs + 1, 3),
                (secs, 9),
                (secs - 86_400, 1),
                (secs, 2),
                (secs, 4),
                (secs, 5),
                (secs, 7),
                (secs, 8),
            ] {
                let nanos = (s.rem_euclid(1000) * 999_983) % 1_000_000_000;
                let mut ours = String::new();
                write_rfc3339(
                    &mut ours,
                    &Timestamp {
                        unix_nanos: s * 1_000_000_000 + nanos,
                        offset_secs: 0,
                        frac_digits,
                    },
                );
                let dt = chrono::DateTime::from_timestamp(s, nanos as u32).unwrap();
                let fraction = format!("{:09}", nanos);
                let want = format!(
                    "{}.{}Z",
                    dt.format("%Y-%m-%dT%H:%M:%S"),
                    &fraction[..usize::from(frac_digits)]
                );
                assert_eq!(ours, want);
                n += 1;
            }
            secs += 7_919_993;
        }
        assert!(n > 3000);
    }

    #[test]
    fn rfc3339_at_the_ends_of_the_range() {
        let text = |unix_nanos, offset_secs| {
            let mut s = String::new();
            write_rfc3339(
                &mut s,
                &Timestamp {
                    unix_nanos,
                    offset_secs,
                    frac_digits: 9,
                },
            );
            s
        };
        assert_eq!(text(i64::MAX, 0), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(
            text(i64::MAX, 23 * 3600 + 59 * 60),
            "2262-04-12T23:46:16.854775807+23:59"
        );
        assert_eq!(text(i64::MIN, 0), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(
            text(i64::MIN, -(23 * 3600 + 59 * 60)),
            "1677-09-20T00:13:43.145224192-23:59"
        );
    }

    #[test]
    fn json_escaping() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&s).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    /// The block and word scans find every byte that needs escaping at any
    /// offset in a word, and passes every other byte (UTF-8 included).
    #[test]
    fn json_escaping_of_mixed_texts_after_a_prefix() {
        let alphabet = ['a', '"', '\\', '\n', '\u{1}', '\u{7f}', 'é', '€', ' ', '😀'];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..200 {
            for _ in 0..8 {
                let text: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain runs, a special now and then.
                        let i = (seed % 40) as usize;
                        alphabet.get(i).copied().unwrap_or('x')
                    })
                    .collect();
                let mut s = String::from("{\"k\":");
                write_json_str(&mut s, &text);
                let back: String = serde_json::from_str(&s[5..])
                    .unwrap_or_else(|e| panic!("{s:?} for {text:?}: {e}"));
                assert_eq!(back, text);
                assert!(s.bytes().all(|b| b >= 0x20 && b != 0x7f), "{s:?}");
            }
        }
    }

    #[test]
    fn json_escaping_every_byte_at_every_offset() {
        let specials: Vec<char> = (0u8..0x20)
            .chain([b'"', b'\\', 0x7f])
            .map(char::from)
            .collect();
        let clean = [
            'a', ' ', '~', '!', '#', '[', ']', 'é', '€', '\u{80}', '\u{ff}',
        ];
        for len in (0..20).chain([
            31, 32, 33, 40, 47, 63, 64, 65, 79, 80, 81, 127, 128, 129, 143,
        ]) {
            for at in 0..len.max(1) {
                for &c in specials.iter().chain(&clean) {
                    let text: String = (0..len).map(|i| if i == at { c } else { 'x' }).collect();
                    let mut s = String::new();
                    write_json_str(&mut s, &text);
                    let back: String = serde_json::from_str(&s)
                        .unwrap_or_else(|e| panic!("{s:?} for {text:?}: {e}"));
                    assert_eq!(back, text);
                    let raw = s.bytes().filter(|&b| b < 0x20 || b == 0x7f).count();
                    assert_eq!(raw, 0, "{s:?}");
                    if specials.contains(&c) && len > 0 {
                        assert!(s.len() > text.len() + 2, "{c:?} not escaped in {s:?}");
                    }
                }
            }
        }
    }
}
