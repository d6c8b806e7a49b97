use bytes::Bytes;

use crate::decode::{DecodeOptions, decode};

/// An RFC 5424 frame of `n` SD elements whose IDs and parameter names come
/// from small alphabets, so that IDs repeat across elements and names
/// repeat within and across them.
fn frame_with_elements(n: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut next = move |m: u64| {
        // xorshift64: deterministic, no dependency.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut frame = String::from("<14>1 2026-12-07T05:00:00Z h app 1 ID ");
    for _ in 0..n {
        frame.push_str(&format!("[id{}", next(7)));
        for _ in 0..next(if n == 1 { 60 } else { 4 }) {
            frame.push_str(&format!(" p{}=\"v{}\"", next(3), next(100)));
        }
        frame.push(']');
    }
    frame.push_str(" msg");
    frame
}

#[test]
fn many_sd_elements_are_written_as_the_scans_write_them() {
    for n in [1, 2, 5, 16, 17, 40, 300] {
        for seed in 1..20u64 {
            let frame = frame_with_elements(n, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let event = decode(
                Bytes::from(frame.clone()),
                None,
                0,
                &DecodeOptions::default(),
            );
            let (mut few, mut many) = (String::new(), String::new());
            event.write_few_structured_data_json(&mut few);
            event.write_many_structured_data_json(&mut many);
            assert_eq!(few, many, "frame {frame}");
            let parsed: serde_json::Value = match serde_json::from_str(&many) {
                Ok(v) => v,
                Err(e) => panic!("not JSON ({e}): {many}"),
            };
            assert!(parsed.is_object(), "{many}");
        }
    }
}

#[test]
fn repeated_ids_merge_and_repeated_names_become_arrays_past_the_scan_limit() {
    // 20 elements, over the limit: id `a` five times, with `k` repeated.
    let mut frame = String::from("<14>1 2026-12-07T05:00:00Z h app 1 ID ");
    for i in 0..20 {
        if i % 4 == 0 {
            frame.push_str(&format!("[a k=\"{i}\"]"));
        } else {
            frame.push_str(&format!("[b{i} x=\"1\"]"));
        }
    }
    let event = decode(Bytes::from(frame), None, 0, &DecodeOptions::default());
    let mut out = String::new();
    event.write_structured_data_json(&mut out);
    let v: serde_json::Value = match serde_json::from_str(&out) {
        Ok(v) => v,
        Err(e) => panic!("not JSON ({e}): {out}"),
    };
    assert_eq!(v["a"]["k"], serde_json::json!(["0", "4", "8", "12", "16"]));
    assert_eq!(v["b1"]["x"], "1");
    assert_eq!(v.as_object().map(|o| o.len()), Some(16));
}
