//! Runs of digits and of non-space bytes found eight bytes at a time: each
//! byte of a word is a lane, and a few word operations flag the lanes
//! outside the class (no table lookup per byte). The route matcher scans
//! its captures with these, the line protocol encoder its integers.

/// Each byte's high bit (`0x80` of its lane).
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Each byte's low bit.
const LOW: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `w` whose value is below `k` (k ≤ 128).
/// The low seven bits plus `128 - k` reach the high bit exactly when they
/// are `k` or more, and cannot carry into the next byte; a byte of 128 or
/// more has its high bit already.
#[inline]
fn below(w: u64, k: u8) -> u64 {
    let add = LOW * u64::from(128u8.saturating_sub(k));
    !(((w & !HIGH) + add) | w) & HIGH
}

/// The high bit of each byte of `w` in `lo..=hi` (hi < 128).
#[inline]
fn within(w: u64, lo: u8, hi: u8) -> u64 {
    below(w, hi.saturating_add(1)) & !below(w, lo)
}

/// The high bit of each byte of `w` that is not an ASCII digit.
#[inline]
fn non_digits(w: u64) -> u64 {
    !within(w, b'0', b'9') & HIGH
}

/// The high bit of each byte of `w` that is ASCII white space as grok's
/// `\s` means it: `\t` to `\r`, and space.
#[inline]
fn spaces(w: u64) -> u64 {
    within(w, b'\t', b'\r') | within(w, b' ', b' ')
}

/// Length of the run of bytes `stop` does not flag that `text` starts
/// with. The last few bytes (fewer than eight) are read as the top of the
/// text's last word when there is one (no copy), else gathered into a
/// word; lanes past the text are flagged.
#[inline]
fn run_until(text: &[u8], stop: fn(u64) -> u64) -> usize {
    let mut n = 0;
    while let Some(word) = text.get(n..).and_then(<[u8]>::first_chunk::<8>) {
        let flags = stop(u64::from_le_bytes(*word));
        if flags != 0 {
            return n + flags.trailing_zeros() as usize / 8;
        }
        n += 8;
    }
    let tail = text.len() - n;
    if tail == 0 {
        return n;
    }
    let last = text.len().checked_sub(8).and_then(|s| text.get(s..));
    let word = match last.and_then(<[u8]>::first_chunk::<8>) {
        // The tail is the top `tail` bytes of the last word.
        Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - tail)),
        None => text
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
    };
    let flags = stop(word) | (HIGH << (8 * tail));
    n + flags.trailing_zeros() as usize / 8
}

/// Length of the run of ASCII digits `text` starts with.
#[inline]
pub(crate) fn digit_run(text: &[u8]) -> usize {
    run_until(text, non_digits)
}

/// Length of the run of bytes other than `\t` to `\r` and space that
/// `text` starts with.
#[inline]
pub(crate) fn not_space_run(text: &[u8]) -> usize {
    run_until(text, spaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane tests flag exactly the bytes in range, whatever their
    /// neighbours (a carry between lanes would show here).
    #[test]
    fn lane_ranges_are_exact() {
        for (lo, hi) in [(b'0', b'9'), (b'\t', b'\r'), (b' ', b' '), (1, 127), (0, 0)] {
            for b in 0..=255u8 {
                for neighbour in [0u8, 0x7f, 0x80, 0xff, b] {
                    for lane in 0..8 {
                        let mut word = [neighbour; 8];
                        word[lane] = b;
                        let flags = within(u64::from_le_bytes(word), lo, hi).to_le_bytes();
                        assert_eq!(
                            flags[lane] == 0x80,
                            (lo..=hi).contains(&b),
                            "{lo}..={hi} {b}"
                        );
                        assert!(flags.iter().all(|&f| f == 0 || f == 0x80));
                    }
                }
            }
        }
    }

    /// The runs end where a per-byte test ends them: every byte value, at
    /// every offset of a word, after runs that cross zero, one and two word
    /// boundaries, with text after the run and without.
    #[test]
    fn runs_agree_with_byte_tests() {
        let not_space = |b: &u8| !matches!(b, b'\t'..=b'\r' | b' ');
        for len in 0..20 {
            for stop in 0..=255u8 {
                for (filler, run, test) in [
                    (
                        b'7',
                        digit_run as fn(&[u8]) -> usize,
                        &u8::is_ascii_digit as &dyn Fn(&u8) -> bool,
                    ),
                    (b'/', not_space_run, &not_space),
                ] {
                    let mut text = vec![filler; len];
                    text.push(stop);
                    text.extend_from_slice(b"9x 9");
                    for end in [text.len(), len + 1, len] {
                        let text = &text[..end];
                        let want = text.iter().take_while(|b| test(b)).count();
                        assert_eq!(run(text), want, "{len} {stop} {end}");
                    }
                }
            }
        }
    }
}
