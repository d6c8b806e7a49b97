//! Config builders: listeners on port 0, file sinks, InfluxDB and Elasticsearch sinks.

use crate::util::*;

/// The head of every test config: UDP + TCP listeners on port 0 (named
/// `udp` and `tcp`), admin on port 0, a 10 s shutdown.
pub(crate) const LISTENERS: &str = r#"
shutdown_timeout_secs = 10
[admin]
listen = "127.0.0.1:0"
[[listeners]]
name = "udp"
protocol = "udp"
listen = "127.0.0.1:0"
[[listeners]]
name = "tcp"
protocol = "tcp"
listen = "127.0.0.1:0"
"#;

/// Config with UDP + TCP listeners on port 0, admin on port 0, metrics and
/// events to files in the temp dir, plus `routes` (TOML).
pub(crate) fn config(extra_listener: &str, routes: &str) -> String {
    format!(
        r#"{LISTENERS}{extra_listener}
[[sinks]]
name = "metrics"
type = "file"
path = "metrics.lp"
[[sinks]]
name = "events"
type = "file"
path = "events.ndjson"
{routes}
"#
    )
}

pub(crate) const EVENTS_ROUTE: &str = r#"
[[routes]]
name = "events"
sink = "events"
document = {}
"#;

/// Status lines (`status seq=N`) as points in measurement "status".
pub(crate) const STATUS_ROUTE: &str = r#"
[[routes]]
name = "status"
sink = "influx"
final = true
pattern = 'status seq='
[routes.metric]
measurement = "status"
key_values = true
"#;

/// An InfluxDB sink `influx` at `influx` writing to `db`, then `routes`,
/// the rest to the `events` file.
pub(crate) fn influx_config(influx: &Influxd, db: &str, routes: &str) -> String {
    influx_config_at(&influx.url(), db, BATCH_100, routes)
}

/// Batches of at most 100 events, for `influx_config_at`'s `extra`.
pub(crate) const BATCH_100: &str = "batch_max_events = 100";

/// An InfluxDB sink `influx` at `url` writing to `db` (more sink settings
/// in `extra`), then `routes`, the rest to the `events` file.
pub(crate) fn influx_config_at(url: &str, db: &str, extra: &str, routes: &str) -> String {
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["{url}"]
database = "{db}"
linger_ms = 50
{extra}
{routes}
[default_route]
sink = "events"
document = {{}}
"#
        ),
    )
}

pub(crate) fn es_config(nodes: &[String], extra_sink: &str, routes: &str) -> String {
    let urls: Vec<String> = nodes.iter().map(|u| format!("\"{u}\"")).collect();
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "es"
type = "elasticsearch"
urls = [{}]
index = "syslog-%Y.%m.%d"
linger_ms = 50
timeout_secs = 5
{extra_sink}
{routes}
[default_route]
sink = "events"
document = {{}}
"#,
            urls.join(", ")
        ),
    )
}
