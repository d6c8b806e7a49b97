//! Elastic Common Schema documents, with a cache of the header block.

use super::document::{push_captures, push_ip, push_utc};
use super::{Captures, RouteJson};
use crate::config::{facility_name, severity_name};
use crate::event::Event;
use crate::text::{push_padded, write_json_str};

/// Elastic Common Schema (8.x field names): `@timestamp` (the event's time,
/// else the receive time, in UTC), `message`, `log.syslog.*` (facility and
/// severity code and name, hostname, appname, procid, msgid,
/// structured_data), `host.hostname`, `process.name` / `process.pid`,
/// `source.address`, `event.created` (and `event.original` when asked),
/// and Sluice's own `sluice.route`,
/// `sluice.valid`, `sluice.captures`. `route`: the route's name as a
/// JSON string.
pub(super) fn encode_ecs(
    buf: String,
    route: RouteJson<'_>,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
    original: bool,
) -> String {
    // The frame's text plus the fixed keys, two timestamps and repeated
    // header fields (about 400 bytes): a record in a queue holds what it
    // needs, not twice its frame; only heavy escaping grows it.
    let mut doc = buf;
    doc.reserve(event.text().len() + 448);
    doc.push_str("{\"@timestamp\":\"");
    match event.timestamp {
        Some(t) => push_utc(&mut doc, t.unix_nanos, t.frac_digits.max(3)),
        None => push_utc(&mut doc, event.received_nanos, 6),
    }
    doc.push_str("\",\"message\":");
    write_json_str(&mut doc, event.message());
    push_ecs_header(&mut doc, event);
    if original || captures.is_some_and(|_| !capture_names.is_empty()) {
        push_tail(
            &mut doc,
            route.text,
            capture_names,
            event,
            captures,
            original,
        );
    } else {
        push_shared_tail(&mut doc, route, event);
    }
    doc
}

/// The part of a document after its header: `source`, `event` and
/// `sluice`, closing the document.
fn push_tail(
    doc: &mut String,
    route_json: &str,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
    original: bool,
) {
    if let Some(peer) = event.peer {
        // A connection's documents share their peer: its text is kept per
        // thread for the last peer seen.
        thread_local! {
            static SOURCE: std::cell::RefCell<(Option<std::net::SocketAddr>, String)> =
                const { std::cell::RefCell::new((None, String::new())) };
        }
        SOURCE.with_borrow_mut(|(last, text)| {
            if *last != Some(peer) {
                text.clear();
                text.push_str(",\"source\":{\"address\":\"");
                push_ip(text, peer.ip());
                text.push_str("\",\"port\":");
                push_padded(text, u64::from(peer.port()), 1);
                text.push('}');
                *last = Some(peer);
            }
            doc.push_str(text);
        });
    }
    doc.push_str(",\"event\":{\"created\":\"");
    push_utc(doc, event.received_nanos, 6);
    doc.push('"');
    if original {
        // The frame as text (invalid UTF-8 replaced).
        doc.push_str(",\"original\":");
        write_json_str(doc, event.text());
    }
    doc.push_str("},\"sluice\":{\"route\":");
    doc.push_str(route_json);
    doc.push_str(",\"protocol\":\"");
    doc.push_str(event.protocol.as_str());
    doc.push_str(if event.valid {
        "\",\"valid\":true,\"captures\":"
    } else {
        "\",\"valid\":false,\"captures\":"
    });
    push_captures(doc, capture_names, captures);
    doc.push_str("}}");
}

/// What [`push_tail`] writes from, when no captures or original text
/// take part: the same for every frame of one read on one connection for
/// one route.
#[derive(PartialEq)]
struct TailKey {
    /// The route's [`RouteJson::generation`].
    route: u64,
    peer: Option<std::net::SocketAddr>,
    received_nanos: i64,
    protocol: crate::event::Protocol,
    valid: bool,
}

