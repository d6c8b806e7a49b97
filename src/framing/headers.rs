//! The `log4j2_undelimited` framing mode: a stream of RFC 5424 frames run
//! together without delimiters (log4j2 TCP with `newLine=false`) is split
//! where the next `<PRI>1 ` header starts, until the stream shows it
//! delimits its frames after all. See the module docs of [`super`].

use bytes::BytesMut;

use super::{FrameItem, Framing, State, SyslogFramer};

impl SyslogFramer {
    /// Whether a frame may end where the next `<PRI>1 ` header starts: only
    /// on an opted-in listener, and only until a delimited frame was seen.
    pub(super) fn splits_at_headers(&self) -> bool {
        self.framing == Framing::Log4j2Undelimited && !self.delimited
    }

    /// True when the stream runs frames together without delimiters and
    /// `buf` holds the start of one: it ends only when the next begins, so
    /// the caller may [`flush_undelimited`](Self::flush_undelimited) it once
    /// the sender pauses.
    pub fn holds_undelimited_frame(&self, buf: &[u8]) -> bool {
        self.undelimited && matches!(self.state, State::Line { .. }) && !buf.is_empty()
    }

    /// Take the frame in progress of an undelimited stream as complete.
    pub fn flush_undelimited(&mut self, buf: &mut BytesMut) -> Option<FrameItem> {
        if !self.holds_undelimited_frame(buf) {
            return None;
        }
        self.state = State::Start;
        let mut frame = buf.split();
        while matches!(frame.last(), Some(b'\n' | b'\r')) {
            frame.truncate(frame.len() - 1);
        }
        Some(FrameItem::Frame(frame.freeze()))
    }

    /// Where the frame being read ends, looking for LF and, in an RFC 5424
    /// frame, for the next `<PRI>1 ` header. `Err(resume)` = none before
    /// `limit`; `resume` is where to search again when more bytes arrive.
    pub(super) fn find_end(&mut self, buf: &[u8], from: usize, limit: usize) -> Result<End, usize> {
        if !self.splits_at_headers() || rfc5424_header(buf) != Some(true) {
            return match memchr::memchr(b'\n', &buf[from..limit]) {
                Some(p) => Ok(End::Lf(from + p)),
                None => Err(limit),
            };
        }
        let mut pos = from.max(1);
        while pos < limit {
            let hit = if self.undelimited {
                memchr::memchr(b'<', &buf[pos..limit])
            } else {
                memchr::memchr2(b'\n', b'<', &buf[pos..limit])
            };
            let Some(k) = hit else { break };
            let at = pos + k;
            if buf[at] == b'\n' {
                return Ok(End::Lf(at));
            }
            match rfc5424_header(&buf[at..]) {
                Some(true) if self.undelimited => return Ok(End::Header(at)),
                Some(true) => return Ok(first_split(buf, at, limit)),
                // Too few bytes to tell: wait for more, unless no more can
                // belong to this frame.
                None if buf.len() <= self.max_frame_bytes => return Err(at),
                _ => pos = at + 1,
            }
        }
        Err(limit)
    }
}

/// The first header split of a connection, at `at`, is taken only when no
/// LF in the bytes already in hand (`buf[..limit]`) ends the frame first:
/// an LF before the next header means the sender delimits its frames, and
/// the header at `at` is text (the LF wins, and the connection is delimited
/// from then on). A second header before any LF, or no LF yet, is a stream
/// without delimiters.
fn first_split(buf: &[u8], at: usize, limit: usize) -> End {
    let mut pos = at + 1;
    while pos < limit {
        let Some(k) = memchr::memchr2(b'\n', b'<', &buf[pos..limit]) else {
            break;
        };
        let q = pos + k;
        if buf[q] == b'\n' {
            return End::Lf(q);
        }
        if rfc5424_header(&buf[q..]) == Some(true) {
            break;
        }
        pos = q + 1;
    }
    End::Header(at)
}

pub(super) enum End {
    /// The frame ends at this LF.
    Lf(usize),
    /// The next frame's `<PRI>1 ` header starts here.
    Header(usize),
}

