//! Integration tests: the real `sluice` binary on ephemeral ports, real
//! sockets, real files. Every test ends with SIGTERM and checks the exit
//! code, what was delivered and the final counters.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod es_server;
use es_server::EsServer;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A running sluice; killed on drop if the test did not stop it.
struct Sluice {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ready: serde_json::Value,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Config with UDP + TCP listeners on port 0, admin on port 0, metrics and
/// events to files in the temp dir, plus `routes` (TOML).
fn config(extra_listener: &str, routes: &str) -> String {
    format!(
        r#"
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
{extra_listener}
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

const EVENTS_ROUTE: &str = r#"
[[routes]]
name = "events"
sink = "events"
document = {}
"#;

impl Sluice {
    fn start(config: &str) -> Sluice {
        Sluice::start_with_env(config, &[])
    }

    /// Start with extra environment variables (e.g. secrets for `${NAME}`).
    fn start_with_env(config: &str, env: &[(&str, &str)]) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c", "sluice.toml"])
            .envs(env.iter().copied())
            .stderr(Stdio::null());
        Sluice::spawn(cmd, dir)
    }

    /// Run `cmd` (a sluice command line, perhaps under a wrapper) in `dir`,
    /// its stdout piped, and wait for its readiness line.
    fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Sluice {
        let mut child = cmd
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("readiness line {line:?}: {e}"));
        assert_eq!(ready["ready"], true);
        Sluice {
            child: Some(child),
            dir,
            ready,
        }
    }

    fn addr(&self, name: &str) -> SocketAddr {
        self.ready["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Lines of `file` once it has at least `n` (waits up to 10 s).
    fn wait_lines(&self, file: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = read_lines(&self.path(file));
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of one Prometheus sample, e.g.
    /// `sluice_listener_frames_total{listener="tcp"}`; 0 if absent.
    fn metric(&self, sample: &str) -> u64 {
        self.scrape()
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// `GET /metrics`: the Prometheus text.
    fn scrape(&self) -> String {
        let admin: SocketAddr = self.ready["admin"].as_str().unwrap().parse().unwrap();
        let (status, body) = http(admin, "GET", "/metrics", b"");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET /health` as JSON, asserting 200.
    fn health(&self) -> serde_json::Value {
        let (status, body) = self.health_status();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET /health`: status code and JSON.
    fn health_status(&self) -> (u16, serde_json::Value) {
        let admin: SocketAddr = self.ready["admin"].as_str().unwrap().parse().unwrap();
        let (status, body) = http(admin, "GET", "/health", b"");
        (status, serde_json::from_str(&body).unwrap())
    }

    /// SIGKILL (`kill -9`), and reap it.
    fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Start sluice again in the same directory with the same config file
    /// (after a stop or a kill).
    fn relaunch(&mut self) {
        let mut child = Command::new(BIN)
            .args(["run", "-c", "sluice.toml"])
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.ready =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("readiness line {line:?}: {e}"));
        self.child = Some(child);
    }

    /// Peak resident memory (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// SIGTERM, then wait for the exit.
    fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Poll `pending` every 50 ms while it holds, for at most `secs` seconds.
fn wait_while(secs: u64, mut pending: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while pending() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// `n` LF-framed RFC 5424 frames with messages "message 0", "message 1", …
fn numbered_frames(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("<14>1 - h app - - - message {i}\n").into_bytes())
        .collect()
}

fn tcp_send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
}

#[test]
fn udp_and_tcp_in_both_framings_reach_the_file_sink() {
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 2026-11-23T10:00:00Z h app - - - via udp",
        s.addr("udp"),
    )
    .unwrap();
    s.wait_lines("events.ndjson", 1);
    tcp_send(
        s.addr("tcp"),
        b"<14>1 - h app - - - lf one\n<14>1 - h app - - - lf two\r\n",
    );
    s.wait_lines("events.ndjson", 3);
    let a = "<14>1 - h app - - - octet one";
    let b = "<14>1 - h app - - - octet two";
    tcp_send(
        s.addr("tcp"),
        format!("{} {a}{} {b}", a.len(), b.len()).as_bytes(),
    );
    s.wait_lines("events.ndjson", 5);
    // One connection mixing both framings, frame by frame.
    let c = "<14>1 - h app - - - mixed octet";
    tcp_send(
        s.addr("tcp"),
        format!(
            "<14>1 - h app - - - mixed lf\n{} {c}<14>1 - h app - - - mixed lf again\n",
            c.len()
        )
        .as_bytes(),
    );
    let lines = s.wait_lines("events.ndjson", 8);
    let mut got = messages(&lines);
    got[1..].sort();
    assert_eq!(
        got,
        [
            "via udp",
            "lf one",
            "lf two",
            "mixed lf",
            "mixed lf again",
            "mixed octet",
            "octet one",
            "octet two"
        ]
    );
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"udp\"}"),
        1
    );
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"tcp\"}"),
        7
    );
    assert!(s.stop().success());
}

#[test]
fn oversized_frame_and_garbage_count_are_counted_and_the_connection_goes_on() {
    let extra = r#"
[[listeners]]
name = "small"
protocol = "tcp"
listen = "127.0.0.1:0"
max_frame_bytes = 64
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let mut conn = TcpStream::connect(s.addr("small")).unwrap();
    let big = format!("<14>{}\n", "x".repeat(200));
    // A count over the maximum frames by LF (issue #20 item 7): this line is
    // itself too long, so it is skipped up to its LF.
    let big_counted = format!("100 <14>{}\n", "y".repeat(96));
    conn.write_all(big.as_bytes()).unwrap();
    conn.write_all(b"<14>after oversized lf\n").unwrap();
    conn.write_all(big_counted.as_bytes()).unwrap();
    conn.write_all(b"<14>after oversized count\n").unwrap();
    // A count too long to be one, and a count not followed by a syslog frame.
    conn.write_all(b"99999999999999 <14>garbage count\n")
        .unwrap();
    conn.write_all(b"12 not syslog after count\n").unwrap();
    conn.write_all(b"<14>after garbage\n").unwrap();
    conn.flush().unwrap();
    let lines = s.wait_lines("events.ndjson", 5);
    assert_eq!(
        messages(&lines),
        [
            "after oversized lf",
            "after oversized count",
            "99999999999999 <14>garbage count",
            "12 not syslog after count",
            "after garbage"
        ]
    );
    let small = |what: &str| format!("{what}{{listener=\"small\",reason=");
    assert_eq!(
        s.metric(&(small("sluice_listener_skipped_frames_total") + "\"oversized\"}")),
        2
    );
    assert_eq!(
        s.metric(&(small("sluice_listener_framing_fallbacks_total") + "\"bad_octet_count\"}")),
        1
    );
    assert_eq!(
        s.metric(&(small("sluice_listener_framing_fallbacks_total") + "\"count_over_max\"}")),
        1
    );
    assert_eq!(
        s.metric(
            &(small("sluice_listener_framing_fallbacks_total") + "\"count_not_followed_by_pri\"}")
        ),
        1
    );
    assert_eq!(
        s.metric("sluice_listener_invalid_frames_total{listener=\"small\"}"),
        2
    );
    assert_eq!(
        s.metric("sluice_listener_connections_open{listener=\"small\"}"),
        1
    );
    drop(conn);
    assert!(s.stop().success());
}

#[test]
fn connections_over_the_limit_are_refused_and_idle_ones_closed() {
    let extra = r#"
[[listeners]]
name = "limited"
protocol = "tcp"
listen = "127.0.0.1:0"
max_connections = 2
idle_timeout_secs = 1
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let addr = s.addr("limited");
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    first
        .write_all(b"<14>1 - h app - - - from first\n")
        .unwrap();
    second
        .write_all(b"<14>1 - h app - - - from second\n")
        .unwrap();
    s.wait_lines("events.ndjson", 2);
    // A third connection is accepted by the kernel, then closed by sluice at once.
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(third.read(&mut buf), Ok(0)),
        "refused connection is closed (EOF, not a read timeout)"
    );
    assert_eq!(
        s.metric("sluice_listener_connections_rejected_total{listener=\"limited\",reason=\"max_connections\"}"),
        1
    );
    // The established senders are unaffected; after a second of silence
    // both are closed as idle, which frees their slots.
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        matches!(first.read(&mut buf), Ok(0)),
        "idle connection is closed (EOF, not a read timeout)"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.metric("sluice_listener_connections_open{listener=\"limited\"}") != 0 {
        assert!(Instant::now() < deadline, "idle connections not closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.metric("sluice_listener_connections_closed_abnormally_total{listener=\"limited\",reason=\"idle_timeout\"}"),
        2
    );
    tcp_send(addr, b"<14>1 - h app - - - after the idle ones left\n");
    let lines = s.wait_lines("events.ndjson", 3);
    let mut got = messages(&lines);
    got.sort();
    assert_eq!(
        got,
        ["after the idle ones left", "from first", "from second"]
    );
    assert!(s.stop().success());
}

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

