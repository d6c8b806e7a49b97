//! Issue #26, "a Flume migrator's first day": the InfluxDB database made at
//! start-up (and a non-admin user that recovers), the example log4j files
//! against the shipped configs, `sluice health`, and what `check` and
//! `--help` print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{BIN, Influxd, STATUS_ROUTE, Sluice, config, http, tcp_send, url_encode};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Poll `f` every 50 ms until it returns `Some`, for at most `secs`;
/// panics naming `what` was awaited.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "waited {secs} s for {what}, in vain"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An influxd with auth on and an admin `admin`/`adm1n`; returns it and a
/// function running a statement as that admin.
fn influxd_with_auth() -> Influxd {
    let influx = Influxd::start_with("  auth-enabled = true");
    let (status, body) = http(
        influx.addr,
        "POST",
        &format!(
            "/query?q={}",
            url_encode("CREATE USER admin WITH PASSWORD 'adm1n' WITH ALL PRIVILEGES")
        ),
        b"",
    );
    assert_eq!(status, 200, "{body}");
    influx
}

fn as_admin(addr: SocketAddr, q: &str) -> String {
    let (status, body) = http(
        addr,
        "POST",
        &format!("/query?u=admin&p=adm1n&q={}", url_encode(q)),
        b"",
    );
    assert_eq!(status, 200, "{q}: {body}");
    body
}

fn influx_sink(influx: &Influxd, extra: &str) -> String {
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["{}"]
database = "metrics"
create_database = true
linger_ms = 50
{extra}
{STATUS_ROUTE}
[default_route]
sink = "events"
document = {{}}
"#,
            influx.url()
        ),
    )
}

/// Issue #26 item 2: a non-admin user may not create the database. Sluice
/// tries at start-up (not at the first write), shows why on /health, and
/// once an admin created the database and granted access it writes —
/// instead of a 403 every 10 s forever.
#[test]
fn influxdb_non_admin_user_proceeds_once_an_admin_made_the_database() {
    let influx = influxd_with_auth();
    as_admin(influx.addr, "CREATE USER sluice WITH PASSWORD 'pw'");
    let mut s = Sluice::start(&influx_sink(
        &influx,
        "username = \"sluice\"\npassword = \"pw\"",
    ));
    // Nothing sent yet: the start-up attempt alone makes /health degraded.
    let health = wait_for(10, "/health to say degraded at start-up", || {
        let h = s.health();
        (h["status"] == "degraded").then_some(h)
    });
    eprintln!("health before the admin acted: {health}");
    let error = health["sinks"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("metrics") && error.contains("403"),
        "the reason names the database and the refusal: {health}"
    );
    as_admin(influx.addr, "CREATE DATABASE metrics");
    as_admin(influx.addr, "GRANT WRITE ON metrics TO sluice");
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - status seq=1\n",
    );
    let rows = wait_for(30, "the point in metrics.autogen.status", || {
        let body = as_admin(influx.addr, "SELECT * FROM metrics.autogen.status");
        body.contains("\"values\"").then_some(body)
    });
    assert!(
        rows.contains("[\"2026-11-24T10:00:00Z\",\"app\",\"h\",1]"),
        "{rows}"
    );
    wait_for(10, "/health ok after the write", || {
        (s.health()["status"] == "ok").then_some(())
    });
    let lost = s.metric(
        "sluice_sink_failed_records_total{sink=\"influx\",route=\"status\",reason=\"gave_up\"}",
    );
    eprintln!("sent 1, stored 1, gave up {lost}");
    assert_eq!(lost, 0);
    assert!(s.stop().success());
}

