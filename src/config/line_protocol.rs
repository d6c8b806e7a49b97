//! Line protocol escaping of names (measurements, tag and field keys):
//! metric settings hold their keys escaped once, at validation, and the
//! output encoder escapes values with the same tables.

/// Which characters an element of a line must escape.
#[derive(Clone, Copy)]
pub(crate) enum Element {
    /// Measurement: comma and space.
    Measurement,
    /// Tag keys, tag values, field keys: comma, `=` and space.
    Key,
}

/// Bytes that need escaping (or replacing) in a measurement name.
pub(crate) static SPECIAL_MEASUREMENT: [bool; 256] = special_table(false);
/// ... in a tag key, tag value or field key.
pub(crate) static SPECIAL_KEY: [bool; 256] = special_table(true);

const fn special_table(equals: bool) -> [bool; 256] {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b' ' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'=' as usize] = equals;
    t
}

/// Append `s` escaped for `element`. Line protocol cannot carry CR/LF in
/// names: they become (escaped) spaces. A trailing backslash is dropped: it would escape the comma, space or `=`
/// that follows, and InfluxDB 1.x rejects a doubled one too ("invalid tag
/// format", checked against influxd 1.6).
pub(crate) fn push_escaped(out: &mut String, s: &str, element: Element) {
    // Trailing backslashes dropped (bytes: `\\` is ASCII).
    let keep = s.bytes().rposition(|b| b != b'\\').map_or(0, |p| p + 1);
    let s = &s[..keep];
    let table = match element {
        Element::Measurement => &SPECIAL_MEASUREMENT,
        Element::Key => &SPECIAL_KEY,
    };
    let special = |b: u8| table[usize::from(b)];
    let bytes = s.as_bytes();
    let mut start = 0;
    // Copy runs of ordinary bytes whole; specials are ASCII, so the cuts
    // fall on char boundaries.
    for (i, &b) in bytes.iter().enumerate() {
        if !special(b) {
            continue;
        }
        out.push_str(&s[start..i]);
        match b {
            b'\n' | b'\r' => out.push_str("\\ "),
            _ => {
                out.push('\\');
                out.push(b as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// A tag or field key as line protocol writes it.
pub(crate) fn line_protocol_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_escaped(&mut out, name, Element::Key);
    out
}

/// Measurement text as line protocol writes it.
pub fn line_protocol_measurement(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text, Element::Measurement);
    out
}
