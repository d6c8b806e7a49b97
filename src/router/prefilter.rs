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

    /// The captures `plain` (the same pattern, unanchored) would give.
    pub(super) fn captures<'e>(
        &self,
        plain: &Regex,
        message: &'e str,
    ) -> Option<regex::Captures<'e>> {
        // Every occurrence counts, overlapping ones too (`abab` in
        // `ababab1` occurs at 0 and at 2, and only the second leads to a
        // match). A message with many occurrences none of which leads to a
        // match could make anchored attempts cost quadratic time, so after
        // a few the unanchored regex (linear) takes over from the next one:
        // no match starts before it.
        const ANCHORED_ATTEMPTS: usize = 4;
        let bytes = message.as_bytes();
        let mut from = 0;
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

    /// Call `found(k)` for every literal `k` that occurs in `haystack`
    /// (once per occurrence); stop early when `found` returns false.
    pub(super) fn each(&self, haystack: &[u8], mut found: impl FnMut(usize) -> bool) {
        match self {
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
                    for (k, l) in literals.iter().enumerate() {
                        if rest.starts_with(l) && !found(k) {
                            return;
                        }
                    }
                    at = m.start() + 1;
                }
            }
            LiteralScan::Automaton(ac) => {
                for m in ac.find_overlapping_iter(haystack) {
                    if !found(m.pattern().as_usize()) {
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
