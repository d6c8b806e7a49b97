//! The InfluxDB sink against a real `influxd`.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::util::*;

/// Points sent over UDP and TCP through a metric route are read back from a
/// real InfluxDB exactly: measurement, tags (with spaces and `=`), field
/// types and values (a string with quotes, commas and a newline), times.
#[test]
fn influxdb_stores_exactly_what_the_route_wrote() {
    if !influxd_available() {
        return;
    }
    let influx = Influxd::start();
    influx.query("", "CREATE DATABASE sluice_test");
    let routes = r#"
[[routes]]
name = "jobs"
sink = "influx"
final = true
pattern = '(?s)job pool=(?P<pool>[^;]+); used=(?P<used>-?\d+) ratio=(?P<ratio>\S+) ok=(?P<ok>\S+) note=(?P<note>.*)$'
[routes.metric]
measurement = "job runs"
tags = ["pool"]
fields = { used = "int", ratio = "float", ok = "bool", note = "string" }
"#;
    let mut s = Sluice::start(&influx_config(&influx, "sluice_test", routes));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 2026-11-24T10:00:00.123456Z web01 batch - - - job pool=old gen=x\\y, z; used=42 ratio=0.5 ok=true note=plain",
        s.addr("udp"),
    )
    .unwrap();
    let tcp_frame = "<14>1 2026-11-24T10:00:01Z web02 batch - - - job pool=eden; used=-7 ratio=1e3 ok=false note=say \"hi\", then\nnext line \\ done";
    tcp_send(
        s.addr("tcp"),
        format!("{} {tcp_frame}", tcp_frame.len()).as_bytes(),
    );
    let rows = influx.rows("sluice_test", "job runs", 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = |i: usize| serde_json::Value::Object(rows[i].clone());
    assert_eq!(
        row(0),
        serde_json::json!({
            "time": "2026-11-24T10:00:00.123456Z", "app": "batch", "host": "web01",
            "pool": "old gen=x\\y, z", "used": 42, "ratio": 0.5, "ok": true, "note": "plain"
        })
    );
    assert_eq!(
        row(1),
        serde_json::json!({
            "time": "2026-11-24T10:00:01Z", "app": "batch", "host": "web02",
            // JSON prints the float 1e3 as 1000; SHOW FIELD KEYS below proves it a float.
            "pool": "eden", "used": -7, "ratio": 1000, "ok": false,
            "note": "say \"hi\", then\nnext line \\ done"
        })
    );
    // Field types as InfluxDB recorded them.
    let keys = influx.query("sluice_test", "SHOW FIELD KEYS FROM \"job runs\"");
    let types: std::collections::BTreeMap<String, String> =
        keys["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v[0].as_str().unwrap().to_owned(),
                    v[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    assert_eq!(
        types,
        [
            ("note", "string"),
            ("ok", "boolean"),
            ("ratio", "float"),
            ("used", "integer")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into()
    );
    // influxd stores the points before it answers: the sink counts them
    // once the answer is in.
    let sent = "sluice_sink_records_sent_total{sink=\"influx\",route=\"jobs\"}";
    wait_while!(10, || s.metric(sent) < 2);
    assert_eq!(s.metric(sent), 2);
    assert!(s.stop().success());
}

/// influxd is stopped for 30 s in the middle of a stream and restarted:
/// afterwards every point sent during the outage is in the database, each
/// exactly once.
#[test]
fn influxdb_outage_of_30_seconds_loses_nothing() {
    if !influxd_available() {
        return;
    }
    let mut influx = Influxd::start();
    influx.query("", "CREATE DATABASE outage");
    let mut s = Sluice::start(&influx_config(&influx, "outage", STATUS_ROUTE));
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    let mut send = |range: std::ops::Range<usize>| {
        for i in range {
            // Distinct timestamps: a point written twice would still be one.
            let frame = format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - status seq={i}\n");
            conn.write_all(frame.as_bytes()).unwrap();
        }
    };
    send(0..50);
    assert_eq!(influx.rows("outage", "status", 50).len(), 50);

    influx.stop();
    let down = Instant::now();
    // Keep sending while it is down: 30 s, 100 points.
    for k in 0..100 {
        send(50 + k..51 + k);
        std::thread::sleep(Duration::from_millis(300));
    }
    while down.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.metric("sluice_sink_retries_total{sink=\"influx\",route=\"status\"}") > 0);
    // The outage shows: /health is degraded, naming the sink and its error.
    let health = s.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let influx_state = &health["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["sink"] == "influx")
        .cloned()
        .unwrap();
    assert_eq!(influx_state["state"], "failing");
    assert!(
        influx_state["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{health}"
    );
    assert_eq!(
        s.metric("sluice_sink_up{sink=\"influx\",route=\"status\"}"),
        0
    );
    influx.launch();
    send(150..200);

    let rows = influx.rows("outage", "status", 200);
    let mut seqs: Vec<u64> = rows
        .iter()
        .map(|r| r["seq"].as_f64().unwrap() as u64)
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..200).collect::<Vec<u64>>(),
        "every point exactly once"
    );
    let count = influx.query("outage", "SELECT count(seq) FROM status");
    assert_eq!(count["results"][0]["series"][0]["values"][0][1], 200);
    assert_eq!(
        s.metric(
            "sluice_sink_failed_records_total{sink=\"influx\",route=\"status\",reason=\"gave_up\"}"
        ),
        0
    );
    drop(conn);
    assert!(s.stop().success());
}

/// `create_database` makes the database and the retention policy on the
/// real server before the first write; points land in that policy, a
/// `uint` field is written as an integer (1.x has no `u`), and timestamps
/// go in the configured precision.
#[test]
fn influxdb_database_and_retention_policy_are_created() {
    if !influxd_available() {
        return;
    }
    let influx = Influxd::start();
    let sink = r#"retention_policy = "one_year"
retention_duration = "52w"
create_database = true
precision = "ms""#;
    let jobs = r#"
[[routes]]
name = "jobs"
sink = "influx"
final = true
pattern = 'done count=(?P<count>\d+)'
[routes.metric]
measurement = "jobs"
fields = { count = "uint" }
"#;
    let config = influx_config_at(&influx.url(), "made by sluice", sink, jobs);
    let mut s = Sluice::start(&config);
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00.123456Z h app - - - done count=18446744073709551\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let v = influx.query(
            "made by sluice",
            "SELECT * FROM \"made by sluice\".\"one_year\".\"jobs\"",
        );
        if v["results"][0]["series"][0]["values"].is_array() || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        rows["results"][0]["series"][0]["values"][0],
        // Written in milliseconds (precision = "ms"): the microseconds go.
        serde_json::json!(["2026-11-24T10:00:00.123Z", "app", 18446744073709551u64, "h"])
    );
    let dbs = influx.query("", "SHOW DATABASES");
    assert!(
        dbs["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["made by sluice"])),
        "{dbs}"
    );
    let rps = influx.query(
        "made by sluice",
        "SHOW RETENTION POLICIES ON \"made by sluice\"",
    );
    let one_year = rps["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "one_year")
        .cloned()
        .unwrap_or_else(|| panic!("{rps}"));
    assert_eq!(one_year[1], "8736h0m0s");
    let keys = influx.query(
        "made by sluice",
        "SHOW FIELD KEYS ON \"made by sluice\" FROM \"one_year\".\"jobs\"",
    );
    assert_eq!(
        keys["results"][0]["series"][0]["values"][0],
        serde_json::json!(["count", "integer"])
    );
    assert!(s.stop().success());
}

/// A partial write: InfluxDB 1.x stores the lines it accepts and rejects a
/// line whose field type conflicts. The accepted line is not sent again;
/// the rejected one is counted and dead-lettered with InfluxDB's reason.
#[test]
fn influxdb_partial_write_dead_letters_only_the_rejected_line() {
    if !influxd_available() {
        return;
    }
    let influx = Influxd::start();
    influx.query("", "CREATE DATABASE partial");
    // m_bad.used already exists as a float, in the same shard (field types
    // are per shard in 1.x: same week as the points below).
    let (status, body) = http(
        influx.addr,
        "POST",
        "/write?db=partial",
        b"m_bad used=1.5 1795514000000000000\n",
    );
    assert_eq!(status, 204, "{body}");
    let routes = r#"
[[routes]]
name = "usage"
sink = "influx"
final = true
pattern = 'kind=(?P<kind>\w+) used=(?P<used>\d+)'
[routes.metric]
measurement = "m_{kind}"
fields = { used = "int" }
"#;
    let mut s = Sluice::start(&influx_config(&influx, "partial", routes));
    // One connection, one batch: a good line and a conflicting one.
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - kind=good used=7\n<14>1 2026-11-24T10:00:01Z h app - - - kind=bad used=8\n",
    );
    assert_eq!(influx.rows("partial", "m_good", 1).len(), 1);
    let sample = |name: &str| format!("sluice_sink_{name}{{sink=\"influx\",route=\"usage\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric(&format!(
        "{},reason=\"rejected\"}}",
        sample("failed_records_total")
    )) == 0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        s.metric(&format!(
            "{},reason=\"rejected\"}}",
            sample("failed_records_total")
        )),
        1
    );
    assert_eq!(s.metric(&format!("{}}}", sample("records_sent_total"))), 1);
    assert_eq!(
        s.metric(&format!("{}}}", sample("retries_total"))),
        0,
        "nothing is resent"
    );
    // m_bad still holds only the point written before.
    assert_eq!(influx.rows("partial", "m_bad", 1).len(), 1);
    let dead = read_lines(&s.path("sluice-data/dead-letter/influx.ndjson"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let entry: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(entry["sink"], "influx");
    assert_eq!(
        entry["line"],
        "m_bad,app=app,host=h used=8i 1795514401000000000"
    );
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("field type conflict"),
        "{entry}"
    );
    assert!(s.stop().success());
}

/// A batch over the server's max-body-size (413) is split and delivered;
/// a dead first URL fails over to the second.
#[test]
fn influxdb_413_splits_the_batch_and_a_dead_url_fails_over() {
    if !influxd_available() {
        return;
    }
    let influx = Influxd::start_with("  max-body-size = 3000");
    influx.query("", "CREATE DATABASE split");
    // A port nothing listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["http://{dead}", "{}"]
database = "split"
gzip = false
linger_ms = 200
batch_max_events = 1000
[[routes]]
name = "seq"
sink = "influx"
final = true
pattern = 'seq='
[routes.metric]
measurement = "seq"
key_values = true
[default_route]
sink = "events"
document = {{}}
"#,
            influx.url()
        ),
    );
    let mut s = Sluice::start(&config);
    // 200 lines of ~70 bytes: ~14 KB in one batch, over 3000 bytes.
    let frames: String = (0..200)
        .map(|i| format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - seq={i}\n"))
        .collect();
    tcp_send(s.addr("tcp"), frames.as_bytes());
    let rows = influx.rows("split", "seq", 200);
    assert_eq!(rows.len(), 200);
    assert_eq!(
        s.metric("sluice_sink_records_sent_total{sink=\"influx\",route=\"seq\"}"),
        200
    );
    assert!(
        s.metric("sluice_sink_retries_total{sink=\"influx\",route=\"seq\"}") >= 1,
        "the dead URL was tried first"
    );
    assert!(s.stop().success());
}

