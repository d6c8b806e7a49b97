//! The decoding corpus: tests/corpus/decode-cases.jsonl.
//!
//! Each case is one or more frames (RFC examples, what real senders write,
//! and frames captured from the real log4j 1.2 and log4j2 appenders with
//! tests/corpus/capture.py), the listener options they are read with, the
//! receive time, and the canonical JSON of every event they must become.
//! The corpus is checked three ways: through the library (decode and
//! multi-line joining), through the real `sluice parse` binary, and against
//! `syslog_loose` wherever that crate reads the frame the same way.

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Utc};
use serde_json::Value;
use sluice::testing::{DecodeOptions, Sender, decode};
use sluice::testing::{FrameItem, Framing, SyslogFramer};
use sluice::testing::{Joiner, MultilineConfig};
use tokio_util::codec::Decoder;

struct Case {
    name: String,
    options: Value,
    received: DateTime<FixedOffset>,
    /// `None` for a TCP stream that the framer cuts.
    frames: Option<Vec<Vec<u8>>>,
    stream: Option<Vec<u8>>,
    /// How `stream` is cut, as a listener's `framing` (default `auto`).
    framing: String,
    expected: Vec<Value>,
    /// Why syslog_loose reads this case differently, when it does.
    loose_differs: Option<String>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/decode-cases.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let strings = |key: &str| {
                v.get(key).map(|a| {
                    a.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                })
            };
            let frames = strings("frames")
                .map(|f| f.into_iter().map(String::into_bytes).collect())
                .or_else(|| strings("frames_hex").map(|f| f.iter().map(|h| hex(h)).collect()));
            Case {
                name: v["case"].as_str().unwrap().to_owned(),
                options: v["options"].clone(),
                received: DateTime::parse_from_rfc3339(v["received"].as_str().unwrap()).unwrap(),
                frames,
                stream: v.get("stream_hex").map(|h| hex(h.as_str().unwrap())),
                framing: v
                    .get("framing")
                    .map_or("auto", |f| f.as_str().unwrap())
                    .to_owned(),
                expected: v["expected"].as_array().unwrap().clone(),
                loose_differs: v
                    .get("syslog_loose")
                    .map(|s| s.as_str().unwrap().to_owned()),
            }
        })
        .collect()
}

fn decode_options(o: &Value) -> DecodeOptions {
    DecodeOptions {
        timezone: o
            .get("timezone")
            .map_or(chrono_tz::Tz::UTC, |t| t.as_str().unwrap().parse().unwrap()),
        sender: match o.get("sender").and_then(Value::as_str) {
            Some("log4j") => Sender::Log4j,
            None => Sender::Generic,
            Some(other) => panic!("unknown sender {other}"),
        },
        strip_facility_prefix: o
            .get("strip_facility_prefix")
            .is_some_and(|b| b.as_bool().unwrap()),
        newline_escape: o.get("newline_escape").map(|e| e.as_str().unwrap().into()),
        app_name: o.get("app_name").map(|a| a.as_str().unwrap().into()),
        mode: match o.get("decode").and_then(Value::as_str) {
            Some("strict") => sluice::testing::DecodeMode::Strict,
            None => sluice::testing::DecodeMode::Lenient,
            Some(other) => panic!("unknown decode mode {other}"),
        },
    }
}

fn frames_of(case: &Case) -> Vec<Bytes> {
    if let Some(frames) = &case.frames {
        return frames.iter().map(|f| Bytes::copy_from_slice(f)).collect();
    }
    let framing = match case.framing.as_str() {
        "auto" => Framing::Auto,
        "log4j2_undelimited" => Framing::Log4j2Undelimited,
        other => panic!("{}: framing {other:?} not used by the corpus", case.name),
    };
    let mut framer = SyslogFramer::new(65_536, framing);
    let mut buf = BytesMut::from(&case.stream.as_ref().unwrap()[..]);
    let mut out = Vec::new();
    while let Some(item) = framer.decode_eof(&mut buf).unwrap() {
        match item {
            FrameItem::Frame(f) => out.push(f),
            other => panic!("{}: unexpected {other:?}", case.name),
        }
    }
    out
}

