//! Issue #26, "a Flume migrator's first day": the InfluxDB database made at
//! start-up (and a non-admin user that recovers), the example log4j files
//! against the shipped configs, `sluice health`, and what `check` and
//! `--help` print.

use std::process::Command;
use std::time::Duration;

use crate::util::repo;
use crate::util::{BIN, Influxd, STATUS_ROUTE, Sluice, config, tcp_send, wait_for};

fn influx_sink(influx: &Influxd, extra: &str) -> String {
    crate::util::influx_config_at(
        &influx.url(),
        "metrics",
        &format!("create_database = true\n{extra}"),
        STATUS_ROUTE,
    )
}

/// Issue #26 item 2: a non-admin user may not create the database. Sluice
/// tries at start-up (not at the first write), shows why on /health, and
/// once an admin created the database and granted access it writes —
/// instead of a 403 every 10 s forever.
#[test]
fn influxdb_non_admin_user_proceeds_once_an_admin_made_the_database() {
    if !crate::util::influxd_available() {
        return;
    }
    let influx = Influxd::start_with_admin();
    influx.as_admin("CREATE USER sluice WITH PASSWORD 'pw'");
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
    influx.as_admin("CREATE DATABASE metrics");
    influx.as_admin("GRANT WRITE ON metrics TO sluice");
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - status seq=1\n",
    );
    let rows = wait_for(30, "the point in metrics.autogen.status", || {
        let body = influx.as_admin("SELECT * FROM metrics.autogen.status");
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
    if !crate::util::influxd_available() {
        return;
    }
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

/// Issue #26 item 10: `--help` says TLS is a way in, and `-c` says what it
/// is, on every subcommand that takes it.
#[test]
fn help_mentions_tls_and_explains_dash_c() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    eprintln!("{top}");
    assert!(top.contains("TLS"), "--help: {top}");
    for sub in ["run", "check", "parse", "health"] {
        let text = help(&[sub, "--help"]);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("-c, --config"))
            .unwrap_or_else(|| panic!("{sub} --help has no -c: {text}"));
        // Short help: on the same line; long help: on the next.
        let rest = lines[at]["-c, --config".len()..].trim();
        let same_line = match rest.strip_prefix('<') {
            Some(r) => r.split_once('>').map_or("", |(_, h)| h.trim()),
            None => rest,
        };
        let described = if same_line.is_empty() {
            lines
                .get(at + 1)
                .copied()
                .filter(|l| !l.starts_with('-'))
                .unwrap_or("")
        } else {
            same_line
        };
        assert!(
            described.contains("config"),
            "{sub}: -c without help text: {:?}",
            &lines[at..(at + 2).min(lines.len())]
        );
    }
}

/// Issue #26 item 10: `check` prints Display forms (no `Some("…")`,
/// `Auto`, `ecs { original: false }`) and no TCP-only settings for a UDP
/// listener.
#[test]
fn check_prints_config_words_and_only_what_a_listener_uses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        r#"
[[listeners]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:0"
[[listeners]]
name = "t"
protocol = "tcp"
listen = "127.0.0.1:0"
[[sinks]]
name = "es"
type = "elasticsearch"
urls = ["http://127.0.0.1:9"]
index = "syslog-%Y.%m.%d"
[[routes]]
name = "sshd"
sink = "es"
appname = ["sshd"]
document = {}
[default_route]
sink = "es"
document = { format = "flume" }
"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    for debug in ["Some(", "Auto", "{ original", "Ecs", "Flume", "[\""] {
        assert!(!text.contains(debug), "{debug:?} in check output:\n{text}");
    }
    let udp = text.lines().find(|l| l.starts_with("listener u:")).unwrap();
    for tcp_only in ["max_connections", "idle_timeout_secs", "framing"] {
        assert!(!udp.contains(tcp_only), "{tcp_only} for UDP: {udp}");
    }
    let tcp = text.lines().find(|l| l.starts_with("listener t:")).unwrap();
    assert!(tcp.contains("framing auto"), "{tcp}");
    assert!(text.contains("appname in [sshd]"), "{text}");
    assert!(text.contains("→ document ecs →"), "{text}");
    assert!(text.contains("→ document flume →"), "{text}");
}

/// Issue #26 item 8: `sluice health -c FILE` asks the admin address of
/// that config: exit 0 while the service answers, 1 once it is gone.
#[test]
fn health_subcommand_reads_the_admin_address_from_the_config() {
    let mut s = Sluice::start(&config("", crate::util::EVENTS_ROUTE));
    // The config as run, with the admin port it got (it asked for port 0).
    let admin = s.ready["admin"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(s.path("sluice.toml"))
        .unwrap()
        .replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{admin}\""),
            1,
        );
    let conf = s.path("as-run.toml");
    std::fs::write(&conf, text).unwrap();
    let health = || {
        Command::new(BIN)
            .args(["health", "-c", conf.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let up = health();
    let body = String::from_utf8_lossy(&up.stdout).into_owned();
    eprintln!("health while up: {:?} {body}", up.status);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    assert!(s.stop().success());
    let down = health();
    eprintln!(
        "health once stopped: {:?} {}",
        down.status,
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(down.status.code(), Some(1));
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
        (crate::util::read_lines(&s.path("captured.ndjson")).len() >= n).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    crate::util::read_lines(&s.path("captured.ndjson"))
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
    if !super::log4j_e2e::demos_available() {
        return;
    }
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
    if !super::log4j_e2e::demos_available() {
        return;
    }
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

/// Issue #26 item 8: the Docker build context leaves out build output,
/// data and history, and keeps what the Dockerfile copies.
#[test]
fn dockerignore_keeps_target_and_data_out_of_the_build_context() {
    let text = std::fs::read_to_string(repo(".dockerignore")).expect(".dockerignore");
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for out in ["target/", "sluice-data/", ".git/"] {
        assert!(rules.contains(&out), "{out} not ignored: {rules:?}");
    }
    for kept in [
        "src",
        "config",
        "Cargo.toml",
        "Cargo.lock",
        "benches",
        "tests",
    ] {
        assert!(
            !rules
                .iter()
                .any(|r| r.trim_end_matches('/') == kept || *r == "*"),
            "{kept} is needed by the Dockerfile: {rules:?}"
        );
    }
}