/// Issue #26 item 2: the database is created at start-up, and a retention
/// policy Sluice creates with it is the database's default, so a plain
/// `SELECT * FROM status` finds the points.
#[test]
fn influxdb_database_is_created_at_start_up_with_its_policy_as_default() {
    let influx = Influxd::start();
    let mut s = Sluice::start(&influx_sink(
        &influx,
        "retention_policy = \"one_year\"\nretention_duration = \"52w\"",
    ));
    // Nothing sent: the database is there all the same.
    wait_for(10, "database metrics created at start-up", || {
        let dbs = influx.query("", "SHOW DATABASES");
        dbs["results"][0]["series"][0]["values"]
            .as_array()
            .is_some_and(|v| v.contains(&serde_json::json!(["metrics"])))
            .then_some(())
    });
    let rps = influx.query("metrics", "SHOW RETENTION POLICIES ON metrics");
    let one_year = rps["results"][0]["series"][0]["values"]
        .as_array()
        .and_then(|v| v.iter().find(|r| r[0] == "one_year").cloned())
        .unwrap_or_else(|| panic!("no one_year policy: {rps}"));
    eprintln!("one_year: {one_year}");
    assert_eq!(one_year[1], "8736h0m0s");
    assert_eq!(one_year[4], true, "the default policy: {rps}");
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - status seq=7\n",
    );
    let rows = influx.rows("metrics", "status", 1);
    assert_eq!(rows.len(), 1, "SELECT * FROM status (default policy)");
    assert_eq!(rows[0]["seq"], 7.0);
    assert_eq!(s.health()["status"], "ok");
    assert!(s.stop().success());
}

/// Every config the project ships: each must have the listeners the
/// example log4j files send to.
const SHIPPED_CONFIGS: [&str; 5] = [
    "config/sluice.toml",
    "config/container.toml",
    "config/grok-routes.toml",
    "config/influxdb-elasticsearch.toml",
    "examples/compose/sluice.toml",
];

