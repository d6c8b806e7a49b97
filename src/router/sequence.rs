//! Route patterns that are a sequence of plain literals and captures of
//! simple grok classes — `status route=%{NOTSPACE:route} code=%{INT:code}
//! latency_ms=%{NUMBER:latency_ms}` — matched without a regex engine, with
//! the regex's own result.
//!
//! Such a pattern begins with a literal, and every capture but a last one
//! is followed by a literal whose first byte the capture's class cannot
//! contain. A capture can then only end where its run of class bytes ends,
//! so at each occurrence of the leading literal there is one way to match,
//! found left to right: no backtracking, no automaton, no capture slots to
//! set up. A last capture (nothing after it) takes what the regex's greedy
//! preference would. Any other pattern keeps the regex: this is only a
//! faster way to the same captures (the router's tests compare the two).
//!
//! Classes are recognised by their syntax tree, not by name: a capture is
//! `INT` when its regex is the built-in `INT`'s, whatever the grok name
//! (and a redefined `INT` is not).

use std::sync::LazyLock;

use regex_syntax::hir::{Hir, HirKind};

use crate::grok::Library;
use crate::output::{MAX_GROUPS, Spans};
use crate::text::lanes::{digit_run, not_space_run};

/// After this many occurrences of the leading literal that led to no
/// match, the caller's regex searches the rest: attempts are linear each,
/// so unbounded attempts could cost quadratic time on a hostile message.
const ATTEMPTS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// `[+-]?[0-9]+`
    Int,
    /// `[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)`
    Base10Num,
    /// `BASE10NUM(?:[eE][+-]?[0-9]+)?`
    Number,
    /// `(?-u:\b\w+\b)`
    Word,
    /// `[^\t\n\x0B\x0C\r ]+`
    NotSpace,
    /// `[a-zA-Z0-9._-]+`
    Username,
}

const CLASSES: [(Class, &str); 6] = [
    (Class::Int, "INT"),
    (Class::Base10Num, "BASE10NUM"),
    (Class::Number, "NUMBER"),
    (Class::Word, "WORD"),
    (Class::NotSpace, "NOTSPACE"),
    (Class::Username, "USERNAME"),
];

/// The built-in classes' syntax trees, from the grok library itself.
static CLASS_HIRS: LazyLock<Vec<(Class, Hir)>> = LazyLock::new(|| {
    let library = Library::default();
    CLASSES
        .iter()
        .filter_map(|&(class, name)| {
            let expanded = library.expand(&format!("%{{{name}}}")).ok()?;
            let hir = regex_syntax::Parser::new().parse(&expanded.regex).ok()?;
            Some((class, hir))
        })
        .collect()
});

/// The byte set of `ranges` (pairs of first and last byte: `b"09az"` is
/// `0-9` and `a-z`) and of `singles`; its complement when `invert`.
const fn table(ranges: &[u8], singles: &[u8], invert: bool) -> [bool; 256] {
    let mut t = [invert; 256];
    let mut i = 0;
    while i + 1 < ranges.len() {
        let mut b = ranges[i] as usize;
        while b <= ranges[i + 1] as usize {
            t[b] = !invert;
            b += 1;
        }
        i += 2;
    }
    let mut i = 0;
    while i < singles.len() {
        t[singles[i] as usize] = !invert;
        i += 1;
    }
    t
}

static INT_BYTES: [bool; 256] = table(b"09", b"+-", false);
static BASE10_BYTES: [bool; 256] = table(b"09", b"+-.", false);
static NUMBER_BYTES: [bool; 256] = table(b"09", b"+-.eE", false);
static WORD_BYTES: [bool; 256] = table(b"09AZaz", b"_", false);
static NOT_SPACE_BYTES: [bool; 256] = table(b"\t\r", b" ", true);
static USERNAME_BYTES: [bool; 256] = table(b"09AZaz", b"._-", false);

