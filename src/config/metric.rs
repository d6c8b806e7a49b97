//! A route's `[routes.metric]`: measurement, tags and fields.

use super::*;

#[derive(Debug, Clone)]
pub struct FieldConfig {
    /// Field key in the point.
    pub name: String,
    /// `,key=`, with `name` as line protocol writes it (escaped once,
    /// here): what a point writes before a value of the field (one copy;
    /// the first field's comma becomes a space).
    pub lead: String,
    pub source: Source,
    pub kind: FieldType,
}

impl FieldConfig {
    pub fn new(name: String, source: Source, kind: FieldType) -> FieldConfig {
        FieldConfig {
            lead: lead(&name),
            name,
            source,
            kind,
        }
    }

    /// `name` as line protocol writes it.
    pub fn key(&self) -> &str {
        key_of_lead(&self.lead)
    }
}

/// `,key=` for `name`.
fn lead(name: &str) -> String {
    format!(",{}=", line_protocol_key(name))
}

/// The key between a lead's `,` and `=`.
fn key_of_lead(lead: &str) -> &str {
    lead.get(1..lead.len().saturating_sub(1))
        .unwrap_or_default()
}

/// Where a tag, field or measurement part takes its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A named capture of the route's pattern, with its group index (the
    /// router compiles the same pattern, so the index holds there).
    Capture { name: String, index: usize },
    /// A parameter of a structured-data element (`sd.mdc@18060.user`).
    Sd { id: String, param: String },
    /// A syslog header field.
    Header(HeaderField),
    /// A value written in the config.
    Static(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    Host,
    App,
    Procid,
    Msgid,
    /// The facility's name (`local7`).
    Facility,
    /// The severity's name (`err`).
    Severity,
}

