use super::document::push_ip;
use super::ecs::{HEADER_SETS, HeaderCache, header_hash, push_ecs_header, write_ecs_header};
use super::*;
use crate::decode::{DecodeOptions, decode};
use bytes::Bytes;
use regex::Regex;

fn ev(s: &str) -> Event {
    decode(
        Bytes::copy_from_slice(s.as_bytes()),
        None,
        7,
        &DecodeOptions::default(),
    )
}

/// One route from TOML (`pattern` and a `[routes.metric]` body), through
/// config validation and grok expansion, as the service builds it.
fn route(pattern: &str, metric: &str) -> (OutputConfig, Option<Regex>) {
    let text = format!(
        "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n[[routes]]\nname = \"r\"\nsink = \"f\"\n{}[routes.metric]\n{metric}\n[default_route]\nsink = \"f\"\ndocument = {{}}\n",
        if pattern.is_empty() {
            String::new()
        } else {
            format!("pattern = '{pattern}'\n")
        }
    );
    let c = crate::config::Config::from_toml(&text, "t").unwrap_or_else(|e| panic!("{e}"));
    let r = &c.routes[0];
    (r.output.clone(), r.pattern.clone())
}

/// The line a route writes for `frame`, and its conversion errors.
pub(super) fn point(
    pattern: &str,
    metric: &str,
    frame: &str,
) -> (Option<String>, Vec<ConversionError>) {
    let (output, re) = route(pattern, metric);
    let e = ev(frame);
    let caps = re
        .as_ref()
        .and_then(|re| re.captures(e.message()))
        .map(Captures::from);
    if re.is_some() {
        assert!(caps.is_some(), "pattern does not match {frame:?}");
    }
    let mut errors = Vec::new();
    let r = encode(
        String::new(),
        &output,
        "r",
        &[],
        &e,
        caps.as_ref(),
        &mut errors,
    );
    // A reader's path: the point appended to a slab that holds other
    // records (one opening with '#') gives the same text and errors, and
    // leaves the slab as it was when no point is emitted.
    if let OutputConfig::Metric(m) = &output {
        let before = "#earlier record\n";
        let mut slab = String::from(before);
        let mut slab_errors = Vec::new();
        let time = record_time(&e);
        let emitted = push_point(&mut slab, m, &e, caps.as_ref(), time, &mut slab_errors);
        let text = r.as_ref().map(|r| r.payload.as_str());
        assert_eq!(emitted.then(|| &slab[before.len()..]), text, "{frame}");
        assert!(slab.starts_with(before) && (emitted || slab == before));
        assert_eq!(slab_errors, errors, "{frame}");
    }
    (r.map(|r| r.payload.to_string()), errors)
}

#[test]
fn typed_fields_sorted_tags_and_escaping() {
    let (line, errors) = point(
        r"pool=(?P<pool>old gen) used=(?P<used>\d+) ratio=(?P<ratio>\S+) ok=(?P<ok>\S+)",
        "measurement = \"my meas,x\"\ntags = [\"pool\"]\nfields = { used = \"int\", ratio = \"float\", ok = \"bool\", \"p=s\" = { from = \"pool\", type = \"string\" } }",
        "<14>1 2026-01-01T00:00:00Z web\\ app - - - pool=old gen used=12 ratio=0.5 ok=true",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        line.unwrap(),
        // host "web\\" loses its trailing backslash (see push_escaped).
        "my\\ meas\\,x,app=app,host=web,pool=old\\ gen ok=true,p\\=s=\"old gen\",ratio=0.5,used=12i 1767225600000000000"
    );
}

#[test]
fn mdc_structured_data_feeds_tags_and_fields() {
    let (line, errors) = point(
        "",
        "measurement = \"orders\"\ntags = [\"sd.mdc@18060.user\", \"sd.mdc@18060.absent\", \"sd.other@1.user\"]\nfields = { latency = { from = \"sd.mdc@18060.ms\", type = \"int\" } }",
        r#"<166>1 2026-11-24T11:34:54.606Z vm orders 1 - [mdc@18060 requestId="r-42" user="alice \"a\"" ms="17"] Order created"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        line.unwrap(),
        "orders,app=orders,host=vm,user=alice\\ \"a\" latency=17i 1795520094606000000"
    );
}

