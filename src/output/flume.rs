//! The `flume` document: what Apache Flume 1.9 wrote to Elasticsearch for a
//! frame, so a migration keeps its Kibana searches and dashboards.
//!
//! Two Flume parts made that document, and both are mirrored here:
//!
//! - the syslog sources' `SyslogUtils` (flume-ng-core) made the event. The
//!   PRI is read by a small state machine (a frame not starting with
//!   `<1–3 digits>` is "bad": `Facility` and `Severity` `0`,
//!   `flume.syslog.status = Invalid`, the whole frame as body). Then two
//!   regular expressions are tried on the frame, RFC 5424's first:
//!   `<PRI>VERSION? (STAMP|-) (HOST|-) BODY` and RFC 3164's
//!   `<PRI>VERSION? Mmm dd hh:mm:ss HOST BODY`. The body is everything after
//!   the hostname (for RFC 3164 the TAG `sshd[123]: ` stays in it; for
//!   RFC 5424 app, procid, msgid and structured data do). When neither
//!   matches, or the body is empty, the whole frame is the body. Headers:
//!   `Facility`, `Severity`, and when a pattern matched `priority` (the PRI
//!   digits as written), `version` (when written), `timestamp` (epoch ms)
//!   and `host`. `keepFields` puts parts of the header back in front of the
//!   body (`all`: the whole frame).
//! - Flume's `regex_extractor` interceptor added its captures as headers:
//!   here the route pattern's captures, over a header of the same name.
//! - the ElasticSearchSink's `ElasticSearchLogStashEventSerializer` wrote
//!   `@message` (the body), `@timestamp` (from the `timestamp` header),
//!   `@source`, `@type`, `@source_host`, `@source_path` (from the `source`,
//!   `type`, `host` and `src_path` headers, when not blank) and `@fields`:
//!   every header as a string, in the iteration order of Java's `HashMap`
//!   (reproduced, so the bytes match, not only the fields).
//!
//! Where Sluice deliberately differs (documented in
//! `examples/flume-migration.md`): the `timestamp` header is the instant
//! Sluice decoded (an RFC 5424 stamp without an offset in a frame Sluice's
//! decoder did not read, UTC) (Flume read `.5` as 5 ms and ignored the offset of a
//! timestamp with a fraction); a frame without a timestamp gets the receive
//! time (what Flume's `timestamp` interceptor added; without one, Flume wrote
//! no `@timestamp` at all); a JSON body stays a string in `@message`.

use super::Captures;
use crate::config::FlumeKeepFields;
use crate::event::{Event, Text};
use crate::text::write_json_str;

/// What Flume's `SyslogUtils` saw in a frame's head.
struct Head<'a> {
    /// The PRI's digits; `None` for Flume's "bad event".
    pri: Option<&'a str>,
    /// What the RFC 5424 or RFC 3164 pattern matched, if one did.
    matched: Option<Matched<'a>>,
}

struct Matched<'a> {
    /// The PRI digits (the `priority` group).
    priority: &'a str,
    /// `""` when none was written.
    version: &'a str,
    /// The timestamp as written; `None` for RFC 5424's `-`.
    stamp: Option<&'a str>,
    /// `None` for RFC 5424's `-`.
    host: Option<&'a str>,
    /// Where the body starts in the frame.
    body_start: usize,
}

/// Java's `\s`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Java's `\w` (ASCII).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `n` ASCII digits at `s[i..]`: the index after them.
fn digits(s: &[u8], i: usize, n: usize) -> Option<usize> {
    let d = s.get(i..i + n)?;
    d.iter().all(u8::is_ascii_digit).then_some(i + n)
}

fn byte(s: &[u8], i: usize, b: u8) -> Option<usize> {
    (s.get(i) == Some(&b)).then_some(i + 1)
}

fn space(s: &[u8], i: usize) -> Option<usize> {
    s.get(i).is_some_and(|&b| is_space(b)).then_some(i + 1)
}

/// `[\w][\w\d\.@-]*`: the index after it.
fn hostname(s: &[u8], i: usize) -> Option<usize> {
    if !s.get(i).is_some_and(|&b| is_word(b)) {
        return None;
    }
    let len = s[i..]
        .iter()
        .take_while(|&&b| is_word(b) || matches!(b, b'.' | b'@' | b'-'))
        .count();
    Some(i + len)
}