impl HeaderField {
    pub(super) fn parse(s: &str) -> Option<HeaderField> {
        Some(match s {
            "host" | "hostname" => HeaderField::Host,
            "app" | "appname" => HeaderField::App,
            "procid" => HeaderField::Procid,
            "msgid" => HeaderField::Msgid,
            "facility" => HeaderField::Facility,
            "severity" => HeaderField::Severity,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TagConfig {
    pub name: String,
    /// `,key=`, with `name` as line protocol writes it (escaped once,
    /// here): what a point writes before a value of the tag (one copy).
    pub lead: String,
    pub source: Source,
}

impl TagConfig {
    pub fn new(name: String, source: Source) -> TagConfig {
        TagConfig {
            lead: lead(&name),
            name,
            source,
        }
    }

    /// `name` as line protocol writes it; empty when nothing is left of it
    /// (only backslashes): no tag.
    pub fn key(&self) -> &str {
        key_of_lead(&self.lead)
    }
}

/// The source for capture `name` of `pattern`, with its group index.
pub(super) fn self_capture(pattern: Option<&regex::Regex>, name: &str) -> Option<Source> {
    let index = pattern?.capture_names().position(|n| n == Some(name))?;
    Some(Source::Capture {
        name: name.to_owned(),
        index,
    })
}

/// A piece of a (templated) measurement name: `jvm_{pool}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeasurementPart {
    /// Text as line protocol writes it in a measurement (escaped once:
    /// [`line_protocol_measurement`]).
    Text(String),
    Value(Source),
}

/// What a capture that does not parse as its type costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConversionError {
    /// The field is left out (the point keeps its other fields).
    #[default]
    DropField,
    /// The whole point is not written.
    DropPoint,
}

#[derive(Debug, Clone)]
pub struct MetricConfig {
    /// The measurement as written (`jvm_{pool}`).
    pub measurement: String,
    pub measurement_parts: Vec<MeasurementPart>,
    /// Every tag the point may carry, `host`/`app` included when enabled,
    /// sorted by key (InfluxDB's order) once, here.
    pub tags: Vec<TagConfig>,
    pub fields: Vec<FieldConfig>,
    /// Also take every `key=number` pair of the message as a field.
    pub key_values: bool,
    pub on_conversion_error: OnConversionError,
    /// How `uint` fields are written (from the route's sink).
    pub unsigned: UnsignedAs,
    /// Timestamp precision (from the route's sink).
    pub precision: Precision,
}

impl Validator<'_, '_> {
    pub(super) fn metric(
        &self,
        base: &[Seg],
        m: RawMetric,
        pattern: Option<&regex::Regex>,
        capture_types: &[(String, FieldType)],
    ) -> Result<MetricConfig, ConfigError> {
        let captures: Vec<&str> = pattern
            .map(|re| re.capture_names().flatten().collect())
            .unwrap_or_default();
        let capture = |name: &str| self_capture(pattern, name);
        // A source named in the config: `sd.ID.PARAM`, a capture of the
        // pattern, or a header field (a capture of the same name wins).
        let source = |path: &[Seg], name: &str| -> Result<Source, ConfigError> {
            if let Some(reference) = name.strip_prefix("sd.") {
                return match reference.split_once('.') {
                    Some((id, param)) if !id.is_empty() && !param.is_empty() => Ok(Source::Sd {
                        id: id.to_owned(),
                        param: param.to_owned(),
                    }),
                    _ => Err(self.err(
                        path,
                        format!("{name:?}: a structured-data reference is sd.SD-ID.PARAM, e.g. \"sd.mdc@18060.requestId\""),
                    )),
                };
            }
            if let Some(c) = capture(name) {
                return Ok(c);
            }
            if let Some(h) = HeaderField::parse(name) {
                return Ok(Source::Header(h));
            }
            Err(self.err(
                path,
                format!(
                    "the route's pattern has no named capture {name:?} (captures: {}), and it is no header field (host, app, procid, msgid, facility, severity) or sd.SD-ID.PARAM",
                    if captures.is_empty() {
                        "none".to_owned()
                    } else {
                        captures.join(", ")
                    }
                ),
            ))
        };

        let measurement_parts = self.measurement_parts(base, &m.measurement, &source)?;
        let mut tags = self.tags(base, &m, &source)?;
        let mut fields = self.fields(base, &m, &source)?;
        // A capture typed in grok (`%{NUMBER:used:int}`) is a field of that
        // type, unless it is a tag or a declared field already reads it.
        for (capture, kind) in capture_types {
            let Some(as_source) = self_capture(pattern, capture) else {
                continue;
            };
            let taken = tags.iter().any(|t| t.source == as_source)
                || fields
                    .iter()
                    .any(|f| f.source == as_source || &f.name == capture);
            if !taken {
                fields.push(FieldConfig::new(capture.clone(), as_source, *kind));
            }
        }
        if fields.is_empty() && !m.key_values {
            return Err(self.err(
                base,
                "a metric needs fields: typed grok captures (%{NUMBER:x:int}), [fields], or key_values = true",
            ));
        }
        // host and app tags unless turned off; a configured tag of the same
        // key replaces them. Sorted by key as InfluxDB wants (bytes order).
        for (on, key, field) in [
            (m.host_tag, "host", HeaderField::Host),
            (m.app_tag, "app", HeaderField::App),
        ] {
            if on && !tags.iter().any(|t| t.name == key) {
                tags.push(TagConfig::new(key.to_owned(), Source::Header(field)));
            }
        }
        tags.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(MetricConfig {
            measurement: m.measurement,
            measurement_parts,
            tags,
            fields,
            key_values: m.key_values,
            on_conversion_error: m.on_conversion_error,
            unsigned: UnsignedAs::Unsigned,
            precision: Precision::Nanoseconds,
        })
    }

    /// The measurement template: text and `{source}` parts.
    fn measurement_parts(
        &self,
        base: &[Seg],
        measurement: &str,
        source: &SourceFn<'_>,
    ) -> Result<Vec<MeasurementPart>, ConfigError> {
        let measurement_path = at(base, "measurement");
        if measurement.is_empty() {
            return Err(self.err(&measurement_path, "must not be empty"));
        }
        let mut measurement_parts = Vec::new();
        let mut rest = measurement;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(self.err(&measurement_path, "unclosed { in the measurement template"));
            };
            if open > 0 {
                measurement_parts.push(MeasurementPart::Text(line_protocol_measurement(
                    &rest[..open],
                )));
            }
            let name = &rest[open + 1..open + close];
            measurement_parts.push(MeasurementPart::Value(source(&measurement_path, name)?));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            measurement_parts.push(MeasurementPart::Text(line_protocol_measurement(rest)));
        }
        Ok(measurement_parts)
    }

