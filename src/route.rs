//! Route output: an event (and the captures of the route's pattern) becomes
//! an InfluxDB line-protocol point or a JSON document, encoded once, as the
//! [`Record`] the route's queue holds and the sink writes.
//!
//! A capture that does not parse as its declared type drops that field and is
//! counted as a conversion error; a point left with no field is not emitted
//! and is counted too.

use std::fmt::Write as _;

mod flume;

use crate::config::line_protocol::{Element, push_escaped};
use crate::router::Captures;

use crate::config::{
    DocumentFormat, FieldType, HeaderField, MeasurementPart, MetricConfig, OnConversionError,
    OutputConfig, Source, UnsignedAs, facility_name, severity_name,
};
use crate::event::Event;
use crate::text::{Timestamp, push_padded, write_json_str, write_rfc3339};

/// One encoded output: a line-protocol line (no trailing newline) or a JSON
/// document (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub payload: String,
    /// Event time (or receive time), ns since the epoch.
    pub time_nanos: i64,
    /// For documents: a stable identity of (route, frame, peer, receive
    /// time), so a document sent twice can be recognised (Elasticsearch `_id`).
    pub key: Option<[u8; 16]>,
}

/// A document's identity, XXH3-128 of (route, this process's start-up
/// nonce, the frame's number, receive time): unique per (route, frame),
/// across restarts too. Not of the frame's bytes: a sender that logs the
/// same line twice in one read sends two frames alike in every byte, and
/// their documents must not share an `_id` (the second would be answered
/// 409, "already stored", and lost). Kept with the record, so a resent
/// batch (or a spilled one, after a restart) carries the same ids.
fn document_key(route_name: &str, event: &Event) -> [u8; 16] {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_128_with_seed};
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
    let mut context = [0u8; 24];
    context[0..8].copy_from_slice(&NONCE.to_le_bytes());
    context[8..16].copy_from_slice(&event.frame_number.to_le_bytes());
    context[16..24].copy_from_slice(&event.received_nanos.to_le_bytes());
    xxh3_128_with_seed(&context, xxh3_64(route_name.as_bytes())).to_le_bytes()
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
    let time = event
        .timestamp
        .map_or(event.received_nanos, |t| t.unix_nanos);
    let payload = match output {
        OutputConfig::Metric(m) => encode_point(buf, m, event, captures, time, errors)?,
        OutputConfig::Document(DocumentFormat::Canonical) => {
            encode_document(buf, route_name, capture_names, event, captures)
        }
        OutputConfig::Document(DocumentFormat::Ecs { original }) => {
            encode_ecs(buf, route_name, capture_names, event, captures, *original)
        }
        OutputConfig::Document(DocumentFormat::Flume { keep }) => {
            let mut doc = buf;
            flume::encode(&mut doc, event, *keep, capture_names, captures);
            doc
        }
    };
    let key = matches!(output, OutputConfig::Document(_)).then(|| document_key(route_name, event));
    Some(Record {
        payload,
        time_nanos: time,
        key,
    })
}

// ------------------------------------------------------------ line protocol

pub use crate::config::{line_protocol_key, line_protocol_measurement};

