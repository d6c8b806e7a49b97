//! TCP byte stream → frames (RFC 6587), detected per frame.
//!
//! A frame that starts with a non-zero digit *may* be octet-counted
//! (`LEN SP MSG`). The count is trusted only when the byte after `LEN SP` is
//! `<`, the start of a syslog PRI; otherwise the frame is newline-terminated
//! (a message that merely starts with a digit is not mis-split) and the
//! fallback is counted. Newline frames end at LF; a CR before it is trimmed.
//!
//! Text inside a frame is never taken for a frame boundary: a message that
//! quotes `<PRI>1 2025-…` stays one message under `auto`, `lf` and `octet`.
//! Only [`Framing::Log4j2Undelimited`] (log4j2 TCP `newLine=false`, which
//! runs frames together with no delimiter at all) cuts an RFC 5424 frame
//! where the next `<PRI>1 ` header starts, and only until the connection
//! delivers a delimited frame (LF or octet-counted): from then on that
//! connection is known to delimit its frames and a header is text again.
//! The first cut of a connection is taken only when no LF ends the frame
//! before the next header in the bytes already in hand: a `logger -T` line
//! quoting a header, which arrives whole with its LF, stays one frame and
//! makes the connection delimited.
//!
//! A count above `max_frame_bytes` is a framing error of that frame, not a
//! length to skip (a stray `999999999 ` would otherwise swallow the next
//! gigabyte): as rsyslog does, that frame is read as a newline frame, count
//! included, and the fallback is counted; what follows it is read as usual.
//!
//! Every frame is bounded by `max_frame_bytes`. An oversized newline frame
//! is skipped up to its LF and reported as an item, so the connection stays
//! usable; bytes already
//! searched are never searched again. Following the tokio-util `Decoder`
//! contract, `Ok(None)` means "need more bytes" and bad frames are items,
//! because an `Err` would end the stream.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

mod headers;
mod lf;

use headers::{End, rfc5424_header};
use lf::LfFinder;

/// Longest octet count accepted, in digits (counts up to 999,999,999).
const MAX_COUNT_DIGITS: usize = 9;

pub(crate) use crate::config::Framing;

/// What the framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameItem {
    Frame(Bytes),
    /// A frame longer than `max_frame_bytes` was skipped.
    Oversized,
    /// The stream ended inside an octet-counted frame.
    Truncated,
}

/// Framing counters the caller adds to its metrics after each pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FramerStats {
    /// `LEN SP` not followed by `<`: read as a newline frame instead.
    pub octet_fallbacks: u64,
    /// A digit run too long to be a count, followed by a space: read as a
    /// newline frame.
    pub bad_octet_counts: u64,
    /// A count above `max_frame_bytes`: that frame read as a newline frame.
    pub count_over_max: u64,
    /// RFC 5424 frames cut where the next `<PRI>1 ` header starts, in a
    /// stream without delimiters (log4j2 TCP `newLine=false`).
    pub undelimited_splits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a frame.
    Start,
    /// Inside a newline frame; bytes before `scanned` hold no LF.
    Line { scanned: usize },
    /// Inside an octet-counted frame whose `LEN SP` (header bytes) were
    /// seen; `len` is at most `max_frame_bytes`.
    Counted { header: usize, len: usize },
    /// Skipping an oversized newline frame up to its LF.
    DiscardLine,
    /// Skipping an oversized frame of an undelimited stream up to the next
    /// `<PRI>1 ` header.
    DiscardToHeader,
}

/// The RFC 6587 framer. See the module docs.
#[derive(Debug, Clone)]
pub struct SyslogFramer {
    max_frame_bytes: usize,
    framing: Framing,
    state: State,
    stats: FramerStats,
    /// This stream was seen to run RFC 5424 frames together without
    /// delimiters: from then on an LF inside such a frame is content.
    undelimited: bool,
    /// This stream delivered a frame ended by LF or by its octet count: it
    /// delimits its frames, so a header inside one is text.
    delimited: bool,
    /// The fast path's LF search.
    lf: LfFinder,
}

impl SyslogFramer {
    pub fn new(max_frame_bytes: usize, framing: Framing) -> Self {
        SyslogFramer {
            max_frame_bytes: max_frame_bytes.max(1),
            framing,
            state: State::Start,
            stats: FramerStats::default(),
            undelimited: false,
            delimited: false,
            lf: LfFinder::new(),
        }
    }