const BLOCKING_EVENTS_ROUTE: &str = r#"
[[routes]]
name = "events"
sink = "events"
document = {}
queue = { max_events = 1000, when_full = "block" }
"#;

#[test]
fn sigterm_with_data_in_flight_loses_nothing() {
    let mut s = Sluice::start(&config("", BLOCKING_EVENTS_ROUTE));
    let n = 20_000;
    let payload = numbered_frames(n);
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.write_all(&payload).unwrap();
    // SIGTERM while the frames are still being read and written, connection open.
    let status = s.stop();
    assert!(status.success(), "exit status {status:?}");
    let lines = read_lines(&s.path("events.ndjson"));
    assert_eq!(
        lines.len(),
        n,
        "every frame written before SIGTERM is delivered"
    );
    let got = messages(&lines);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &format!("message {i}"));
    }
}

#[test]
fn drop_newest_counts_every_drop() {
    let routes = r#"
[[routes]]
name = "events"
sink = "events"
document = {}
queue = { max_events = 10, when_full = "drop_newest" }
"#;
    let mut s = Sluice::start(&config("", routes));
    let n = 5_000;
    let payload = numbered_frames(n);
    tcp_send(s.addr("tcp"), &payload);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("sluice_listener_frames_total{listener=\"tcp\"}") < n as u64 {
        assert!(Instant::now() < deadline, "frames not all read");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dropped = s.metric("sluice_queue_dropped_records_total{route=\"events\",reason=\"full\"}");
    assert!(s.stop().success());
    let delivered = read_lines(&s.path("events.ndjson")).len() as u64;
    assert_eq!(
        delivered + dropped,
        n as u64,
        "delivered {delivered} + dropped {dropped}"
    );
}

#[test]
fn a_bad_config_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        config(
            "",
            "[[routes]]\nname = \"r\"\nsink = \"events\"\npattern = \"(unclosed\"\ndocument = {}\n",
        ),
    )
    .unwrap();
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("pattern"))
        .unwrap()
        + 1;
    for cmd in ["run", "check"] {
        let out = Command::new(BIN)
            .args([cmd, "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "bad.toml:{line}:1: routes[0].pattern: route \"r\": invalid regex"
            )),
            "{cmd}: {err}"
        );
    }
    let out = Command::new(BIN).args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn logger_from_util_linux_reaches_it() {
    if Command::new("logger").arg("--version").output().is_err() {
        panic!("logger (util-linux) is required: .ci/run installs bsdutils");
    }
    let mut s = Sluice::start(&config("", EVENTS_ROUTE));
    let udp = s.addr("udp").port().to_string();
    let tcp = s.addr("tcp").port().to_string();
    let runs: [(&[&str], &str); 4] = [
        (&["-P", &udp, "-d"], "logger udp rfc5424"),
        (&["-P", &tcp, "-T"], "logger tcp"),
        (&["-P", &tcp, "-T", "--octet-count"], "logger tcp octet"),
        (&["-P", &udp, "-d", "--rfc3164"], "logger udp rfc3164"),
    ];
    for (i, (args, msg)) in runs.iter().enumerate() {
        let status = Command::new("logger")
            .args(["-n", "127.0.0.1", "-t", "tester"])
            .args(*args)
            .arg(msg)
            .status()
            .unwrap();
        assert!(status.success());
        s.wait_lines("events.ndjson", i + 1);
    }
    let lines = s.wait_lines("events.ndjson", 4);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let protocols: Vec<&str> = events
        .iter()
        .map(|e| e["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["rfc5424", "rfc5424", "rfc5424", "rfc3164"]);
    for (e, (_, msg)) in events.iter().zip(runs.iter()) {
        assert_eq!(e["message"], *msg);
        assert_eq!(e["appname"], "tester");
        assert_eq!(e["valid"], true);
    }
    assert!(s.stop().success());
}

/// Every `*.toml` under `dir`, recursively.
fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_config_in_config_and_examples_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    toml_files(&root.join("config"), &mut files);
    toml_files(&root.join("examples"), &mut files);
    for path in &files {
        let out = Command::new(BIN)
            .args(["check", "-c", path.to_str().unwrap()])
            .env("INFLUX_PASSWORD", "test")
            .env("ES_API_KEY", "test")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: Vec<_> = files
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_owned())
        .collect();
    for expected in [
        "config/sluice.toml",
        "config/container.toml",
        "config/influxdb-elasticsearch.toml",
        "config/grok-routes.toml",
        "examples/compose/sluice.toml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

#[test]
fn the_embedded_default_is_config_sluice_toml() {
    // Outside the repository (no config/sluice.toml), check resolves the embedded default.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("<embedded default>: ok"), "{text}");
    assert!(text.contains("listener udp: udp 127.0.0.1:5514"), "{text}");
    assert!(text.contains("listener tcp: tcp 127.0.0.1:5514"), "{text}");
    let embedded =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sluice.toml"))
            .unwrap();
    assert_eq!(embedded, sluice::config::EMBEDDED_DEFAULT);
}

/// `sluice parse ARGS` with `input` on stdin (run in a temp dir): one JSON
/// object per output line.
fn sluice_parse(args: &[&str], input: &[u8]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("parse")
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sluice parse {args:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn parse_prints_canonical_json_and_route_results() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sluice.toml");
    let reports = sluice_parse(
        &["-c", config.to_str().unwrap()],
        b"<14>1 2026-11-23T10:00:00.123+09:00 web01 billing 4711 GC [mdc@18060 user=\"kim\"] heap_used=1234 heap_max=4096\n",
    );
    assert_eq!(reports.len(), 1);
    let v = &reports[0];
    assert_eq!(v["timestamp"], "2026-11-23T10:00:00.123+09:00");
    assert_eq!(v["structured_data"]["mdc@18060"]["user"], "kim");
    assert_eq!(v["routes"][0]["route"], "status_metrics");
    assert_eq!(
        v["routes"][0]["line"],
        "status,app=billing,host=web01 heap_used=1234,heap_max=4096 1795395600123000000"
    );
    assert_eq!(
        v["routes"][1]["document"]["message"],
        "heap_used=1234 heap_max=4096"
    );
}

/// Frames captured from the real appenders (tests/corpus/capture.py), by sender.
fn captured(sender: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/log4j-captured.jsonl"
    ))
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["sender"] == sender)
        .map(|v| {
            let h = v["hex"].as_str().unwrap();
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn log4j_1_2_stack_traces_and_split_messages_arrive_as_one_event_each() {
    let extra = r#"
[[listeners]]
name = "log4j"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
strip_facility_prefix = true
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let datagrams = captured("log4j1 header=true facilityPrinting=true");
    assert_eq!(datagrams.len(), 17);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        udp.send_to(d, s.addr("log4j")).unwrap();
    }
    s.wait_lines("events.ndjson", 6);
    // Give a wrongly split event time to show up as a seventh line.
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_lines(&s.path("events.ndjson"));
    let mut got = messages(&lines);
    got.sort();
    let long = format!(
        "INFO  [main] com.example.Svc - long message:{}",
        (0..300).map(|i| format!(" word{i}")).collect::<String>()
    );
    let trace = "ERROR [main] com.example.Svc - Order failed id=1001\n\
java.lang.IllegalStateException: boom\n    at Log4j1Demo.fail(Log4j1Demo.java:31)\n    at Log4j1Demo.main(Log4j1Demo.java:16)\n    Suppressed: java.lang.RuntimeException: cleanup failed\n    \tat Log4j1Demo.fail(Log4j1Demo.java:32)\n    \t... 1 more\nCaused by: java.io.IOException: disk gone\n    ... 2 more";
    let mut want = vec![
        trace.to_owned(),
        "INFO  [main] com.example.Svc - Hello from log4j 1.2".to_owned(),
        "INFO  [main] com.example.Svc - caf\u{fffd} cr\u{fffd}me".to_owned(),
        long,
        "INFO  [main] com.example.Svc - two lines\nsecond line".to_owned(),
        "WARN  [main] com.example.Svc - status heap_used=1234 heap_max=4096 threads=17".to_owned(),
    ];
    want.sort();
    assert_eq!(got, want);
    let l = "listener=\"log4j\"";
    assert_eq!(
        s.metric(&format!("sluice_listener_frames_total{{{l}}}")),
        17
    );
    assert_eq!(
        s.metric(&format!(
            "sluice_listener_multiline_joined_frames_total{{{l}}}"
        )),
        11
    );
    let flushed: u64 = ["window", "next_event"]
        .iter()
        .map(|r| {
            s.metric(&format!(
                "sluice_listener_multiline_events_total{{{l},reason=\"{r}\"}}"
            ))
        })
        .sum();
    assert_eq!(flushed, 6);
    assert_eq!(
        s.metric(&format!("sluice_listener_lossy_utf8_frames_total{{{l}}}")),
        1
    );
    assert!(s.stop().success());
}

/// `sluice parse` takes frames through the listeners' own path
/// (`ingest::FramePath`): the captured log4j 1.2 stack trace, split over
/// eleven datagrams, makes the same six documents through `parse` as
/// through `run` (receive time and peer aside, which only `run` knows).
#[test]
fn parse_and_run_agree_on_a_log4j_stack_trace() {
    let extra = r#"
[[listeners]]
name = "log4j"
protocol = "udp"
listen = "127.0.0.1:0"
sender = "log4j"
strip_facility_prefix = true
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let datagrams = captured("log4j1 header=true facilityPrinting=true");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        udp.send_to(d, s.addr("log4j")).unwrap();
    }
    s.wait_lines("events.ndjson", 6);
    // Give a wrongly split event time to show up as a seventh line.
    std::thread::sleep(Duration::from_millis(300));
    let without_receipt = |mut v: serde_json::Value| {
        let o = v.as_object_mut().unwrap();
        assert!(o.remove("received_at").is_some() && o.remove("peer").is_some());
        v
    };
    let mut run: Vec<serde_json::Value> = read_lines(&s.path("events.ndjson"))
        .iter()
        .map(|l| without_receipt(serde_json::from_str(l).unwrap()))
        .collect();
    assert!(s.stop().success());

    // The same datagrams, octet-counted on stdin, through the same listener.
    let mut input = Vec::new();
    for d in &datagrams {
        input.extend_from_slice(format!("{} ", d.len()).as_bytes());
        input.extend_from_slice(d);
    }
    let config = s.path("sluice.toml");
    let reports = sluice_parse(
        &[
            "-c",
            config.to_str().unwrap(),
            "--listener",
            "log4j",
            "--framing",
            "octet",
        ],
        &input,
    );
    let mut parse: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| without_receipt(r["routes"][0]["document"].clone()))
        .collect();
    let key = |v: &serde_json::Value| v["message"].as_str().unwrap().to_owned();
    run.sort_by_key(key);
    parse.sort_by_key(key);
    println!(
        "run: {} documents, parse: {} documents",
        run.len(),
        parse.len()
    );
    assert_eq!(run.len(), 6);
    assert_eq!(parse, run);
}

#[test]
fn log4j2_tcp_without_delimiters_is_split_at_each_header() {
    // Splitting at headers is the listener's opt-in (issue #20 item 1).
    let extra = r#"
[[listeners]]
name = "log4j2"
protocol = "tcp"
listen = "127.0.0.1:0"
framing = "log4j2_undelimited"
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let stream = captured("log4j2 RFC5424 tcp newLine=false").remove(0);
    // The connection stays open: the last message has no end but the pause.
    let mut conn = TcpStream::connect(s.addr("log4j2")).unwrap();
    conn.write_all(&stream).unwrap();
    let lines = s.wait_lines("events.ndjson", 5);
    assert_eq!(
        messages(&lines),
        [
            "Hello from log4j2",
            "status heap_used=1234 heap_max=4096 threads=17",
            "Order created id=1001",
            "Order failed id=1002",
            "two lines\nsecond line",
        ]
    );
    let mdc: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(
        mdc["structured_data"]["mdc@32473"]["user"],
        "alice \"the admin\" [ops]\\x"
    );
    assert_eq!(
        s.metric("sluice_listener_undelimited_splits_total{listener=\"log4j2\"}"),
        4
    );
    drop(conn);
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

/// A real `influxd` (Debian package `influxdb`) with its own temp dirs,
/// listening on a free port on loopback.
struct Influxd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    /// Extra lines for the [http] section.
    http_extra: String,
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Influxd {
    fn start() -> Influxd {
        Influxd::start_with("")
    }

    fn start_with(http_extra: &str) -> Influxd {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Influxd {
            child: None,
            dir,
            addr: "127.0.0.1:0".parse().unwrap(),
            http_extra: http_extra.to_owned(),
        };
        d.launch();
        d
    }

    /// Start influxd on `self.addr` (port 0 the first time) and wait until
    /// it answers /ping.
    fn launch(&mut self) {
        let root = self.dir.path();
        let conf = root.join("influxd.conf");
        std::fs::write(
            &conf,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:0\"\n[meta]\n  dir = \"{r}/meta\"\n[data]\n  dir = \"{r}/data\"\n  wal-dir = \"{r}/wal\"\n  query-log-enabled = false\n[monitor]\n  store-enabled = false\n[http]\n  bind-address = \"{a}\"\n  log-enabled = false\n{h}\n[ifql]\n  enabled = false\n",
                r = root.display(),
                a = self.addr,
                h = self.http_extra
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .args(["-config", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start influxd ({e}): install the Debian package influxdb (.ci/run does)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "influxd did not come up");
            if self.addr.port() == 0 {
                let log = std::fs::read_to_string(root.join("influxd.log")).unwrap_or_default();
                if let Some(a) = log
                    .lines()
                    .find(|l| l.contains("Listening on HTTP"))
                    .and_then(|l| l.split("addr=").nth(1))
                    .and_then(|a| a.split_whitespace().next())
                {
                    self.addr = a.parse().unwrap();
                }
            } else if http(self.addr, "GET", "/ping", b"").0 == 204 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Run an InfluxQL statement; the JSON answer.
    fn query(&self, db: &str, q: &str) -> serde_json::Value {
        let (status, body) = http(
            self.addr,
            "GET",
            &format!("/query?db={}&q={}", url_encode(db), url_encode(q)),
            b"",
        );
        assert_eq!(status, 200, "{q}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `SELECT * FROM measurement` as rows of (column → value), waiting up to
    /// 10 s for at least `n` rows.
    fn rows(
        &self,
        db: &str,
        measurement: &str,
        n: usize,
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.query(db, &format!("SELECT * FROM \"{measurement}\""));
            let series = &v["results"][0]["series"][0];
            let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                match series["values"].as_array() {
                    Some(values) => {
                        let cols: Vec<&str> = series["columns"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|c| c.as_str().unwrap())
                            .collect();
                        values
                            .iter()
                            .map(|row| {
                                cols.iter()
                                    .zip(row.as_array().unwrap())
                                    .filter(|(_, v)| !v.is_null())
                                    .map(|(c, v)| ((*c).to_owned(), v.clone()))
                                    .collect()
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
            if rows.len() >= n || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A minimal HTTP/1.1 request; (status, body). Status 0 if unreachable.
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    // Chunked answers: good enough to take the JSON out of.
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = body
            .lines()
            .filter(|l| !l.chars().all(|c| c.is_ascii_hexdigit()) || l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
    }
    (status, body.trim().to_owned())
}

/// Status lines (`status seq=N`) as points in measurement "status".
const STATUS_ROUTE: &str = r#"
[[routes]]
name = "status"
sink = "influx"
final = true
pattern = 'status seq='
[routes.metric]
measurement = "status"
key_values = true
"#;

fn influx_config(influx: &Influxd, db: &str, routes: &str) -> String {
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["{}"]
database = "{db}"
linger_ms = 50
batch_max_events = 100
{routes}
[default_route]
sink = "events"
document = {{}}
"#,
            influx.url()
        ),
    )
}

/// Points sent over UDP and TCP through a metric route are read back from a
/// real InfluxDB exactly: measurement, tags (with spaces and `=`), field
/// types and values (a string with quotes, commas and a newline), times.
#[test]
fn influxdb_stores_exactly_what_the_route_wrote() {
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
    wait_while(10, || s.metric(sent) < 2);
    assert_eq!(s.metric(sent), 2);
    assert!(s.stop().success());
}

/// influxd is stopped for 30 s in the middle of a stream and restarted:
/// afterwards every point sent during the outage is in the database, each
/// exactly once.
#[test]
fn influxdb_outage_of_30_seconds_loses_nothing() {
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
    let influx = Influxd::start();
    let config = config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["{}"]
database = "made by sluice"
retention_policy = "one_year"
retention_duration = "52w"
create_database = true
precision = "ms"
linger_ms = 50
[[routes]]
name = "jobs"
sink = "influx"
final = true
pattern = 'done count=(?P<count>\d+)'
[routes.metric]
measurement = "jobs"
fields = {{ count = "uint" }}
[default_route]
sink = "events"
document = {{}}
"#,
            influx.url()
        ),
    );
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
    let influx = Influxd::start_with("  auth-enabled = true");
    // The first user may be created without credentials.
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
    let admin = |q: &str| {
        let (status, body) = http(
            influx.addr,
            "POST",
            &format!("/query?u=admin&p=adm1n&q={}", url_encode(q)),
            b"",
        );
        assert_eq!(status, 200, "{q}: {body}");
        body
    };
    admin("CREATE DATABASE secured");
    let config = config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["{}"]
database = "secured"
username = "writer"
password = "${{SLUICE_TEST_INFLUX_PASSWORD}}"
linger_ms = 50
{STATUS_ROUTE}
[default_route]
sink = "events"
document = {{}}
"#,
            influx.url()
        ),
    );
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
    assert_eq!(s.health()["status"], "ok");
    assert!(s.stop().success());
}

// ------------------------------------------------------------ Elasticsearch

fn es_config(nodes: &[String], extra_sink: &str, routes: &str) -> String {
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

/// Documents arrive in the index of their day (UTC), in the ECS shape by
/// default and in Flume's shape where a route asks for it.
#[test]
fn elasticsearch_documents_arrive_with_index_names_and_shapes() {
    let es = EsServer::start();
    let routes = r#"
[[routes]]
name = "ecs"
sink = "es"
appname = "billing"
document = {}
[[routes]]
name = "legacy"
sink = "es"
appname = "orders"
document = { format = "flume" }
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    tcp_send(
        s.addr("tcp"),
        b"<134>1 2026-11-23T23:30:00.123+01:00 web01 billing 4711 GC - heap_used=1234\n<166>1 2026-11-24T10:00:00Z web02 orders - - - Order created id=1001\n",
    );
    wait_while(10, || es.total() < 2);
    // 23:30+01:00 is 22:30 UTC on the 23rd.
    let ecs = es.docs("syslog-2026.11.23");
    assert_eq!(ecs.len(), 1, "{ecs:?}");
    let doc = ecs.values().next().unwrap();
    assert_eq!(doc["@timestamp"], "2026-11-23T22:30:00.123Z");
    assert_eq!(doc["log"]["syslog"]["facility"]["name"], "local0");
    assert_eq!(doc["host"]["hostname"], "web01");
    assert_eq!(doc["process"]["pid"], 4711);
    assert_eq!(doc["message"], "heap_used=1234");
    let flume = es.docs("syslog-2026.11.24");
    let doc = flume.values().next().unwrap();
    // Flume's SyslogUtils keeps everything after the hostname as the body:
    // RFC 5424's app, procid, msgid and SD stay in @message (#26 item 1).
    assert_eq!(doc["@message"], "orders - - - Order created id=1001");
    assert_eq!(doc["@source_host"], "web02");
    assert_eq!(doc["@fields"]["Facility"], "20");
    // Every _bulk request the node answered is one observation of the
    // sink's request latency histogram.
    let requests = es.state.lock().unwrap().requests as u64;
    assert!(requests >= 1);
    assert_eq!(
        s.metric("sluice_sink_request_duration_seconds_count{sink=\"es\"}"),
        requests
    );
    // The answer is asked to keep only what the sink reads.
    assert_eq!(
        es.state.lock().unwrap().filter_path.as_deref(),
        Some("errors,error,status,items.*.status,items.*.error")
    );
    assert!(s.stop().success());
}

/// With 20% of items answered 429, every document is stored exactly once;
/// documents with a mapping error (400) are dead-lettered with the reason.
#[test]
fn elasticsearch_429_items_are_retried_and_400_items_dead_lettered() {
    let es = EsServer::start();
    es.knobs(|k| {
        k.reject_429_percent = 20;
        k.mapping_error_marker = Some("BROKEN".into());
    });
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let mut frames = String::new();
    for i in 0..500 {
        let text = if i % 100 == 7 { "BROKEN" } else { "ok" };
        frames.push_str(&format!(
            "<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i} {text}\n"
        ));
    }
    tcp_send(s.addr("tcp"), frames.as_bytes());
    wait_while(20, || es.total() < 495);
    let docs = es.docs("syslog-2026.11.24");
    let mut ns: Vec<u64> = docs
        .values()
        .map(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .split(['=', ' '])
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    ns.sort_unstable();
    let want: Vec<u64> = (0..500).filter(|i| i % 100 != 7).collect();
    assert_eq!(ns, want, "every good document exactly once");
    // About a fifth of the items really were answered 429 and sent again.
    let answered_429 = es.state.lock().unwrap().answered_429;
    assert!((50..=150).contains(&answered_429), "{answered_429}");
    let sample = |r: &str| {
        format!("sluice_sink_failed_records_total{{sink=\"es\",route=\"all\",reason=\"{r}\"}}")
    };
    wait_while(5, || s.metric(&sample("rejected")) < 5);
    assert_eq!(s.metric(&sample("rejected")), 5);
    assert_eq!(s.metric(&sample("gave_up")), 0);
    let dead = read_lines(&s.path("sluice-data/dead-letter/es.ndjson"));
    assert_eq!(dead.len(), 5);
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .contains("mapper_parsing_exception"),
            "{v}"
        );
        assert!(
            v["document"]["message"]
                .as_str()
                .unwrap()
                .contains("BROKEN")
        );
        assert_eq!(v["index"], "syslog-2026.11.24");
    }
    assert!(s.stop().success());
}

/// A dead node is skipped and its traffic goes to the others; a restart of
/// the server mid-stream loses nothing.
#[test]
fn elasticsearch_dead_node_is_skipped_and_a_restart_loses_nothing() {
    let mut es = EsServer::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(
        &[format!("http://{dead}"), es.url()],
        "",
        routes,
    ));
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    let mut send = |range: std::ops::Range<usize>| {
        for i in range {
            conn.write_all(
                format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n").as_bytes(),
            )
            .unwrap();
        }
    };
    send(0..100);
    wait_while(10, || es.total() < 100);
    assert_eq!(
        es.total(),
        100,
        "the live node took the dead node's traffic"
    );
    es.stop();
    send(100..200);
    std::thread::sleep(Duration::from_secs(2));
    es.launch();
    send(200..300);
    wait_while(30, || es.total() < 300);
    assert_eq!(
        es.total(),
        300,
        "nothing lost across the restart, nothing twice"
    );
    drop(conn);
    assert!(s.stop().success());
}

/// Whole requests answered 503, and answers slower than the sink's timeout,
/// are retried until the documents are stored, each once.
#[test]
fn elasticsearch_whole_request_failures_and_slow_answers_are_retried() {
    let es = EsServer::start();
    es.knobs(|k| {
        k.fail_requests = 3;
        k.delay = Duration::from_millis(1500);
    });
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    // timeout_secs = 1 < the 1.5 s delay: the first answers time out.
    let config = es_config(&[es.url()], "", routes).replace("timeout_secs = 5", "timeout_secs = 1");
    let mut s = Sluice::start(&config);
    let frames: String = (0..20)
        .map(|i| format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n"))
        .collect();
    tcp_send(s.addr("tcp"), frames.as_bytes());
    std::thread::sleep(Duration::from_secs(3));
    es.knobs(|k| k.delay = Duration::ZERO);
    wait_while(30, || es.total() < 20);
    assert_eq!(es.total(), 20);
    assert!(
        es.state.lock().unwrap().requests >= 4,
        "3 failures, then success"
    );
    assert_eq!(
        s.metric("sluice_sink_failed_records_total{sink=\"es\",route=\"all\",reason=\"rejected\"}"),
        0
    );
    assert!(s.stop().success());
}

/// The Elasticsearch sink speaks HTTPS to a node whose certificate is
/// signed by a private CA given in `ca_file`; without it, it refuses the
/// node (and holds the documents).
#[test]
fn elasticsearch_over_https_with_a_custom_ca() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A private CA and a certificate for localhost signed by it.
    let ca = tls_listener::ca("private CA");
    let (leaf, leaf_key) = tls_listener::leaf(&["localhost"], &ca);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.0.pem()).unwrap();

    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let stored = Arc::new(AtomicUsize::new(0));
    let counter = stored.clone();
    // A minimal HTTPS _bulk node: every create is answered 201.
    runtime.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, mut body) = loop {
                    let Ok(n) = tls.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..p]).to_lowercase(), buf[p + 4..].to_vec());
                    }
                };
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                    .unwrap_or(0);
                while body.len() < len {
                    let Ok(n) = tls.read(&mut chunk).await else { return };
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let mut text = String::new();
                if head.contains("content-encoding: gzip") {
                    let _ = flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text);
                } else {
                    text = String::from_utf8_lossy(&body).into_owned();
                }
                let n = text.lines().count() / 2;
                counter.fetch_add(n, Ordering::SeqCst);
                let items: Vec<String> = (0..n).map(|_| r#"{"create":{"status":201}}"#.to_owned()).collect();
                let answer = format!(r#"{{"took":1,"errors":false,"items":[{}]}}"#, items.join(","));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });

    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let url = format!("https://localhost:{port}");
    // Without the CA: the certificate is not trusted, nothing is stored.
    let config_without = es_config(std::slice::from_ref(&url), "", routes)
        .replace("shutdown_timeout_secs = 10", "shutdown_timeout_secs = 1");
    let mut s = Sluice::start(&config_without);
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - untrusted\n",
    );
    wait_while(10, || s.health()["status"] != "degraded");
    assert_eq!(s.health()["status"], "degraded");
    assert_eq!(stored.load(Ordering::SeqCst), 0);
    // The document the sink still held at the shutdown deadline is
    // reported lost: exit code 1.
    assert_eq!(s.stop().code(), Some(1));
    // With it: stored.
    let extra = format!("ca_file = \"{}\"", ca_file.display());
    let mut s = Sluice::start(&es_config(&[url], &extra, routes));
    tcp_send(s.addr("tcp"), b"<14>1 2026-11-24T10:00:00Z h app - - - trusted\n<14>1 2026-11-24T10:00:01Z h app - - - again\n");
    wait_while(10, || stored.load(Ordering::SeqCst) < 2);
    assert_eq!(stored.load(Ordering::SeqCst), 2);
    assert!(s.stop().success());
}