fn canonical(event: &sluice::testing::Event) -> Value {
    let mut s = String::new();
    event.write_canonical_json(&mut s);
    serde_json::from_str(&s).unwrap()
}

#[test]
fn corpus_decodes_to_the_expected_canonical_json() {
    let cases = cases();
    assert!(cases.len() >= 100, "the corpus lost cases: {}", cases.len());
    for case in &cases {
        let opts = decode_options(&case.options);
        let received = case.received.timestamp_nanos_opt().unwrap();
        let mut joiner = case
            .options
            .get("multiline")
            .is_some_and(|m| m.as_bool().unwrap())
            .then(|| Joiner::new(MultilineConfig::default()));
        let now = tokio::time::Instant::now();
        let mut events = Vec::new();
        for frame in frames_of(case) {
            let event = decode(frame, None, received, &opts);
            match &mut joiner {
                Some(j) => j.push(event, now, &mut events),
                None => events.push(event),
            }
        }
        if let Some(j) = &mut joiner {
            j.close(&mut events);
        }
        let got: Vec<Value> = events.iter().map(canonical).collect();
        assert_eq!(got, case.expected, "case {:?}", case.name);
    }
}

/// A config with one listener named `l` carrying the case's options.
fn listener_config(dir: &std::path::Path, options: &Value) -> std::path::PathBuf {
    let mut text =
        String::from("[[listeners]]\nname = \"l\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n");
    for (k, v) in options.as_object().unwrap() {
        text.push_str(&format!("{k} = {v}\n"));
    }
    text.push_str(
        "[[sinks]]\nname = \"out\"\ntype = \"stdout\"\n[default_route]\nsink = \"out\"\ndocument = {}\n",
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sluice_parse(args: &[&str], input: &[u8]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sluice parse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            // With -c, parse also says what each route makes of the event.
            assert!(v.as_object_mut().unwrap().remove("routes").is_some());
            v
        })
        .collect()
}

#[test]
fn sluice_parse_prints_the_corpus_json() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let config = listener_config(dir.path(), &case.options);
        let received = case.received.to_rfc3339();
        let base = [
            "-c",
            config.to_str().unwrap(),
            "--listener",
            "l",
            "--received",
            received.as_str(),
        ];
        match &case.frames {
            Some(frames) => {
                // One datagram per case, as a UDP listener receives it.
                if frames.len() == 1 {
                    let got = sluice_parse(
                        &[&base[..], &["--framing", "datagram"]].concat(),
                        &frames[0],
                    );
                    assert_eq!(got, case.expected, "datagram: {:?}", case.name);
                }
                // Every case, frames octet-counted on one stream.
                let mut input = Vec::new();
                for f in frames {
                    input.extend_from_slice(format!("{} ", f.len()).as_bytes());
                    input.extend_from_slice(f);
                }
                let got = sluice_parse(&[&base[..], &["--framing", "octet"]].concat(), &input);
                assert_eq!(got, case.expected, "octet: {:?}", case.name);
            }
            None => {
                let got = sluice_parse(
                    &[&base[..], &["--framing", &case.framing]].concat(),
                    case.stream.as_ref().unwrap(),
                );
                assert_eq!(got, case.expected, "stream: {:?}", case.name);
            }
        }
    }
}

/// The year Flume's `SyslogUtils` gives a stamp without one, as Sluice
/// does: the receive year; the year before when the stamp is then more
/// than one month after the receive time, the year after when it is more
/// than eleven months before it (months moved as `Calendar.add` moves
/// them, the day kept within the month).
fn flume_year(
    received: DateTime<FixedOffset>,
    (month, day, h, mi, s): (u32, u32, u32, u32, u32),
) -> i32 {
    let year = received.year();
    let at = |y: i32, m: u32| {
        let last = (28..=31)
            .rev()
            .find(|d| chrono::NaiveDate::from_ymd_opt(y, m, *d).is_some())
            .unwrap();
        Utc.with_ymd_and_hms(y, m, day.min(last), h, mi, s)
            .single()
            .map(|t| t.timestamp())
    };
    let (before, after) = if month == 1 {
        (at(year - 1, 12), at(year, 12))
    } else {
        (at(year, month - 1), at(year + 1, month - 1))
    };
    let now = received.timestamp();
    if before.is_some_and(|t| t > now) {
        year - 1
    } else if after.is_some_and(|t| t < now) {
        year + 1
    } else {
        year
    }
}

