//! The TOML file as parsed: strict serde structs, before validation.

use super::*;

/// A strict raw table: `#[derive(Debug, Deserialize)]` with
/// `#[serde(deny_unknown_fields)]`, every field `pub(super)`. A field list
/// may name a group of keys several sinks spell alike (`..batch`,
/// `..retry`, `..http_batch_and_retry`); the group's keys stand there, in
/// their order, so serde's unknown-field message ("expected one of …",
/// which lists the fields in declaration order) reads as before. A nested
/// table would change the TOML, and `#[serde(flatten)]` does not go with
/// `deny_unknown_fields`.
macro_rules! strict_table {
    ($(#[$meta:meta])* struct $name:ident { $($body:tt)* }) => {
        strict_table!(@munch [$(#[$meta])* $name] [] $($body)*);
    };
    // How many records a batch holds, its bytes, how long it may wait.
    (@munch $head:tt $done:tt ..batch, $($rest:tt)*) => {
        strict_table!(@munch $head $done
            batch_max_events: Option<usize>,
            batch_max_bytes: Option<usize>,
            linger_ms: Option<u64>,
            $($rest)*);
    };
    // How long a sink retries, and where what it gives up on goes.
    (@munch $head:tt $done:tt ..retry, $($rest:tt)*) => {
        strict_table!(@munch $head $done
            max_retries: Option<u32>,
            max_retry_secs: Option<u64>,
            max_backoff_secs: Option<u64>,
            dead_letter_path: Option<PathBuf>,
            $($rest)*);
    };
    // The HTTP sinks' (InfluxDB, Elasticsearch) batch, request and retry keys.
    (@munch $head:tt $done:tt ..http_batch_and_retry, $($rest:tt)*) => {
        strict_table!(@munch $head $done
            ..batch,
            gzip: Option<bool>,
            timeout_secs: Option<u64>,
            ..retry,
            $($rest)*);
    };
    (@munch $head:tt [$($done:tt)*] $(#[$fmeta:meta])* $field:ident : $ty:ty, $($rest:tt)*) => {
        strict_table!(@munch $head [$($done)* $(#[$fmeta])* pub(super) $field: $ty,] $($rest)*);
    };
    (@munch [$(#[$meta:meta])* $name:ident] [$($done:tt)*]) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $($done)*
        }
    };
}

// ---------------------------------------------------------------- raw structs

strict_table! {
    struct RawConfig {
        timezone: Option<String>,
        shutdown_timeout_secs: Option<u64>,
        data_dir: Option<PathBuf>,
        admin: Option<RawAdmin>,
        #[serde(default)]
        listeners: Vec<RawListener>,
        #[serde(default)]
        sinks: Vec<RawSink>,
        #[serde(default)]
        routes: Vec<RawRoute>,
        default_route: Option<RawDefaultRoute>,
        grok: Option<RawGrok>,
    }
}

strict_table! {
    struct RawGrok {
        /// Files of `NAME pattern` lines, relative to the config file.
        #[serde(default)]
        pattern_files: Vec<PathBuf>,
        /// Inline definitions; they win over files and built-ins.
        #[serde(default)]
        patterns: std::collections::BTreeMap<String, String>,
    }
}

strict_table! {
    struct RawAdmin {
        #[serde(default = "default_true")]
        enabled: bool,
        listen: Option<String>,
        unhealthy_after_secs: Option<u64>,
        token: Option<String>,
        #[serde(default)]
        allowed_hosts: Vec<String>,
    }
}

strict_table! {
    struct RawListener {
        name: String,
        protocol: ListenerProtocol,
        /// Required, except on a `kafka` listener (which has none).
        listen: Option<String>,
        max_connections: Option<usize>,
        idle_timeout_secs: Option<u64>,
        frame_timeout_secs: Option<u64>,
        max_connections_per_peer: Option<usize>,
        listen_backlog: Option<u32>,
        max_frame_bytes: Option<usize>,
        framing: Option<Framing>,
        timezone: Option<String>,
        sender: Option<Sender>,
        app_name: Option<String>,
        strip_facility_prefix: Option<bool>,
        newline_escape: Option<String>,
        decode: Option<DecodeMode>,
        multiline: Option<bool>,
        multiline_window_ms: Option<u64>,
        multiline_max_lines: Option<usize>,
        multiline_max_bytes: Option<usize>,
        tls: Option<RawTls>,
        receive_buffer_bytes: Option<usize>,
        sockets: Option<usize>,
        allow: Option<Vec<String>>,
        // protocol = "kafka" only (see config/kafka.rs).
        brokers: Option<Vec<String>>,
        topics: Option<Vec<String>>,
        group_id: Option<String>,
        max_in_flight: Option<usize>,
        commit_interval_ms: Option<u64>,
        session_timeout_ms: Option<u64>,
        kafka_tls: Option<RawKafkaTls>,
        sasl: Option<RawKafkaSasl>,
    }
}

strict_table! {
    /// `[listeners.tls]` of a `protocol = "tls"` listener.
    struct RawTls {
        cert_file: PathBuf,
        key_file: PathBuf,
        client_ca_file: Option<PathBuf>,
        handshake_timeout_secs: Option<u64>,
    }
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

strict_table! {
    struct RawRoute {
        name: String,
        sink: String,
        #[serde(rename = "final", default)]
        is_final: bool,
        facility: Option<OneOrMany<FacilityValue>>,
        severity: Option<SeverityValue>,
        hostname: Option<OneOrMany<String>>,
        appname: Option<OneOrMany<String>>,
        msgid: Option<OneOrMany<String>>,
        pattern: Option<String>,
        metric: Option<RawMetric>,
        document: Option<RawDocument>,
        queue: Option<RawQueue>,
    }
}

strict_table! {
    struct RawDefaultRoute {
        name: Option<String>,
        sink: String,
        metric: Option<RawMetric>,
        document: Option<RawDocument>,
        queue: Option<RawQueue>,
    }
}

strict_table! {
    struct RawMetric {
        measurement: String,
        #[serde(default)]
        tags: Vec<toml::Value>,
        #[serde(default)]
        on_conversion_error: OnConversionError,
        #[serde(default)]
        fields: toml::Table,
        #[serde(default = "default_true")]
        host_tag: bool,
        #[serde(default = "default_true")]
        app_tag: bool,
        #[serde(default)]
        key_values: bool,
    }
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

strict_table! {
    struct RawQueue {
        max_events: Option<usize>,
        max_bytes: Option<usize>,
        when_full: Option<WhenFull>,
        block_timeout_ms: Option<u64>,
        durable: Option<bool>,
        spill_max_bytes: Option<u64>,
        spill_segment_bytes: Option<u64>,
        fsync: Option<RawFsync>,
        fsync_interval_ms: Option<u64>,
    }
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

strict_table! {
    struct RawInflux {
        name: String,
        urls: Vec<String>,
        api: Option<InfluxApi>,
        database: Option<String>,
        retention_policy: Option<String>,
        org: Option<String>,
        bucket: Option<String>,
        token: Option<String>,
        username: Option<String>,
        password: Option<String>,
        ..http_batch_and_retry,
        create_database: Option<bool>,
        retention_duration: Option<String>,
        unsigned: Option<UnsignedAs>,
        precision: Option<Precision>,
        ca_file: Option<PathBuf>,
    }
}

strict_table! {
    struct RawElasticsearch {
        name: String,
        urls: Vec<String>,
        #[serde(default)]
        index: String,
        username: Option<String>,
        password: Option<String>,
        api_key: Option<String>,
        pipeline: Option<String>,
        ..http_batch_and_retry,
        document_ids: Option<bool>,
        ca_file: Option<PathBuf>,
        manage_template: Option<bool>,
        template_name: Option<String>,
        data_stream: Option<String>,
        ilm_policy: Option<String>,
    }
}

strict_table! {
    struct RawKafka {
        name: String,
        brokers: Vec<String>,
        topic: String,
        key: Option<String>,
        payload: Option<KafkaPayload>,
        acks: Option<KafkaAcks>,
        idempotent: Option<bool>,
        compression: Option<KafkaCompression>,
        ..batch,
        message_timeout_secs: Option<u64>,
        max_message_bytes: Option<usize>,
        ..retry,
        tls: Option<RawKafkaTls>,
        sasl: Option<RawKafkaSasl>,
    }
}

strict_table! {
    struct RawKafkaTls {
        ca_file: Option<PathBuf>,
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
    }
}

strict_table! {
    struct RawKafkaSasl {
        mechanism: Option<SaslMechanism>,
        username: String,
        password: String,
    }
}
