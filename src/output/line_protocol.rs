//! InfluxDB line protocol: a metric route's point, with the escaping each
//! element needs and typed field values.

use std::fmt::Write as _;

use super::{Captures, ConversionError};
use crate::config::{
    FieldType, HeaderField, MeasurementPart, MetricConfig, OnConversionError, Source, UnsignedAs,
    facility_name, severity_name,
};
use crate::event::Event;
use crate::text::lanes::digit_run;
use crate::text::push_padded;

use crate::config::line_protocol::{Element, push_escaped};

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
/// Integers and decimals already as InfluxDB writes them (nearly every
/// field) are copied here, inlined into the point's loop over its fields;
/// the rest through [`push_other_value`].
#[inline(always)]
fn push_field_value(out: &mut String, raw: &str, kind: FieldType, unsigned: UnsignedAs) -> bool {
    let raw_t = trimmed(raw);
    match kind {
        // Already as InfluxDB writes it and within i64: copied, unparsed.
        FieldType::Int if canonical_int(raw_t) && fits_i64(raw_t) => {
            out.push_str(raw_t);
            out.push('i');
            true
        }
        // Plain decimals (no exponent, so always finite) are copied as sent.
        FieldType::Float if plain_decimal(raw_t) => {
            out.push_str(raw_t);
            true
        }
        _ => push_other_value(out, raw, raw_t, kind, unsigned),
    }
}

/// [`push_field_value`] of a value to parse, rewrite or refuse (`raw_t`:
/// `raw` trimmed).
#[inline(never)]
fn push_other_value(
    out: &mut String,
    raw: &str,
    raw_t: &str,
    kind: FieldType,
    unsigned: UnsignedAs,
) -> bool {
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

/// `raw` without leading and trailing whitespace. A value that starts and
/// ends with a visible ASCII character (nearly every capture) has none:
/// that is two byte tests instead of `trim`'s Unicode walk from both ends.
fn trimmed(raw: &str) -> &str {
    match (raw.as_bytes().first(), raw.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => raw,
        _ => raw.trim(),
    }
}

/// Append an integer in decimal (no formatter machinery: this is per point).
fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_padded(out, v.unsigned_abs(), 1);
}

/// `s` without one leading `-`, as bytes.
fn unsigned_part(s: &str) -> &[u8] {
    match s.as_bytes() {
        [b'-', rest @ ..] => rest,
        all => all,
    }
}

/// `-?[1-9][0-9]*` or `0`: an integer as InfluxDB writes it. One pass
/// over the bytes, eight at a time: this runs for every integer field of
/// every point (a nanosecond time has 19 digits).
#[inline]
fn canonical_int(s: &str) -> bool {
    match unsigned_part(s) {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        digits => digit_run(digits) == digits.len(),
    }
}

/// Whether a [`canonical_int`] is within i64: up to 18 digits always;
/// 19 when not above i64's bound written out (digit strings of one
/// length compare as their numbers). Nanosecond times have 19 digits.
fn fits_i64(s: &str) -> bool {
    let digits = unsigned_part(s);
    match digits.len() {
        0..=18 => true,
        19 if s.starts_with('-') => digits <= b"9223372036854775808".as_slice(),
        19 => digits <= b"9223372036854775807".as_slice(),
        _ => false,
    }
}

