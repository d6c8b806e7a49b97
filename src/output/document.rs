//! The canonical JSON document, and the pieces ECS documents share with it.

use std::fmt::Write as _;

use super::Captures;
use crate::event::Event;
use crate::text::{Timestamp, push_padded, write_json_str, write_rfc3339};

// ---------------------------------------------------------------- documents

pub(super) fn encode_document(
    buf: String,
    route_name: &str,
    capture_names: &[(usize, String)],
    event: &Event,
    captures: Option<&Captures<'_>>,
) -> String {
    let mut doc = buf;
    doc.reserve(event.text().len() * 2 + 256);
    doc.push('{');
    event.write_canonical_fields(&mut doc);
    doc.push_str(",\"received_at\":\"");
    write_rfc3339(
        &mut doc,
        &Timestamp {
            unix_nanos: event.received_nanos,
            offset_secs: 0,
            frac_digits: 6,
        },
    );
    doc.push_str("\",\"peer\":");
    match event.peer {
        Some(p) => {
            let _ = write!(doc, "\"{p}\"");
        }
        None => doc.push_str("null"),
    }
    doc.push_str(",\"route\":");
    write_json_str(&mut doc, route_name);
    doc.push_str(",\"captures\":");
    push_captures(&mut doc, capture_names, captures);
    doc.push('}');
    doc
}

/// UTC RFC 3339 of an instant, with `digits` fractional digits.
pub(super) fn push_utc(out: &mut String, unix_nanos: i64, digits: u8) {
    write_rfc3339(
        out,
        &Timestamp {
            unix_nanos,
            offset_secs: 0,
            frac_digits: digits,
        },
    );
}

/// An IP address as text: IPv4 by hand (every document from a network
/// peer carries one), IPv6 through its `Display`.
pub(super) fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_padded(out, u64::from(octet), 1);
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `"name":{"k":"v",...}` of a route's captures; nothing when there are none.
pub(super) fn push_captures(
    out: &mut String,
    capture_names: &[(usize, String)],
    captures: Option<&Captures<'_>>,
) {
    out.push('{');
    if let Some(c) = captures {
        let mut first = true;
        for (index, name) in capture_names {
            let Some(value) = c.get(*index) else {
                continue;
            };
            if !first {
                out.push(',');
            }
            first = false;
            write_json_str(out, name);
            out.push(':');
            write_json_str(out, value);
        }
    }
    out.push('}');
}
