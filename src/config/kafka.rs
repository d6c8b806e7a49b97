//! `[[sinks]] type = "kafka"`: settings, their validation, and the
//! `topic` / `key` templates.

use super::*;

/// What a Kafka sink's records carry as their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KafkaPayload {
    /// The frame as received, its receive metadata in headers (the raw
    /// envelope an indexer decodes as if it had received the frame).
    #[default]
    Raw,
    Ecs,
    Flume,
    Canonical,
    /// InfluxDB line protocol (what Telegraf's `kafka_consumer` reads).
    LineProtocol,
}

impl KafkaPayload {
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaPayload::Raw => "raw",
            KafkaPayload::Ecs => "ecs",
            KafkaPayload::Flume => "flume",
            KafkaPayload::Canonical => "canonical",
            KafkaPayload::LineProtocol => "line_protocol",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaCompression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl KafkaCompression {
    /// librdkafka's `compression.codec` value.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KafkaAcks {
    /// Every in-sync replica has the record (and the producer is
    /// idempotent unless turned off).
    #[serde(rename = "all")]
    All,
    /// The partition leader has it.
    #[serde(rename = "leader")]
    Leader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// A validated Kafka sink.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port` of the bootstrap brokers.
    pub brokers: Vec<String>,
    pub topic: Template,
    pub key: Option<Template>,
    pub payload: KafkaPayload,
    pub acks: KafkaAcks,
    pub idempotent: bool,
    pub compression: KafkaCompression,
    /// librdkafka's `batch.size` (bytes of one produce request's batch).
    pub batch_max_bytes: usize,
    /// How long a record may wait in librdkafka (including its own
    /// retries) before its delivery report says it failed; the worker
    /// then retries the record.
    pub message_timeout: Duration,
    /// The largest record the producer sends (`message.max.bytes`);
    /// larger ones are refused for good (dead-lettered).
    pub max_message_bytes: usize,
    pub dead_letter: Option<PathBuf>,
    pub tls: Option<KafkaTls>,
    pub sasl: Option<KafkaSasl>,
}

#[derive(Debug, Clone)]
pub struct KafkaTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct KafkaSasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

/// librdkafka's security settings (`security.protocol`, `ssl.*`,
/// `sasl.*`) for a client with this TLS and SASL: the one list the
/// producer (Kafka sink) and the consumer (Kafka listener) both set.
pub(crate) fn kafka_security_settings(
    tls: Option<&KafkaTls>,
    sasl: Option<&KafkaSasl>,
) -> Vec<(&'static str, String)> {
    let protocol = match (tls.is_some(), sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    let mut settings = vec![("security.protocol", protocol.to_owned())];
    if let Some(t) = tls {
        for (key, file) in [
            ("ssl.ca.location", &t.ca_file),
            ("ssl.certificate.location", &t.cert_file),
            ("ssl.key.location", &t.key_file),
        ] {
            if let Some(f) = file {
                settings.push((key, f.display().to_string()));
            }
        }
    }
    if let Some(s) = sasl {
        settings.extend([
            ("sasl.mechanisms", s.mechanism.as_str().to_owned()),
            ("sasl.username", s.username.clone()),
            ("sasl.password", s.password.clone()),
        ]);
    }
    settings
}

/// A `topic` or `key` template: text and `{field}` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    /// `{route}`: the route's name.
    Route,
    /// `{host}`, `{app}`, `{procid}`, `{msgid}`, `{facility}`,
    /// `{severity}`, `{sd.ID.PARAM}`.
    Value(Source),
}

impl Template {
    /// Constant text (no `{field}`).
    pub fn constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [TemplatePart::Text(t)] => Some(t),
            _ => None,
        }
    }
}

/// Kafka's rule for a topic name: 1 to 249 of `[a-zA-Z0-9._-]`, not
/// `.` or `..`. `Err` says what is wrong with `t`.
pub(crate) fn topic_name(t: &str) -> Result<(), String> {
    if let Some(bad) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{t:?}: {bad:?} is not allowed in a Kafka topic name (letters, digits, . _ -)"
        ));
    }
    if t.is_empty() || t.len() > 249 {
        return Err(format!(
            "{t:?}: a Kafka topic name has 1 to 249 characters, not {}",
            t.len()
        ));
    }
    if t == "." || t == ".." {
        return Err(format!("{t:?} is not a Kafka topic name"));
    }
    Ok(())
}

