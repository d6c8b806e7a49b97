//! Grok patterns → `regex` syntax, once, at start-up.
//!
//! A route pattern may use `%{SYNTAX}`, `%{SYNTAX:name}` and
//! `%{SYNTAX:name:type}`: SYNTAX is a pattern of the built-in library
//! ([`BUILTIN`]) or one defined in the config (inline or in pattern files),
//! `name` makes it a named capture, and `type` declares how the capture is
//! read: `int`, `uint`, `float`, `bool`, `string`, `duration` (`1.5s`,
//! `200ms`, `2m` → nanoseconds) or `bytes` (`1.5KB`, `2MiB` → bytes).
//! Every expansion is wrapped in a non-capturing group, so alternations in a
//! pattern never leak into the text around it. Everything outside `%{…}` is
//! plain regex and passes through unchanged.
//!
//! Errors (unknown pattern, a cycle, a bad type, text the engine cannot
//! compile) name the pattern they come from.

use std::collections::{HashMap, HashSet};

/// The built-in library, written for the `regex` crate (no look-around, no
/// back-references). Names follow the Logstash/Telegraf conventions. Word,
/// space and boundary classes are ASCII, as in the Java and Ruby engines
/// grok patterns come from; that also keeps hundreds of them small enough to
/// run together.
const BUILTIN: &[(&str, &str)] = &[
    // Numbers.
    ("INT", r"[+-]?[0-9]+"),
    ("POSINT", r"(?-u:\b)[1-9][0-9]*(?-u:\b)"),
    ("NONNEGINT", r"(?-u:\b)[0-9]+(?-u:\b)"),
    ("BASE10NUM", r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"),
    ("NUMBER", r"%{BASE10NUM}(?:[eE][+-]?[0-9]+)?"),
    ("BASE16NUM", r"[+-]?(?:0x)?[0-9A-Fa-f]+"),
    // Words and text.
    ("WORD", r"(?-u:\b\w+\b)"),
    ("NOTSPACE", r"[^\t\n\x0B\x0C\r ]+"),
    ("SPACE", r"[\t\n\x0B\x0C\r ]*"),
    ("DATA", r".*?"),
    ("GREEDYDATA", r".*"),
    ("QUOTEDSTRING", r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"#),
    ("QS", r"%{QUOTEDSTRING}"),
    (
        "UUID",
        r"(?-u:\b)[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}(?-u:\b)",
    ),
    ("USERNAME", r"[a-zA-Z0-9._-]+"),
    ("USER", r"%{USERNAME}"),
    // Networks.
    (
        "IPV4",
        r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?-u:\b)",
    ),
    (
        "IPV6",
        concat!(
            r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){6}%{IPV4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}",
            r"|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}",
            r"|::(?:[Ff]{4}(?::0{1,4})?:)?%{IPV4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
            r"|:(?::[0-9A-Fa-f]{1,4}){1,7}",
            r"|::"
        ),
    ),
    ("IP", r"%{IPV6}|%{IPV4}"),
    (
        "HOSTNAME",
        r"(?-u:\b)[0-9A-Za-z][0-9A-Za-z-]{0,62}(?:\.[0-9A-Za-z][0-9A-Za-z-]{0,62})*\.?",
    ),
    ("IPORHOST", r"%{IP}|%{HOSTNAME}"),
    ("HOSTPORT", r"%{IPORHOST}:%{POSINT}"),
    // Paths and URIs.
    ("UNIXPATH", r"(?:/[0-9A-Za-z_%!$@:.,+~-]*)+"),
    ("WINPATH", r"(?:[A-Za-z]+:|\\)(?:\\[^\\?*]*)+"),
    ("PATH", r"%{UNIXPATH}|%{WINPATH}"),
    ("URIPROTO", r"[A-Za-z][A-Za-z0-9+.-]*"),
    ("URIHOST", r"%{IPORHOST}(?::%{POSINT})?"),
    ("URIPATH", r"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_-]*)+"),
    ("URIPARAM", r"\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\[\]<>-]*"),
    ("URIPATHPARAM", r"%{URIPATH}(?:%{URIPARAM})?"),
    (
        "URI",
        r"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?",
    ),
    // Dates and times.
    (
        "MONTH",
        r"(?-u:\b)(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]une?|[Jj]uly?|[Aa]ug(?:ust)?|[Ss]ep(?:tember)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)(?-u:\b)",
    ),
    ("MONTHNUM", r"0?[1-9]|1[0-2]"),
    ("MONTHDAY", r"0[1-9]|[12][0-9]|3[01]|[1-9]"),
    ("YEAR", r"[0-9]{2}(?:[0-9]{2})?"),
    ("HOUR", r"2[0-3]|[01]?[0-9]"),
    ("MINUTE", r"[0-5][0-9]"),
    ("SECOND", r"(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?"),
    ("TIME", r"%{HOUR}:%{MINUTE}(?::%{SECOND})?"),
    ("ISO8601_TIMEZONE", r"Z|[+-]%{HOUR}(?::?%{MINUTE})?"),
    (
        "TIMESTAMP_ISO8601",
        r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?(?:%{ISO8601_TIMEZONE})?",
    ),
    ("HTTPDATE", r"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}"),
    // Logs.
    (
        "LOGLEVEL",
        r"(?-u:\b)(?:[Tt]race|TRACE|[Dd]ebug|DEBUG|[Ii]nfo|INFO|[Nn]otice|NOTICE|[Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|[Ff]atal|FATAL|[Ss]evere|SEVERE|[Ee]merg(?:ency)?|EMERG(?:ENCY)?|[Aa]lert|ALERT)(?-u:\b)",
    ),
    (
        "JAVACLASS",
        r"(?:[A-Za-z$_][A-Za-z$_0-9]*\.)*[A-Za-z$_][A-Za-z$_0-9]*",
    ),
    (
        "JAVATHREAD",
        r"[A-Za-z0-9_$.#:/-]+(?: [A-Za-z0-9_$.#:/-]+)*",
    ),
    (
        "COMMONAPACHELOG",
        r#"%{IPORHOST:clientip} %{USER:ident} %{USER:auth} \[%{HTTPDATE:timestamp}\] "(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" %{NUMBER:response} (?:%{NUMBER:bytes}|-)"#,
    ),
    (
        "COMBINEDAPACHELOG",
        r"%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GrokError {
    #[error("unknown grok pattern %{{{name}}}{}", used_by(.within))]
    Unknown {
        name: String,
        within: Option<String>,
    },
    #[error("grok patterns refer to each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error(
        "unknown capture type {kind:?} in %{{{spec}}} (int, uint, float, bool, string, duration, bytes)"
    )]
    BadType { spec: String, kind: String },
    #[error(
        "malformed %{{...}} in {0:?}: expected %{{NAME}}, %{{NAME:capture}} or %{{NAME:capture:type}}"
    )]
    Malformed(String),
    #[error("capture {name:?} declared twice with different types")]
    TypeConflict { name: String },
}

