//! syslog-blaster against the real sluice: the blaster's sink endpoints
//! take sluice's InfluxDB and Elasticsearch output and match every message
//! back by sequence number.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::util::{LISTENERS, Sluice};

const BLASTER: &str = env!("CARGO_BIN_EXE_syslog-blaster");

/// Sluice with an InfluxDB and an Elasticsearch sink at `sink`, the
/// blaster's status-line route, and `documents` as the document route.
fn config(sink: &str, documents: &str) -> String {
    format!(
        r#"{LISTENERS}
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["http://{sink}"]
database = "bench"
[[sinks]]
name = "es"
type = "elasticsearch"
urls = ["http://{sink}"]
index = "syslog-%Y.%m.%d"
[[routes]]
name = "http_status"
sink = "influx"
pattern = 'status route=%{{NOTSPACE:route}} code=%{{INT:code}} latency_ms=%{{NUMBER:latency_ms:float}} bytes=%{{INT:bytes:int}} seq=%{{INT:seq:int}} sent=%{{INT:sent:int}}'
[routes.metric]
measurement = "http_requests"
tags = ["route", "code"]
[routes.queue]
when_full = "block"
{documents}
[[sinks]]
name = "rest"
type = "file"
path = "rest.ndjson"
[default_route]
sink = "rest"
document = {{}}
"#
    )
}

/// Run the blaster with `args` against sluice on `documents`; the exit
/// code and the JSON report.
fn blast(listener: &str, documents: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut blaster = Command::new(BLASTER)
        .args([
            "--sink",
            "127.0.0.1:0",
            "--target",
            "-",
            "--json",
            "--quiet",
        ])
        .args(["--drain-secs", "2"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(blaster.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let sink: serde_json::Value = serde_json::from_str(&line).unwrap();
    let mut s = Sluice::start(&config(sink["sink"].as_str().unwrap(), documents));
    let target = format!("{listener}://{}\n", s.addr(listener));
    blaster
        .stdin
        .take()
        .unwrap()
        .write_all(target.as_bytes())
        .unwrap();
    let status = blaster.wait().unwrap();
    let mut report = String::new();
    stdout.read_line(&mut report).unwrap();
    assert!(s.stop().success());
    (status.code(), serde_json::from_str(&report).unwrap())
}

const ALL_DOCUMENTS: &str = r#"
[[routes]]
name = "events"
sink = "es"
document = {}
[routes.queue]
when_full = "block"
"#;

/// Every message arrives once as a document and every status line once as
/// a point; the blaster says so, with no loss and no duplicates.
#[test]
fn blaster_measures_every_message_through_sluice() {
    let (code, r) = blast(
        "tcp",
        ALL_DOCUMENTS,
        &["--count", "4000", "--connections", "2", "--expect", "both"],
    );
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["sent"], 4000);
    let d = &r["documents"];
    assert_eq!(
        (
            &d["expected"],
            &d["delivered"],
            &d["lost"],
            &d["duplicates"],
            &d["unmatched"]
        ),
        (&4000.into(), &4000.into(), &0.into(), &0.into(), &0.into()),
        "{r}"
    );
    let p = &r["points"];
    assert_eq!(
        (&p["expected"], &p["delivered"]),
        (&1000.into(), &1000.into()),
        "{r}"
    );
    assert_eq!(r["loss_ratio"], 0.0);
    assert_eq!(d["latency"]["count"], 4000);
    assert!(d["latency"]["max_ms"].as_f64().unwrap() > 0.0, "{r}");
}

/// Only errors become documents here: the blaster counts the others as
/// lost, exactly, and exits 1 (the default --max-loss for TCP is 0).
#[test]
fn blaster_counts_what_does_not_arrive_and_fails() {
    let errors_only = r#"
[[routes]]
name = "errors"
sink = "es"
severity = "error"
document = {}
"#;
    let (code, r) = blast(
        "tcp",
        errors_only,
        &[
            "--count",
            "1000",
            "--stack-every",
            "10",
            "--framing",
            "octet",
        ],
    );
    assert_eq!(code, Some(1), "{r}");
    // Stack traces (severity error) are the seqs ending in 1: 100 of 1000.
    let d = &r["documents"];
    assert_eq!(d["delivered"], 100, "{r}");
    assert_eq!(d["lost"], 900, "{r}");
    assert_eq!(r["loss_ratio"], 0.9);
}

/// UDP datagrams, as fast as the loopback takes them, counted the same way.
#[test]
fn blaster_over_udp_rate_limited() {
    let (code, r) = blast(
        "udp",
        ALL_DOCUMENTS,
        &["--rate", "2000", "--duration", "1", "--format", "rfc3164"],
    );
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["sent"], 2000);
    assert_eq!(r["documents"]["delivered"], 2000, "{r}");
}