/// A node that stores a batch and then drops the connection before
/// answering: the resend finds the documents (409 on create) and counts
/// them as stored, none twice. The API key is sent.
#[test]
fn elasticsearch_dropped_connection_after_processing_is_not_a_duplicate() {
    let es = EsServer::start();
    es.knobs(|k| k.drop_after_processing = 1);
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(
        &[es.url()],
        "api_key = \"a2V5OnNlY3JldA==\"",
        routes,
    ));
    let frames: String = (0..10)
        .map(|i| format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n"))
        .collect();
    tcp_send(s.addr("tcp"), frames.as_bytes());
    let sent = "sluice_sink_records_sent_total{sink=\"es\",route=\"all\"}";
    wait_while(15, || s.metric(sent) < 10);
    assert_eq!(s.metric(sent), 10);
    assert_eq!(es.total(), 10);
    assert!(
        es.state.lock().unwrap().requests >= 2,
        "the batch was sent again"
    );
    assert_eq!(
        s.metric("sluice_sink_failed_records_total{sink=\"es\",route=\"all\",reason=\"rejected\"}"),
        0,
        "the 409s of the resend are not failures"
    );
    assert_eq!(
        es.state.lock().unwrap().authorization.as_deref(),
        Some("ApiKey a2V5OnNlY3JldA==")
    );
    assert!(s.stop().success());
}

