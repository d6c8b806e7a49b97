//! The real log4j appenders end to end: `examples/java/Log4j{1,2}Demo.java`
//! are compiled with `javac` against Debian's `liblog4j1.2-java` and
//! `liblog4j2-java` jars, configured from `examples/log4j.properties` and
//! `examples/log4j2.xml` (only the port and the variant's switches changed),
//! and run against the real `sluice` binary. The tests assert on what sluice
//! writes: one event per logged message with the stack trace joined, the
//! facility, severity and app, MDC values as structured data, and the status
//! line as a point.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::repo;
use crate::util::{Sluice, config, read_lines, wait_while};

pub(crate) const LOG4J1_JAR: &str = "/usr/share/java/log4j-1.2.jar";
pub(crate) const LOG4J2_JARS: &str = "/usr/share/java/log4j-api.jar:/usr/share/java/log4j-core.jar";

/// javac, java and the Debian log4j jars are there (skip, or fail under CI).
pub(crate) fn demos_available() -> bool {
    let hint = "install a JDK and liblog4j1.2-java, liblog4j2-java (.ci/run does)";
    let missing = crate::util::missing_command("javac", &["-version"], hint)
        .or_else(|| crate::util::missing_command("java", &["-version"], hint))
        .or_else(|| {
            LOG4J1_JAR
                .split(':')
                .chain(LOG4J2_JARS.split(':'))
                .find_map(|jar| crate::util::missing_file(Path::new(jar), hint))
        });
    crate::util::tool_available("the log4j end-to-end test", missing)
}

/// The demos, compiled once per test process into the target's temp dir.
fn classes() -> &'static Path {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("log4j-demo-classes-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        for (source, classpath) in [
            ("examples/java/Log4j1Demo.java", LOG4J1_JAR),
            ("examples/java/Log4j2Demo.java", LOG4J2_JARS),
        ] {
            let status = Command::new("javac")
                .args(["-d", out.to_str().unwrap(), "-cp", classpath])
                .arg(repo(source))
                .status()
                .unwrap_or_else(|e| panic!("javac (JDK; .ci/run installs it): {e}"));
            assert!(status.success(), "javac {source}");
        }
        out
    })
}

/// `examples/log4j.properties` pointed at `port`, with `header` and
/// `facilityPrinting` set as given.
fn log4j1_properties(port: u16, header: bool, facility_printing: bool) -> String {
    let example = std::fs::read_to_string(repo("examples/log4j.properties")).unwrap();
    let mut out = String::new();
    let mut seen = 0;
    for line in example.lines() {
        let line = match line.split_once('=') {
            Some(("log4j.appender.SYSLOG.syslogHost", _)) => {
                seen += 1;
                format!("log4j.appender.SYSLOG.syslogHost=127.0.0.1:{port}")
            }
            Some(("log4j.appender.SYSLOG.header", _)) => {
                seen += 1;
                format!("log4j.appender.SYSLOG.header={header}")
            }
            Some(("log4j.appender.SYSLOG.facilityPrinting", _)) => {
                seen += 1;
                format!("log4j.appender.SYSLOG.facilityPrinting={facility_printing}")
            }
            _ => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert_eq!(
        seen, 3,
        "examples/log4j.properties lost a key the test sets"
    );
    out
}

/// The active `<Syslog .../>` element of `examples/log4j2.xml`, pointed at
/// `port`, with `protocol`, `format` and `newLine` replaced as given.
fn log4j2_xml(port: u16, protocol: &str, format: &str, new_line: bool) -> String {
    let example = std::fs::read_to_string(repo("examples/log4j2.xml")).unwrap();
    let start = example.find("<Syslog ").expect("a <Syslog> element");
    let end = start + example[start..].find("/>").expect("<Syslog .../>") + 2;
    let mut element = example[start..end].to_owned();
    for (attr, value) in [
        ("port", port.to_string()),
        ("protocol", protocol.to_owned()),
        ("format", format.to_owned()),
        ("newLine", new_line.to_string()),
    ] {
        let at = element
            .find(&format!(" {attr}=\""))
            .unwrap_or_else(|| panic!("examples/log4j2.xml: <Syslog> has no {attr}"));
        let value_start = at + attr.len() + 3;
        let value_end = value_start + element[value_start..].find('"').unwrap();
        element.replace_range(value_start..value_end, &value);
    }
    format!("{}{element}{}", &example[..start], &example[end..])
}

/// Run a demo class with its configuration file written to a temp dir.
pub(crate) fn run_demo(
    class: &str,
    classpath: &str,
    config_property: &str,
    file: &str,
    text: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    let property = if config_property == "log4j.configuration" {
        format!("-D{config_property}=file:{}", path.display())
    } else {
        format!("-D{config_property}={}", path.display())
    };
    let out = Command::new("java")
        .arg(property)
        .args(["-cp", &format!("{}:{classpath}", classes().display())])
        .arg(class)
        .output()
        .unwrap_or_else(|e| panic!("java: {e}"));
    assert!(
        out.status.success(),
        "{class}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // log4j reports appender failures (e.g. a refused connection) on stderr
    // but still exits 0: a quiet stderr is part of "it was delivered".
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("Exception"),
        "{class} stderr: {stderr}"
    );
}

/// Metric route for the demos' status line, and every message as a document.
const ROUTES: &str = r#"
[[routes]]
name = "status"
sink = "metrics"
pattern = '(?:^|\s- )status '
[routes.metric]
measurement = "jvm_status"
key_values = true

[[routes]]
name = "events"
sink = "events"
document = {}
"#;

fn events(s: &Sluice, n: usize) -> Vec<serde_json::Value> {
    s.wait_lines("events.ndjson", n);
    // Give a wrongly split event time to show up as one line too many.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.lines_now("events.ndjson")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn by_message<'a>(
    events: &'a [serde_json::Value],
    prefix: &str,
) -> &'a serde_json::Value {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e["message"].as_str().unwrap().starts_with(prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one event starting {prefix:?} in {events:#?}"
    );
    found[0]
}

