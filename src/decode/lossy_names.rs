//! SD names of a frame that was not UTF-8. The decoder reads the frame's
//! text, where each run of bytes that is not UTF-8 became U+FFFD; two
//! SD-IDs that differ only in such bytes (`a\xff`, `a\xfe`) would read as
//! one, and the canonical JSON, one object per SD-ID, would merge them.
//! Here the names get their bytes back, escaped, so none is lost.

use std::collections::HashSet;
use std::fmt::Write;

use crate::event::{Event, LenientRule, Span, Text};

/// U+FFFD as UTF-8.
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// When an SD name of `event` (decoded from `text`, the lossy text of its
/// raw frame) holds U+FFFD, every SD name of the frame is written from the
/// raw bytes: `\` as `\\`, each byte that is not UTF-8 as `\xHH`. Escaping
/// every name of the frame keeps them apart: no name can be written as
/// another's escape. [`LenientRule::SdDuplicateId`] is then decided on the
/// escaped SD-IDs.
#[cold]
#[inline(never)]
pub(super) fn escape_sd_names(text: &[u8], event: &mut Event) {
    let replaced = |t: &Text| match t {
        Text::Span(s) => text
            .get(s.start as usize..s.end as usize)
            .is_some_and(|name| memchr::memmem::find(name, REPLACEMENT).is_some()),
        _ => false,
    };
    let any = event
        .structured_data
        .iter()
        .any(|e| replaced(&e.id) || e.params.iter().any(|p| replaced(&p.name)));
    if !any {
        return;
    }
    let raw = event.raw_bytes();
    let escape = |t: &mut Text| {
        if let Text::Span(s) = t {
            *t = Text::Owned(escaped(&raw, *s).into());
        }
    };
    let mut ids = HashSet::new();
    let mut repeated = false;
    for element in &mut event.structured_data {
        if let Text::Span(_) = element.id {
            escape(&mut element.id);
            if let Text::Owned(id) = &element.id {
                repeated |= !ids.insert(id.clone());
            }
        }
        for param in &mut element.params {
            escape(&mut param.name);
        }
    }
    event.lenient.remove(LenientRule::SdDuplicateId);
    if repeated {
        event.lenient.insert(LenientRule::SdDuplicateId);
    }
}

/// The bytes of `raw` that became `span` of its lossy text, with `\` as
/// `\\` and each byte that is not UTF-8 as `\xHH`. Each run of such bytes
/// is one U+FFFD (3 bytes) in the text, as `String::from_utf8_lossy`
/// writes it; a span never splits one (names end at ASCII bytes).
fn escaped(raw: &[u8], span: Span) -> String {
    let (start, end) = (span.start as usize, span.end as usize);
    let mut out = String::with_capacity(end - start + 8);
    let mut at = 0;
    for chunk in raw.utf8_chunks() {
        if at >= end {
            break;
        }
        let valid = chunk.valid();
        let (from, to) = (start.max(at), end.min(at + valid.len()));
        if from < to {
            for c in valid[from - at..to - at].chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
        }
        at += valid.len();
        let invalid = chunk.invalid();
        if !invalid.is_empty() {
            if at >= start && at + REPLACEMENT.len() <= end {
                for b in invalid {
                    let _ = write!(out, "\\x{b:02X}");
                }
            }
            at += REPLACEMENT.len();
        }
    }
    out
}