/// The default worker batch and librdkafka batch size.
const DEFAULT_BATCH_EVENTS: usize = 5_000;
const DEFAULT_BATCH_BYTES: usize = 1024 * 1024;

impl Validator<'_, '_> {
    /// An `[[sinks]]` of type = "kafka".
    pub(super) fn kafka(
        &self,
        base: &[Seg],
        raw: RawKafka,
        data_dir: &Path,
    ) -> Result<SinkConfig, ConfigError> {
        self.brokers(&at(base, "brokers"), &raw.brokers)?;
        let topic = self.template(&at(base, "topic"), &raw.topic)?;
        if topic.constant() == Some("") {
            return Err(self.err(&at(base, "topic"), "must not be empty"));
        }
        if let Some(t) = topic.constant() {
            if let Err(why) = topic_name(t) {
                return Err(self.err(&at(base, "topic"), why));
            }
        }
        let key = raw
            .key
            .as_deref()
            .map(|k| self.template(&at(base, "key"), k))
            .transpose()?;
        let acks = raw.acks.unwrap_or(KafkaAcks::All);
        let idempotent = raw.idempotent.unwrap_or(acks == KafkaAcks::All);
        if idempotent && acks != KafkaAcks::All {
            return Err(self.err(
                &at(base, "idempotent"),
                "the idempotent producer needs acks = \"all\"",
            ));
        }
        let batch_max_events = self.batch(base, raw.batch_max_events, DEFAULT_BATCH_EVENTS)?;
        let batch_max_bytes = raw.batch_max_bytes.unwrap_or(DEFAULT_BATCH_BYTES);
        if !(1_024..=1_000_000_000).contains(&batch_max_bytes) {
            return Err(self.err(
                &at(base, "batch_max_bytes"),
                "must be between 1024 and 1000000000",
            ));
        }
        let max_message_bytes = raw.max_message_bytes.unwrap_or(1_000_000);
        if !(1_000..=1_000_000_000).contains(&max_message_bytes) {
            return Err(self.err(
                &at(base, "max_message_bytes"),
                "must be between 1000 and 1000000000",
            ));
        }
        let timeout_secs = raw.message_timeout_secs.unwrap_or(30);
        if !(1..=3_600).contains(&timeout_secs) {
            return Err(self.err(
                &at(base, "message_timeout_secs"),
                "must be between 1 and 3600",
            ));
        }
        let linger_ms = raw.linger_ms.unwrap_or(DEFAULT_HTTP_LINGER_MS);
        if linger_ms > 60_000 {
            return Err(self.err(&at(base, "linger_ms"), "must be at most 60000"));
        }
        let (tls, sasl) = self.kafka_security(base, raw.tls, raw.sasl)?;
        let dead_letter = Some(self.dead_letter(&raw.name, raw.dead_letter_path, data_dir));
        // Retried until delivered unless limited: an unreachable broker
        // holds the queue (whose when_full decides), it is never a drop of
        // the sink's own.
        let retry = RetryPolicy::kafka(
            raw.max_retries,
            raw.max_retry_secs,
            self.max_backoff(base, raw.max_backoff_secs)?,
        );
        Ok(SinkConfig {
            name: raw.name,
            batch_max_events,
            linger: Duration::from_millis(linger_ms),
            retry,
            kind: SinkKind::Kafka(Box::new(KafkaConfig {
                brokers: raw.brokers,
                topic,
                key,
                payload: raw.payload.unwrap_or_default(),
                acks,
                idempotent,
                compression: raw.compression.unwrap_or(KafkaCompression::None),
                batch_max_bytes,
                message_timeout: Duration::from_secs(timeout_secs),
                max_message_bytes,
                dead_letter,
                tls,
                sasl,
            })),
        })
    }

