//! The TOML configuration: parsed strictly into raw structs, then validated
//! into runtime types. Every error names the file, the line and the key.
//!
//! `${NAME}` anywhere in the file is replaced by the environment variable
//! `NAME` before parsing (for secrets); an unset variable is an error.
//! `${NAME:-default}` uses `default` when `NAME` is unset or empty;
//! `${NAME:?message}` makes an unset or empty `NAME` an error that says
//! `message`.

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
    token: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: String,
    protocol: ListenerProtocol,
    listen: String,
    max_connections: Option<usize>,
    idle_timeout_secs: Option<u64>,
    frame_timeout_secs: Option<u64>,
    max_connections_per_peer: Option<usize>,
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
        max_backoff_secs: Option<u64>,
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
        #[serde(default)]
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
        max_backoff_secs: Option<u64>,
        dead_letter_path: Option<PathBuf>,
        document_ids: Option<bool>,
        ca_file: Option<PathBuf>,
        manage_template: Option<bool>,
        template_name: Option<String>,
        data_stream: Option<String>,
        ilm_policy: Option<String>,
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
    /// Flume: the syslog sources' `keepFields`, as Flume spelled it.
    keep_fields: Option<RawKeepFields>,
}

/// `keep_fields = true | false | "all" | "none" | "priority version timestamp hostname"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawKeepFields {
    Bool(bool),
    Text(String),
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
    /// Relative paths in the config (sink files, dead letters, CA, grok and
    /// TLS files, `data_dir`) are relative to this: the config file's
    /// folder, or the working directory ("") for the default config.
    pub base_dir: PathBuf,
    pub admin: Option<SocketAddr>,
    /// Who may call the admin port's mutating endpoints.
    pub admin_access: AdminAccess,
    /// A sink failing for longer than this makes `/health` answer 503.
    pub unhealthy_after: Duration,
    pub listeners: Vec<ListenerConfig>,
    pub sinks: Vec<SinkConfig>,
    /// Ordered routes; the default route, if any, is last with `is_default`.
    pub routes: Vec<RouteConfig>,
}

/// Who may call `POST /reload` (see `telemetry::admit`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminAccess {
    /// `[admin] token`: `Authorization: Bearer <token>` is required.
    pub token: Option<String>,
    /// `[admin] allowed_hosts`: names (`host` or `host:port`) accepted in
    /// `Host` and `Origin` besides the admin address and `localhost`.
    pub allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccess")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
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
    /// TCP/TLS: a frame must be complete this long after its first byte,
    /// or the connection is closed (slowloris).
    pub frame_timeout: Duration,
    /// TCP/TLS: connections one source address may hold; `None` = only
    /// `max_connections` bounds them.
    pub max_connections_per_peer: Option<usize>,
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
    /// The longest wait between two tries, whatever asked for more
    /// (`Retry-After` included).
    pub max_backoff: Duration,
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
    /// The longest wait between two tries, whatever asked for more
    /// (`Retry-After` included).
    pub max_backoff: Duration,
    pub dead_letter: Option<PathBuf>,
    /// Deterministic `_id`s, so retries never duplicate; false:
    /// Elasticsearch generates ids.
    pub document_ids: bool,
    /// PEM file of the CA(s) that sign the nodes' HTTPS certificates, in
    /// addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// Install a composable index template before the first write
    /// (`sinks::es_setup`).
    pub manage_template: bool,
    /// The template's name (default `sluice-<sink>`).
    pub template_name: Option<String>,
    /// Write into this data stream (`index` is then its name).
    pub data_stream: Option<String>,
    /// A retention policy the template names (ILM; see es_setup).
    pub ilm_policy: Option<String>,
    /// Typed captures of the routes writing to this sink, for the template.
    pub captures: Vec<(String, FieldType)>,
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
    pub fsync: crate::queue::spill::Fsync,
}

// ----------------------------------------------------------------- defaults

pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_FRAME_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_QUEUE_MAX_EVENTS: usize = 10_000;
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_DATA_DIR: &str = "sluice-data";
/// What a UDP listener asks the kernel for as its receive buffer unless
/// `receive_buffer_bytes` says otherwise: 8 MiB holds about 2 s of a
/// 2,000 msg/s burst of 2 KiB datagrams while the reader is descheduled
/// (the kernel's usual 208 KiB lost 981 of 10,000 at 2,000 msg/s on a busy
/// host). The kernel may grant less (net.core.rmem_max): logged at start
/// and shown in `sluice_listener_receive_buffer_bytes`.
pub const DEFAULT_UDP_RECEIVE_BUFFER_BYTES: usize = 8 * 1024 * 1024;
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
/// An HTTP sink's longest wait between two tries of a batch: a
/// `Retry-After: 3600` from a proxy must not stall a route for an hour.
pub const DEFAULT_MAX_BACKOFF_SECS: u64 = 30;
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
            None => Config::from_toml_in(EMBEDDED_DEFAULT, "<embedded default>", Path::new("")),
        }
    }

    /// Load `path` with its relative paths resolved against `base`, not
    /// its folder: `sluice run` without -c reads `config/sluice.toml` this
    /// way (base "", the working directory), so it writes `./sluice-data/`
    /// just as the embedded default does.
    pub fn load_relative_to(path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: origin.clone(),
            source,
        })?;
        Config::from_toml_in(&text, &origin, base)
    }

    /// Parse and validate TOML text; `origin` names it in errors and its
    /// folder is where relative paths start.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let base = Path::new(origin)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Config::from_toml_in(text, origin, &base)
    }

    /// [`Config::from_toml`] with relative paths resolved against `base`.
    pub fn from_toml_in(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let text = substitute_env(text, origin)?;
        let locator = Locator::new(&text, origin, base);
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            locator.parse_error(offset, e.message().trim())
        })?;
        Validator { locator: &locator }.config(raw)
    }
}

