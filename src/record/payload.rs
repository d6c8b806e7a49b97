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

use bytestring::ByteString;

/// See the module doc. Dereferences to the encoded text (the document or
/// line, without framing).
#[derive(Clone, Default)]
pub struct Payload {
    /// The slab (or the record's own text); empty until
    /// [`Payload::attach`] for a record staged by a reader.
    slab: ByteString,
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

impl Payload {
    /// A record staged in a slab not yet complete: `slab[start..end]`
    /// once attached, the text at `doc..doc_end`, written for `framing`.
    pub fn staged(start: usize, doc: usize, doc_end: usize, end: usize, framing: u64) -> Payload {
        Payload {
            slab: ByteString::new(),
            start,
            doc,
            doc_end,
            end,
            framing,
        }
    }

    /// Point a staged payload at its (now complete) slab.
    pub fn attach(&mut self, slab: &ByteString) {
        self.slab = slab.clone();
    }

    /// The encoded text.
    pub fn as_str(&self) -> &str {
        self.slab.get(self.doc..self.doc_end).unwrap_or_default()
    }

    /// The record with its framing, when it was written for `framing` (not
    /// 0): the slab and the record's range in it.
    pub fn framed(&self, framing: u64) -> Option<(&bytes::Bytes, std::ops::Range<usize>)> {
        (framing != 0 && self.framing == framing && self.end <= self.slab.len())
            .then(|| (self.slab.as_bytes(), self.start..self.end))
    }

    /// Bytes the record holds in its slab, framing included.
    pub fn held(&self) -> usize {
        self.end - self.start
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
            slab: ByteString::from(text),
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
            && self.slab.get(self.start..self.doc) == other.slab.get(other.start..other.doc)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_payload_reads_its_slice_once_attached() {
        let slab = ByteString::from("A\ndoc-one\nB\ndoc-two\n".to_owned());
        let mut one = Payload::staged(0, 2, 9, 10, 7);
        assert_eq!(one.as_str(), "", "nothing before it is attached");
        one.attach(&slab);
        let mut two = Payload::staged(10, 12, 19, 20, 7);
        two.attach(&slab);
        assert_eq!((one.as_str(), two.as_str()), ("doc-one", "doc-two"));
        assert_eq!(one.held(), 10);
        let (bytes, range) = two.framed(7).unwrap();
        assert_eq!(&bytes[range], b"B\ndoc-two\n");
        assert!(two.framed(8).is_none(), "another sink's framing");
        assert!(two.framed(0).is_none());
        let own = Payload::from("doc-one");
        assert!(own.framed(7).is_none(), "an owned text has no framing");
        assert_eq!(own.held(), 7);
        assert_ne!(own, one, "same text, not the same framing");
        assert_eq!(own, Payload::from("doc-one".to_owned()));
    }
}
