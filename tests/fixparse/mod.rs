//! Defects an outside tester found in `sluice parse --listener` and
//! `sluice spill verify`: `parse` took the largest `max_frame_bytes` of any
//! listener instead of the named one's, cut a UDP listener's input at LF
//! where `run` takes a datagram as one frame, and `spill verify` refused a
//! data dir whose routes had no spill log yet.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::process::Command;

use crate::util::{BIN, Sluice, messages, read_lines, sluice_parse, wait_for};

/// A TCP listener limited to 100-byte frames, a UDP listener limited to 100
/// bytes, and a big UDP listener (the default limit); every event to
/// `events.ndjson`.
const SMALL_LISTENERS: &str = r#"
shutdown_timeout_secs = 10
[admin]
listen = "127.0.0.1:0"
[[listeners]]
name = "small"
protocol = "tcp"
listen = "127.0.0.1:0"
max_frame_bytes = 100
[[listeners]]
name = "small_udp"
protocol = "udp"
listen = "127.0.0.1:0"
max_frame_bytes = 100
[[listeners]]
name = "big"
protocol = "udp"
listen = "127.0.0.1:0"
[[sinks]]
name = "events"
type = "file"
path = "events.ndjson"
[[routes]]
name = "events"
sink = "events"
document = {}
"#;

/// `SMALL_LISTENERS` written to a temp dir; the dir and the file's path.
fn config_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.toml");
    std::fs::write(&path, SMALL_LISTENERS).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

/// The messages in `events.ndjson` once `marker` arrived.
fn messages_until(s: &Sluice, marker: &str) -> Vec<String> {
    wait_for(10, &format!("{marker:?} in events.ndjson"), || {
        let got = messages(&read_lines(&s.path("events.ndjson")));
        got.iter().any(|m| m == marker).then_some(got)
    })
}

/// `parse --listener small` skips a 205-byte frame as oversized, as `run`
/// does on that listener (100 bytes), although another listener of the
/// config takes frames up to the default.
#[test]
fn parse_listener_applies_that_listeners_max_frame_bytes() {
    let (_dir, config) = config_file();
    let frame = format!("<14>{}\n", "x".repeat(200));
    let parsed = sluice_parse(&["-c", &config, "--listener", "small"], frame.as_bytes());
    println!("parse: {parsed:?}");
    assert_eq!(
        parsed,
        vec![serde_json::json!({"skipped": "oversized", "max_frame_bytes": 100})],
        "parse --listener small must skip the frame as the listener does"
    );

    let mut s = Sluice::start(SMALL_LISTENERS);
    let mut tcp = TcpStream::connect(s.addr("small")).unwrap();
    tcp.write_all(frame.as_bytes()).unwrap();
    tcp.write_all(b"<14>marker\n").unwrap();
    let got = messages_until(&s, "marker");
    let skipped =
        s.metric(r#"sluice_listener_skipped_frames_total{listener="small",reason="oversized"}"#);
    println!("run: messages {got:?}, skipped oversized {skipped}");
    assert_eq!(got, vec!["marker".to_owned()]);
    assert_eq!(skipped, 1);
    drop(tcp);
    assert!(s.stop().success());
}

/// `parse --listener <UDP listener>` takes stdin as one datagram, as the
/// listener takes each datagram: LFs inside do not cut it, a trailing LF
/// counts towards the limit (101 bytes on a 100-byte limit: skipped), and a
/// datagram of one LF is a message of one LF. `run` is asked the same.
#[test]
fn parse_listener_udp_takes_stdin_as_the_listener_takes_a_datagram() {
    let (_dir, config) = config_file();
    let two_lines = b"<14>first\n<14>second\n".to_vec();
    let long = [b"<14>".to_vec(), vec![b'y'; 96], b"\n".to_vec()].concat();
    assert_eq!(long.len(), 101);
    let lf = b"\n".to_vec();

    let parse = |input: &[u8]| {
        let out = sluice_parse(&["-c", &config, "--listener", "small_udp"], input);
        println!("parse {:?}: {out:?}", String::from_utf8_lossy(input));
        out
    };
    let parsed_two = parse(&two_lines);
    assert_eq!(
        parsed_two.len(),
        1,
        "one datagram, one event: {parsed_two:?}"
    );
    let parsed_long = parse(&long);
    assert_eq!(
        parsed_long,
        vec![serde_json::json!({"skipped": "oversized", "max_frame_bytes": 100})]
    );
    let parsed_lf = parse(&lf);
    assert_eq!(parsed_lf.len(), 1, "{parsed_lf:?}");

    let mut s = Sluice::start(SMALL_LISTENERS);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = s.addr("small_udp");
    for d in [&two_lines, &long, &lf] {
        udp.send_to(d, to).unwrap();
    }
    udp.send_to(b"<14>marker", to).unwrap();
    let got = messages_until(&s, "marker");
    let skipped = s
        .metric(r#"sluice_listener_skipped_frames_total{listener="small_udp",reason="oversized"}"#);
    println!("run: messages {got:?}, skipped oversized {skipped}");
    assert_eq!(skipped, 1);
    assert_eq!(
        got,
        vec![
            parsed_two[0]["message"].as_str().unwrap().to_owned(),
            parsed_lf[0]["message"].as_str().unwrap().to_owned(),
            "marker".to_owned(),
        ],
        "run and parse make the same messages of the same datagrams"
    );
    assert!(s.stop().success());
}

/// `sluice spill verify` on a data dir `run` used with no durable route:
/// nothing to verify, exit 0. On a folder that is neither a data dir nor a
/// spill folder (/etc): exit 2, saying why.
#[test]
fn spill_verify_finds_nothing_to_verify_in_a_data_dir_without_logs() {
    let mut s = Sluice::start(&SMALL_LISTENERS.replace(
        r#"path = "events.ndjson""#,
        r#"path = "sluice-data/events.ndjson""#,
    ));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<14>one", s.addr("big")).unwrap();
    s.wait_lines("sluice-data/events.ndjson", 1);
    assert!(s.stop().success());

    let verify = |dir: &std::path::Path| {
        let out = Command::new(BIN)
            .args(["spill", "verify"])
            .arg(dir)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        println!(
            "spill verify {}: exit {:?}, stdout {stdout:?}, stderr {stderr:?}",
            dir.display(),
            out.status.code()
        );
        (out.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = verify(&s.path("sluice-data"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "", "no route, no report");
    assert!(stderr.contains("nothing to verify (0 routes)"), "{stderr}");

    let (code, stdout, stderr) = verify(std::path::Path::new("/etc"));
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "");
    assert!(stderr.contains("/etc is not a spill folder"), "{stderr}");
}