#[test]
fn header_fields_static_values_renames_and_templated_measurement() {
    let (line, errors) = point(
        r"pool=(?P<pool>\w+) used=(?P<used>\d+)",
        "measurement = \"jvm_{pool}\"\nhost_tag = false\ntags = [\"severity\", { name = \"service\", from = \"app\" }, { name = \"env\", value = \"prod\" }, \"facility\", { name = \"p\", from = \"procid\" }]\nfields = { used = \"int\", one = { value = 1, type = \"int\" } }",
        "<190>1 2026-01-01T00:00:00Z web billing 4711 - - pool=eden used=12",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        line.unwrap(),
        "jvm_eden,app=billing,env=prod,facility=local7,p=4711,service=billing,severity=info one=1i,used=12i 1767225600000000000"
    );
}

#[test]
fn grok_typed_captures_become_fields_with_human_units() {
    let (line, errors) = point(
        "%{WORD:pool} GC pause=%{NOTSPACE:pause:duration} freed=%{NOTSPACE:freed:bytes} heap=%{NUMBER:heap:float}",
        "measurement = \"gc\"\ntags = [\"pool\"]\napp_tag = false\nhost_tag = false",
        "<14>1 2026-01-01T00:00:00Z h jvm - - - old GC pause=1.5ms freed=2MiB heap=0.75",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        line.unwrap(),
        "gc,pool=old pause=1500000i,freed=2097152i,heap=0.75 1767225600000000000"
    );
}

#[test]
fn bad_value_drops_field_and_no_fields_drops_point() {
    let metric = "measurement = \"m\"\nfields = { used = \"int\" }";
    let (line, errors) = point(r"used=(?P<used>\S+)", metric, "<14>1 - h a - - - used=abc");
    assert_eq!(line, None);
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].reason(), "bad_value");
    assert_eq!(errors[1], ConversionError::NoFields);
    // Another field survives a bad one by default...
    let metric = "measurement = \"m\"\nfields = { used = \"int\", max = \"int\" }";
    let (line, errors) = point(
        r"used=(?P<used>\S+) max=(?P<max>\S+)",
        metric,
        "<14>1 - h a - - - used=abc max=5",
    );
    assert_eq!(line.unwrap(), "m,app=a,host=h max=5i 7");
    assert_eq!(errors.len(), 1);
    // ...unless the route says the point goes with it.
    let metric = format!("{metric}\non_conversion_error = \"drop_point\"");
    let (line, errors) = point(
        r"used=(?P<used>\S+) max=(?P<max>\S+)",
        &metric,
        "<14>1 - h a - - - used=abc max=5",
    );
    assert_eq!(line, None);
    assert_eq!(
        errors.iter().map(|e| e.reason()).collect::<Vec<_>>(),
        ["bad_value", "dropped_point"]
    );
    // An empty capture is no field and no error.
    let metric = "measurement = \"m\"\nfields = { used = \"int\", max = \"int\" }";
    let (line, errors) = point(
        r"used=(?P<used>\d*) max=(?P<max>\S+)",
        metric,
        "<14>1 - h a - - - used= max=5",
    );
    assert_eq!(line.unwrap(), "m,app=a,host=h max=5i 7");
    assert!(errors.is_empty());
    // A measurement starting with '#' would be read as a comment.
    let (line, errors) = point(
        r"m=(?P<m>\S+) used=(?P<used>\d+)",
        "measurement = \"{m}\"\nfields = { used = \"int\" }",
        "<14>1 - h a - - - m=#x used=5",
    );
    assert_eq!(line, None);
    assert_eq!(errors[0].reason(), "no_measurement");
    // A templated measurement without its value is no point.
    let (line, errors) = point(
        r"(?:pool=(?P<pool>\w+) )?used=(?P<used>\d+)",
        "measurement = \"jvm_{pool}\"\nfields = { used = \"int\" }",
        "<14>1 - h a - - - used=5",
    );
    assert_eq!(line, None);
    assert_eq!(errors[0].reason(), "no_measurement");
}

#[test]
fn key_values_are_floats_and_time_falls_back_to_receive_time() {
    let (line, _) = point(
        "",
        "measurement = \"my meas,x\"\nkey_values = true\nhost_tag = false\napp_tag = false",
        "<14>status route=/x code=200 latency_ms=1.5 bogus=abc",
    );
    assert_eq!(line.unwrap(), "my\\ meas\\,x code=200,latency_ms=1.5 7");
}

/// RFC 5424 keeps a BOM at the start of MSG (§6.4): the first
/// `key=number` pair after it is read as every other.
#[test]
fn key_values_after_a_bom_keep_the_first_pair() {
    let (line, _) = point(
        "",
        "measurement = \"m\"\nkey_values = true\nhost_tag = false\napp_tag = false",
        "<14>1 - h a - - - \u{feff}heap_used=42 x=3",
    );
    assert_eq!(line.unwrap(), "m heap_used=42,x=3 7");
}

