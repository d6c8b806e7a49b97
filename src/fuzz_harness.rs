//! The body of the fuzz target `frame_and_decode` (fuzz/), kept in the
//! library so that `cargo test` replays the inputs it once crashed on
//! (tests/fuzz-regressions/) through exactly the same path. Frames take
//! the listeners' own frame → decode → join path ([`crate::ingest::FramePath`]).
//!
//! Contract: any bytes yield frames or counted skips, every frame an event
//! whose canonical JSON parses, the joiner never makes more events than
//! frames; nothing panics, nothing loops. The first input byte picks the
//! framing, the read size and the decode options, so one corpus covers them
//! all. A broken contract panics: that is what the fuzzer looks for.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::decode::{DecodeOptions, Sender, decode};
use crate::event::Event;
use crate::framing::{FrameItem, Framing, SyslogFramer};
use crate::ingest::{Fate, FramePath};
use crate::multiline::MultilineConfig;

const RECEIVED: i64 = 1_795_500_000_000_000_000;
const MAX_FRAME: usize = 256;

/// Run one input; returns how many frames the framer produced.
pub fn frame_decode_join(data: &[u8]) -> usize {
    let Some((&knobs, input)) = data.split_first() else {
        return 0;
    };
    let framing = match knobs & 3 {
        0 => Framing::Auto,
        1 => Framing::Lf,
        2 => Framing::Octet,
        _ => Framing::Log4j2Undelimited,
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
        mode: crate::decode::DecodeMode::Lenient,
    };
    let mut framer = SyslogFramer::new(MAX_FRAME, framing);
    // The listeners' own frame path ([`crate::ingest::FramePath`]).
    let mut path = FramePath::new(
        &opts,
        Some(MultilineConfig {
            max_lines: 8,
            max_bytes: 512,
            max_pending: 4,
            ..MultilineConfig::default()
        }),
    );
    let now = tokio::time::Instant::now();
    let mut events = Vec::new();
    let mut frames = 0usize;
    let mut take = |item: FrameItem, events: &mut Vec<Event>| {
        if let FrameItem::Frame(f) = item {
            assert!(f.len() <= MAX_FRAME, "frame over the bound: {}", f.len());
            frames += 1;
            check_json(&decode(f.clone(), None, RECEIVED, &opts));
            // Lenient decoding: no frame is rejected.
            let fate = path.frame(f, None, RECEIVED, 0, now, events);
            assert!(
                matches!(fate, Fate::Accepted),
                "a lenient path rejected a frame"
            );
        }
    };
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Ok(Some(item)) = framer.decode(&mut buf) {
            take(item, &mut events);
        }
        // Sometimes the sender pauses inside an undelimited stream.
        if framer.holds_undelimited_frame(&buf) && piece.len() % 2 == 1 {
            if let Some(item) = framer.flush_undelimited(&mut buf) {
                take(item, &mut events);
            }
        }
    }
    while let Ok(Some(item)) = framer.decode_eof(&mut buf) {
        take(item, &mut events);
    }
    path.close(&mut events);
    assert!(
        events.len() <= frames,
        "the joiner made events out of nothing"
    );
    for e in &events {
        check_json(e);
    }
    // The whole input as one datagram, as UDP would deliver it.
    check_json(&decode(
        Bytes::copy_from_slice(input),
        None,
        RECEIVED,
        &opts,
    ));
    frames
}

fn check_json(event: &Event) {
    let mut out = String::new();
    event.write_canonical_json(&mut out);
    let parsed = serde_json::from_str::<serde_json::Value>(&out);
    assert!(parsed.is_ok(), "canonical JSON does not parse: {out}");
}
