//! The TOML configuration: parsed strictly into raw structs, then validated
//! into runtime types. Every error names the file, the line and the key.
//!
//! `${NAME}` anywhere in the file is replaced by the environment variable
//! `NAME` before parsing (for secrets); an unset variable is an error.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::decode::{DecodeMode, DecodeOptions, Sender};
use crate::framing::Framing;
use crate::grok::Library;
use crate::multiline::{self, MultilineConfig};
use crate::tls::ListenerTls;

/// The embedded default (`config/sluice.toml`, compiled in).
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/sluice.toml");

/// A configuration error, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        /// Dotted TOML path, e.g. `routes[1].pattern`.
        key: String,
        message: String,
    },
}

// ---------------------------------------------------------------- raw structs

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrok {
    /// Files of `NAME pattern` lines, relative to the config file.
    #[serde(default)]
    pattern_files: Vec<PathBuf>,
    /// Inline definitions; they win over files and built-ins.
    #[serde(default)]
    patterns: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    #[serde(default = "default_true")]
    enabled: bool,
    listen: Option<String>,
    unhealthy_after_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: String,
    protocol: ListenerProtocol,
    listen: String,
    max_connections: Option<usize>,
    idle_timeout_secs: Option<u64>,
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
}

/// `[listeners.tls]` of a `protocol = "tls"` listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    handshake_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawSink {
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
    Influxdb {
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
        batch_max_events: Option<usize>,
        batch_max_bytes: Option<usize>,
        linger_ms: Option<u64>,
        gzip: Option<bool>,
        timeout_secs: Option<u64>,
        max_retries: Option<u32>,
        max_retry_secs: Option<u64>,
        dead_letter_path: Option<PathBuf>,
        create_database: Option<bool>,
        retention_duration: Option<String>,
        unsigned: Option<UnsignedAs>,
        precision: Option<Precision>,
        ca_file: Option<PathBuf>,
    },
    Elasticsearch {
        name: String,
        urls: Vec<String>,
        index: String,
        username: Option<String>,
        password: Option<String>,
        api_key: Option<String>,
        pipeline: Option<String>,
        batch_max_events: Option<usize>,
        batch_max_bytes: Option<usize>,
        linger_ms: Option<u64>,
        gzip: Option<bool>,
        timeout_secs: Option<u64>,
        max_retries: Option<u32>,
        max_retry_secs: Option<u64>,
        dead_letter_path: Option<PathBuf>,
        document_ids: Option<bool>,
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaultRoute {
    name: Option<String>,
    sink: String,
    metric: Option<RawMetric>,
    document: Option<RawDocument>,
    queue: Option<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    format: Option<RawDocumentFormat>,
    /// ECS: also keep the frame as received in `event.original`.
    event_original: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawDocumentFormat {
    Canonical,
    Ecs,
    Flume,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawFsync {
    Never,
    Interval,
    Batch,
    Always,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FacilityValue {
    Code(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SeverityValue {
    Code(i64),
    Name(String),
}

fn default_true() -> bool {
    true
}

// -------------------------------------------------------------- runtime types

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or `<embedded default>`).
    pub origin: String,
    pub timezone: Tz,
    pub shutdown_timeout: Duration,
    /// Spill logs live in `<data_dir>/spill/<route>/`.
    pub data_dir: PathBuf,
    pub admin: Option<SocketAddr>,
    /// A sink failing for longer than this makes `/health` answer 503.
    pub unhealthy_after: Duration,
    pub listeners: Vec<ListenerConfig>,
    pub sinks: Vec<SinkConfig>,
    /// Ordered routes; the default route, if any, is last with `is_default`.
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Udp,
    Tcp,
    /// TCP with TLS (RFC 5425); needs `[listeners.tls]`.
    Tls,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub protocol: ListenerProtocol,
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub max_frame_bytes: usize,
    pub framing: Framing,
    /// How frames are decoded: timezone, sender shape, log4j options.
    pub decode: DecodeOptions,
    /// Join multi-frame messages (log4j 1.2 stack traces); `None` = off.
    pub multiline: Option<MultilineConfig>,
    /// Certificates and handshake settings of a `tls` listener.
    pub tls: Option<ListenerTls>,
    /// UDP: `SO_RCVBUF` to ask for; `None` keeps the system default.
    pub receive_buffer_bytes: Option<usize>,
    /// UDP: sockets bound to the address with `SO_REUSEPORT`, each read by
    /// its own task (the kernel spreads senders over them by address).
    pub sockets: usize,
    /// Source networks allowed to send; `None`: everyone.
    pub allow: Option<Arc<AllowList>>,
}

/// Source networks a listener accepts (`allow = ["10.0.0.0/8", "::1"]`).
#[derive(Debug, Clone)]
pub struct AllowList(Vec<ipnet::IpNet>);

impl AllowList {
    /// Is `ip` inside one of the networks? IPv4-mapped IPv6 addresses
    /// (`::ffff:10.1.2.3`) are matched as IPv4.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfluxApi {
    V1,
    V2,
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub kind: SinkKind,
    pub batch_max_events: usize,
    pub linger: Duration,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    File { path: PathBuf },
    Stdout,
    Influxdb(InfluxConfig),
    Elasticsearch(ElasticsearchConfig),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File { .. } => "file",
            SinkKind::Stdout => "stdout",
            SinkKind::Influxdb(_) => "influxdb",
            SinkKind::Elasticsearch(_) => "elasticsearch",
        }
    }
}

#[derive(Debug, Clone)]
pub struct InfluxConfig {
    pub urls: Vec<String>,
    pub api: InfluxApi,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub batch_max_bytes: usize,
    pub gzip: bool,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Give up on a batch after retrying this long.
    pub max_retry_time: Duration,
    /// Where rejected lines go, one JSON object per line with the reason.
    pub dead_letter: Option<PathBuf>,
    /// 1.x: create the database (and the retention policy) at start-up.
    pub create_database: bool,
    /// With `create_database`: the retention policy's duration (`52w`,
    /// `INF`); it is created as `retention_policy` if missing.
    pub retention_duration: Option<String>,
    /// How `uint` fields are written: 1.x rejects `u` unless built for it.
    pub unsigned: UnsignedAs,
    /// Timestamp precision of the points written.
    pub precision: Precision,
    /// PEM file of the CA(s) that sign the server's HTTPS certificate, in
    /// addition to the system's.
    pub ca_file: Option<PathBuf>,
}

/// Timestamp precision of line protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Precision {
    #[default]
    #[serde(rename = "ns")]
    Nanoseconds,
    #[serde(rename = "us")]
    Microseconds,
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
        }
    }

    /// The `precision=` value of the write APIs (1.x wants `u` for µs).
    pub fn query_value(self, v1: bool) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds if v1 => "u",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }
}

/// How an InfluxDB sink writes unsigned integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsignedAs {
    /// `u` suffix (2.x, or 1.x built with uint support).
    Unsigned,
    /// `i` suffix; values over i64::MAX are a conversion error.
    Integer,
    /// A float.
    Float,
}

