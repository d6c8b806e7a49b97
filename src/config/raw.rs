//! The TOML file as parsed: strict serde structs, before validation.

use super::*;

// ---------------------------------------------------------------- raw structs

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) timezone: Option<String>,
    pub(super) shutdown_timeout_secs: Option<u64>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) admin: Option<RawAdmin>,
    #[serde(default)]
    pub(super) listeners: Vec<RawListener>,
    #[serde(default)]
    pub(super) sinks: Vec<RawSink>,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    pub(super) default_route: Option<RawDefaultRoute>,
    pub(super) grok: Option<RawGrok>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrok {
    /// Files of `NAME pattern` lines, relative to the config file.
    #[serde(default)]
    pub(super) pattern_files: Vec<PathBuf>,
    /// Inline definitions; they win over files and built-ins.
    #[serde(default)]
    pub(super) patterns: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    #[serde(default = "default_true")]
    pub(super) enabled: bool,
    pub(super) listen: Option<String>,
    pub(super) unhealthy_after_secs: Option<u64>,
    pub(super) token: Option<String>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    pub(super) name: String,
    pub(super) protocol: ListenerProtocol,
    /// Required, except on a `kafka` listener (which has none).
    pub(super) listen: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) idle_timeout_secs: Option<u64>,
    pub(super) frame_timeout_secs: Option<u64>,
    pub(super) max_connections_per_peer: Option<usize>,
    pub(super) listen_backlog: Option<u32>,
    pub(super) max_frame_bytes: Option<usize>,
    pub(super) framing: Option<Framing>,
    pub(super) timezone: Option<String>,
    pub(super) sender: Option<Sender>,
    pub(super) app_name: Option<String>,
    pub(super) strip_facility_prefix: Option<bool>,
    pub(super) newline_escape: Option<String>,
    pub(super) decode: Option<DecodeMode>,
    pub(super) multiline: Option<bool>,
    pub(super) multiline_window_ms: Option<u64>,
    pub(super) multiline_max_lines: Option<usize>,
    pub(super) multiline_max_bytes: Option<usize>,
    pub(super) tls: Option<RawTls>,
    pub(super) receive_buffer_bytes: Option<usize>,
    pub(super) sockets: Option<usize>,
    pub(super) allow: Option<Vec<String>>,
    // protocol = "kafka" only (see config/kafka.rs).
    pub(super) brokers: Option<Vec<String>>,
    pub(super) topics: Option<Vec<String>>,
    pub(super) group_id: Option<String>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) commit_interval_ms: Option<u64>,
    pub(super) session_timeout_ms: Option<u64>,
    pub(super) kafka_tls: Option<RawKafkaTls>,
    pub(super) sasl: Option<RawKafkaSasl>,
}

/// `[listeners.tls]` of a `protocol = "tls"` listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert_file: PathBuf,
    pub(super) key_file: PathBuf,
    pub(super) client_ca_file: Option<PathBuf>,
    pub(super) handshake_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawSink {
    File {
        name: String,
        path: PathBuf,
        batch_max_events: Option<usize>,
        linger_ms: Option<u64>,
    },
    Stdout {
        name: String,
        batch_max_events: Option<usize>,
        linger_ms: Option<u64>,
    },
    Influxdb(RawInflux),
    Elasticsearch(RawElasticsearch),
    Kafka(RawKafka),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: String,
    pub(super) sink: String,
    #[serde(rename = "final", default)]
    pub(super) is_final: bool,
    pub(super) facility: Option<OneOrMany<FacilityValue>>,
    pub(super) severity: Option<SeverityValue>,
    pub(super) hostname: Option<OneOrMany<String>>,
    pub(super) appname: Option<OneOrMany<String>>,
    pub(super) msgid: Option<OneOrMany<String>>,
    pub(super) pattern: Option<String>,
    pub(super) metric: Option<RawMetric>,
    pub(super) document: Option<RawDocument>,
    pub(super) queue: Option<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaultRoute {
    pub(super) name: Option<String>,
    pub(super) sink: String,
    pub(super) metric: Option<RawMetric>,
    pub(super) document: Option<RawDocument>,
    pub(super) queue: Option<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetric {
    pub(super) measurement: String,
    #[serde(default)]
    pub(super) tags: Vec<toml::Value>,
    #[serde(default)]
    pub(super) on_conversion_error: OnConversionError,
    #[serde(default)]
    pub(super) fields: toml::Table,
    #[serde(default = "default_true")]
    pub(super) host_tag: bool,
    #[serde(default = "default_true")]
    pub(super) app_tag: bool,
    #[serde(default)]
    pub(super) key_values: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocument {
    pub(super) format: Option<RawDocumentFormat>,
    /// ECS: also keep the frame as received in `event.original`.
    pub(super) event_original: Option<bool>,
    /// Flume: the syslog sources' `keepFields`, as Flume spelled it.
    pub(super) keep_fields: Option<RawKeepFields>,
}

/// `keep_fields = true | false | "all" | "none" | "priority version timestamp hostname"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawKeepFields {
    Bool(bool),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawDocumentFormat {
    Canonical,
    Ecs,
    Flume,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub(super) max_events: Option<usize>,
    pub(super) max_bytes: Option<usize>,
    pub(super) when_full: Option<WhenFull>,
    pub(super) block_timeout_ms: Option<u64>,
    pub(super) durable: Option<bool>,
    pub(super) spill_max_bytes: Option<u64>,
    pub(super) spill_segment_bytes: Option<u64>,
    pub(super) fsync: Option<RawFsync>,
    pub(super) fsync_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawFsync {
    Never,
    Interval,
    Batch,
    Always,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(super) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum FacilityValue {
    Code(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum SeverityValue {
    Code(i64),
    Name(String),
}

pub(super) fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInflux {
    pub(super) name: String,
    pub(super) urls: Vec<String>,
    pub(super) api: Option<InfluxApi>,
    pub(super) database: Option<String>,
    pub(super) retention_policy: Option<String>,
    pub(super) org: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) token: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) batch_max_events: Option<usize>,
    pub(super) batch_max_bytes: Option<usize>,
    pub(super) linger_ms: Option<u64>,
    pub(super) gzip: Option<bool>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_retries: Option<u32>,
    pub(super) max_retry_secs: Option<u64>,
    pub(super) max_backoff_secs: Option<u64>,
    pub(super) dead_letter_path: Option<PathBuf>,
    pub(super) create_database: Option<bool>,
    pub(super) retention_duration: Option<String>,
    pub(super) unsigned: Option<UnsignedAs>,
    pub(super) precision: Option<Precision>,
    pub(super) ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawElasticsearch {
    pub(super) name: String,
    pub(super) urls: Vec<String>,
    #[serde(default)]
    pub(super) index: String,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) pipeline: Option<String>,
    pub(super) batch_max_events: Option<usize>,
    pub(super) batch_max_bytes: Option<usize>,
    pub(super) linger_ms: Option<u64>,
    pub(super) gzip: Option<bool>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_retries: Option<u32>,
    pub(super) max_retry_secs: Option<u64>,
    pub(super) max_backoff_secs: Option<u64>,
    pub(super) dead_letter_path: Option<PathBuf>,
    pub(super) document_ids: Option<bool>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) manage_template: Option<bool>,
    pub(super) template_name: Option<String>,
    pub(super) data_stream: Option<String>,
    pub(super) ilm_policy: Option<String>,
}