/// `-?[0-9]+(\.[0-9]+)?`, short enough to be a finite f64. One pass over
/// the bytes (no search for the dot first).
fn plain_decimal(s: &str) -> bool {
    let body = unsigned_part(s);
    // Digits before the dot, and after it (None: no dot yet).
    let mut int = 0usize;
    let mut frac: Option<usize> = None;
    for &b in body {
        match (b, frac.as_mut()) {
            (b'0'..=b'9', None) => int += 1,
            (b'0'..=b'9', Some(f)) => *f += 1,
            (b'.', None) => frac = Some(0),
            _ => return false,
        }
    }
    body.len() < 300 && int > 0 && frac != Some(0)
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
pub(super) fn value_of<'a>(
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

/// [`value_of`], with a capture of a sequence match and the host and app
/// read in place: those are the sources of nearly every tag and field of
/// a route's point (`host` and `app` are tags by default), and
/// `value_of`'s other arms keep it from being inlined (a call, and a
/// second one to `Captures::get`, per tag and field).
#[inline(always)]
fn source_value<'a>(
    source: &'a Source,
    event: &'a Event,
    captures: Option<&Captures<'a>>,
) -> Option<&'a str> {
    match (source, captures) {
        (Source::Capture { index, .. }, Some(Captures::Sequence(spans))) => spans.get(*index),
        (Source::Header(HeaderField::Host), _) => event.hostname(),
        (Source::Header(HeaderField::App), _) => event.appname(),
        _ => value_of(source, event, captures),
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

pub(super) fn encode_point(
    buf: String,
    m: &MetricConfig,
    event: &Event,
    captures: Option<&Captures<'_>>,
    time: i64,
    errors: &mut Vec<ConversionError>,
) -> Option<String> {
    let mut line = buf;
    line.reserve(256);
    push_point(&mut line, m, event, captures, time, errors).then_some(line)
}

/// [`encode_point`] appended to `out` (a reader's slab, which may hold
/// other records before it); `false`, and `out` as it was, when no point
/// is emitted.
pub(crate) fn push_point(
    out: &mut String,
    m: &MetricConfig,
    event: &Event,
    captures: Option<&Captures<'_>>,
    time: i64,
    errors: &mut Vec<ConversionError>,
) -> bool {
    let start = out.len();
    let emitted = write_point(out, start, m, event, captures, time, errors).is_some();
    if !emitted {
        out.truncate(start);
    }
    emitted
}

/// The point's text, appended to `line` from `start`; `None` when no
/// point is emitted (the caller takes back what was written).
fn write_point(
    line: &mut String,
    start: usize,
    m: &MetricConfig,
    event: &Event,
    captures: Option<&Captures<'_>>,
    time: i64,
    errors: &mut Vec<ConversionError>,
) -> Option<()> {
    for part in &m.measurement_parts {
        match part {
            MeasurementPart::Text(t) => line.push_str(t),
            MeasurementPart::Value(source) => match source_value(source, event, captures) {
                Some(v) if !v.is_empty() => push_escaped(line, v, Element::Measurement),
                _ => {
                    errors.push(ConversionError::NoMeasurement {
                        source: source_name(source),
                    });
                    return None;
                }
            },
        }
    }

    if line.as_bytes().get(start) == Some(&b'#') {
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
        let Some(v) = source_value(&t.source, event, captures) else {
            continue;
        };
        // Bytes, not chars (a backslash is ASCII): `trim_end_matches`
        // decoded the value backwards, char by char, for every tag.
        if v.bytes().all(|b| b == b'\\') || t.key().is_empty() {
            continue;
        }
        line.push_str(&t.lead);
        push_escaped(line, v, Element::Key);
    }

    let mut fields = FieldCount::default();
    for f in &m.fields {
        // An absent or empty value is no field, and no error.
        match source_value(&f.source, event, captures) {
            Some(raw) if !raw.is_empty() => {
                push_field(
                    line,
                    &mut fields,
                    errors,
                    m,
                    &f.name,
                    Some(&f.lead),
                    raw,
                    f.kind,
                );
            }
            _ => {}
        }
    }
    if m.key_values {
        for (k, v) in key_values(event.message_after_bom()) {
            if m.fields.iter().any(|f| f.name == k) {
                continue;
            }
            // Always float: a field's type is fixed per series in InfluxDB,
            // and `latency=1` then `latency=1.5` must not conflict.
            push_field(line, &mut fields, errors, m, k, None, v, FieldType::Float);
        }
    }
    let FieldCount {
        written: n_fields,
        bad,
    } = fields;
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
        line,
        if per_unit == 1 {
            time
        } else {
            time.div_euclid(per_unit)
        },
    );
    Some(())
}

/// Fields a point has written, and whether one was bad.
#[derive(Default)]
struct FieldCount {
    written: usize,
    bad: bool,
}