/// `YYYY-MM-DDThh:mm:ss(\.\d{1,6})?([+-]hh:mm|Z)?`.
fn rfc5424_stamp(s: &[u8], i: usize) -> Option<usize> {
    let i = digits(s, i, 4)?;
    let i = digits(s, byte(s, i, b'-')?, 2)?;
    let i = digits(s, byte(s, i, b'-')?, 2)?;
    let i = digits(s, byte(s, i, b'T')?, 2)?;
    let i = digits(s, byte(s, i, b':')?, 2)?;
    let mut i = digits(s, byte(s, i, b':')?, 2)?;
    if s.get(i) == Some(&b'.') {
        let n = s[i + 1..]
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n > 0 {
            i += 1 + n;
        }
    }
    match s.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') => {
            if let Some(end) = digits(s, i + 1, 2)
                .and_then(|j| byte(s, j, b':'))
                .and_then(|j| digits(s, j, 2))
            {
                i = end;
            }
        }
        _ => {}
    }
    Some(i)
}

/// `SYSLOG_MSG_RFC5424_0` from the PRI's end: `(\d?)\s?(STAMP|-)\s(HOST|-)\s`.
fn rfc5424<'a>(frame: &'a str, i: usize) -> Option<Matched<'a>> {
    let s = frame.as_bytes();
    // `(\d?)` takes a digit when it can, and gives it back when the rest
    // does not match with it (the digit then starts the timestamp).
    let with_digit = s.get(i).is_some_and(u8::is_ascii_digit);
    let tries: &[bool] = if with_digit { &[true, false] } else { &[false] };
    tries.iter().find_map(|&take| {
        let mut j = if take { i + 1 } else { i };
        let version = &frame[i..j];
        if s.get(j).is_some_and(|&b| is_space(b)) {
            j += 1;
        }
        let (stamp, j) = if s.get(j) == Some(&b'-') {
            (None, j + 1)
        } else {
            let end = rfc5424_stamp(s, j)?;
            (Some(&frame[j..end]), end)
        };
        let j = space(s, j)?;
        let (host, j) = match hostname(s, j) {
            Some(end) => (Some(&frame[j..end]), end),
            None => (None, byte(s, j, b'-')?),
        };
        let body_start = space(s, j)?;
        Some(Matched {
            priority: "",
            version,
            stamp,
            host,
            body_start,
        })
    })
}

/// `SYSLOG_MSG_RFC3164_0` from the PRI's end:
/// `(\d)?\s?([A-Z][a-z][a-z]\s{1,2}\d{1,2}\s\d{2}:\d{2}:\d{2})\s(HOST)\s`.
fn rfc3164<'a>(frame: &'a str, i: usize) -> Option<Matched<'a>> {
    let s = frame.as_bytes();
    let mut j = i;
    if s.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let version = &frame[i..j];
    if s.get(j).is_some_and(|&b| is_space(b)) {
        j += 1;
    }
    let start = j;
    let month = s.get(j..j + 3)?;
    if !(month[0].is_ascii_uppercase() && month[1..].iter().all(u8::is_ascii_lowercase)) {
        return None;
    }
    j = space(s, j + 3)?;
    if s.get(j).is_some_and(|&b| is_space(b)) {
        j += 1;
    }
    j = digits(s, j, 1)?;
    if s.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    j = space(s, j)?;
    j = digits(s, j, 2)?;
    j = digits(s, byte(s, j, b':')?, 2)?;
    j = digits(s, byte(s, j, b':')?, 2)?;
    let stamp = &frame[start..j];
    let host_start = space(s, j)?;
    let host_end = hostname(s, host_start)?;
    let body_start = space(s, host_end)?;
    Some(Matched {
        priority: "",
        version,
        stamp: Some(stamp),
        host: Some(&frame[host_start..host_end]),
        body_start,
    })
}

/// Flume's reading of `frame` (without its trailing newline).
fn head(frame: &str) -> Head<'_> {
    let s = frame.as_bytes();
    let bad = Head {
        pri: None,
        matched: None,
    };
    if s.first() != Some(&b'<') {
        return bad;
    }
    let n = s[1..]
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > 3 {
        return bad;
    }
    let pri = &frame[1..1 + n];
    if s.get(1 + n) != Some(&b'>') {
        // Flume reads a frame that ends inside the PRI as a PRI; anything
        // else there makes it bad.
        return if s.len() == 1 + n {
            Head {
                pri: Some(pri),
                matched: None,
            }
        } else {
            bad
        };
    }
    let after = 2 + n;
    let matched = rfc5424(frame, after)
        .or_else(|| rfc3164(frame, after))
        // `(.*)$` under `matches()`: Java's `.` stops at these.
        .filter(|m| !frame[m.body_start..].contains(['\r', '\u{85}', '\u{2028}', '\u{2029}']))
        .map(|m| Matched { priority: pri, ..m });
    Head {
        pri: Some(pri),
        matched,
    }
}