impl Class {
    /// Bytes a match of the class can contain.
    fn bytes(self) -> &'static [bool; 256] {
        match self {
            Class::Int => &INT_BYTES,
            Class::Base10Num => &BASE10_BYTES,
            Class::Number => &NUMBER_BYTES,
            Class::Word => &WORD_BYTES,
            Class::NotSpace => &NOT_SPACE_BYTES,
            Class::Username => &USERNAME_BYTES,
        }
    }

    /// Length of the run of class bytes `text` starts with. `NOTSPACE`
    /// runs (paths, names) are found eight bytes at a time.
    fn run(self, text: &[u8]) -> usize {
        match self {
            Class::NotSpace => not_space_run(text),
            _ => {
                let bytes = self.bytes();
                text.iter()
                    .position(|&b| !bytes[usize::from(b)])
                    .unwrap_or(text.len())
            }
        }
    }

    /// The length of the match the regex prefers at the start of `text`
    /// when nothing follows in the pattern (greedy, first alternative
    /// first), or `None` when there is none.
    fn greedy(self, text: &[u8]) -> Option<usize> {
        match self {
            Class::Int => {
                let sign = usize::from(matches!(text.first(), Some(b'+' | b'-')));
                let digits = digit_run(&text[sign..]);
                (digits > 0).then_some(sign + digits)
            }
            Class::Base10Num => base10(text),
            Class::Number => base10(text).map(|n| n + exponent(&text[n..])),
            Class::Word | Class::NotSpace | Class::Username => {
                let n = self.run(text);
                (n > 0).then_some(n)
            }
        }
    }
}

/// `[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)` at the start of `text`. The
/// alternatives begin with different bytes, and a shorter digit run can
/// never let the rest match where the longer did not, so the greedy
/// reading is the regex's.
fn base10(text: &[u8]) -> Option<usize> {
    let sign = usize::from(matches!(text.first(), Some(b'+' | b'-')));
    let rest = &text[sign..];
    let whole = digit_run(rest);
    let body = if whole > 0 {
        match rest.get(whole) {
            Some(b'.') => whole + 1 + digit_run(&rest[whole + 1..]),
            _ => whole,
        }
    } else if rest.first() == Some(&b'.') && digit_run(&rest[1..]) > 0 {
        1 + digit_run(&rest[1..])
    } else {
        // Without the sign the body would start at the sign: no match.
        return None;
    };
    Some(sign + body)
}

/// `(?:[eE][+-]?[0-9]+)?` at the start of `text`: its length, 0 if absent.
fn exponent(text: &[u8]) -> usize {
    if !matches!(text.first(), Some(b'e' | b'E')) {
        return 0;
    }
    let sign = usize::from(matches!(text.get(1), Some(b'+' | b'-')));
    match digit_run(&text[1 + sign..]) {
        0 => 0,
        n => 1 + sign + n,
    }
}

/// A capture and the literal after it (empty: the pattern ends there).
#[derive(Debug)]
struct Step {
    group: usize,
    class: Class,
    then: Literal,
}

/// A literal to compare at one place. One of up to 16 bytes (`key=`
/// words) is also kept as a word and a mask of its bytes: where the text
/// has 16 bytes to read, the comparison is one masked word compare.
#[derive(Debug, Default)]
struct Literal {
    bytes: Vec<u8>,
    word: u128,
    /// `0xff` for each byte of the literal; all zeros for one longer than
    /// 16 bytes (never compared as a word).
    mask: u128,
}

impl Literal {
    fn new(bytes: &[u8]) -> Literal {
        let mut word = [0u8; 16];
        let mut mask = [0u8; 16];
        if bytes.len() <= 16 {
            for (i, &b) in bytes.iter().enumerate() {
                word[i] = b;
                mask[i] = 0xff;
            }
        }
        Literal {
            bytes: bytes.to_vec(),
            word: u128::from_le_bytes(word),
            mask: u128::from_le_bytes(mask),
        }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Does `text` start with the literal?
    #[inline]
    fn starts(&self, text: &[u8]) -> bool {
        match text.first_chunk::<16>() {
            Some(w) if self.mask != 0 => (u128::from_le_bytes(*w) ^ self.word) & self.mask == 0,
            _ => text.starts_with(&self.bytes),
        }
    }
}

/// A pattern of literals and simple captures (see the module's text).
#[derive(Debug)]
pub(crate) struct SequencePattern {
    lead: memchr::memmem::Finder<'static>,
    /// The leading literal again, to compare where it is expected.
    lead_here: Literal,
    steps: Vec<Step>,
    groups: usize,
}

/// What [`SequencePattern::captures`] found.
pub(crate) enum Found<'e> {
    Match(Spans<'e>),
    NoMatch,
    /// Too many attempts led nowhere: no match starts before this offset,
    /// and the regex must search from it.
    SearchFrom(usize),
}

impl SequencePattern {
    /// The sequence form of a pattern (its parsed syntax tree), if it has
    /// one; `groups` is the regex's group count, the whole match included.
    pub(crate) fn new(hir: &Hir, groups: usize) -> Option<SequencePattern> {
        let HirKind::Concat(items) = hir.kind() else {
            return None;
        };
        let mut items = items.iter();
        let HirKind::Literal(lead) = items.next()?.kind() else {
            return None;
        };
        let lead = lead.0.to_vec();
        if lead.is_empty() || groups > MAX_GROUPS {
            return None;
        }
        let mut steps: Vec<Step> = Vec::new();
        let mut before = lead.last().copied()?;
        for item in items {
            match item.kind() {
                HirKind::Capture(c) => {
                    // Two captures in a row have no literal to end the first.
                    if steps.last().is_some_and(|s| s.then.is_empty()) {
                        return None;
                    }
                    let class = CLASS_HIRS
                        .iter()
                        .find(|(_, h)| *h == *c.sub)
                        .map(|(class, _)| *class)?;
                    // `\b` before a word: the byte before must not be a
                    // word byte (otherwise the regex can never match here;
                    // leave that to it).
                    if class == Class::Word && WORD_BYTES[usize::from(before)] {
                        return None;
                    }
                    steps.push(Step {
                        group: usize::try_from(c.index).ok()?,
                        class,
                        then: Literal::default(),
                    });
                }
                HirKind::Literal(l) => {
                    let step = steps.last_mut()?;
                    let first = *l.0.first()?;
                    // The capture must end where its run ends.
                    if !step.then.is_empty() || step.class.bytes()[usize::from(first)] {
                        return None;
                    }
                    step.then = Literal::new(&l.0);
                    before = *l.0.last()?;
                }
                _ => return None,
            }
        }
        let mut seen = vec![false; groups];
        for s in &steps {
            match seen.get_mut(s.group) {
                Some(slot) if s.group > 0 && !*slot => *slot = true,
                _ => return None,
            }
        }
        if steps.len() + 1 != groups {
            return None;
        }
        Some(SequencePattern {
            lead_here: Literal::new(&lead),
            lead: memchr::memmem::Finder::new(&lead).into_owned(),
            steps,
            groups,
        })
    }

