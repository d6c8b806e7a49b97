//! Decoding and route matching: invalid frames, named captures, the grok example.

use std::path::Path;

use crate::util::*;

#[test]
fn an_undecodable_frame_arrives_as_invalid_with_its_raw_text() {
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    tcp_send(s.addr("tcp"), b"this is not syslog at all\n");
    let lines = s.wait_lines("events.ndjson", 1);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["protocol"], "unknown");
    assert_eq!(v["message"], "this is not syslog at all");
    assert_eq!(
        s.metric("sluice_listener_invalid_frames_total{listener=\"tcp\"}"),
        1
    );
    assert!(s.stop().success());
}

#[test]
fn named_captures_become_typed_fields() {
    let routes = r#"
[[routes]]
name = "gc"
sink = "metrics"
appname = "jvm"
pattern = 'pool=(?P<pool>\S+) used=(?P<used>\S+) ratio=(?P<ratio>\S+) full=(?P<full>\S+) note=(?P<note>.*)'
[routes.metric]
measurement = "jvm_gc"
tags = ["pool"]
fields = { used = "int", ratio = "float", full = "bool", note = "string", unsigned = { from = "used", type = "uint" } }
[default_route]
sink = "events"
document = {}
"#;
    let mut s = Sluice::start(&config("", routes));
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-23T10:00:00Z web01 jvm 1 - - pool=old used=1234 ratio=0.25 full=true note=said \"hi\"\n\
          <14>1 2026-11-23T10:00:01Z web01 jvm 1 - - pool=young used=lots ratio=1 full=no note=x\n\
          <14>1 - web01 other 1 - - unrelated\n",
    );
    let points = s.wait_lines("metrics.lp", 2);
    assert_eq!(
        points,
        [
            "jvm_gc,app=jvm,host=web01,pool=old full=true,note=\"said \\\"hi\\\"\",ratio=0.25,unsigned=1234u,used=1234i 1795428000000000000",
            "jvm_gc,app=jvm,host=web01,pool=young full=false,note=\"x\",ratio=1 1795428001000000000",
        ]
    );
    let events = s.wait_lines("events.ndjson", 1);
    assert_eq!(messages(&events), ["unrelated"]);
    // "lots" is no int and no uint: two fields dropped, counted.
    assert_eq!(
        s.metric("sluice_route_conversion_errors_total{route=\"gc\",reason=\"bad_value\"}"),
        2
    );
    assert!(s.stop().success());
}

/// The grok example config turns an Apache combined log line, a JVM GC
/// status line and a log4j2 MDC message into the points it promises, and
/// every message also into a document (fan-out).
#[test]
fn grok_routes_example_produces_the_expected_points() {
    let lines = [
        r#"<13>Nov 24 11:34:53 web02 10.0.0.9 - kim [24/Nov/2026:11:34:53 +0100] "GET /index.html HTTP/1.1" 200 5120 "-" "curl/8.0""#,
        "<134>1 2026-11-24T11:34:54.606Z app-7 billing 77 - - GC pool=old gen used=1234 max=4096 pause=12.5ms",
        r#"<166>1 2026-11-24T11:34:54.606Z vm orders 17078 - [mdc@18060 requestId="r-42" user="alice" tenant="acme"] Order created id=1001 total=129.95"#,
        // Matches the pattern, but "soon" is no duration.
        "<134>1 2026-11-24T11:34:54.606Z app-7 billing 77 - - GC pool=old gen used=1 max=4096 pause=soon",
    ];
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grok-routes.toml");
    let reports = sluice_parse(
        &["-c", config.to_str().unwrap(), "--framing", "lf"],
        lines.join("\n").as_bytes(),
    );
    assert_eq!(reports.len(), 4);
    // Per message: (route, line) of every metric route that matched.
    let points = |r: &serde_json::Value| -> Vec<(String, String)> {
        r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["matched"] == true && x.get("line").is_some())
            .map(|x| {
                (
                    x["route"].as_str().unwrap().to_owned(),
                    x["line"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        points(&reports[0]),
        [pair(
            "access_log",
            "http_requests,host=web02,status=200,verb=GET bytes=5120i 1795520093000000000"
        )]
    );
    assert_eq!(
        points(&reports[1]),
        [pair(
            "jvm_gc",
            "jvm_billing,app=billing,host=app-7,pool=old\\ gen used=1234i,max=4096i,pause=12500000i 1795520094606000000"
        )]
    );
    assert_eq!(
        points(&reports[2]),
        [pair(
            "orders",
            "orders,app=orders,env=prod,host=vm,tenant=acme,user=alice order_id=\"1001\",total=129.95 1795520094606000000"
        )]
    );
    // A bad value under drop_point: no point, and the debugger says why.
    assert!(points(&reports[3]).is_empty());
    let gc = &reports[3]["routes"][1];
    assert_eq!(gc["route"], "jvm_gc");
    assert_eq!(gc["matched"], true);
    let reasons: Vec<String> = gc["conversion_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("\"pause\"")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("drop_point")),
        "{reasons:?}"
    );
    // Every message is also a document.
    for r in &reports {
        let docs = r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["route"] == "all_events" && x["matched"] == true)
            .count();
        assert_eq!(docs, 1);
    }
}

// ------------------------------------------------------------ InfluxDB
