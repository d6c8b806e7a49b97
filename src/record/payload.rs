//! A record's encoded text, and where it sits in the buffer it was written
//! into.
//!
//! A reader encodes the records one read gives a route one after another
//! into one buffer (a slab), each record a slice of it. Where the route's
//! sink frames every record on the wire (the `_bulk` action line before a
//! document and LF after it), the encoder writes the framing into the slab
//! too, so records that follow each other in a batch are one run of bytes
//! the sink sends as it is, without copying it into a request body. A
//! record that comes another way (read back from a spill log, made by a
//! test) owns its text and has no framing: the sink frames it as it
//! copies it.

use std::sync::{Arc, Mutex};

/// See the module doc. Dereferences to the encoded text (the document or
/// line, without framing).
#[derive(Clone, Default)]
pub struct Payload {
    /// The slab (or the record's own text); none until
    /// [`Payload::attach`] for a record staged by a reader.
    slab: Option<Arc<Slab>>,
    /// `slab[start..end]` is the framed record, `slab[doc..doc_end]` its
    /// text.
    start: usize,
    doc: usize,
    doc_end: usize,
    end: usize,
    /// Which framing (a hash of the sink settings it was written for; see
    /// [`Payload::framed`]), 0 for none.
    framing: u64,
}

/// The text of a read's records, given back to its pool (if it has one)
/// when the last record is done with: a slab is up to 72 KiB, and one
/// freed only to be allocated again was page-faulted in again (the
/// allocator returns memory it keeps unused for a while).
pub struct Slab {
    text: String,
    home: Option<Arc<SlabPool>>,
}

impl Slab {
    pub fn new(text: String, home: Option<Arc<SlabPool>>) -> Slab {
        Slab { text, home }
    }

    /// `range` of `slab` as bytes that keep it alive (for a request body).
    pub fn bytes(slab: &Arc<Slab>, range: std::ops::Range<usize>) -> bytes::Bytes {
        bytes::Bytes::from_owner(SlabBytes(slab.clone())).slice(range)
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        if let Some(home) = &self.home {
            home.keep(std::mem::take(&mut self.text));
        }
    }
}

struct SlabBytes(Arc<Slab>);

impl AsRef<[u8]> for SlabBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.text.as_bytes()
    }
}

/// Emptied slabs, for readers to write the next ones into: one pool for
/// all the routes of a pipeline, a list per slab size. It holds what a
/// sink's finished request gives back until readers need it again: a
/// full `_bulk` batch frees dozens of slabs of the largest size at once,
/// and those that found no room here went back to the allocator, were
/// returned to the OS and page-faulted in again by the next reads.
#[derive(Default)]
pub struct SlabPool(Mutex<Kept>);

/// A pool's slabs by size (indexed like [`SLAB_SIZES`]) and their bytes.
#[derive(Default)]
struct Kept {
    by_size: [Vec<String>; SLAB_SIZES.len()],
    bytes: usize,
}

/// The bytes after which a reader seals a slab and starts another: a slab
/// is held until its last record is delivered, and slabs of whole large
/// reads kept memory from reuse (tcp-conns-64 peaked at 81–86 MiB with
/// 512 KiB slabs).
pub(crate) const SLAB_BYTES: usize = 64 * 1024;

/// The sizes slabs are allocated in: a few sizes, not one per read (slabs
/// of every size from 1 to 72 KiB spread over the allocator's size classes
/// and pages, and tcp-conns-64 peaked at 71-78 MiB against 55 with a
/// buffer per record); the smallest hold a lone line or document without
/// pinning much more than it (a read of one record is common: UDP, a
/// sender writing a line at a time); the largest has room for the record
/// that crosses [`SLAB_BYTES`].
const SLAB_SIZES: [usize; 5] = [256, 1024, 4 * 1024, 16 * 1024, SLAB_BYTES + SLAB_BYTES / 8];

/// The slab size for `bytes`: the smallest of [`SLAB_SIZES`] that holds
/// them, or `bytes` itself beyond the largest.
pub(crate) fn slab_size(bytes: usize) -> usize {
    SLAB_SIZES
        .iter()
        .copied()
        .find(|&s| s >= bytes)
        .unwrap_or(bytes)
}

/// The most bytes of slabs a pool keeps (room for what a full `_bulk`
/// batch of documents with their action lines and a full InfluxDB batch
/// of points give back together, at the default `batch_max_events`), and
/// the most slabs of one size.
pub(crate) const POOL_BYTES: usize = 8 * 1024 * 1024;
const POOL_SLABS_PER_SIZE: usize = 128;