fn log4j1_listener(name: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "{name}"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
app_name = "svc"
strip_facility_prefix = true
"#
    )
}

/// log4j 1.2 over UDP, with and without its BSD header, facility printing
/// on: six logged messages are six events, the stack trace (with its
/// `Caused by:` chain and a suppressed exception) joined into the error.
fn log4j1_end_to_end(header: bool) {
    if !demos_available() {
        return;
    }
    let mut s = Sluice::start(&config(&log4j1_listener("log4j1"), ROUTES));
    let port = s.addr("log4j1").port();
    run_demo(
        "Log4j1Demo",
        LOG4J1_JAR,
        "log4j.configuration",
        "log4j.properties",
        &log4j1_properties(port, header, true),
    );
    let events = events(&s, 6);
    assert_eq!(events.len(), 6, "{events:#?}");
    for e in &events {
        assert_eq!(e["facility"], 16, "local0: {e}");
        assert_eq!(e["appname"], "svc", "{e}");
        assert_eq!(e["valid"], true, "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(!message.starts_with("local0:"), "prefix stripped: {e}");
    }
    let hello = by_message(
        &events,
        "INFO  [main] com.example.Svc - Hello from log4j 1.2",
    );
    assert_eq!(hello["severity"], 6);
    let error = by_message(
        &events,
        "ERROR [main] com.example.Svc - Order failed id=1001",
    );
    assert_eq!(error["severity"], 3);
    let trace = error["message"].as_str().unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines[1], "java.lang.IllegalStateException: boom", "{trace}");
    assert!(
        lines[2].trim_start().starts_with("at Log4j1Demo.fail("),
        "{trace}"
    );
    assert!(
        lines.contains(&"Caused by: java.io.IOException: disk gone"),
        "{trace}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start() == "Suppressed: java.lang.RuntimeException: cleanup failed"),
        "{trace}"
    );
    let long = by_message(
        &events,
        "INFO  [main] com.example.Svc - long message: word0",
    );
    assert!(
        long["message"].as_str().unwrap().ends_with(" word299"),
        "a message log4j split into several datagrams is joined: {long}"
    );
    by_message(
        &events,
        "INFO  [main] com.example.Svc - two lines\nsecond line",
    );
    by_message(
        &events,
        "INFO  [main] com.example.Svc - caf\u{e9} cr\u{e8}me",
    );
    let status = by_message(&events, "WARN  [main] com.example.Svc - status ");
    assert_eq!(status["severity"], 4);

    let points = read_lines(&s.path("metrics.lp"));
    assert_eq!(points.len(), 1, "{points:?}");
    let (series, rest) = points[0].split_once(' ').unwrap();
    assert!(series.starts_with("jvm_status,app=svc"), "{series}");
    let fields = rest.rsplit_once(' ').unwrap().0;
    assert_eq!(fields, "heap_used=1234,heap_max=4096,threads=17");
    assert!(s.stop().success());
}

#[test]
fn log4j_1_2_udp_with_header_arrives_one_event_per_message() {
    log4j1_end_to_end(true);
}

#[test]
fn log4j_1_2_udp_without_header_arrives_one_event_per_message() {
    log4j1_end_to_end(false);
}

