//! `${NAME}` substitution from the environment, before parsing.

#[allow(unused_imports)]
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
            TomlContext::Basic => match b {
                b'"' | b'\n' => (1, TomlContext::Bare),
                _ => (1, context),
            },
            // Up to two quotes may end the content before the closing three.
            TomlContext::MultiBasic if rest.starts_with("\"\"\"") => (
                rest.bytes().take_while(|q| *q == b'"').count().min(5),
                TomlContext::Bare,
            ),
            TomlContext::MultiBasic => (1, context),
            TomlContext::Literal => match b {
                b'\'' | b'\n' => (1, TomlContext::Bare),
                _ => (1, context),
            },
            TomlContext::MultiLiteral if rest.starts_with("'''") => (
                rest.bytes().take_while(|q| *q == b'\'').count().min(5),
                TomlContext::Bare,
            ),
            TomlContext::MultiLiteral => (1, context),
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