/// A service that logs the same line several times within its timestamp's
/// precision sends byte-identical frames, which one TCP read (and one UDP
/// receive) takes together: each is its own document, none is taken for a
/// resend of another and dropped as "already stored" (409).
#[test]
fn identical_frames_received_together_are_each_stored() {
    let es = EsServer::start();
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let line = "<14>Nov 24 10:00:00 h app: heartbeat ok\n";
    tcp_send(s.addr("tcp"), line.repeat(5).as_bytes());
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        udp.send_to(line.trim_end().as_bytes(), s.addr("udp"))
            .unwrap();
    }
    let sent = "sluice_sink_records_sent_total{sink=\"es\",route=\"all\"}";
    wait_while(15, || s.metric(sent) < 8);
    assert_eq!(s.metric(sent), 8);
    assert_eq!(es.total(), 8, "identical frames were stored once");
    assert!(s.stop().success());
}

/// The stand-in enforces the `_bulk` rules the sink must follow, so a sink
/// that broke them would fail the tests above.
#[test]
fn es_test_server_enforces_the_bulk_protocol() {
    let es = EsServer::start();
    let post = |content_type: &str, body: &str| -> (u16, serde_json::Value) {
        let mut s = TcpStream::connect(es.addr).unwrap();
        write!(
            s,
            "POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
        let json = raw.split_once("\r\n\r\n").unwrap().1;
        (status, serde_json::from_str(json).unwrap_or_default())
    };
    let good = "{\"create\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":1}\n";
    let (status, v) = post("text/plain", good);
    assert_eq!(status, 406, "{v}");
    let (status, v) = post("application/x-ndjson", good.trim_end());
    assert_eq!(status, 400);
    assert_eq!(
        v["error"]["reason"],
        "The bulk request must be terminated by a newline [\\n]"
    );
    let (status, v) = post("application/x-ndjson", good);
    assert_eq!(status, 200);
    assert_eq!(v["items"][0]["create"]["status"], 201);
    // The same create again: a per-item 409, the request still 200.
    let (status, v) = post("application/x-ndjson", good);
    assert_eq!(status, 200);
    assert_eq!(v["errors"], true);
    assert_eq!(v["items"][0]["create"]["status"], 409);
    assert_eq!(
        v["items"][0]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
}

mod blaster_e2e;
mod engines;
mod example_files;
mod fault_admin;
mod fault_disk;
mod fault_sinks;
mod fix_admin;
mod fix_sinks;
mod fix_spill;
mod fixlisten;
mod flume_shape;
mod framing;
mod lenient_decode;
mod log4j_e2e;
mod migrator;
mod tls_listener;

/// A UDP listener with a tiny receive buffer is overrun by a burst: the
/// datagrams the kernel dropped show in sluice's own counter
/// (SO_RXQ_OVFL), and every datagram sent is either an event or counted.
#[test]
fn udp_kernel_receive_buffer_drops_are_counted() {
    let extra = r#"
[[listeners]]
name = "small"
protocol = "udp"
listen = "127.0.0.1:0"
receive_buffer_bytes = 4096
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = s.addr("small");
    let padding = "x".repeat(900);
    for i in 0..2000 {
        udp.send_to(
            format!("<14>1 - h app - - - burst {i} {padding}").as_bytes(),
            to,
        )
        .unwrap();
    }
    // The kernel's count travels with the next datagram received.
    std::thread::sleep(Duration::from_millis(300));
    udp.send_to(b"<14>1 - h app - - - last", to).unwrap();
    let frames = || s.metric("sluice_listener_frames_total{listener=\"small\"}");
    let drops = || s.metric("sluice_listener_kernel_drops_total{listener=\"small\"}");
    wait_while(10, || frames() + drops() < 2001);
    let (f, d) = (frames(), drops());
    assert_eq!(f + d, 2001, "frames {f} + kernel drops {d}");
    assert!(d > 0, "the burst did not overrun the buffer");
    let lines = s.wait_lines("events.ndjson", f as usize);
    assert_eq!(lines.len() as u64, f);
    assert!(s.stop().success());
}

/// `sockets = 4`: four UDP sockets share the port (SO_REUSEPORT), each
/// read by its own task. Every datagram of 16 senders arrives, and each
/// sender's datagrams keep their order (the kernel keeps a sender on one
/// socket).
#[test]
fn udp_listener_with_several_reuseport_sockets_loses_nothing() {
    let extra = r#"
[[listeners]]
name = "spread"
protocol = "udp"
listen = "127.0.0.1:0"
sockets = 4
receive_buffer_bytes = 1048576
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let to = s.addr("spread");
    // The four sockets, as the kernel lists them (local port in hex).
    let port = format!(":{:04X} ", to.port());
    let udp_table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let bound = udp_table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| format!("{a} ").ends_with(&port))
        })
        .count();
    assert_eq!(bound, 4, "{udp_table}");
    // The buffer the kernel granted: the request doubled, unless
    // net.core.rmem_max caps it and sluice may not force it (not root).
    let rmem_max: u64 = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let expected = if root { 1048576 } else { rmem_max.min(1048576) } * 2;
    assert_eq!(
        s.metric("sluice_listener_receive_buffer_bytes{listener=\"spread\"}"),
        expected
    );
    let senders: Vec<UdpSocket> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for i in 0..250 {
        for (k, udp) in senders.iter().enumerate() {
            udp.send_to(
                format!("<14>1 - h app - - - sender={k} n={i}").as_bytes(),
                to,
            )
            .unwrap();
        }
        if i % 25 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let lines = s.wait_lines("events.ndjson", 4000);
    assert_eq!(lines.len(), 4000);
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"spread\"}"),
        4000
    );
    let mut next = [0u32; 16];
    for line in &lines {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = doc["message"].as_str().unwrap();
        let mut parts = message.split(' ');
        let k: usize = parts
            .next()
            .unwrap()
            .trim_start_matches("sender=")
            .parse()
            .unwrap();
        let n: u32 = parts
            .next()
            .unwrap()
            .trim_start_matches("n=")
            .parse()
            .unwrap();
        assert_eq!(n, next[k], "sender {k} out of order");
        next[k] += 1;
    }
    assert!(s.stop().success());
}

