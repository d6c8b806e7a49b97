//! Vector paths of the text writers (x86-64).
//!
//! JSON strings: the clean prefix found and copied in one pass: each block of 32 bytes
//! is loaded once, stored to the output unconditionally (the capacity is
//! reserved; bytes past the prefix are cut again) and tested. The check
//! and then a separate copy of the same bytes read the text twice.

use std::arch::x86_64::{
    __m128i, __m256i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128,
    _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_srli_epi16, _mm_storeu_si128,
    _mm_unpackhi_epi8, _mm_unpacklo_epi8, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8,
    _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm256_storeu_si256,
};

/// Bit `i` set when byte `i` of `v` needs escaping: `"`, `\\`, DEL, or
/// a control (at most 0x1f: the unsigned minimum with 0x1f is itself).
#[inline]
#[target_feature(enable = "avx2")]
fn dirty32(v: __m256i) -> u32 {
    let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
    let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
    let del = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7f));
    let control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
    let any = _mm256_or_si256(
        _mm256_or_si256(quote, backslash),
        _mm256_or_si256(del, control),
    );
    _mm256_movemask_epi8(any) as u32
}

/// [`dirty32`] of 16 bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn dirty16(v: __m128i) -> u32 {
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
    let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    let any = _mm_or_si128(_mm_or_si128(quote, backslash), _mm_or_si128(del, control));
    _mm_movemask_epi8(any) as u32
}

/// `super::push_clean_prefix` (`bytes` of 16 or more in blocks; fewer
/// byte by byte). Blocks of 32,
/// then the last 32 (or, under 32 bytes, the first and last 16)
/// overlapping bytes already passed, as `clean_prefix` does.
///
/// # Safety
/// AVX2 must be present. The caller keeps `out` valid UTF-8: the bytes
/// appended are `bytes[..returned]`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn push_clean_prefix(out: &mut Vec<u8>, bytes: &[u8]) -> usize {
    let n = bytes.len();
    if n < 16 {
        let clean = super::clean_prefix(bytes);
        out.extend_from_slice(bytes.get(..clean).unwrap_or_default());
        return clean;
    }
    out.reserve(n);
    let len = out.len();
    let src = bytes.as_ptr();
    // SAFETY: `len` is within the allocation (`n` more bytes reserved).
    let dst = unsafe { out.as_mut_ptr().add(len) };
    // SAFETY: called with `at + 32 <= n`: reads `bytes[at..at + 32]` and
    // writes the same range of the `n` bytes reserved after `len`.
    let load32 = |at: usize| unsafe {
        let v = _mm256_loadu_si256(src.add(at).cast::<__m256i>());
        _mm256_storeu_si256(dst.add(at).cast::<__m256i>(), v);
        v
    };
    // SAFETY: called with `at + 16 <= n`, as `load32`.
    let load16 = |at: usize| unsafe {
        let v = _mm_loadu_si128(src.add(at).cast::<__m128i>());
        _mm_storeu_si128(dst.add(at).cast::<__m128i>(), v);
        v
    };
    let mut at = 0;
    let clean = loop {
        if at + 32 > n {
            // The rest, as the last block (bytes before `at` are clean,
            // so its first dirty byte, if any, is at or after `at`).
            break if n >= 32 {
                let last = n - 32;
                let m = dirty32(load32(last));
                if m == 0 {
                    n
                } else {
                    last + m.trailing_zeros() as usize
                }
            } else {
                let m = dirty16(load16(0));
                if m != 0 {
                    m.trailing_zeros() as usize
                } else {
                    let last = n - 16;
                    let m = dirty16(load16(last));
                    if m == 0 {
                        n
                    } else {
                        last + m.trailing_zeros() as usize
                    }
                }
            };
        }
        let m = dirty32(load32(at));
        if m != 0 {
            break at + m.trailing_zeros() as usize;
        }
        at += 32;
    };
    // SAFETY: `clean <= n` and `dst[..clean]` were stored, copies of
    // `bytes[..clean]`.
    unsafe { out.set_len(len + clean) };
    clean
}

/// `block` as 32 lowercase hex digits (SSE2, part of x86-64): each byte's
/// two nibbles side by side, `'0' + v`, plus `'a' - '0' - 10` where `v`
/// is over 9; two 16-byte stores instead of a table lookup per byte.
#[target_feature(enable = "sse2")]
pub(super) fn push_hex16(out: &mut Vec<u8>, block: &[u8; 16]) {
    out.reserve(32);
    let len = out.len();
    // SAFETY: reads the 16 bytes of `block`.
    let v = unsafe { _mm_loadu_si128(block.as_ptr().cast::<__m128i>()) };
    let low_nibbles = _mm_set1_epi8(0x0f);
    let high = _mm_and_si128(_mm_srli_epi16(v, 4), low_nibbles);
    let low = _mm_and_si128(v, low_nibbles);
    let digits = |n: __m128i| {
        let letters = _mm_and_si128(
            _mm_cmpgt_epi8(n, _mm_set1_epi8(9)),
            _mm_set1_epi8((b'a' - b'0' - 10) as i8),
        );
        _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8(b'0' as i8)), letters)
    };
    let first = digits(_mm_unpacklo_epi8(high, low));
    let second = digits(_mm_unpackhi_epi8(high, low));
    // SAFETY: 32 bytes were reserved after `len`; both stores are inside
    // them, and `set_len` covers exactly the bytes stored.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        _mm_storeu_si128(dst.cast::<__m128i>(), first);
        _mm_storeu_si128(dst.add(16).cast::<__m128i>(), second);
        out.set_len(len + 32);
    }
}
