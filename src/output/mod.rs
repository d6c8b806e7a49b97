//! Route output: an event (and the captures of the route's pattern) becomes
//! an InfluxDB line-protocol point or a JSON document, encoded once, as the
//! [`Record`] the route's queue holds and the sink writes.
//!
//! A capture that does not parse as its declared type drops that field and is
//! counted as a conversion error; a point left with no field is not emitted
//! and is counted too.

mod captures;
mod document;
mod ecs;
#[cfg(test)]
mod ecs_tail_tests;
mod flume;
mod kafka;
mod line_protocol;
#[cfg(test)]
mod no_pri_tests;

pub use captures::Captures;
pub(crate) use captures::{MAX_GROUPS, Spans};
pub(crate) use kafka::{Origin, kafka_part};

use crate::config::{DocumentFormat, FieldType, OutputConfig};
use crate::event::Event;
use crate::record::Record;
use document::encode_document;
use ecs::encode_ecs;
use line_protocol::encode_point;
pub(crate) use line_protocol::push_point;

/// A document's identity, XXH3-128 of (route, this process's start-up
/// nonce, the frame's number, receive time): unique per (route, frame),
/// across restarts too. Not of the frame's bytes: a sender that logs the
/// same line twice in one read sends two frames alike in every byte, and
/// their documents must not share an `_id` (the second would be answered
/// 409, "already stored", and lost). Kept with the record, so a resent
/// batch (or a spilled one, after a restart) carries the same ids.
/// [`document_key`] with the route's part already hashed: `seed` is
/// XXH3-64 of the route's name.
fn document_key_seeded(seed: u64, event: &Event) -> [u8; 16] {
    key_of_context(
        seed,
        // A frame another process received (a Kafka envelope) keeps the
        // identity that process gave it.
        event.id_nonce.unwrap_or_else(nonce),
        event.frame_number,
        event.received_nanos,
    )
}

/// [`document_key`] from its inputs, the route's name hashed each time:
/// what the seed of [`RouteText`] must give.
#[cfg(test)]
fn document_key_of(
    route_name: &str,
    nonce: u64,
    frame_number: u64,
    received_nanos: i64,
) -> [u8; 16] {
    let seed = xxhash_rust::xxh3::xxh3_64(route_name.as_bytes());
    key_of_context(seed, nonce, frame_number, received_nanos)
}

fn key_of_context(seed: u64, nonce: u64, frame_number: u64, received_nanos: i64) -> [u8; 16] {
    let mut context = [0u8; 24];
    context[0..8].copy_from_slice(&nonce.to_le_bytes());
    context[8..16].copy_from_slice(&frame_number.to_le_bytes());
    context[16..24].copy_from_slice(&received_nanos.to_le_bytes());
    xxhash_rust::xxh3::xxh3_128_with_seed(&context, seed).to_le_bytes()
}

/// A document route's name, the name as a JSON string and the seed of its
/// document keys (XXH3-64 of the name): what every document of the route
/// shares, made once instead of per document (the escaping alone cost
/// more than the rest of a short name's share of a document). A reader's
/// pipeline keeps one per route; [`encode`] keeps the last one per thread.
pub(crate) struct RouteText {
    name: String,
    json: String,
    seed: u64,
    /// Unique to this text among every [`RouteText`] of the process
    /// (never 0): text kept beside it (a document's shared tail) is the
    /// route's while the generation matches, without comparing names.
    generation: u64,
}

impl RouteText {
    pub(crate) fn new(route_name: &str) -> RouteText {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut json = String::with_capacity(route_name.len() + 2);
        crate::text::write_json_str(&mut json, route_name);
        RouteText {
            name: route_name.to_owned(),
            json,
            seed: xxhash_rust::xxh3::xxh3_64(route_name.as_bytes()),
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The identity of `event`'s document of this route (see
    /// [`document_key_seeded`]).
    pub(crate) fn key(&self, event: &Event) -> [u8; 16] {
        document_key_seeded(self.seed, event)
    }

    fn json(&self) -> RouteJson<'_> {
        RouteJson {
            text: &self.json,
            generation: self.generation,
        }
    }
}

/// A route's name as a JSON string, and [`RouteText::generation`] of the
/// text it was read from.
#[derive(Clone, Copy)]
pub(super) struct RouteJson<'a> {
    pub(super) text: &'a str,
    pub(super) generation: u64,
}

thread_local! {
    /// The last route [`with_route_text`] was asked for on this thread.
    static ROUTE_TEXT: std::cell::RefCell<Option<RouteText>> =
        const { std::cell::RefCell::new(None) };
}

/// `f` of `route_name`'s [`RouteText`], the thread's last one when it is
/// of the same name: documents come in runs of one route. Compared by
/// content, so a route of a reloaded config never takes an old route's
/// text.
fn with_route_text<R>(route_name: &str, f: impl FnOnce(&RouteText) -> R) -> R {
    ROUTE_TEXT.with_borrow_mut(|kept| match kept {
        Some(r) if r.name == route_name => f(r),
        _ => f(kept.insert(RouteText::new(route_name))),
    })
}

