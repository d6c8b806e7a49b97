//! The prefilter: the literals a route's pattern needs, found for all
//! routes in one scan of a message, so only the few candidate routes run
//! their regexes; and patterns that begin with a literal matched anchored
//! at its occurrences.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
use regex_syntax::hir::{Hir, HirKind};

use super::RouterError;

/// A pattern `L…` that begins with the literal `L` can only match where `L`
/// occurs. Its captures are taken by trying `^(?:L…)` at each occurrence of
/// `L`, leftmost first: the same match the unanchored regex finds (the
/// leftmost start, and at a start the same preference order), in one
/// anchored pass instead of a forward scan, a reverse scan and a capture
/// pass. Nothing precedes `L` in the pattern, so no assertion can look
/// before the occurrence.
pub(super) struct AnchoredAtLiteral {
    literal: memchr::memmem::Finder<'static>,
    regex: Regex,
}

impl AnchoredAtLiteral {
    pub(super) fn new(hir: &Hir, pattern: &str) -> Option<AnchoredAtLiteral> {
        let literal = prefix_literal(hir)?;
        let regex = Regex::new(&format!("^(?:{pattern})")).ok()?;
        Some(AnchoredAtLiteral {
            literal: memchr::memmem::Finder::new(&literal).into_owned(),
            regex,
        })
    }

    /// The captures `plain` (the same pattern, unanchored) would give,
    /// given that no match starts before `from` (the literal's first
    /// occurrence, when the caller knows it; else 0).
    pub(super) fn captures<'e>(
        &self,
        plain: &Regex,
        message: &'e str,
        from: usize,
    ) -> Option<regex::Captures<'e>> {
        // Every occurrence counts, overlapping ones too (`abab` in
        // `ababab1` occurs at 0 and at 2, and only the second leads to a
        // match). A message with many occurrences none of which leads to a
        // match could make anchored attempts cost quadratic time, so after
        // a few the unanchored regex (linear) takes over from the next one:
        // no match starts before it.
        const ANCHORED_ATTEMPTS: usize = 4;
        let bytes = message.as_bytes();
        let mut from = from;
        for _ in 0..ANCHORED_ATTEMPTS {
            let at = from + self.literal.find(bytes.get(from..)?)?;
            if let Some(c) = message.get(at..).and_then(|rest| self.regex.captures(rest)) {
                return Some(c);
            }
            from = at + 1;
        }
        plain.captures_at(message, from)
    }
}

/// The literal a pattern begins with, if it begins with one.
pub(super) fn prefix_literal(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(l) => Some(l.0.to_vec()),
        HirKind::Capture(c) => prefix_literal(&c.sub),
        HirKind::Concat(items) => items.first().and_then(prefix_literal),
        _ => None,
    }
    .filter(|l| !l.is_empty())
}