#[derive(Debug, Clone)]
pub struct ElasticsearchConfig {
    pub urls: Vec<String>,
    pub index: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub api_key: Option<String>,
    pub pipeline: Option<String>,
    pub batch_max_bytes: usize,
    pub gzip: bool,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Give up on items after retrying this long (then they are dead-lettered).
    pub max_retry_time: Duration,
    pub dead_letter: Option<PathBuf>,
    /// Deterministic `_id`s, so retries never duplicate; false:
    /// Elasticsearch generates ids.
    pub document_ids: bool,
    /// PEM file of the CA(s) that sign the nodes' HTTPS certificates, in
    /// addition to the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Index into [`Config::sinks`].
    pub sink: usize,
    pub is_final: bool,
    /// True for `[default_route]`: receives only events no route matched.
    pub is_default: bool,
    pub conditions: Conditions,
    /// The pattern in `regex` syntax (grok expanded).
    pub pattern: Option<String>,
    /// The pattern as written in the config.
    pub pattern_source: Option<String>,
    /// Capture types declared in grok (`%{NUMBER:used:int}`).
    pub capture_types: Vec<(String, FieldType)>,
    pub output: OutputConfig,
    pub queue: QueueConfig,
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
    /// What Flume's ElasticSearchSink with the logstash serializer wrote:
    /// `@message`, `@timestamp`, `@source_host`, `@fields` (Flume's headers).
    Flume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int,
    Uint,
    Float,
    Bool,
    String,
    /// `1.5s`, `200ms`, `1h30m`, `90` (seconds) → integer nanoseconds.
    Duration,
    /// `1.5KB`, `2MiB`, `512` → integer bytes (kB = 1000, KiB = 1024).
    Bytes,
}

impl FieldType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "int" => FieldType::Int,
            "uint" => FieldType::Uint,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "string" => FieldType::String,
            "duration" => FieldType::Duration,
            "bytes" => FieldType::Bytes,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Uint => "uint",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::String => "string",
            FieldType::Duration => "duration",
            FieldType::Bytes => "bytes",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldConfig {
    /// Field key in the point.
    pub name: String,
    /// `name` as line protocol writes it (escaped once, here).
    pub key: String,
    pub source: Source,
    pub kind: FieldType,
}

impl FieldConfig {
    pub fn new(name: String, source: Source, kind: FieldType) -> FieldConfig {
        FieldConfig {
            key: crate::route::line_protocol_key(&name),
            name,
            source,
            kind,
        }
    }
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
    fn parse(s: &str) -> Option<HeaderField> {
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
    /// `name` as line protocol writes it (escaped once, here); empty when
    /// nothing is left of it (only backslashes): no tag.
    pub key: String,
    pub source: Source,
}

impl TagConfig {
    pub fn new(name: String, source: Source) -> TagConfig {
        TagConfig {
            key: crate::route::line_protocol_key(&name),
            name,
            source,
        }
    }
}

/// The source for capture `name` of `pattern`, with its group index.
fn self_capture(pattern: Option<&regex::Regex>, name: &str) -> Option<Source> {
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
    /// [`crate::route::line_protocol_measurement`]).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: TCP readers stop reading (backpressure). UDP cannot
    /// wait; it drops and counts.
    Block,
    /// Drop the new record and count it.
    DropNewest,
    /// Drop the oldest queued records to make room, and count them.
    DropOldest,
    /// Overflow to the route's spill log on disk; when that is full too,
    /// drop the new record and count it (`spill_full`).
    Spill,
}

impl WhenFull {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenFull::Block => "block",
            WhenFull::DropNewest => "drop_newest",
            WhenFull::DropOldest => "drop_oldest",
            WhenFull::Spill => "spill",
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Disk spill (`when_full = "spill"` or `durable = true`).
    pub spill: Option<SpillConfig>,
    pub max_events: usize,
    /// Payload bytes plus a fixed overhead per record.
    pub max_bytes: usize,
    pub when_full: WhenFull,
    /// `block`: the longest a reader waits for room; then the record is
    /// dropped and counted. `None`: as long as it takes.
    pub block_timeout: Option<Duration>,
}

/// A route's spill log settings; the directory is `<data_dir>/spill/<route>`.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// Every record goes through the log (survives a crash), not only the
    /// overflow.
    pub durable: bool,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub fsync: crate::spill::Fsync,
}

// ----------------------------------------------------------------- defaults

pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_QUEUE_MAX_EVENTS: usize = 10_000;
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_DATA_DIR: &str = "sluice-data";
/// Upper bound of a UDP listener's `sockets`.
pub const MAX_UDP_SOCKETS: usize = 64;
pub const DEFAULT_SPILL_MAX_BYTES: u64 = 1 << 30;
pub const DEFAULT_SPILL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";
pub const DEFAULT_UNHEALTHY_AFTER_SECS: u64 = 120;
/// HTTP sinks send what is queued as soon as their worker is free: under
/// load batches fill while the previous request is in flight, and light
/// traffic is not held back (measured: p50 1.2 ms at 20k msg/s with 0,
/// 138 ms with 1000; the same full-speed throughput).
pub const DEFAULT_HTTP_LINGER_MS: u64 = 0;
/// Largest frame a listener may be configured for.
pub const MAX_FRAME_BYTES_LIMIT: usize = 16 * 1024 * 1024;

// --------------------------------------------------------------- loading

impl Config {
    /// Load `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let origin = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    file: origin.clone(),
                    source,
                })?;
                Config::from_toml(&text, &origin)
            }
            None => Config::from_toml(EMBEDDED_DEFAULT, "<embedded default>"),
        }
    }

    /// Parse and validate TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let text = substitute_env(text, origin)?;
        let locator = Locator::new(&text, origin);
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            locator.error_at(offset, &locator.path_at(offset), e.message().trim())
        })?;
        Validator { locator: &locator }.config(raw)
    }
}