/// Epoch ms of an RFC 5424 stamp in a frame Sluice's decoder did not read
/// (Flume's pattern is laxer: `<10>1 STAMP HOST text` has no app, procid
/// or msgid). Without an offset it is read as UTC (Flume: the JVM's zone).
fn rfc5424_stamp_millis(stamp: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(stamp) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// `s` has only whitespace (commons-lang `StringUtils.isBlank`).
fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    for unit in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    h
}

/// The bucket of `key` in a Java 8+ `HashMap` with `capacity` buckets.
fn java_bucket(key: &str, capacity: usize) -> usize {
    let h = java_hash(key) as u32;
    ((h ^ (h >> 16)) as usize) & (capacity - 1)
}

/// Iteration order of a `HashMap` holding `keys` (in insertion order) in
/// `capacity` buckets: by bucket, and within one in insertion order (Java 8
/// keeps it across resizes; treeified buckets, 8 keys in one, are not
/// modelled).
fn java_order(keys: &mut [(String, String)], capacity: usize) {
    keys.sort_by_key(|(k, _)| java_bucket(k, capacity));
}

/// The capacity `new HashMap<>(map)` gives a copy of `n` entries.
fn copy_capacity(n: usize) -> usize {
    let wanted = (n as f32 / 0.75 + 1.0) as usize;
    wanted.max(1).next_power_of_two()
}

/// Put `headers` in the order Flume's serializer iterated them: the first
/// `from_source` went into SyslogUtils' `HashMap` (16 buckets),
/// `EventBuilder` copied it, the interceptors put the rest into the copy
/// (doubling it past 3/4 full), and the serializer copied that.
fn flume_header_order(headers: &mut [(String, String)], from_source: usize) {
    let (source, _) = headers.split_at_mut(from_source);
    java_order(source, 16);
    let mut capacity = copy_capacity(from_source);
    while headers.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    java_order(headers, capacity);
    let copied = copy_capacity(headers.len());
    java_order(headers, copied);
}

/// Append the `flume` document of `event` to `doc`.
pub(super) fn encode(
    doc: &mut String,
    event: &Event,
    keep: FlumeKeepFields,
    capture_names: &[(usize, String)],
    captures: Option<&Captures<'_>>,
) {
    let text = event.text();
    let frame = text.trim_end_matches('\n');
    let head = head(frame);
    let body = body(event, frame, &head, keep);
    let headers = headers(event, &head, capture_names, captures);
    write_document(doc, &body, &headers);
}

/// The body: what Flume kept of the frame. A message Sluice replaced
/// (joined continuation lines, restored newlines) replaces its part.
fn body(event: &Event, frame: &str, head: &Head<'_>, keep: FlumeKeepFields) -> String {
    let from = |start: usize| -> String {
        let message_start = match (&event.message, event.frame_message) {
            (Text::Span(_), _) => None,
            (_, Some(span)) => Some(span.start as usize),
            (_, None) => None,
        };
        match message_start {
            None => frame.get(start..).unwrap_or_default().to_owned(),
            Some(m) if m >= start => {
                let mut body = frame.get(start..m).unwrap_or_default().to_owned();
                body.push_str(event.message());
                body
            }
            Some(_) => event.message().to_owned(),
        }
    };
    let mut body = match (&head.matched, keep.all) {
        (Some(m), false) => {
            let mut body = from(m.body_start);
            // SyslogUtils.addFieldsToBody, innermost first; Flume wrote
            // "null" for a field the frame had as `-`.
            if keep.hostname {
                body.insert_str(0, &format!("{} ", m.host.unwrap_or("null")));
            }
            if keep.timestamp {
                body.insert_str(0, &format!("{} ", m.stamp.unwrap_or("null")));
            }
            if keep.version && !m.version.is_empty() {
                body.insert_str(0, &format!("{} ", m.version));
            }
            if keep.priority {
                body.insert_str(0, &format!("<{}>", m.priority));
            }
            body
        }
        _ => String::new(),
    };
    if body.is_empty() {
        body = from(0);
    }
    body
}