/// Append a string field value, quoted: `"` and `\` escaped.
fn push_string_field(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'"' || b == b'\\' {
            out.push_str(&s[start..i]);
            out.push('\\');
            start = i;
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Append a typed field value; false if `raw` does not parse as `kind`.
fn push_field_value(out: &mut String, raw: &str, kind: FieldType, unsigned: UnsignedAs) -> bool {
    let raw_t = raw.trim();
    match kind {
        FieldType::Int => match raw_t.parse::<i64>() {
            // Already in the form InfluxDB prints: copy it.
            Ok(_) if canonical_int(raw_t) => {
                out.push_str(raw_t);
                out.push('i');
                true
            }
            Ok(v) => {
                let _ = write!(out, "{v}i");
                true
            }
            Err(_) => false,
        },
        FieldType::Uint => match (raw_t.parse::<u64>(), unsigned) {
            (Ok(v), UnsignedAs::Unsigned) => {
                let _ = write!(out, "{v}u");
                true
            }
            (Ok(v), UnsignedAs::Integer) => match i64::try_from(v) {
                Ok(v) => {
                    let _ = write!(out, "{v}i");
                    true
                }
                Err(_) => false,
            },
            (Ok(v), UnsignedAs::Float) => {
                let _ = write!(out, "{}", v as f64);
                true
            }
            (Err(_), _) => false,
        },
        // Plain decimals (no exponent, so always finite) are copied as sent.
        FieldType::Float if plain_decimal(raw_t) => {
            out.push_str(raw_t);
            true
        }
        FieldType::Float => match raw_t.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
                true
            }
            _ => false,
        },
        FieldType::Bool => {
            let is = |words: &[&str]| words.iter().any(|w| raw_t.eq_ignore_ascii_case(w));
            let v = if is(&["true", "t", "yes", "y", "on", "1"]) {
                true
            } else if is(&["false", "f", "no", "n", "off", "0"]) {
                false
            } else {
                return false;
            };
            out.push_str(if v { "true" } else { "false" });
            true
        }
        FieldType::String => {
            push_string_field(out, raw);
            true
        }
        FieldType::Duration | FieldType::Bytes => {
            let parsed = if kind == FieldType::Duration {
                crate::grok::parse_duration(raw_t)
            } else {
                crate::grok::parse_bytes(raw_t)
            };
            match parsed {
                Some(v) => {
                    let _ = write!(out, "{v}i");
                    true
                }
                None => false,
            }
        }
    }
}

/// Append an integer in decimal (no formatter machinery: this is per point).
fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_padded(out, v.unsigned_abs(), 1);
}

/// `-?[1-9][0-9]*` or `0`: an integer as InfluxDB writes it.
fn canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s).as_bytes();
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
}

/// `-?[0-9]+(\.[0-9]+)?`, short enough to be a finite f64.
fn plain_decimal(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, "1"));
    body.len() < 300
        && !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// `key=number` pairs of a status line, in order.
fn key_values(message: &str) -> impl Iterator<Item = (&str, &str)> {
    message.split_ascii_whitespace().filter_map(|token| {
        let (k, v) = token.split_once('=')?;
        let v = v.trim_end_matches([',', ';']);
        let key_ok = k
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        let value_ok = v.parse::<f64>().is_ok_and(f64::is_finite)
            && v.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        (key_ok && value_ok).then_some((k, v))
    })
}

/// The value of `source` for this event, if it has one.
fn value_of<'a>(
    source: &'a Source,
    event: &'a Event,
    captures: Option<&Captures<'a>>,
) -> Option<&'a str> {
    match source {
        Source::Capture { index, .. } => captures.and_then(|c| c.get(*index)),
        Source::Sd { id, param } => event.sd_param(id, param),
        Source::Header(h) => match h {
            HeaderField::Host => event.hostname(),
            HeaderField::App => event.appname(),
            HeaderField::Procid => event.procid(),
            HeaderField::Msgid => event.msgid(),
            HeaderField::Facility => event.facility.map(facility_name),
            HeaderField::Severity => event.severity.map(severity_name),
        },
        Source::Static(v) => Some(v),
    }
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Capture { name, .. } => format!("capture {name:?}"),
        Source::Sd { id, param } => format!("sd.{id}.{param}"),
        Source::Header(h) => format!("header {h:?}").to_lowercase(),
        Source::Static(v) => format!("{v:?}"),
    }
}