    /// Bootstrap brokers (a Kafka sink's or listener's `brokers` at
    /// `path`): at least one, each `host:port` with a port 1–65535.
    pub(super) fn brokers(&self, path: &[Seg], brokers: &[String]) -> Result<(), ConfigError> {
        if brokers.is_empty() {
            return Err(self.err(path, "at least one broker (host:port) is needed"));
        }
        for b in brokers {
            let ok = b.rsplit_once(':').is_some_and(|(h, p)| {
                !h.is_empty()
                    && !h.contains(|c: char| c == ',' || c.is_whitespace())
                    && !p.is_empty()
                    && p.bytes().all(|d| d.is_ascii_digit())
                    && p.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return Err(self.err(path, format!("{b:?} is not host:port (a port 1-65535)")));
            }
        }
        Ok(())
    }

    /// `[sinks.tls]` (files must be readable) and `[sinks.sasl]`.
    fn kafka_security(
        &self,
        base: &[Seg],
        tls: Option<RawKafkaTls>,
        sasl: Option<RawKafkaSasl>,
    ) -> Result<(Option<KafkaTls>, Option<KafkaSasl>), ConfigError> {
        let tls = tls.map(|t| {
            let base_tls = at(base, "tls");
            if t.cert_file.is_some() != t.key_file.is_some() {
                return Err(self.err(
                    &base_tls,
                    "cert_file and key_file go together (a client certificate and its key)",
                ));
            }
            for (field, file) in [
                ("ca_file", &t.ca_file),
                ("cert_file", &t.cert_file),
                ("key_file", &t.key_file),
            ] {
                if let Some(f) = file {
                    let path = self.resolve(f.clone());
                    if !path.is_file() {
                        return Err(self.err(
                            &at(&base_tls, field),
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                }
            }
            Ok(KafkaTls {
                ca_file: t.ca_file.map(|f| self.resolve(f)),
                cert_file: t.cert_file.map(|f| self.resolve(f)),
                key_file: t.key_file.map(|f| self.resolve(f)),
            })
        });
        let tls = tls.transpose()?;
        let sasl = match sasl {
            None => None,
            Some(s) => {
                if s.username.is_empty() {
                    return Err(self.err(&at(&at(base, "sasl"), "username"), "must not be empty"));
                }
                if s.password.is_empty() {
                    return Err(self.err(&at(&at(base, "sasl"), "password"), "must not be empty"));
                }
                Some(KafkaSasl {
                    mechanism: s.mechanism.unwrap_or(SaslMechanism::ScramSha512),
                    username: s.username,
                    password: s.password,
                })
            }
        };
        Ok((tls, sasl))
    }

    /// A `topic` / `key` template: `{route}`, a header field (`host`,
    /// `app`, `procid`, `msgid`, `facility`, `severity`) or
    /// `sd.SD-ID.PARAM` in braces, text around them.
    fn template(&self, path: &[Seg], text: &str) -> Result<Template, ConfigError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(self.err(path, "unclosed { in the template"));
            };
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_owned()));
            }
            let name = &rest[open + 1..open + close];
            let part = if name == "route" {
                TemplatePart::Route
            } else if let Some(h) = HeaderField::parse(name) {
                TemplatePart::Value(Source::Header(h))
            } else if let Some((id, param)) = name
                .strip_prefix("sd.")
                .and_then(|r| r.split_once('.'))
                .filter(|(id, param)| !id.is_empty() && !param.is_empty())
            {
                TemplatePart::Value(Source::Sd {
                    id: id.to_owned(),
                    param: param.to_owned(),
                })
            } else {
                return Err(self.err(
                    path,
                    format!("unknown {{{name}}}: expected {{route}}, {{host}}, {{app}}, {{procid}}, {{msgid}}, {{facility}}, {{severity}} or {{sd.SD-ID.PARAM}}"),
                ));
            };
            parts.push(part);
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(self.err(path, "} without {"));
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, KafkaPayload, OutputConfig, SinkKind, TemplatePart};

    const TCP: &str = "[[listeners]]\nname = \"t\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\n";

    fn config(listener_extra: &str, sink_extra: &str, route_extra: &str) -> String {
        format!(
            "{TCP}{listener_extra}\n[[sinks]]\nname = \"k\"\ntype = \"kafka\"\nbrokers = [\"kafka1:9092\"]\ntopic = \"syslog.{{route}}\"\n{sink_extra}\n[[routes]]\nname = \"r\"\nsink = \"k\"\n{route_extra}\n"
        )
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, "edge.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_raw_acks_all_idempotent_and_retry_until_delivered() {
        let c = Config::from_toml(&config("", "key = \"{host}\"", ""), "edge.toml").unwrap();
        let SinkKind::Kafka(k) = &c.sinks[0].kind else {
            panic!("not kafka")
        };
        assert_eq!(k.payload, KafkaPayload::Raw);
        assert_eq!(k.acks, super::KafkaAcks::All);
        assert!(k.idempotent);
        assert_eq!(c.sinks[0].retry.max_attempts, u32::MAX);
        assert_eq!(
            k.topic.parts,
            vec![TemplatePart::Text("syslog.".into()), TemplatePart::Route]
        );
        assert!(matches!(c.routes[0].output, OutputConfig::Raw));
        assert!(c.routes[0].kafka.is_some());
    }

    /// The raw envelope is one frame: a listener that joins frames into
    /// events is refused beside a raw route, naming file, line and field.
    #[test]
    fn a_raw_route_beside_a_multiline_listener_is_refused() {
        let e = err(&config("multiline = true", "", ""));
        assert!(
            e.starts_with("edge.toml:5:") && e.contains("listeners[0].multiline"),
            "{e}"
        );
        assert!(e.contains("raw envelope"), "{e}");
        // A document payload may join.
        assert!(
            Config::from_toml(&config("multiline = true", "payload = \"ecs\"", ""), "e").is_ok()
        );
    }

    #[test]
    fn the_payload_decides_the_route_output() {
        let e = err(&config("", "", "document = {}"));
        assert!(
            e.contains("routes[0].document") && e.contains("payload = \"raw\""),
            "{e}"
        );
        let e = err(&config(
            "",
            "payload = \"ecs\"",
            "document = { format = \"flume\" }",
        ));
        assert!(e.contains("routes[0].document.format"), "{e}");
        let e = err(&config("", "payload = \"line_protocol\"", ""));
        assert!(e.contains("needs a [metric] table"), "{e}");
        let c = Config::from_toml(&config("", "payload = \"flume\"", ""), "e").unwrap();
        assert!(matches!(
            c.routes[0].output,
            OutputConfig::Document(crate::config::DocumentFormat::Flume { .. })
        ));
    }

    /// The producer and the consumer get the same security settings.
    #[test]
    fn security_settings_follow_tls_and_sasl() {
        use super::{KafkaSasl, KafkaTls, SaslMechanism, kafka_security_settings};
        let tls = KafkaTls {
            ca_file: Some("/etc/ca.pem".into()),
            cert_file: None,
            key_file: None,
        };
        let sasl = KafkaSasl {
            mechanism: SaslMechanism::Plain,
            username: "u".into(),
            password: "p".into(),
        };
        let s = |t, s| {
            kafka_security_settings(t, s)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(s(None, None), ["security.protocol=plaintext"]);
        assert_eq!(
            s(Some(&tls), None),
            ["security.protocol=ssl", "ssl.ca.location=/etc/ca.pem"]
        );
        assert_eq!(
            s(None, Some(&sasl)),
            [
                "security.protocol=sasl_plaintext",
                "sasl.mechanisms=PLAIN",
                "sasl.username=u",
                "sasl.password=p"
            ]
        );
        assert_eq!(s(Some(&tls), Some(&sasl))[0], "security.protocol=sasl_ssl");
    }

    #[test]
    fn bad_settings_name_their_field() {
        for (sink, field) in [
            ("brokers = []", "sinks[0].brokers"),
            ("key = \"{nope}\"", "sinks[0].key"),
            (
                "acks = \"leader\"\nidempotent = true",
                "sinks[0].idempotent",
            ),
            ("max_message_bytes = 10", "sinks[0].max_message_bytes"),
            ("message_timeout_secs = 0", "sinks[0].message_timeout_secs"),
            (
                "[sinks.sasl]\nusername = \"u\"\npassword = \"\"",
                "sinks[0].sasl.password",
            ),
            ("[sinks.tls]\ncert_file = \"c.pem\"", "sinks[0].tls"),
        ] {
            let text = config("", sink, "").replacen(
                "brokers = [\"kafka1:9092\"]\n",
                "",
                usize::from(sink.starts_with("brokers")),
            );
            let e = err(&text);
            assert!(e.contains(field), "{sink:?}: {e}");
        }
        let e = err(&config("", "", "").replace("syslog.{route}", "bad topic"));
        assert!(e.contains("sinks[0].topic"), "{e}");
    }
}