/// syslog_loose's reading of a frame, in the canonical JSON's terms, with
/// the year rule of the corpus (Flume's, [`flume_year`]).
fn loose_json(frame: &str, received: DateTime<FixedOffset>) -> Value {
    let get_year = |stamp| flume_year(received, stamp);
    let m = syslog_loose::parse_message_with_year_tz(
        frame,
        get_year,
        Some(Utc),
        syslog_loose::Variant::Either,
    );
    let mut sd = serde_json::Map::new();
    for e in &m.structured_data {
        let mut params = serde_json::Map::new();
        for (k, v) in &e.params {
            match params.get_mut(*k) {
                Some(Value::Array(a)) => a.push(Value::from(*v)),
                Some(prev) => *prev = Value::Array(vec![prev.clone(), Value::from(*v)]),
                None => {
                    params.insert((*k).to_owned(), Value::from(*v));
                }
            }
        }
        sd.insert(e.id.to_owned(), Value::Object(params));
    }
    let opt = |s: Option<&str>| s.map_or(Value::Null, Value::from);
    serde_json::json!({
        "facility": m.facility.map(|f| f as u8),
        "severity": m.severity.map(|s| s as u8),
        // Compared as instants with their offsets.
        "timestamp": m.timestamp.map(|t| (t.timestamp_nanos_opt(), t.offset().local_minus_utc())),
        "hostname": opt(m.hostname),
        "appname": opt(m.appname),
        "procid": m.procid.map(|p| Value::from(p.to_string())),
        "msgid": opt(m.msgid),
        "structured_data": if sd.is_empty() { Value::Null } else { Value::Object(sd) },
        "message": m.msg,
    })
}

/// The expected canonical JSON in the same terms as [`loose_json`].
fn ours_as_loose(expected: &Value) -> Value {
    let ts = expected["timestamp"].as_str().map(|t| {
        let t = DateTime::parse_from_rfc3339(t).unwrap();
        (t.timestamp_nanos_opt(), t.offset().local_minus_utc())
    });
    serde_json::json!({
        "facility": expected["facility"],
        "severity": expected["severity"],
        "timestamp": ts,
        "hostname": expected["hostname"],
        "appname": expected["appname"],
        "procid": expected["procid"],
        "msgid": expected["msgid"],
        "structured_data": expected["structured_data"],
        "message": expected["message"],
    })
}

#[test]
fn syslog_loose_agrees_where_it_reads_the_frame_the_same_way() {
    let mut agreed = 0;
    let mut differs = 0;
    let mut wrong = Vec::new();
    for case in cases() {
        // Only generic single frames: syslog_loose has no listener options,
        // no multi-line joining and needs UTF-8.
        let Some(frames) = &case.frames else { continue };
        if frames.len() != 1 || !case.options.as_object().unwrap().is_empty() {
            continue;
        }
        let Ok(frame) = std::str::from_utf8(&frames[0]) else {
            continue;
        };
        let theirs = loose_json(frame, case.received);
        let ours = ours_as_loose(&case.expected[0]);
        match &case.loose_differs {
            None if theirs == ours => agreed += 1,
            None => wrong.push(format!(
                "{:?}: syslog_loose reads it differently, and the corpus does not say why\n  theirs: {theirs}\n  ours:   {ours}",
                case.name
            )),
            Some(_) if theirs != ours => differs += 1,
            // The note must stay true: the readings really differ.
            Some(why) => wrong.push(format!("{:?} is noted {why:?} but reads alike", case.name)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!("syslog_loose: {agreed} cases read alike, {differs} read differently (noted)");
    assert!(agreed >= 20, "too few comparable cases: {agreed}");
}