/// A known sequence of good, oversized, garbage and denied inputs on TCP
/// and UDP, and the exact counters it leaves in /metrics.
#[test]
fn metrics_count_good_oversized_garbage_and_denied_inputs_exactly() {
    let extra = r#"
[[listeners]]
name = "t"
protocol = "tcp"
listen = "127.0.0.1:0"
max_frame_bytes = 100
[[listeners]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:0"
max_frame_bytes = 100
[[listeners]]
name = "t_closed"
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["192.0.2.0/24", "2001:db8::/32"]
[[listeners]]
name = "u_closed"
protocol = "udp"
listen = "127.0.0.1:0"
allow = ["192.0.2.7"]
"#;
    let mut s = Sluice::start(&config(extra, EVENTS_ROUTE));
    let good = "<14>1 - h app - - - good\n";
    let oversized = format!("<14>1 - h app - - - {}\n", "x".repeat(200));
    let garbage = "\u{1}\u{2} not syslog at all\n";
    let mut t = TcpStream::connect(s.addr("t")).unwrap();
    for frame in [good, good, &oversized, garbage, good] {
        t.write_all(frame.as_bytes()).unwrap();
    }
    t.flush().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [good, &oversized, garbage, good] {
        udp.send_to(d.trim_end().as_bytes(), s.addr("u")).unwrap();
    }
    for d in [good, good, good] {
        udp.send_to(d.as_bytes(), s.addr("u_closed")).unwrap();
    }
    // Denied at accept: the connection is closed before a byte is read.
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr("t_closed")).unwrap();
        let _ = c.write_all(good.as_bytes());
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read(&mut [0u8; 8]).unwrap_or(0), 0, "closed");
    }
    // TCP: 3 good + garbage; UDP: 2 good + garbage.
    let lines = s.wait_lines("events.ndjson", 7);
    wait_while(5, || {
        s.metric("sluice_listener_denied_frames_total{listener=\"u_closed\"}") < 3
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(read_lines(&s.path("events.ndjson")).len(), 7, "{lines:?}");

    let m = |name: &str, labels: &str| s.metric(&format!("{name}{{{labels}}}"));
    for l in ["t", "u"] {
        let listener = format!("listener=\"{l}\"");
        assert_eq!(
            m("sluice_listener_frames_total", &listener),
            if l == "t" { 4 } else { 3 },
            "{l}"
        );
        assert_eq!(
            m("sluice_listener_invalid_frames_total", &listener),
            1,
            "{l}"
        );
        assert_eq!(
            m(
                "sluice_listener_skipped_frames_total",
                &format!("{listener},reason=\"oversized\"")
            ),
            1,
            "{l}"
        );
    }
    assert_eq!(
        m(
            "sluice_listener_connections_accepted_total",
            "listener=\"t\""
        ),
        1
    );
    assert_eq!(
        m(
            "sluice_listener_connections_rejected_total",
            "listener=\"t_closed\",reason=\"not_allowed\""
        ),
        2
    );
    assert_eq!(
        m(
            "sluice_listener_connections_accepted_total",
            "listener=\"t_closed\""
        ),
        0
    );
    assert_eq!(
        m("sluice_listener_frames_total", "listener=\"t_closed\""),
        0
    );
    assert_eq!(
        m(
            "sluice_listener_denied_frames_total",
            "listener=\"u_closed\""
        ),
        3
    );
    assert_eq!(
        m("sluice_listener_frames_total", "listener=\"u_closed\""),
        0
    );
    assert_eq!(
        m("sluice_router_matched_events_total", "route=\"events\""),
        7
    );
    assert_eq!(
        m("sluice_queue_pushed_records_total", "route=\"events\""),
        7
    );
    drop(t);
    assert!(s.stop().success());
    assert_eq!(read_lines(&s.path("events.ndjson")).len(), 7);
}

/// /health: 200 "ok"; 200 "degraded" while a sink fails for less than
/// `unhealthy_after_secs`; 503 "failing" naming the sink after that; back
/// to 200 "ok" when the sink recovers, with nothing lost.
#[test]
fn health_turns_503_when_a_sink_fails_beyond_its_deadline() {
    let es = EsServer::start();
    let text = es_config(&[es.url()], "", EVENTS_TO_ES).replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\nunhealthy_after_secs = 1",
    );
    let mut s = Sluice::start(&text);
    let (code, h) = s.health_status();
    assert_eq!((code, h["status"].as_str()), (200, Some("ok")), "{h}");
    assert!(
        h["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["up"] == true)
    );
    es.knobs(|k| k.fail_requests = 1_000_000);
    tcp_send(s.addr("tcp"), &numbered_frames(10));
    wait_while(10, || s.health()["status"] != "degraded");
    assert_eq!(s.health()["status"], "degraded");
    wait_while(10, || s.health_status().0 != 503);
    let (code, h) = s.health_status();
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "failing");
    let reason = h["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("sink es (route to_es) failing for "),
        "{reason}"
    );
    es.knobs(|k| k.fail_requests = 0);
    wait_while(30, || {
        s.health_status().0 != 200 || s.health()["status"] != "ok"
    });
    assert_eq!(s.health()["status"], "ok");
    wait_while(10, || es.total() < 10);
    assert_eq!(es.total(), 10);
    assert!(s.stop().success());
}