impl SlabPool {
    fn kept_slabs(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept buffer of `size` bytes (one of the slab sizes), else a new
    /// one.
    pub fn take(&self, size: usize) -> String {
        if let Some(i) = SLAB_SIZES.iter().position(|&s| s == size) {
            let mut kept = self.kept_slabs();
            if let Some(text) = kept.by_size.get_mut(i).and_then(Vec::pop) {
                kept.bytes = kept.bytes.saturating_sub(text.capacity());
                return text;
            }
        }
        String::with_capacity(size)
    }

    /// Buffers kept.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.kept_slabs().by_size.iter().map(Vec::len).sum()
    }

    /// Bytes of the buffers kept.
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        self.kept_slabs().bytes
    }

    /// Keep `text` for a reader, if it is of a slab size (what readers
    /// take) and the pool has room.
    fn keep(&self, mut text: String) {
        let Some(i) = SLAB_SIZES.iter().position(|&s| s == text.capacity()) else {
            return;
        };
        text.clear();
        let mut kept = self.kept_slabs();
        let bytes = kept.bytes.saturating_add(text.capacity());
        if bytes > POOL_BYTES {
            return;
        }
        if let Some(list) = kept.by_size.get_mut(i)
            && list.len() < POOL_SLABS_PER_SIZE
        {
            list.push(text);
            kept.bytes = bytes;
        }
    }
}

impl Payload {
    /// A record staged in a slab not yet complete: `slab[start..end]`
    /// once attached, the text at `doc..doc_end`, written for `framing`.
    pub fn staged(start: usize, doc: usize, doc_end: usize, end: usize, framing: u64) -> Payload {
        Payload {
            slab: None,
            start,
            doc,
            doc_end,
            end,
            framing,
        }
    }

    /// Point a staged payload at its (now complete) slab. Its ranges are
    /// checked here, where the slab is fresh in the cache, so that reading
    /// the text later (on the sink's thread, where it is not) touches no
    /// byte of it; a range that does not fit (no reader stages one) makes
    /// the payload empty.
    pub fn attach(&mut self, slab: &Arc<Slab>) {
        let fits = ranges_fit(&slab.text, [self.start, self.doc, self.doc_end, self.end]);
        debug_assert!(fits, "a staged range outside its slab");
        if !fits {
            (self.start, self.doc, self.doc_end, self.end, self.framing) = (0, 0, 0, 0, 0);
        }
        self.slab = Some(slab.clone());
    }

    /// The encoded text.
    pub fn as_str(&self) -> &str {
        let Some(bytes) = self
            .slab
            .as_ref()
            .and_then(|s| s.text.as_bytes().get(self.doc..self.doc_end))
        else {
            return "";
        };
        // SAFETY: the slab's text is a `String` that does not change while
        // a payload holds it (only `Slab`'s drop takes it), and
        // `doc..doc_end` lies on its character boundaries: checked by
        // `attach`, or `0..len` of a text of its own (`From<String>`).
        // `str::get` would check again, reading the text's bytes: a cache
        // miss or two per record where the sink only needs the length.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The capacity of the buffer this payload keeps alive (att8's
    /// regression test: what a queued record really pins).
    #[cfg(test)]
    pub(crate) fn slab_capacity(&self) -> usize {
        self.slab.as_ref().map_or(0, |s| s.text.capacity())
    }

    /// The encoded text's length.
    pub fn text_len(&self) -> usize {
        self.doc_end.saturating_sub(self.doc)
    }

    /// The record with its framing, when it was written for `framing` (not
    /// 0): the slab and the record's range in it.
    pub fn framed(&self, framing: u64) -> Option<(&Arc<Slab>, std::ops::Range<usize>)> {
        let slab = self.slab.as_ref()?;
        (framing != 0 && self.framing == framing && self.end <= slab.text.len())
            .then_some((slab, self.start..self.end))
    }

    /// Bytes the record holds in its slab, framing included.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    fn framing_text(&self) -> Option<&str> {
        self.slab
            .as_ref()
            .and_then(|s| s.text.get(self.start..self.doc))
    }
}

impl std::ops::Deref for Payload {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        let len = text.len();
        Payload {
            slab: Some(Arc::new(Slab::new(text, None))),
            start: 0,
            doc: 0,
            doc_end: len,
            end: len,
            framing: 0,
        }
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::from(text.to_owned())
    }
}

/// Equal when the texts and framings are: where they sit does not matter.
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.as_str() == other.as_str()
            && self.framing == other.framing
            && self.framing_text() == other.framing_text()
    }
}