/// [`push_tail`] without captures or original text, from the text kept
/// per thread for the last read's frames: a document's tail (peer,
/// receive time, route) is written once a read instead of once a frame.
fn push_shared_tail(doc: &mut String, route: RouteJson<'_>, event: &Event) {
    thread_local! {
        static TAIL: std::cell::RefCell<(Option<TailKey>, String)> =
            const { std::cell::RefCell::new((None, String::new())) };
    }
    let key = TailKey {
        route: route.generation,
        peer: event.peer,
        received_nanos: event.received_nanos,
        protocol: event.protocol,
        valid: event.valid,
    };
    TAIL.with_borrow_mut(|(kept, text)| {
        if kept.as_ref() != Some(&key) {
            text.clear();
            push_tail(text, route.text, &[], event, None, false);
            *kept = Some(key);
        }
        doc.push_str(text);
    });
}

/// The ECS fields taken from the syslog header: `log.syslog` (facility,
/// severity, hostname, appname, procid, msgid, structured data), `host`
/// and `process`, each with its leading comma.
pub(super) fn write_ecs_header(doc: &mut String, event: &Event) {
    doc.push_str(",\"log\":{\"syslog\":{");
    let mut first = true;
    let mut sep = |doc: &mut String| {
        if !first {
            doc.push(',');
        }
        first = false;
    };
    // Keys and the facility and severity names are plain ASCII without
    // anything to escape: pushed as they are.
    if let Some(f) = event.facility {
        sep(doc);
        push_code_name(doc, "\"facility\":{\"code\":", f, facility_name(f));
    }
    if let Some(sv) = event.severity {
        sep(doc);
        push_code_name(doc, "\"severity\":{\"code\":", sv, severity_name(sv));
    }
    for (key, value) in [
        ("\"hostname\":", event.hostname()),
        ("\"appname\":", event.appname()),
        ("\"procid\":", event.procid()),
        ("\"msgid\":", event.msgid()),
    ] {
        if let Some(v) = value {
            sep(doc);
            doc.push_str(key);
            write_json_str(doc, v);
        }
    }
    if !event.structured_data.is_empty() {
        sep(doc);
        doc.push_str("\"structured_data\":");
        event.write_structured_data_json(doc);
    }
    doc.push_str("}}");
    if let Some(h) = event.hostname() {
        doc.push_str(",\"host\":{\"hostname\":");
        write_json_str(doc, h);
        doc.push('}');
    }
    let pid = event.procid().and_then(|p| p.parse::<u32>().ok());
    if event.appname().is_some() || pid.is_some() {
        doc.push_str(",\"process\":{");
        if let Some(a) = event.appname() {
            doc.push_str("\"name\":");
            write_json_str(doc, a);
        }
        if let Some(p) = pid {
            if event.appname().is_some() {
                doc.push(',');
            }
            doc.push_str("\"pid\":");
            push_padded(doc, u64::from(p), 1);
        }
        doc.push('}');
    }
}

/// `{open}<code>,"name":"<name>"}`: a facility or severity object, its
/// name plain ASCII without anything to escape.
fn push_code_name(doc: &mut String, open: &str, code: u8, name: &str) {
    doc.push_str(open);
    push_padded(doc, u64::from(code), 1);
    doc.push_str(",\"name\":\"");
    doc.push_str(name);
    doc.push_str("\"}");
}

/// Sets of the header cache ([`HeaderCache`]).
pub(super) const HEADER_SETS: usize = 64;
/// Ways per set: a set holds this many header combinations at once. With
/// two, three combinations that hashed to one set replaced each other on
/// every frame (3 of the e2e benchmark's 16 did: 19 % of its frames
/// missed, by callgrind).
const HEADER_WAYS: usize = 4;
/// Longest header (the four text fields together) kept; longer ones are
/// written each time, so the cache holds at most a few hundred KiB per
/// thread (a few KiB for usual headers).
const MAX_HEADER_TEXT: usize = 512;

