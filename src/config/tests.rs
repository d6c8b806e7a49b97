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

const BASE: &str = concat!(
    "\n",
    test_udp_listener!(),
    r#"
[[sinks]]
name = "f"
type = "file"
path = "x"
"#
);

#[test]
fn max_backoff_secs_defaults_to_30_and_is_at_least_1() {
    let sink = |extra: &str| {
        format!(
            "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\nindex = \"i\"\n{extra}[[routes]]\nname = \"r\"\nsink = \"es\"\ndocument = {{}}\n"
        )
    };
    let backoff = |c: &Config| c.sinks[0].retry.max_wait;
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
    assert_eq!(ok.listeners[0].listen_backlog, 1024);
    let ok = Config::from_toml(
        &format!(
            "{}{BASE}{route}",
            tcp("frame_timeout_secs = 2\nmax_connections_per_peer = 8\nlisten_backlog = 4096")
        ),
        "t.toml",
    )
    .unwrap();
    assert_eq!(ok.listeners[0].listen_backlog, 4096);
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
    let e = err(&format!(
        "[[listeners]]\nname = \"v\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\nlisten_backlog = 64\n{BASE}"
    ));
    assert!(
        e.contains("listeners[0].listen_backlog") && e.contains("only TCP and TLS"),
        "{e}"
    );
    let e = err(&format!("{}{BASE}", tcp("listen_backlog = 0")));
    assert!(
        e.starts_with("t.toml:6:") && e.contains("listeners[0].listen_backlog"),
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
fn empty_secrets_mean_no_credentials() {
    let c = Config::from_toml(
        &format!("{}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://127.0.0.1:9\"]\nindex = \"x\"\napi_key = \"\"\nusername = \"\"\n", listener("")),
        "t",
    )
    .unwrap();
    let SinkKind::Elasticsearch(es) = &c.sinks[1].kind else {
        panic!("not elasticsearch")
    };
    assert_eq!((&es.api_key, &es.http.username), (&None, &None));
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
    assert_eq!(m.max_lines, DEFAULT_MAX_LINES);
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
    assert!(r.pattern.as_ref().unwrap().as_str().contains("(?P<used>"));
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
    assert!(
        e.contains(
            "grok.patterns.A: pattern A: grok patterns refer to each other in a cycle: A -> B -> A"
        ),
        "{e}"
    );
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
            OutputConfig::Metric(_) | OutputConfig::Raw => None,
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
        i.http.dead_letter.as_deref(),
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

/// Issue #21: the default dead-letter file of an HTTP sink lives under
/// `data_dir`, like the spill logs, not under a fixed `sluice-data/`.
#[test]
fn default_dead_letter_path_is_under_data_dir() {
    let text = format!(
        "data_dir = \"/var/lib/sluice\"\n{BASE}\n[[sinks]]\nname = \"i\"\ntype = \"influxdb\"\nurls = [\"http://i:8086\"]\ndatabase = \"d\"\n[[sinks]]\nname = \"e\"\ntype = \"elasticsearch\"\nurls = [\"http://e:9200\"]\nindex = \"logs\"\n[[sinks]]\nname = \"kept\"\ntype = \"influxdb\"\nurls = [\"http://i:8086\"]\ndatabase = \"d\"\ndead_letter_path = \"/srv/dl.ndjson\"\n{DEFAULT_ROUTE}"
    );
    let c = Config::from_toml(&text, "/etc/sluice/sluice.toml").unwrap();
    let dead_letter = |i: usize| match &c.sinks[i].kind {
        SinkKind::Influxdb(s) => s.http.dead_letter.clone(),
        SinkKind::Elasticsearch(s) => s.http.dead_letter.clone(),
        _ => panic!("an HTTP sink expected"),
    };
    assert_eq!(
        dead_letter(1).as_deref(),
        Some(Path::new("/var/lib/sluice/dead-letter/i.ndjson"))
    );
    assert_eq!(
        dead_letter(2).as_deref(),
        Some(Path::new("/var/lib/sluice/dead-letter/e.ndjson"))
    );
    // A configured path is kept as written.
    assert_eq!(dead_letter(3).as_deref(), Some(Path::new("/srv/dl.ndjson")));
}

/// Issue #21: a sink URL is parsed when the config is validated, so a URL
/// the HTTP client would refuse at the first send is a config error naming
/// its line and key.
#[test]
fn sink_urls_are_parsed_at_validation() {
    let sink = |url: &str| {
        format!(
            "{BASE}\n[[sinks]]\nname = \"i\"\ntype = \"influxdb\"\nurls = [\"{url}\"]\ndatabase = \"d\"\n{DEFAULT_ROUTE}"
        )
    };
    let config = Config::from_toml(&sink("http://influx.example:8086/base"), "t.toml").unwrap();
    // Kept parsed: the sink builds its request URLs from it.
    match &config.sinks[1].kind {
        SinkKind::Influxdb(i) => {
            assert_eq!(i.http.urls.len(), 1);
            assert_eq!(i.http.urls[0].host_str(), Some("influx.example"));
            assert_eq!(i.http.urls[0].path(), "/base");
        }
        other => panic!("expected an influxdb sink, got {other:?}"),
    }
    for bad in ["http://exa mple:8086", "http://host:99999", "https://"] {
        let e = err(&sink(bad));
        assert!(
            e.starts_with("t.toml:")
                && e.contains(": sinks[1].urls: ")
                && e.contains("is not a valid URL"),
            "{bad}: {e}"
        );
    }
    // The scheme check still comes first, with its own message.
    assert!(err(&sink("ftp://x")).contains("is not an http:// or https:// URL"));
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

/// Issue #23 (defects 1 and 6): a `data_stream` with a date placeholder
/// is refused (it made a plain index of the day's name take the writes,
/// unchecked), so is a name the engines refuse, and the error names
/// `data_stream`, not `index`.
#[test]
fn a_data_stream_name_is_checked_and_errors_name_data_stream() {
    let es = |ds: &str| {
        format!(
            "{BASE}\n[[sinks]]\nname = \"es\"\ntype = \"elasticsearch\"\nurls = [\"http://es:9200\"]\ndata_stream = \"{ds}\"\n{DEFAULT_ROUTE}"
        )
    };
    let e = err(&es("logs-att19-%Y.%m.%d"));
    assert!(
        e.starts_with("t.toml:16:1: sinks[1].data_stream: ") && e.contains("rolls over"),
        "{e}"
    );
    for bad in [
        "logs att", "Logs-app", "logs-a,b", "logs/a", "-logs", "logs:a", ".ds-x",
    ] {
        let e = err(&es(bad));
        assert!(
            e.starts_with("t.toml:16:1: sinks[1].data_stream: "),
            "{bad:?}: {e}"
        );
    }
    Config::from_toml(&es("logs-sluice-default"), "t").unwrap();
    Config::from_toml(&es(".logs-internal"), "t").unwrap();
}

/// A field named only by backslashes has no key left once escaped (the
/// trailing ones are dropped): InfluxDB 1.6 refuses such a point whole
/// ("missing field key"), so the config is refused, naming the field.
#[test]
fn a_field_name_of_only_backslashes_is_refused() {
    // The name as TOML writes it (a literal string), and whether refused.
    for (name, refused) in [("\\", true), ("\\\\", true), ("a\\", false)] {
        let text = format!(
            "{BASE}\n[[routes]]\nname = \"r\"\nsink = \"f\"\npattern = '(?P<v>\\d+)'\n[routes.metric]\nmeasurement = \"m\"\nfields = {{ '{name}' = {{ from = \"v\", type = \"int\" }} }}\n{DEFAULT_ROUTE}"
        );
        match Config::from_toml(&text, "t.toml") {
            Err(e) => {
                let e = e.to_string();
                assert!(refused, "{name}: {e}");
                assert!(
                    e.contains("routes[0].metric.fields.") && e.contains("no field key"),
                    "{e}"
                );
            }
            Ok(_) => assert!(!refused, "{name} accepted"),
        }
    }
}