impl Eq for Payload {}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `r` (start, document, document end, end) is in order, within
/// `text` and on its character boundaries. `str::is_char_boundary` for an
/// index up to the length is: no byte there, or one that does not continue
/// a character (the text is UTF-8, so its first byte never does and 0
/// needs no test of its own). Every test is made, without a branch each.
#[inline]
fn ranges_fit(text: &str, r: [usize; 4]) -> bool {
    let t = text.as_bytes();
    let boundary = |i: usize| t.get(i).is_none_or(|&b| (b as i8) >= -0x40);
    (r[0] <= r[1])
        & (r[1] <= r[2])
        & (r[2] <= r[3])
        & (r[3] <= t.len())
        & boundary(r[0])
        & boundary(r[1])
        & boundary(r[2])
        & boundary(r[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`ranges_fit`] answers as the checks it replaced, on every range of
    /// texts of one- to four-byte characters, inside and past their ends.
    #[test]
    fn ranges_fit_as_is_char_boundary_says() {
        for text in ["", "a", "é", "aé€𝄞b", "𝄞", "€a"] {
            let past = text.len() + 2;
            for a in 0..past {
                for b in 0..past {
                    for c in 0..past {
                        for d in 0..past {
                            let r = [a, b, c, d];
                            let want = a <= b
                                && b <= c
                                && c <= d
                                && d <= text.len()
                                && r.iter().all(|&i| text.is_char_boundary(i));
                            assert_eq!(ranges_fit(text, r), want, "{text:?} {r:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_staged_payload_reads_its_slice_once_attached() {
        let pool = Arc::new(SlabPool::default());
        let mut text = String::with_capacity(256);
        text.push_str("A\ndoc-one\nB\ndoc-two\n");
        let slab = Arc::new(Slab::new(text, Some(pool.clone())));
        let mut one = Payload::staged(0, 2, 9, 10, 7);
        assert_eq!(one.as_str(), "", "nothing before it is attached");
        one.attach(&slab);
        let mut two = Payload::staged(10, 12, 19, 20, 7);
        two.attach(&slab);
        assert_eq!((one.as_str(), two.as_str()), ("doc-one", "doc-two"));
        assert_eq!(one.held(), 10);
        let (framed, range) = two.framed(7).unwrap();
        assert_eq!(&Slab::bytes(framed, range)[..], b"B\ndoc-two\n");
        assert!(two.framed(8).is_none(), "another sink's framing");
        assert!(two.framed(0).is_none());
        let own = Payload::from("doc-one");
        assert!(own.framed(7).is_none(), "an owned text has no framing");
        assert_eq!(own.held(), 7);
        assert_ne!(own, one, "same text, not the same framing");
        assert_eq!(own, Payload::from("doc-one".to_owned()));
        // The slab goes back to its pool when the last holder is done.
        let body = Slab::bytes(&slab, 0..2);
        drop((slab, one, two));
        assert_eq!(pool.kept(), 0, "a request body holds it");
        drop(body);
        assert_eq!(pool.kept(), 1, "back once the body is done");
        assert_eq!(pool.take(256).capacity(), 256);
        // A buffer of no slab size is not kept.
        pool.keep(String::with_capacity(3000));
        assert_eq!(pool.kept(), 0);
        pool.keep(String::with_capacity(4096));
        assert_eq!(pool.kept(), 1);
        assert_eq!(
            pool.take(1024).capacity(),
            1024,
            "a new one: none of that size"
        );
        assert_eq!(pool.kept(), 1);
        let back = pool.take(4096);
        assert!(back.is_empty() && back.capacity() == 4096);
        assert_eq!(pool.kept(), 0);
        assert_eq!(
            [0, 1, 256, 257, 1024, 1025, 73_728, 73_729].map(slab_size),
            [256, 256, 256, 1024, 1024, 4096, 73_728, 73_729]
        );
    }

    /// A sink's finished request frees a batch's slabs at once: the pool
    /// keeps them all for the next reads, where a pool of 1 MiB kept a few
    /// and the rest were freed, returned to the OS and page-faulted in
    /// again. Bounded all the same: never more than `POOL_BYTES`.
    #[test]
    fn a_batch_worth_of_slabs_comes_back_to_the_readers() {
        let pool = SlabPool::default();
        let large = slab_size(SLAB_BYTES);
        let batch: Vec<String> = (0..50).map(|_| String::with_capacity(large)).collect();
        let addresses: std::collections::HashSet<usize> =
            batch.iter().map(|t| t.as_ptr() as usize).collect();
        for text in batch {
            pool.keep(text);
        }
        assert_eq!(pool.kept(), 50, "every slab of the batch kept");
        let reused = (0..50)
            .map(|_| pool.take(large))
            .filter(|t| addresses.contains(&(t.as_ptr() as usize)))
            .count();
        assert_eq!(reused, 50, "the next reads write into the same buffers");
        assert_eq!(pool.kept_bytes(), 0);
        // The bound: a burst larger than the pool gives the rest back.
        for _ in 0..200 {
            pool.keep(String::with_capacity(large));
        }
        assert_eq!(pool.kept(), POOL_BYTES / large);
        assert!(pool.kept_bytes() <= POOL_BYTES);
        // Small slabs do not crowd out the large: at most 128 of a size.
        let small = SlabPool::default();
        for _ in 0..200 {
            small.keep(String::with_capacity(256));
        }
        small.keep(String::with_capacity(large));
        assert_eq!(small.kept(), POOL_SLABS_PER_SIZE + 1);
    }
}
