//! `${NAME}` substitution from the environment, before parsing.

use super::*;

/// Replace `${NAME}` with the environment variable's value;
/// `${NAME:-default}` with `default` when it is unset or empty;
/// `${NAME:?message}` fails with `message` when it is unset or empty.
pub(super) fn substitute_env(text: &str, origin: &str) -> Result<String, ConfigError> {
    substitute_with(text, origin, |name| std::env::var(name).ok())
}

/// Where in the TOML text a `${NAME}` stands.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum TomlContext {
    /// Outside any string (a bare value, a key, …).
    Bare,
    /// In `"…"`.
    Basic,
    /// In `"""…"""`.
    MultiBasic,
    /// In `'…'`.
    Literal,
    /// In `'''…'''`.
    MultiLiteral,
    /// After `#` outside strings, to the end of the line.
    Comment,
}

impl TomlContext {
    /// The quote a string of this context ends with (none outside strings).
    fn quote(self) -> u8 {
        match self {
            TomlContext::Basic | TomlContext::MultiBasic => b'"',
            TomlContext::Literal | TomlContext::MultiLiteral => b'\'',
            TomlContext::Bare | TomlContext::Comment => 0,
        }
    }

    /// How many bytes of `rest` (not empty) the next token spans, and the
    /// context after it.
    fn step(self, rest: &str) -> (usize, TomlContext) {
        let context = self;
        let b = rest.as_bytes()[0];
        match context {
            TomlContext::Bare => match b {
                b'#' => (1, TomlContext::Comment),
                b'"' if rest.starts_with("\"\"\"") => (3, TomlContext::MultiBasic),
                b'"' => (1, TomlContext::Basic),
                b'\'' if rest.starts_with("'''") => (3, TomlContext::MultiLiteral),
                b'\'' => (1, TomlContext::Literal),
                _ => (1, context),
            },
            TomlContext::Comment => match b {
                b'\n' => (1, TomlContext::Bare),
                _ => (1, context),
            },
            // An escape: the next character is the escaped one (a `\"`
            // does not end the string).
            TomlContext::Basic | TomlContext::MultiBasic if b == b'\\' => (2, context),
            // A one-line string ends at its quote (or, unclosed, the line).
            TomlContext::Basic | TomlContext::Literal if b == context.quote() || b == b'\n' => {
                (1, TomlContext::Bare)
            }
            // Up to two quotes may end the content before the closing three.
            TomlContext::MultiBasic | TomlContext::MultiLiteral
                if rest.as_bytes().starts_with(&[context.quote(); 3]) =>
            {
                (
                    rest.bytes()
                        .take_while(|q| *q == context.quote())
                        .count()
                        .min(5),
                    TomlContext::Bare,
                )
            }
            _ => (1, context),
        }
    }
}

/// `value` written into TOML text at `context` so that it reads back as
/// exactly `value` and cannot change the document's structure; Err(why)
/// when that is impossible there.
pub(super) fn toml_insert(value: &str, context: TomlContext) -> Result<String, String> {
    match context {
        TomlContext::Basic | TomlContext::MultiBasic => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(out)
        }
        TomlContext::Literal | TomlContext::MultiLiteral => {
            let newline_ok = context == TomlContext::MultiLiteral;
            if value.contains('\'') {
                Err("its value contains ' and the reference is in a '…' string: use \"…\"".into())
            } else if value
                .chars()
                .any(|c| c.is_control() && c != '\t' && !(newline_ok && c == '\n'))
            {
                Err("its value contains a newline or control character and the reference is in a '…' string: use \"…\"".into())
            } else {
                Ok(value.to_owned())
            }
        }
        TomlContext::Bare | TomlContext::Comment => {
            if !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:+-".contains(&b))
            {
                Ok(value.to_owned())
            } else {
                Err("outside a string its value must be a plain number, boolean or word (letters, digits, _ . : + -): put the reference in \"…\"".into())
            }
        }
    }
}