    /// `tags`: source names or `{ name, from | value }` tables.
    fn tags(
        &self,
        base: &[Seg],
        m: &RawMetric,
        source: &SourceFn<'_>,
    ) -> Result<Vec<TagConfig>, ConfigError> {
        let mut tags = Vec::new();
        for (i, t) in m.tags.iter().enumerate() {
            let mut path = at(base, "tags");
            path.push(Seg::Index(i));
            let tag = match t {
                toml::Value::String(name) => TagConfig::new(key_of(name), source(&path, name)?),
                toml::Value::Table(t) => {
                    let name = t.get("name").and_then(|v| v.as_str()).ok_or_else(|| {
                        self.err(&path, "a tag table needs name = \"...\" and from = \"...\" or value = \"...\"")
                    })?;
                    let src = match (t.get("from"), t.get("value")) {
                        (Some(toml::Value::String(f)), None) => source(&path, f)?,
                        (None, Some(toml::Value::String(v))) => Source::Static(v.clone()),
                        _ => {
                            return Err(self.err(
                                &path,
                                "a tag table needs exactly one of from = \"source\" or value = \"text\"",
                            ));
                        }
                    };
                    if let Some(k) = t
                        .keys()
                        .find(|k| !matches!(k.as_str(), "name" | "from" | "value"))
                    {
                        return Err(self.err(
                            &path,
                            format!("unknown key {k:?} (expected name, from, value)"),
                        ));
                    }
                    TagConfig::new(name.to_owned(), src)
                }
                _ => {
                    return Err(self.err(
                        &path,
                        "expected a source name or { name = \"tag\", from = \"source\" } or { name = \"tag\", value = \"text\" }",
                    ));
                }
            };
            if tag.name.is_empty() {
                return Err(self.err(&path, "a tag name must not be empty"));
            }
            tags.push(tag);
        }
        Ok(tags)
    }

    /// `[routes.metric.fields]`: a type name or `{ from | value, type }`.
    fn fields(
        &self,
        base: &[Seg],
        m: &RawMetric,
        source: &SourceFn<'_>,
    ) -> Result<Vec<FieldConfig>, ConfigError> {
        let mut fields = Vec::new();
        for (name, spec) in &m.fields {
            let path = at(&at(base, "fields"), name);
            let (src, kind) = match spec {
                toml::Value::String(t) => (source(&path, name)?, t.clone()),
                toml::Value::Table(t) => {
                    if let Some(k) = t
                        .keys()
                        .find(|k| !matches!(k.as_str(), "from" | "type" | "value"))
                    {
                        return Err(self.err(
                            &path,
                            format!("unknown key {k:?} (expected from, value, type)"),
                        ));
                    }
                    let kind = t
                        .get("type")
                        .and_then(|v| v.as_str())
                        .unwrap_or("float")
                        .to_owned();
                    let src = match (t.get("from"), t.get("value")) {
                        (Some(toml::Value::String(f)), None) => source(&path, f)?,
                        (None, Some(v)) => Source::Static(match v {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }),
                        (None, None) => source(&path, name)?,
                        _ => {
                            return Err(self.err(
                                &path,
                                "a field has from = \"source\" or value = ..., not both",
                            ));
                        }
                    };
                    (src, kind)
                }
                _ => {
                    return Err(self.err(
                        &path,
                        "expected a type name or { from = \"capture\", type = \"int\" }",
                    ));
                }
            };
            let kind = FieldType::parse(&kind).ok_or_else(|| {
                self.err(
                    &path,
                    format!("unknown field type {kind:?} (int, uint, float, bool, string, duration, bytes)"),
                )
            })?;
            let field = FieldConfig::new(name.clone(), src, kind);
            // Escaping drops trailing backslashes: a name of only those
            // leaves no key, and InfluxDB refuses the whole point.
            if field.key().is_empty() {
                return Err(self.err(
                    &path,
                    "no field key is left of a name of only backslashes (InfluxDB refuses the point: missing field key)",
                ));
            }
            fields.push(field);
        }
        Ok(fields)
    }
}

/// The natural key of a source: the capture, header or SD parameter name.
fn key_of(name: &str) -> String {
    name.strip_prefix("sd.")
        .and_then(|r| r.split_once('.'))
        .map_or(name, |(_, param)| param)
        .to_owned()
}

/// Resolves a source name of the config (capture, header field or
/// `sd.ID.PARAM`) for the route's pattern.
type SourceFn<'a> = dyn Fn(&[Seg], &str) -> Result<Source, ConfigError> + 'a;
