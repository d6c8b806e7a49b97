//! `[[sinks]]`: runtime settings and their validation.

use super::*;

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
    /// How the worker retries a batch, and the sink part of one: from
    /// the sink's retry keys, validated once.
    pub(crate) retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    File { path: PathBuf },
    Stdout,
    Influxdb(InfluxConfig),
    Elasticsearch(ElasticsearchConfig),
    Kafka(Box<KafkaConfig>),
}

/// A sink URL as logs and messages show it: without the `/` the parser
/// adds to a bare host (`http://es:9200`, as configured).
pub(crate) fn url_text(url: &reqwest::Url) -> &str {
    url.as_str().trim_end_matches('/')
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File { .. } => "file",
            SinkKind::Stdout => "stdout",
            SinkKind::Influxdb(_) => "influxdb",
            SinkKind::Elasticsearch(_) => "elasticsearch",
            SinkKind::Kafka(_) => "kafka",
        }
    }
}

/// What both HTTP sinks are configured with alike.
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    /// Parsed once, at validation.
    pub urls: Vec<reqwest::Url>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub batch_max_bytes: usize,
    pub gzip: bool,
    pub timeout: Duration,
    /// Where refused records go, one JSON object per line with the reason.
    pub dead_letter: Option<PathBuf>,
    /// PEM file of the CA(s) that sign the server's HTTPS certificate, in
    /// addition to the system's.
    pub ca_file: Option<PathBuf>,
}

/// An HTTP sink's shared settings as written, and its defaults.
struct RawHttp {
    urls: Vec<reqwest::Url>,
    username: Option<String>,
    password: Option<String>,
    batch_max_events: Option<usize>,
    linger_ms: Option<u64>,
    batch_max_bytes: Option<usize>,
    gzip: Option<bool>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_retry_secs: Option<u64>,
    max_backoff_secs: Option<u64>,
    dead_letter: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    /// Defaults: request size, timeout (seconds).
    default_batch_bytes: usize,
    default_timeout_secs: u64,
}

/// The keys both HTTP sinks' raw tables (`RawInflux`, `RawElasticsearch`)
/// spell alike, moved out of `$raw` into one [`RawHttp`].
macro_rules! raw_http {
    ($raw:ident, $urls:expr, $dead_letter:expr, $default_batch_bytes:expr, $default_timeout_secs:expr) => {
        RawHttp {
            urls: $urls,
            username: nonempty($raw.username),
            password: nonempty($raw.password),
            batch_max_events: $raw.batch_max_events,
            linger_ms: $raw.linger_ms,
            batch_max_bytes: $raw.batch_max_bytes,
            gzip: $raw.gzip,
            timeout_secs: $raw.timeout_secs,
            max_retries: $raw.max_retries,
            max_retry_secs: $raw.max_retry_secs,
            max_backoff_secs: $raw.max_backoff_secs,
            dead_letter: $dead_letter,
            ca_file: $raw.ca_file,
            default_batch_bytes: $default_batch_bytes,
            default_timeout_secs: $default_timeout_secs,
        }
    };
}

#[derive(Debug, Clone)]
pub struct InfluxConfig {
    /// What it shares with the Elasticsearch sink.
    pub http: HttpSinkConfig,
    pub api: InfluxApi,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token: Option<String>,
    /// 1.x: create the database (and the retention policy) at start-up.
    pub create_database: bool,
    /// With `create_database`: the retention policy's duration (`52w`,
    /// `INF`); it is created as `retention_policy` if missing.
    pub retention_duration: Option<String>,
    /// How `uint` fields are written: 1.x rejects `u` unless built for it.
    pub unsigned: UnsignedAs,
    /// Timestamp precision of the points written.
    pub precision: Precision,
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
    /// What it shares with the InfluxDB sink.
    pub http: HttpSinkConfig,
    pub index: String,
    pub api_key: Option<String>,
    pub pipeline: Option<String>,
    /// Deterministic `_id`s, so retries never duplicate; false:
    /// Elasticsearch generates ids.
    pub document_ids: bool,
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

impl Validator<'_, '_> {
    pub(super) fn batch(
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

    pub(super) fn urls(
        &self,
        base: &[Seg],
        urls: &[String],
    ) -> Result<Vec<reqwest::Url>, ConfigError> {
        if urls.is_empty() {
            return Err(self.err(&at(base, "urls"), "at least one URL is needed"));
        }
        let mut parsed = Vec::with_capacity(urls.len());
        for u in urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(self.err(
                    &at(base, "urls"),
                    format!("{u:?} is not an http:// or https:// URL"),
                ));
            }
            // Parsed once here: the sinks build their request URLs from it.
            parsed.push(reqwest::Url::parse(u).map_err(|e| {
                self.err(&at(base, "urls"), format!("{u:?} is not a valid URL: {e}"))
            })?);
        }
        Ok(parsed)
    }

