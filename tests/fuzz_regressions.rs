//! Inputs the fuzz target (fuzz/fuzz_targets/frame_and_decode.rs) once
//! crashed on, replayed through the same harness (`sluice::testing::frame_decode_join`):
//! framing, decoding, multi-line joining, canonical JSON. Each must now come
//! out as events whose JSON parses.

use bytes::Bytes;
use sluice::testing::frame_decode_join;
use sluice::testing::{DecodeOptions, decode};

const RECEIVED: i64 = 1_795_500_000_000_000_000;

fn json_of(event: &sluice::testing::Event) -> serde_json::Value {
    let mut out = String::new();
    event.write_canonical_json(&mut out);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

#[test]
fn fuzz_findings_decode_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        assert!(
            frame_decode_join(&data) > 0,
            "{}: produced no frame",
            path.display()
        );
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