/// The five messages Log4j2Demo logs, as log4j2 sends them. RFC 5424 carries
/// the MDC as structured data and (with `exceptionPattern`) the stack trace;
/// the BSD format carries neither.
fn assert_log4j2_events(events: &[serde_json::Value], rfc5424: bool) {
    assert_eq!(events.len(), 5, "{events:#?}");
    for e in events {
        assert_eq!(e["facility"], 16, "local0: {e}");
        assert_eq!(e["appname"], "orders", "{e}");
        assert_eq!(e["valid"], true, "{e}");
    }
    assert_eq!(by_message(events, "Hello from log4j2")["severity"], 6);
    let mdc = by_message(events, "Order created id=1001");
    let error = by_message(events, "Order failed id=1002");
    assert_eq!(error["severity"], 3);
    if rfc5424 {
        assert_eq!(
            mdc["structured_data"]["mdc@18060"],
            serde_json::json!({"requestId": "r-42", "user": "alice \"the admin\" [ops]\\x"}),
            "{mdc}"
        );
        let trace = error["message"].as_str().unwrap();
        let lines: Vec<&str> = trace.lines().collect();
        assert_eq!(lines[0], "Order failed id=1002", "{trace}");
        assert_eq!(lines[1], "java.lang.IllegalStateException: boom", "{trace}");
        assert!(
            lines[2].trim_start().starts_with("at Log4j2Demo.main("),
            "{trace}"
        );
        assert!(
            lines.contains(&"Caused by: java.io.IOException: disk gone"),
            "{trace}"
        );
    }
    by_message(events, "two lines\nsecond line");
    by_message(events, "status heap_used=1234");
}

fn assert_log4j2_point(s: &Sluice) {
    let points = read_lines(&s.path("metrics.lp"));
    assert_eq!(points.len(), 1, "{points:?}");
    let (series, rest) = points[0].split_once(' ').unwrap();
    assert!(
        series.starts_with("jvm_status,app=orders,host="),
        "{series}"
    );
    let fields = rest.rsplit_once(' ').unwrap().0;
    assert_eq!(fields, "heap_used=1234,heap_max=4096,threads=17");
}

/// log4j2 RFC 5424 over TCP, one message per line: the stack trace travels
/// with its newlines escaped (`newLineEscape`) and the listener turns them
/// back; MDC values arrive as structured data.
#[test]
fn log4j2_rfc5424_tcp_newline_framed_with_mdc_and_stack_trace() {
    if !demos_available() {
        return;
    }
    let listener = r#"
[[listeners]]
name = "log4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
newline_escape = "\\n"
"#;
    let mut s = Sluice::start(&config(listener, ROUTES));
    let xml = log4j2_xml(s.addr("log4j2").port(), "TCP", "RFC5424", true);
    run_demo(
        "Log4j2Demo",
        LOG4J2_JARS,
        "log4j2.configurationFile",
        "log4j2.xml",
        &xml,
    );
    let events = events(&s, 5);
    assert_log4j2_events(&events, true);
    assert_log4j2_point(&s);
    assert!(s.stop().success());
}

/// log4j2 RFC 5424 over TCP with `newLine="false"`: log4j2 has no octet
/// counting, so frames arrive back to back with no delimiter; a listener
/// with `framing = "log4j2_undelimited"` splits them at each header and the
/// stack trace's raw newlines stay in its message.
#[test]
fn log4j2_rfc5424_tcp_without_delimiters_with_stack_trace() {
    if !demos_available() {
        return;
    }
    let listener = r#"
[[listeners]]
name = "log4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "log4j2_undelimited"
"#;
    let mut s = Sluice::start(&config(listener, ROUTES));
    let xml = log4j2_xml(s.addr("log4j2").port(), "TCP", "RFC5424", false)
        .replace(r#"newLineEscape="\n""#, "");
    run_demo(
        "Log4j2Demo",
        LOG4J2_JARS,
        "log4j2.configurationFile",
        "log4j2.xml",
        &xml,
    );
    // The last frame has no end but the connection's close.
    wait_while!(10, || read_lines(&s.path("events.ndjson")).len() < 5);
    let events = events(&s, 5);
    assert_log4j2_events(&events, true);
    assert_log4j2_point(&s);
    assert!(s.stop().success());
}

/// log4j2's BSD format over UDP: no TAG, so a `sender = "log4j"` listener
/// takes the app from its config.
#[test]
fn log4j2_bsd_udp() {
    if !demos_available() {
        return;
    }
    let listener = r#"
[[listeners]]
name = "log4j2"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
app_name = "orders"
"#;
    let mut s = Sluice::start(&config(listener, ROUTES));
    // As the commented BSD variant in the example: the BSD layout sends no
    // stack trace, so there is nothing to escape.
    let xml = log4j2_xml(s.addr("log4j2").port(), "UDP", "BSD", false)
        .replace(r#"newLineEscape="\n""#, "");
    run_demo(
        "Log4j2Demo",
        LOG4J2_JARS,
        "log4j2.configurationFile",
        "log4j2.xml",
        &xml,
    );
    let events = events(&s, 5);
    assert_log4j2_events(&events, false);
    for e in &events {
        assert_eq!(e["protocol"], "rfc3164", "{e}");
    }
    assert_log4j2_point(&s);
    assert!(s.stop().success());
}