/// Does `b` start with an RFC 5424 header, `<PRI>1 ` followed by a
/// timestamp's year and dash or by `- `? `None`: too few bytes to tell.
pub(super) fn rfc5424_header(b: &[u8]) -> Option<bool> {
    let mut i = 0;
    let mut next = || {
        let byte = b.get(i).copied();
        i += 1;
        byte
    };
    if next()? != b'<' {
        return Some(false);
    }
    let mut pri = 0u32;
    let mut digits = 0;
    let mut c = next()?;
    while c.is_ascii_digit() {
        digits += 1;
        pri = pri * 10 + u32::from(c - b'0');
        if digits > 3 {
            return Some(false);
        }
        c = next()?;
    }
    if digits == 0 || pri > 191 || c != b'>' || next()? != b'1' || next()? != b' ' {
        return Some(false);
    }
    let c = next()?;
    if c == b'-' {
        return Some(next()? == b' ');
    }
    if !c.is_ascii_digit() {
        return Some(false);
    }
    for _ in 0..3 {
        if !next()?.is_ascii_digit() {
            return Some(false);
        }
    }
    Some(next()? == b'-')
}

#[cfg(test)]
mod tests {
    use super::super::tests::{FORGED, f, forged_frames, frames, frames_chunked};
    use super::super::*;

    /// What log4j2 sent over TCP with `newLine=false` (captured; see
    /// tests/corpus/log4j-captured.jsonl), shortened.
    const UNDELIMITED: &[u8] = b"<166>1 2026-11-24T11:34:37.803Z vm orders 16777 - - Hello from log4j2<164>1 2026-11-24T11:34:37.804Z vm orders 16777 - - status heap_used=1234<166>1 2026-11-24T11:34:37.804Z vm orders 16777 - [mdc@32473 user=\"a\"] Order created id=1001<166>1 2026-11-24T11:34:37.805Z vm orders 16777 - - two lines\nsecond line<163>1 - vm orders 16777 - - nil time";

    #[test]
    fn undelimited_rfc5424_stream_is_split_at_each_header() {
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let out = frames(&mut fr, UNDELIMITED);
        assert_eq!(
            out,
            vec![
                f("<166>1 2026-11-24T11:34:37.803Z vm orders 16777 - - Hello from log4j2"),
                f("<164>1 2026-11-24T11:34:37.804Z vm orders 16777 - - status heap_used=1234"),
                f(
                    "<166>1 2026-11-24T11:34:37.804Z vm orders 16777 - [mdc@32473 user=\"a\"] Order created id=1001"
                ),
                // Once the stream is known to be undelimited, LF is content.
                f("<166>1 2026-11-24T11:34:37.805Z vm orders 16777 - - two lines\nsecond line"),
                f("<163>1 - vm orders 16777 - - nil time"),
            ]
        );
        assert_eq!(fr.take_stats().undelimited_splits, 4);
    }

    #[test]
    fn undelimited_split_does_not_depend_on_read_sizes() {
        let whole = frames(
            &mut SyslogFramer::new(4096, Framing::Log4j2Undelimited),
            UNDELIMITED,
        );
        for size in 1..40 {
            let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
            assert_eq!(
                frames_chunked(&mut fr, UNDELIMITED, &[size]),
                whole,
                "chunk {size}"
            );
        }
    }

    #[test]
    fn only_rfc5424_frames_are_split_at_headers() {
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        // A BSD frame quoting a 5424 header, and a 5424 frame quoting
        // something that is not a header, stay whole.
        let out = frames(
            &mut fr,
            b"<13>Nov 24 11:00:00 h app: got <14>1 2026-11-24T00:00:00Z x\n<14>1 - h a - - - a <14>1 x <b>\n",
        );
        assert_eq!(
            out,
            vec![
                f("<13>Nov 24 11:00:00 h app: got <14>1 2026-11-24T00:00:00Z x"),
                f("<14>1 - h a - - - a <14>1 x <b>"),
            ]
        );
        assert_eq!(fr.take_stats().undelimited_splits, 0);
        // And a newline-delimited 5424 stream keeps newline framing.
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let out = frames(&mut fr, b"<14>1 - h a - - - one\n<14>1 - h a - - - two\n");
        assert_eq!(
            out,
            vec![f("<14>1 - h a - - - one"), f("<14>1 - h a - - - two")]
        );
    }

    #[test]
    fn undelimited_last_frame_is_flushed_on_request() {
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let mut buf = BytesMut::from(&b"<14>1 - h a - - - one<14>1 - h a - - - two"[..]);
        assert_eq!(
            fr.decode(&mut buf).unwrap(),
            Some(f("<14>1 - h a - - - one"))
        );
        assert_eq!(fr.decode(&mut buf).unwrap(), None);
        assert!(fr.holds_undelimited_frame(&buf));
        assert_eq!(
            fr.flush_undelimited(&mut buf),
            Some(f("<14>1 - h a - - - two"))
        );
        assert!(!fr.holds_undelimited_frame(&buf));
        // A newline-delimited stream never holds a frame back.
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let mut buf = BytesMut::from(&b"<14>1 - h a - - - one\n<14>1 - h a"[..]);
        assert_eq!(
            fr.decode(&mut buf).unwrap(),
            Some(f("<14>1 - h a - - - one"))
        );
        assert_eq!(fr.decode(&mut buf).unwrap(), None);
        assert!(!fr.holds_undelimited_frame(&buf));
    }