const EVENTS_TO_ES: &str = r#"
[[routes]]
name = "to_es"
sink = "es"
document = {}
"#;

/// A flood of 200 connections beyond max_connections is refused and
/// counted while two established senders keep streaming; the refusal is
/// logged once (rate-limited), as JSON with --log-format json.
#[test]
fn a_connection_flood_is_refused_counted_and_logged_once() {
    let extra = r#"
[[listeners]]
name = "limited"
protocol = "tcp"
listen = "127.0.0.1:0"
max_connections = 2
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), config(extra, EVENTS_ROUTE)).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "run", "-c", "sluice.toml"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let s = Sluice {
        child: Some(child),
        dir,
        ready,
    };
    let addr = s.addr("limited");
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    wait_while(5, || {
        s.metric("sluice_listener_connections_open{listener=\"limited\"}") < 2
    });
    for i in 0..200 {
        a.write_all(format!("<14>1 - h app - - - a {i}\n").as_bytes())
            .unwrap();
        b.write_all(format!("<14>1 - h app - - - b {i}\n").as_bytes())
            .unwrap();
        let mut flood = TcpStream::connect(addr).unwrap();
        flood
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(flood.read(&mut [0u8; 1]).unwrap_or(0), 0, "refused");
    }
    let lines = s.wait_lines("events.ndjson", 400);
    assert_eq!(lines.len(), 400);
    assert_eq!(
        s.metric("sluice_listener_connections_rejected_total{listener=\"limited\",reason=\"max_connections\"}"),
        200
    );
    let mut s = s;
    drop((a, b));
    assert!(s.stop().success());
    let log = std::fs::read_to_string(s.path("stderr.log")).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        entries
            .iter()
            .all(|e| e["level"].is_string() && e["timestamp"].is_string())
    );
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e["message"] == "connection refused: max_connections reached")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["listener"], "limited");
}

fn reload_config(routes: &str) -> String {
    config(
        "",
        &format!("{routes}\n[default_route]\nsink = \"metrics\"\ndocument = {{}}\n"),
    )
}

