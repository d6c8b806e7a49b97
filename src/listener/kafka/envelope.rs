//! The raw envelope's headers (README "Kafka listener"): what an edge
//! sluice's Kafka sink writes beside a frame's bytes, read back into the
//! [`Received`](crate::ingest::Received) the frame is decoded with.
//!
//! A record's headers are read through librdkafka's C API, by exact name:
//! rdkafka's `Headers::iter`/`get`/`try_get` unwrap `to_str()` on every
//! header's name (a record with a name that is not UTF-8 killed the
//! consumer thread) and see a name only up to its first NUL. Looked up by
//! name (`rd_kafka_header_get` compares the whole name, its length
//! included), a header whose name is not UTF-8 or holds a NUL is never a
//! `sluice.*` header: the record reads as if it were absent.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::net::SocketAddr;

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

use crate::telemetry::KafkaDrop;

/// The one envelope version this build reads.
pub(super) const VERSION: &[u8] = b"1";

/// The receive times an envelope may carry: from 2000-01-01T00:00:00Z up
/// to (not including) 2200-01-01T00:00:00Z, in ns since the epoch. A
/// time outside is no edge's clock (`i64::MAX` is in 2262; `0` would file
/// a document in 1970): the envelope is malformed.
pub(super) const RECEIVED_RANGE: std::ops::Range<i64> =
    946_684_800_000_000_000..7_258_118_400_000_000_000;

/// The headers an envelope is made of; each may appear once.
const SLUICE_HEADERS: [&CStr; 7] = [
    ENVELOPE,
    RECEIVED,
    PEER,
    ID,
    TIMEZONE,
    c"sluice.listener",
    c"sluice.framing",
];
const ENVELOPE: &CStr = c"sluice.envelope";
const RECEIVED: &CStr = c"sluice.received";
const PEER: &CStr = c"sluice.peer";
const ID: &CStr = c"sluice.id";
const TIMEZONE: &CStr = c"sluice.timezone";

/// A record's headers, as the envelope reads them: by whole name.
pub(super) trait Named {
    /// The value of the `nth` (from 0) header named exactly `name` (the
    /// whole name: one with more bytes after a NUL is another), `None`
    /// when there are not that many; the inner `None` is a null value.
    fn nth(&self, name: &CStr, nth: usize) -> Option<Option<&[u8]>>;
}

/// The receive context an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Envelope {
    pub(super) received_nanos: i64,
    pub(super) peer: Option<SocketAddr>,
    pub(super) nonce: u64,
    pub(super) frame_number: u64,
    pub(super) timezone: Option<chrono_tz::Tz>,
}

/// `Ok(None)`: no `sluice.envelope` header, a plain frame. `Err`: an
/// envelope this build cannot read, with the drop reason: another version
/// (`EnvelopeVersion`), or a header missing, unreadable or repeated
/// (`Envelope`: a repeated header is never resolved to one of its values,
/// which one would be a forged field).
pub(super) fn parse(headers: Option<&impl Named>) -> Result<Option<Envelope>, KafkaDrop> {
    let Some(headers) = headers else {
        return Ok(None);
    };
    let Some(version) = headers.nth(ENVELOPE, 0) else {
        return Ok(None);
    };
    if SLUICE_HEADERS.iter().any(|n| headers.nth(n, 1).is_some()) {
        return Err(KafkaDrop::Envelope);
    }
    if version.unwrap_or_default() != VERSION {
        return Err(KafkaDrop::EnvelopeVersion);
    }
    let text = |name| text(headers, name);
    let received_nanos = text(RECEIVED)?
        .and_then(received_nanos)
        .ok_or(KafkaDrop::Envelope)?;
    let peer = match text(PEER)? {
        Some(p) => Some(p.parse::<SocketAddr>().map_err(|_| KafkaDrop::Envelope)?),
        None => None,
    };
    let id = text(ID)?.ok_or(KafkaDrop::Envelope)?;
    let hex = |s: &str| {
        (s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    let (nonce, frame_number) = match (id.get(..16).and_then(hex), id.get(16..).and_then(hex)) {
        (Some(n), Some(f)) => (n, f),
        _ => return Err(KafkaDrop::Envelope),
    };
    let timezone = match text(TIMEZONE)? {
        Some(tz) => Some(
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| KafkaDrop::Envelope)?,
        ),
        None => None,
    };
    Ok(Some(Envelope {
        received_nanos,
        peer,
        nonce,
        frame_number,
        timezone,
    }))
}

/// Header `name`'s value as text: `None` when absent, an error when it is
/// null or not UTF-8.
fn text<'h>(headers: &'h impl Named, name: &CStr) -> Result<Option<&'h str>, KafkaDrop> {
    match headers.nth(name, 0) {
        None => Ok(None),
        Some(v) => v
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(Some)
            .ok_or(KafkaDrop::Envelope),
    }
}