/// The event's headers, in the order SyslogUtils and the interceptors put
/// them.
fn headers(
    event: &Event,
    head: &Head<'_>,
    capture_names: &[(usize, String)],
    captures: Option<&Captures<'_>>,
) -> Vec<(String, String)> {
    let pri: u32 = head.pri.and_then(|p| p.parse().ok()).unwrap_or(0);
    let mut headers: Vec<(String, String)> = vec![
        ("Facility".into(), (pri / 8).to_string()),
        ("Severity".into(), (pri % 8).to_string()),
    ];
    if let Some(m) = &head.matched {
        headers.push(("priority".into(), m.priority.to_owned()));
        if !m.version.is_empty() {
            headers.push(("version".into(), m.version.to_owned()));
        }
        let millis = m.stamp.and_then(|stamp| match event.timestamp {
            Some(t) => Some(t.unix_nanos.div_euclid(1_000_000)),
            None => rfc5424_stamp_millis(stamp),
        });
        if let Some(ms) = millis {
            headers.push(("timestamp".into(), ms.to_string()));
        }
        if let Some(h) = m.host {
            headers.push(("host".into(), h.to_owned()));
        }
    }
    if head.pri.is_none() {
        headers.push(("flume.syslog.status".into(), "Invalid".into()));
    }
    let from_source = headers.len();
    // The regex_extractor interceptor: a capture replaces a header.
    if let Some(c) = captures {
        for (index, name) in capture_names {
            let Some(value) = c.get(*index) else {
                continue;
            };
            match headers.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => *v = value.to_owned(),
                None => headers.push((name.clone(), value.to_owned())),
            }
        }
    }
    // The timestamp interceptor (preserveExisting = true): the receive time.
    if !headers.iter().any(|(k, _)| k == "timestamp") {
        headers.push((
            "timestamp".into(),
            event.received_nanos.div_euclid(1_000_000).to_string(),
        ));
    }
    flume_header_order(&mut headers, from_source);
    headers
}

