//! [`Event`] → the routes it goes to.
//!
//! Routes are ordered. A route matches when all its header conditions hold
//! (facility, severity, hostname, appname, msgid — checked first, they are
//! cheap) and its `pattern`, if any, matches the message. An event goes to
//! every matching route up to the first matching `final` route; an event no
//! route matched goes to the default route, never nowhere.
//!
//! The cost of a message must not grow with the number of routes. Most
//! patterns (grok ones especially) contain a literal every match must
//! contain (`svc0042 request `, `GC pause `): those literals of all routes
//! go into one Aho-Corasick automaton, and one scan of the message names the
//! few routes that can match at all. Only their regexes run, and captures
//! are taken only where a route matched. Patterns without such a literal run
//! together as one `RegexSet` pass.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet};

use crate::sequence_pattern::{Found, SequencePattern, Spans};
use regex_syntax::hir::{Hir, HirKind};

use crate::config::{Conditions, RouteConfig};
use crate::event::Event;

/// Router build errors (patterns are validated by config first, so these
/// mean a combination the regex engine refused, e.g. the set grew too big).
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("route {route:?}: pattern does not compile: {source}")]
    Pattern { route: String, source: regex::Error },
    #[error("the combined route patterns do not compile: {0}")]
    Set(regex::Error),
    #[error("the route literal prefilter does not build: {0}")]
    Prefilter(aho_corasick::BuildError),
}

/// How a route's pattern is found in a message.
enum Gate {
    /// No pattern: the conditions decide.
    None,
    /// The message must contain this route's literal (prefilter pattern id).
    Literal,
    /// No required literal: slot in the `RegexSet` of such patterns.
    Set(usize),
}

struct CompiledRoute {
    name: String,
    conditions: Conditions,
    gate: Gate,
    regex: Option<Regex>,
    /// For a pattern that begins with a literal: the literal's finder and
    /// the pattern anchored at its start (see [`AnchoredAtLiteral`]).
    anchored: Option<AnchoredAtLiteral>,
    /// For a pattern of literals and simple captures: the same match
    /// without the regex engine (see [`SequencePattern`]).
    sequence: Option<SequencePattern>,
    /// Named groups of the pattern as (group index, name).
    capture_names: Vec<(usize, String)>,
    is_final: bool,
}

/// A pattern `L…` that begins with the literal `L` can only match where `L`
/// occurs. Its captures are taken by trying `^(?:L…)` at each occurrence of
/// `L`, leftmost first: the same match the unanchored regex finds (the
/// leftmost start, and at a start the same preference order), in one
/// anchored pass instead of a forward scan, a reverse scan and a capture
/// pass. Nothing precedes `L` in the pattern, so no assertion can look
/// before the occurrence.
struct AnchoredAtLiteral {
    literal: memchr::memmem::Finder<'static>,
    regex: Regex,
}

impl AnchoredAtLiteral {
    fn new(hir: &Hir, pattern: &str) -> Option<AnchoredAtLiteral> {
        let literal = prefix_literal(hir)?;
        let regex = Regex::new(&format!("^(?:{pattern})")).ok()?;
        Some(AnchoredAtLiteral {
            literal: memchr::memmem::Finder::new(&literal).into_owned(),
            regex,
        })
    }

    /// The captures `plain` (the same pattern, unanchored) would give.
    fn captures<'e>(&self, plain: &Regex, message: &'e str) -> Option<regex::Captures<'e>> {
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
fn prefix_literal(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(l) => Some(l.0.to_vec()),
        HirKind::Capture(c) => prefix_literal(&c.sub),
        HirKind::Concat(items) => items.first().and_then(prefix_literal),
        _ => None,
    }
    .filter(|l| !l.is_empty())
}

/// Why a route did not match (for `sluice parse -c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Facility,
    Severity,
    Hostname,
    Appname,
    Msgid,
    Pattern,
    /// An earlier `final` route matched.
    AfterFinal,
    /// The default route only takes events nothing else matched.
    NotDefault,
}