/// `config` runnable here: listeners and admin on loopback port 0, sinks
/// at a closed port, files below the temp dir, grok files from the repo,
/// and one more non-final route first that writes every event to
/// `captured.ndjson`. Returns the text and (protocol, port) → listener name.
fn runnable(config: &str) -> (String, Vec<(String, u16, String)>) {
    let text = std::fs::read_to_string(repo(config)).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let listeners = table["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let port = l["listen"].as_str().unwrap().rsplit(':').next().unwrap();
            (
                l["protocol"].as_str().unwrap().to_owned(),
                port.parse().unwrap(),
                l["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut out = String::new();
    let mut capture_added = false;
    for line in text.lines() {
        let line = if line.starts_with("listen = ") {
            "listen = \"127.0.0.1:0\"".to_owned()
        } else if line.starts_with("urls = ") {
            "urls = [\"http://127.0.0.1:9\"]".to_owned()
        } else if line.starts_with("pattern_files = ") {
            format!(
                "pattern_files = [\"{}\"]",
                repo("config/patterns/jvm.grok").display()
            )
        } else {
            line.replace("\"/var/lib/sluice/", "\"")
                .replace("\"/var/lib/sluice\"", "\"data\"")
        };
        if line.starts_with("[[routes]]") && !capture_added {
            out.push_str("[[sinks]]\nname = \"example_capture\"\ntype = \"file\"\npath = \"captured.ndjson\"\n\n[[routes]]\nname = \"example_capture\"\nsink = \"example_capture\"\ndocument = {}\n\n");
            capture_added = true;
        }
        out.push_str(&line);
        out.push('\n');
    }
    assert!(capture_added, "{config}: no [[routes]]");
    (out, listeners)
}

fn start_shipped(config: &str) -> (Sluice, Vec<(String, u16, String)>) {
    let (text, listeners) = runnable(config);
    let s = Sluice::start_with_env(
        &text,
        &[("INFLUX_PASSWORD", "unused"), ("ES_API_KEY", "unused")],
    );
    (s, listeners)
}

/// The events captured, once `n` are there (and a moment for a wrongly
/// split one to show up as one too many).
fn captured(s: &Sluice, n: usize, what: &str) -> Vec<serde_json::Value> {
    wait_for(15, &format!("{n} events from {what}"), || {
        (super::read_lines(&s.path("captured.ndjson")).len() >= n).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    super::read_lines(&s.path("captured.ndjson"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The listener of `listeners` on `port` with `protocol`, as shipped.
fn listener_for(
    config: &str,
    listeners: &[(String, u16, String)],
    protocol: &str,
    port: u16,
) -> String {
    listeners
        .iter()
        .find(|(p, l, _)| p == protocol && *l == port)
        .map(|(_, _, name)| name.clone())
        .unwrap_or_else(|| {
            panic!("{config}: no {protocol} listener on port {port} for the example: {listeners:?}")
        })
}

/// Issue #26 item 3: `examples/log4j.properties` as shipped (only the port
/// changed to the ephemeral one the listener got) against every shipped
/// config: it targets a log4j listener there, and one `log.error(msg, e)`
/// is one event with its stack trace, not one event per line.
#[test]
fn example_log4j_properties_reaches_a_log4j_listener_in_every_shipped_config() {
    let example = std::fs::read_to_string(repo("examples/log4j.properties")).unwrap();
    let host = example
        .lines()
        .find_map(|l| l.strip_prefix("log4j.appender.SYSLOG.syslogHost="))
        .unwrap();
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    for config in SHIPPED_CONFIGS {
        let (s, listeners) = start_shipped(config);
        let name = listener_for(config, &listeners, "udp", port);
        let bound = s.addr(&name).port();
        let text = example.replace(
            &format!("syslogHost={host}"),
            &format!("syslogHost=127.0.0.1:{bound}"),
        );
        super::log4j_e2e::run_demo(
            "Log4j1Demo",
            super::log4j_e2e::LOG4J1_JAR,
            "log4j.configuration",
            "log4j.properties",
            &text,
        );
        let events = captured(&s, 6, &format!("log4j 1.2 into {config}"));
        eprintln!(
            "{config}: listener {name}: {} events from 6 logged messages",
            events.len()
        );
        assert_eq!(events.len(), 6, "{config}: {events:#?}");
        let error = super::log4j_e2e::by_message(
            &events,
            "ERROR [main] com.example.Svc - Order failed id=1001",
        );
        let trace = error["message"].as_str().unwrap();
        assert!(
            trace.contains("\njava.lang.IllegalStateException: boom\n")
                && trace.contains("\nCaused by: java.io.IOException: disk gone"),
            "{config}: {trace}"
        );
    }
}

/// Issue #26 item 3: `examples/log4j2.xml` as shipped (only the port
/// changed) against every shipped config: the stack trace arrives with
/// real newlines (the listener undoes `newLineEscape`), the MDC as
/// structured data.
#[test]
fn example_log4j2_xml_reaches_a_matching_listener_in_every_shipped_config() {
    let example = std::fs::read_to_string(repo("examples/log4j2.xml")).unwrap();
    let start = example.find("<Syslog ").unwrap();
    let element = &example[start..start + example[start..].find("/>").unwrap()];
    let attr = |name: &str| {
        let at = element.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        element[at..at + element[at..].find('"').unwrap()].to_owned()
    };
    let port: u16 = attr("port").parse().unwrap();
    let protocol = attr("protocol").to_ascii_lowercase();
    for config in SHIPPED_CONFIGS {
        let (s, listeners) = start_shipped(config);
        let name = listener_for(config, &listeners, &protocol, port);
        let bound = s.addr(&name).port();
        let text = example.replacen(
            &format!(" port=\"{port}\""),
            &format!(" port=\"{bound}\""),
            1,
        );
        super::log4j_e2e::run_demo(
            "Log4j2Demo",
            super::log4j_e2e::LOG4J2_JARS,
            "log4j2.configurationFile",
            "log4j2.xml",
            &text,
        );
        let events = captured(&s, 5, &format!("log4j2 into {config}"));
        eprintln!(
            "{config}: listener {name}: {} events from 5 logged messages",
            events.len()
        );
        assert_eq!(events.len(), 5, "{config}: {events:#?}");
        let error = super::log4j_e2e::by_message(&events, "Order failed id=1002");
        let trace = error["message"].as_str().unwrap();
        assert!(
            trace.contains("\njava.lang.IllegalStateException: boom\n")
                && trace.contains("\nCaused by: java.io.IOException: disk gone"),
            "{config}: newlines restored: {trace}"
        );
        let mdc = super::log4j_e2e::by_message(&events, "Order created id=1001");
        assert_eq!(
            mdc["structured_data"]["mdc@18060"]["requestId"], "r-42",
            "{config}: {mdc}"
        );
    }
}