/// Replace `${NAME}` with the environment variable's value.
fn substitute_env(text: &str, origin: &str) -> Result<String, ConfigError> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').filter(|&e| {
                e > 0
                    && after[..e]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            match end {
                Some(end) => {
                    let name = &after[..end];
                    let value = std::env::var(name).map_err(|_| ConfigError::Invalid {
                        file: origin.to_owned(),
                        line: n + 1,
                        column: line.len() - rest.len() + start + 1,
                        key: format!("${{{name}}}"),
                        message: format!("environment variable {name} is not set"),
                    })?;
                    out.push_str(&value);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// Maps TOML paths and byte offsets to lines, for error messages.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl<'a> Locator<'a> {
    fn new(text: &'a str, origin: &'a str) -> Self {
        Locator {
            text,
            origin,
            doc: toml_edit::ImDocument::parse(text).ok(),
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = offset
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        (line, col)
    }

    fn error_at(&self, offset: usize, key: &str, message: &str) -> ConfigError {
        let (line, column) = self.line_col(offset);
        ConfigError::Invalid {
            file: self.origin.to_owned(),
            line,
            column,
            key: if key.is_empty() {
                "(top level)".to_owned()
            } else {
                key.to_owned()
            },
            message: message.to_owned(),
        }
    }

    /// Error at the TOML `path` (or its nearest existing parent).
    fn error(&self, path: &[Seg], message: &str) -> ConfigError {
        let offset = self.offset_of(path).unwrap_or(0);
        self.error_at(offset, &path_string(path), message)
    }

    fn offset_of(&self, path: &[Seg]) -> Option<usize> {
        enum Node<'n> {
            Item(&'n toml_edit::Item),
            Table(&'n toml_edit::Table),
        }
        let doc = self.doc.as_ref()?;
        let mut best = None;
        let mut node = Node::Table(doc.as_table());
        let start = |span: Option<std::ops::Range<usize>>| span.map(|s| s.start);
        for seg in path {
            let table_like: Option<&dyn toml_edit::TableLike> = match &node {
                Node::Table(t) => Some(*t),
                Node::Item(i) => i.as_table_like(),
            };
            let next = match (seg, &node) {
                (Seg::Key(k), _) => {
                    table_like
                        .and_then(|t| t.get_key_value(k))
                        .map(|(key, item)| {
                            best = start(key.span()).or(best);
                            Node::Item(item)
                        })
                }
                (Seg::Index(i), Node::Item(toml_edit::Item::ArrayOfTables(a))) => {
                    a.get(*i).map(|t| {
                        best = start(t.span()).or(best);
                        Node::Table(t)
                    })
                }
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best
    }

    /// The dotted path of the deepest key whose span holds `offset`.
    fn path_at(&self, offset: usize) -> String {
        let Some(doc) = self.doc.as_ref() else {
            return String::new();
        };
        let mut path = Vec::new();
        walk_table(doc.as_table(), offset, &mut path);
        path_string(&path)
    }
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn walk_table(table: &toml_edit::Table, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        let hit_key = contains(key_span, offset);
        match item {
            toml_edit::Item::Table(t) => {
                let mark = path.len();
                path.push(Seg::Key(key.to_owned()));
                if walk_table(t, offset, path) || hit_key {
                    return true;
                }
                path.truncate(mark);
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let mark = path.len();
                    path.push(Seg::Key(key.to_owned()));
                    path.push(Seg::Index(i));
                    if walk_table(t, offset, path) {
                        return true;
                    }
                    path.truncate(mark);
                }
            }
            toml_edit::Item::Value(v) => {
                if hit_key || contains(v.span(), offset) {
                    path.push(Seg::Key(key.to_owned()));
                    if let toml_edit::Value::InlineTable(t) = v {
                        for (k, inner) in t.iter() {
                            let ks = t.key(k).and_then(|k| k.span());
                            if contains(ks, offset) || contains(inner.span(), offset) {
                                path.push(Seg::Key(k.to_owned()));
                                break;
                            }
                        }
                    }
                    return true;
                }
            }
            toml_edit::Item::None => {}
        }
    }
    false
}

// -------------------------------------------------------------- validation

struct Validator<'a, 'b> {
    locator: &'b Locator<'a>,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

fn at(base: &[Seg], k: &str) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.push(key(k));
    p
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Facility name for a code (0..=23).
pub fn facility_name(code: u8) -> &'static str {
    FACILITIES
        .get(usize::from(code))
        .copied()
        .unwrap_or("unknown")
}

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Severity name for a code (0..=7).
pub fn severity_name(code: u8) -> &'static str {
    SEVERITIES
        .get(usize::from(code))
        .copied()
        .unwrap_or("unknown")
}

fn severity_code(name: &str) -> Option<u8> {
    let name = name.trim().to_ascii_lowercase();
    let name = match name.as_str() {
        "emergency" | "panic" => "emerg",
        "critical" => "crit",
        "error" => "err",
        "warn" => "warning",
        "informational" => "info",
        other => other,
    };
    if let Ok(n) = name.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    SEVERITIES.iter().position(|s| *s == name).map(|p| p as u8)
}

impl Validator<'_, '_> {
    fn err(&self, path: &[Seg], message: impl AsRef<str>) -> ConfigError {
        self.locator.error(path, message.as_ref())
    }

    fn timezone(&self, path: &[Seg], name: &str) -> Result<Tz, ConfigError> {
        name.parse::<Tz>().map_err(|_| {
            self.err(
                path,
                format!("unknown timezone {name:?} (use an IANA name such as \"UTC\" or \"Europe/Berlin\")"),
            )
        })
    }

    fn addr(&self, path: &[Seg], s: &str) -> Result<SocketAddr, ConfigError> {
        s.parse::<SocketAddr>().map_err(|_| {
            self.err(
                path,
                format!(
                    "{s:?} is not an IP:port address (e.g. \"127.0.0.1:5514\" or \"[::]:5514\")"
                ),
            )
        })
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let timezone = match &raw.timezone {
            Some(tz) => self.timezone(&[key("timezone")], tz)?,
            None => Tz::UTC,
        };
        let unhealthy_after = match raw.admin.as_ref().and_then(|a| a.unhealthy_after_secs) {
            None => Duration::from_secs(DEFAULT_UNHEALTHY_AFTER_SECS),
            Some(0) => {
                return Err(self.err(
                    &[key("admin"), key("unhealthy_after_secs")],
                    "must be at least 1",
                ));
            }
            Some(s) => Duration::from_secs(s),
        };
        let admin = match raw.admin {
            Some(RawAdmin { enabled: false, .. }) => None,
            Some(RawAdmin {
                listen: Some(l), ..
            }) => Some(self.addr(&[key("admin"), key("listen")], &l)?),
            _ => Some(self.addr(&[key("admin")], DEFAULT_ADMIN_LISTEN)?),
        };

        let mut listeners = Vec::new();
        let mut names = HashSet::new();
        for (i, l) in raw.listeners.into_iter().enumerate() {
            let base = [key("listeners"), Seg::Index(i)];
            if !names.insert(l.name.clone()) {
                return Err(self.err(
                    &at(&base, "name"),
                    format!("duplicate listener name {:?}", l.name),
                ));
            }
            let max_frame_bytes = l.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
            if max_frame_bytes == 0 || max_frame_bytes > MAX_FRAME_BYTES_LIMIT {
                return Err(self.err(
                    &at(&base, "max_frame_bytes"),
                    format!("must be between 1 and {MAX_FRAME_BYTES_LIMIT}"),
                ));
            }
            let max_connections = l.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
            if max_connections == 0 {
                return Err(self.err(&at(&base, "max_connections"), "must be at least 1"));
            }
            let idle = l.idle_timeout_secs.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS);
            if idle == 0 {
                return Err(self.err(&at(&base, "idle_timeout_secs"), "must be at least 1"));
            }
            let sender = l.sender.unwrap_or_default();
            if l.newline_escape.as_deref() == Some("") {
                return Err(self.err(&at(&base, "newline_escape"), "must not be empty"));
            }
            if l.app_name.as_deref() == Some("") {
                return Err(self.err(&at(&base, "app_name"), "must not be empty"));
            }
            let decode = DecodeOptions {
                timezone: match &l.timezone {
                    Some(tz) => self.timezone(&at(&base, "timezone"), tz)?,
                    None => timezone,
                },
                sender,
                strip_facility_prefix: l.strip_facility_prefix.unwrap_or(false),
                newline_escape: l.newline_escape.map(String::into_boxed_str),
                app_name: l.app_name.map(|a| Arc::from(a.as_str())),
                mode: l.decode.unwrap_or_default(),
            };
            let multiline_keys = [
                ("multiline_window_ms", l.multiline_window_ms.is_some()),
                ("multiline_max_lines", l.multiline_max_lines.is_some()),
                ("multiline_max_bytes", l.multiline_max_bytes.is_some()),
            ];
            let multiline = if l.multiline.unwrap_or(sender == Sender::Log4j) {
                let window = l
                    .multiline_window_ms
                    .map_or(multiline::DEFAULT_WINDOW, Duration::from_millis);
                if window.is_zero() || window > Duration::from_secs(10) {
                    return Err(self.err(
                        &at(&base, "multiline_window_ms"),
                        "must be between 1 and 10000",
                    ));
                }
                let max_lines = l
                    .multiline_max_lines
                    .unwrap_or(multiline::DEFAULT_MAX_LINES);
                if max_lines == 0 || max_lines > 100_000 {
                    return Err(self.err(
                        &at(&base, "multiline_max_lines"),
                        "must be between 1 and 100000",
                    ));
                }
                let max_bytes = l
                    .multiline_max_bytes
                    .unwrap_or(multiline::DEFAULT_MAX_BYTES);
                if max_bytes == 0 || max_bytes > MAX_FRAME_BYTES_LIMIT {
                    return Err(self.err(
                        &at(&base, "multiline_max_bytes"),
                        format!("must be between 1 and {MAX_FRAME_BYTES_LIMIT}"),
                    ));
                }
                Some(MultilineConfig {
                    window,
                    max_lines,
                    max_bytes,
                    max_pending: multiline::DEFAULT_MAX_PENDING,
                })
            } else {
                if let Some((k, _)) = multiline_keys.iter().find(|(_, set)| *set) {
                    return Err(self.err(
                        &at(&base, k),
                        "multi-line joining is off for this listener: set multiline = true (it is on by default only for sender = \"log4j\")",
                    ));
                }
                None
            };
            let tls = match (l.protocol, l.tls) {
                (ListenerProtocol::Tls, Some(t)) => Some(self.listener_tls(&at(&base, "tls"), t)?),
                (ListenerProtocol::Tls, None) => {
                    return Err(self.err(
                        &at(&base, "protocol"),
                        "a tls listener needs [listeners.tls] with cert_file and key_file",
                    ));
                }
                (_, Some(_)) => {
                    return Err(self.err(
                        &at(&base, "tls"),
                        "only a listener with protocol = \"tls\" takes [listeners.tls]",
                    ));
                }
                (_, None) => None,
            };
            let receive_buffer_bytes = match (l.protocol, l.receive_buffer_bytes) {
                (ListenerProtocol::Udp, Some(b)) if !(1024..=1 << 30).contains(&b) => {
                    return Err(self.err(
                        &at(&base, "receive_buffer_bytes"),
                        "must be between 1024 and 1073741824",
                    ));
                }
                (ListenerProtocol::Udp, b) => b,
                (_, Some(_)) => {
                    return Err(self.err(
                        &at(&base, "receive_buffer_bytes"),
                        "only UDP listeners take receive_buffer_bytes",
                    ));
                }
                (_, None) => None,
            };
            let sockets = match (l.protocol, l.sockets) {
                (ListenerProtocol::Udp, Some(n)) if !(1..=MAX_UDP_SOCKETS).contains(&n) => {
                    return Err(self.err(
                        &at(&base, "sockets"),
                        format!("must be between 1 and {MAX_UDP_SOCKETS}"),
                    ));
                }
                (ListenerProtocol::Udp, n) => n.unwrap_or(1),
                (_, Some(_)) => {
                    return Err(self.err(
                        &at(&base, "sockets"),
                        "only UDP listeners take sockets (a TCP listener's connections are spread already)",
                    ));
                }
                (_, None) => 1,
            };
            let allow = match l.allow {
                None => None,
                Some(list) => {
                    let mut nets = Vec::with_capacity(list.len());
                    for (k, text) in list.iter().enumerate() {
                        let mut path = at(&base, "allow");
                        path.push(Seg::Index(k));
                        let net = text
                            .parse::<ipnet::IpNet>()
                            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| {
                                self.err(
                                    &path,
                                    format!("{text:?} is not a network (\"10.0.0.0/8\", \"2001:db8::/32\") or an address"),
                                )
                            })?;
                        nets.push(net);
                    }
                    if nets.is_empty() {
                        return Err(self.err(
                            &at(&base, "allow"),
                            "an empty allow list would refuse every sender: remove the key to allow all",
                        ));
                    }
                    Some(Arc::new(AllowList(nets)))
                }
            };
            listeners.push(ListenerConfig {
                listen: self.addr(&at(&base, "listen"), &l.listen)?,
                decode,
                multiline,
                tls,
                receive_buffer_bytes,
                sockets,
                allow,
                name: l.name,
                protocol: l.protocol,
                max_connections,
                idle_timeout: Duration::from_secs(idle),
                max_frame_bytes,
                framing: l.framing.unwrap_or_default(),
            });
        }
        if listeners.is_empty() {
            return Err(self.err(
                &[key("listeners")],
                "no [[listeners]]: nothing would be received",
            ));
        }

        let mut sinks = Vec::new();
        let mut sink_names = HashSet::new();
        for (i, s) in raw.sinks.into_iter().enumerate() {
            let base = [key("sinks"), Seg::Index(i)];
            let sink = self.sink(&base, s)?;
            if !sink_names.insert(sink.name.clone()) {
                return Err(self.err(
                    &at(&base, "name"),
                    format!("duplicate sink name {:?}", sink.name),
                ));
            }
            sinks.push(sink);
        }

        let grok = self.grok(raw.grok)?;
        let mut routes = Vec::new();
        let mut route_names = HashSet::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let base = [key("routes"), Seg::Index(i)];
            if !route_names.insert(r.name.clone()) {
                return Err(self.err(
                    &at(&base, "name"),
                    format!("duplicate route name {:?}", r.name),
                ));
            }
            routes.push(self.route(&base, r, &sinks, &grok)?);
        }
        let catch_all = routes
            .iter()
            .any(|r| r.conditions.is_empty() && r.pattern.is_none());
        if let Some(d) = raw.default_route {
            let base = [key("default_route")];
            let name = d.name.unwrap_or_else(|| "default".to_owned());
            if route_names.contains(&name) {
                return Err(self.err(&at(&base, "name"), format!("duplicate route name {name:?}")));
            }
            routes.push(self.route(
                &base,
                RawRoute {
                    name,
                    sink: d.sink,
                    is_final: true,
                    facility: None,
                    severity: None,
                    hostname: None,
                    appname: None,
                    msgid: None,
                    pattern: None,
                    metric: d.metric,
                    document: d.document,
                    queue: d.queue,
                },
                &sinks,
                &grok,
            )?);
            if let Some(last) = routes.last_mut() {
                last.is_default = true;
            }
        } else if !catch_all {
            return Err(self.err(
                &[key("routes")],
                "events that match no route would go nowhere: add a [default_route] or a route without conditions",
            ));
        }

        Ok(Config {
            origin: self.locator.origin.to_owned(),
            timezone,
            shutdown_timeout: Duration::from_secs(
                raw.shutdown_timeout_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            ),
            data_dir: raw
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            admin,
            unhealthy_after,
            listeners,
            sinks,
            routes,
        })
    }

    fn batch(
        &self,
        base: &[Seg],
        max: Option<usize>,
        default: usize,
    ) -> Result<usize, ConfigError> {
        let v = max.unwrap_or(default);
        if v == 0 || v > 1_000_000 {
            return Err(self.err(
                &at(base, "batch_max_events"),
                "must be between 1 and 1000000",
            ));
        }
        Ok(v)
    }

    fn urls(&self, base: &[Seg], urls: &[String]) -> Result<(), ConfigError> {
        if urls.is_empty() {
            return Err(self.err(&at(base, "urls"), "at least one URL is needed"));
        }
        for u in urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(self.err(
                    &at(base, "urls"),
                    format!("{u:?} is not an http:// or https:// URL"),
                ));
            }
        }
        Ok(())
    }

    fn sink(&self, base: &[Seg], raw: RawSink) -> Result<SinkConfig, ConfigError> {
        Ok(match raw {
            RawSink::File {
                name,
                path,
                batch_max_events,
                linger_ms,
            } => SinkConfig {
                name,
                kind: SinkKind::File { path },
                batch_max_events: self.batch(base, batch_max_events, 10_000)?,
                linger: Duration::from_millis(linger_ms.unwrap_or(0)),
            },
            RawSink::Stdout {
                name,
                batch_max_events,
                linger_ms,
            } => SinkConfig {
                name,
                kind: SinkKind::Stdout,
                batch_max_events: self.batch(base, batch_max_events, 1_000)?,
                linger: Duration::from_millis(linger_ms.unwrap_or(0)),
            },
            RawSink::Influxdb {
                name,
                urls,
                api,
                database,
                retention_policy,
                org,
                bucket,
                token,
                username,
                password,
                batch_max_events,
                batch_max_bytes,
                linger_ms,
                gzip,
                timeout_secs,
                max_retries,
                max_retry_secs,
                dead_letter_path,
                create_database,
                retention_duration,
                unsigned,
                precision,
                ca_file,
            } => {
                let create_database = create_database.unwrap_or(false);
                if create_database && api == Some(InfluxApi::V2) {
                    return Err(self.err(
                        &at(base, "create_database"),
                        "only for api = \"v1\" (2.x buckets are created with the influx CLI or API)",
                    ));
                }
                if retention_duration.is_some() && (retention_policy.is_none() || !create_database)
                {
                    return Err(self.err(
                        &at(base, "retention_duration"),
                        "needs retention_policy and create_database = true",
                    ));
                }
                if let Some(d) = &retention_duration {
                    let ok = d.eq_ignore_ascii_case("INF")
                        || (!d.is_empty()
                            && d.chars()
                                .all(|c| c.is_ascii_digit() || "nsuµmhdw".contains(c))
                            && d.starts_with(|c: char| c.is_ascii_digit()));
                    if !ok {
                        return Err(self.err(
                            &at(base, "retention_duration"),
                            format!(
                                "{d:?} is not an InfluxQL duration (e.g. \"52w\", \"30d\", \"INF\")"
                            ),
                        ));
                    }
                }
                self.urls(base, &urls)?;
                let api = api.unwrap_or(InfluxApi::V1);
                let dead_letter = Some(dead_letter_path.unwrap_or_else(|| {
                    PathBuf::from(format!("sluice-data/dead-letter/{name}.ndjson"))
                }));
                match api {
                    InfluxApi::V1 if database.is_none() => {
                        return Err(
                            self.err(&at(base, "database"), "api = \"v1\" needs a database")
                        );
                    }
                    InfluxApi::V2 if bucket.is_none() || org.is_none() => {
                        return Err(
                            self.err(&at(base, "bucket"), "api = \"v2\" needs org and bucket")
                        );
                    }
                    _ => {}
                }
                SinkConfig {
                    name,
                    batch_max_events: self.batch(base, batch_max_events, 5_000)?,
                    linger: Duration::from_millis(linger_ms.unwrap_or(DEFAULT_HTTP_LINGER_MS)),
                    kind: SinkKind::Influxdb(InfluxConfig {
                        urls,
                        api,
                        database,
                        retention_policy,
                        org,
                        bucket,
                        token,
                        username,
                        password,
                        batch_max_bytes: batch_max_bytes.unwrap_or(1024 * 1024),
                        gzip: gzip.unwrap_or(true),
                        timeout: Duration::from_secs(timeout_secs.unwrap_or(10)),
                        max_retries: max_retries.unwrap_or(1_000),
                        max_retry_time: Duration::from_secs(max_retry_secs.unwrap_or(600)),
                        dead_letter,
                        create_database,
                        retention_duration,
                        unsigned: unsigned.unwrap_or(match api {
                            InfluxApi::V1 => UnsignedAs::Integer,
                            InfluxApi::V2 => UnsignedAs::Unsigned,
                        }),
                        precision: precision.unwrap_or_default(),
                        ca_file,
                    }),
                }
            }
            RawSink::Elasticsearch {
                name,
                urls,
                index,
                username,
                password,
                api_key,
                pipeline,
                batch_max_events,
                batch_max_bytes,
                linger_ms,
                gzip,
                timeout_secs,
                max_retries,
                max_retry_secs,
                dead_letter_path,
                document_ids,
                ca_file,
            } => {
                self.urls(base, &urls)?;
                if index.is_empty() {
                    return Err(self.err(&at(base, "index"), "must not be empty"));
                }
                if let Some(bad) = index
                    .split('%')
                    .skip(1)
                    .find(|p| !p.starts_with(['Y', 'm', 'd', 'H', '%']))
                {
                    return Err(self.err(
                        &at(base, "index"),
                        format!(
                            "unknown %{} in the index pattern (%Y, %m, %d, %H)",
                            bad.chars().next().unwrap_or(' ')
                        ),
                    ));
                }
                let dead_letter = Some(dead_letter_path.unwrap_or_else(|| {
                    PathBuf::from(format!("sluice-data/dead-letter/{name}.ndjson"))
                }));
                SinkConfig {
                    name,
                    batch_max_events: self.batch(base, batch_max_events, 5_000)?,
                    linger: Duration::from_millis(linger_ms.unwrap_or(DEFAULT_HTTP_LINGER_MS)),
                    kind: SinkKind::Elasticsearch(ElasticsearchConfig {
                        urls,
                        index,
                        username,
                        password,
                        api_key,
                        pipeline,
                        batch_max_bytes: batch_max_bytes.unwrap_or(5 * 1024 * 1024),
                        gzip: gzip.unwrap_or(true),
                        timeout: Duration::from_secs(timeout_secs.unwrap_or(30)),
                        max_retries: max_retries.unwrap_or(1_000),
                        max_retry_time: Duration::from_secs(max_retry_secs.unwrap_or(600)),
                        dead_letter,
                        document_ids: document_ids.unwrap_or(true),
                        ca_file,
                    }),
                }
            }
        })
    }

    /// Files named in the config are relative to the config file's directory.
    fn config_dir(&self) -> PathBuf {
        Path::new(self.locator.origin)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Load a TLS listener's certificate, key and client CA now, so a bad
    /// file is a config error (and `sluice check` finds it).
    fn listener_tls(&self, base: &[Seg], t: RawTls) -> Result<ListenerTls, ConfigError> {
        let dir = self.config_dir();
        let timeout = match t.handshake_timeout_secs {
            None => crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            Some(s @ 1..=300) => Duration::from_secs(s),
            Some(_) => {
                return Err(self.err(
                    &at(base, "handshake_timeout_secs"),
                    "must be between 1 and 300",
                ));
            }
        };
        let (cert, key) = (dir.join(&t.cert_file), dir.join(&t.key_file));
        let ca = t.client_ca_file.as_ref().map(|c| dir.join(c));
        let server = crate::tls::server_config(&cert, &key, ca.as_deref()).map_err(|e| {
            let field = match &e {
                crate::tls::TlsError::Read { path, .. }
                | crate::tls::TlsError::NoCertificate { path }
                    if Some(path) == ca.as_ref() =>
                {
                    "client_ca_file"
                }
                crate::tls::TlsError::ClientCa { .. }
                | crate::tls::TlsError::ClientVerifier { .. } => "client_ca_file",
                crate::tls::TlsError::Read { path, .. } | crate::tls::TlsError::NoKey { path }
                    if *path == key =>
                {
                    "key_file"
                }
                _ => "cert_file",
            };
            self.err(&at(base, field), e.to_string())
        })?;
        Ok(ListenerTls {
            server,
            handshake_timeout: timeout,
            client_auth: ca.is_some(),
            cert_file: cert,
        })
    }

    /// The grok library: built-ins, then pattern files, then inline patterns.
    fn grok(&self, raw: Option<RawGrok>) -> Result<Library, ConfigError> {
        let mut lib = Library::default();
        let Some(raw) = raw else {
            return Ok(lib);
        };
        let base = [key("grok")];
        let dir = self.config_dir();
        let mut custom = HashSet::new();
        for (i, file) in raw.pattern_files.iter().enumerate() {
            let mut path = at(&base, "pattern_files");
            path.push(Seg::Index(i));
            let full = dir.join(file);
            let text = std::fs::read_to_string(&full)
                .map_err(|e| self.err(&path, format!("cannot read {}: {e}", full.display())))?;
            let names = lib.define_file(&text).map_err(|(line, msg)| {
                self.err(&path, format!("{}:{line}: {msg}", full.display()))
            })?;
            custom.extend(names);
        }
        for (name, pattern) in &raw.patterns {
            if !crate::grok::valid_name(name) {
                return Err(self.err(
                    &at(&base, "patterns"),
                    format!("{name:?} is not a pattern name ([A-Za-z0-9_])"),
                ));
            }
            lib.define(name, pattern);
            custom.insert(name.clone());
        }
        lib.check(&custom).map_err(|(name, e)| {
            let path = if raw.patterns.contains_key(&name) {
                at(&at(&base, "patterns"), &name)
            } else {
                at(&base, "pattern_files")
            };
            self.err(&path, format!("pattern {name}: {e}"))
        })?;
        Ok(lib)
    }

    fn route(
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
        let mut conditions = Conditions::default();
        if let Some(f) = r.facility {
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
        if let Some(s) = r.severity {
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
        conditions.hostnames = r.hostname.map(OneOrMany::into_vec);
        conditions.appnames = r.appname.map(OneOrMany::into_vec);
        conditions.msgids = r.msgid.map(OneOrMany::into_vec);

        let (pattern, capture_types) = match &r.pattern {
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
        };
        let output = match (r.metric, r.document) {
            (Some(m), None) => OutputConfig::Metric(self.metric(
                &at(base, "metric"),
                m,
                pattern.as_ref().map(|(re, _)| re),
                &capture_types,
            )?),
            (None, Some(d)) => OutputConfig::Document({
                let es = matches!(
                    sinks.get(sink).map(|s| &s.kind),
                    Some(SinkKind::Elasticsearch(_))
                );
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
                match format {
                    RawDocumentFormat::Canonical => DocumentFormat::Canonical,
                    RawDocumentFormat::Ecs => DocumentFormat::Ecs {
                        original: d.event_original.unwrap_or(false),
                    },
                    RawDocumentFormat::Flume => DocumentFormat::Flume,
                }
            }),
            (Some(_), Some(_)) => {
                return Err(self.err(base, "a route has either [metric] or [document], not both"));
            }
            (None, None) => {
                return Err(self.err(
                    base,
                    "a route needs an output: a [routes.metric] or [routes.document] table",
                ));
            }
        };
        let mut output = output;
        if let (OutputConfig::Metric(m), Some(SinkKind::Influxdb(i))) =
            (&mut output, sinks.get(sink).map(|s| &s.kind))
        {
            m.unsigned = i.unsigned;
            m.precision = i.precision;
        }
        let queue = match r.queue {
            Some(q) => {
                let max_events = q.max_events.unwrap_or(DEFAULT_QUEUE_MAX_EVENTS);
                if max_events == 0 || max_events > 10_000_000 {
                    return Err(self.err(
                        &at(&at(base, "queue"), "max_events"),
                        "must be between 1 and 10000000",
                    ));
                }
                let max_bytes = q.max_bytes.unwrap_or(DEFAULT_QUEUE_MAX_BYTES);
                if !(1024..=1 << 40).contains(&max_bytes) {
                    return Err(self.err(
                        &at(&at(base, "queue"), "max_bytes"),
                        "must be between 1024 and 1099511627776",
                    ));
                }
                let when_full = q.when_full.unwrap_or(WhenFull::DropNewest);
                let block_timeout = match (q.block_timeout_ms, when_full) {
                    (None, _) => None,
                    (Some(0), _) => {
                        return Err(self.err(
                            &at(&at(base, "queue"), "block_timeout_ms"),
                            "must be at least 1 (leave it out to wait as long as it takes)",
                        ));
                    }
                    (Some(ms), WhenFull::Block) => Some(Duration::from_millis(ms)),
                    (Some(_), _) => {
                        return Err(self.err(
                            &at(&at(base, "queue"), "block_timeout_ms"),
                            "only when_full = \"block\" waits",
                        ));
                    }
                };
                let qbase = at(base, "queue");
                let durable = q.durable.unwrap_or(false);
                let spill_keys = [
                    ("spill_max_bytes", q.spill_max_bytes.is_some()),
                    ("spill_segment_bytes", q.spill_segment_bytes.is_some()),
                    ("fsync", q.fsync.is_some()),
                    ("fsync_interval_ms", q.fsync_interval_ms.is_some()),
                ];
                let spill = if durable || when_full == WhenFull::Spill {
                    let max = q.spill_max_bytes.unwrap_or(DEFAULT_SPILL_MAX_BYTES);
                    let segment = q.spill_segment_bytes.unwrap_or(DEFAULT_SPILL_SEGMENT_BYTES);
                    if !(4096..=1 << 30).contains(&segment) {
                        return Err(self.err(
                            &at(&qbase, "spill_segment_bytes"),
                            "must be between 4096 and 1073741824",
                        ));
                    }
                    if max < segment {
                        return Err(self.err(
                            &at(&qbase, "spill_max_bytes"),
                            format!("must be at least spill_segment_bytes ({segment})"),
                        ));
                    }
                    let fsync = match (q.fsync.unwrap_or(RawFsync::Interval), q.fsync_interval_ms) {
                        (RawFsync::Never, None) => crate::spill::Fsync::Never,
                        (RawFsync::Always, None) => crate::spill::Fsync::EveryBatch,
                        (RawFsync::Batch, None) => crate::spill::Fsync::OnFlush,
                        (RawFsync::Interval, ms) => {
                            crate::spill::Fsync::IntervalMs(ms.unwrap_or(1000).max(1))
                        }
                        (_, Some(_)) => {
                            return Err(self.err(
                                &at(&qbase, "fsync_interval_ms"),
                                "only fsync = \"interval\" takes an interval",
                            ));
                        }
                    };
                    Some(SpillConfig {
                        durable,
                        max_bytes: max,
                        segment_bytes: segment,
                        fsync,
                    })
                } else {
                    if let Some((k, _)) = spill_keys.iter().find(|(_, set)| *set) {
                        return Err(self.err(
                            &at(&qbase, k),
                            "only a spilling queue (when_full = \"spill\" or durable = true) has a spill log",
                        ));
                    }
                    None
                };
                QueueConfig {
                    spill,
                    max_events,
                    max_bytes,
                    when_full,
                    block_timeout,
                }
            }
            None => QueueConfig {
                spill: None,
                max_events: DEFAULT_QUEUE_MAX_EVENTS,
                max_bytes: DEFAULT_QUEUE_MAX_BYTES,
                when_full: WhenFull::DropNewest,
                block_timeout: None,
            },
        };
        Ok(RouteConfig {
            name: r.name,
            sink,
            is_final: r.is_final,
            is_default: false,
            conditions,
            pattern: pattern.map(|(_, expanded)| expanded),
            pattern_source: r.pattern,
            capture_types,
            output,
            queue,
        })
    }

    fn metric(
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
        // The natural key of a source: the capture, header or SD parameter name.
        let key_of = |name: &str| -> String {
            name.strip_prefix("sd.")
                .and_then(|r| r.split_once('.'))
                .map_or(name, |(_, param)| param)
                .to_owned()
        };

        let measurement_path = at(base, "measurement");
        if m.measurement.is_empty() {
            return Err(self.err(&measurement_path, "must not be empty"));
        }
        let mut measurement_parts = Vec::new();
        let mut rest = m.measurement.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(self.err(&measurement_path, "unclosed { in the measurement template"));
            };
            if open > 0 {
                measurement_parts.push(MeasurementPart::Text(
                    crate::route::line_protocol_measurement(&rest[..open]),
                ));
            }
            let name = &rest[open + 1..open + close];
            measurement_parts.push(MeasurementPart::Value(source(&measurement_path, name)?));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            measurement_parts.push(MeasurementPart::Text(
                crate::route::line_protocol_measurement(rest),
            ));
        }

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
            fields.push(FieldConfig::new(name.clone(), src, kind));
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.admin, Some("127.0.0.1:9901".parse().unwrap()));
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, "t.toml").unwrap_err().to_string()
    }

    const BASE: &str = r#"