impl Miss {
    pub fn as_str(self) -> &'static str {
        match self {
            Miss::Facility => "facility",
            Miss::Severity => "severity",
            Miss::Hostname => "hostname",
            Miss::Appname => "appname",
            Miss::Msgid => "msgid",
            Miss::Pattern => "pattern",
            Miss::AfterFinal => "after a final route",
            Miss::NotDefault => "default route: another route matched",
        }
    }
}

/// One scan of a message for the routes' required literals.
enum LiteralScan {
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
    fn new(literals: &[Vec<u8>]) -> Result<LiteralScan, RouterError> {
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
    fn each(&self, haystack: &[u8], mut found: impl FnMut(usize) -> bool) {
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

/// The groups a route's pattern captured in a message: from its regex, or
/// from its sequence form (the same groups, found faster).
pub enum Captures<'e> {
    Regex(regex::Captures<'e>),
    Sequence(Spans<'e>),
}

impl<'e> Captures<'e> {
    /// Group `i`'s text, if it took part in the match (0: the whole match).
    pub fn get(&self, i: usize) -> Option<&'e str> {
        match self {
            Captures::Regex(c) => c.get(i).map(|m| m.as_str()),
            Captures::Sequence(s) => s.get(i),
        }
    }

    /// Groups of the pattern, the whole match included.
    pub fn groups(&self) -> usize {
        match self {
            Captures::Regex(c) => c.len(),
            Captures::Sequence(s) => s.groups(),
        }
    }
}

impl<'e> From<regex::Captures<'e>> for Captures<'e> {
    fn from(c: regex::Captures<'e>) -> Self {
        Captures::Regex(c)
    }
}

/// A route an event matched, with the pattern's captures.
pub struct RouteMatch<'e> {
    pub route: usize,
    pub captures: Option<Captures<'e>>,
}

/// Candidate routes one message can hold before the router falls back to
/// trying every route (still correct, only slower).
const MAX_CANDIDATES: usize = 32;

pub struct Router {
    routes: Vec<CompiledRoute>,
    /// Required literals of the literal-gated routes.
    literals: Option<LiteralScan>,
    /// Prefilter pattern id → route index.
    literal_route: Vec<usize>,
    /// Patterns without a required literal.
    set: RegexSet,
    /// Routes that are checked for every message (no literal gate), in order.
    ungated: Vec<usize>,
    default_route: Option<usize>,
}

fn condition_miss(c: &Conditions, event: &Event) -> Option<Miss> {
    if let Some(mask) = c.facilities {
        if !event
            .facility
            .is_some_and(|f| f < 32 && mask & (1 << f) != 0)
        {
            return Some(Miss::Facility);
        }
    }
    if let Some(mask) = c.severities {
        if !event
            .severity
            .is_some_and(|s| s < 8 && mask & (1 << s) != 0)
        {
            return Some(Miss::Severity);
        }
    }
    // The event's field is only looked up when the route names values:
    // most routes have no such condition, and every event meets them.
    let one_of = |wanted: &Option<Vec<String>>, got: fn(&Event) -> Option<&str>| match wanted {
        Some(list) => got(event).is_some_and(|g| list.iter().any(|w| w == g)),
        None => true,
    };
    if !one_of(&c.hostnames, Event::hostname) {
        return Some(Miss::Hostname);
    }
    if !one_of(&c.appnames, Event::appname) {
        return Some(Miss::Appname);
    }
    if !one_of(&c.msgids, Event::msgid) {
        return Some(Miss::Msgid);
    }
    None
}

/// `literal` without its leading spaces, if at least 3 bytes remain. The
/// prefilter finds candidates by a literal's first bytes, and a space
/// begins many words of every message: ` depth=` would make every space
/// before a `de` a candidate to compare all literals at, `depth=` only
/// the `dep`s.
fn without_leading_spaces(literal: &[u8]) -> &[u8] {
    let start = literal.iter().take_while(|&&b| b == b' ').count();
    match literal.get(start..) {
        Some(rest) if rest.len() >= 3 => rest,
        _ => literal,
    }
}

/// The longest literal (at least 3 bytes) every match of `hir` contains,
/// each piece [`without_leading_spaces`].
fn required_literal(hir: &Hir) -> Option<Vec<u8>> {
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

impl Router {
    pub fn new(routes: &[RouteConfig]) -> Result<Router, RouterError> {
        let mut set_patterns = Vec::new();
        let mut literals = Vec::new();
        let mut literal_route = Vec::new();
        let mut ungated = Vec::new();
        let mut compiled = Vec::new();
        let mut default_route = None;
        for (i, r) in routes.iter().enumerate() {
            if r.is_default {
                default_route = Some(i);
            }
            let mut anchored = None;
            let mut sequence = None;
            let (gate, regex) = match &r.pattern {
                Some(compiled) => {
                    // Compiled once, when the config was validated.
                    let (re, p) = (compiled.clone(), compiled.as_str());
                    let hir = regex_syntax::Parser::new().parse(p).ok();
                    let literal = hir.as_ref().and_then(required_literal);
                    // Captures by the sequence form if the pattern has one,
                    // else anchored at its leading literal if it has one.
                    let with_groups = hir.as_ref().filter(|_| re.captures_len() > 1);
                    sequence =
                        with_groups.and_then(|hir| SequencePattern::new(hir, re.captures_len()));
                    if sequence.is_none() {
                        anchored = with_groups.and_then(|hir| AnchoredAtLiteral::new(hir, p));
                    }
                    let gate = match literal {
                        Some(l) => {
                            literals.push(l);
                            literal_route.push(i);
                            Gate::Literal
                        }
                        None => {
                            set_patterns.push(p.to_owned());
                            Gate::Set(set_patterns.len() - 1)
                        }
                    };
                    (gate, Some(re))
                }
                None => (Gate::None, None),
            };
            if !matches!(gate, Gate::Literal) && !r.is_default {
                ungated.push(i);
            }
            let capture_names = regex
                .as_ref()
                .map(crate::route::capture_names)
                .unwrap_or_default();
            compiled.push(CompiledRoute {
                name: r.name.clone(),
                conditions: r.conditions.clone(),
                gate,
                regex,
                anchored,
                sequence,
                capture_names,
                is_final: r.is_final,
            });
        }
        let set = regex::RegexSetBuilder::new(&set_patterns)
            .size_limit(64 << 20)
            .build()
            .map_err(RouterError::Set)?;
        let literals = if literals.is_empty() {
            None
        } else {
            Some(LiteralScan::new(&literals)?)
        };
        Ok(Router {
            routes: compiled,
            literals,
            literal_route,
            set,
            ungated,
            default_route,
        })
    }

    /// The named groups of a route's pattern, as (group index, name).
    pub fn capture_names(&self, route: usize) -> &[(usize, String)] {
        self.routes
            .get(route)
            .map_or(&[], |r| r.capture_names.as_slice())
    }

    pub fn route_name(&self, route: usize) -> &str {
        self.routes.get(route).map_or("", |r| r.name.as_str())
    }

    /// The routes whose literal occurs in `message`, sorted; `None` when
    /// there are more than [`MAX_CANDIDATES`].
    fn candidates(&self, message: &str, out: &mut [usize; MAX_CANDIDATES]) -> Option<usize> {
        let Some(scan) = &self.literals else {
            return Some(0);
        };
        let mut n = 0;
        let mut overflow = false;
        scan.each(message.as_bytes(), |k| {
            let Some(&route) = self.literal_route.get(k) else {
                return true;
            };
            match out[..n].binary_search(&route) {
                Ok(_) => true,
                Err(_) if n == MAX_CANDIDATES => {
                    overflow = true;
                    false
                }
                Err(at) => {
                    out.copy_within(at..n, at + 1);
                    out[at] = route;
                    n += 1;
                    true
                }
            }
        });
        (!overflow).then_some(n)
    }

    /// Append the routes `event` goes to, in route order. Only routes whose
    /// literal the message contains, and routes without one, are looked at.
    pub fn route<'e>(&self, event: &'e Event, out: &mut Vec<RouteMatch<'e>>) {
        let message = event.message();
        let mut buf = [0usize; MAX_CANDIDATES];
        let Some(n) = self.candidates(message, &mut buf) else {
            return self.evaluate(event, out, |_, _| {});
        };
        let start = out.len();
        let mut set_matches: Option<regex::SetMatches> = None;
        // Merge the candidates with the ungated routes, in route order.
        let (mut a, mut b) = (buf[..n].iter().peekable(), self.ungated.iter().peekable());
        loop {
            let i = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => {
                    a.next();
                    x
                }
                (_, Some(&&y)) => {
                    b.next();
                    y
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, None) => break,
            };
            let Some(r) = self.routes.get(i) else {
                continue;
            };
            if condition_miss(&r.conditions, event).is_some() {
                continue;
            }
            let Some(captures) = self.pattern_match(r, message, &mut set_matches) else {
                continue;
            };
            out.push(RouteMatch { route: i, captures });
            if r.is_final {
                break;
            }
        }
        if let Some(d) = self.default_route {
            if out.len() == start {
                out.push(RouteMatch {
                    route: d,
                    captures: None,
                });
            }
        }
    }

