//! Inputs the fuzz target (fuzz/fuzz_targets/frame_and_decode.rs) once
//! crashed on, replayed through the same path: framing, decoding,
//! multi-line joining, canonical JSON. Each must now come out as events
//! whose JSON parses.

use bytes::{Bytes, BytesMut};
use sluice::decode::{DecodeOptions, Sender, decode};
use sluice::framing::{FrameItem, Framing, SyslogFramer};
use sluice::multiline::{Joiner, MultilineConfig};
use tokio_util::codec::Decoder;

const RECEIVED: i64 = 1_795_500_000_000_000_000;

fn json_of(event: &sluice::event::Event) -> serde_json::Value {
    let mut out = String::new();
    event.write_canonical_json(&mut out);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

/// The fuzz target's body, without the fuzzer.
fn replay(data: &[u8]) -> usize {
    let Some((&knobs, input)) = data.split_first() else {
        return 0;
    };
    let framing = match knobs & 3 {
        0 => Framing::Auto,
        1 => Framing::Lf,
        _ => Framing::Octet,
    };
    let chunk = 1 + usize::from(knobs >> 2 & 7) * 7;
    let opts = DecodeOptions {
        timezone: if knobs & 32 != 0 {
            chrono_tz::Tz::Europe__Berlin
        } else {
            chrono_tz::Tz::UTC
        },
        sender: if knobs & 64 != 0 {
            Sender::Log4j
        } else {
            Sender::Generic
        },
        strip_facility_prefix: knobs & 128 != 0,
        newline_escape: (knobs & 16 != 0).then(|| "\\n".into()),
        app_name: None,
    };
    let mut framer = SyslogFramer::new(256, framing);
    let mut joiner = Joiner::new(MultilineConfig {
        max_lines: 8,
        max_bytes: 512,
        max_pending: 4,
        ..MultilineConfig::default()
    });
    let now = tokio::time::Instant::now();
    let mut events = Vec::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(item) = framer.decode(&mut buf).unwrap() {
            frames.push(item);
        }
    }
    while let Some(item) = framer.decode_eof(&mut buf).unwrap() {
        frames.push(item);
    }
    let n = frames.len();
    for item in frames {
        if let FrameItem::Frame(f) = item {
            json_of(&decode(f.clone(), None, RECEIVED, &opts));
            joiner.push(decode(f, None, RECEIVED, &opts), now, &mut events);
        }
    }
    joiner.close(&mut events);
    for e in &events {
        json_of(e);
    }
    json_of(&decode(
        Bytes::copy_from_slice(input),
        None,
        RECEIVED,
        &opts,
    ));
    n
}

#[test]
fn fuzz_findings_decode_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        assert!(replay(&data) > 0, "{}: produced no frame", path.display());
        replayed += 1;
    }
    assert!(replayed >= 1, "no regression inputs in {}", dir.display());
}

#[test]
fn a_year_past_2261_stays_in_the_message() {
    // The first finding: year 2826 overflowed i64 nanoseconds.
    let e = decode(
        Bytes::from_static(b"<166>1 2826-11-24T11:34:56.648Z vm orders 1 - - hi"),
        None,
        RECEIVED,
        &DecodeOptions::default(),
    );
    let j = json_of(&e);
    assert_eq!(j["timestamp"], serde_json::Value::Null);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("2826-11-24T11:34:56.648Z")
    );
}