fn encode_point(
    buf: String,
    m: &MetricConfig,
    event: &Event,
    captures: Option<&Captures<'_>>,
    time: i64,
    errors: &mut Vec<ConversionError>,
) -> Option<String> {
    let mut line = buf;
    line.reserve(256);
    for part in &m.measurement_parts {
        match part {
            MeasurementPart::Text(t) => line.push_str(t),
            MeasurementPart::Value(source) => match value_of(source, event, captures) {
                Some(v) if !v.is_empty() => push_escaped(&mut line, v, Element::Measurement),
                _ => {
                    errors.push(ConversionError::NoMeasurement {
                        source: source_name(source),
                    });
                    return None;
                }
            },
        }
    }

    if line.starts_with('#') {
        // Line protocol reads a line starting with '#' as a comment: InfluxDB
        // would answer 204 and store nothing.
        errors.push(ConversionError::NoMeasurement {
            source: "a measurement starting with '#' (read as a comment)".to_owned(),
        });
        return None;
    }
    // Tags come sorted from the config; an empty value (or one that is only
    // trailing backslashes) is no tag.
    for t in &m.tags {
        let Some(v) = value_of(&t.source, event, captures) else {
            continue;
        };
        if v.trim_end_matches('\\').is_empty() || t.key.is_empty() {
            continue;
        }
        line.push(',');
        line.push_str(&t.key);
        line.push('=');
        push_escaped(&mut line, v, Element::Key);
    }

    let mut n_fields = 0;
    let mut bad = false;
    // `key`: the name escaped already (a configured field), or None.
    let mut push_field = |line: &mut String, name: &str, key: Option<&str>, raw: &str, kind| {
        let mark = line.len();
        line.push(if n_fields == 0 { ' ' } else { ',' });
        match key {
            Some(key) => line.push_str(key),
            None => push_escaped(line, name, Element::Key),
        }
        line.push('=');
        if push_field_value(line, raw, kind, m.unsigned) {
            n_fields += 1;
        } else {
            line.truncate(mark);
            bad = true;
            errors.push(ConversionError::BadValue {
                field: name.to_owned(),
                kind,
                value: raw.to_owned(),
            });
        }
    };
    for f in &m.fields {
        // An absent or empty value is no field, and no error.
        match value_of(&f.source, event, captures) {
            Some(raw) if !raw.is_empty() => {
                push_field(&mut line, &f.name, Some(&f.key), raw, f.kind)
            }
            _ => {}
        }
    }
    if m.key_values {
        for (k, v) in key_values(event.message()) {
            if m.fields.iter().any(|f| f.name == k) {
                continue;
            }
            // Always float: a field's type is fixed per series in InfluxDB,
            // and `latency=1` then `latency=1.5` must not conflict.
            push_field(&mut line, k, None, v, FieldType::Float);
        }
    }
    if bad && m.on_conversion_error == OnConversionError::DropPoint {
        errors.push(ConversionError::DroppedPoint);
        return None;
    }
    if n_fields == 0 {
        errors.push(ConversionError::NoFields);
        return None;
    }
    line.push(' ');
    let per_unit = m.precision.nanos();
    push_i64(
        &mut line,
        if per_unit == 1 {
            time
        } else {
            time.div_euclid(per_unit)
        },
    );
    Some(line)
}

// ---------------------------------------------------------------- documents

fn encode_document(
    buf: String,
    route_name: &str,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
) -> String {
    let mut doc = buf;
    doc.reserve(event.text().len() * 2 + 256);
    doc.push('{');
    event.write_canonical_fields(&mut doc);
    doc.push_str(",\"received_at\":\"");
    write_rfc3339(
        &mut doc,
        &Timestamp {
            unix_nanos: event.received_nanos,
            offset_secs: 0,
            frac_digits: 6,
        },
    );
    doc.push_str("\",\"peer\":");
    match event.peer {
        Some(p) => {
            let _ = write!(doc, "\"{p}\"");
        }
        None => doc.push_str("null"),
    }
    doc.push_str(",\"route\":");
    write_json_str(&mut doc, route_name);
    doc.push_str(",\"captures\":");
    push_captures(&mut doc, capture_names, captures);
    doc.push('}');
    doc
}

/// UTC RFC 3339 of an instant, with `digits` fractional digits.
fn push_utc(out: &mut String, unix_nanos: i64, digits: u8) {
    write_rfc3339(
        out,
        &Timestamp {
            unix_nanos,
            offset_secs: 0,
            frac_digits: digits,
        },
    );
}

/// An IP address as text: IPv4 by hand (every document from a network
/// peer carries one), IPv6 through its `Display`.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_padded(out, u64::from(octet), 1);
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `"name":{"k":"v",...}` of a route's captures; nothing when there are none.
fn push_captures(
    out: &mut String,
    capture_names: &[(usize, String)],
    captures: Option<&Captures<'_>>,
) {
    out.push('{');
    if let Some(c) = captures {
        let mut first = true;
        for (index, name) in capture_names {
            let Some(value) = c.get(*index) else {
                continue;
            };
            if !first {
                out.push(',');
            }
            first = false;
            write_json_str(out, name);
            out.push(':');
            write_json_str(out, value);
        }
    }
    out.push('}');
}