    /// True while a frame is in progress: bytes of it are in `buf`, or the
    /// framer is still skipping one. The listener's `frame_timeout_secs`
    /// runs while this holds.
    pub fn mid_frame(&self, buf: &[u8]) -> bool {
        !buf.is_empty() || self.state != State::Start
    }
}

impl SyslogFramer {
    /// Counters since the last call, then reset.
    pub fn take_stats(&mut self) -> FramerStats {
        std::mem::take(&mut self.stats)
    }

    /// Decide how the frame at the start of `buf` is delimited. `None` = need
    /// more bytes.
    fn start(&mut self, buf: &[u8]) -> Option<State> {
        let line = State::Line { scanned: 0 };
        if self.framing == Framing::Lf || !matches!(buf.first(), Some(b'1'..=b'9')) {
            return Some(line);
        }
        let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == buf.len() {
            // Only digits so far: a count, or a line of digits? Wait for more,
            // unless it is already too long to be a count.
            return if digits > MAX_COUNT_DIGITS {
                Some(line)
            } else {
                None
            };
        }
        if buf[digits] != b' ' {
            return Some(line);
        }
        if digits > MAX_COUNT_DIGITS {
            self.stats.bad_octet_counts += 1;
            return Some(line);
        }
        let &after = buf.get(digits + 1)?;
        if after != b'<' && self.framing != Framing::Octet {
            self.stats.octet_fallbacks += 1;
            return Some(line);
        }
        let len = buf[..digits]
            .iter()
            .fold(0usize, |acc, b| acc * 10 + usize::from(b - b'0'));
        if len > self.max_frame_bytes {
            self.stats.count_over_max += 1;
            return Some(line);
        }
        Some(State::Counted {
            header: digits + 1,
            len,
        })
    }
}

impl SyslogFramer {
    /// The common frame without the state machine: at the start of a
    /// frame, a newline frame whose LF is already in `buf` within the
    /// bound, on a stream that does not split at headers. `None` leaves
    /// `buf` as it was, for the general path, which would take the same
    /// frame (`fast_path_is_the_general_path` holds them together); it
    /// also takes blank lines, counts and frames not complete yet.
    #[inline]
    fn whole_line(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        let &first = buf.first()?;
        let count = self.framing != Framing::Lf && matches!(first, b'1'..=b'9');
        if count || matches!(first, b'\n' | b'\r') || self.splits_at_headers() {
            return None;
        }
        let limit = buf.len().min(self.max_frame_bytes + 1);
        let end = self.lf.find(&buf[..limit])?;
        // One CR before the LF is trimmed. The LF (and CR) leave `buf`
        // with the frame and are cut off it, not advanced past (a second
        // call into `bytes`).
        let len = end - usize::from(buf[..end].last() == Some(&b'\r'));
        let mut frame = buf.split_to(end + 1);
        frame.truncate(len);
        self.delimited = true;
        Some(frame.freeze())
    }
}

impl SyslogFramer {
    /// The next frame when it is the common one ([`SyslogFramer::whole_line`]
    /// at the start of a frame): what [`Decoder::decode`] would return as
    /// `Ok(Some(FrameItem::Frame(_)))`, without the item's wrapping, for a
    /// caller that takes many frames in a row. `None`: ask
    /// [`Decoder::decode`] (which also takes this path first).
    #[inline]
    pub fn common_frame(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        if self.state == State::Start {
            self.whole_line(buf)
        } else {
            None
        }
    }
}

impl Decoder for SyslogFramer {
    type Item = FrameItem;
    type Error = std::io::Error;