    #[test]
    fn undelimited_frames_stay_bounded() {
        let mut fr = SyslogFramer::new(64, Framing::Log4j2Undelimited);
        let mut input = b"<14>1 - h a - - - short<14>1 - h a - - - ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 200));
        input.extend_from_slice(b"<14>1 - h a - - - after");
        let out = frames(&mut fr, &input);
        assert_eq!(
            out,
            vec![
                f("<14>1 - h a - - - short"),
                FrameItem::Oversized,
                f("<14>1 - h a - - - after")
            ]
        );
    }

    #[test]
    fn issue20_opt_in_splits_only_until_a_delimited_frame() {
        // A delimited frame first (LF, then octet-counted): headers later in
        // the connection are text.
        for first in [
            &b"<14>1 - h a - - - first\n"[..],
            b"23 <14>1 - h a - - - first",
        ] {
            let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
            let mut input = first.to_vec();
            input.extend_from_slice(FORGED);
            let mut want = vec![f("<14>1 - h a - - - first")];
            want.extend(forged_frames());
            assert_eq!(frames_chunked(&mut fr, &input, &[3]), want);
            assert_eq!(fr.take_stats().undelimited_splits, 0);
        }
        // Undelimited from the start, its LF not in hand: the forgery is
        // indistinguishable from two frames back to back, which is what the
        // opt-in trusts.
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let first_line = &FORGED[..memchr::memchr(b'\n', FORGED).unwrap()];
        let out = frames(&mut fr, first_line);
        assert_eq!(
            out[1],
            f("<10>1 2025-01-01T00:00:00Z dc01 sshd - - - Accepted password for root from 6.6.6.6")
        );
    }

    /// The logger repro (fixlisten item 1a): on an opted-in listener, a
    /// first frame whose LF is already buffered ends at that LF, however
    /// the bytes were cut into reads once the LF is in hand; the
    /// connection is then delimited for good.
    #[test]
    fn opt_in_first_frame_with_its_lf_buffered_is_one_frame() {
        let line = b"<13>1 2026-12-06T20:00:00Z host billing - - - search q=<10>1 - dc01 sshd - - - Accepted password for root from 6.6.6.6\n";
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let mut input = line.to_vec();
        input.extend_from_slice(b"<14>1 - h a - - - x<13>1 - y z - - - still text\n");
        assert_eq!(
            frames(&mut fr, &input),
            vec![
                f(std::str::from_utf8(&line[..line.len() - 1]).unwrap()),
                f("<14>1 - h a - - - x<13>1 - y z - - - still text"),
            ]
        );
        assert_eq!(fr.take_stats().undelimited_splits, 0);
        // The whole forged nginx line as one read, then more lines.
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        assert_eq!(frames(&mut fr, FORGED), forged_frames());
        assert_eq!(fr.take_stats().undelimited_splits, 0);
    }

    /// A genuinely undelimited stream (the next header comes before any
    /// LF) is still split, also when a later frame carries an LF.
    #[test]
    fn opt_in_splits_when_a_second_header_comes_before_the_lf() {
        let mut fr = SyslogFramer::new(4096, Framing::Log4j2Undelimited);
        let out = frames(
            &mut fr,
            b"<14>1 - h a - - - one<14>1 - h a - - - two<14>1 - h a - - - three\nmore",
        );
        assert_eq!(
            out,
            vec![
                f("<14>1 - h a - - - one"),
                f("<14>1 - h a - - - two"),
                f("<14>1 - h a - - - three\nmore"),
            ]
        );
        assert_eq!(fr.take_stats().undelimited_splits, 2);
    }

    #[test]
    fn issue20_undelimited_stream_is_not_split_without_the_opt_in() {
        for framing in [Framing::Auto, Framing::Lf, Framing::Octet] {
            let mut fr = SyslogFramer::new(4096, framing);
            let out = frames(&mut fr, UNDELIMITED);
            assert_eq!(out.len(), 2, "{framing:?}: only the raw LF cuts: {out:?}");
            assert_eq!(fr.take_stats().undelimited_splits, 0);
        }
    }
}