/// Elastic Common Schema (8.x field names): `@timestamp` (the event's time,
/// else the receive time, in UTC), `message`, `log.syslog.*` (facility and
/// severity code and name, hostname, appname, procid, msgid,
/// structured_data), `host.hostname`, `process.name` / `process.pid`,
/// `source.address`, `event.created` (and `event.original` when asked),
/// and Sluice's own `sluice.route`,
/// `sluice.valid`, `sluice.captures`.
fn encode_ecs(
    buf: String,
    route_name: &str,
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
    push_utc(&mut doc, event.received_nanos, 6);
    doc.push('"');
    if original {
        // The frame as text (invalid UTF-8 replaced).
        doc.push_str(",\"original\":");
        write_json_str(&mut doc, event.text());
    }
    doc.push_str("},\"sluice\":{\"route\":");
    write_json_str(&mut doc, route_name);
    doc.push_str(",\"protocol\":\"");
    doc.push_str(event.protocol.as_str());
    doc.push_str(if event.valid {
        "\",\"valid\":true,\"captures\":"
    } else {
        "\",\"valid\":false,\"captures\":"
    });
    push_captures(&mut doc, capture_names, captures);
    doc.push_str("}}");
    doc
}

/// The ECS fields taken from the syslog header: `log.syslog` (facility,
/// severity, hostname, appname, procid, msgid, structured data), `host`
/// and `process`, each with its leading comma.
fn write_ecs_header(doc: &mut String, event: &Event) {
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
        doc.push_str("\"facility\":{\"code\":");
        push_padded(doc, u64::from(f), 1);
        doc.push_str(",\"name\":\"");
        doc.push_str(facility_name(f));
        doc.push_str("\"}");
    }
    if let Some(sv) = event.severity {
        sep(doc);
        doc.push_str("\"severity\":{\"code\":");
        push_padded(doc, u64::from(sv), 1);
        doc.push_str(",\"name\":\"");
        doc.push_str(severity_name(sv));
        doc.push_str("\"}");
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

/// Sets of the header cache ([`HeaderCache`]).
const HEADER_SETS: usize = 64;
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
struct HeaderCache {
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
            && self
                .fields
                .iter()
                .zip(fields)
                .all(|(a, b)| a.as_deref() == *b)
    }
}

impl HeaderCache {
    /// Append `event`'s header block (its fields are `fields`) to `doc`,
    /// from the cache when it holds them. `true` when it did.
    fn push(&mut self, doc: &mut String, event: &Event, fields: &[Option<&str>; 4]) -> bool {
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
fn header_hash(event: &Event, fields: &[Option<&str>; 4]) -> u64 {
    // Each field hashed where it lies (no key is assembled: loads of bytes
    // just stored one at a time stall).
    let mut h = u64::from(event.facility.unwrap_or(u8::MAX)) << 8
        | u64::from(event.severity.unwrap_or(u8::MAX));
    for f in fields {
        h = match f {
            Some(text) => xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), h),
            None => h.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
        };
    }
    h
}

fn push_ecs_header(doc: &mut String, event: &Event) {
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
            std::cell::RefCell::new(HeaderCache::default());
    }
    HEADERS.with_borrow_mut(|cache| {
        cache.push(doc, event, &fields);
    });
}