/// [`write_ecs_header`] for the header combinations seen last. A stream's
/// headers repeat (a few hosts and apps, one facility): the block is
/// copied instead of escaped and formatted again (15 % of the reader's
/// instructions per frame of the e2e benchmark, by callgrind).
/// [`HEADER_WAYS`]-way set-associative by a hash of the header fields,
/// least recently used replaced; a slot is used only when its fields are
/// equal, so a collision costs a rewrite, never a wrong document.
#[derive(Default)]
pub(super) struct HeaderCache {
    slots: Vec<HeaderSlot>,
    /// Counts lookups: a slot's `used` is the count at its last use.
    clock: u64,
}

#[derive(Default, Clone)]
struct HeaderSlot {
    /// The hash of the fields below (compared first).
    hash: u64,
    facility: Option<u8>,
    severity: Option<u8>,
    fields: [Option<String>; 4],
    /// The block written for these fields; empty while the slot is unused.
    text: String,
    /// [`HeaderCache::clock`] when last used.
    used: u64,
}

impl HeaderSlot {
    fn holds(&self, hash: u64, event: &Event, fields: &[Option<&str>; 4]) -> bool {
        self.hash == hash
            && !self.text.is_empty()
            && self.facility == event.facility
            && self.severity == event.severity
            && self.fields.iter().zip(fields).all(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => same_text(a.as_bytes(), b.as_bytes()),
                (a, b) => a.is_none() && b.is_none(),
            })
    }
}

/// `a == b`, for the short texts of a header without a call to `memcmp`
/// each: up to 16 bytes are compared as two overlapping words (of 8, 4,
/// 2 or 1 bytes) from each end.
#[inline]
fn same_text(a: &[u8], b: &[u8]) -> bool {
    fn ends<const N: usize>(s: &[u8]) -> ([u8; N], [u8; N]) {
        let first = s.first_chunk::<N>().copied().unwrap_or([0; N]);
        let last = s.last_chunk::<N>().copied().unwrap_or([0; N]);
        (first, last)
    }
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1 => a == b,
        2..4 => ends::<2>(a) == ends::<2>(b),
        4..8 => ends::<4>(a) == ends::<4>(b),
        8..=16 => ends::<8>(a) == ends::<8>(b),
        _ => a == b,
    }
}

impl HeaderCache {
    /// No slot yet (they are made at the first push).
    const EMPTY: HeaderCache = HeaderCache {
        slots: Vec::new(),
        clock: 0,
    };

    /// Append `event`'s header block (its fields are `fields`) to `doc`,
    /// from the cache when it holds them. `true` when it did.
    pub(super) fn push(
        &mut self,
        doc: &mut String,
        event: &Event,
        fields: &[Option<&str>; 4],
    ) -> bool {
        let h = header_hash(event, fields);
        let set = (h % HEADER_SETS as u64) as usize;
        if self.slots.is_empty() {
            self.slots = vec![HeaderSlot::default(); HEADER_SETS * HEADER_WAYS];
        }
        self.clock += 1;
        let Some(ways) = self
            .slots
            .get_mut(set * HEADER_WAYS..(set + 1) * HEADER_WAYS)
        else {
            write_ecs_header(doc, event);
            return false;
        };
        let (slot, hit) = match ways.iter().position(|w| w.holds(h, event, fields)) {
            Some(way) => (&mut ways[way], true),
            None => {
                let Some(slot) = ways.iter_mut().min_by_key(|w| w.used) else {
                    write_ecs_header(doc, event);
                    return false;
                };
                slot.hash = h;
                slot.facility = event.facility;
                slot.severity = event.severity;
                for (kept, f) in slot.fields.iter_mut().zip(fields) {
                    match (kept.as_mut(), f) {
                        (Some(k), Some(f)) => {
                            k.clear();
                            k.push_str(f);
                        }
                        (_, f) => *kept = f.map(str::to_owned),
                    }
                }
                slot.text.clear();
                write_ecs_header(&mut slot.text, event);
                (slot, false)
            }
        };
        slot.used = self.clock;
        doc.push_str(&slot.text);
        hit
    }
}