    /// The fast path, else the general one (kept out of line: this one
    /// stays small).
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<FrameItem>, std::io::Error> {
        if let Some(frame) = self.common_frame(buf) {
            return Ok(Some(FrameItem::Frame(frame)));
        }
        self.decode_general(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<FrameItem>, std::io::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        self.rest_at_eof(buf)
    }
}

impl SyslogFramer {
    /// [`Decoder::decode`] by the state machine, for every case.
    #[inline(never)]
    fn decode_general(&mut self, buf: &mut BytesMut) -> Result<Option<FrameItem>, std::io::Error> {
        loop {
            match self.state {
                State::Start => {
                    // Stray line ends between frames carry no data.
                    let blank = buf
                        .iter()
                        .take_while(|b| matches!(b, b'\n' | b'\r'))
                        .count();
                    buf.advance(blank);
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    match self.start(buf) {
                        Some(next) => self.state = next,
                        None => return Ok(None),
                    }
                }
                State::Line { scanned } => {
                    let limit = buf.len().min(self.max_frame_bytes + 1);
                    match self.find_end(buf, scanned, limit) {
                        Ok(End::Lf(end)) => {
                            let mut frame = buf.split_to(end + 1);
                            frame.truncate(end);
                            if frame.last() == Some(&b'\r') {
                                frame.truncate(end - 1);
                            }
                            self.delimited = true;
                            self.state = State::Start;
                            return Ok(Some(FrameItem::Frame(frame.freeze())));
                        }
                        Ok(End::Header(at)) => {
                            let mut frame = buf.split_to(at);
                            while matches!(frame.last(), Some(b'\n' | b'\r')) {
                                frame.truncate(frame.len() - 1);
                            }
                            self.undelimited = true;
                            self.stats.undelimited_splits += 1;
                            self.state = State::Start;
                            return Ok(Some(FrameItem::Frame(frame.freeze())));
                        }
                        Err(_) if buf.len() > self.max_frame_bytes => {
                            // No end in the first max+1 bytes: skip them and
                            // the rest of the frame; what follows it is kept.
                            self.state = if self.undelimited && rfc5424_header(buf) == Some(true) {
                                State::DiscardToHeader
                            } else {
                                State::DiscardLine
                            };
                            buf.advance(limit);
                            return Ok(Some(FrameItem::Oversized));
                        }
                        Err(resume) => {
                            self.state = State::Line { scanned: resume };
                            return Ok(None);
                        }
                    }
                }
                State::Counted { header, len } => {
                    if buf.len() < header + len {
                        buf.reserve(header + len - buf.len());
                        return Ok(None);
                    }
                    buf.advance(header);
                    let frame = buf.split_to(len).freeze();
                    self.delimited = true;
                    self.state = State::Start;
                    return Ok(Some(FrameItem::Frame(frame)));
                }
                State::DiscardLine => match memchr::memchr(b'\n', buf) {
                    Some(pos) => {
                        buf.advance(pos + 1);
                        self.state = State::Start;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                },
                State::DiscardToHeader => {
                    let mut pos = 0;
                    loop {
                        let Some(k) = memchr::memchr(b'<', &buf[pos..]) else {
                            buf.clear();
                            return Ok(None);
                        };
                        let at = pos + k;
                        match rfc5424_header(&buf[at..]) {
                            Some(true) => {
                                buf.advance(at);
                                self.state = State::Start;
                                break;
                            }
                            None => {
                                // Maybe a header: keep it for the next read.
                                buf.advance(at);
                                return Ok(None);
                            }
                            Some(false) => pos = at + 1,
                        }
                    }
                }
            }
        }
    }

    /// What is left in `buf` once the stream ended and no frame is complete.
    fn rest_at_eof(&mut self, buf: &mut BytesMut) -> Result<Option<FrameItem>, std::io::Error> {
        let state = std::mem::replace(&mut self.state, State::Start);
        match state {
            // A last line without LF is still a frame (within the bound,
            // or decode() would have skipped it).
            State::Start | State::Line { .. } if !buf.is_empty() => {
                let mut frame = buf.split();
                if frame.last() == Some(&b'\r') {
                    frame.truncate(frame.len() - 1);
                }
                Ok(Some(FrameItem::Frame(frame.freeze())))
            }
            State::Counted { .. } => {
                buf.clear();
                Ok(Some(FrameItem::Truncated))
            }
            _ => {
                buf.clear();
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(super) fn frames(framer: &mut SyslogFramer, input: &[u8]) -> Vec<FrameItem> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(item) = framer.decode(&mut buf).unwrap() {
            out.push(item);
        }
        while let Some(item) = framer.decode_eof(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    /// Feed `input` in chunks of the given sizes (cycled), as reads would.
    pub(super) fn frames_chunked(
        framer: &mut SyslogFramer,
        input: &[u8],
        sizes: &[usize],
    ) -> Vec<FrameItem> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut k = 0;
        while pos < input.len() {
            let n = sizes[k % sizes.len()].max(1).min(input.len() - pos);
            k += 1;
            buf.extend_from_slice(&input[pos..pos + n]);
            pos += n;
            while let Some(item) = framer.decode(&mut buf).unwrap() {
                out.push(item);
            }
        }
        while let Some(item) = framer.decode_eof(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    pub(super) fn f(s: &str) -> FrameItem {
        FrameItem::Frame(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn underrun_waits_for_more() {
        let mut fr = SyslogFramer::new(1024, Framing::Auto);
        let mut buf = BytesMut::from(&b"<13>partial"[..]);
        assert_eq!(fr.decode(&mut buf).unwrap(), None);
        let mut buf2 = BytesMut::from(&b"12"[..]);
        let mut fr2 = SyslogFramer::new(1024, Framing::Auto);
        assert_eq!(
            fr2.decode(&mut buf2).unwrap(),
            None,
            "digits only: maybe a count"
        );
        buf2.extend_from_slice(b" ");
        assert_eq!(
            fr2.decode(&mut buf2).unwrap(),
            None,
            "count without body start"
        );
        buf2.extend_from_slice(b"<13>abcdefg");
        assert_eq!(fr2.decode(&mut buf2).unwrap(), None, "count not complete");
        buf2.extend_from_slice(b"h");
        assert_eq!(fr2.decode(&mut buf2).unwrap(), Some(f("<13>abcdefgh")));
    }

    #[test]
    fn burst_of_mixed_framings() {
        let mut fr = SyslogFramer::new(1024, Framing::Auto);
        let input = b"<13>one\n11 <13>two-oct<13>three\r\n\n8 <14>four4 <1>x\n";
        assert_eq!(
            frames(&mut fr, input),
            vec![
                f("<13>one"),
                f("<13>two-oct"),
                f("<13>three"),
                f("<14>four"),
                f("<1>x"),
            ]
        );
    }

    #[test]
    fn leading_digit_line_is_not_mis_split() {
        let mut fr = SyslogFramer::new(1024, Framing::Auto);
        let out = frames(&mut fr, b"2024 was a good year\n<13>next\n");
        assert_eq!(out, vec![f("2024 was a good year"), f("<13>next")]);
        assert_eq!(fr.take_stats().octet_fallbacks, 1);
        let out = frames(&mut fr, b"12345abc\n");
        assert_eq!(out, vec![f("12345abc")]);
        assert_eq!(fr.take_stats(), FramerStats::default());
    }

    #[test]
    fn garbage_count_is_counted_and_next_frame_delivered() {
        let mut fr = SyslogFramer::new(1024, Framing::Auto);
        let out = frames(&mut fr, b"99999999999999 <13>garbage\n<13>next\n");
        assert_eq!(out, vec![f("99999999999999 <13>garbage"), f("<13>next")]);
        assert_eq!(fr.take_stats().bad_octet_counts, 1);
    }

    #[test]
    fn exactly_max_passes_and_max_plus_one_is_skipped() {
        let max = 16;
        let exact = "<13>".to_string() + &"a".repeat(max - 4);
        let over = "<13>".to_string() + &"b".repeat(max - 3);
        for framing in [Framing::Auto, Framing::Lf] {
            let mut fr = SyslogFramer::new(max, framing);
            let input = format!("{exact}\n{over}\n<13>after\n");
            assert_eq!(
                frames(&mut fr, input.as_bytes()),
                vec![f(&exact), FrameItem::Oversized, f("<13>after")]
            );
        }
        // A count over the maximum is read as a newline frame: one that is
        // itself over the maximum is skipped up to its LF.
        let mut fr = SyslogFramer::new(max, Framing::Auto);
        let input = format!("{} {exact}{} {over}\n9 <13>after", exact.len(), over.len());
        assert_eq!(
            frames(&mut fr, input.as_bytes()),
            vec![f(&exact), FrameItem::Oversized, f("<13>after")]
        );
        assert_eq!(fr.take_stats().count_over_max, 1);
    }

    #[test]
    fn discard_then_recover_across_reads() {
        let mut fr = SyslogFramer::new(8, Framing::Auto);
        let input = b"<13>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n<13>ok\n";
        for sizes in [&[1usize][..], &[3], &[7, 2], &[100]] {
            assert_eq!(
                frames_chunked(&mut fr, input, sizes),
                vec![FrameItem::Oversized, f("<13>ok")],
                "chunks {sizes:?}"
            );
        }
        let input = b"40 <13>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n5 <1>ok";
        assert_eq!(
            frames_chunked(&mut fr, input, &[5]),
            vec![FrameItem::Oversized, f("<1>ok")]
        );
    }

    #[test]
    fn eof_inside_counted_frame_is_truncated() {
        let mut fr = SyslogFramer::new(1024, Framing::Auto);
        assert_eq!(frames(&mut fr, b"50 <13>short"), vec![FrameItem::Truncated]);
        assert_eq!(
            frames(&mut fr, b"<13>no newline"),
            vec![f("<13>no newline")]
        );
    }

    #[test]
    fn lf_mode_never_counts() {
        let mut fr = SyslogFramer::new(1024, Framing::Lf);
        assert_eq!(frames(&mut fr, b"5 <1>abc\n"), vec![f("5 <1>abc")]);
        let mut fr = SyslogFramer::new(1024, Framing::Octet);
        assert_eq!(frames(&mut fr, b"3 abc"), vec![f("abc")]);
    }

    fn arb_frame() -> impl Strategy<Value = (Vec<u8>, bool)> {
        // (body, octet-counted?) — LF bodies have no LF and no leading CR/LF.
        (proptest::collection::vec(any::<u8>(), 1..80), any::<bool>()).prop_map(
            |(mut body, octet)| {
                body.insert(0, b'<');
                if !octet {
                    body.retain(|b| *b != b'\n');
                    while body.last() == Some(&b'\r') {
                        body.pop();
                    }
                }
                (body, octet)
            },
        )
    }

    proptest! {
        /// The frames do not depend on how the stream was cut into reads.
        #[test]
        fn chunking_invariance(
            frames_in in proptest::collection::vec(arb_frame(), 0..20),
            sizes in proptest::collection::vec(1usize..64, 1..8),
            max in 8usize..100,
        ) {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (body, octet) in &frames_in {
                let item = |b: &[u8]| if b.len() > max {
                    FrameItem::Oversized
                } else {
                    FrameItem::Frame(Bytes::copy_from_slice(b))
                };
                if *octet && body.len() > max {
                    // A count over the maximum: that frame is read up to
                    // its LF, count included (issue #20 item 7).
                    let mut line = format!("{} ", body.len()).into_bytes();
                    line.extend(body.iter().filter(|b| **b != b'\n'));
                    while line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    stream.extend_from_slice(&line);
                    stream.push(b'\n');
                    expected.push(item(&line));
                } else if *octet {
                    stream.extend_from_slice(format!("{} ", body.len()).as_bytes());
                    stream.extend_from_slice(body);
                    expected.push(item(body));
                } else {
                    stream.extend_from_slice(body);
                    stream.push(b'\n');
                    expected.push(item(body));
                }
            }
            let whole = frames(&mut SyslogFramer::new(max, Framing::Auto), &stream);
            let chunked = frames_chunked(&mut SyslogFramer::new(max, Framing::Auto), &stream, &sizes);
            prop_assert_eq!(&whole, &chunked);
            // And each input frame comes out as itself or as Oversized.
            prop_assert_eq!(whole, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_frames_are_bounded(
            input in proptest::collection::vec(any::<u8>(), 0..400),
            sizes in proptest::collection::vec(1usize..50, 1..5),
            max in 1usize..64,
        ) {
            for item in frames_chunked(&mut SyslogFramer::new(max, Framing::Auto), &input, &sizes) {
                if let FrameItem::Frame(b) = item {
                    prop_assert!(b.len() <= max);
                }
            }
        }
    }

    /// [`frames_chunked`] by the state machine alone, without the fast
    /// path for whole lines ([`SyslogFramer::whole_line`]).
    fn frames_general(framer: &mut SyslogFramer, input: &[u8], sizes: &[usize]) -> Vec<FrameItem> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks(input, sizes) {
            buf.extend_from_slice(chunk);
            while let Some(item) = framer.decode_general(&mut buf).unwrap() {
                out.push(item);
            }
        }
        loop {
            match framer.decode_general(&mut buf).unwrap() {
                Some(item) => out.push(item),
                None => match framer.rest_at_eof(&mut buf).unwrap() {
                    Some(item) => out.push(item),
                    None => return out,
                },
            }
        }
    }

    fn chunks<'i>(input: &'i [u8], sizes: &[usize]) -> Vec<&'i [u8]> {
        let mut out = Vec::new();
        let mut rest = input;
        for k in 0.. {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(sizes[k % sizes.len()].clamp(1, rest.len()));
            out.push(chunk);
            rest = tail;
        }
        out
    }

    /// Pieces of a stream that lead the framer down each of its paths:
    /// lines (with CR, blank, starting with a digit or a header), headers
    /// run together, counts, text without an LF.
    const PIECES: &[&[u8]] = &[
        b"<13>one\n",
        b"<14>1 - h a - - - x\r\n",
        b"<14>1 2025-01-01T00:00:00Z h a - - - y",
        b"<14>1 - h a - - - x<14>1 - h b - - - y<14>1 - h c - - - z\n",
        b"\n",
        b"\r\r\n",
        b"\r",
        b"0 zero\n",
        b"2024 was a year\n",
        b"11 <13>counted",
        b"3 abc",
        b"99 <13>over the maximum\n",
        b"<13>a line longer than the maximum of the framers here\n",
    ];

    fn arb_piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::sample::select(PIECES).prop_map(<[u8]>::to_vec),
            proptest::collection::vec(any::<u8>(), 0..24),
        ]
    }

    proptest! {
        /// The fast path takes exactly the frames (and counts) the state
        /// machine takes, whatever the framing and the reads.
        #[test]
        fn fast_path_is_the_general_path(
            pieces in proptest::collection::vec(arb_piece(), 0..24),
            sizes in proptest::collection::vec(1usize..80, 1..6),
            max in prop_oneof![Just(16usize), Just(40), Just(4096)],
            framing in prop_oneof![
                Just(Framing::Auto),
                Just(Framing::Lf),
                Just(Framing::Octet),
                Just(Framing::Log4j2Undelimited),
            ],
        ) {
            let stream = pieces.concat();
            let mut fast = SyslogFramer::new(max, framing);
            let mut general = SyslogFramer::new(max, framing);
            prop_assert_eq!(
                frames_chunked(&mut fast, &stream, &sizes),
                frames_general(&mut general, &stream, &sizes)
            );
            prop_assert_eq!(fast.take_stats(), general.take_stats());
            prop_assert_eq!(fast.delimited, general.delimited);
            prop_assert_eq!(fast.undelimited, general.undelimited);
        }
    }

    /// Issue #20 item 1: the nginx line whose query string carries an
    /// RFC 5424 header, then two more LF lines.
    pub(super) const FORGED: &[u8] = b"<14>1 2025-01-01T00:00:00Z web01 nginx - - - GET /search?q=<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6\n<14>1 - h a - - - next\n<14>1 - h a - - - <13>1 - x\nlast\n";

    pub(super) fn forged_frames() -> Vec<FrameItem> {
        vec![
            f(
                "<14>1 2025-01-01T00:00:00Z web01 nginx - - - GET /search?q=<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6",
            ),
            f("<14>1 - h a - - - next"),
            f("<14>1 - h a - - - <13>1 - x"),
            f("last"),
        ]
    }

    #[test]
    fn issue20_embedded_header_is_text_under_auto_lf_and_octet() {
        for framing in [Framing::Auto, Framing::Lf, Framing::Octet] {
            for size in [1, 7, 64, FORGED.len()] {
                let mut fr = SyslogFramer::new(4096, framing);
                assert_eq!(
                    frames_chunked(&mut fr, FORGED, &[size]),
                    forged_frames(),
                    "{framing:?}, reads of {size}"
                );
                assert_eq!(fr.take_stats(), FramerStats::default(), "{framing:?}");
            }
        }
    }

    #[test]
    fn issue20_huge_octet_count_falls_back_to_lf_and_what_follows_is_delivered() {
        for framing in [Framing::Auto, Framing::Octet] {
            let mut input = b"999999999 <13>oops\n".to_vec();
            let mut want = vec![f("999999999 <13>oops")];
            for i in 0..50 {
                let frame = format!("<14>1 - h a - - - good {i}");
                input.extend_from_slice(format!("{} {frame}", frame.len()).as_bytes());
                want.push(f(&frame));
            }
            // Just over the maximum is a framing error too.
            input.extend_from_slice(b"65 <13>one over\n<13>after\n");
            want.extend([f("65 <13>one over"), f("<13>after")]);
            let mut fr = SyslogFramer::new(64, framing);
            assert_eq!(frames_chunked(&mut fr, &input, &[5]), want, "{framing:?}");
            let stats = fr.take_stats();
            assert_eq!(stats.count_over_max, 2, "{framing:?}");
            assert_eq!(stats.octet_fallbacks + stats.bad_octet_counts, 0);
        }
    }
}