/// The named groups of a pattern, as (group index, name).
pub fn capture_names(re: &regex::Regex) -> Vec<(usize, String)> {
    re.capture_names()
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (i, n.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeOptions, decode};
    use bytes::Bytes;
    use regex::Regex;

    fn ev(s: &str) -> Event {
        decode(
            Bytes::copy_from_slice(s.as_bytes()),
            None,
            7,
            &DecodeOptions::default(),
        )
    }

    /// One route from TOML (`pattern` and a `[routes.metric]` body), through
    /// config validation and grok expansion, as the service builds it.
    fn route(pattern: &str, metric: &str) -> (OutputConfig, Option<Regex>) {
        let text = format!(
            "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n[[routes]]\nname = \"r\"\nsink = \"f\"\n{}[routes.metric]\n{metric}\n[default_route]\nsink = \"f\"\ndocument = {{}}\n",
            if pattern.is_empty() {
                String::new()
            } else {
                format!("pattern = '{pattern}'\n")
            }
        );
        let c = crate::config::Config::from_toml(&text, "t").unwrap_or_else(|e| panic!("{e}"));
        let r = &c.routes[0];
        (r.output.clone(), r.pattern.clone())
    }

    /// The line a route writes for `frame`, and its conversion errors.
    fn point(pattern: &str, metric: &str, frame: &str) -> (Option<String>, Vec<ConversionError>) {
        let (output, re) = route(pattern, metric);
        let e = ev(frame);
        let caps = re
            .as_ref()
            .and_then(|re| re.captures(e.message()))
            .map(Captures::from);
        if re.is_some() {
            assert!(caps.is_some(), "pattern does not match {frame:?}");
        }
        let mut errors = Vec::new();
        let r = encode(
            String::new(),
            &output,
            "r",
            &[],
            &e,
            caps.as_ref(),
            &mut errors,
        );
        (r.map(|r| r.payload), errors)
    }

    #[test]
    fn typed_fields_sorted_tags_and_escaping() {
        let (line, errors) = point(
            r"pool=(?P<pool>old gen) used=(?P<used>\d+) ratio=(?P<ratio>\S+) ok=(?P<ok>\S+)",
            "measurement = \"my meas,x\"\ntags = [\"pool\"]\nfields = { used = \"int\", ratio = \"float\", ok = \"bool\", \"p=s\" = { from = \"pool\", type = \"string\" } }",
            "<14>1 2026-01-01T00:00:00Z web\\ app - - - pool=old gen used=12 ratio=0.5 ok=true",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            line.unwrap(),
            // host "web\\" loses its trailing backslash (see push_escaped).
            "my\\ meas\\,x,app=app,host=web,pool=old\\ gen ok=true,p\\=s=\"old gen\",ratio=0.5,used=12i 1767225600000000000"
        );
    }

    #[test]
    fn mdc_structured_data_feeds_tags_and_fields() {
        let (line, errors) = point(
            "",
            "measurement = \"orders\"\ntags = [\"sd.mdc@18060.user\", \"sd.mdc@18060.absent\", \"sd.other@1.user\"]\nfields = { latency = { from = \"sd.mdc@18060.ms\", type = \"int\" } }",
            r#"<166>1 2026-11-24T11:34:54.606Z vm orders 1 - [mdc@18060 requestId="r-42" user="alice \"a\"" ms="17"] Order created"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            line.unwrap(),
            "orders,app=orders,host=vm,user=alice\\ \"a\" latency=17i 1795520094606000000"
        );
    }

    #[test]
    fn header_fields_static_values_renames_and_templated_measurement() {
        let (line, errors) = point(
            r"pool=(?P<pool>\w+) used=(?P<used>\d+)",
            "measurement = \"jvm_{pool}\"\nhost_tag = false\ntags = [\"severity\", { name = \"service\", from = \"app\" }, { name = \"env\", value = \"prod\" }, \"facility\", { name = \"p\", from = \"procid\" }]\nfields = { used = \"int\", one = { value = 1, type = \"int\" } }",
            "<190>1 2026-01-01T00:00:00Z web billing 4711 - - pool=eden used=12",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            line.unwrap(),
            "jvm_eden,app=billing,env=prod,facility=local7,p=4711,service=billing,severity=info one=1i,used=12i 1767225600000000000"
        );
    }

    #[test]
    fn grok_typed_captures_become_fields_with_human_units() {
        let (line, errors) = point(
            "%{WORD:pool} GC pause=%{NOTSPACE:pause:duration} freed=%{NOTSPACE:freed:bytes} heap=%{NUMBER:heap:float}",
            "measurement = \"gc\"\ntags = [\"pool\"]\napp_tag = false\nhost_tag = false",
            "<14>1 2026-01-01T00:00:00Z h jvm - - - old GC pause=1.5ms freed=2MiB heap=0.75",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            line.unwrap(),
            "gc,pool=old pause=1500000i,freed=2097152i,heap=0.75 1767225600000000000"
        );
    }

    #[test]
    fn bad_value_drops_field_and_no_fields_drops_point() {
        let metric = "measurement = \"m\"\nfields = { used = \"int\" }";
        let (line, errors) = point(r"used=(?P<used>\S+)", metric, "<14>1 - h a - - - used=abc");
        assert_eq!(line, None);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].reason(), "bad_value");
        assert_eq!(errors[1], ConversionError::NoFields);
        // Another field survives a bad one by default...
        let metric = "measurement = \"m\"\nfields = { used = \"int\", max = \"int\" }";
        let (line, errors) = point(
            r"used=(?P<used>\S+) max=(?P<max>\S+)",
            metric,
            "<14>1 - h a - - - used=abc max=5",
        );
        assert_eq!(line.unwrap(), "m,app=a,host=h max=5i 7");
        assert_eq!(errors.len(), 1);
        // ...unless the route says the point goes with it.
        let metric = format!("{metric}\non_conversion_error = \"drop_point\"");
        let (line, errors) = point(
            r"used=(?P<used>\S+) max=(?P<max>\S+)",
            &metric,
            "<14>1 - h a - - - used=abc max=5",
        );
        assert_eq!(line, None);
        assert_eq!(
            errors.iter().map(|e| e.reason()).collect::<Vec<_>>(),
            ["bad_value", "dropped_point"]
        );
        // An empty capture is no field and no error.
        let metric = "measurement = \"m\"\nfields = { used = \"int\", max = \"int\" }";
        let (line, errors) = point(
            r"used=(?P<used>\d*) max=(?P<max>\S+)",
            metric,
            "<14>1 - h a - - - used= max=5",
        );
        assert_eq!(line.unwrap(), "m,app=a,host=h max=5i 7");
        assert!(errors.is_empty());
        // A measurement starting with '#' would be read as a comment.
        let (line, errors) = point(
            r"m=(?P<m>\S+) used=(?P<used>\d+)",
            "measurement = \"{m}\"\nfields = { used = \"int\" }",
            "<14>1 - h a - - - m=#x used=5",
        );
        assert_eq!(line, None);
        assert_eq!(errors[0].reason(), "no_measurement");
        // A templated measurement without its value is no point.
        let (line, errors) = point(
            r"(?:pool=(?P<pool>\w+) )?used=(?P<used>\d+)",
            "measurement = \"jvm_{pool}\"\nfields = { used = \"int\" }",
            "<14>1 - h a - - - used=5",
        );
        assert_eq!(line, None);
        assert_eq!(errors[0].reason(), "no_measurement");
    }

    #[test]
    fn key_values_are_floats_and_time_falls_back_to_receive_time() {
        let (line, _) = point(
            "",
            "measurement = \"my meas,x\"\nkey_values = true\nhost_tag = false\napp_tag = false",
            "<14>status route=/x code=200 latency_ms=1.5 bogus=abc",
        );
        assert_eq!(line.unwrap(), "my\\ meas\\,x code=200,latency_ms=1.5 7");
    }

    #[test]
    fn document_has_canonical_fields_and_captures() {
        let e = ev("<14>1 - h a - - - used=12");
        let re = Regex::new(r"used=(?P<used>\d+)").unwrap();
        let caps = Captures::from(re.captures(e.message()).unwrap());
        let r = encode(
            String::new(),
            &OutputConfig::Document(DocumentFormat::Canonical),
            "docs",
            &capture_names(&re),
            &e,
            Some(&caps),
            &mut Vec::new(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(v["hostname"], "h");
        assert_eq!(v["route"], "docs");
        assert_eq!(v["captures"]["used"], "12");
        assert_eq!(v["valid"], true);
    }

    fn document(format: DocumentFormat, frame: &str, pattern: Option<&str>) -> serde_json::Value {
        let e = decode(
            Bytes::copy_from_slice(frame.as_bytes()),
            Some("10.0.0.5:50122".parse().unwrap()),
            1_795_520_100_000_000_000,
            &DecodeOptions::default(),
        );
        let re = pattern.map(|p| Regex::new(p).unwrap());
        let caps = re
            .as_ref()
            .and_then(|re| re.captures(e.message()))
            .map(Captures::from);
        let names = re.as_ref().map(capture_names).unwrap_or_default();
        let r = encode(
            String::new(),
            &OutputConfig::Document(format),
            "docs",
            &names,
            &e,
            caps.as_ref(),
            &mut Vec::new(),
        )
        .unwrap();
        serde_json::from_str(&r.payload).unwrap()
    }

    /// A document's key is the same for the same (route, frame number,
    /// receive time) and differs when any one of them differs, even for
    /// frames alike in every byte from the same peer.
    #[test]
    fn document_keys_identify_route_frame_number_and_receive_time() {
        let event = |number: u64, nanos: i64| {
            let mut e = decode(
                Bytes::from_static(b"<14>1 - h a - - - x=1"),
                Some("10.0.0.1:514".parse().unwrap()),
                nanos,
                &DecodeOptions::default(),
            );
            e.frame_number = number;
            e
        };
        let key = document_key("r", &event(1, 7));
        assert_eq!(key, document_key("r", &event(1, 7)));
        let others = [
            document_key("s", &event(1, 7)),
            document_key("r", &event(2, 7)),
            document_key("r", &event(1, 8)),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(key, *other, "case {i}");
            for later in &others[i + 1..] {
                assert_ne!(other, later);
            }
        }
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "10.0.0.5",
            "127.0.0.1",
            "255.255.255.255",
            "192.168.100.9",
            "::1",
            "2001:db8::17",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    #[test]
    fn ecs_documents() {
        let v = document(
            DocumentFormat::Ecs { original: false },
            r#"<134>1 2026-11-23T10:00:00.123+09:00 web01 billing 4711 GC [mdc@18060 user="kim"] heap_used=1234"#,
            Some(r"heap_used=(?P<used>\d+)"),
        );
        assert_eq!(
            v,
            serde_json::json!({
                "@timestamp": "2026-11-23T01:00:00.123Z",
                "message": "heap_used=1234",
                "log": {"syslog": {
                    "facility": {"code": 16, "name": "local0"},
                    "severity": {"code": 6, "name": "info"},
                    "hostname": "web01", "appname": "billing", "procid": "4711", "msgid": "GC",
                    "structured_data": {"mdc@18060": {"user": "kim"}}
                }},
                "host": {"hostname": "web01"},
                "process": {"name": "billing", "pid": 4711},
                "source": {"address": "10.0.0.5", "port": 50122},
                "event": {"created": "2026-11-24T11:35:00.000000Z"},
                "sluice": {"route": "docs", "protocol": "rfc5424", "valid": true, "captures": {"used": "1234"}}
            })
        );
        // No header, no time: the receive time; no host/process objects.
        let v = document(DocumentFormat::Ecs { original: false }, "<14>hello", None);
        assert_eq!(v["@timestamp"], "2026-11-24T11:35:00.000000Z");
        assert!(v.get("host").is_none() && v.get("process").is_none());
        assert!(v["event"].get("original").is_none());
        let v = document(DocumentFormat::Ecs { original: true }, "<14>hello", None);
        assert_eq!(v["event"]["original"], "<14>hello");
    }

    /// The peer's text is kept for the last peer: documents from
    /// alternating peers each carry their own.
    /// The cached header block is byte for byte what writing it gives, over
    /// more combinations than the cache has slots (so sets fill and ways
    /// are replaced), absent fields, fields that only differ in where one
    /// ends and the next begins, and structured data (not cached).
    #[test]
    fn cached_ecs_headers_equal_written_ones() {
        let mut frames = Vec::new();
        for i in 0..200 {
            frames.push(format!(
                "<{}>1 - host{} app{} {} msg{} - m",
                8 + i % 3,
                i % 50,
                i % 4,
                1000 + i % 5,
                i % 2
            ));
        }
        frames.extend([
            "<14>1 - ab c - - - m".to_owned(),
            "<14>1 - a bc - - - m".to_owned(),
            "<14>1 - - - - - - m".to_owned(),
            "<14>1 - h\\\"q app - - - m".to_owned(),
            "<14>1 - h app 12 ID [x@1 k=\"v\"] m".to_owned(),
            "<14>Nov 24 11:34:54 web01 sshd[42]: m".to_owned(),
            "garbage".to_owned(),
        ]);
        for round in 0..3 {
            // Each round another order (207 frames: 1, 2 and 5 are coprime).
            for n in 0..frames.len() {
                let f = &frames[(n * [1, 2, 5][round]) % frames.len()];
                let e = ev(f);
                let (mut cached, mut written) = (String::new(), String::new());
                push_ecs_header(&mut cached, &e);
                write_ecs_header(&mut written, &e);
                assert_eq!(cached, written, "{f}");
            }
        }
    }

    /// Headers that share a set: up to four of them stay cached
    /// together, whatever their order; one more replaces the one used
    /// least recently.
    #[test]
    fn header_cache_keeps_a_full_set() {
        // Four ways: three headers in one set (as three of the e2e
        // benchmark's 16 are) and one more.
        const WAYS: usize = 4;
        fn fields_of(e: &Event) -> [Option<&str>; 4] {
            [e.hostname(), e.appname(), e.procid(), e.msgid()]
        }
        let set_of = |e: &Event| header_hash(e, &fields_of(e)) % HEADER_SETS as u64;
        // Frames whose headers fall into one set, found by trying hosts.
        let frame = |n: usize| format!("<134>1 - host{n} app 1001 - - m");
        let target = set_of(&ev(&frame(0)));
        let same_set: Vec<String> = (0..100_000)
            .map(frame)
            .filter(|f| set_of(&ev(f)) == target)
            .take(WAYS + 1)
            .collect();
        assert_eq!(same_set.len(), WAYS + 1);
        let mut cache = HeaderCache::default();
        let mut push = |f: &str| {
            let e = ev(f);
            let (mut cached, mut written) = (String::new(), String::new());
            let hit = cache.push(&mut cached, &e, &fields_of(&e));
            write_ecs_header(&mut written, &e);
            assert_eq!(cached, written, "{f}");
            hit
        };
        let full = &same_set[..WAYS];
        for f in full {
            assert!(!push(f), "{f} cached before its first use");
        }
        for round in 0..3 {
            for f in full.iter().rev().skip(round).chain(full.iter().take(round)) {
                assert!(push(f), "{f} fell out of a set that holds it");
            }
        }
        // Used in this order last: the first of `full` least recently.
        for f in full {
            assert!(push(f));
        }
        let extra = &same_set[WAYS];
        assert!(!push(extra));
        assert!(push(extra));
        assert!(!push(&full[0]), "the least recently used was kept");
        for f in &full[2..] {
            assert!(push(f), "{f} replaced instead of the least recently used");
        }
    }

    #[test]
    fn ecs_source_follows_each_documents_peer() {
        let output = OutputConfig::Document(DocumentFormat::Ecs { original: false });
        for peer in [
            "10.0.0.5:50122",
            "10.0.0.5:50123",
            "[2001:db8::7]:514",
            "10.0.0.5:50122",
            "192.168.1.1:9",
        ] {
            let peer: std::net::SocketAddr = peer.parse().unwrap();
            let e = decode(
                Bytes::from_static(b"<14>hello"),
                Some(peer),
                0,
                &DecodeOptions::default(),
            );
            let r = encode(
                String::new(),
                &output,
                "docs",
                &[],
                &e,
                None,
                &mut Vec::new(),
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
            assert_eq!(v["source"]["address"], peer.ip().to_string());
            assert_eq!(v["source"]["port"], peer.port());
        }
    }

    #[test]
    fn flume_documents_keep_the_logstash_shape() {
        let flume = DocumentFormat::Flume {
            keep: crate::config::FlumeKeepFields::default(),
        };
        // The body is everything after the hostname, the TAG included
        // (Flume's SyslogUtils), and a capture is a field (regex_extractor).
        let v = document(
            flume,
            "<134>Nov 23 10:00:00 web01 app: heap_used=1234",
            Some(r"heap_used=(?P<heap_used>\d+)"),
        );
        assert_eq!(
            v,
            serde_json::json!({
                "@message": "app: heap_used=1234",
                "@timestamp": "2026-11-23T10:00:00.000Z",
                "@source_host": "web01",
                "@fields": {"Facility": "16", "Severity": "6", "priority": "134",
                            "host": "web01", "timestamp": "1795428000000", "heap_used": "1234"}
            })
        );
        // Flume's bad event: facility and severity 0, the frame as body;
        // no time in it, so the receive time (the timestamp interceptor).
        let v = document(flume, "garbage", None);
        assert_eq!(
            v,
            serde_json::json!({
                "@message": "garbage",
                "@timestamp": "2026-11-24T11:35:00.000Z",
                "@fields": {"Facility": "0", "Severity": "0",
                            "flume.syslog.status": "Invalid", "timestamp": "1795520100000"}
            })
        );
    }
}