    pub(super) fn sink(
        &self,
        base: &[Seg],
        raw: RawSink,
        data_dir: &Path,
    ) -> Result<SinkConfig, ConfigError> {
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
                retry: RetryPolicy::local(),
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
                retry: RetryPolicy::local(),
            },
            RawSink::Influxdb(raw) => self.influxdb(base, raw, data_dir)?,
            RawSink::Elasticsearch(raw) => self.elasticsearch(base, raw, data_dir)?,
            RawSink::Kafka(raw) => self.kafka(base, raw, data_dir)?,
        })
    }

    /// A sink's dead-letter file: as configured (relative to the
    /// config's folder), else `<data_dir>/dead-letter/<sink>.ndjson`.
    pub(super) fn dead_letter(
        &self,
        name: &str,
        path: Option<PathBuf>,
        data_dir: &Path,
    ) -> PathBuf {
        match path {
            Some(p) => self.resolve(p),
            None => data_dir.join("dead-letter").join(format!("{name}.ndjson")),
        }
    }

    /// An `[[sinks]]` of type = "influxdb".
    fn influxdb(
        &self,
        base: &[Seg],
        raw: RawInflux,
        data_dir: &Path,
    ) -> Result<SinkConfig, ConfigError> {
        let RawInflux {
            name,
            urls,
            api,
            database,
            retention_policy,
            org,
            bucket,
            token,
            create_database,
            retention_duration,
            unsigned,
            precision,
            ..
        } = raw;
        let token = nonempty(token);
        let create_database = create_database.unwrap_or(false);
        if create_database && api == Some(InfluxApi::V2) {
            return Err(self.err(
                &at(base, "create_database"),
                "only for api = \"v1\" (2.x buckets are created with the influx CLI or API)",
            ));
        }
        if retention_duration.is_some() && (retention_policy.is_none() || !create_database) {
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
                    format!("{d:?} is not an InfluxQL duration (e.g. \"52w\", \"30d\", \"INF\")"),
                ));
            }
        }
        let urls = self.urls(base, &urls)?;
        let api = api.unwrap_or(InfluxApi::V1);
        let dead_letter = Some(self.dead_letter(&name, raw.dead_letter_path, data_dir));
        match api {
            InfluxApi::V1 if database.is_none() => {
                return Err(self.err(&at(base, "database"), "api = \"v1\" needs a database"));
            }
            InfluxApi::V2 if bucket.is_none() || org.is_none() => {
                return Err(self.err(&at(base, "bucket"), "api = \"v2\" needs org and bucket"));
            }
            _ => {}
        }
        let http = raw_http!(raw, urls, dead_letter, 1024 * 1024, 10);
        self.http_sink(base, name, http, |http| {
            SinkKind::Influxdb(InfluxConfig {
                http,
                api,
                database,
                retention_policy,
                org,
                bucket,
                token,
                create_database,
                retention_duration,
                unsigned: unsigned.unwrap_or(match api {
                    InfluxApi::V1 => UnsignedAs::Integer,
                    InfluxApi::V2 => UnsignedAs::Unsigned,
                }),
                precision: precision.unwrap_or_default(),
            })
        })
    }

    /// An `[[sinks]]` of type = "elasticsearch".
    fn elasticsearch(
        &self,
        base: &[Seg],
        raw: RawElasticsearch,
        data_dir: &Path,
    ) -> Result<SinkConfig, ConfigError> {
        let RawElasticsearch {
            name,
            urls,
            index,
            api_key,
            pipeline,
            document_ids,
            manage_template,
            template_name,
            data_stream,
            ilm_policy,
            ..
        } = raw;
        let api_key = nonempty(api_key);
        let urls = self.urls(base, &urls)?;
        if let Some(why) = data_stream.as_deref().and_then(data_stream_name_problem) {
            return Err(self.err(&at(base, "data_stream"), why));
        }
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
        let dead_letter = Some(self.dead_letter(&name, raw.dead_letter_path, data_dir));
        let http = raw_http!(raw, urls, dead_letter, 5 * 1024 * 1024, 30);
        self.http_sink(base, name, http, |http| {
            SinkKind::Elasticsearch(ElasticsearchConfig {
                http,
                index,
                api_key,
                pipeline,
                document_ids: document_ids.unwrap_or(true),
                manage_template: manage_template.unwrap_or(data_stream.is_some()),
                template_name,
                data_stream,
                ilm_policy,
                captures: Vec::new(),
            })
        })
    }

    /// An HTTP sink: its batch and linger, and its shared settings with
    /// defaults filled in, `ca_file` resolved, `max_backoff_secs` checked
    /// (the URLs are checked earlier, where each sink's errors come in
    /// order), around the sink's own `kind`.
    fn http_sink(
        &self,
        base: &[Seg],
        name: String,
        raw: RawHttp,
        kind: impl FnOnce(HttpSinkConfig) -> SinkKind,
    ) -> Result<SinkConfig, ConfigError> {
        let batch_max_events = self.batch(base, raw.batch_max_events, 5_000)?;
        let http = HttpSinkConfig {
            urls: raw.urls,
            username: raw.username,
            password: raw.password,
            batch_max_bytes: raw.batch_max_bytes.unwrap_or(raw.default_batch_bytes),
            gzip: raw.gzip.unwrap_or(true),
            timeout: Duration::from_secs(raw.timeout_secs.unwrap_or(raw.default_timeout_secs)),
            dead_letter: raw.dead_letter,
            ca_file: raw.ca_file.map(|f| self.resolve(f)),
        };
        let retry = RetryPolicy::http(
            raw.max_retries,
            raw.max_retry_secs,
            self.max_backoff(base, raw.max_backoff_secs)?,
        );
        Ok(SinkConfig {
            name,
            batch_max_events,
            linger: Duration::from_millis(raw.linger_ms.unwrap_or(DEFAULT_HTTP_LINGER_MS)),
            kind: kind(http),
            retry,
        })
    }

    /// An HTTP sink's `max_backoff_secs`: at least 1 (no wait at all
    /// would hammer a server that asked for one), default
    /// [`DEFAULT_MAX_BACKOFF_SECS`].
    pub(super) fn max_backoff(
        &self,
        base: &[Seg],
        secs: Option<u64>,
    ) -> Result<Duration, ConfigError> {
        match secs.unwrap_or(DEFAULT_MAX_BACKOFF_SECS) {
            0 => Err(self.err(
                &at(base, "max_backoff_secs"),
                "must be at least 1 (seconds)",
            )),
            secs => Ok(Duration::from_secs(secs)),
        }
    }
}

