//! Word-at-a-time reads of the RFC 5424 hot path: eight bytes of a
//! header field or of a time's fraction answered by a few operations on
//! a `u64` where a loop paid a compare and a branch a byte. Each falls
//! back to the byte loop it replaced when fewer than eight bytes are
//! left, and the tests hold it to that loop.

use super::digits_value;

/// Above SP and below 0x80 (read as signed, bytes from 0x80 are
/// negative): one comparison a byte, as cheap as the `b == b' '` it
/// replaced; a range check cost about 2 instructions a byte more
/// (callgrind). It lets DEL (0x7F) through, the one byte outside
/// PRINTUSASCII it does not catch.
pub(super) fn is_graphic_or_del(b: u8) -> bool {
    b as i8 > b' ' as i8
}

/// How many bytes at the start of `i` are [`is_graphic_or_del`]: eight
/// at a time while eight are left, then one by one. A header field is a
/// few bytes and is followed by more header or the message, so one word
/// usually answers (a byte loop paid a compare and a branch a byte:
/// README's Performance section).
#[inline(always)]
pub(super) fn graphic_run(i: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // 0x80 - 0x21: a byte's low seven bits plus this reach 0x80 exactly
    // when they are at least 0x21, and never carry into the next byte.
    const FROM_0X21: u64 = 0x5f5f_5f5f_5f5f_5f5f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut n = 0;
    while let Some(word) = i.get(n..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        // The high bit of each byte of 0x21..=0x7f.
        let graphic = ((w & LOW7) + FROM_0X21) & !w & HIGH;
        let other = !graphic & HIGH;
        if other != 0 {
            return n + (other.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + i
        .get(n..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| is_graphic_or_del(**b))
        .count()
}

/// The 1 to 6 digits that open `frac`: their value and how many they
/// are; `None` for none or more than 6. A word at a time when 8 bytes are
/// there (the time is followed by the rest of the header): which bytes
/// are digits, then their value, without a loop per digit.
#[inline(always)]
pub(super) fn utc_fraction(frac: &[u8]) -> Option<(u32, usize)> {
    let Some(word) = frac.first_chunk::<8>() else {
        return utc_fraction_bytewise(frac);
    };
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    let w = u64::from_le_bytes(*word);
    // Non-zero in each byte that is not `0`..=`9`: its high nibble is not
    // 3, or its low nibble is above 9 (adding 6 carries into the high
    // nibble). A byte from 0xfa carries into the next byte, which is
    // after a non-digit and not looked at.
    let not_digit = ((w & HIGH_NIBBLES) ^ ZEROS)
        | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) ^ ZEROS);
    let n = (not_digit.trailing_zeros() / 8) as usize;
    if !(1..=6).contains(&n) {
        return None;
    }
    // The digits' values, moved up so that the bytes after them fall off
    // and zeros lead: an 8-digit number (the first digit in the lowest
    // byte), combined in pairs, fours, then all eight in the low half.
    let v = w.wrapping_sub(ZEROS) << (8 * (8 - n));
    let v = v.wrapping_mul(10).wrapping_add(v >> 8) & 0x00ff_00ff_00ff_00ff;
    let v = v.wrapping_mul(100).wrapping_add(v >> 16) & 0x0000_ffff_0000_ffff;
    let v = v.wrapping_mul(10_000).wrapping_add(v >> 32);
    Some((v as u32, n))
}

/// [`utc_fraction`] byte by byte, for fewer than 8 bytes.
fn utc_fraction_bytewise(frac: &[u8]) -> Option<(u32, usize)> {
    let n = frac
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_digit())
        .count();
    (1..=6).contains(&n).then(|| (digits_value(&frac[..n]), n))
}

/// Nanoseconds per unit of a fraction of `n` digits (1..=6): `10^(9-n)`,
/// looked up rather than raised by `pow`'s loop.
pub(super) const FRACTION_SCALE: [u32; 7] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes that put the scans' edges to work: digits, the bytes around
    /// the ranges they test, and any byte.
    fn edge_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            6 => 0x21u8..=0x7e,
            4 => b'0'..=b'9',
            1 => prop::sample::select(vec![
                b' ', 0x7f, 0x80, 0x20, 0x21, b'/', b':', 0xfa, 0xff, 0x00,
            ]),
            2 => any::<u8>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The word-at-a-time scan stops where the byte loop it replaced
        /// stops, on every byte value and at every length (a run that
        /// ends in the first word, a later one, the tail, or not at all).
        #[test]
        fn graphic_run_stops_where_the_byte_loop_stops(
            bytes in proptest::collection::vec(edge_byte(), 0..40),
        ) {
            let want = bytes.iter().take_while(|b| is_graphic_or_del(**b)).count();
            prop_assert_eq!(graphic_run(&bytes), want);
        }

        /// The word-at-a-time fraction reads what the byte loop reads:
        /// the same digits, the same value, `None` for 0 or 7+ digits.
        #[test]
        fn utc_fraction_reads_what_the_byte_loop_reads(
            digits in proptest::collection::vec(b'0'..=b'9', 0..9),
            after in proptest::collection::vec(edge_byte(), 0..9),
        ) {
            let frac = [digits, after].concat();
            prop_assert_eq!(utc_fraction(&frac), utc_fraction_bytewise(&frac));
        }
    }

    #[test]
    fn graphic_run_every_byte_value_in_every_place_of_a_word() {
        for b in 0..=255u8 {
            for at in 0..10 {
                let mut bytes = vec![b'a'; 12];
                bytes[at] = b;
                let want = bytes.iter().take_while(|b| is_graphic_or_del(**b)).count();
                assert_eq!(graphic_run(&bytes), want, "byte {b:#04x} at {at}");
            }
        }
    }

    #[test]
    fn utc_fraction_every_byte_after_every_count_of_digits() {
        for n in 0..8 {
            for b in 0..=255u8 {
                let mut frac = b"98765432".to_vec();
                frac[n] = b;
                frac.extend_from_slice(b" host");
                assert_eq!(
                    utc_fraction(&frac),
                    utc_fraction_bytewise(&frac),
                    "byte {b:#04x} after {n} digits"
                );
            }
        }
        assert_eq!(utc_fraction(b"123456Z host"), Some((123_456, 6)));
        assert_eq!(utc_fraction(b"000001Z host"), Some((1, 6)));
        assert_eq!(utc_fraction(b"5Z host01"), Some((5, 1)));
        assert_eq!(utc_fraction(b"1234567Z host"), None);
        assert_eq!(utc_fraction(b"Z host01"), None);
    }
}