/// `sluice.received`: decimal ASCII digits only (no sign, no space), a
/// time in [`RECEIVED_RANGE`].
fn received_nanos(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>()
        .ok()
        .filter(|t| RECEIVED_RANGE.contains(t))
}

/// The headers of a consumed record, read through librdkafka (see the
/// module docs), borrowed from the record.
pub(super) struct RecordHeaders<'m> {
    list: std::ptr::NonNull<rd::rd_kafka_headers_t>,
    _owner: PhantomData<&'m ()>,
}

/// `msg`'s headers, `None` when it has none.
pub(super) fn headers<'m>(msg: &'m BorrowedMessage<'_>) -> Option<RecordHeaders<'m>> {
    let mut list = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is the live message `msg` owns; librdkafka
    // parses its headers (once) into a list the message owns, freed with
    // it, and sets `list` to it, or returns an error (none: NOENT).
    let err = unsafe { rd::rd_kafka_message_headers(msg.ptr(), &mut list) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return None;
    }
    Some(RecordHeaders {
        list: std::ptr::NonNull::new(list)?,
        _owner: PhantomData,
    })
}

impl Named for RecordHeaders<'_> {
    fn nth(&self, name: &CStr, nth: usize) -> Option<Option<&[u8]>> {
        let (mut value, mut size) = (std::ptr::null(), 0usize);
        // SAFETY: `list` is the header list of a message borrowed for
        // 'm (not changed while borrowed: the consumer thread only reads
        // it); `name` is NUL-terminated; librdkafka sets `value`/`size`
        // to the value it stores (null for a null value) or returns NOENT.
        let err = unsafe {
            rd::rd_kafka_header_get(
                self.list.as_ptr(),
                nth,
                name.as_ptr(),
                &mut value,
                &mut size,
            )
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        if value.is_null() {
            return Some(None);
        }
        // SAFETY: librdkafka's value: `size` bytes at `value`, owned by
        // the list, which outlives the borrow of `self`.
        Some(Some(unsafe {
            std::slice::from_raw_parts(value.cast::<u8>(), size)
        }))
    }
}

