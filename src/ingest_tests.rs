use super::*;
use crate::decode::{DecodeMode, DecodeOptions};
use crate::multiline::MultilineConfig;
use crate::router::RouteMatch;
use bytes::Bytes;
use std::net::SocketAddr;
use tokio::time::Instant;

/// The per-event scratch vector is emptied without giving back its
/// allocation.
#[test]
fn recycle_keeps_the_allocation() {
    let text = String::from("x");
    let mut v: Vec<RouteMatch<'_>> = Vec::with_capacity(8);
    v.push(RouteMatch {
        route: text.len(),
        captures: None,
    });
    let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
    let r: Vec<RouteMatch<'static>> = recycle(v);
    assert!(r.is_empty());
    assert_eq!((r.as_ptr() as usize, r.capacity()), (ptr, cap));
}

/// Readers number frames from blocks of one counter: no number is
/// given twice, within a reader or across readers.
#[test]
fn frame_numbers_are_unique_across_readers() {
    let mut readers: Vec<FrameNumbers> = (0..3).map(|_| FrameNumbers::default()).collect();
    let mut seen = std::collections::HashSet::new();
    for round in 0..3 * FrameNumbers::BLOCK as usize {
        let n = readers[round % 3].next();
        assert!(seen.insert(n), "{n} given twice");
    }
}

/// A strict listener that joins: a line without PRI that opens with a
/// time (read with `pri_missing`) still continues the peer's pending
/// event, as every line without PRI did, instead of being rejected.
/// Alone, it is rejected as any frame that needs a rule.
#[test]
fn a_strict_joining_path_takes_bare_lines_opening_with_a_time() {
    fn take(path: &mut FramePath<'_>, frame: &str, out: &mut Vec<Event>) -> bool {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let frame = Bytes::copy_from_slice(frame.as_bytes());
        let fate = path.frame(frame, Some(peer), 0, 0, Instant::now(), out);
        matches!(fate, Fate::Accepted)
    }
    let opts = DecodeOptions {
        mode: DecodeMode::Strict,
        ..DecodeOptions::default()
    };
    let mut path = FramePath::new(&opts, Some(MultilineConfig::default()));
    let mut out = Vec::new();
    let first = "<163>1 2026-11-24T11:34:37.138Z vm orders 1 - - Order failed";
    assert!(take(&mut path, first, &mut out));
    assert!(take(
        &mut path,
        "2026-11-24T11:34:37Z vm other: quoted",
        &mut out
    ));
    // An indented line with a PRI after its spaces (`space_before_pri`)
    // continues it too.
    assert!(take(
        &mut path,
        "    <13>Nov 24 11:34:37 vm other: indented",
        &mut out
    ));
    path.close(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].message(),
        "Order failed\n2026-11-24T11:34:37Z vm other: quoted\n    <13>Nov 24 11:34:37 vm other: indented"
    );
    assert!(out[0].lenient.is_empty());
    // Nothing pending: a frame that needs a rule, rejected.
    assert!(!take(&mut path, "Nov 24 11:34:37 vm app: alone", &mut out));
}