/// The [`HeaderCache`] hash of a header: facility, severity and `fields`.
/// Every byte of a field counts; a field of up to 24 bytes (hosts, apps,
/// pids, msgids) as two or three words read where it lies, mixed inline,
/// a longer one by XXH3.
pub(super) fn header_hash(event: &Event, fields: &[Option<&str>; 4]) -> u64 {
    let mut h = u64::from(event.facility.unwrap_or(u8::MAX)) << 8
        | u64::from(event.severity.unwrap_or(u8::MAX));
    for f in fields {
        h = match f {
            Some(text) => field_hash(h, text.as_bytes()),
            None => h.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
        };
    }
    h
}

/// `h` with field `s` mixed in: the words of [`words`] and the length.
#[inline]
fn field_hash(h: u64, s: &[u8]) -> u64 {
    if s.len() > 24 {
        return xxhash_rust::xxh3::xxh3_64_with_seed(s, h);
    }
    let [first, middle, last] = words(s);
    let len = (s.len() as u64) << 56;
    fold(h ^ first ^ len, fold(middle, last))
}

/// The multiply-fold mix (both halves of the 128-bit product).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p =
        u128::from(a ^ 0xa076_1d64_78bd_642f).wrapping_mul(u128::from(b ^ 0xe703_7ed1_a0b4_28db));
    (p as u64) ^ ((p >> 64) as u64)
}

/// Words that cover every byte of `s` (at most 24 bytes): the first and
/// last 8 and the middle 8 (overlapping), 4 each under 8 bytes, single
/// bytes under 4.
#[inline]
fn words(s: &[u8]) -> [u64; 3] {
    let word8 = |c: Option<&[u8; 8]>| c.map_or(0, |c| u64::from_le_bytes(*c));
    let word4 = |c: Option<&[u8; 4]>| c.map_or(0, |c| u64::from(u32::from_le_bytes(*c)));
    let n = s.len();
    match n {
        8.. => [
            word8(s.first_chunk()),
            word8(s.get(n / 2 - 4..).and_then(<[u8]>::first_chunk)),
            word8(s.last_chunk()),
        ],
        4..8 => [word4(s.first_chunk()), 0, word4(s.last_chunk())],
        _ => {
            let byte = |i: usize| u64::from(s.get(i).copied().unwrap_or(0));
            [byte(0) | byte(1) << 8 | byte(2) << 16, 0, 0]
        }
    }
}

pub(super) fn push_ecs_header(doc: &mut String, event: &Event) {
    let fields = [
        event.hostname(),
        event.appname(),
        event.procid(),
        event.msgid(),
    ];
    let text_len: usize = fields.iter().map(|f| f.map_or(0, str::len)).sum();
    if !event.structured_data.is_empty() || text_len > MAX_HEADER_TEXT {
        return write_ecs_header(doc, event);
    }
    thread_local! {
        static HEADERS: std::cell::RefCell<HeaderCache> =
            const { std::cell::RefCell::new(HeaderCache::EMPTY) };
    }
    HEADERS.with_borrow_mut(|cache| {
        cache.push(doc, event, &fields);
    });
}

#[cfg(test)]
mod tests {
    use super::{field_hash, same_text};

    /// Every byte of a field counts in its hash, at every length around
    /// the word sizes and the switch to XXH3; so does the length.
    #[test]
    fn every_byte_of_a_field_counts_in_its_hash() {
        for len in 0..40usize {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let h = field_hash(7, &a);
            assert_eq!(h, field_hash(7, &a.clone()));
            let mut longer = a.clone();
            longer.push(0);
            assert_ne!(h, field_hash(7, &longer), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 1;
                assert_ne!(h, field_hash(7, &b), "{len} at {at}");
            }
        }
    }

    /// Texts of every length up to 40 against themselves, against texts one
    /// byte longer or shorter, and against each copy with one byte changed
    /// at each position.
    #[test]
    fn same_text_is_equality() {
        for len in 0..40usize {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_text(&a, &a.clone()), "{len}");
            let mut longer = a.clone();
            longer.push(b'z');
            assert!(!same_text(&a, &longer), "{len}");
            assert!(!same_text(&longer, &a), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_text(&a, &b), "{len} at {at}");
            }
        }
    }
}