/// The name of `msg`'s topic, as bytes: rdkafka's `Message::topic` panics
/// on one that is not UTF-8 (brokers refuse such names; this never takes
/// their word for it).
pub(super) fn topic<'m>(msg: &'m BorrowedMessage<'_>) -> &'m [u8] {
    // SAFETY: `topic_ptr` is the message's topic handle, held by the
    // message (a consumed message always has one).
    let name = unsafe { rd::rd_kafka_topic_name(msg.topic_ptr()) };
    if name.is_null() {
        return b"";
    }
    // SAFETY: the handle's name: NUL-terminated, owned by the handle,
    // which the message holds for 'm.
    unsafe { CStr::from_ptr(name) }.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers as a list of (name bytes, value), looked up by whole name
    /// as librdkafka does.
    struct List<'a>(Vec<(&'a [u8], Option<&'a [u8]>)>);

    impl Named for List<'_> {
        fn nth(&self, name: &CStr, nth: usize) -> Option<Option<&[u8]>> {
            self.0
                .iter()
                .filter(|(n, _)| *n == name.to_bytes())
                .nth(nth)
                .map(|(_, v)| *v)
        }
    }

    fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> List<'a> {
        List(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes(), Some(v.as_bytes())))
                .collect(),
        )
    }

    const ID: &str = "00112233445566778899aabbccddeeff";
    /// 2026-11-18T12:26:40Z.
    const AT: &str = "1795000000123456789";

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("sluice.envelope", "1"),
            ("sluice.received", AT),
            ("sluice.id", ID),
        ]
    }

    #[test]
    fn an_envelope_gives_its_receive_context() {
        let h = headers(&[
            ("sluice.envelope", "1"),
            ("sluice.received", AT),
            ("sluice.peer", "[2001:db8::1]:514"),
            ("sluice.listener", "tcp"),
            ("sluice.framing", "auto"),
            ("sluice.id", ID),
            ("sluice.timezone", "Europe/Berlin"),
        ]);
        assert_eq!(
            parse(Some(&h)),
            Ok(Some(Envelope {
                received_nanos: 1_795_000_000_123_456_789,
                peer: Some("[2001:db8::1]:514".parse().unwrap()),
                nonce: 0x0011_2233_4455_6677,
                frame_number: 0x8899_aabb_ccdd_eeff,
                timezone: Some(chrono_tz::Europe::Berlin),
            }))
        );
        // Peer and zone are optional.
        let e = parse(Some(&headers(&good()))).unwrap().unwrap();
        assert_eq!((e.peer, e.timezone), (None, None));
    }

    #[test]
    fn no_envelope_header_is_a_plain_frame() {
        assert_eq!(parse(None::<&List<'_>>), Ok(None));
        assert_eq!(parse(Some(&headers(&[("trace", "x")]))), Ok(None));
        // Envelope fields without `sluice.envelope`, even repeated.
        let h = headers(&[("sluice.peer", "x"), ("sluice.peer", "y")]);
        assert_eq!(parse(Some(&h)), Ok(None));
    }

    #[test]
    fn unreadable_envelopes_are_refused_with_a_reason() {
        let with = |k: &'static str, v: &'static str| {
            let mut pairs: Vec<(&str, &str)> =
                good().into_iter().filter(|(g, _)| *g != k).collect();
            pairs.push((k, v));
            parse(Some(&headers(&pairs)))
        };
        assert_eq!(
            with("sluice.envelope", "2"),
            Err(KafkaDrop::EnvelopeVersion)
        );
        for (k, v) in [
            ("sluice.received", "soon"),
            ("sluice.id", "0011"),
            ("sluice.id", "00112233445566778899AABBCCDDEEFF"),
            ("sluice.peer", "somewhere"),
            ("sluice.timezone", "Mars/Olympus"),
        ] {
            assert_eq!(with(k, v), Err(KafkaDrop::Envelope), "{k} = {v}");
        }
        let missing: Vec<(&str, &str)> = good()[..2].to_vec();
        assert_eq!(parse(Some(&headers(&missing))), Err(KafkaDrop::Envelope));
        // A null value is unreadable.
        let mut null = headers(&good());
        null.0.push((&b"sluice.peer"[..], None));
        assert_eq!(parse(Some(&null)), Err(KafkaDrop::Envelope));
    }

    /// Decimal digits only, within 2000-01-01 .. 2200-01-01 (UTC).
    #[test]
    fn a_receive_time_is_digits_in_a_sane_range() {
        let (start, end) = (RECEIVED_RANGE.start, RECEIVED_RANGE.end);
        for ok in [start, end - 1, 1_795_000_000_123_456_789] {
            assert_eq!(received_nanos(&ok.to_string()), Some(ok), "{ok}");
        }
        let refused = [
            "+1795000000123456789".to_owned(),
            "-1795000000123456789".to_owned(),
            " 1795000000123456789".to_owned(),
            "1795000000123456789 ".to_owned(),
            "1_795000000123456789".to_owned(),
            String::new(),
            i64::MAX.to_string(),
            i64::MIN.to_string(),
            "99999999999999999999999".to_owned(),
            "0".to_owned(),
            "5".to_owned(),
            (start - 1).to_string(),
            end.to_string(),
        ];
        for bad in refused {
            assert_eq!(received_nanos(&bad), None, "{bad:?}");
            let mut pairs: Vec<(&str, &str)> = good();
            pairs[1].1 = &bad;
            assert_eq!(
                parse(Some(&headers(&pairs))),
                Err(KafkaDrop::Envelope),
                "{bad:?}"
            );
        }
    }

    /// A repeated `sluice.*` header is never resolved to one of its
    /// values (last-wins let a version 2 pass as 1, and a second peer
    /// replace the first): the envelope is malformed.
    #[test]
    fn a_repeated_envelope_header_is_malformed() {
        for (k, v) in [
            ("sluice.envelope", "2"),
            ("sluice.envelope", "1"),
            ("sluice.received", AT),
            ("sluice.peer", "192.0.2.1:1"),
            ("sluice.id", ID),
            ("sluice.timezone", "UTC"),
            ("sluice.listener", "tcp"),
            ("sluice.framing", "auto"),
        ] {
            let mut pairs = vec![(k, v)];
            pairs.extend(good());
            if k == "sluice.peer"
                || k == "sluice.timezone"
                || k.ends_with("listener")
                || k.ends_with("framing")
            {
                pairs.push((k, v));
            }
            assert_eq!(
                parse(Some(&headers(&pairs))),
                Err(KafkaDrop::Envelope),
                "{k} twice"
            );
        }
        // Other headers may repeat.
        let mut pairs = good();
        pairs.extend([("trace", "a"), ("trace", "b")]);
        assert!(matches!(parse(Some(&headers(&pairs))), Ok(Some(_))));
    }

    /// A header list built through librdkafka, names as raw bytes.
    struct Native(std::ptr::NonNull<rd::rd_kafka_headers_t>);

    impl Native {
        fn new(pairs: &[(&[u8], &[u8])]) -> Native {
            // SAFETY: a new, empty list (librdkafka aborts on OOM).
            let list = unsafe { rd::rd_kafka_headers_new(pairs.len()) };
            let list = Native(std::ptr::NonNull::new(list).unwrap());
            for (name, value) in pairs {
                // SAFETY: the list is ours; librdkafka copies the name
                // (`name.len()` bytes, NULs included) and the value.
                let err = unsafe {
                    rd::rd_kafka_header_add(
                        list.0.as_ptr(),
                        name.as_ptr().cast(),
                        name.len() as isize,
                        value.as_ptr().cast(),
                        value.len() as isize,
                    )
                };
                assert_eq!(err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
            }
            list
        }

        fn headers(&self) -> RecordHeaders<'_> {
            RecordHeaders {
                list: self.0,
                _owner: PhantomData,
            }
        }
    }

    impl Drop for Native {
        fn drop(&mut self) {
            // SAFETY: the list is ours, no longer borrowed.
            unsafe { rd::rd_kafka_headers_destroy(self.0.as_ptr()) }
        }
    }

    /// Through librdkafka as the consumer reads them: a name that is not
    /// UTF-8 (it panicked rdkafka's `Headers::iter`) or that goes on after
    /// a NUL (seen cut at it) is not a `sluice.*` header.
    #[test]
    fn odd_names_are_not_envelope_headers() {
        let plain = Native::new(&[(&b"\xff\xfebad"[..], &b"x"[..])]);
        assert_eq!(parse(Some(&plain.headers())), Ok(None));
        let nul = Native::new(&[(&b"sluice.envelope\0not-really"[..], &b"9"[..])]);
        assert_eq!(parse(Some(&nul.headers())), Ok(None));
        let mut pairs: Vec<(&[u8], &[u8])> = good()
            .into_iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        pairs.insert(1, (&b"\xff\xfe"[..], &b"y"[..]));
        // Not a second `sluice.peer`, nor the first.
        pairs.insert(2, (&b"sluice.peer\0"[..], &b"192.0.2.9:9"[..]));
        let e = parse(Some(&Native::new(&pairs).headers()));
        assert_eq!(
            e.map(|e| e.map(|e| (e.received_nanos, e.peer))),
            Ok(Some((1_795_000_000_123_456_789, None)))
        );
        // A repeat through librdkafka's lookup is seen too.
        pairs.push((b"sluice.id", ID.as_bytes()));
        assert_eq!(
            parse(Some(&Native::new(&pairs).headers())),
            Err(KafkaDrop::Envelope)
        );
    }
}
