//! A record's Kafka part in a spill segment (flag bit 1 of the record
//! body): the topic, the key, then the raw envelope when there is one.
//!
//! `[topic: str][key: opt str][envelope flag u8]` and, with an envelope,
//! `[frame: bytes][received i64][peer: opt str][listener: str]
//! [framing: str][nonce u64][frame number u64][timezone: opt str]`;
//! `str`/`bytes` are a u32 LE length then the bytes, `opt` a u8 flag
//! (0 none, 1 present) before them, integers little-endian.

use std::sync::Arc;

use crate::record::{Envelope, KafkaPart};

pub(super) fn encode(part: &KafkaPart, out: &mut Vec<u8>) {
    put(out, part.topic.as_bytes());
    put_opt(out, part.key.as_deref().map(str::as_bytes));
    match &part.envelope {
        None => out.push(0),
        Some(e) => {
            out.push(1);
            put(out, &e.frame);
            out.extend_from_slice(&e.received_nanos.to_le_bytes());
            let peer = e.peer.map(|p| p.to_string());
            put_opt(out, peer.as_deref().map(str::as_bytes));
            put(out, e.listener.as_bytes());
            put(out, e.framing.as_bytes());
            out.extend_from_slice(&e.nonce.to_le_bytes());
            out.extend_from_slice(&e.frame_number.to_le_bytes());
            put_opt(out, e.timezone.as_deref().map(str::as_bytes));
        }
    }
}

/// Read a part off the front of `rest`; `None`: not a valid part.
pub(super) fn decode(rest: &mut &[u8]) -> Option<KafkaPart> {
    let topic = text(take(rest)?)?;
    let key = match take_opt(rest)? {
        None => None,
        Some(k) => Some(text(k)?),
    };
    let envelope = match byte(rest)? {
        0 => None,
        1 => {
            let frame = bytes::Bytes::copy_from_slice(take(rest)?);
            let received_nanos = i64::from_le_bytes(fixed(rest)?);
            let peer = match take_opt(rest)? {
                None => None,
                Some(p) => Some(std::str::from_utf8(p).ok()?.parse().ok()?),
            };
            let listener = Arc::from(text(take(rest)?)?);
            let framing = Arc::from(text(take(rest)?)?);
            let nonce = u64::from_le_bytes(fixed(rest)?);
            let frame_number = u64::from_le_bytes(fixed(rest)?);
            let timezone = match take_opt(rest)? {
                None => None,
                Some(t) => Some(Arc::from(text(t)?)),
            };
            Some(Envelope {
                frame,
                received_nanos,
                peer,
                listener,
                framing,
                nonce,
                frame_number,
                timezone,
            })
        }
        _ => return None,
    };
    Some(KafkaPart {
        topic,
        key,
        envelope,
    })
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put(out, b);
        }
    }
}

fn byte(rest: &mut &[u8]) -> Option<u8> {
    let (b, tail) = rest.split_first()?;
    *rest = tail;
    Some(*b)
}

fn fixed<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let head = rest.get(..N)?.try_into().ok()?;
    *rest = rest.get(N..)?;
    Some(head)
}

fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(fixed(rest)?) as usize;
    let all: &'a [u8] = rest;
    let b = all.get(..len)?;
    *rest = all.get(len..)?;
    Some(b)
}

fn take_opt<'a>(rest: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    match byte(rest)? {
        0 => Some(None),
        1 => take(rest).map(Some),
        _ => None,
    }
}

fn text(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}