    /// Does `r`'s pattern match? `Some(captures)` if so (captures only when
    /// the pattern has groups).
    fn pattern_match<'e>(
        &self,
        r: &CompiledRoute,
        message: &'e str,
        set_matches: &mut Option<regex::SetMatches>,
    ) -> Option<Option<Captures<'e>>> {
        let Some(re) = &r.regex else {
            return Some(None);
        };
        if let Gate::Set(slot) = r.gate {
            let set = set_matches.get_or_insert_with(|| self.set.matches(message));
            if !set.matched(slot) {
                return None;
            }
        }
        if let Some(s) = &r.sequence {
            match s.captures(message) {
                Found::Match(spans) => Some(Some(Captures::Sequence(spans))),
                Found::NoMatch => None,
                Found::SearchFrom(from) => re.captures_at(message, from).map(|c| Some(c.into())),
            }
        } else if let Some(a) = &r.anchored {
            a.captures(re, message).map(|c| Some(c.into()))
        } else if re.captures_len() > 1 {
            re.captures(message).map(|c| Some(c.into()))
        } else if matches!(r.gate, Gate::Set(_)) || re.is_match(message) {
            Some(None)
        } else {
            None
        }
    }

    /// Every route, in order, telling `miss` why each route that did not
    /// take the event missed it (for `sluice parse -c`). Same result as
    /// [`Router::route`].
    pub fn evaluate<'e>(
        &self,
        event: &'e Event,
        out: &mut Vec<RouteMatch<'e>>,
        mut miss: impl FnMut(usize, Miss),
    ) {
        let message = event.message();
        let mut set_matches: Option<regex::SetMatches> = None;
        let start = out.len();
        let mut stopped = false;
        for (i, r) in self.routes.iter().enumerate() {
            if Some(i) == self.default_route {
                continue;
            }
            if stopped {
                miss(i, Miss::AfterFinal);
                continue;
            }
            if let Some(m) = condition_miss(&r.conditions, event) {
                miss(i, m);
                continue;
            }
            let Some(captures) = self.pattern_match(r, message, &mut set_matches) else {
                miss(i, Miss::Pattern);
                continue;
            };
            out.push(RouteMatch { route: i, captures });
            if r.is_final {
                stopped = true;
            }
        }
        if let Some(d) = self.default_route {
            if out.len() == start {
                out.push(RouteMatch {
                    route: d,
                    captures: None,
                });
            } else {
                miss(d, Miss::NotDefault);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decode::{DecodeOptions, decode};
    use bytes::Bytes;

    fn config() -> Config {
        Config::from_toml(
            r#"
[[listeners]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:0"
[[sinks]]
name = "f"
type = "stdout"
[[routes]]
name = "gc"
sink = "f"
appname = "jvm"
pattern = 'heap_used=(?P<used>\d+)'
metric = { measurement = "gc", fields = { used = "int" } }
[[routes]]
name = "warn"
sink = "f"
severity = "warning"
final = true
document = {}
[[routes]]
name = "never_after_final"
sink = "f"
severity = "warning"
document = {}
[default_route]
sink = "f"
document = {}
"#,
            "t",
        )
        .unwrap()
    }

    fn names(router: &Router, line: &str) -> Vec<String> {
        let e = decode(
            Bytes::copy_from_slice(line.as_bytes()),
            None,
            0,
            &DecodeOptions::default(),
        );
        let mut out = Vec::new();
        router.route(&e, &mut out);
        out.iter()
            .map(|m| router.route_name(m.route).to_owned())
            .collect()
    }

    /// The benchmark's grok routes: those made of literals and simple
    /// captures take the sequence form, and every route's captures are the
    /// plain regex's, on lines that match and lines that almost do.
    #[test]
    fn sequence_routes_capture_what_the_regex_captures() {
        let text = include_str!("../benches/e2e/sluice.toml")
            .replace("${BLASTER_SINK}", "http://127.0.0.1:9");
        let config = Config::from_toml(&text, "e2e.toml").unwrap();
        let router = Router::new(&config.routes).unwrap();
        let with_sequence: Vec<&str> = router
            .routes
            .iter()
            .filter(|r| r.sequence.is_some())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            with_sequence,
            [
                "http_status",
                "jvm_gc",
                "jvm_heap",
                "db_pool",
                "queue_depth",
                "cache",
                "payments"
            ]
        );
        let messages = [
            "status route=/api/v1/orders code=200 latency_ms=1.5 bytes=200 seq=4 sent=17 xx",
            "x status route=/a code=200 latency_ms=1.5 bytes=2e1 seq=4 sent=17 status route=/b code=201 latency_ms=.5 bytes=3 seq=5 sent=-18",
            "status route=/a code=2x latency_ms=1 bytes=1 seq=1 sent=1",
            "GC pool=old used=1 max=2 pause_ms=3.25e-1",
            "heap_used=1 heap_max=2 threads=3",
            "pool=main active=1 idle=2 waiting=3",
            "pool=ma-in active=1 idle=2 waiting=3",
            "queue orders depth=12",
            "queue orders-x depth=12",
            "queue orders;;;;;;;12 depth=",
            "cache users hits=1 misses=+2",
            "payment settled amount=12.50 currency=EUR",
            "payment settled amount=12.50e currency=EUR",
        ];
        for m in messages {
            let e = decode(
                Bytes::from(format!("<14>1 - h app - - - {m}")),
                None,
                0,
                &DecodeOptions::default(),
            );
            let mut out = Vec::new();
            router.route(&e, &mut out);
            for r in &config.routes {
                let i = router.routes.iter().position(|c| c.name == r.name).unwrap();
                let Some(re) = &router.routes[i].regex else {
                    continue;
                };
                let want: Option<Vec<Option<String>>> = re
                    .captures(e.message())
                    .map(|c| c.iter().map(|g| g.map(|g| g.as_str().to_owned())).collect());
                let got: Option<Vec<Option<String>>> =
                    out.iter()
                        .find(|o| o.route == i)
                        .map(|o| match &o.captures {
                            Some(c) => (0..c.groups())
                                .map(|g| c.get(g).map(str::to_owned))
                                .collect(),
                            None => Vec::new(),
                        });
                let want = want.map(|w| if re.captures_len() > 1 { w } else { Vec::new() });
                assert_eq!(got, want, "route {} on {m:?}", r.name);
            }
        }
    }

    #[test]
    fn conditions_patterns_final_and_default() {
        let router = Router::new(&config().routes).unwrap();
        assert_eq!(names(&router, "<14>1 - h jvm - - - heap_used=5"), ["gc"]);
        assert_eq!(
            names(&router, "<12>1 - h jvm - - - heap_used=5"),
            ["gc", "warn"]
        );
        assert_eq!(
            names(&router, "<12>1 - h other - - - heap_used=5"),
            ["warn"]
        );
        assert_eq!(names(&router, "<14>1 - h jvm - - - nothing"), ["default"]);
        assert_eq!(names(&router, "garbage"), ["default"]);
    }

    #[test]
    fn captures_only_for_matched_routes() {
        let router = Router::new(&config().routes).unwrap();
        let e = decode(
            Bytes::from_static(b"<14>1 - h jvm - - - heap_used=42"),
            None,
            0,
            &DecodeOptions::default(),
        );
        let mut out = Vec::new();
        let mut misses = Vec::new();
        router.evaluate(&e, &mut out, |r, m| misses.push((r, m)));
        let used = out[0].captures.as_ref().and_then(|c| {
            let names = router.capture_names(out[0].route);
            names
                .iter()
                .find(|(_, n)| n == "used")
                .and_then(|(i, _)| c.get(*i))
        });
        assert_eq!(used, Some("42"));
        assert_eq!(misses[0], (1, Miss::Severity));
    }

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
                    texts(anchored.captures(&plain, m)),
                    texts(plain.captures(m)),
                    "{pattern} on {m:?}"
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
        for h in &haystacks {
            let count = |scan: &LiteralScan| {
                let mut n = vec![0; literals.len()];
                scan.each(h, |k| {
                    n[k] += 1;
                    true
                });
                n
            };
            assert_eq!(
                count(&packed),
                count(&automaton),
                "{}",
                String::from_utf8_lossy(h)
            );
        }
    }

    /// The fast path (only routes whose literal occurs) and the full walk
    /// the debugger uses must agree, route for route and capture for capture.
    #[test]
    fn fast_path_agrees_with_the_full_walk() {
        let mut text = String::from(
            "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n",
        );
        let patterns = [
            r"svc1 request (?P<verb>\w+)",
            r"svc2 request (?P<verb>\w+)",
            r"(?:GET|POST) (?P<path>/\S*)",
            r"code=(?P<code>\d+)",
            r"request",
            r"(?i)timeout",
            r"pool=(?P<pool>\w+)",
            r"pool=old gen (?P<used>\w+)",
        ];
        for (i, p) in patterns.iter().enumerate() {
            let extra = match i % 3 {
                0 => "severity = \"warning\"\n",
                1 => "appname = \"api\"\n",
                _ => "",
            };
            text.push_str(&format!("[[routes]]\nname = \"p{i}\"\nsink = \"f\"\npattern = '{p}'\n{extra}document = {{}}\n"));
        }
        text.push_str(
            "[[routes]]\nname = \"errors\"\nsink = \"f\"\nseverity = \"err\"\ndocument = {}\n",
        );
        text.push_str("[[routes]]\nname = \"final\"\nsink = \"f\"\npattern = 'STOP here'\nfinal = true\ndocument = {}\n");
        text.push_str(
            "[[routes]]\nname = \"after\"\nsink = \"f\"\npattern = 'request'\ndocument = {}\n",
        );
        text.push_str("[default_route]\nsink = \"f\"\ndocument = {}\n");
        let config = Config::from_toml(&text, "t").unwrap();
        let router = Router::new(&config.routes).unwrap();
        let messages = [
            "svc1 request GET /a code=200",
            "svc2 request POST /b code=500 TIMEOUT",
            "STOP here svc1 request GET",
            "svc1 request svc2 request svc1 request",
            "nothing at all",
            "timeout code=1",
            "GC pool=old gen used=1 request",
            "pool=new pool=old gen x",
            "",
        ];
        let mut checked = 0;
        for m in messages {
            for (pri, app) in [(11, "api"), (14, "api"), (12, "web"), (15, "web")] {
                let frame = format!("<{pri}>1 - h {app} - - - {m}");
                let e = decode(Bytes::from(frame), None, 0, &DecodeOptions::default());
                let (mut fast, mut full) = (Vec::new(), Vec::new());
                router.route(&e, &mut fast);
                router.evaluate(&e, &mut full, |_, _| {});
                let view = |v: &[RouteMatch<'_>]| -> Vec<(usize, Option<Vec<Option<String>>>)> {
                    v.iter()
                        .map(|r| {
                            let caps = r.captures.as_ref().map(|c| {
                                (0..c.groups())
                                    .map(|i| c.get(i).map(str::to_owned))
                                    .collect()
                            });
                            (r.route, caps)
                        })
                        .collect()
                };
                assert_eq!(view(&fast), view(&full), "{}", e.text());
                checked += fast.len();
            }
        }
        assert!(
            checked > 40,
            "the sample should match many routes: {checked}"
        );
    }
}
