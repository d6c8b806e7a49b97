//! `[[routes]]` and `[default_route]`: conditions, pattern, output.

use super::*;

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Index into [`Config::sinks`].
    pub sink: usize,
    pub is_final: bool,
    /// True for `[default_route]`: receives only events no route matched.
    pub is_default: bool,
    pub conditions: Conditions,
    /// The pattern, grok expanded and compiled once, here (`as_str()` is
    /// the expanded text); the router uses it as it is.
    pub pattern: Option<regex::Regex>,
    /// The pattern as written in the config.
    pub pattern_source: Option<String>,
    /// Capture types declared in grok (`%{NUMBER:used:int}`).
    pub capture_types: Vec<(String, FieldType)>,
    pub output: OutputConfig,
    pub queue: QueueConfig,
    /// A route to a Kafka sink: the topic and key templates (the sink's).
    pub kafka: Option<KafkaRoute>,
    /// A route to an Elasticsearch sink: what its `_bulk` action lines
    /// say (the sink's), written by the encoder before each document.
    pub bulk: Option<BulkRoute>,
}

/// What the `_bulk` action line of a route's documents names: the
/// Elasticsearch sink's index pattern, and whether documents carry `_id`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRoute {
    pub index: String,
    pub ids: bool,
}

impl BulkRoute {
    pub fn of(es: &crate::config::ElasticsearchConfig) -> BulkRoute {
        BulkRoute {
            index: es.index.clone(),
            ids: es.document_ids,
        }
    }

    /// The framing records written with these settings carry (see
    /// [`crate::record::Payload::framed`]): never 0.
    pub fn framing(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(self.index.as_bytes());
        h.update(&[u8::from(self.ids)]);
        h.digest() | 1
    }
}

/// What a route to a Kafka sink renders per record.
#[derive(Debug, Clone)]
pub struct KafkaRoute {
    pub topic: Template,
    pub key: Option<Template>,
}

/// Cheap header conditions; all present ones must hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Bit `f` set = facility `f` matches.
    pub facilities: Option<u32>,
    /// Bit `s` set = severity `s` matches.
    pub severities: Option<u8>,
    pub hostnames: Option<Vec<String>>,
    pub appnames: Option<Vec<String>>,
    pub msgids: Option<Vec<String>>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.facilities.is_none()
            && self.severities.is_none()
            && self.hostnames.is_none()
            && self.appnames.is_none()
            && self.msgids.is_none()
    }
}

#[derive(Debug, Clone)]
pub enum OutputConfig {
    Metric(MetricConfig),
    Document(DocumentFormat),
    /// The frame as received, with its envelope (a Kafka sink's `raw`
    /// payload).
    Raw,
}

/// The shape of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// The canonical event JSON plus received_at, peer, route, captures
    /// (the default for file and stdout sinks).
    Canonical,
    /// Elastic Common Schema: `@timestamp`, `message`, `log.syslog.*`,
    /// `host.hostname`, `process.*` (the default for Elasticsearch sinks);
    /// `original`: the frame as received in `event.original`.
    Ecs { original: bool },
    /// What Flume 1.9's syslog sources and its ElasticSearchSink with the
    /// logstash serializer wrote: `@message` (the body: everything after the
    /// hostname), `@timestamp`, `@source_host`, `@fields` (Flume's headers
    /// and the route's captures); `keep`: the sources' `keepFields`.
    Flume { keep: FlumeKeepFields },
}

/// Flume's `keepFields`: which header parts the syslog sources put back in
/// front of the body (`all`: the whole frame is the body). Default: none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlumeKeepFields {
    pub all: bool,
    pub priority: bool,
    pub version: bool,
    pub timestamp: bool,
    pub hostname: bool,
}