impl Config {
    /// For `sluice check`: can `data_dir`, every file sink's file and every
    /// dead-letter file be written (created where missing)? The error names the path and the
    /// key. Probes with a file it creates and removes at once.
    pub fn check_writable(&self) -> Result<(), ConfigError> {
        let text = if self.origin.starts_with('<') {
            EMBEDDED_DEFAULT.to_owned()
        } else {
            std::fs::read_to_string(&self.origin)
                .ok()
                .and_then(|t| substitute_env(&t, &self.origin).ok())
                .unwrap_or_default()
        };
        let locator = Locator::new(&text, &self.origin, &self.base_dir);
        let fail = |at: &[Seg], path: &Path, why: String| {
            locator.error(at, &format!("{} cannot be written: {why}", path.display()))
        };
        probe_dir(&self.data_dir).map_err(|why| fail(&[key("data_dir")], &self.data_dir, why))?;
        for (i, s) in self.sinks.iter().enumerate() {
            // `run` creates a file sink's folder and opens it for appending.
            if let SinkKind::File { path } = &s.kind {
                probe_file(path)
                    .map_err(|why| fail(&[key("sinks"), Seg::Index(i), key("path")], path, why))?;
            }
            let dead_letter = match &s.kind {
                SinkKind::Influxdb(c) => c.dead_letter.as_ref(),
                SinkKind::Elasticsearch(c) => c.dead_letter.as_ref(),
                _ => None,
            };
            if let Some(p) = dead_letter {
                probe_file(p).map_err(|why| {
                    fail(
                        &[key("sinks"), Seg::Index(i), key("dead_letter_path")],
                        p,
                        why,
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// Can a file be created in `dir` (or, where it does not exist yet, in
/// its nearest existing ancestor, which `run` would create it under)?
fn probe_dir(dir: &Path) -> Result<(), String> {
    let mut d = dir;
    // Bounded by the path's depth.
    for _ in 0..=dir.components().count() {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => {
                let probe = d.join(format!(".sluice-check-{}", std::process::id()));
                return match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&probe)
                {
                    Ok(_) => {
                        let _ = std::fs::remove_file(&probe);
                        Ok(())
                    }
                    Err(e) => Err(format!("cannot create a file in {}: {e}", d.display())),
                };
            }
            Ok(_) => return Err(format!("{} is not a directory", d.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                d = match d.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
            }
            Err(e) => return Err(format!("{}: {e}", d.display())),
        }
    }
    Err(format!("no existing directory above {}", dir.display()))
}

/// Can `file` be appended to (or created)?
fn probe_file(file: &Path) -> Result<(), String> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_dir() => Err(format!("{} is a directory", file.display())),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir(p),
            _ => probe_dir(Path::new(".")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Replace `${NAME}` with the environment variable's value;
/// `${NAME:-default}` with `default` when it is unset or empty;
/// `${NAME:?message}` fails with `message` when it is unset or empty.
fn substitute_env(text: &str, origin: &str) -> Result<String, ConfigError> {
    substitute_with(text, origin, |name| std::env::var(name).ok())
}

/// Where in the TOML text a `${NAME}` stands.
#[derive(Clone, Copy, PartialEq)]
enum TomlContext {
    /// Outside any string (a bare value, a key, …).
    Bare,
    /// In `"…"`.
    Basic,
    /// In `"""…"""`.
    MultiBasic,
    /// In `'…'`.
    Literal,
    /// In `'''…'''`.
    MultiLiteral,
    /// After `#` outside strings, to the end of the line.
    Comment,
}

/// `value` written into TOML text at `context` so that it reads back as
/// exactly `value` and cannot change the document's structure; Err(why)
/// when that is impossible there.
fn toml_insert(value: &str, context: TomlContext) -> Result<String, String> {
    match context {
        TomlContext::Basic | TomlContext::MultiBasic => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(out)
        }
        TomlContext::Literal | TomlContext::MultiLiteral => {
            let newline_ok = context == TomlContext::MultiLiteral;
            if value.contains('\'') {
                Err("its value contains ' and the reference is in a '…' string: use \"…\"".into())
            } else if value
                .chars()
                .any(|c| c.is_control() && c != '\t' && !(newline_ok && c == '\n'))
            {
                Err("its value contains a newline or control character and the reference is in a '…' string: use \"…\"".into())
            } else {
                Ok(value.to_owned())
            }
        }
        TomlContext::Bare | TomlContext::Comment => {
            if !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:+-".contains(&b))
            {
                Ok(value.to_owned())
            } else {
                Err("outside a string its value must be a plain number, boolean or word (letters, digits, _ . : + -): put the reference in \"…\"".into())
            }
        }
    }
}

/// [`substitute_env`] over any source of variables.
///
/// The text is scanned with its TOML string context (basic, literal and
/// multi-line strings, comments), and each value is inserted so that it
/// reads back as itself: escaped inside `"…"`, refused when it cannot be
/// written inside `'…'` or is not a plain scalar outside strings. `$${`
/// is a literal `${`. References after `#` outside strings are left as
/// they are; a nested `${A:-${B}}` is an error.
fn substitute_with(
    text: &str,
    origin: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut context = TomlContext::Bare;
    let mut i = 0;
    while let Some(rest) = text.get(i..).filter(|r| !r.is_empty()) {
        if context != TomlContext::Comment && rest.starts_with("$${") {
            out.push_str("${");
            i += 3;
            continue;
        }
        if context != TomlContext::Comment && rest.starts_with("${") {
            let start = i;
            let after = &rest[2..];
            let name_len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let name = &after[..name_len];
            let tail = &after[name_len..];
            // `}` ends a plain reference; `:-` and `:?` take the text up
            // to the next `}` on the line.
            let line_end = tail.find('\n').unwrap_or(tail.len());
            let form = if tail.starts_with('}') {
                Some((None, 1))
            } else if let Some(op @ (":-" | ":?")) = tail.get(..2) {
                tail.get(2..line_end)
                    .and_then(|t| t.find('}'))
                    .map(|end| (Some((op, &tail[2..2 + end])), 2 + end + 1))
            } else {
                None
            };
            let (Some((form, used)), false) = (form, name.is_empty()) else {
                out.push_str("${");
                i += 2;
                continue;
            };
            let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
            let error = |message: String| ConfigError::Invalid {
                file: origin.to_owned(),
                line: text[..start].matches('\n').count() + 1,
                column: start - line_start + 1,
                key: format!("${{{name}}}"),
                message,
            };
            if let Some((_, word)) = form {
                if word.contains("${") {
                    return Err(error(format!(
                        "nested references are not supported in ${{{name}:…}} (write $${{ for a literal ${{)"
                    )));
                }
            }
            let value = match (form, var(name)) {
                (None, Some(v)) => v,
                (None, None) => {
                    return Err(error(format!("environment variable {name} is not set")));
                }
                (Some((_, _)), Some(v)) if !v.is_empty() => v,
                (Some((":-", default)), _) => default.to_owned(),
                (Some((_, message)), _) => {
                    let message = if message.is_empty() {
                        format!("environment variable {name} is not set or empty")
                    } else {
                        format!("environment variable {name} is not set or empty: {message}")
                    };
                    return Err(error(message));
                }
            };
            let value = toml_insert(&value, context)
                .map_err(|why| error(format!("environment variable {name}: {why}")))?;
            out.push_str(&value);
            i += 2 + name_len + used;
            continue;
        }
        let b = rest.as_bytes()[0];
        let (n, next) = match context {
            TomlContext::Bare => match b {
                b'#' => (1, TomlContext::Comment),
                b'"' if rest.starts_with("\"\"\"") => (3, TomlContext::MultiBasic),
                b'"' => (1, TomlContext::Basic),
                b'\'' if rest.starts_with("'''") => (3, TomlContext::MultiLiteral),
                b'\'' => (1, TomlContext::Literal),
                _ => (1, context),
            },
            TomlContext::Comment => match b {
                b'\n' => (1, TomlContext::Bare),
                _ => (1, context),
            },
            // An escape: the next character is the escaped one (a `\"`
            // does not end the string).
            TomlContext::Basic | TomlContext::MultiBasic if b == b'\\' => (2, context),
            TomlContext::Basic => match b {
                b'"' | b'\n' => (1, TomlContext::Bare),
                _ => (1, context),
            },
            // Up to two quotes may end the content before the closing three.
            TomlContext::MultiBasic if rest.starts_with("\"\"\"") => (
                rest.bytes().take_while(|q| *q == b'"').count().min(5),
                TomlContext::Bare,
            ),
            TomlContext::MultiBasic => (1, context),
            TomlContext::Literal => match b {
                b'\'' | b'\n' => (1, TomlContext::Bare),
                _ => (1, context),
            },
            TomlContext::MultiLiteral if rest.starts_with("'''") => (
                rest.bytes().take_while(|q| *q == b'\'').count().min(5),
                TomlContext::Bare,
            ),
            TomlContext::MultiLiteral => (1, context),
        };
        // Whole characters only.
        let mut end = n.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&rest[..end]);
        i += end;
        context = next;
    }
    Ok(out)
}

/// Maps TOML paths and byte offsets to lines, for error messages.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
    /// Where relative paths start.
    base: PathBuf,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

#[derive(Debug, Clone, PartialEq)]
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
    fn new(text: &'a str, origin: &'a str, base: &Path) -> Self {
        Locator {
            text,
            origin,
            base: base.to_path_buf(),
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

    /// A parse error at `offset`. A table deserialized as a tagged enum
    /// (`[[sinks]]`) reports unknown and missing fields at the start of its
    /// array: the field is looked up in the array's tables, so the error
    /// names `sinks[1].retention_duraton` at its own line.
    fn parse_error(&self, offset: usize, message: &str) -> ConfigError {
        let field = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .filter(|f| !f.is_empty())
        };
        if let Some(doc) = self.doc.as_ref() {
            let mut tables = Vec::new();
            collect_tables(doc.as_table(), &mut Vec::new(), &mut tables);
            // The tables of the array (or the table) the error points at.
            let at: Vec<&(Vec<Seg>, &toml_edit::Table)> = tables
                .iter()
                .skip_while(|(_, t)| t.span().map(|s| s.start) != Some(offset))
                .collect();
            let parent = |p: &[Seg]| p.split_last().map(|(_, rest)| rest.to_vec());
            let first_parent = at.first().and_then(|(p, _)| parent(p));
            let same_array = |path: &[Seg]| first_parent.is_some() && parent(path) == first_parent;
            if let Some(name) = field("unknown field `") {
                for (path, t) in at.iter().filter(|(p, _)| same_array(p)) {
                    if let Some(k) = t.key(name) {
                        let mut path = path.clone();
                        path.push(key(name));
                        let start = k.span().map_or(offset, |s| s.start);
                        return self.error_at(start, &path_string(&path), message);
                    }
                }
            }
            if let Some(name) = field("missing field `") {
                for (path, t) in at.iter().filter(|(p, _)| same_array(p)) {
                    if !t.contains_key(name) {
                        let start = t.span().map_or(offset, |s| s.start);
                        let mut path = path.clone();
                        path.push(key(name));
                        return self.error_at(start, &path_string(&path), message);
                    }
                }
            }
            // A wrongly typed value loses its key the same way.
            let array: Vec<&(Vec<Seg>, &toml_edit::Table)> =
                at.iter().copied().filter(|(p, _)| same_array(p)).collect();
            if let Some((path, start)) = self.failing_key(&array, message) {
                return self.error_at(start.unwrap_or(offset), &path_string(&path), message);
            }
        }
        self.error_at(offset, &self.path_at(offset), message)
    }

    /// The key of an array's table that fails with `message`, found by
    /// parsing again: first the array cut down to one table, then that
    /// table cut down to its `type` and its first keys, in order, until the
    /// error comes back (serde stops at the first bad value of a table).
    /// Only runs for an error already found, so the re-parses cost nothing
    /// on a good config.
    fn failing_key(
        &self,
        array: &[&(Vec<Seg>, &toml_edit::Table)],
        message: &str,
    ) -> Option<(Vec<Seg>, Option<usize>)> {
        let doc: toml_edit::DocumentMut = self.text.parse().ok()?;
        let fails_alike = |d: &toml_edit::DocumentMut| {
            toml::from_str::<RawConfig>(&d.to_string())
                .err()
                .is_some_and(|e| e.message().trim() == message)
        };
        for (path, table) in array {
            let Some((Seg::Index(i), parent)) = path.split_last() else {
                continue;
            };
            let mut single = doc.clone();
            {
                let tables = item_at_mut(&mut single, parent)?.as_array_of_tables_mut()?;
                let only = tables.get(*i)?.clone();
                tables.clear();
                tables.push(only);
            }
            if !fails_alike(&single) {
                continue;
            }
            let keys: Vec<&str> = table
                .iter()
                .map(|(k, _)| k)
                .filter(|k| *k != "type")
                .collect();
            for kept in 0..=keys.len() {
                let mut cut = single.clone();
                let only = item_at_mut(&mut cut, parent)?
                    .as_array_of_tables_mut()?
                    .get_mut(0)?;
                for k in &keys[kept..] {
                    only.remove(k);
                }
                if fails_alike(&cut) {
                    let name = match kept.checked_sub(1) {
                        Some(last) => keys[last],
                        None if table.contains_key("type") => "type",
                        None => return None,
                    };
                    let mut at = path.clone();
                    at.push(key(name));
                    return Some((at, table.key(name).and_then(|k| k.span()).map(|s| s.start)));
                }
            }
            return None;
        }
        None
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

/// Every table under `table` with its path, in document order of their
/// headers (implicit tables without a header are skipped).
fn collect_tables<'t>(
    table: &'t toml_edit::Table,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, &'t toml_edit::Table)>,
) {
    for (k, item) in table.iter() {
        match item {
            toml_edit::Item::Table(t) => {
                path.push(key(k));
                if t.span().is_some() {
                    out.push((path.clone(), t));
                }
                collect_tables(t, path, out);
                path.pop();
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    path.push(key(k));
                    path.push(Seg::Index(i));
                    out.push((path.clone(), t));
                    collect_tables(t, path, out);
                    path.truncate(path.len() - 2);
                }
            }
            _ => {}
        }
    }
    if path.is_empty() {
        out.sort_by_key(|(_, t)| t.span().map_or(usize::MAX, |s| s.start));
    }
}

/// The item at `path` (which starts with a key) in `doc`.
fn item_at_mut<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    path: &[Seg],
) -> Option<&'d mut toml_edit::Item> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut item = doc.as_table_mut().get_mut(first)?;
    for seg in rest {
        item = match seg {
            Seg::Key(k) => item.get_mut(k.as_str())?,
            Seg::Index(i) => item.get_mut(*i)?,
        };
    }
    Some(item)
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

/// An empty secret (e.g. `"${ES_API_KEY:-}"` with the variable unset) is
/// no secret: the sink sends no credentials.
fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
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
        let admin_access = match &raw.admin {
            Some(a) => {
                if a.token.as_deref() == Some("") {
                    return Err(self.err(
                        &[key("admin"), key("token")],
                        "must not be empty (leave it out for no token)",
                    ));
                }
                AdminAccess {
                    token: a.token.clone(),
                    allowed_hosts: a.allowed_hosts.clone(),
                }
            }
            None => AdminAccess::default(),
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
            for (set, key) in [
                (l.frame_timeout_secs.is_some(), "frame_timeout_secs"),
                (
                    l.max_connections_per_peer.is_some(),
                    "max_connections_per_peer",
                ),
            ] {
                if set && l.protocol == ListenerProtocol::Udp {
                    return Err(self.err(&at(&base, key), "only TCP and TLS listeners take it"));
                }
            }
            let frame_timeout = l.frame_timeout_secs.unwrap_or(DEFAULT_FRAME_TIMEOUT_SECS);
            if frame_timeout == 0 {
                return Err(self.err(&at(&base, "frame_timeout_secs"), "must be at least 1"));
            }
            if let Some(per_peer) = l.max_connections_per_peer {
                if per_peer == 0 || per_peer > max_connections {
                    return Err(self.err(
                        &at(&base, "max_connections_per_peer"),
                        format!("must be between 1 and max_connections ({max_connections})"),
                    ));
                }
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
                (ListenerProtocol::Udp, b) => Some(b.unwrap_or(DEFAULT_UDP_RECEIVE_BUFFER_BYTES)),
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
            let listen = self.addr(&at(&base, "listen"), &l.listen)?;
            // Two sockets cannot bind one address and transport (TLS is
            // TCP); `run` would fail, so `check` refuses it too.
            let transport = |p: ListenerProtocol| p == ListenerProtocol::Udp;
            if let Some(other) = listeners.iter().find(|o: &&ListenerConfig| {
                listen.port() != 0
                    && o.listen.port() == listen.port()
                    && transport(o.protocol) == transport(l.protocol)
                    && (o.listen.ip() == listen.ip()
                        || o.listen.ip().is_unspecified()
                        || listen.ip().is_unspecified())
            }) {
                return Err(self.err(
                    &at(&base, "listen"),
                    format!(
                        "listener {:?} already listens on {} ({}): one address and protocol per listener",
                        other.name,
                        other.listen,
                        if transport(l.protocol) { "udp" } else { "tcp" }
                    ),
                ));
            }
            listeners.push(ListenerConfig {
                listen,
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
                frame_timeout: Duration::from_secs(frame_timeout),
                max_connections_per_peer: l.max_connections_per_peer,
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

        // A managed template maps the typed captures of the routes that
        // write documents to the sink.
        for r in &routes {
            if let (OutputConfig::Document(_), Some(sink)) = (&r.output, sinks.get_mut(r.sink)) {
                if let SinkKind::Elasticsearch(es) = &mut sink.kind {
                    es.captures.extend(r.capture_types.iter().cloned());
                }
            }
        }

        Ok(Config {
            origin: self.locator.origin.to_owned(),
            timezone,
            shutdown_timeout: Duration::from_secs(
                raw.shutdown_timeout_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            ),
            data_dir: self.resolve(
                raw.data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            ),
            base_dir: self.locator.base.clone(),
            admin,
            admin_access,
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
                kind: SinkKind::File {
                    path: self.resolve(path),
                },
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
                max_backoff_secs,
                dead_letter_path,
                create_database,
                retention_duration,
                unsigned,
                precision,
                ca_file,
            } => {
                let (token, username, password) =
                    (nonempty(token), nonempty(username), nonempty(password));
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
                let dead_letter = Some(self.resolve(dead_letter_path.unwrap_or_else(|| {
                    PathBuf::from(format!("sluice-data/dead-letter/{name}.ndjson"))
                })));
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
                        max_backoff: self.max_backoff(base, max_backoff_secs)?,
                        dead_letter,
                        create_database,
                        retention_duration,
                        unsigned: unsigned.unwrap_or(match api {
                            InfluxApi::V1 => UnsignedAs::Integer,
                            InfluxApi::V2 => UnsignedAs::Unsigned,
                        }),
                        precision: precision.unwrap_or_default(),
                        ca_file: ca_file.map(|f| self.resolve(f)),
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
                max_backoff_secs,
                dead_letter_path,
                document_ids,
                ca_file,
                manage_template,
                template_name,
                data_stream,
                ilm_policy,
            } => {
                let (username, password, api_key) =
                    (nonempty(username), nonempty(password), nonempty(api_key));
                self.urls(base, &urls)?;
                // A data stream is written by its name, through its template.
                let index = match (&data_stream, index.is_empty()) {
                    (Some(ds), true) => ds.clone(),
                    (Some(_), false) => {
                        return Err(self.err(
                            &at(base, "data_stream"),
                            "names the index itself: leave out `index`",
                        ));
                    }
                    (None, _) => index,
                };
                if index.is_empty() {
                    return Err(self.err(&at(base, "index"), "must not be empty"));
                }
                if data_stream.is_some() && manage_template == Some(false) {
                    return Err(self.err(
                        &at(base, "data_stream"),
                        "needs the template that declares it: leave manage_template out or true",
                    ));
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
                // Elasticsearch refuses index names with capitals; the
                // date placeholders (%Y, %H) are not part of the name.
                if index
                    .split('%')
                    .enumerate()
                    .any(|(i, p)| p.chars().skip(usize::from(i > 0)).any(|c| c.is_uppercase()))
                {
                    return Err(self.err(
                        &at(base, "index"),
                        format!(
                            "{index:?}: Elasticsearch index names must be lowercase (only the %Y, %m, %d, %H placeholders may be capitals)"
                        ),
                    ));
                }
                let dead_letter = Some(self.resolve(dead_letter_path.unwrap_or_else(|| {
                    PathBuf::from(format!("sluice-data/dead-letter/{name}.ndjson"))
                })));
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
                        max_backoff: self.max_backoff(base, max_backoff_secs)?,
                        dead_letter,
                        document_ids: document_ids.unwrap_or(true),
                        ca_file: ca_file.map(|f| self.resolve(f)),
                        manage_template: manage_template.unwrap_or(data_stream.is_some()),
                        template_name,
                        data_stream,
                        ilm_policy,
                        captures: Vec::new(),
                    }),
                }
            }
        })
    }

    /// An HTTP sink's `max_backoff_secs`: at least 1 (no wait at all
    /// would hammer a server that asked for one), default
    /// [`DEFAULT_MAX_BACKOFF_SECS`].
    fn max_backoff(&self, base: &[Seg], secs: Option<u64>) -> Result<Duration, ConfigError> {
        match secs.unwrap_or(DEFAULT_MAX_BACKOFF_SECS) {
            0 => Err(self.err(
                &at(base, "max_backoff_secs"),
                "must be at least 1 (seconds)",
            )),
            secs => Ok(Duration::from_secs(secs)),
        }
    }

    /// Files named in the config are relative to the config file's
    /// directory (the working directory for the default config).
    fn config_dir(&self) -> PathBuf {
        self.locator.base.clone()
    }

    /// A path from the config: relative to [`Self::config_dir`].
    fn resolve(&self, path: PathBuf) -> PathBuf {
        if path.is_absolute() || self.locator.base.as_os_str().is_empty() {
            path
        } else {
            self.locator.base.join(path)
        }
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
                if d.keep_fields.is_some() && format != RawDocumentFormat::Flume {
                    return Err(self.err(
                        &at(&at(base, "document"), "keep_fields"),
                        "only for format = \"flume\"",
                    ));
                }
                match format {
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
                            Some(RawKeepFields::Text(t)) => {
                                FlumeKeepFields::parse(t).map_err(|e| {
                                    self.err(&at(&at(base, "document"), "keep_fields"), e)
                                })?
                            }
                        },
                    },
                }
            }),
            (Some(_), Some(_)) => {
                return Err(self.err(base, "a route has either [metric] or [document], not both"));
            }
            // Elasticsearch takes documents only: ECS unless said otherwise.
            (None, None)
                if matches!(
                    sinks.get(sink).map(|s| &s.kind),
                    Some(SinkKind::Elasticsearch(_))
                ) =>
            {
                OutputConfig::Document(DocumentFormat::Ecs { original: false })
            }
            (None, None) => {
                return Err(self.err(
                    base,
                    "a route to a file or stdout sink needs an output: a [routes.metric] or [routes.document] table",
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
                        (RawFsync::Never, None) => crate::queue::spill::Fsync::Never,
                        (RawFsync::Always, None) => crate::queue::spill::Fsync::EveryBatch,
                        (RawFsync::Batch, None) => crate::queue::spill::Fsync::OnFlush,
                        (RawFsync::Interval, ms) => {
                            crate::queue::spill::Fsync::IntervalMs(ms.unwrap_or(1000).max(1))
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
        assert_eq!(c.listeners.len(), 4);
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
    fn max_backoff_secs_defaults_to_30_and_is_at_least_1() {
        let sink = |extra: &str| {
            format!(
                "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\nindex = \"i\"\n{extra}[[routes]]\nname = \"r\"\nsink = \"es\"\ndocument = {{}}\n"
            )
        };
        let backoff = |c: &Config| match &c.sinks[0].kind {
            SinkKind::Elasticsearch(e) => e.max_backoff,
            _ => unreachable!(),
        };
        let c = Config::from_toml(&sink(""), "t.toml").unwrap();
        assert_eq!(backoff(&c), Duration::from_secs(DEFAULT_MAX_BACKOFF_SECS));
        let c = Config::from_toml(&sink("max_backoff_secs = 2\n"), "t.toml").unwrap();
        assert_eq!(backoff(&c), Duration::from_secs(2));
        let e = err(&sink("max_backoff_secs = 0\n"));
        assert!(e.starts_with("t.toml:10:"), "{e}");
        assert!(
            e.contains("sinks[0].max_backoff_secs") && e.contains("at least 1"),
            "{e}"
        );
    }

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
    fn frame_timeout_and_per_peer_limit_are_bounded_and_tcp_only() {
        let tcp = |extra: &str| {
            format!(
                "[[listeners]]\nname = \"t\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nmax_connections = 8\n{extra}\n"
            )
        };
        let route = "[[routes]]\nname = \"r\"\nsink = \"f\"\ndocument = {}\n";
        let ok = Config::from_toml(&format!("{}{BASE}{route}", tcp("")), "t.toml").unwrap();
        assert_eq!(ok.listeners[0].frame_timeout, Duration::from_secs(30));
        assert_eq!(ok.listeners[0].max_connections_per_peer, None);
        let ok = Config::from_toml(
            &format!(
                "{}{BASE}{route}",
                tcp("frame_timeout_secs = 2\nmax_connections_per_peer = 8")
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(ok.listeners[0].frame_timeout, Duration::from_secs(2));
        assert_eq!(ok.listeners[0].max_connections_per_peer, Some(8));
        let e = err(&format!("{}{BASE}", tcp("frame_timeout_secs = 0")));
        assert!(
            e.starts_with("t.toml:6:") && e.contains("listeners[0].frame_timeout_secs"),
            "{e}"
        );
        for n in ["0", "9"] {
            let e = err(&format!(
                "{}{BASE}",
                tcp(&format!("max_connections_per_peer = {n}"))
            ));
            assert!(
                e.contains("listeners[0].max_connections_per_peer")
                    && e.contains("between 1 and max_connections (8)"),
                "{e}"
            );
        }
        let e = err(&format!(
            "[[listeners]]\nname = \"v\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\nframe_timeout_secs = 5\n{BASE}"
        ));
        assert!(
            e.contains("listeners[0].frame_timeout_secs") && e.contains("only TCP and TLS"),
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

    #[test]
    fn env_defaults_and_required_variables() {
        let vars = |name: &str| match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let sub = |text: &str| substitute_with(text, "t.toml", vars);
        assert_eq!(sub("a = \"${SET:-x}\"\n").unwrap(), "a = \"value\"\n");
        assert_eq!(sub("a = \"${UNSET:-x y}\"\n").unwrap(), "a = \"x y\"\n");
        assert_eq!(sub("a = \"${EMPTY:-dflt}\"\n").unwrap(), "a = \"dflt\"\n");
        assert_eq!(sub("a = \"${UNSET:-}\"\n").unwrap(), "a = \"\"\n");
        assert_eq!(sub("a = \"${EMPTY}\"\n").unwrap(), "a = \"\"\n");
        assert_eq!(sub("a = \"${SET:?need it}\"\n").unwrap(), "a = \"value\"\n");
        assert_eq!(
            sub("a = \"${SET}-${UNSET:-d}-${SET:?m}\"\n").unwrap(),
            "a = \"value-d-value\"\n"
        );
        // Not a reference: left as it is.
        assert_eq!(
            sub("a = \"${}\" b = \"${X:+y}\"\n").unwrap(),
            "a = \"${}\" b = \"${X:+y}\"\n"
        );

        let e = sub("a = 1\nb = \"${UNSET:?export the InfluxDB password}\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.toml:2:6: ${UNSET}: environment variable UNSET is not set or empty: export the InfluxDB password"
        );
        let e = sub("\n\nb = \"x ${EMPTY:?}\"\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:3:8: ${EMPTY}: "), "{e}");
        assert!(e.contains("EMPTY is not set or empty"), "{e}");
        // Comment lines are not substituted.
        assert_eq!(sub("  # ${UNSET:?m}\n").unwrap(), "  # ${UNSET:?m}\n");
        // An unterminated default is not a reference (and so not an error).
        assert_eq!(sub("a = \"${UNSET:-x\"\n").unwrap(), "a = \"${UNSET:-x\"\n");
    }

    /// Issue #20 follow-up: a value can never change the TOML structure.
    #[test]
    fn substituted_values_cannot_change_the_toml_structure() {
        let vars = |name: &str| match name {
            "BACKSLASH" => Some(r"ab\cd".to_owned()),
            "TAB_ESCAPE" => Some(r"a\tb".to_owned()),
            "QUOTE" => Some("a\"b".to_owned()),
            "INJECT" => Some("x.log\"\nbatch_max_events = 1\n#".to_owned()),
            "APOS" => Some("it's".to_owned()),
            "PORT" => Some("9901".to_owned()),
            "CTRL" => Some("a\u{1}b".to_owned()),
            _ => None,
        };
        let sub = |text: &str| substitute_with(text, "t.toml", vars);
        let parsed = |text: &str| -> toml::Table { toml::from_str(&sub(text).unwrap()).unwrap() };
        // Basic strings: escaped, read back exactly.
        assert_eq!(
            parsed("p = \"${BACKSLASH}\"\n")["p"].as_str(),
            Some(r"ab\cd")
        );
        assert_eq!(
            parsed("p = \"${TAB_ESCAPE}\"\n")["p"].as_str(),
            Some(r"a\tb")
        );
        assert_eq!(parsed("p = \"${QUOTE}\"\n")["p"].as_str(), Some("a\"b"));
        assert_eq!(parsed("p = \"${CTRL}\"\n")["p"].as_str(), Some("a\u{1}b"));
        let t = parsed("path = \"${INJECT}\"\n");
        assert_eq!(t.len(), 1, "no key injected: {t:?}");
        assert_eq!(t["path"].as_str(), Some("x.log\"\nbatch_max_events = 1\n#"));
        // Defaults are values too.
        assert_eq!(
            parsed("p = \"${UNSET:-C:\\dir}\"\n")["p"].as_str(),
            Some("C:\\dir")
        );
        // Multi-line basic strings, also on a line starting with `#`.
        let t = parsed("p = \"\"\"\n# ${QUOTE} ${INJECT}\n\"\"\"\n");
        assert_eq!(
            t["p"].as_str(),
            Some("# a\"b x.log\"\nbatch_max_events = 1\n#\n")
        );
        // Literal strings: taken as they are, or refused naming the variable.
        assert_eq!(parsed("p = '${BACKSLASH}'\n")["p"].as_str(), Some(r"ab\cd"));
        let e = sub("a = 1\np = '${APOS}'\n").unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:2:6: ${APOS}: environment variable APOS"),
            "{e}"
        );
        let e = sub("p = '${INJECT}'\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:6: ${INJECT}: "), "{e}");
        let e = sub("p = '''\n${APOS}'''\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2:1: ${APOS}: "), "{e}");
        assert_eq!(
            parsed("p = '''\n# ${BACKSLASH}\n'''\n")["p"].as_str(),
            Some("# ab\\cd\n")
        );
        // Outside strings: only a plain scalar.
        assert_eq!(parsed("port = ${PORT}\n")["port"].as_integer(), Some(9901));
        assert_eq!(parsed("on = ${UNSET:-true}\n")["on"].as_bool(), Some(true));
        let e = sub("\nn = ${INJECT}\n").unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:2:5: ${INJECT}: environment variable INJECT"),
            "{e}"
        );
        assert!(e.contains("outside a string"), "{e}");
        let e = sub("n = ${UNSET:-}\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:5: ${UNSET}: "), "{e}");
        // `$${` is a literal `${`.
        assert_eq!(parsed("p = \"$${PORT}\"\n")["p"].as_str(), Some("${PORT}"));
        assert_eq!(
            parsed("p = \"$${PORT} ${PORT}\"\n")["p"].as_str(),
            Some("${PORT} 9901")
        );
        // Nested references are an error.
        let e = sub("p = \"${UNSET:-${PORT}}\"\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:6: ${UNSET}: nested"), "{e}");
        // Comments after a value are left alone; a `#` in a string is not one.
        assert_eq!(
            sub("p = \"#${PORT}\" # ${UNSET:?m}\n").unwrap(),
            "p = \"#9901\" # ${UNSET:?m}\n"
        );
    }

    #[test]
    fn empty_secrets_mean_no_credentials() {
        let c = Config::from_toml(
            &format!("{}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://127.0.0.1:9\"]\nindex = \"x\"\napi_key = \"\"\nusername = \"\"\n", listener("")),
            "t",
        )
        .unwrap();
        let SinkKind::Elasticsearch(es) = &c.sinks[1].kind else {
            panic!("not elasticsearch")
        };
        assert_eq!((&es.api_key, &es.username), (&None, &None));
    }

    #[test]
    fn admin_token_and_allowed_hosts() {
        let c = Config::from_toml(
            &format!(
                "[admin]\ntoken = \"abc\"\nallowed_hosts = [\"sluice.internal\"]\n{}",
                listener("")
            ),
            "t",
        )
        .unwrap();
        assert_eq!(c.admin_access.token.as_deref(), Some("abc"));
        assert_eq!(c.admin_access.allowed_hosts, ["sluice.internal"]);
        assert!(!format!("{c:?}").contains("abc"), "the token is not logged");
        let e = Config::from_toml(
            &format!("[admin]\ntoken = \"\"\n{}", listener("")),
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("t.toml:2:") && e.contains("admin.token"),
            "{e}"
        );
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
                Some(DocumentFormat::Flume {
                    keep: FlumeKeepFields::default()
                }),
                Some(DocumentFormat::Canonical)
            ]
        );
        let e = err(&text.replace("format = \"flume\"", "format = \"xml\""));
        assert!(e.contains("format"), "{e}");
    }

    #[test]
    fn flume_keep_fields_take_flumes_spellings() {
        let doc = |keep: &str| {
            format!(
                "{BASE}\n[[routes]]\nname = \"legacy\"\nsink = \"f\"\ndocument = {{ format = \"flume\", keep_fields = {keep} }}\n{DEFAULT_ROUTE}"
            )
        };
        let keep = |v: &str| match Config::from_toml(&doc(v), "t").unwrap().routes[0].output {
            OutputConfig::Document(DocumentFormat::Flume { keep }) => keep,
            ref other => panic!("{other:?}"),
        };
        let none = FlumeKeepFields::default();
        let all = FlumeKeepFields { all: true, ..none };
        assert_eq!(keep("false"), none);
        assert_eq!(keep("\"none\""), none);
        assert_eq!(keep("true"), all);
        assert_eq!(keep("\"All\""), all);
        assert_eq!(
            keep("\"timestamp hostname\""),
            FlumeKeepFields {
                timestamp: true,
                hostname: true,
                ..none
            }
        );
        let e = err(&doc("\"timestamp hostnme\""));
        assert!(
            e.contains("t.toml:") && e.contains("document.keep_fields") && e.contains("hostnme"),
            "{e}"
        );
        let e = err(&doc("true").replace("\"flume\"", "\"ecs\""));
        assert!(
            e.contains("keep_fields: only for format = \"flume\""),
            "{e}"
        );
    }

    /// Issue #26 item 7: an error inside `[[sinks]]` names the sink's key
    /// and its own line, not the table header and "(top level)".
    #[test]
    fn errors_inside_sinks_and_listeners_name_their_key_and_line() {
        let e = err(&format!(
            "{BASE}\n[[sinks]]\nname = \"ie\"\ntype = \"influxdb\"\nurls = [\"http://i:8086\"]\ndatabase = \"d\"\nretention_duraton = \"1w\"\n{DEFAULT_ROUTE}"
        ));
        assert!(
            e.starts_with("t.toml:17:1: sinks[1].retention_duraton: unknown field"),
            "{e}"
        );
        let e = err(&format!(
            "{BASE}\n[[listeners]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\n{DEFAULT_ROUTE}"
        ));
        assert!(
            e.starts_with("t.toml:12:1: listeners[1].name: missing field"),
            "{e}"
        );
    }

    /// A wrongly typed value inside `[[sinks]]` names the sink's key and
    /// its own line, as an unknown key does, not the `[[sinks]]` header.
    #[test]
    fn type_errors_inside_sinks_name_their_key_and_line() {
        let e = err(&format!(
            "{BASE}\n[[sinks]]\nname = \"g\"\ntype = \"file\"\npath = \"y\"\nbatch_max_events = \"ten\"\n{DEFAULT_ROUTE}"
        ));
        assert!(
            e.starts_with("t.toml:16:1: sinks[1].batch_max_events: invalid type: string \"ten\""),
            "{e}"
        );
        let e = err(&format!(
            "{BASE}\nbatch_max_events = \"ten\"\n{DEFAULT_ROUTE}"
        ));
        assert!(
            e.starts_with("t.toml:12:1: sinks[0].batch_max_events: invalid type: string \"ten\""),
            "{e}"
        );
        let e = err(&format!(
            "{BASE}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\nindex = \"i\"\nmax_retry_secs = \"ten\"\n{DEFAULT_ROUTE}"
        ));
        assert!(
            e.starts_with("t.toml:17:1: sinks[1].max_retry_secs: invalid type: string \"ten\""),
            "{e}"
        );
    }

    #[test]
    fn check_writable_probes_file_sink_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        let load = |sink_path: &str| {
            let text = format!(
                "data_dir = \"{}\"\n{BASE}{DEFAULT_ROUTE}",
                dir.path().display()
            )
            .replace("path = \"x\"", &format!("path = \"{sink_path}\""));
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file)).unwrap()
        };
        let e = load("/proc/nonexistent/x.ndjson")
            .check_writable()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:11:1: sinks[0].path: /proc/nonexistent/x.ndjson cannot be written"),
            "{e}"
        );
        let ok = dir.path().join("sub/x.ndjson");
        assert!(load(&ok.display().to_string()).check_writable().is_ok());
    }

    /// Issue #26 item 9: `check` refuses what `run` cannot do: two
    /// listeners on one address and protocol.
    #[test]
    fn two_listeners_on_one_address_and_protocol_are_refused() {
        let two = |a: &str, pa: &str, b: &str, pb: &str| {
            format!(
                "[[listeners]]\nname = \"a\"\nprotocol = \"{pa}\"\nlisten = \"{a}\"\n[[listeners]]\nname = \"b\"\nprotocol = \"{pb}\"\nlisten = \"{b}\"\n[[sinks]]\nname = \"f\"\ntype = \"file\"\npath = \"x\"\n{DEFAULT_ROUTE}"
            )
        };
        let e = err(&two("127.0.0.1:5514", "tcp", "127.0.0.1:5514", "tcp"));
        assert!(
            e.starts_with("t.toml:8:1: listeners[1].listen: ")
                && e.contains("listener \"a\" already listens on 127.0.0.1:5514 (tcp)"),
            "{e}"
        );
        let e = err(&two("0.0.0.0:5514", "udp", "127.0.0.1:5514", "udp"));
        assert!(e.contains("listeners[1].listen"), "{e}");
        // UDP and TCP on one port, and ephemeral ports, are fine.
        Config::from_toml(&two("127.0.0.1:5514", "udp", "127.0.0.1:5514", "tcp"), "t").unwrap();
        Config::from_toml(&two("127.0.0.1:0", "tcp", "127.0.0.1:0", "tcp"), "t").unwrap();
        Config::from_toml(&two("127.0.0.1:5514", "tcp", "127.0.0.2:5514", "tcp"), "t").unwrap();
    }

    /// Issue #26 item 9: Elasticsearch refuses index names with capitals.
    #[test]
    fn an_index_pattern_with_capitals_is_refused() {
        let es = |index: &str| {
            format!(
                "{BASE}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\nindex = \"{index}\"\n{DEFAULT_ROUTE}"
            )
        };
        let e = err(&es("Syslog-%Y.%m.%d"));
        assert!(
            e.starts_with("t.toml:16:1: sinks[1].index: ") && e.contains("lowercase"),
            "{e}"
        );
        Config::from_toml(&es("syslog-%Y.%m.%d-%H"), "t").unwrap();
    }

    /// Issue #26 item 11: sink paths are relative to the config's folder,
    /// like grok and TLS files; the default config found without -c (and
    /// the embedded one) resolve against the working directory.
    #[test]
    fn sink_paths_are_relative_to_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("etc");
        std::fs::create_dir(&sub).unwrap();
        let text = format!(
            "{BASE}\n[[sinks]]\nname = \"i\"\ntype = \"influxdb\"\nurls = [\"http://i:8086\"]\ndatabase = \"d\"\n[[sinks]]\nname = \"abs\"\ntype = \"file\"\npath = \"/var/log/abs.ndjson\"\n{DEFAULT_ROUTE}"
        );
        let path = sub.join("sluice.toml");
        std::fs::write(&path, &text).unwrap();
        let c = Config::load(Some(&path)).unwrap();
        let file_path = |c: &Config, i: usize| match &c.sinks[i].kind {
            SinkKind::File { path } => path.clone(),
            _ => panic!("file sink expected"),
        };
        assert_eq!(file_path(&c, 0), sub.join("x"));
        assert_eq!(file_path(&c, 2), Path::new("/var/log/abs.ndjson"));
        let SinkKind::Influxdb(i) = &c.sinks[1].kind else {
            panic!("influxdb sink expected")
        };
        assert_eq!(
            i.dead_letter.as_deref(),
            Some(sub.join("sluice-data/dead-letter/i.ndjson").as_path())
        );
        assert_eq!(c.data_dir, sub.join("sluice-data"));
        // The default config found without -c resolves like the embedded one.
        let c = Config::load_relative_to(&path, Path::new("")).unwrap();
        assert_eq!(file_path(&c, 0), Path::new("x"));
        let c = Config::load(None).unwrap();
        assert_eq!(file_path(&c, 0), Path::new("sluice-data/metrics.lp"));
        assert_eq!(c.data_dir, Path::new("sluice-data"));
    }

    /// Issue #26 item 6: UDP listeners ask for a receive buffer that holds
    /// a burst unless told otherwise; TCP listeners take none.
    #[test]
    fn udp_listeners_ask_for_several_mib_by_default() {
        let c = Config::from_toml(&format!("{BASE}{DEFAULT_ROUTE}"), "t").unwrap();
        assert_eq!(
            c.listeners[0].receive_buffer_bytes,
            Some(DEFAULT_UDP_RECEIVE_BUFFER_BYTES)
        );
        const { assert!(DEFAULT_UDP_RECEIVE_BUFFER_BYTES >= 4 * 1024 * 1024) };
        let c = Config::load(None).unwrap();
        assert_eq!(c.listeners[1].receive_buffer_bytes, None, "tcp");
    }

    /// Issue #26 item 11: ECS is the real default for Elasticsearch sinks:
    /// a route (or the default route) to one needs no [routes.document].
    #[test]
    fn a_route_to_elasticsearch_writes_ecs_documents_without_a_document_table() {
        let text = format!(
            "{BASE}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\nindex = \"syslog-%Y.%m.%d\"\n[[routes]]\nname = \"r\"\nsink = \"es\"\n[default_route]\nsink = \"es\"\n"
        );
        let c = Config::from_toml(&text, "t").unwrap_or_else(|e| panic!("{e}"));
        for r in &c.routes {
            assert!(
                matches!(
                    r.output,
                    OutputConfig::Document(DocumentFormat::Ecs { original: false })
                ),
                "{}",
                r.name
            );
        }
        // A file sink takes metrics or documents: it still has to be said.
        let e = err(&format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\n{DEFAULT_ROUTE}"
        ));
        assert!(
            e.contains("routes[0]") && e.contains("[routes.document]"),
            "{e}"
        );
    }
}
