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
#[inline]
pub(crate) fn push_escaped(out: &mut String, s: &str, element: Element) {
    let table = match element {
        Element::Measurement => &SPECIAL_MEASUREMENT,
        Element::Key => &SPECIAL_KEY,
    };
    // Nearly every value (a tag of every point) has nothing to escape and
    // no trailing backslash: one test per byte, one copy, in the caller.
    if s.as_bytes().last() != Some(&b'\\') && !s.bytes().any(|b| table[usize::from(b)]) {
        out.push_str(s);
        return;
    }
    push_escaped_slow(out, s, table);
}

/// [`push_escaped`] of a text with something to escape or drop.
#[inline(never)]
fn push_escaped_slow(out: &mut String, s: &str, table: &[bool; 256]) {
    let special = |b: u8| table[usize::from(b)];
    // Trailing backslashes dropped (bytes: `\\` is ASCII).
    let keep = s.bytes().rposition(|b| b != b'\\').map_or(0, |p| p + 1);
    let s = &s[..keep];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `push_escaped` writes, char by char: trailing backslashes
    /// dropped, specials escaped, CR and LF as escaped spaces.
    fn escaped_by_rule(s: &str, equals: bool) -> String {
        let mut out = String::new();
        for c in s.trim_end_matches('\\').chars() {
            match c {
                '\n' | '\r' => out.push_str("\\ "),
                ',' | ' ' => {
                    out.push('\\');
                    out.push(c);
                }
                '=' if equals => out.push_str("\\="),
                _ => out.push(c),
            }
        }
        out
    }

    /// Texts with and without anything to escape (the copy taken whole
    /// and the escaping walk) give the rule's text, appended after what
    /// the line holds: every text of up to four characters over the
    /// specials, a backslash and plain characters.
    #[test]
    fn escaping_matches_the_rule() {
        let alphabet = ['a', ',', ' ', '=', '\n', '\r', '\\', 'é'];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for t in &texts {
                for c in alphabet {
                    let text = format!("{t}{c}");
                    for (element, equals) in [(Element::Measurement, false), (Element::Key, true)] {
                        let mut out = String::from("m,");
                        push_escaped(&mut out, &text, element);
                        assert_eq!(
                            out,
                            format!("m,{}", escaped_by_rule(&text, equals)),
                            "{text:?}"
                        );
                    }
                    longer.push(text);
                }
            }
            texts = longer;
        }
    }
}