[[listeners]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:0"

[[sinks]]
name = "f"
type = "file"
path = "x"
"#;

    #[test]
    fn udp_sockets_are_bounded_and_udp_only() {
        let udp = |n: &str| {
            format!(
                "[[listeners]]\nname = \"v\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\nsockets = {n}\n"
            )
        };
        let route = "[[routes]]\nname = \"r\"\nsink = \"f\"\ndocument = {}\n";
        let ok = Config::from_toml(&format!("{}{BASE}{route}", udp("4")), "t.toml").unwrap();
        assert_eq!(ok.listeners[0].sockets, 4);
        assert_eq!(ok.listeners[1].sockets, 1, "default");
        for n in ["0", "65"] {
            let e = err(&format!("{}{BASE}", udp(n)));
            assert!(e.starts_with("t.toml:5:"), "{e}");
            assert!(
                e.contains("listeners[0].sockets") && e.contains("between 1 and 64"),
                "{e}"
            );
        }
        let e = err(&format!(
            "[[listeners]]\nname = \"t\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nsockets = 2\n{BASE}"
        ));
        assert!(
            e.contains("listeners[0].sockets") && e.contains("only UDP listeners"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_line() {
        let e = err(&format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\nbogus = 1\ndocument = {{}}\n"
        ));
        assert!(e.starts_with("t.toml:15:"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_regex_names_route_key_and_line() {
        let e = err(&format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\npattern = \"(unclosed\"\ndocument = {{}}\n"
        ));
        assert!(
            e.starts_with("t.toml:15:1: routes[0].pattern: route \"r\": invalid regex"),
            "{e}"
        );
    }

    #[test]
    fn unknown_sink_and_missing_default_route() {
        let e = err(&format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"nope\"\ndocument = {{}}\n"
        ));
        assert!(e.contains("routes[0].sink: no sink named \"nope\""), "{e}");
        let e = err(&format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\nappname = \"x\"\ndocument = {{}}\n"
        ));
        assert!(e.contains("would go nowhere"), "{e}");
    }

    #[test]
    fn severity_levels_and_ranges() {
        let c = Config::from_toml(
            &format!("{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\nseverity = \"warning\"\ndocument = {{}}\n[[routes]]\nname = \"s\"\nsink = \"f\"\nseverity = \"info..notice\"\ndocument = {{}}\n[default_route]\nsink = \"f\"\ndocument = {{}}\n"),
            "t",
        )
        .unwrap();
        assert_eq!(c.routes[0].conditions.severities, Some(0b0001_1111));
        assert_eq!(c.routes[1].conditions.severities, Some(0b0110_0000));
        assert!(c.routes[2].is_default);
    }

    #[test]
    fn numeric_severity_up_to_debug() {
        let c = Config::from_toml(
            &format!("{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\nseverity = 7\ndocument = {{}}\n[[routes]]\nname = \"s\"\nsink = \"f\"\nseverity = 0\ndocument = {{}}\n[default_route]\nsink = \"f\"\ndocument = {{}}\n"),
            "t",
        )
        .unwrap();
        assert_eq!(c.routes[0].conditions.severities, Some(0xff));
        assert_eq!(c.routes[1].conditions.severities, Some(0b1));
        let e = err(&format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\nseverity = 8\ndocument = {{}}\n"
        ));
        assert!(e.contains("routes[0].severity"), "{e}");
    }

    #[test]
    fn type_error_names_the_key() {
        let e = err(
            "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\nmax_frame_bytes = \"big\"\n",
        );
        assert!(e.starts_with("t.toml:5:"), "{e}");
        assert!(e.contains("listeners[0].max_frame_bytes"), "{e}");
    }

    #[test]
    fn env_substitution() {
        // SAFETY of the test: a unique variable name, set before use.
        unsafe { std::env::set_var("SLUICE_TEST_DB_NAME", "telemetry") };
        let text = "x = \"${SLUICE_TEST_DB_NAME}\"\n";
        assert_eq!(substitute_env(text, "t").unwrap(), "x = \"telemetry\"\n");
        let e = substitute_env("a = 1\nb = \"${SLUICE_TEST_SURELY_UNSET}\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:2:6:"), "{e}");
    }

    const DEFAULT_ROUTE: &str = "\n[default_route]\nsink = \"f\"\ndocument = {}\n";

    fn listener(extra: &str) -> String {
        format!(
            "[[listeners]]\nname = \"j\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n{extra}\n[[sinks]]\nname = \"f\"\ntype = \"file\"\npath = \"x\"\n{DEFAULT_ROUTE}"
        )
    }

    #[test]
    fn log4j_listener_options() {
        let c = Config::from_toml(
            &listener("sender = \"log4j\"\napp_name = \"orders\"\nstrip_facility_prefix = true\nnewline_escape = \"\\\\n\"\nmultiline_window_ms = 20"),
            "t",
        )
        .unwrap();
        let l = &c.listeners[0];
        assert_eq!(l.decode.sender, Sender::Log4j);
        assert_eq!(l.decode.app_name.as_deref(), Some("orders"));
        assert!(l.decode.strip_facility_prefix);
        assert_eq!(l.decode.newline_escape.as_deref(), Some("\\n"));
        let m = l
            .multiline
            .as_ref()
            .expect("log4j listeners join multi-line messages by default");
        assert_eq!(m.window, Duration::from_millis(20));
        assert_eq!(m.max_lines, multiline::DEFAULT_MAX_LINES);
        // Generic listeners do not, unless asked.
        let c = Config::from_toml(&listener(""), "t").unwrap();
        assert_eq!(c.listeners[0].multiline, None);
        let c = Config::from_toml(&listener("multiline = true"), "t").unwrap();
        assert!(c.listeners[0].multiline.is_some());
        let c = Config::from_toml(&listener("sender = \"log4j\"\nmultiline = false"), "t").unwrap();
        assert_eq!(c.listeners[0].multiline, None);
    }

    #[test]
    fn bad_listener_options_name_the_key() {
        let e = err(&listener("multiline_max_lines = 5"));
        assert!(e.starts_with("t.toml:5:"), "{e}");
        assert!(
            e.contains("listeners[0].multiline_max_lines: multi-line joining is off"),
            "{e}"
        );
        let e = err(&listener("multiline = true\nmultiline_window_ms = 0"));
        assert!(
            e.contains("listeners[0].multiline_window_ms: must be between 1 and 10000"),
            "{e}"
        );
        let e = err(&listener("newline_escape = \"\""));
        assert!(
            e.contains("listeners[0].newline_escape: must not be empty"),
            "{e}"
        );
        let e = err(&listener("sender = \"log4k\""));
        assert!(e.contains("sender"), "{e}");
    }

    #[test]
    fn structured_data_references_in_metrics() {
        let route = |from: &str| {
            format!(
                "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\n[routes.metric]\nmeasurement = \"m\"\ntags = [\"sd.mdc@18060.user\"]\nfields = {{ ms = {{ from = \"{from}\", type = \"int\" }} }}\n{DEFAULT_ROUTE}"
            )
        };
        let c = Config::from_toml(&route("sd.mdc@18060.ms"), "t").unwrap();
        let OutputConfig::Metric(m) = &c.routes[0].output else {
            panic!("metric route expected")
        };
        // host and app are added, and the tags sorted by key.
        let names: Vec<&str> = m.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["app", "host", "user"]);
        assert_eq!(
            m.tags[2].source,
            Source::Sd {
                id: "mdc@18060".into(),
                param: "user".into()
            }
        );
        assert_eq!(
            m.fields[0].source,
            Source::Sd {
                id: "mdc@18060".into(),
                param: "ms".into()
            }
        );
        let e = err(&route("sd.mdc@18060"));
        assert!(
            e.contains("routes[0].metric.fields.ms: \"sd.mdc@18060\": a structured-data reference is sd.SD-ID.PARAM"),
            "{e}"
        );
        // Anything else with a dot is not a capture name.
        let e = err(&route("mdc@18060.ms"));
        assert!(e.contains("no named capture \"mdc@18060.ms\""), "{e}");
        assert!(e.contains("no header field"), "{e}");
    }

    #[test]
    fn grok_patterns_in_routes() {
        let text = format!(
            "{BASE}\n[grok.patterns]\nGCPOOL = '[A-Za-z ]+'\n[[routes]]\nname = \"gc\"\nsink = \"f\"\npattern = 'pool=%{{GCPOOL:pool}} used=%{{NUMBER:used:int}} pause=%{{NOTSPACE:pause:duration}}'\n[routes.metric]\nmeasurement = \"jvm\"\ntags = [\"pool\"]\n{DEFAULT_ROUTE}"
        );
        let c = Config::from_toml(&text, "t").unwrap();
        let r = &c.routes[0];
        assert_eq!(
            r.pattern_source.as_deref(),
            Some("pool=%{GCPOOL:pool} used=%{NUMBER:used:int} pause=%{NOTSPACE:pause:duration}")
        );
        assert!(r.pattern.as_deref().unwrap().contains("(?P<used>"));
        let OutputConfig::Metric(m) = &r.output else {
            panic!("metric route expected")
        };
        let fields: Vec<(&str, FieldType)> =
            m.fields.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            fields,
            [("used", FieldType::Int), ("pause", FieldType::Duration)]
        );
    }

    #[test]
    fn grok_errors_name_route_and_pattern() {
        let route = |pattern: &str, extra: &str| {
            format!(
                "{BASE}\n{extra}\n[[routes]]\nname = \"r\"\nsink = \"f\"\npattern = '{pattern}'\ndocument = {{}}\n{DEFAULT_ROUTE}"
            )
        };
        let e = err(&route("%{NOPE:x}", ""));
        assert!(
            e.contains("routes[0].pattern: route \"r\": unknown grok pattern %{NOPE}"),
            "{e}"
        );
        let e = err(&route("%{INT:x:furlongs}", ""));
        assert!(
            e.contains("routes[0].pattern: route \"r\": unknown capture type \"furlongs\""),
            "{e}"
        );
        let e = err(&route("%{A}", "[grok.patterns]\nA = '%{B}'\nB = '%{A}'"));
        assert!(e.contains("grok.patterns.A: pattern A: grok patterns refer to each other in a cycle: A -> B -> A"), "{e}");
        let e = err(&route("%{A}", "[grok.patterns]\nA = '(unclosed'"));
        assert!(
            e.contains("routes[0].pattern: route \"r\": invalid regex after grok expansion"),
            "{e}"
        );
        let e = err(&route("x", "[grok]\npattern_files = [\"missing.grok\"]"));
        assert!(e.contains("grok.pattern_files[0]: cannot read"), "{e}");
    }

    #[test]
    fn grok_pattern_files_are_read_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("jvm.grok"),
            "# JVM\nGCPOOL [A-Za-z ]+\nGCLINE pool=%{GCPOOL:pool} used=%{NUMBER:used:int}\n",
        )
        .unwrap();
        let text = format!(
            "{BASE}\n[grok]\npattern_files = [\"jvm.grok\"]\n[[routes]]\nname = \"gc\"\nsink = \"f\"\npattern = '%{{GCLINE}}'\n[routes.metric]\nmeasurement = \"jvm\"\ntags = [\"pool\"]\n{DEFAULT_ROUTE}"
        );
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, &text).unwrap();
        let c = Config::load(Some(&path)).unwrap();
        let OutputConfig::Metric(m) = &c.routes[0].output else {
            panic!("metric route expected")
        };
        assert_eq!(m.fields[0].name, "used");
        std::fs::write(dir.path().join("jvm.grok"), "GCLINE %{MISSING}\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            e.contains("grok.pattern_files: pattern GCLINE: unknown grok pattern %{MISSING}"),
            "{e}"
        );
    }

    #[test]
    fn document_format_defaults_follow_the_sink() {
        let text = format!(
            "{BASE}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\nindex = \"syslog-%Y.%m.%d\"\n[[routes]]\nname = \"to_es\"\nsink = \"es\"\ndocument = {{}}\n[[routes]]\nname = \"to_file\"\nsink = \"f\"\ndocument = {{}}\n[[routes]]\nname = \"legacy\"\nsink = \"es\"\ndocument = {{ format = \"flume\" }}\n{DEFAULT_ROUTE}"
        );
        let c = Config::from_toml(&text, "t").unwrap();
        let formats: Vec<Option<DocumentFormat>> = c
            .routes
            .iter()
            .map(|r| match r.output {
                OutputConfig::Document(f) => Some(f),
                OutputConfig::Metric(_) => None,
            })
            .collect();
        assert_eq!(
            formats,
            [
                Some(DocumentFormat::Ecs { original: false }),
                Some(DocumentFormat::Canonical),
                Some(DocumentFormat::Flume),
                Some(DocumentFormat::Canonical)
            ]
        );
        let e = err(&text.replace("format = \"flume\"", "format = \"xml\""));
        assert!(e.contains("format"), "{e}");
    }
}
