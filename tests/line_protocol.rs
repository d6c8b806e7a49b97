//! Every line the metric encoder writes parses back, with the published
//! `influxdb-line-protocol` parser, to the point it was made from.
//!
//! Two places where that parser and InfluxDB 1.x disagree are kept out of
//! the generated names: backslashes (the crate unescapes `\\`, influxd 1.6
//! stores it as written — the real-influxd tests cover what the server
//! does) and tabs (the crate splits on them, InfluxDB does not).

use bytes::Bytes;
use influxdb_line_protocol::{FieldValue, parse_lines};
use proptest::prelude::*;
use sluice::testing::encode;
use sluice::testing::{DecodeOptions, decode};
use sluice::testing::{
    FieldConfig, FieldType, MeasurementPart, MetricConfig, OnConversionError, OutputConfig,
    Precision, Source, TagConfig, UnsignedAs,
};

/// Names and values: any printable text and newlines, no backslash or tab.
fn text() -> impl Strategy<Value = String> {
    "[^\\\\\t\u{0}\u{b}\u{c}\r]{0,12}"
}

fn name() -> impl Strategy<Value = String> {
    // Not empty, not starting with '#' (a comment line) or '_' (reserved).
    "[^\\\\\t\u{0}\u{b}\u{c}\r#_ ][^\\\\\t\u{0}\u{b}\u{c}\r]{0,11}"
}

#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        (-1e15f64..1e15f64).prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        "[^\u{0}]{0,20}".prop_map(Value::Str),
    ]
}

/// What a name becomes on the wire: line protocol cannot carry newlines.
fn wire(s: &str) -> String {
    s.replace('\n', " ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn encoded_points_parse_back_to_the_same_point(
        measurement in name(),
        tags in proptest::collection::btree_map(name(), text(), 0..5),
        fields in proptest::collection::btree_map(name(), value(), 1..5),
        time in any::<i64>(),
    ) {
        // Names must stay distinct once newlines are spaces.
        let tag_keys: std::collections::BTreeSet<String> = tags.keys().map(|k| wire(k)).collect();
        let field_keys: std::collections::BTreeSet<String> = fields.keys().map(|k| wire(k)).collect();
        prop_assume!(tag_keys.len() == tags.len() && field_keys.len() == fields.len());
        prop_assume!(!tags.keys().any(|k| k.trim().is_empty()) && !fields.keys().any(|k| k.trim().is_empty()));

        let config = MetricConfig {
            measurement: measurement.clone(),
            measurement_parts: vec![MeasurementPart::Text(
                sluice::testing::line_protocol_measurement(&measurement),
            )],
            tags: {
                let mut t: Vec<TagConfig> = tags
                    .iter()
                    .map(|(k, v)| TagConfig::new(k.clone(), Source::Static(v.clone())))
                    .collect();
                t.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
                t
            },
            fields: fields
                .iter()
                .map(|(k, v)| {
                    let (kind, raw) = match v {
                        Value::Int(i) => (FieldType::Int, i.to_string()),
                        Value::Float(f) => (FieldType::Float, format!("{f:?}")),
                        Value::Bool(b) => (FieldType::Bool, b.to_string()),
                        Value::Str(s) => (FieldType::String, s.clone()),
                    };
                    FieldConfig::new(k.clone(), Source::Static(raw), kind)
                })
                .collect(),
            key_values: false,
            on_conversion_error: OnConversionError::DropField,
            unsigned: UnsignedAs::Unsigned,
            precision: Precision::Nanoseconds,
        };
        let event = decode(Bytes::from_static(b"<14>x"), None, time, &DecodeOptions::default());
        let mut errors = Vec::new();
        let record = encode(String::new(), &OutputConfig::Metric(config), "r", &[], &event, None, &mut errors);
        let Some(record) = record else {
            // Only a point left without fields (all strings empty) may vanish.
            prop_assert!(fields.values().all(|v| matches!(v, Value::Str(s) if s.is_empty())), "{errors:?}");
            return Ok(());
        };
        prop_assert!(!record.payload.contains('\n') || fields.values().any(|v| matches!(v, Value::Str(s) if s.contains('\n'))));
        let mut parsed = parse_lines(&record.payload);
        let line = parsed.next().unwrap();
        prop_assert!(line.is_ok(), "{}: {:?}", record.payload, line.err());
        let line = line.unwrap();
        prop_assert!(parsed.next().is_none());

        prop_assert_eq!(line.series.measurement.as_str(), wire(&measurement));
        let mut got_tags: Vec<(String, String)> = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut want_tags: Vec<(String, String)> = tags
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (wire(k), wire(v)))
            .collect();
        // Compared as sets: the encoder sorts by the configured key, and a
        // newline in a key sorts differently from the space it becomes.
        want_tags.sort();
        got_tags.sort();
        prop_assert_eq!(got_tags, want_tags);

        for (k, v) in &fields {
            let got = line.field_value(&wire(k));
            match v {
                Value::Str(s) if s.is_empty() => prop_assert!(got.is_none()),
                Value::Str(s) => prop_assert!(matches!(got, Some(FieldValue::String(g)) if g.as_str() == s), "{k}: {got:?}"),
                Value::Int(i) => prop_assert!(matches!(got, Some(FieldValue::I64(g)) if g == i), "{k}: {got:?}"),
                Value::Float(f) => prop_assert!(matches!(got, Some(FieldValue::F64(g)) if g == f), "{k}: {got:?}"),
                Value::Bool(b) => prop_assert!(matches!(got, Some(FieldValue::Boolean(g)) if g == b), "{k}: {got:?}"),
            }
        }
        prop_assert_eq!(line.timestamp, Some(time));
    }
}
