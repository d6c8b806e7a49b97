//! `sluice check`: validate a config and print what it resolved to.

use std::process::ExitCode;

use crate::config::{Config, ListenerConfig, ListenerProtocol, OutputConfig, Sender, SinkKind};

/// `writeln!` into the report string (writing to a String cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

pub(super) fn check(config: Config) -> ExitCode {
    // Written at once, and a closed stdout (`sluice check | head`) is not an
    // error worth a panic.
    let mut out = String::new();
    // Build the router as `run` would: the patterns together can fail where
    // each alone compiled (e.g. a pattern set over the size limit).
    if let Err(e) = crate::router::Router::new(&config.routes) {
        eprintln!("error: {}: {e}", config.origin);
        return ExitCode::from(2);
    }
    // What `run` will write to: data_dir and the dead-letter files.
    if let Err(e) = config.check_writable() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    outln!(out, "{}: ok", config.origin);
    outln!(out, "timezone: {}", config.timezone);
    outln!(
        out,
        "shutdown_timeout_secs: {}",
        config.shutdown_timeout.as_secs()
    );
    match config.admin {
        Some(a) => outln!(out, "admin: http://{a} (/metrics, /health)"),
        None => outln!(out, "admin: disabled"),
    }
    describe_listeners(&mut out, &config);
    describe_sinks(&mut out, &config);
    describe_routes(&mut out, &config);
    {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(out.as_bytes());
        ExitCode::SUCCESS
    }
}

/// A listener's first `sluice check` line: where it reads and the
/// settings its protocol uses (a kafka listener: its consumer's, not the
/// socket settings it does not take).
fn listener_line(l: &ListenerConfig) -> String {
    let settings = match (l.protocol, &l.kafka) {
        (ListenerProtocol::Udp, _) => format!(
            "max_frame_bytes {}, receive_buffer_bytes {}, sockets {}, timezone {}",
            l.max_frame_bytes,
            l.receive_buffer_bytes
                .map_or_else(|| "kernel default".to_owned(), |b| b.to_string()),
            l.sockets,
            l.decode.timezone
        ),
        (ListenerProtocol::Kafka, Some(k)) => {
            return format!(
                "listener {}: kafka brokers {} {} (max_frame_bytes {}, max_in_flight {}, commit_interval_ms {}, session_timeout_ms {}, timezone {})",
                l.name,
                k.brokers.join(","),
                k.summary(),
                l.max_frame_bytes,
                k.max_in_flight,
                k.commit_interval.as_millis(),
                k.session_timeout.as_millis(),
                l.decode.timezone
            );
        }
        _ => format!(
            "max_frame_bytes {}, max_connections {}, max_connections_per_peer {}, idle_timeout_secs {}, frame_timeout_secs {}, framing {}, timezone {}",
            l.max_frame_bytes,
            l.max_connections,
            l.max_connections_per_peer
                .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
            l.idle_timeout.as_secs(),
            l.frame_timeout.as_secs(),
            l.framing.as_str(),
            l.decode.timezone
        ),
    };
    format!(
        "listener {}: {} {} ({settings})",
        l.name,
        crate::listener::protocol_name(l.protocol),
        l.listen,
    )
}

/// Each listener with the settings its protocol uses.
fn describe_listeners(out: &mut String, config: &Config) {
    for l in &config.listeners {
        outln!(out, "{}", listener_line(l));
        let d = &l.decode;
        let mut extras = vec![format!(
            "sender {}",
            match d.sender {
                Sender::Generic => "generic",
                Sender::Log4j => "log4j",
            }
        )];
        if let Some(app) = &d.app_name {
            extras.push(format!("app_name {app:?}"));
        }
        if d.strip_facility_prefix {
            extras.push("strip_facility_prefix".to_owned());
        }
        if let Some(e) = &d.newline_escape {
            extras.push(format!("newline_escape {e:?}"));
        }
        match &l.multiline {
            Some(m) => extras.push(format!(
                "multiline (window_ms {}, max_lines {}, max_bytes {})",
                m.window.as_millis(),
                m.max_lines,
                m.max_bytes
            )),
            None => extras.push("multiline off".to_owned()),
        }
        outln!(out, "  decode: {}", extras.join(", "));
        if let Some(k) = &l.kafka {
            if k.tls.is_some() || k.sasl.is_some() {
                let mut sec = Vec::new();
                if k.tls.is_some() {
                    sec.push("tls".to_owned());
                }
                if let Some(sasl) = &k.sasl {
                    sec.push(format!(
                        "sasl {} user {}",
                        sasl.mechanism.as_str(),
                        sasl.username
                    ));
                }
                outln!(out, "  kafka security: {}", sec.join(", "));
            }
        }
        if let Some(t) = &l.tls {
            outln!(
                out,
                "  tls: certificate {}, client certificates {}, handshake_timeout_secs {}",
                t.cert_file.display(),
                if t.client_auth {
                    "required"
                } else {
                    "not asked for"
                },
                t.handshake_timeout.as_secs()
            );
        }
    }
}