/// The document `ElasticSearchLogStashEventSerializer` wrote from them.
fn write_document(doc: &mut String, body: &str, headers: &[(String, String)]) {
    let get = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !is_blank(v))
    };
    doc.reserve(
        body.len()
            + 128
            + headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>(),
    );
    doc.push_str("{\"@message\":");
    write_json_str(doc, body);
    if get("@timestamp").is_none() {
        if let Some(ms) = get("timestamp").and_then(|t| t.parse::<i64>().ok()) {
            doc.push_str(",\"@timestamp\":\"");
            super::document::push_utc(doc, ms.saturating_mul(1_000_000), 3);
            doc.push('"');
        }
    }
    for (header, field) in [
        ("source", "@source"),
        ("type", "@type"),
        ("host", "@source_host"),
        ("src_path", "@source_path"),
    ] {
        if let (Some(v), None) = (get(header), get(field)) {
            doc.push_str(",\"");
            doc.push_str(field);
            doc.push_str("\":");
            write_json_str(doc, v);
        }
    }
    doc.push_str(",\"@fields\":{");
    for (i, (k, v)) in headers.iter().enumerate() {
        if i > 0 {
            doc.push(',');
        }
        write_json_str(doc, k);
        doc.push(':');
        write_json_str(doc, v);
    }
    doc.push_str("}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_as_flumes_patterns_read_them() {
        let m = |f: &str| {
            let h = head(f);
            let m = h.matched.map(|m| {
                (
                    m.priority.to_owned(),
                    m.version.to_owned(),
                    m.stamp.map(str::to_owned),
                    m.host.map(str::to_owned),
                    f[m.body_start..].to_owned(),
                )
            });
            (h.pri.map(str::to_owned), m)
        };
        let s = |v: &str| Some(v.to_owned());
        // TestSyslogUtils.TestHeader0: no version, the digit starts the stamp.
        assert_eq!(
            m("<10>2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg"),
            (
                s("10"),
                Some((
                    "10".into(),
                    "".into(),
                    s("2012-04-13T11:11:11+08:00"),
                    s("ubuntu-11.cloudera.com"),
                    "some msg".into()
                ))
            )
        );
        assert_eq!(
            m("<10>1 - - some msg").1,
            Some(("10".into(), "1".into(), None, None, "some msg".into()))
        );
        assert_eq!(
            m("<38>Dec  6 10:00:00 host1 sshd[123]: Accepted password for kim").1,
            Some((
                "38".into(),
                "".into(),
                s("Dec  6 10:00:00"),
                s("host1"),
                "sshd[123]: Accepted password for kim".into()
            ))
        );
        // Seven fraction digits: neither pattern matches.
        assert_eq!(m("<10>1 2012-04-13T11:11:11.1234567Z h x").1, None);
        assert_eq!(m("<10>Good good good data"), (s("10"), None));
        for bad in ["<10F> bad", "hi guys! <10> bad", "<> bad", "<1234> bad"] {
            assert_eq!(m(bad), (None, None), "{bad}");
        }
    }

    /// A message the joiner or `newline_escape` replaced replaces its part
    /// of the body; the header part Flume kept stays.
    #[test]
    fn a_replaced_message_replaces_its_part_of_the_body() {
        use crate::decode::{DecodeOptions, decode};
        use crate::multiline::{Joiner, MultilineConfig};
        let ev = |f: &str| {
            decode(
                bytes::Bytes::copy_from_slice(f.as_bytes()),
                Some("127.0.0.1:9".parse().unwrap()),
                0,
                &DecodeOptions::default(),
            )
        };
        let mut j = Joiner::new(MultilineConfig::default());
        let now = tokio::time::Instant::now();
        let mut out = Vec::new();
        for f in [
            "<187>Dec  6 10:00:00 vm app[7]: Order failed",
            "<187>Dec  6 10:00:00 vm app[7]:     at L1.main(L1.java:32)",
        ] {
            j.push(ev(f), now, &mut out);
        }
        j.close(&mut out);
        assert_eq!(out.len(), 1);
        let mut doc = String::new();
        encode(&mut doc, &out[0], FlumeKeepFields::default(), &[], None);
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(
            v["@message"],
            "app[7]: Order failed\n    at L1.main(L1.java:32)"
        );
        let opts = DecodeOptions {
            newline_escape: Some("\\n".into()),
            ..DecodeOptions::default()
        };
        let e = decode(
            bytes::Bytes::from_static(b"<14>1 - vm app - - - one\\ntwo"),
            None,
            0,
            &opts,
        );
        let mut doc = String::new();
        encode(&mut doc, &e, FlumeKeepFields::default(), &[], None);
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["@message"], "app - - - one\ntwo");
    }

    /// Orders printed by OpenJDK 17 for Flume's chain: a `HashMap` of the
    /// source's headers, `new HashMap<>(it)` (EventBuilder), the
    /// interceptors' headers put into that, `new HashMap<>(it)` again (the
    /// serializer).
    #[test]
    fn java_hash_map_order_is_reproduced() {
        assert_eq!(java_hash("Facility"), 565_760_707);
        // Header names: the source's, those the interceptors add, and
        // the order Java printed.
        let cases = [
            (
                "Facility Severity priority timestamp host",
                "",
                "host Severity Facility priority timestamp",
            ),
            (
                "Facility Severity priority version timestamp host",
                "",
                "host Severity Facility priority version timestamp",
            ),
            (
                "Facility Severity flume.syslog.status",
                "timestamp",
                "Severity Facility flume.syslog.status timestamp",
            ),
            (
                "Facility Severity priority version host",
                "timestamp",
                "host Severity Facility priority version timestamp",
            ),
            (
                "Facility Severity",
                "timestamp",
                "Severity Facility timestamp",
            ),
            (
                "Facility Severity priority version timestamp host",
                "code latency_ms",
                "code host Severity Facility priority version timestamp latency_ms",
            ),
            (
                "Facility Severity priority timestamp host",
                "a b c d e f g h user session",
                "a b c d e f session g h Severity priority host Facility user timestamp",
            ),
        ];
        for (source, added, java) in cases {
            let mut headers: Vec<(String, String)> = source
                .split_whitespace()
                .chain(added.split_whitespace())
                .map(|k| (k.to_owned(), String::new()))
                .collect();
            flume_header_order(&mut headers, source.split_whitespace().count());
            let got: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
            let java: Vec<&str> = java.split_whitespace().collect();
            assert_eq!(got, java, "{source:?} + {added:?}");
        }
    }
}