impl FlumeKeepFields {
    /// Flume's spellings: `true`/`all`, `false`/`none`, or any of
    /// `priority version timestamp hostname` separated by spaces. A word
    /// Flume would have ignored is refused here.
    fn parse(text: &str) -> Result<FlumeKeepFields, String> {
        let text = text.trim().to_ascii_lowercase();
        let mut keep = FlumeKeepFields::default();
        match text.as_str() {
            "true" | "all" => keep.all = true,
            "false" | "none" | "" => {}
            words => {
                for word in words.split_whitespace() {
                    match word {
                        "priority" => keep.priority = true,
                        "version" => keep.version = true,
                        "timestamp" => keep.timestamp = true,
                        "hostname" => keep.hostname = true,
                        other => {
                            let shown: String = other.chars().take(40).collect();
                            return Err(format!(
                                "unknown field {shown:?}: expected true, false, \"all\", \"none\" or words of \"priority version timestamp hostname\""
                            ));
                        }
                    }
                }
            }
        }
        Ok(keep)
    }
}

impl Validator<'_, '_> {
    pub(super) fn route(
        &self,
        base: &[Seg],
        r: RawRoute,
        sinks: &[SinkConfig],
        grok: &Library,
    ) -> Result<RouteConfig, ConfigError> {
        let sink = sinks.iter().position(|s| s.name == r.sink).ok_or_else(|| {
            let known: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
            self.err(
                &at(base, "sink"),
                format!("no sink named {:?} (sinks: {})", r.sink, known.join(", ")),
            )
        })?;
        let mut r = r;
        let conditions = self.conditions(base, &mut r)?;

        let (pattern, capture_types) = self.pattern(base, &r, grok)?;
        let (output, kafka) = match sinks.get(sink).map(|s| &s.kind) {
            Some(SinkKind::Kafka(k)) => (
                self.kafka_output(base, &mut r, k.payload, pattern.as_ref(), &capture_types)?,
                Some(KafkaRoute {
                    topic: k.topic.clone(),
                    key: k.key.clone(),
                }),
            ),
            kind => (
                self.output(base, &mut r, kind, pattern.as_ref(), &capture_types)?,
                None,
            ),
        };
        let bulk = match sinks.get(sink).map(|s| &s.kind) {
            Some(SinkKind::Elasticsearch(es)) => Some(BulkRoute::of(es)),
            _ => None,
        };
        let queue = self.queue(base, r.queue)?;
        Ok(RouteConfig {
            name: r.name,
            sink,
            is_final: r.is_final,
            is_default: false,
            conditions,
            pattern: pattern.map(|(re, _)| re),
            pattern_source: r.pattern,
            capture_types,
            output,
            queue,
            kafka,
            bulk,
        })
    }

    /// The output of a route to a file, stdout, InfluxDB or Elasticsearch
    /// sink: its `[metric]` or `[document]` table (Elasticsearch: ECS
    /// documents when it has neither).
    fn output(
        &self,
        base: &[Seg],
        r: &mut RawRoute,
        kind: Option<&SinkKind>,
        pattern: Option<&(regex::Regex, String)>,
        capture_types: &[(String, FieldType)],
    ) -> Result<OutputConfig, ConfigError> {
        let mut output = match (r.metric.take(), r.document.take()) {
            (Some(m), None) => OutputConfig::Metric(self.metric(
                &at(base, "metric"),
                m,
                pattern.map(|(re, _)| re),
                capture_types,
            )?),
            (None, Some(d)) => {
                let es = matches!(kind, Some(SinkKind::Elasticsearch(_)));
                OutputConfig::Document(self.document(base, d, es)?)
            }
            (Some(_), Some(_)) => {
                return Err(self.err(base, "a route has either [metric] or [document], not both"));
            }
            // Elasticsearch takes documents only: ECS unless said otherwise.
            (None, None) if matches!(kind, Some(SinkKind::Elasticsearch(_))) => {
                OutputConfig::Document(DocumentFormat::Ecs { original: false })
            }
            (None, None) => {
                return Err(self.err(
                    base,
                    "a route to a file or stdout sink needs an output: a [routes.metric] or [routes.document] table",
                ));
            }
        };
        if let (OutputConfig::Metric(m), Some(SinkKind::Influxdb(i))) = (&mut output, kind) {
            m.unsigned = i.unsigned;
            m.precision = i.precision;
        }
        Ok(output)
    }

