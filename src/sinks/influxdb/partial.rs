//! What an InfluxDB partial write (1.x 400, 2.x 422) says was rejected:
//! the lines it names, or those a field type conflict singles out, or
//! every line as an ambiguous candidate.

use super::{DeadLine, Rejects};

/// What a 1.x 400 / 2.x 422 says was rejected of the `sent` lines, or
/// `None` when it says nothing of a partial write (the whole request was
/// refused: bisect).
///
/// - `unable to parse '<line>': why` names each rejected line.
/// - A field type conflict (`input field "f" on measurement "m" is type
///   integer, already exists as type float dropped=N`) names the field,
///   the measurement and the type already stored: the lines of `m` whose
///   `f` has another type are the rejected ones — when exactly `N` lines
///   are so.
/// - Otherwise (`dropped=N` alone, or a conflict that does not account
///   for `N` lines: InfluxDB reports only its first error) which lines
///   were stored is unknowable: every line sent is dead-lettered as an
///   ambiguous candidate, and exactly `N` are counted rejected. A line
///   that may have been stored is never passed off as the rejected one.
pub(super) fn partial_rejects(reason: &str, sent: &[&str]) -> Option<Rejects> {
    let mut named = Vec::new();
    for line in sent {
        let quoted = format!("unable to parse '{line}'");
        if let Some(at) = reason.find(&quoted) {
            let why = reason[at + quoted.len()..]
                .trim_start_matches(':')
                .split(['\n'])
                .next()
                .unwrap_or("")
                .trim();
            let why = why.split(" dropped=").next().unwrap_or(why);
            named.push(DeadLine {
                line: (*line).to_owned(),
                reason: format!("unable to parse: {why}"),
                ambiguous: false,
            });
        }
    }
    if !named.is_empty() {
        let count = named.len() as u64;
        return Some(Rejects {
            entries: named,
            count,
        });
    }
    let dropped = reason
        .rsplit_once("dropped=")
        .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)?
        .min(sent.len());
    if let Some((field, measurement, existing)) = type_conflict(reason) {
        let conflicting: Vec<&str> = sent
            .iter()
            .copied()
            .filter(|line| {
                line_fields(line).is_some_and(|(m, fields)| {
                    m == measurement
                        && fields
                            .iter()
                            .any(|(k, v)| *k == field && field_type(v) != existing)
                })
            })
            .collect();
        if conflicting.len() == dropped {
            return Some(Rejects {
                entries: conflicting
                    .into_iter()
                    .map(|line| DeadLine {
                        line: line.to_owned(),
                        reason: reason.to_owned(),
                        ambiguous: false,
                    })
                    .collect(),
                count: dropped as u64,
            });
        }
    }
    let why = format!(
        "{reason} (InfluxDB rejected {dropped} of the {} lines of this request without saying which: this line is one of the candidates)",
        sent.len()
    );
    Some(Rejects {
        entries: sent
            .iter()
            .map(|line| DeadLine {
                line: (*line).to_owned(),
                reason: why.clone(),
                ambiguous: true,
            })
            .collect(),
        count: dropped as u64,
    })
}

/// A field type conflict's (field, measurement, type already stored):
/// `input field "f" on measurement "m" is type integer, already exists as
/// type float`.
pub(super) fn type_conflict(reason: &str) -> Option<(String, String, &str)> {
    let rest = reason.split_once("input field \"")?.1;
    let (field, rest) = quoted_name(rest)?;
    let rest = rest.strip_prefix(" on measurement \"")?;
    let (measurement, rest) = quoted_name(rest)?;
    let existing = rest
        .split_once("already exists as type ")?
        .1
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?;
    Some((field, measurement, existing))
}

/// A name up to its closing `"` (InfluxDB quotes with Go's `%q`: `\"` and
/// `\\` inside), and what follows the quote.
pub(super) fn quoted_name(s: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((name, &s[i + 1..])),
            '\\' => name.push(chars.next()?.1),
            c => name.push(c),
        }
    }
    None
}

/// A line protocol line's measurement (unescaped) and its fields (key
/// unescaped, raw value); `None` when it does not read as one.
pub(super) fn line_fields(line: &str) -> Option<(String, Vec<(String, &str)>)> {
    let b = line.as_bytes();
    let mut i = 0;
    // Measurement, then tags, up to an unescaped space.
    let mut measurement = Vec::new();
    let mut in_tags = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if b.get(i + 1).is_some() => {
                if !in_tags {
                    measurement.extend_from_slice(b.get(i + 1..i + 2)?);
                }
                i += 2;
                continue;
            }
            b' ' => break,
            b',' => in_tags = true,
            c if !in_tags => measurement.push(c),
            _ => {}
        }
        i += 1;
    }
    i += 1;
    let mut fields = Vec::new();
    loop {
        let mut key = Vec::new();
        loop {
            match *b.get(i)? {
                b'\\' => {
                    key.extend_from_slice(b.get(i + 1..i + 2)?);
                    i += 2;
                }
                b'=' => break,
                c => {
                    key.push(c);
                    i += 1;
                }
            }
        }
        i += 1;
        let start = i;
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match *b.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            i += 1;
        } else {
            while b.get(i).is_some_and(|c| !matches!(c, b',' | b' ')) {
                i += 1;
            }
        }
        fields.push((String::from_utf8(key).ok()?, line.get(start..i)?));
        match b.get(i) {
            Some(b',') => i += 1,
            _ => break,
        }
    }
    Some((String::from_utf8(measurement).ok()?, fields))
}

/// A field value's type as InfluxDB names it.
pub(super) fn field_type(raw: &str) -> &'static str {
    let digits = |d: &str| {
        let d = d.strip_prefix('-').unwrap_or(d);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    };
    if raw.starts_with('"') {
        "string"
    } else if matches!(
        raw,
        "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE"
    ) {
        "boolean"
    } else if raw.strip_suffix('i').is_some_and(digits) {
        "integer"
    } else if raw
        .strip_suffix('u')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
    {
        "unsigned"
    } else {
        "float"
    }
}