/// [`substitute_env`] over any source of variables.
///
/// The text is scanned with its TOML string context (basic, literal and
/// multi-line strings, comments), and each value is inserted so that it
/// reads back as itself: escaped inside `"…"`, refused when it cannot be
/// written inside `'…'` or is not a plain scalar outside strings. `$${`
/// is a literal `${`. References after `#` outside strings are left as
/// they are; a nested `${A:-${B}}` is an error.
pub(super) fn substitute_with(
    text: &str,
    origin: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut context = TomlContext::Bare;
    let mut i = 0;
    while let Some(rest) = text.get(i..).filter(|r| !r.is_empty()) {
        if context != TomlContext::Comment && rest.starts_with("$${") {
            out.push_str("${");
            i += 3;
            continue;
        }
        if context != TomlContext::Comment && rest.starts_with("${") {
            let start = i;
            let after = &rest[2..];
            let name_len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let name = &after[..name_len];
            let tail = &after[name_len..];
            // `}` ends a plain reference; `:-` and `:?` take the text up
            // to the next `}` on the line.
            let line_end = tail.find('\n').unwrap_or(tail.len());
            let form = if tail.starts_with('}') {
                Some((None, 1))
            } else if let Some(op @ (":-" | ":?")) = tail.get(..2) {
                tail.get(2..line_end)
                    .and_then(|t| t.find('}'))
                    .map(|end| (Some((op, &tail[2..2 + end])), 2 + end + 1))
            } else {
                None
            };
            let (Some((form, used)), false) = (form, name.is_empty()) else {
                out.push_str("${");
                i += 2;
                continue;
            };
            let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
            let error = |message: String| ConfigError::Invalid {
                file: origin.to_owned(),
                line: text[..start].matches('\n').count() + 1,
                column: start - line_start + 1,
                key: format!("${{{name}}}"),
                message,
            };
            if let Some((_, word)) = form {
                if word.contains("${") {
                    return Err(error(format!(
                        "nested references are not supported in ${{{name}:…}} (write $${{ for a literal ${{)"
                    )));
                }
            }
            let value = match (form, var(name)) {
                (None, Some(v)) => v,
                (None, None) => {
                    return Err(error(format!("environment variable {name} is not set")));
                }
                (Some((_, _)), Some(v)) if !v.is_empty() => v,
                (Some((":-", default)), _) => default.to_owned(),
                (Some((_, message)), _) => {
                    let message = if message.is_empty() {
                        format!("environment variable {name} is not set or empty")
                    } else {
                        format!("environment variable {name} is not set or empty: {message}")
                    };
                    return Err(error(message));
                }
            };
            let value = toml_insert(&value, context)
                .map_err(|why| error(format!("environment variable {name}: {why}")))?;
            out.push_str(&value);
            i += 2 + name_len + used;
            continue;
        }
        let (n, next) = context.step(rest);
        // Whole characters only.
        let mut end = n.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&rest[..end]);
        i += end;
        context = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_substitution() {
        // SAFETY: set_var is unsound only while another thread reads the
        // environment outside std's lock (libc getenv). The other lib tests
        // read it only through std::env (substitute_env, reqwest's proxy
        // lookup), which takes that lock, and none resolves a host name or
        // the local time zone through libc; the name is unique to this test.
        unsafe { std::env::set_var("SLUICE_TEST_DB_NAME", "telemetry") };
        let text = "x = \"${SLUICE_TEST_DB_NAME}\"\n";
        assert_eq!(substitute_env(text, "t").unwrap(), "x = \"telemetry\"\n");
        let e = substitute_env("a = 1\nb = \"${SLUICE_TEST_SURELY_UNSET}\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:2:6:"), "{e}");
    }

    #[test]
    fn env_defaults_and_required_variables() {
        let vars = |name: &str| match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let sub = |text: &str| substitute_with(text, "t.toml", vars);
        assert_eq!(sub("a = \"${SET:-x}\"\n").unwrap(), "a = \"value\"\n");
        assert_eq!(sub("a = \"${UNSET:-x y}\"\n").unwrap(), "a = \"x y\"\n");
        assert_eq!(sub("a = \"${EMPTY:-dflt}\"\n").unwrap(), "a = \"dflt\"\n");
        assert_eq!(sub("a = \"${UNSET:-}\"\n").unwrap(), "a = \"\"\n");
        assert_eq!(sub("a = \"${EMPTY}\"\n").unwrap(), "a = \"\"\n");
        assert_eq!(sub("a = \"${SET:?need it}\"\n").unwrap(), "a = \"value\"\n");
        assert_eq!(
            sub("a = \"${SET}-${UNSET:-d}-${SET:?m}\"\n").unwrap(),
            "a = \"value-d-value\"\n"
        );
        // Not a reference: left as it is.
        assert_eq!(
            sub("a = \"${}\" b = \"${X:+y}\"\n").unwrap(),
            "a = \"${}\" b = \"${X:+y}\"\n"
        );

        let e = sub("a = 1\nb = \"${UNSET:?export the InfluxDB password}\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.toml:2:6: ${UNSET}: environment variable UNSET is not set or empty: export the InfluxDB password"
        );
        let e = sub("\n\nb = \"x ${EMPTY:?}\"\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:3:8: ${EMPTY}: "), "{e}");
        assert!(e.contains("EMPTY is not set or empty"), "{e}");
        // Comment lines are not substituted.
        assert_eq!(sub("  # ${UNSET:?m}\n").unwrap(), "  # ${UNSET:?m}\n");
        // An unterminated default is not a reference (and so not an error).
        assert_eq!(sub("a = \"${UNSET:-x\"\n").unwrap(), "a = \"${UNSET:-x\"\n");
    }

    /// Issue #20 follow-up: a value can never change the TOML structure.
    #[test]
    fn substituted_values_cannot_change_the_toml_structure() {
        let vars = |name: &str| match name {
            "BACKSLASH" => Some(r"ab\cd".to_owned()),
            "TAB_ESCAPE" => Some(r"a\tb".to_owned()),
            "QUOTE" => Some("a\"b".to_owned()),
            "INJECT" => Some("x.log\"\nbatch_max_events = 1\n#".to_owned()),
            "APOS" => Some("it's".to_owned()),
            "PORT" => Some("9901".to_owned()),
            "CTRL" => Some("a\u{1}b".to_owned()),
            _ => None,
        };
        let sub = |text: &str| substitute_with(text, "t.toml", vars);
        let parsed = |text: &str| -> toml::Table { toml::from_str(&sub(text).unwrap()).unwrap() };
        // Basic strings: escaped, read back exactly.
        assert_eq!(
            parsed("p = \"${BACKSLASH}\"\n")["p"].as_str(),
            Some(r"ab\cd")
        );
        assert_eq!(
            parsed("p = \"${TAB_ESCAPE}\"\n")["p"].as_str(),
            Some(r"a\tb")
        );
        assert_eq!(parsed("p = \"${QUOTE}\"\n")["p"].as_str(), Some("a\"b"));
        assert_eq!(parsed("p = \"${CTRL}\"\n")["p"].as_str(), Some("a\u{1}b"));
        let t = parsed("path = \"${INJECT}\"\n");
        assert_eq!(t.len(), 1, "no key injected: {t:?}");
        assert_eq!(t["path"].as_str(), Some("x.log\"\nbatch_max_events = 1\n#"));
        // Defaults are values too.
        assert_eq!(
            parsed("p = \"${UNSET:-C:\\dir}\"\n")["p"].as_str(),
            Some("C:\\dir")
        );
        // Multi-line basic strings, also on a line starting with `#`.
        let t = parsed("p = \"\"\"\n# ${QUOTE} ${INJECT}\n\"\"\"\n");
        assert_eq!(
            t["p"].as_str(),
            Some("# a\"b x.log\"\nbatch_max_events = 1\n#\n")
        );
        // Literal strings: taken as they are, or refused naming the variable.
        assert_eq!(parsed("p = '${BACKSLASH}'\n")["p"].as_str(), Some(r"ab\cd"));
        let e = sub("a = 1\np = '${APOS}'\n").unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:2:6: ${APOS}: environment variable APOS"),
            "{e}"
        );
        let e = sub("p = '${INJECT}'\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:6: ${INJECT}: "), "{e}");
        let e = sub("p = '''\n${APOS}'''\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2:1: ${APOS}: "), "{e}");
        assert_eq!(
            parsed("p = '''\n# ${BACKSLASH}\n'''\n")["p"].as_str(),
            Some("# ab\\cd\n")
        );
        // Outside strings: only a plain scalar.
        assert_eq!(parsed("port = ${PORT}\n")["port"].as_integer(), Some(9901));
        assert_eq!(parsed("on = ${UNSET:-true}\n")["on"].as_bool(), Some(true));
        let e = sub("\nn = ${INJECT}\n").unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:2:5: ${INJECT}: environment variable INJECT"),
            "{e}"
        );
        assert!(e.contains("outside a string"), "{e}");
        let e = sub("n = ${UNSET:-}\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:5: ${UNSET}: "), "{e}");
        // `$${` is a literal `${`.
        assert_eq!(parsed("p = \"$${PORT}\"\n")["p"].as_str(), Some("${PORT}"));
        assert_eq!(
            parsed("p = \"$${PORT} ${PORT}\"\n")["p"].as_str(),
            Some("${PORT} 9901")
        );
        // Nested references are an error.
        let e = sub("p = \"${UNSET:-${PORT}}\"\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:6: ${UNSET}: nested"), "{e}");
        // Comments after a value are left alone; a `#` in a string is not one.
        assert_eq!(
            sub("p = \"#${PORT}\" # ${UNSET:?m}\n").unwrap(),
            "p = \"#9901\" # ${UNSET:?m}\n"
        );
    }
}