fn used_by(w: &Option<String>) -> String {
    w.as_ref()
        .map(|p| format!(" (used by pattern {p})"))
        .unwrap_or_default()
}

/// A grok library: the built-ins plus custom definitions.
#[derive(Debug, Clone)]
pub(crate) struct Library {
    patterns: HashMap<String, String>,
}

impl Default for Library {
    fn default() -> Self {
        Library {
            patterns: BUILTIN
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// A route pattern after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    /// The pattern in `regex` syntax.
    pub regex: String,
    /// Declared capture types, by capture name.
    pub types: Vec<(String, FieldType)>,
}

impl Library {
    /// Add or replace a pattern (custom definitions win over built-ins).
    pub(crate) fn define(&mut self, name: &str, pattern: &str) {
        self.patterns.insert(name.to_owned(), pattern.to_owned());
    }

    /// Read a pattern file: `NAME pattern` per line; blank lines and lines
    /// starting with `#` are skipped. Errors name the line.
    /// Returns the names defined, in order.
    pub(crate) fn define_file(&mut self, text: &str) -> Result<Vec<String>, (usize, String)> {
        let mut names = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, pattern)) = line.split_once(char::is_whitespace) else {
                return Err((i + 1, "expected NAME followed by a pattern".to_owned()));
            };
            if !valid_name(name) {
                return Err((
                    i + 1,
                    format!("{name:?} is not a pattern name ([A-Za-z0-9_])"),
                ));
            }
            self.define(name, pattern.trim());
            names.push(name.to_owned());
        }
        Ok(names)
    }

    /// Expand `pattern` into `regex` syntax. Plain regex passes through.
    pub(crate) fn expand(&self, pattern: &str) -> Result<Expanded, GrokError> {
        let mut out = String::with_capacity(pattern.len() * 4);
        let mut types = Vec::new();
        let mut stack = Vec::new();
        self.expand_into(pattern, None, &mut out, &mut types, &mut stack)?;
        Ok(Expanded { regex: out, types })
    }

    fn expand_into(
        &self,
        pattern: &str,
        within: Option<&str>,
        out: &mut String,
        types: &mut Vec<(String, FieldType)>,
        stack: &mut Vec<String>,
    ) -> Result<(), GrokError> {
        let mut rest = pattern;
        while let Some(start) = rest.find("%{") {
            // `\%{` is a literal `%{`.
            if rest[..start].ends_with('\\') {
                out.push_str(&rest[..start - 1]);
                out.push_str("%\\{");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(GrokError::Malformed(pattern.to_owned()));
            };
            let spec = &after[..end];
            rest = &after[end + 1..];
            let mut parts = spec.splitn(3, ':');
            let name = parts.next().unwrap_or("");
            let capture = parts.next();
            let kind = parts.next();
            if !valid_name(name) || capture.is_some_and(|c| !valid_capture(c)) {
                return Err(GrokError::Malformed(format!("%{{{spec}}}")));
            }
            let Some(body) = self.patterns.get(name) else {
                return Err(GrokError::Unknown {
                    name: name.to_owned(),
                    within: within.map(str::to_owned),
                });
            };
            if stack.iter().any(|s| s == name) {
                let mut cycle = stack.clone();
                cycle.push(name.to_owned());
                return Err(GrokError::Cycle(cycle));
            }
            if let (Some(c), Some(k)) = (capture, kind) {
                let t = FieldType::parse(k).ok_or_else(|| GrokError::BadType {
                    spec: spec.to_owned(),
                    kind: k.to_owned(),
                })?;
                match types.iter().find(|(n, _)| n == c) {
                    Some((_, prev)) if *prev != t => {
                        return Err(GrokError::TypeConflict { name: c.to_owned() });
                    }
                    Some(_) => {}
                    None => types.push((c.to_owned(), t)),
                }
            }
            match capture {
                Some(c) => {
                    out.push_str("(?P<");
                    out.push_str(c);
                    out.push('>');
                }
                None => out.push_str("(?:"),
            }
            stack.push(name.to_owned());
            self.expand_into(body, Some(name), out, types, stack)?;
            stack.pop();
            out.push(')');
        }
        out.push_str(rest);
        Ok(())
    }

    /// Check every custom pattern expands (unknown names, cycles) without
    /// compiling it: errors name the pattern.
    pub(crate) fn check(&self, names: &HashSet<String>) -> Result<(), (String, GrokError)> {
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        for name in sorted {
            self.expand(&format!("%{{{name}}}"))
                .map_err(|e| (name.clone(), e))?;
        }
        Ok(())
    }
}