/// Why the engines would refuse `name` as a data stream's name, if they
/// would (the index-name rules of Elasticsearch and OpenSearch), or why
/// sluice does: a date placeholder. A data stream rolls over by itself
/// (its backing indices, by the ILM/ISM policy), so a name per day would
/// only make a data stream per day, each a name the start-up check never
/// saw (issue #23: a plain index holding one of them took the writes).
pub(crate) fn data_stream_name_problem(name: &str) -> Option<String> {
    name_problem(name).map(|why| format!("{name:?}: {why}"))
}

fn name_problem(name: &str) -> Option<String> {
    const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];
    if name.contains('%') {
        return Some("date placeholders (%Y, %m, %d, %H) are for `index`, not `data_stream`: a data stream rolls over by itself (its backing indices), so name one stream (e.g. \"logs-app-default\")".into());
    }
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 255 {
        return Some("longer than 255 bytes, which the engines refuse".into());
    }
    if name.chars().any(char::is_uppercase) {
        return Some("data stream names must be lowercase".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| FORBIDDEN.contains(c) || c.is_control())
    {
        return Some(format!(
            "{c:?} is not allowed in a data stream name (none of \\ / * ? \" < > | , # : or spaces)"
        ));
    }
    if name.starts_with(['-', '_', '+']) || name == "." || name == ".." {
        return Some("a data stream name must not start with -, _ or + nor be . or ..".into());
    }
    if name.starts_with(".ds-") {
        return Some("names starting with .ds- are the engines' backing indices".into());
    }
    None
}