/// One scan of a message for the routes' required literals.
pub(super) enum LiteralScan {
    /// One literal (one pattern route, the common configuration): a
    /// substring search for it alone, up to its first occurrence. Teddy's candidate positions come from
    /// a literal's first bytes; a single-needle search looks for the pair
    /// of its bytes that is rarest in text, so fewer candidates, and no
    /// comparison against a list where one occurs.
    One(memchr::memmem::Finder<'static>),
    /// Up to 64 literals: SIMD (Teddy) search for the next position where
    /// any literal starts, and there every literal compared. The packed
    /// searcher reports one literal per position (leftmost-first), so the
    /// literals that start at the same position, or overlap it, are found by
    /// the comparison and by resuming one byte further.
    Packed {
        searcher: aho_corasick::packed::Searcher,
        literals: Vec<Vec<u8>>,
    },
    /// More literals (or no SIMD): an overlapping Aho-Corasick scan.
    Automaton(AhoCorasick),
}

impl LiteralScan {
    pub(super) fn new(literals: &[Vec<u8>]) -> Result<LiteralScan, RouterError> {
        if let [one] = literals {
            return Ok(LiteralScan::One(
                memchr::memmem::Finder::new(one).into_owned(),
            ));
        }
        if let Some(searcher) = aho_corasick::packed::Searcher::new(literals.iter()) {
            return Ok(LiteralScan::Packed {
                searcher,
                literals: literals.to_vec(),
            });
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(literals)
            .map(LiteralScan::Automaton)
            .map_err(RouterError::Prefilter)
    }

    /// Call `found(k, at)` for every literal `k` that occurs in
    /// `haystack`: the one-literal scan for its first occurrence only, the
    /// others once per occurrence, in the order the searcher reports them
    /// (callers keep the first occurrence of each literal). Stop early when
    /// `found` returns false.
    pub(super) fn each(&self, haystack: &[u8], mut found: impl FnMut(usize, usize) -> bool) {
        match self {
            LiteralScan::One(finder) => {
                if let Some(at) = finder.find(haystack) {
                    found(0, at);
                }
            }
            LiteralScan::Packed { searcher, literals } => {
                let mut at = 0;
                while at < haystack.len() {
                    let span = aho_corasick::Span {
                        start: at,
                        end: haystack.len(),
                    };
                    let Some(m) = searcher.find_in(haystack, span) else {
                        return;
                    };
                    let rest = haystack.get(m.start()..).unwrap_or_default();
                    // The first byte decides for most literals without a
                    // call to compare the rest (a status line compared all
                    // nine of the e2e benchmark's literals by `memcmp`).
                    let first = rest.first();
                    for (k, l) in literals.iter().enumerate() {
                        if l.first() == first && rest.starts_with(l) && !found(k, m.start()) {
                            return;
                        }
                    }
                    at = m.start() + 1;
                }
            }
            LiteralScan::Automaton(ac) => {
                for m in ac.find_overlapping_iter(haystack) {
                    if !found(m.pattern().as_usize(), m.start()) {
                        return;
                    }
                }
            }
        }
    }
}

/// `literal` without its leading spaces, if at least 3 bytes remain. The
/// prefilter finds candidates by a literal's first bytes, and a space
/// begins many words of every message: ` depth=` would make every space
/// before a `de` a candidate to compare all literals at, `depth=` only
/// the `dep`s.
pub(super) fn without_leading_spaces(literal: &[u8]) -> &[u8] {
    let start = literal.iter().take_while(|&&b| b == b' ').count();
    match literal.get(start..) {
        Some(rest) if rest.len() >= 3 => rest,
        _ => literal,
    }
}

/// The longest literal (at least 3 bytes) every match of `hir` contains,
/// each piece [`without_leading_spaces`].
pub(super) fn required_literal(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(l) => Some(without_leading_spaces(&l.0).to_vec()),
        HirKind::Capture(c) => required_literal(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_literal(&r.sub),
        HirKind::Concat(items) => items
            .iter()
            .filter_map(required_literal)
            .max_by_key(Vec::len),
        _ => None,
    }
    .filter(|l| l.len() >= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal_of(pattern: &str) -> Option<String> {
        let hir = regex_syntax::Parser::new().parse(pattern).unwrap();
        required_literal(&hir).map(|l| String::from_utf8(l).unwrap())
    }

    /// Captures anchored at each occurrence of the leading literal are the
    /// unanchored regex's captures, including when an earlier occurrence
    /// does not lead to a match.
    #[test]
    fn anchored_at_literal_captures_like_the_plain_regex() {
        let cases: &[(&str, &[&str])] = &[
            (
                r"status route=(?P<r>\S+) code=(?P<c>\d+)",
                &[
                    "status route=/a code=200",
                    "xx status route=/a code=200 tail",
                    "status route=x status route=/a code=200",
                    "status route= code=1 status route=/b code=2",
                    "status route=/a code=x",
                    "no literal here",
                    "status route=/é code=7 ü",
                    "",
                ],
            ),
            (
                r"ab(?P<w>ab)*(?P<n>\d*)c",
                &["ababab1c", "xab", "aab9c", "abab9", "zzabc", "abxabab3c"],
            ),
            (
                r"abab(?P<n>\d)",
                &[
                    "ababab1",
                    "abab1",
                    "abababab2x",
                    "aba",
                    "ababa",
                    // More occurrences than anchored attempts.
                    "abababababababababababab7",
                    "abab abab abab abab abab abab abab9",
                ],
            ),
            (
                r"GC (?P<pool>\w+)\b(?P<rest>.*)$",
                &["GC old used=1", "GC GC x", "xGC y", "GC "],
            ),
        ];
        for (pattern, messages) in cases {
            let hir = regex_syntax::Parser::new().parse(pattern).unwrap();
            let anchored = AnchoredAtLiteral::new(&hir, pattern).unwrap();
            let plain = Regex::new(pattern).unwrap();
            for m in *messages {
                let texts = |c: Option<regex::Captures<'_>>| {
                    c.map(|c| {
                        c.iter()
                            .map(|g| g.map(|g| g.as_str().to_owned()))
                            .collect::<Vec<_>>()
                    })
                };
                assert_eq!(
                    texts(anchored.captures(&plain, m, 0)),
                    texts(plain.captures(m)),
                    "{pattern} on {m:?}"
                );
                // From the literal's first occurrence (what the router
                // passes): the same captures.
                let first = anchored.literal.find(m.as_bytes()).unwrap_or(0);
                assert_eq!(
                    texts(anchored.captures(&plain, m, first)),
                    texts(plain.captures(m)),
                    "{pattern} on {m:?} from {first}"
                );
            }
        }
        // Only patterns that begin with a literal qualify.
        for pattern in [
            r"(?i)status (\d)",
            r"\s*status (\d)",
            r"a|b(\d)",
            r"(?:ab)?c(\d)",
        ] {
            let hir = regex_syntax::Parser::new().parse(pattern).unwrap();
            assert!(AnchoredAtLiteral::new(&hir, pattern).is_none(), "{pattern}");
        }
    }

    #[test]
    fn required_literals() {
        assert_eq!(
            literal_of(r"svc0042 request (?P<verb>\w+) took"),
            Some("svc0042 request ".into())
        );
        assert_eq!(
            literal_of(r"(?P<pool>[a-z]+) GC pause=(?P<ms>\d+)ms"),
            Some("GC pause=".into()),
            "leading spaces are left off"
        );
        assert_eq!(
            literal_of(r"queue (?P<q>\w+) depth=(?P<d>\d+)"),
            Some("depth=".into())
        );
        assert_eq!(
            literal_of(r"\d+   ab\d"),
            Some("   ab".into()),
            "kept when fewer than 3 bytes would remain"
        );
        assert_eq!(literal_of(r"(?:heap_used=)+\d"), Some("heap_used=".into()));
        // Nothing every match must contain: no gate.
        assert_eq!(literal_of(r"foo|bar"), None);
        assert_eq!(literal_of(r"(?:abc)?\d+"), None);
        assert_eq!(literal_of(r"(?i)error"), None);
        assert_eq!(literal_of(r"ab\d"), None, "too short to be worth it");
    }

    /// The SIMD scan reports every occurrence of every literal, exactly as
    /// the overlapping automaton does: literals that start at the same
    /// position, that overlap, that repeat.
    #[test]
    fn literal_scans_agree() {
        let literals: Vec<Vec<u8>> = ["abc", "ab", "bca", "cab", "a=b", "aaa", "b"]
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let packed = LiteralScan::new(&literals).unwrap();
        assert!(matches!(packed, LiteralScan::Packed { .. }));
        let automaton = LiteralScan::Automaton(
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&literals)
                .unwrap(),
        );
        // Every string over a small alphabet up to length 7, and longer
        // ones past the SIMD block size.
        let alphabet = [b'a', b'b', b'c', b'='];
        let mut haystacks: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=7u32 {
            for mut n in 0..4usize.pow(len) {
                let mut h = Vec::new();
                for _ in 0..len {
                    h.push(alphabet[n % 4]);
                    n /= 4;
                }
                haystacks.push(h);
            }
        }
        for i in 0..200usize {
            let h: Vec<u8> = (0..40 + i % 90)
                .map(|j| alphabet[(j * 7 + i * 13 + j * j * i) % 4])
                .collect();
            haystacks.push(h);
        }
        // Occurrences per literal, and the first one reported.
        let count = |scan: &LiteralScan, h: &[u8], literals: &[Vec<u8>]| {
            let mut n = vec![(0, None); literals.len()];
            scan.each(h, |k, at| {
                assert!(h[at..].starts_with(&literals[k]), "an occurrence at {at}");
                n[k].0 += 1;
                n[k].1 = n[k].1.or(Some(at));
                true
            });
            n
        };
        for h in &haystacks {
            assert_eq!(
                count(&packed, h, &literals),
                count(&automaton, h, &literals),
                "{}",
                String::from_utf8_lossy(h)
            );
        }
        // A single literal takes the one-needle search, which reports
        // whether it occurs, at its first occurrence, once.
        for literal in ["abc", "aaa", "a=b", "abab", "b", "=", "cab=a"] {
            let literals = [literal.as_bytes().to_vec()];
            let one = LiteralScan::new(&literals).unwrap();
            assert!(matches!(one, LiteralScan::One(_)));
            let automaton = LiteralScan::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build([literal])
                    .unwrap(),
            );
            for h in &haystacks {
                let first = |(n, at): (usize, Option<usize>)| (n.min(1), at);
                assert_eq!(
                    count(&one, h, &literals)
                        .into_iter()
                        .map(first)
                        .collect::<Vec<_>>(),
                    count(&automaton, h, &literals)
                        .into_iter()
                        .map(first)
                        .collect::<Vec<_>>(),
                    "{literal} in {}",
                    String::from_utf8_lossy(h)
                );
            }
        }
        let one = LiteralScan::new(&[b"ab".to_vec()]).unwrap();
        let mut calls = Vec::new();
        one.each(b"xababab", |k, at| {
            calls.push((k, at));
            true
        });
        assert_eq!(calls, [(0, 1)]);
    }
}