    /// The output of a route to a Kafka sink: its `payload` decides;
    /// a `[document]` or `[metric]` table of the route must agree.
    fn kafka_output(
        &self,
        base: &[Seg],
        r: &mut RawRoute,
        payload: KafkaPayload,
        pattern: Option<&(regex::Regex, String)>,
        capture_types: &[(String, FieldType)],
    ) -> Result<OutputConfig, ConfigError> {
        let wants = |table: &str| {
            self.err(
                &at(base, table),
                format!(
                    "the route's Kafka sink writes payload = {:?}: {}",
                    payload.as_str(),
                    match payload {
                        KafkaPayload::Raw =>
                            "the frame as received, so the route has no [metric] or [document]",
                        KafkaPayload::LineProtocol =>
                            "line protocol, from a [metric] table, not a [document]",
                        _ => "documents, so the route has no [metric]",
                    }
                ),
            )
        };
        match payload {
            KafkaPayload::Raw => {
                if r.metric.is_some() {
                    return Err(wants("metric"));
                }
                if r.document.is_some() {
                    return Err(wants("document"));
                }
                Ok(OutputConfig::Raw)
            }
            KafkaPayload::LineProtocol => {
                if r.document.is_some() {
                    return Err(wants("document"));
                }
                let Some(m) = r.metric.take() else {
                    return Err(self.err(
                        base,
                        "the route's Kafka sink writes payload = \"line_protocol\": the route needs a [metric] table",
                    ));
                };
                Ok(OutputConfig::Metric(self.metric(
                    &at(base, "metric"),
                    m,
                    pattern.map(|(re, _)| re),
                    capture_types,
                )?))
            }
            KafkaPayload::Ecs | KafkaPayload::Flume | KafkaPayload::Canonical => {
                if r.metric.is_some() {
                    return Err(wants("metric"));
                }
                let format = match payload {
                    KafkaPayload::Ecs => RawDocumentFormat::Ecs,
                    KafkaPayload::Flume => RawDocumentFormat::Flume,
                    _ => RawDocumentFormat::Canonical,
                };
                let mut d = r.document.take().unwrap_or_default();
                if d.format.is_some_and(|f| f != format) {
                    return Err(self.err(
                        &at(&at(base, "document"), "format"),
                        format!(
                            "the route's Kafka sink writes payload = {:?}: leave format out or make it the same",
                            payload.as_str()
                        ),
                    ));
                }
                d.format = Some(format);
                Ok(OutputConfig::Document(self.document(base, d, false)?))
            }
        }
    }