/// A pattern name: `[A-Za-z0-9_]+`.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn valid_capture(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// `1.5s`, `200ms`, `2m`, `1h30m`, `90` (seconds) → nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return to_nanos(secs * 1e9);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * unit;
    }
    to_nanos(total)
}

/// `1.5KB`, `2MiB`, `512`, `10 kB` → bytes (SI units ×1000, IEC ×1024).
pub(crate) fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let value: f64 = s[..num_len].parse().ok()?;
    let unit = s[num_len..].trim_start();
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => return None,
    };
    to_nanos(value * factor)
}

fn to_nanos(v: f64) -> Option<i64> {
    (v.is_finite() && v.abs() < 9.2e18).then(|| v.round() as i64)
}

/// The type a capture is converted to (`%{NUMBER:used:int}`, a metric field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int,
    Uint,
    Float,
    Bool,
    String,
    /// `1.5s`, `200ms`, `1h30m`, `90` (seconds) → integer nanoseconds.
    Duration,
    /// `1.5KB`, `2MiB`, `512` → integer bytes (kB = 1000, KiB = 1024).
    Bytes,
}

impl FieldType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "int" => FieldType::Int,
            "uint" => FieldType::Uint,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "string" => FieldType::String,
            "duration" => FieldType::Duration,
            "bytes" => FieldType::Bytes,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Uint => "uint",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::String => "string",
            FieldType::Duration => "duration",
            FieldType::Bytes => "bytes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn compile(pattern: &str) -> Regex {
        let lib = Library::default();
        let e = lib.expand(pattern).unwrap();
        Regex::new(&format!("^(?:{})$", e.regex)).unwrap()
    }

    /// Every built-in pattern compiles on its own.
    #[test]
    fn every_builtin_compiles() {
        let lib = Library::default();
        for (name, _) in BUILTIN {
            let e = lib.expand(&format!("%{{{name}}}")).unwrap();
            Regex::new(&e.regex).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }

    /// Samples per built-in: (pattern, must match whole, must not match whole).
    #[test]
    fn builtin_patterns_match_what_they_name() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("INT", &["0", "-12", "+7"], &["1.5", "x", ""]),
            ("POSINT", &["1", "8080"], &["0", "-1", "01"]),
            ("NONNEGINT", &["0", "42"], &["-1", "a"]),
            ("BASE10NUM", &["1", "-1.5", ".5", "3."], &["1e3", "a", "."]),
            (
                "NUMBER",
                &["1", "-1.5", "6.02e23", "1E-3"],
                &["abc", "1.2.3"],
            ),
            ("BASE16NUM", &["0x1F", "deadBEEF", "-ff"], &["0xg"]),
            ("WORD", &["hello", "a_b1"], &["two words", "a-b", ""]),
            ("NOTSPACE", &["a-b/c?d"], &["a b", ""]),
            ("SPACE", &["", "  \t"], &["x"]),
            ("DATA", &["", "anything at all"], &[]),
            ("GREEDYDATA", &["", "anything at all"], &[]),
            (
                "QUOTEDSTRING",
                &[r#""a \"b\" c""#, r"'it\'s'", "\"\""],
                &["\"open", "bare"],
            ),
            (
                "UUID",
                &["123e4567-e89b-12d3-a456-426614174000"],
                &["123e4567-e89b-12d3-a456", "x"],
            ),
            ("USERNAME", &["kim", "a.b-c_d"], &["a b", "x@y"]),
            (
                "IPV4",
                &["10.0.0.1", "255.255.255.255", "0.0.0.0"],
                &["256.1.1.1", "1.2.3", "1.2.3.4.5"],
            ),
            (
                "IPV6",
                &[
                    "2001:db8::7",
                    "::1",
                    "::",
                    "fe80::1:2:3:4",
                    "1:2:3:4:5:6:7:8",
                    "::ffff:10.0.0.1",
                    "2001:db8:0:0:0:0:2:1",
                ],
                &["2001:db8:::1", "12345::1", "1:2:3:4:5:6:7:8:9", "g::1"],
            ),
            ("IP", &["10.0.0.1", "2001:db8::7"], &["10.0.0", "host"]),
            (
                "HOSTNAME",
                &["web01", "web01.example.com", "a-b.c."],
                &["-web", "web_01", "a..b"],
            ),
            ("IPORHOST", &["10.0.0.1", "db.internal", "::1"], &["a b"]),
            (
                "HOSTPORT",
                &["db.internal:5432", "10.0.0.1:80"],
                &["db.internal", "host:0"],
            ),
            (
                "PATH",
                &["/var/log/syslog", "/", r"C:\Windows\system32"],
                &["relative/path", "a b"],
            ),
            (
                "URIPATHPARAM",
                &["/api/v1/orders?id=7&x=y", "/"],
                &["api", "/a b"],
            ),
            (
                "URI",
                &[
                    "https://example.com/a?b=c",
                    "http://kim:pw@10.0.0.1:8080/x",
                    "ftp://host",
                ],
                &["example.com/a", "://x"],
            ),
            (
                "MONTH",
                &["Jan", "january", "Sep", "September"],
                &["Foo", "Janu"],
            ),
            ("MONTHNUM", &["1", "01", "12"], &["13", "0"]),
            ("MONTHDAY", &["1", "09", "31"], &["32", "00"]),
            ("YEAR", &["26", "2026"], &["202", "20261"]),
            (
                "TIME",
                &["23:59:59", "00:00", "12:30:01.123"],
                &["24:00", "12:60"],
            ),
            (
                "TIMESTAMP_ISO8601",
                &[
                    "2026-11-24T11:34:54.606Z",
                    "2026-11-24 11:34:54,606",
                    "2026-11-24T11:34:54+01:00",
                    "2026-11-24T11:34",
                ],
                &["2026-13-24T11:34:54", "24.11.2026 11:34", "2026-11-24"],
            ),
            (
                "HTTPDATE",
                &["24/Nov/2026:11:34:54 +0100"],
                &["24/11/2026:11:34:54 +0100", "24/Nov/2026 11:34:54"],
            ),
            (
                "LOGLEVEL",
                &["INFO", "warn", "Warning", "ERROR", "fatal", "DEBUG"],
                &["information", "loud"],
            ),
            (
                "JAVACLASS",
                &["com.example.Svc", "Main", "a.b$Inner"],
                &["com..x", "1abc", "a b"],
            ),
            (
                "JAVATHREAD",
                &["main", "pool-1-thread-3", "http-nio-8080-exec-1"],
                &["", "]"],
            ),
        ];
        let mut wrong = Vec::new();
        for (name, good, bad) in cases {
            let re = compile(&format!("%{{{name}}}"));
            for s in *good {
                if !re.is_match(s) {
                    wrong.push(format!("%{{{name}}} should match {s:?}"));
                }
            }
            for s in *bad {
                if re.is_match(s) {
                    wrong.push(format!("%{{{name}}} should not match {s:?}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn apache_logs() {
        let common = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let re = compile("%{COMMONAPACHELOG}");
        let c = re.captures(common).unwrap();
        assert_eq!(&c["clientip"], "127.0.0.1");
        assert_eq!(&c["auth"], "frank");
        assert_eq!(&c["timestamp"], "10/Oct/2000:13:55:36 -0700");
        assert_eq!(&c["verb"], "GET");
        assert_eq!(&c["request"], "/apache_pb.gif");
        assert_eq!(&c["httpversion"], "1.0");
        assert_eq!(&c["response"], "200");
        assert_eq!(&c["bytes"], "2326");
        let combined = format!(
            r#"{common} "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#
        );
        let re = compile("%{COMBINEDAPACHELOG}");
        let c = re.captures(&combined).unwrap();
        assert_eq!(&c["referrer"], r#""http://www.example.com/start.html""#);
        assert_eq!(&c["agent"], r#""Mozilla/4.08 [en] (Win98; I ;Nav)""#);
        // No bytes ("-").
        let re = compile("%{COMMONAPACHELOG}");
        let c = re
            .captures(r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "HEAD / HTTP/1.1" 304 -"#)
            .unwrap();
        assert!(c.name("bytes").is_none());
    }

    #[test]
    fn captures_types_and_custom_patterns() {
        let mut lib = Library::default();
        lib.define("POOL", r"[A-Za-z ]+");
        let e = lib
            .expand(r"pool=%{POOL:pool} used=%{NUMBER:used:int} took=%{NOTSPACE:took:duration} size=%{NOTSPACE:size:bytes}")
            .unwrap();
        assert_eq!(
            e.types,
            [
                ("used".to_owned(), FieldType::Int),
                ("took".to_owned(), FieldType::Duration),
                ("size".to_owned(), FieldType::Bytes),
            ]
        );
        let re = Regex::new(&e.regex).unwrap();
        let c = re
            .captures("pool=old gen used=12 took=1.5s size=2MiB")
            .unwrap();
        assert_eq!(&c["pool"], "old gen");
        assert_eq!(&c["used"], "12");
    }

    #[test]
    fn errors_name_the_pattern() {
        let mut lib = Library::default();
        assert_eq!(
            lib.expand("%{NOPE:x}").unwrap_err(),
            GrokError::Unknown {
                name: "NOPE".into(),
                within: None
            }
        );
        lib.define("OUTER", "a %{MISSING}");
        assert_eq!(
            lib.expand("%{OUTER}").unwrap_err().to_string(),
            "unknown grok pattern %{MISSING} (used by pattern OUTER)"
        );
        lib.define("A", "%{B}");
        lib.define("B", "x%{A}");
        assert_eq!(
            lib.expand("%{A}").unwrap_err(),
            GrokError::Cycle(vec!["A".into(), "B".into(), "A".into()])
        );
        assert!(matches!(
            lib.expand("%{INT:x:weird}"),
            Err(GrokError::BadType { .. })
        ));
        assert!(matches!(
            lib.expand("%{INT:1x}"),
            Err(GrokError::Malformed(_))
        ));
        assert!(matches!(lib.expand("%{INT"), Err(GrokError::Malformed(_))));
        assert!(matches!(
            lib.expand("%{INT:x:int} %{INT:x:float}"),
            Err(GrokError::TypeConflict { .. })
        ));
        // Plain regex and an escaped %{ pass through.
        assert_eq!(lib.expand(r"^a\d+ \%{x}").unwrap().regex, r"^a\d+ %\{x}");
    }

    #[test]
    fn pattern_files() {
        let mut lib = Library::default();
        assert_eq!(
            lib.define_file("# comment\n\nGCPOOL [A-Za-z ]+\nGCLINE pool=%{GCPOOL:pool}\n"),
            Ok(vec!["GCPOOL".to_owned(), "GCLINE".to_owned()])
        );
        assert!(lib.expand("%{GCLINE}").is_ok());
        assert_eq!(
            lib.define_file("X\n"),
            Err((1, "expected NAME followed by a pattern".into()))
        );
        assert!(lib.define_file("ok a\nbad-name b\n").unwrap_err().0 == 2);
    }

    #[test]
    fn human_units() {
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("200ms"), Some(200_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("90"), Some(90_000_000_000));
        assert_eq!(parse_duration("12us"), Some(12_000));
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("1.5KB"), Some(1500));
        assert_eq!(parse_bytes("2MiB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_bytes("10 kB"), Some(10_000));
        assert_eq!(parse_bytes("3 furlongs"), None);
        assert_eq!(parse_bytes("1e400"), None);
    }
}