#[test]
fn document_has_canonical_fields_and_captures() {
    let e = ev("<14>1 - h a - - - used=12");
    let re = Regex::new(r"used=(?P<used>\d+)").unwrap();
    let caps = Captures::from(re.captures(e.message()).unwrap());
    let r = encode(
        String::new(),
        &OutputConfig::Document(DocumentFormat::Canonical),
        "docs",
        &capture_names(&re),
        &e,
        Some(&caps),
        &mut Vec::new(),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
    assert_eq!(v["hostname"], "h");
    assert_eq!(v["route"], "docs");
    assert_eq!(v["captures"]["used"], "12");
    assert_eq!(v["valid"], true);
}

pub(super) fn document(
    format: DocumentFormat,
    frame: &str,
    pattern: Option<&str>,
) -> serde_json::Value {
    let e = decode(
        Bytes::copy_from_slice(frame.as_bytes()),
        Some("10.0.0.5:50122".parse().unwrap()),
        1_795_520_100_000_000_000,
        &DecodeOptions::default(),
    );
    let re = pattern.map(|p| Regex::new(p).unwrap());
    let caps = re
        .as_ref()
        .and_then(|re| re.captures(e.message()))
        .map(Captures::from);
    let names = re.as_ref().map(capture_names).unwrap_or_default();
    let r = encode(
        String::new(),
        &OutputConfig::Document(format),
        "docs",
        &names,
        &e,
        caps.as_ref(),
        &mut Vec::new(),
    )
    .unwrap();
    serde_json::from_str(&r.payload).unwrap()
}

/// A document's key is the same for the same (route, frame number,
/// receive time) and differs when any one of them differs, even for
/// frames alike in every byte from the same peer.
#[test]
fn document_keys_identify_route_frame_number_and_receive_time() {
    let event = |number: u64, nanos: i64| {
        let mut e = decode(
            Bytes::from_static(b"<14>1 - h a - - - x=1"),
            Some("10.0.0.1:514".parse().unwrap()),
            nanos,
            &DecodeOptions::default(),
        );
        e.frame_number = number;
        e
    };
    let key = document_key("r", &event(1, 7));
    assert_eq!(key, document_key("r", &event(1, 7)));
    let others = [
        document_key("s", &event(1, 7)),
        document_key("r", &event(2, 7)),
        document_key("r", &event(1, 8)),
    ];
    for (i, other) in others.iter().enumerate() {
        assert_ne!(key, *other, "case {i}");
        for later in &others[i + 1..] {
            assert_ne!(other, later);
        }
    }
}

/// A frame another process received (a Kafka envelope) gets the key
/// that process gave it: its nonce stands in for this process's.
#[test]
fn document_keys_take_the_receiving_processs_nonce() {
    let mut e = decode(
        Bytes::from_static(b"<14>1 - h a - - - x=1"),
        None,
        7,
        &DecodeOptions::default(),
    );
    e.frame_number = 3;
    let own = document_key("r", &e);
    e.id_nonce = Some(nonce());
    assert_eq!(document_key("r", &e), own);
    e.id_nonce = Some(nonce() ^ 1);
    assert_ne!(document_key("r", &e), own);
}

/// The route's text and key seed are kept per thread for the last
/// route: documents of alternating routes (one whose name needs
/// escaping) each carry their own route and the key their route's
/// inputs give.
#[test]
fn alternating_document_routes_keep_their_names_and_keys() {
    let output = OutputConfig::Document(DocumentFormat::Ecs { original: false });
    let mut e = ev("<14>1 - h a - - - x=1");
    for (n, route) in ["a", "b\"q", "a", "a", "", "b\"q"].into_iter().enumerate() {
        e.frame_number = n as u64;
        let r = encode(
            String::new(),
            &output,
            route,
            &[],
            &e,
            None,
            &mut Vec::new(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(v["sluice"]["route"], route);
        let want = document_key_of(route, nonce(), e.frame_number, e.received_nanos);
        assert_eq!(r.key, Some(want), "{route}");
        assert_eq!(document_key(route, &e), want);
    }
}

/// Route texts made once per route (a reader's pipeline) and the one
/// kept per thread ([`encode`]) are used in turn on one thread, for
/// documents whose shared tail (same peer, same receive time) is kept
/// per thread too: every document carries its own route and key, the
/// same from either text.
#[test]
fn pipeline_and_thread_route_texts_keep_their_routes_and_keys() {
    let format = DocumentFormat::Ecs { original: false };
    let output = OutputConfig::Document(format);
    let mut e = ev("<14>1 - h a - - - x=1");
    e.peer = Some("10.0.0.1:514".parse().unwrap());
    let texts = [RouteText::new("a"), RouteText::new("b\"q")];
    let routes = ["a", "b\"q", "c", "a", "a", "c", "b\"q", "", "b\"q"];
    for (n, route) in routes.into_iter().enumerate() {
        e.frame_number = n as u64;
        let want = document_key_of(route, nonce(), e.frame_number, e.received_nanos);
        let by_thread = encode(
            String::new(),
            &output,
            route,
            &[],
            &e,
            None,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(by_thread.key, Some(want), "{route}");
        for text in texts.iter().filter(|t| t.name == route) {
            let doc = encode_document_into(String::new(), &format, text, &[], &e, None);
            assert_eq!(doc, by_thread.payload.as_str(), "{route}");
            assert_eq!(text.key(&e), want, "{route}");
        }
        let v: serde_json::Value = serde_json::from_str(&by_thread.payload).unwrap();
        assert_eq!(v["sluice"]["route"], route);
    }
}

#[test]
fn ip_text_matches_display() {
    for ip in [
        "0.0.0.0",
        "10.0.0.5",
        "127.0.0.1",
        "255.255.255.255",
        "192.168.100.9",
        "::1",
        "2001:db8::17",
        "::ffff:10.0.0.1",
    ] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let mut s = String::new();
        push_ip(&mut s, ip);
        assert_eq!(s, ip.to_string());
    }
}

#[test]
fn ecs_documents() {
    let v = document(
        DocumentFormat::Ecs { original: false },
        r#"<134>1 2026-11-23T10:00:00.123+09:00 web01 billing 4711 GC [mdc@18060 user="kim"] heap_used=1234"#,
        Some(r"heap_used=(?P<used>\d+)"),
    );
    assert_eq!(
        v,
        serde_json::json!({
            "@timestamp": "2026-11-23T01:00:00.123Z",
            "message": "heap_used=1234",
            "log": {"syslog": {
                "facility": {"code": 16, "name": "local0"},
                "severity": {"code": 6, "name": "info"},
                "hostname": "web01", "appname": "billing", "procid": "4711", "msgid": "GC",
                "structured_data": {"mdc@18060": {"user": "kim"}}
            }},
            "host": {"hostname": "web01"},
            "process": {"name": "billing", "pid": 4711},
            "source": {"address": "10.0.0.5", "port": 50122},
            "event": {"created": "2026-11-24T11:35:00.000000Z"},
            "sluice": {"route": "docs", "protocol": "rfc5424", "valid": true, "captures": {"used": "1234"}}
        })
    );
    // No header, no time: the receive time; no host/process objects.
    let v = document(DocumentFormat::Ecs { original: false }, "<14>hello", None);
    assert_eq!(v["@timestamp"], "2026-11-24T11:35:00.000000Z");
    assert!(v.get("host").is_none() && v.get("process").is_none());
    assert!(v["event"].get("original").is_none());
    let v = document(DocumentFormat::Ecs { original: true }, "<14>hello", None);
    assert_eq!(v["event"]["original"], "<14>hello");
}

/// The peer's text is kept for the last peer: documents from
/// alternating peers each carry their own.
/// The cached header block is byte for byte what writing it gives, over
/// more combinations than the cache has slots (so sets fill and ways
/// are replaced), absent fields, fields that only differ in where one
/// ends and the next begins, and structured data (not cached).
#[test]
fn cached_ecs_headers_equal_written_ones() {
    let mut frames = Vec::new();
    for i in 0..200 {
        frames.push(format!(
            "<{}>1 - host{} app{} {} msg{} - m",
            8 + i % 3,
            i % 50,
            i % 4,
            1000 + i % 5,
            i % 2
        ));
    }
    frames.extend([
        "<14>1 - ab c - - - m".to_owned(),
        "<14>1 - a bc - - - m".to_owned(),
        "<14>1 - - - - - - m".to_owned(),
        "<14>1 - h\\\"q app - - - m".to_owned(),
        "<14>1 - h app 12 ID [x@1 k=\"v\"] m".to_owned(),
        "<14>Nov 24 11:34:54 web01 sshd[42]: m".to_owned(),
        "garbage".to_owned(),
    ]);
    for round in 0..3 {
        // Each round another order (207 frames: 1, 2 and 5 are coprime).
        for n in 0..frames.len() {
            let f = &frames[(n * [1, 2, 5][round]) % frames.len()];
            let e = ev(f);
            let (mut cached, mut written) = (String::new(), String::new());
            push_ecs_header(&mut cached, &e);
            write_ecs_header(&mut written, &e);
            assert_eq!(cached, written, "{f}");
        }
    }
}

/// Headers that share a set: up to four of them stay cached
/// together, whatever their order; one more replaces the one used
/// least recently.
#[test]
fn header_cache_keeps_a_full_set() {
    // Four ways: three headers in one set (as three of the e2e
    // benchmark's 16 are) and one more.
    const WAYS: usize = 4;
    fn fields_of(e: &Event) -> [Option<&str>; 4] {
        [e.hostname(), e.appname(), e.procid(), e.msgid()]
    }
    let set_of = |e: &Event| header_hash(e, &fields_of(e)) % HEADER_SETS as u64;
    // Frames whose headers fall into one set, found by trying hosts.
    let frame = |n: usize| format!("<134>1 - host{n} app 1001 - - m");
    let target = set_of(&ev(&frame(0)));
    let same_set: Vec<String> = (0..100_000)
        .map(frame)
        .filter(|f| set_of(&ev(f)) == target)
        .take(WAYS + 1)
        .collect();
    assert_eq!(same_set.len(), WAYS + 1);
    let mut cache = HeaderCache::default();
    let mut push = |f: &str| {
        let e = ev(f);
        let (mut cached, mut written) = (String::new(), String::new());
        let hit = cache.push(&mut cached, &e, &fields_of(&e));
        write_ecs_header(&mut written, &e);
        assert_eq!(cached, written, "{f}");
        hit
    };
    let full = &same_set[..WAYS];
    for f in full {
        assert!(!push(f), "{f} cached before its first use");
    }
    for round in 0..3 {
        for f in full.iter().rev().skip(round).chain(full.iter().take(round)) {
            assert!(push(f), "{f} fell out of a set that holds it");
        }
    }
    // Used in this order last: the first of `full` least recently.
    for f in full {
        assert!(push(f));
    }
    let extra = &same_set[WAYS];
    assert!(!push(extra));
    assert!(push(extra));
    assert!(!push(&full[0]), "the least recently used was kept");
    for f in &full[2..] {
        assert!(push(f), "{f} replaced instead of the least recently used");
    }
}

#[test]
fn ecs_source_follows_each_documents_peer() {
    let output = OutputConfig::Document(DocumentFormat::Ecs { original: false });
    for peer in [
        "10.0.0.5:50122",
        "10.0.0.5:50123",
        "[2001:db8::7]:514",
        "10.0.0.5:50122",
        "192.168.1.1:9",
    ] {
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        let e = decode(
            Bytes::from_static(b"<14>hello"),
            Some(peer),
            0,
            &DecodeOptions::default(),
        );
        let r = encode(
            String::new(),
            &output,
            "docs",
            &[],
            &e,
            None,
            &mut Vec::new(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(v["source"]["address"], peer.ip().to_string());
        assert_eq!(v["source"]["port"], peer.port());
    }
}

#[test]
fn flume_documents_keep_the_logstash_shape() {
    let flume = DocumentFormat::Flume {
        keep: crate::config::FlumeKeepFields::default(),
    };
    // The body is everything after the hostname, the TAG included
    // (Flume's SyslogUtils), and a capture is a field (regex_extractor).
    let v = document(
        flume,
        "<134>Nov 23 10:00:00 web01 app: heap_used=1234",
        Some(r"heap_used=(?P<heap_used>\d+)"),
    );
    assert_eq!(
        v,
        serde_json::json!({
            "@message": "app: heap_used=1234",
            "@timestamp": "2026-11-23T10:00:00.000Z",
            "@source_host": "web01",
            "@fields": {"Facility": "16", "Severity": "6", "priority": "134",
                        "host": "web01", "timestamp": "1795428000000", "heap_used": "1234"}
        })
    );
    // Flume's bad event: facility and severity 0, the frame as body;
    // no time in it, so the receive time (the timestamp interceptor).
    let v = document(flume, "garbage", None);
    assert_eq!(
        v,
        serde_json::json!({
            "@message": "garbage",
            "@timestamp": "2026-11-24T11:35:00.000Z",
            "@fields": {"Facility": "0", "Severity": "0",
                        "flume.syslog.status": "Invalid", "timestamp": "1795520100000"}
        })
    );
}