/// With authentication on, the sink's credentials (basic auth) work; wrong
/// ones get 401, which holds the queue and shows on /health, and the
/// points go through once the user exists.
#[test]
fn influxdb_basic_auth_and_a_401_that_holds_the_queue() {
    if !influxd_available() {
        return;
    }
    let influx = Influxd::start_with_admin();
    let admin = |q: &str| influx.as_admin(q);
    admin("CREATE DATABASE secured");
    let sink = r#"username = "writer"
password = "${SLUICE_TEST_INFLUX_PASSWORD}""#;
    let config = influx_config_at(&influx.url(), "secured", sink, STATUS_ROUTE);
    // The password comes from the environment.
    let mut s = Sluice::start_with_env(&config, &[("SLUICE_TEST_INFLUX_PASSWORD", "wr1ter")]);
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - status seq=1\n",
    );
    // No user "writer" yet: 401, held and visible.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.health()["status"] != "degraded" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let health = s.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let error = health["sinks"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("401") && error.contains("credentials"),
        "{health}"
    );
    assert_eq!(
        s.metric(
            "sluice_sink_failed_records_total{sink=\"influx\",route=\"status\",reason=\"gave_up\"}"
        ),
        0
    );
    // The operator creates the user; the held point goes through.
    admin("CREATE USER writer WITH PASSWORD 'wr1ter'");
    admin("GRANT WRITE ON secured TO writer");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let body = admin("SELECT * FROM secured.autogen.status");
        if body.contains("\"values\"") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        rows.contains("[\"2026-11-24T10:00:00Z\",\"app\",\"h\",1]"),
        "{rows}"
    );
    // The row is in influxd before the sink has read the write's answer:
    // /health turns ok with that answer, not with the row.
    wait_while!(10, || s.health()["status"] != "ok");
    assert!(s.stop().success());
}

// ------------------------------------------------------------ Elasticsearch
