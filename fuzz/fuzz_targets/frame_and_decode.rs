//! Framing + decoding + multi-line joining over arbitrary bytes.
//!
//! Contract: every input yields frames or counted skips, every frame an
//! event whose canonical JSON is valid JSON; nothing panics, nothing loops
//! (libFuzzer's timeout catches a loop). The first input byte picks the
//! framing, the read size and the decode options, so one corpus covers them
//! all.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice::decode::{DecodeOptions, Sender, decode};
use sluice::framing::{FrameItem, Framing, SyslogFramer};
use sluice::multiline::{Joiner, MultilineConfig};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
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
    let max_frame = 256;
    let mut framer = SyslogFramer::new(max_frame, framing);
    let mut joiner = Joiner::new(MultilineConfig {
        max_lines: 8,
        max_bytes: 512,
        max_pending: 4,
        ..MultilineConfig::default()
    });
    let now = tokio::time::Instant::now();
    let mut events = Vec::new();
    let mut buf = BytesMut::new();
    let mut frames = 0usize;
    let mut take = |item: FrameItem, events: &mut Vec<_>| {
        if let FrameItem::Frame(f) = item {
            assert!(f.len() <= max_frame, "frame over the bound");
            frames += 1;
            check(f.clone(), &opts);
            joiner.push(
                decode(f, None, 1_795_500_000_000_000_000, &opts),
                now,
                events,
            );
        }
    };
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Ok(Some(item)) = framer.decode(&mut buf) {
            take(item, &mut events);
        }
        if framer.holds_undelimited_frame(&buf) && piece.len() % 2 == 1 {
            if let Some(item) = framer.flush_undelimited(&mut buf) {
                take(item, &mut events);
            }
        }
    }
    while let Ok(Some(item)) = framer.decode_eof(&mut buf) {
        take(item, &mut events);
    }
    joiner.close(&mut events);
    assert!(
        events.len() <= frames,
        "the joiner made events out of nothing"
    );
    for e in &events {
        json(e);
    }
    // A frame as a datagram, as UDP would deliver it.
    check(Bytes::copy_from_slice(input), &opts);
});

fn check(frame: Bytes, opts: &DecodeOptions) {
    let event = decode(frame, None, 1_795_500_000_000_000_000, opts);
    json(&event);
}

fn json(event: &sluice::event::Event) {
    let mut out = String::new();
    event.write_canonical_json(&mut out);
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&out) {
        panic!("canonical JSON does not parse ({e}): {out}");
    }
}