/// While a TCP sender streams, SIGHUP swaps in a config that changes a
/// route's pattern and adds a route: nothing is lost, the connection stays
/// up, and from one message on every message follows the new routes. A
/// broken config on reload is refused (POST /reload names file, line and
/// key) and the running one keeps working.
#[test]
fn reload_swaps_routes_under_a_streaming_sender_and_refuses_a_broken_config() {
    let v1 = reload_config(
        r#"
[[routes]]
name = "old"
sink = "events"
pattern = 'msg \d+'
document = {}
"#,
    );
    let v2 = reload_config(
        r#"
[[routes]]
name = "old"
sink = "events"
pattern = 'msg \d*[02468]$'
document = {}
[[routes]]
name = "added"
sink = "events"
pattern = 'msg'
document = {}
"#,
    );
    let mut s = Sluice::start(&v1);
    let pid = s.child.as_ref().unwrap().id().to_string();
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    let total = 3000;
    let mut reloaded_at = None;
    for i in 0..total {
        conn.write_all(format!("<14>1 - h app - - - msg {i}\n").as_bytes())
            .unwrap();
        if i == 1000 {
            std::fs::write(s.path("sluice.toml"), &v2).unwrap();
            assert!(
                Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            reloaded_at = Some(i);
        }
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    conn.flush().unwrap();
    let lines_wanted =
        |lines: &[String]| lines.iter().filter(|l| l.contains("\"msg 2999\"")).count() >= 1;
    wait_while(20, || !lines_wanted(&read_lines(&s.path("events.ndjson"))));
    std::thread::sleep(Duration::from_millis(300));
    let mut routes_of: Vec<Vec<String>> = vec![Vec::new(); total];
    for l in read_lines(&s.path("events.ndjson")) {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let i: usize = v["message"].as_str().unwrap()[4..].parse().unwrap();
        routes_of[i].push(v["route"].as_str().unwrap().to_owned());
    }
    // Nothing lost: every message reached a route.
    let missing: Vec<usize> = (0..total).filter(|&i| routes_of[i].is_empty()).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    // One cut: before it only "old"; from it on "added", and "old" for evens.
    let cut = (0..total)
        .find(|&i| routes_of[i].contains(&"added".to_owned()))
        .expect("the new route never matched");
    assert!(cut > 0 && cut < total, "cut at {cut}");
    assert!(
        reloaded_at.is_some_and(|r| cut > r - 1),
        "cut {cut} before the SIGHUP"
    );
    for (i, routes) in routes_of.iter().enumerate() {
        let mut routes = routes.clone();
        routes.sort();
        let want: Vec<&str> = if i < cut {
            vec!["old"]
        } else if i % 2 == 0 {
            vec!["added", "old"]
        } else {
            vec!["added"]
        };
        assert_eq!(routes, want, "message {i} (cut at {cut})");
    }
    assert_eq!(
        s.metric("sluice_listener_connections_accepted_total{listener=\"tcp\"}"),
        1,
        "the sender's connection was kept"
    );

    // A broken config is refused, with file, line and key; v2 keeps running.
    std::fs::write(
        s.path("sluice.toml"),
        v2.replace(
            "sink = \"events\"\npattern = 'msg'",
            "sink = \"nowhere\"\npattern = 'msg'",
        ),
    )
    .unwrap();
    let admin: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    let (status, body) = http(admin, "POST", "/reload", b"");
    assert_eq!(status, 400, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["reloaded"], false);
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("sluice.toml:")
            && error.contains("routes[1].sink")
            && error.contains("nowhere"),
        "{error}"
    );
    conn.write_all(b"<14>1 - h app - - - msg 4\n").unwrap();
    conn.flush().unwrap();
    let msg4 = || {
        read_lines(&s.path("events.ndjson"))
            .into_iter()
            .filter(|l| l.contains("\"msg 4\""))
            .collect::<Vec<String>>()
    };
    wait_while(10, || msg4().len() < 3);
    std::thread::sleep(Duration::from_millis(200));
    let last = msg4();
    assert_eq!(
        last.len(),
        3,
        "msg 4 once under v1 and twice more under v2: {last:?}"
    );
    // And a valid reload through the admin port answers what changed.
    std::fs::write(s.path("sluice.toml"), &v1).unwrap();
    let (status, body) = http(admin, "POST", "/reload", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("routes: old"), "{body}");
    drop(conn);
    assert!(s.stop().success());
}

/// A reload rebinds only the listener whose address changed: the moved UDP
/// listener answers on its new address, a removed one stops, and the TCP
/// sender's connection on the unchanged listener carries on.
#[test]
fn reload_rebinds_only_listeners_whose_address_changed() {
    let extra = |addr: &str| {
        format!(
            "[[listeners]]\nname = \"moving\"\nprotocol = \"udp\"\nlisten = \"{addr}\"\n[[listeners]]\nname = \"leaving\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n"
        )
    };
    let v1 = config(&extra("127.0.0.1:0"), EVENTS_ROUTE);
    let mut s = Sluice::start(&v1);
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.write_all(b"<14>1 - h app - - - before\n").unwrap();
    s.wait_lines("events.ndjson", 1);
    let v2 = config(&extra("127.0.0.2:0"), EVENTS_ROUTE).replace(
        "[[listeners]]\nname = \"leaving\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n",
        "",
    );
    std::fs::write(s.path("sluice.toml"), &v2).unwrap();
    let admin: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    let (status, body) = http(admin, "POST", "/reload", b"");
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    let summary = summary["summary"].as_str().unwrap();
    assert!(summary.contains("listener leaving stopped"), "{summary}");
    assert!(!summary.contains("listener tcp"), "{summary}");
    let moved: SocketAddr = summary
        .split("listener moving listening on udp ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap_or_else(|| panic!("{summary}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(moved.ip().to_string(), "127.0.0.2");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<14>1 - h app - - - to the moved listener", moved)
        .unwrap();
    conn.write_all(b"<14>1 - h app - - - after\n").unwrap();
    let lines = s.wait_lines("events.ndjson", 3);
    let mut got = messages(&lines);
    got.sort();
    assert_eq!(got, ["after", "before", "to the moved listener"]);
    assert_eq!(
        s.metric("sluice_listener_connections_accepted_total{listener=\"tcp\"}"),
        1
    );
    let health = s.health();
    let names: Vec<&str> = health["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["listener"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"leaving"), "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    drop(conn);
    assert!(s.stop().success());
}

/// `block` with `block_timeout_ms` against a stalled sink: the TCP reader
/// waits for room at most that long per record, then drops and counts it;
/// when the sink recovers, what was queued arrives. Sent = delivered +
/// counted drops, exactly.
#[test]
fn block_with_a_timeout_drops_and_counts_when_the_sink_stays_stalled() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "to_es"
sink = "es"
document = {}
[routes.queue]
max_events = 10
when_full = "block"
block_timeout_ms = 20
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    tcp_send(s.addr("tcp"), &numbered_frames(100));
    let dropped =
        || s.metric("sluice_queue_dropped_records_total{route=\"to_es\",reason=\"block_timeout\"}");
    // Every frame read and its push settled (queued, or dropped after the
    // wait): the last frame is counted as read before its push returns.
    let pushed = || s.metric("sluice_queue_pushed_records_total{route=\"to_es\"}");
    wait_while(20, || pushed() + dropped() < 100);
    assert_eq!(
        s.metric("sluice_listener_frames_total{listener=\"tcp\"}"),
        100
    );
    let d = dropped();
    assert_eq!(pushed() + d, 100);
    assert!(d > 0 && d < 100, "dropped {d}");
    es.knobs(|k| k.fail_requests = 0);
    wait_while(30, || (es.total() as u64) < 100 - d);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(es.total() as u64 + d, 100, "delivered + dropped");
    assert_eq!(
        s.metric("sluice_queue_pushed_records_total{route=\"to_es\"}") + d,
        100
    );
    assert!(s.stop().success());
}

/// `sluice spill verify DIR` reads each route's spill log without starting
/// the service: pending records per route, and a torn tail reported (exit 1)
/// but left in place for the service to truncate.
#[test]
fn spill_verify_reports_pending_records_and_corruption() {
    use sluice::testing::{Fsync, SpillLog, SpillOptions};
    let data = tempfile::tempdir().unwrap();
    let options = SpillOptions {
        segment_bytes: 1024,
        max_bytes: 1 << 20,
        fsync: Fsync::EveryBatch,
    };
    let mut scratch = Vec::new();
    for (route, n) in [("errors", 3u64), ("events", 120)] {
        let (mut log, _) = SpillLog::open(&data.path().join(route), options.clone()).unwrap();
        for i in 0..n {
            let r = sluice::route::Record {
                payload: format!("{{\"message\":\"m{i}\"}}"),
                time_nanos: i as i64,
                key: None,
            };
            log.append(&[r], &mut scratch).unwrap();
        }
        if route == "events" {
            let mut read = Vec::new();
            log.read_batch(20, &mut read).unwrap();
            log.ack().unwrap();
        }
    }
    let verify = || {
        let out = Command::new(BIN)
            .args(["spill", "verify", data.path().to_str().unwrap()])
            .output()
            .unwrap();
        let reports: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code(), reports)
    };
    let (code, reports) = verify();
    assert_eq!(code, Some(0));
    assert_eq!(reports[0]["route"], "errors");
    assert_eq!(reports[0]["pending_records"], 3);
    assert_eq!(reports[1]["route"], "events");
    assert_eq!(reports[1]["pending_records"], 100);
    assert!(reports[1]["segments"].as_u64().unwrap() > 1);
    // A crash mid-write leaves a torn record at the end.
    let errors = data.path().join("errors");
    let seg = std::fs::read_dir(&errors)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[9, 0, 0, 0, 1, 2])
        .unwrap();
    let (code, reports) = verify();
    assert_eq!(code, Some(1));
    assert_eq!(reports[0]["pending_records"], 3);
    assert_eq!(reports[0]["corrupt"][0][1], len);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        len + 6,
        "verify changes nothing"
    );
}

/// Messages of the documents the `_bulk` stand-in stored, by number
/// ("message N"), sorted.
fn stored_numbers(es: &EsServer) -> Vec<usize> {
    let state = es.state.lock().unwrap();
    let mut n: Vec<usize> = state
        .docs
        .values()
        .filter_map(|d| {
            d["message"]
                .as_str()?
                .strip_prefix("message ")?
                .parse()
                .ok()
        })
        .collect();
    n.sort();
    n
}