/// One field of a point: `,name=value` (a space before the first), or
/// nothing and a [`ConversionError::BadValue`] when `raw` is not a `kind`.
/// `lead`: `,key=` with the name escaped already (a configured field's
/// [`crate::config::FieldConfig::lead`]), or None. Inlined
/// into the loops over the fields: as a closure called per field, its
/// entry and exit cost as much as the field's own work (callgrind).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn push_field(
    line: &mut String,
    count: &mut FieldCount,
    errors: &mut Vec<ConversionError>,
    m: &MetricConfig,
    name: &str,
    lead: Option<&str>,
    raw: &str,
    kind: FieldType,
) {
    let mark = line.len();
    match lead {
        Some(lead) if count.written > 0 => line.push_str(lead),
        Some(lead) => {
            line.push(' ');
            line.push_str(lead.get(1..).unwrap_or_default());
        }
        None => {
            line.push(if count.written == 0 { ' ' } else { ',' });
            push_escaped(line, name, Element::Key);
            line.push('=');
        }
    }
    if push_field_value(line, raw, kind, m.unsigned) {
        count.written += 1;
    } else {
        line.truncate(mark);
        count.bad = true;
        errors.push(ConversionError::BadValue {
            field: name.to_owned(),
            kind,
            value: raw.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(raw: &str, kind: FieldType) -> Option<String> {
        let mut out = String::new();
        push_field_value(&mut out, raw, kind, UnsignedAs::Integer).then_some(out)
    }

    /// Integers as InfluxDB writes them are copied, others rewritten or
    /// refused, at every length around the copy's bound of 18 characters
    /// and around i64's range.
    #[test]
    fn int_values_copied_rewritten_or_refused() {
        assert_eq!(value("12", FieldType::Int).as_deref(), Some("12i"));
        assert_eq!(value(" 12\t", FieldType::Int).as_deref(), Some("12i"));
        assert_eq!(value("-0", FieldType::Int).as_deref(), Some("-0i"));
        assert_eq!(value("007", FieldType::Int).as_deref(), Some("7i"));
        assert_eq!(value("+7", FieldType::Int).as_deref(), Some("7i"));
        assert_eq!(value("1.5", FieldType::Int), None);
        assert_eq!(value("", FieldType::Int), None);
        assert_eq!(
            value("\u{a0}5\u{a0}", FieldType::Int).as_deref(),
            Some("5i")
        );
        for digits in 1..=20 {
            let text = "9".repeat(digits);
            let want = text.parse::<i64>().ok().map(|v| format!("{v}i"));
            assert_eq!(value(&text, FieldType::Int), want, "{text}");
            let negative = format!("-{text}");
            let want = negative.parse::<i64>().ok().map(|v| format!("{v}i"));
            assert_eq!(value(&negative, FieldType::Int), want, "{negative}");
        }
        assert_eq!(
            value("9223372036854775807", FieldType::Int).as_deref(),
            Some("9223372036854775807i")
        );
        assert_eq!(value("9223372036854775808", FieldType::Int), None);
        assert_eq!(
            value("9223372036854775806", FieldType::Int).as_deref(),
            Some("9223372036854775806i")
        );
        assert_eq!(
            value("1000000000000000000", FieldType::Int).as_deref(),
            Some("1000000000000000000i")
        );
        assert_eq!(
            value("1795520100123456789", FieldType::Int).as_deref(),
            Some("1795520100123456789i")
        );
        assert_eq!(value("-9223372036854775809", FieldType::Int), None);
        assert_eq!(value("99999999999999999999", FieldType::Int), None);
        assert_eq!(
            value("-9223372036854775808", FieldType::Int).as_deref(),
            Some("-9223372036854775808i")
        );
    }

    /// The one-pass number checks answer as the rules they implement,
    /// written out plainly, for every text of up to five characters over
    /// digits, signs, dots and a letter.
    #[test]
    fn number_checks_match_their_rules() {
        let int_rule = |s: &str| {
            let d = s.strip_prefix('-').unwrap_or(s);
            !d.is_empty()
                && d.bytes().all(|b| b.is_ascii_digit())
                && (!d.starts_with('0') || d.len() == 1)
        };
        let decimal_rule = |s: &str| {
            let body = s.strip_prefix('-').unwrap_or(s);
            let (int, frac) = body.split_once('.').unwrap_or((body, "1"));
            !int.is_empty()
                && !frac.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        };
        let alphabet = ['0', '1', '9', '-', '.', 'e', '+'];
        let mut texts = vec![String::new()];
        let mut checked = 0;
        for _ in 0..5 {
            let mut longer = Vec::new();
            for t in &texts {
                for c in alphabet {
                    longer.push(format!("{t}{c}"));
                }
            }
            for t in texts.iter().chain(&longer) {
                assert_eq!(canonical_int(t), int_rule(t), "{t:?}");
                assert_eq!(plain_decimal(t), decimal_rule(t), "{t:?}");
                checked += 1;
            }
            texts = longer;
        }
        assert!(checked > 10_000);
        // Longer texts (the digits are checked eight at a time): one
        // character of the alphabet at every place of a run of digits.
        for len in 6..=21 {
            for at in 0..len {
                for c in alphabet {
                    let mut t: Vec<char> = "1234567890".chars().cycle().take(len).collect();
                    t[at] = c;
                    let t: String = t.into_iter().collect();
                    assert_eq!(canonical_int(&t), int_rule(&t), "{t:?}");
                }
            }
        }
        assert!(plain_decimal(&"9".repeat(299)));
        assert!(!plain_decimal(&"9".repeat(300)));
        assert!(plain_decimal(&format!("-{}", "9".repeat(299))));
    }

    /// A sequence match's captures read in place are what `value_of`
    /// reads: every group, in range or not; other sources, and regex
    /// captures, go to `value_of`.
    #[test]
    fn captures_read_in_place_as_value_of_reads_them() {
        use crate::decode::{DecodeOptions, decode};
        let line = "status route=/a code=200";
        let mut spans = [(0u32, 0u32); crate::output::MAX_GROUPS];
        spans[..3].copy_from_slice(&[(0, 24), (13, 15), (21, 24)]);
        let sequence = Captures::Sequence(crate::output::Spans {
            text: line,
            groups: 3,
            spans,
        });
        let regex = regex::Regex::new(r"route=(\S+) code=(\d+)").unwrap();
        let regex = Captures::Regex(regex.captures(line).unwrap());
        let event = decode(
            bytes::Bytes::from(format!("<14>1 - h app - - - {line}")),
            None,
            0,
            &DecodeOptions::default(),
        );
        let mut sources: Vec<Source> = (0..10)
            .map(|index| Source::Capture {
                name: "x".to_owned(),
                index,
            })
            .collect();
        sources.push(Source::Header(HeaderField::Host));
        sources.push(Source::Static("v".to_owned()));
        let mut seen = 0;
        for source in &sources {
            for captures in [Some(&sequence), Some(&regex), None] {
                let want = value_of(source, &event, captures);
                assert_eq!(source_value(source, &event, captures), want);
                seen += usize::from(want.is_some());
            }
        }
        assert_eq!(seen, 3 + 3 + 2 * 3);
        assert_eq!(
            source_value(&sources[1], &event, Some(&sequence)),
            Some("/a")
        );
    }

    /// Values are trimmed of any whitespace, ASCII or not, and only of it.
    #[test]
    fn values_are_trimmed_of_whitespace_only() {
        for (raw, want) in [
            ("x", "x"),
            (" x", "x"),
            ("x\n", "x"),
            ("\u{2003}x\u{2003}", "x"),
            ("\u{e9}x", "\u{e9}x"),
            ("x\u{e9}", "x\u{e9}"),
            ("", ""),
            ("  ", ""),
        ] {
            assert_eq!(trimmed(raw), want, "{raw:?}");
            assert_eq!(trimmed(raw), raw.trim(), "{raw:?}");
        }
    }
}