    /// The header conditions: facility and severity masks, names.
    fn conditions(&self, base: &[Seg], r: &mut RawRoute) -> Result<Conditions, ConfigError> {
        let mut conditions = Conditions::default();
        if let Some(f) = r.facility.take() {
            let mut mask = 0u32;
            for v in f.into_vec() {
                let code = match &v {
                    FacilityValue::Code(c) => u8::try_from(*c).ok().filter(|c| *c <= 23),
                    FacilityValue::Name(n) => FACILITIES
                        .iter()
                        .position(|f| f.eq_ignore_ascii_case(n))
                        .map(|p| p as u8),
                };
                let code = code.ok_or_else(|| {
                    self.err(
                        &at(base, "facility"),
                        format!("unknown facility {v:?} (0..=23 or kern, user, …, local7)"),
                    )
                })?;
                mask |= 1 << code;
            }
            conditions.facilities = Some(mask);
        }
        if let Some(s) = r.severity.take() {
            let bad = || {
                self.err(
                    &at(base, "severity"),
                    "expected a level (\"warning\" = warning or worse), a range (\"notice..err\") or 0..=7",
                )
            };
            let mask = match s {
                SeverityValue::Code(c) => {
                    let c = u8::try_from(c).ok().filter(|c| *c <= 7).ok_or_else(bad)?;
                    (1u16 << (c + 1)) - 1
                }
                SeverityValue::Name(n) => match n.split_once("..") {
                    Some((a, b)) => {
                        let a = severity_code(a).ok_or_else(bad)?;
                        let b = severity_code(b).ok_or_else(bad)?;
                        let (lo, hi) = (a.min(b), a.max(b));
                        ((1u16 << (hi + 1)) - 1) & !((1u16 << lo) - 1)
                    }
                    None => {
                        let c = severity_code(&n).ok_or_else(bad)?;
                        (1u16 << (c + 1)) - 1
                    }
                },
            };
            conditions.severities = Some(mask as u8);
        }
        conditions.hostnames = r.hostname.take().map(OneOrMany::into_vec);
        conditions.appnames = r.appname.take().map(OneOrMany::into_vec);
        conditions.msgids = r.msgid.take().map(OneOrMany::into_vec);
        Ok(conditions)
    }

    /// The pattern, grok expanded and compiled, with the capture types grok declares.
    #[allow(clippy::type_complexity)]
    fn pattern(
        &self,
        base: &[Seg],
        r: &RawRoute,
        grok: &Library,
    ) -> Result<(Option<(regex::Regex, String)>, Vec<(String, FieldType)>), ConfigError> {
        Ok(match &r.pattern {
            Some(p) => {
                let path = at(base, "pattern");
                let expanded = grok
                    .expand(p)
                    .map_err(|e| self.err(&path, format!("route {:?}: {e}", r.name)))?;
                let re = regex::Regex::new(&expanded.regex).map_err(|e| {
                    let how = if expanded.regex == *p {
                        "invalid regex"
                    } else {
                        "invalid regex after grok expansion"
                    };
                    self.err(&path, format!("route {:?}: {how}: {e}", r.name))
                })?;
                (Some((re, expanded.regex)), expanded.types)
            }
            None => (None, Vec::new()),
        })
    }

    /// A `[routes.document]` table; `es`: the sink is Elasticsearch.
    fn document(
        &self,
        base: &[Seg],
        d: RawDocument,
        es: bool,
    ) -> Result<DocumentFormat, ConfigError> {
        let format = d.format.unwrap_or(if es {
            RawDocumentFormat::Ecs
        } else {
            RawDocumentFormat::Canonical
        });
        if d.event_original.is_some() && format != RawDocumentFormat::Ecs {
            return Err(self.err(
                &at(&at(base, "document"), "event_original"),
                "only for format = \"ecs\"",
            ));
        }
        if d.keep_fields.is_some() && format != RawDocumentFormat::Flume {
            return Err(self.err(
                &at(&at(base, "document"), "keep_fields"),
                "only for format = \"flume\"",
            ));
        }
        Ok(match format {
            RawDocumentFormat::Canonical => DocumentFormat::Canonical,
            RawDocumentFormat::Ecs => DocumentFormat::Ecs {
                original: d.event_original.unwrap_or(false),
            },
            RawDocumentFormat::Flume => DocumentFormat::Flume {
                keep: match &d.keep_fields {
                    None | Some(RawKeepFields::Bool(false)) => FlumeKeepFields::default(),
                    Some(RawKeepFields::Bool(true)) => FlumeKeepFields {
                        all: true,
                        ..FlumeKeepFields::default()
                    },
                    Some(RawKeepFields::Text(t)) => FlumeKeepFields::parse(t)
                        .map_err(|e| self.err(&at(&at(base, "document"), "keep_fields"), e))?,
                },
            },
        })
    }
}