/// A sink's URLs, as configured, comma-separated.
fn url_list(urls: &[reqwest::Url]) -> String {
    let texts: Vec<&str> = urls.iter().map(crate::config::url_text).collect();
    texts.join(", ")
}

/// Each sink: type, where it writes, batching.
fn describe_sinks(out: &mut String, config: &Config) {
    for s in &config.sinks {
        let target = match &s.kind {
            SinkKind::File { path } => path.display().to_string(),
            SinkKind::Stdout => "stdout".to_owned(),
            SinkKind::Influxdb(i) => url_list(&i.http.urls),
            SinkKind::Elasticsearch(e) => url_list(&e.http.urls),
            SinkKind::Kafka(k) => format!(
                "{} topic {} payload {}",
                k.brokers.join(","),
                k.topic.source,
                k.payload.as_str()
            ),
        };
        outln!(
            out,
            "sink {}: {} {} (batch_max_events {}, linger_ms {})",
            s.name,
            s.kind.type_name(),
            target,
            s.batch_max_events,
            s.linger.as_millis()
        );
    }
}

/// Each route: conditions, output, sink and queue.
fn describe_routes(out: &mut String, config: &Config) {
    for r in &config.routes {
        let sink = config.sinks.get(r.sink).map_or("?", |s| s.name.as_str());
        let output = match &r.output {
            OutputConfig::Metric(m) => format!("metric {}", m.measurement),
            OutputConfig::Document(f) => format!("document {}", document_name(*f)),
            OutputConfig::Raw => "raw frames".to_owned(),
        };
        let mut conds = Vec::new();
        if r.is_default {
            conds.push("events no other route matched".to_owned());
        }
        if r.conditions.facilities.is_some() {
            conds.push("facility".to_owned());
        }
        if r.conditions.severities.is_some() {
            conds.push("severity".to_owned());
        }
        for (name, v) in [
            ("hostname", &r.conditions.hostnames),
            ("appname", &r.conditions.appnames),
            ("msgid", &r.conditions.msgids),
        ] {
            if let Some(v) = v {
                conds.push(format!("{name} in [{}]", v.join(", ")));
            }
        }
        if let Some(p) = &r.pattern_source {
            conds.push(format!("pattern {p:?}"));
        }
        if conds.is_empty() {
            conds.push("every event".to_owned());
        }
        outln!(
            out,
            "route {}{}: {} → {output} → sink {sink} (queue max_events {}, when_full {}{})",
            r.name,
            if r.is_final { " (final)" } else { "" },
            conds.join(", "),
            r.queue.max_events,
            r.queue.when_full.as_str(),
            if r.queue.spill.as_ref().is_some_and(|s| s.durable) {
                ", durable"
            } else {
                ""
            }
        );
    }
}

/// A document format as the config spells it.
fn document_name(f: crate::config::DocumentFormat) -> &'static str {
    match f {
        crate::config::DocumentFormat::Canonical => "canonical",
        crate::config::DocumentFormat::Ecs { original: false } => "ecs",
        crate::config::DocumentFormat::Ecs { original: true } => "ecs with event.original",
        crate::config::DocumentFormat::Flume { .. } => "flume",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> String {
        let config = Config::from_toml(text, "t.toml").unwrap();
        let mut out = String::new();
        describe_listeners(&mut out, &config);
        describe_routes(&mut out, &config);
        out
    }

    /// A kafka listener's line names what it consumes (brokers, topics,
    /// group) and its consumer settings, none of the socket settings it
    /// does not take; a durable route says so.
    #[test]
    fn a_kafka_listener_and_a_durable_route_are_summed_up_as_configured() {
        let out = summary(
            "[[listeners]]\nname = \"from_kafka\"\nprotocol = \"kafka\"\nbrokers = [\"k1:9092\", \"k2:9092\"]\ntopics = [\"syslog.raw\", \"^syslog\\\\..*\"]\ngroup_id = \"indexers\"\n[listeners.sasl]\nusername = \"u\"\npassword = \"p\"\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n[[routes]]\nname = \"edge\"\nsink = \"f\"\ndocument = {}\nqueue = { durable = true, max_events = 100 }\n",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "listener from_kafka: kafka brokers k1:9092,k2:9092 topics syslog.raw,^syslog\\..* group indexers (max_frame_bytes 65536, max_in_flight 10000, commit_interval_ms 1000, session_timeout_ms 45000, timezone UTC)"
        );
        assert_eq!(lines[2], "  kafka security: sasl SCRAM-SHA-512 user u");
        assert_eq!(
            lines[3],
            "route edge: every event → document canonical → sink f (queue max_events 100, when_full drop_newest, durable)"
        );
        assert!(!out.contains("max_connections"), "{out}");
    }
}