    /// The leftmost match in `message` and its groups, as the regex would
    /// find them, given that none starts before `from` (the leading
    /// literal's first occurrence, when the caller knows it; else 0).
    pub(crate) fn captures<'e>(&self, message: &'e str, from: usize) -> Found<'e> {
        let bytes = message.as_bytes();
        if u32::try_from(bytes.len()).is_err() {
            return Found::SearchFrom(0);
        }
        let mut from = from;
        for _ in 0..ATTEMPTS {
            // The caller's `from` is most often the literal itself: a
            // comparison instead of a search.
            let here = bytes
                .get(from..)
                .is_some_and(|rest| self.lead_here.starts(rest));
            let found = if here {
                Some(0)
            } else {
                bytes.get(from..).and_then(|rest| self.lead.find(rest))
            };
            let Some(at) = found else {
                return Found::NoMatch;
            };
            let at = from + at;
            if let Some(spans) = self.match_at(message, at) {
                return Found::Match(spans);
            }
            from = at + 1;
        }
        Found::SearchFrom(from)
    }

    /// The match that starts at `at` (where the leading literal is).
    fn match_at<'e>(&self, message: &'e str, at: usize) -> Option<Spans<'e>> {
        let bytes = message.as_bytes();
        let mut spans = [(0u32, 0u32); MAX_GROUPS];
        let mut pos = at + self.lead_here.len();
        for step in &self.steps {
            let rest = bytes.get(pos..)?;
            // The class's greedy match, then the literal. The greedy match
            // only takes class bytes, and decides only on class bytes: it
            // is the same whether the run of class bytes ends there or the
            // text does. So where the literal (whose first byte the class
            // cannot hold) follows, the run ends with the greedy match, and
            // the run being one match of the class, as the regex requires,
            // is that match being all of it: one scan for both.
            let len = step.class.greedy(rest)?;
            if !step.then.is_empty() && !step.then.starts(rest.get(len..)?) {
                return None;
            }
            let end = pos + len;
            *spans.get_mut(step.group)? = (u32::try_from(pos).ok()?, u32::try_from(end).ok()?);
            pos = end + step.then.len();
        }
        spans[0] = (u32::try_from(at).ok()?, u32::try_from(pos).ok()?);
        Some(Spans {
            text: message,
            groups: self.groups,
            spans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    fn compile(grok: &str) -> (Regex, Option<SequencePattern>) {
        let expanded = Library::default().expand(grok).unwrap();
        let re = Regex::new(&expanded.regex).unwrap();
        let hir = regex_syntax::Parser::new().parse(&expanded.regex).unwrap();
        let seq = SequencePattern::new(&hir, re.captures_len());
        (re, seq)
    }

    /// Every group of the regex's leftmost match, as text.
    fn regex_groups(re: &Regex, text: &str) -> Option<Vec<Option<String>>> {
        re.captures(text)
            .map(|c| c.iter().map(|m| m.map(|m| m.as_str().to_owned())).collect())
    }

    fn sequence_groups(
        re: &Regex,
        seq: &SequencePattern,
        text: &str,
    ) -> Option<Vec<Option<String>>> {
        match seq.captures(text, 0) {
            Found::Match(s) => Some(
                (0..re.captures_len())
                    .map(|i| s.get(i).map(str::to_owned))
                    .collect(),
            ),
            Found::NoMatch => None,
            Found::SearchFrom(from) => re
                .captures_at(text, from)
                .map(|c| c.iter().map(|m| m.map(|m| m.as_str().to_owned())).collect()),
        }
    }

    #[test]
    fn the_benchmarks_status_pattern_is_a_sequence() {
        let (re, seq) = compile(
            "status route=%{NOTSPACE:route} code=%{INT:code} latency_ms=%{NUMBER:latency_ms:float} bytes=%{INT:bytes:int} seq=%{INT:seq:int} sent=%{INT:sent:int}",
        );
        let seq = seq.expect("a sequence pattern");
        let line = "INFO status route=/api/v1/orders code=503 latency_ms=1.5e3 bytes=200 seq=7 sent=17959 xxx";
        let Found::Match(s) = seq.captures(line, 0) else {
            panic!("no match");
        };
        let end = line.find(" xxx").unwrap();
        assert_eq!(s.get(0), Some(&line[5..end]));
        let names: Vec<Option<&str>> = (1..7).map(|i| s.get(i)).collect();
        assert_eq!(
            names,
            [
                Some("/api/v1/orders"),
                Some("503"),
                Some("1.5e3"),
                Some("200"),
                Some("7"),
                Some("17959")
            ]
        );
        assert_eq!(sequence_groups(&re, &seq, line), regex_groups(&re, line));
    }

    #[test]
    fn patterns_the_sequence_form_cannot_take_keep_the_regex() {
        for grok in [
            // Begins with a capture, or an anchor.
            "%{INT:a} x",
            "^a %{INT:a}",
            // Two captures with nothing between.
            "a %{INT:a}%{WORD:b}",
            // The literal's first byte is one the class can contain.
            "a=%{INT:a}5 b",
            "a=%{NOTSPACE:a}x",
            // A word right after a word byte: `\b` fails there.
            "a%{WORD:w} b",
            // Alternation, a class that is not a simple one, a repetition.
            "login (?:ok|failed) user=%{USERNAME:u}",
            "a=%{DATA:d} b",
            "a=(?P<x>[0-9]{2}) b",
            // Case-insensitive literals.
            "(?i)status=%{INT:a}",
            // More groups than are kept inline.
            "a=%{INT:a} b=%{INT:b} c=%{INT:c} d=%{INT:d} e=%{INT:e} f=%{INT:f} g=%{INT:g} h=%{INT:h}",
        ] {
            let (_, seq) = compile(grok);
            assert!(seq.is_none(), "{grok}");
        }
        let (_, seq) = compile("cache %{WORD:cache} hits=%{INT:hits:int}");
        assert!(seq.is_some());
    }

    /// A redefined `INT` is not the built-in one: its pattern keeps the regex.
    #[test]
    fn classes_are_recognised_by_their_regex_not_their_name() {
        let mut library = Library::default();
        library.define("INT", "[0-9]{3}");
        let expanded = library.expand("a=%{INT:a} b").unwrap();
        let re = Regex::new(&expanded.regex).unwrap();
        let hir = regex_syntax::Parser::new().parse(&expanded.regex).unwrap();
        assert!(SequencePattern::new(&hir, re.captures_len()).is_none());
    }

    /// Many occurrences of the leading literal that lead nowhere: after a
    /// few attempts the regex is told where to search from, and no match
    /// starts before it.
    #[test]
    fn fruitless_occurrences_hand_over_to_the_regex() {
        let (re, seq) = compile("k=%{INT:a} ");
        let seq = seq.unwrap();
        let text = format!("{}k=12 ", "k=x ".repeat(10));
        match seq.captures(&text, 0) {
            Found::SearchFrom(from) => {
                assert!(from > 0 && from <= 4 * ATTEMPTS);
                assert_eq!(
                    re.captures_at(&text, from)
                        .unwrap()
                        .get(1)
                        .unwrap()
                        .as_str(),
                    "12"
                );
            }
            _ => panic!("expected a hand-over"),
        }
    }

    /// The masked word compare of a literal answers as `starts_with`:
    /// literals of every length around the word's 16 bytes, on texts
    /// shorter and longer than a word, equal or off in one byte.
    #[test]
    fn literal_compare_agrees_with_starts_with() {
        let base = b"status route=/a code=1 latency_ms=0123456789abcdef";
        for len in 0..=20 {
            let literal = Literal::new(&base[..len]);
            for text_len in 0..base.len() {
                for flip in 0..=text_len.min(20) {
                    let mut text = base[..text_len].to_vec();
                    if let Some(b) = text.get_mut(flip) {
                        *b ^= 1;
                    }
                    let want = text.starts_with(&base[..len]);
                    assert_eq!(literal.starts(&text), want, "{len} {text_len} {flip}");
                }
            }
        }
    }

    const PATTERNS: &[&str] = &[
        "status route=%{NOTSPACE:route} code=%{INT:code} latency_ms=%{NUMBER:ms} bytes=%{INT:bytes}",
        "status route=%{NOTSPACE:route} code=%{INT:code} latency_ms=%{NUMBER:latency_ms:float} bytes=%{INT:bytes:int} seq=%{INT:seq:int} sent=%{INT:sent:int}",
        "v=%{NUMBER:n}",
        "v=%{BASE10NUM:n}",
        "v=%{INT:n}",
        "v=%{NUMBER:n};w=%{BASE10NUM:m};",
        "cache %{WORD:cache} hits=%{INT:hits}",
        "q %{WORD:w}",
        "u=%{USERNAME:u} ok",
        "p=%{NOTSPACE:p}",
        "aa=%{INT:a} aa=%{INT:b}",
        "é=%{NOTSPACE:x} ü",
    ];

    fn noise() -> impl Strategy<Value = String> {
        // Bytes the patterns care about, their literals' pieces included.
        proptest::collection::vec(
            prop::sample::select(vec![
                "0",
                "7",
                "+",
                "-",
                ".",
                "e",
                "E",
                " ",
                "=",
                ";",
                "v",
                "w",
                "a",
                "k",
                "_",
                "x",
                "\t",
                "é",
                "ü",
                "status route=",
                " code=",
                " latency_ms=",
                " bytes=",
                " seq=",
                " sent=",
                "1795860000123456789",
                "/api/v1/orders/",
                "cache ",
                " hits=",
                "q ",
                "u=",
                " ok",
                "p=",
                "aa=",
                "é=",
            ]),
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    /// What a capture might be given: a match of some class, or bytes
    /// that may or may not be one.
    fn token() -> impl Strategy<Value = String> {
        let valid = prop::sample::select(vec![
            "12",
            "-3",
            "+0",
            "1.5",
            ".5",
            "5.",
            "1e3",
            "2.5E-7",
            "abc",
            "a_1",
            "/x/y",
            "é",
            "k.m-n",
            "1795860000123456789",
            "-12345678901",
            "123456789.12345678e+12",
            "/api/v1/orders/12345",
            "/wide/é/path/",
        ])
        .prop_map(str::to_owned);
        let any = proptest::collection::vec(
            prop::sample::select(vec![
                "0", "1", "9", "+", "-", ".", "e", "E", "a", "Z", "_", "/", "é", " ", "=",
                "12345678", "/abcdefg", "\t", "\u{b}", "\r",
            ]),
            0..8,
        )
        .prop_map(|parts| parts.concat());
        prop_oneof![3 => valid, 1 => any]
    }

    /// The pattern's literals with tokens for its captures, between noise.
    fn text_for(grok: &'static str) -> impl Strategy<Value = String> {
        (noise(), proptest::collection::vec(token(), 8), noise()).prop_map(
            move |(before, tokens, after)| {
                let mut out = before;
                let mut rest = grok;
                let mut tokens = tokens.into_iter();
                while let Some(start) = rest.find("%{") {
                    out.push_str(&rest[..start]);
                    out.push_str(&tokens.next().unwrap_or_default());
                    rest = &rest[start + rest[start..].find('}').unwrap() + 1..];
                }
                out.push_str(rest);
                out.push_str(&after);
                out
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16000))]
        /// The sequence form finds the regex's match and groups, or none
        /// where the regex finds none.
        #[test]
        fn sequence_matches_agree_with_the_regex(
            (p, text) in (0..PATTERNS.len()).prop_flat_map(|p| {
                (Just(p), prop_oneof![noise(), text_for(PATTERNS[p])])
            }),
        ) {
            let (re, seq) = compile(PATTERNS[p]);
            let seq = seq.expect("a sequence pattern");
            prop_assert_eq!(sequence_groups(&re, &seq, &text), regex_groups(&re, &text));
        }
    }
}
