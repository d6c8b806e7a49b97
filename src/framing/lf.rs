//! The LF search of the framer's fast path.

/// Finds LF with memchr's AVX2 searcher, built once per framer where the
/// CPU has AVX2: `memchr::memchr` looks up its routine and builds the
/// needle's vectors on every call (about 16 of the 89 instructions a
/// 256-byte frame's search took, callgrind). Elsewhere it is
/// `memchr::memchr`.
#[derive(Debug, Clone, Copy)]
pub(super) struct LfFinder {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl LfFinder {
    pub(super) fn new() -> LfFinder {
        LfFinder {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    /// The first LF in `haystack`, as `memchr::memchr(b'\n', haystack)`.
    #[inline]
    pub(super) fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = &self.avx2 {
            return avx2.find(haystack);
        }
        memchr::memchr(b'\n', haystack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// As `memchr::memchr`, with AVX2 (where the CPU has it) and without.
        #[test]
        fn finds_the_first_lf_as_memchr_does(
            haystack in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..300),
            from in 0usize..300,
        ) {
            let hay = &haystack[from.min(haystack.len())..];
            let want = memchr::memchr(b'\n', hay);
            prop_assert_eq!(LfFinder::new().find(hay), want);
            let portable = LfFinder {
                #[cfg(target_arch = "x86_64")]
                avx2: None,
            };
            prop_assert_eq!(portable.find(hay), want);
        }
    }
}
