//! The SD-IDs one frame has named so far, for
//! [`LenientRule::SdDuplicateId`](crate::event::LenientRule::SdDuplicateId)
//! (RFC 5424 §6.3.2: an SD-ID must not repeat).
//!
//! A 64-bit filter (length and first byte) answers "new" for most IDs at
//! the cost of a shift and an `or`. A hit is checked exactly: against the
//! earlier IDs one by one while there are at most [`LINEAR_IDS`] of them
//! (real frames carry a handful), and past that against a hash set built
//! once from them and kept up to date, so a frame of thousands of distinct
//! SD-IDs costs time linear in their number, not quadratic.

use std::collections::HashSet;

use crate::event::{SdElement, Text};

/// The most earlier SD-IDs compared byte for byte; past it, a hash set.
const LINEAR_IDS: usize = 32;

/// The SD-IDs of the elements before the current one.
pub(super) struct SeenIds<'f> {
    filter: u64,
    /// Built on the first filter hit with more than [`LINEAR_IDS`] earlier
    /// elements: `RandomState` costs a thread-local read, too much for
    /// every frame.
    set: Option<HashSet<&'f [u8]>>,
    /// How many of the earlier elements are in `set`.
    in_set: usize,
    /// Exact comparisons and set operations made: bounded by
    /// `LINEAR_IDS + 2` per element (the tests hold it to that).
    pub(super) comparisons: usize,
}

impl<'f> SeenIds<'f> {
    pub(super) fn new() -> Self {
        SeenIds {
            filter: 0,
            set: None,
            in_set: 0,
            comparisons: 0,
        }
    }

    /// Whether `id` is the SD-ID of one of `earlier` (the elements read
    /// before it, in the frame `all`), and remember it as seen.
    #[inline]
    pub(super) fn repeated(&mut self, all: &'f [u8], earlier: &[SdElement], id: &[u8]) -> bool {
        let bit = name_bit(id);
        let maybe = self.filter & bit != 0;
        self.filter |= bit;
        maybe && self.exact(all, earlier, id)
    }

    #[cold]
    #[inline(never)]
    fn exact(&mut self, all: &'f [u8], earlier: &[SdElement], id: &[u8]) -> bool {
        if earlier.len() <= LINEAR_IDS {
            self.comparisons += earlier.len();
            return earlier.iter().any(|e| span_bytes(all, &e.id) == Some(id));
        }
        let set = self.set.get_or_insert_with(HashSet::new);
        for e in earlier.get(self.in_set..).unwrap_or_default() {
            if let Some(bytes) = span_bytes(all, &e.id) {
                set.insert(bytes);
            }
            self.comparisons += 1;
        }
        self.in_set = earlier.len();
        self.comparisons += 1;
        set.contains(id)
    }
}

/// A name's bit in a 64-bit filter of the names seen so far (length and
/// first byte): a bit already set sends the name to the exact, cold
/// comparison, so distinct names cost a shift and an `or` each.
fn name_bit(name: &[u8]) -> u64 {
    let first = name.first().copied().unwrap_or(0);
    1u64 << ((name.len() + usize::from(first)) & 63)
}

/// The bytes of `text` when it lies in the frame (SD-IDs always do).
fn span_bytes<'f>(all: &'f [u8], text: &Text) -> Option<&'f [u8]> {
    match text {
        Text::Span(span) => all.get(span.start as usize..span.end as usize),
        _ => None,
    }
}