/// This process's start-up nonce: random, one per process.
pub(crate) fn nonce() -> u64 {
    static NONCE: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        use std::hash::{BuildHasher, Hasher};
        // std's hasher keys come from the OS's random source.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.finish()
    });
    *NONCE
}

/// Why an output could not be (fully) produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversionError {
    /// A capture did not parse as the field's declared type; the field was dropped.
    BadValue {
        field: String,
        kind: FieldType,
        value: String,
    },
    /// No field was left: the point was not emitted.
    NoFields,
    /// A value of a templated measurement (`jvm_{pool}`) was missing or
    /// empty: the point was not emitted.
    NoMeasurement { source: String },
    /// `on_conversion_error = "drop_point"` and a field was bad: the point
    /// was not emitted.
    DroppedPoint,
}

impl ConversionError {
    pub fn reason(&self) -> &'static str {
        match self {
            ConversionError::BadValue { .. } => "bad_value",
            ConversionError::NoFields => "no_fields",
            ConversionError::NoMeasurement { .. } => "no_measurement",
            ConversionError::DroppedPoint => "dropped_point",
        }
    }
}

impl std::fmt::Display for ConversionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConversionError::BadValue { field, kind, value } => {
                let shown: String = value.chars().take(64).collect();
                write!(
                    f,
                    "field {field:?}: {shown:?} is not a valid {}",
                    kind.as_str()
                )
            }
            ConversionError::NoFields => write!(f, "no field left: point not emitted"),
            ConversionError::NoMeasurement { source } => write!(
                f,
                "measurement value {source} missing or empty: point not emitted"
            ),
            ConversionError::DroppedPoint => write!(
                f,
                "a field was bad and on_conversion_error = \"drop_point\": point not emitted"
            ),
        }
    }
}

/// Encode `event` for a route, into `buf` (an empty buffer to reuse, or
/// `String::new()`). Conversion errors are appended to `errors`; `None`
/// means nothing is emitted.
pub fn encode(
    buf: String,
    output: &OutputConfig,
    route_name: &str,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
    errors: &mut Vec<ConversionError>,
) -> Option<Record> {
    let encoded = encode_text(
        buf,
        output,
        route_name,
        capture_names,
        event,
        captures,
        errors,
    )?;
    Some(Record {
        payload: encoded.text.into(),
        time_nanos: encoded.time_nanos,
        key: encoded.key,
        kafka: None,
        ack: event.ack.clone(),
    })
}

/// What [`encode_text`] makes of an event: the text, and what a record of
/// it carries besides.
pub(crate) struct Encoded {
    pub(crate) text: String,
    /// Event time (or receive time), ns since the epoch.
    pub(crate) time_nanos: i64,
    /// A document's identity (see [`Record::key`]).
    pub(crate) key: Option<[u8; 16]>,
}

/// [`encode`]'s text, time and key, for a caller that puts the text in a
/// buffer of its own (a reader's slab: see [`crate::record::Payload`]);
/// `None` (and `buf` dropped) when nothing is emitted.
pub(crate) fn encode_text(
    buf: String,
    output: &OutputConfig,
    route_name: &str,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
    errors: &mut Vec<ConversionError>,
) -> Option<Encoded> {
    let time = record_time(event);
    let text = match output {
        OutputConfig::Metric(m) => encode_point(buf, m, event, captures, time, errors)?,
        OutputConfig::Document(format) => with_route_text(route_name, |route| {
            encode_document_into(buf, format, route, capture_names, event, captures)
        }),
        // The frame travels in the record's Kafka part ([`kafka_part`]).
        OutputConfig::Raw => buf,
    };
    let key = matches!(output, OutputConfig::Document(_)).then(|| document_key(route_name, event));
    Some(Encoded {
        text,
        time_nanos: time,
        key,
    })
}

/// A record's time: the event's, else its receive time (ns since the
/// epoch).
pub(crate) fn record_time(event: &Event) -> i64 {
    event
        .timestamp
        .map_or(event.received_nanos, |t| t.unix_nanos)
}

/// A document's identity (see [`Record::key`]).
pub(crate) fn document_key(route_name: &str, event: &Event) -> [u8; 16] {
    with_route_text(route_name, |route| route.key(event))
}

/// The document of `event` in `format`, appended to `buf` (which may hold
/// other records before it: a reader's slab).
pub(crate) fn encode_document_into(
    buf: String,
    format: &DocumentFormat,
    route: &RouteText,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
) -> String {
    match format {
        DocumentFormat::Canonical => {
            encode_document(buf, &route.name, capture_names, event, captures)
        }
        DocumentFormat::Ecs { original } => {
            encode_ecs(buf, route.json(), capture_names, event, captures, *original)
        }
        DocumentFormat::Flume { keep } => {
            let mut doc = buf;
            flume::encode(&mut doc, event, *keep, capture_names, captures);
            doc
        }
    }
}

/// The named groups of a pattern, as (group index, name).
pub(crate) fn capture_names(re: &regex::Regex) -> Vec<(usize, String)> {
    re.capture_names()
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (i, n.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests;