/// A durable route (fsync after each batch of frames read), `kill -9` in
/// the middle of a load, garbage appended to
/// the log's tail, restart: every record the log held before the kill is
/// delivered (in order, as a prefix of what was sent), the torn tail is
/// truncated and counted, and the restarted sluice carries on.
#[test]
fn durable_route_survives_kill_9_and_a_torn_tail() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "durable"
sink = "es"
document = {}
[routes.queue]
durable = true
fsync = "batch"
spill_segment_bytes = 65536
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let addr = s.addr("tcp");
    let sender = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        for i in 0..20_000 {
            if c.write_all(format!("<14>1 - h app - - - message {i}\n").as_bytes())
                .is_err()
            {
                return i;
            }
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        20_000
    });
    let spilled = || s.metric("sluice_queue_spilled_records_total{route=\"durable\"}");
    wait_while(20, || spilled() < 3000);
    let written = spilled() as usize;
    assert!(written >= 3000);
    s.kill9();
    let sent = sender.join().unwrap();
    assert!(sent > written, "the kill came in the middle of the load");
    // A crash mid-write: a torn record at the end of the last segment.
    let log_dir = s.path("sluice-data/spill/durable");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() > 1, "{segments:?}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(segments.last().unwrap())
        .unwrap()
        .write_all(&[200, 1, 0, 0, 7, 7, 7, 7, 1, 2, 3])
        .unwrap();
    es.knobs(|k| k.fail_requests = 0);
    s.relaunch();
    wait_while(30, || stored_numbers(&es).len() < written);
    std::thread::sleep(Duration::from_millis(300));
    let got = stored_numbers(&es);
    eprintln!(
        "kill -9 with {written} records in the log ({sent} sent); {} delivered after the restart",
        got.len()
    );
    assert!(
        got.len() >= written,
        "{} delivered, {written} were in the log",
        got.len()
    );
    assert!(
        got.iter().enumerate().all(|(i, &n)| i == n),
        "delivered messages are a prefix of the stream"
    );
    assert_eq!(
        s.metric("sluice_queue_spill_corrupt_records_total{route=\"durable\"}"),
        1
    );
    wait_while(10, || {
        s.metric("sluice_queue_spill_pending_records{route=\"durable\"}") > 0
    });
    assert_eq!(
        s.metric("sluice_queue_spill_pending_records{route=\"durable\"}"),
        0
    );
    // The restarted sluice takes new data on the same log.
    tcp_send(s.addr("tcp"), b"<14>1 - h app - - - message 999999\n");
    wait_while(10, || !stored_numbers(&es).contains(&999_999));
    assert!(stored_numbers(&es).contains(&999_999));
    assert!(s.stop().success());
}

/// Ten minutes of a 250 msg/s service's logging (150,000 messages of about
/// 600 bytes, 90 MB) into a route whose sink is down: the queue holds 2 MiB
/// in memory and spills the rest, so sluice's peak RSS stays near its
/// fixed size; when the sink comes back every message arrives.
#[test]
fn a_long_outage_spills_to_disk_and_memory_stays_bounded() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "spilling"
sink = "es"
document = {}
[routes.queue]
max_events = 100000
max_bytes = 2097152
when_full = "spill"
fsync = "never"
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let baseline = s.peak_rss_kib();
    let padding = "p".repeat(560);
    let mut frames = Vec::with_capacity(100 << 20);
    for i in 0..150_000 {
        frames.extend_from_slice(format!("<14>1 - h app - - - message {i} {padding}\n").as_bytes());
    }
    tcp_send(s.addr("tcp"), &frames);
    drop(frames);
    wait_while(60, || {
        s.metric("sluice_queue_pushed_records_total{route=\"spilling\"}") < 150_000
    });
    assert_eq!(
        s.metric("sluice_queue_pushed_records_total{route=\"spilling\"}"),
        150_000
    );
    let spilled = s.metric("sluice_queue_spilled_records_total{route=\"spilling\"}");
    assert!(spilled > 140_000, "spilled {spilled}");
    let peak = s.peak_rss_kib();
    eprintln!("spilled {spilled} of 150000; peak RSS {peak} KiB, idle {baseline} KiB");
    // Queue bytes (2 MiB) plus a fixed overhead of 48 MiB over the idle size.
    assert!(
        peak < baseline + 2048 + 48 * 1024,
        "peak RSS {peak} KiB, idle {baseline} KiB"
    );
    es.knobs(|k| k.fail_requests = 0);
    wait_while(120, || es.total() < 150_000);
    assert_eq!(es.total(), 150_000);
    assert!(s.stop().success());
}

/// Messages stored by the `_bulk` stand-in, in the order they were stored.
fn stored_in_order(es: &EsServer) -> Vec<String> {
    let state = es.state.lock().unwrap();
    state
        .arrival
        .iter()
        .filter_map(|k| state.docs.get(k)?["message"].as_str().map(str::to_owned))
        .collect()
}

/// `block` against a stalled sink: once the queue and the socket buffers
/// are full the sender's writes stop completing (TCP backpressure); when the
/// sink resumes, everything arrives, in the order it was sent.
#[test]
fn block_stops_the_tcp_sender_and_everything_arrives_in_order() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "blocking"
sink = "es"
document = {}
[routes.queue]
max_events = 100
when_full = "block"
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    // 20,000 frames of ~600 bytes: more than the socket buffers hold.
    let n = 20_000;
    let pad = "p".repeat(570);
    let payload: Vec<u8> = (0..n)
        .flat_map(|i| format!("<14>1 - h app - - - message {i} {pad}\n").into_bytes())
        .collect();
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.set_nonblocking(true).unwrap();
    // Write until the kernel refuses more: sluice has stopped reading.
    let mut written = 0;
    let stalled_at = loop {
        match conn.write(&payload[written..]) {
            Ok(k) => written += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(300));
                match conn.write(&payload[written..]) {
                    Ok(k) => written += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break written,
                    Err(e) => panic!("{e}"),
                }
            }
            Err(e) => panic!("{e}"),
        }
        assert!(written < payload.len(), "the sender was never held back");
    };
    assert!(stalled_at < payload.len());
    let frames = s.metric("sluice_listener_frames_total{listener=\"tcp\"}");
    assert!(frames < n as u64, "sluice read {frames} of {n}");
    // The sink resumes: the sender finishes, everything arrives in order.
    es.knobs(|k| k.fail_requests = 0);
    conn.set_nonblocking(false).unwrap();
    conn.write_all(&payload[written..]).unwrap();
    wait_while(60, || es.total() < n);
    let got = stored_in_order(&es);
    let want: Vec<String> = (0..n).map(|i| format!("message {i} {pad}")).collect();
    assert!(
        got == want,
        "{} stored; first out of order at {:?}",
        got.len(),
        got.iter().zip(&want).position(|(g, w)| g != w)
    );
    assert_eq!(
        s.metric("sluice_queue_dropped_records_total{route=\"blocking\",reason=\"full\"}"),
        0
    );
    drop(conn);
    assert!(s.stop().success());
}

/// Two routes from one listener, one into a stalled sink with a small
/// drop_newest queue: the other route (blocking, so it loses nothing of a
/// burst) delivers everything while the first is stalled, and the stalled
/// route's drops are counted exactly.
#[test]
fn a_stalled_route_does_not_hold_back_the_others() {
    let es = EsServer::start();
    es.knobs(|k| k.fail_requests = 1_000_000);
    let routes = r#"
[[routes]]
name = "to_file"
sink = "events"
document = {}
[routes.queue]
when_full = "block"
[[routes]]
name = "to_stalled_es"
sink = "es"
document = {}
[routes.queue]
max_events = 100
when_full = "drop_newest"
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let n = 20_000;
    tcp_send(s.addr("tcp"), &numbered_frames(n));
    wait_while(30, || read_lines(&s.path("events.ndjson")).len() < n);
    let lines = read_lines(&s.path("events.ndjson"));
    assert_eq!(lines.len(), n, "the healthy route delivered everything");
    assert_eq!(es.total(), 0, "the other sink is still stalled");
    // The stalled route's push of the last message settles after the file
    // route's: wait until every message is queued or dropped there.
    let es_dropped =
        || s.metric("sluice_queue_dropped_records_total{route=\"to_stalled_es\",reason=\"full\"}");
    let es_pushed = || s.metric("sluice_queue_pushed_records_total{route=\"to_stalled_es\"}");
    wait_while(10, || es_pushed() + es_dropped() < n as u64);
    let dropped = es_dropped();
    assert_eq!(es_pushed() + dropped, n as u64);
    assert!(dropped > 0);
    es.knobs(|k| k.fail_requests = 0);
    wait_while(30, || (es.total() as u64) + dropped < n as u64);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        es.total() as u64 + dropped,
        n as u64,
        "delivered + dropped = sent"
    );
    assert!(s.stop().success());
}
