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

mod prefilter;
pub(crate) mod sequence;
#[cfg(test)]
mod walk_tests;

use regex::{Regex, RegexSet};

use crate::output::Captures;
use prefilter::{AnchoredAtLiteral, LiteralScan, prefix_literal, required_literal};
use sequence::{Found, SequencePattern};

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
    /// `None` when the route has no header condition (most have none):
    /// nothing to check per event.
    conditions: Option<Conditions>,
    gate: Gate,
    regex: Option<Regex>,
    /// The route's prefilter literal is the one its pattern begins with:
    /// no match starts before the literal's first occurrence, so the
    /// captures are searched from there.
    literal_leads: bool,
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

/// A route an event matched, with the pattern's captures.
pub struct RouteMatch<'e> {
    pub route: usize,
    pub captures: Option<Captures<'e>>,
}

/// Candidate routes one message can hold before the router falls back to
/// trying every route (still correct, only slower).
const MAX_CANDIDATES: usize = 32;

/// A message's candidate routes (route, the literal's first occurrence),
/// sorted by route. Inline and left uninitialised until filled: a zeroed
/// array of them cost a `memset` of its whole size per message, though
/// most messages have no candidate or one.
type Candidates = smallvec::SmallVec<[(usize, usize); MAX_CANDIDATES]>;

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
            let mut literal_leads = false;
            let (gate, regex) = match &r.pattern {
                Some(compiled) => {
                    // Compiled once, when the config was validated.
                    let (re, p) = (compiled.clone(), compiled.as_str());
                    let hir = regex_syntax::Parser::new().parse(p).ok();
                    let literal = hir.as_ref().and_then(required_literal);
                    literal_leads =
                        literal.is_some() && literal == hir.as_ref().and_then(prefix_literal);
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
                .map(crate::output::capture_names)
                .unwrap_or_default();
            compiled.push(CompiledRoute {
                name: r.name.clone(),
                conditions: (!r.conditions.is_empty()).then(|| r.conditions.clone()),
                gate,
                regex,
                literal_leads,
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

    /// The routes whose literal occurs in `message`, sorted, each with the
    /// literal's first occurrence, into `out` (empty); false when there
    /// are more than [`MAX_CANDIDATES`].
    fn candidates(&self, message: &str, out: &mut Candidates) -> bool {
        let Some(scan) = &self.literals else {
            return true;
        };
        let mut overflow = false;
        // Occurrences come leftmost first: a route's first one is kept.
        scan.each(message.as_bytes(), |k, found_at| {
            let Some(&route) = self.literal_route.get(k) else {
                return true;
            };
            match out.binary_search_by_key(&route, |c| c.0) {
                Ok(_) => true,
                Err(_) if out.len() == MAX_CANDIDATES => {
                    overflow = true;
                    false
                }
                Err(at) => {
                    out.insert(at, (route, found_at));
                    true
                }
            }
        });
        !overflow
    }

    /// Append the routes `event` goes to, in route order. Only routes whose
    /// literal the message contains, and routes without one, are looked at.
    pub fn route<'e>(&self, event: &'e Event, out: &mut Vec<RouteMatch<'e>>) {
        let message = event.message_after_bom();
        let mut candidates = Candidates::new();
        if !self.candidates(message, &mut candidates) {
            return self.evaluate(event, out, |_, _| {});
        }
        let start = out.len();
        let mut set_matches: Option<regex::SetMatches> = None;
        // Merge the candidates with the ungated routes, in route order.
        let (mut a, mut b) = (candidates.iter().peekable(), self.ungated.iter().peekable());
        loop {
            // The route, and where its match can start at the earliest.
            let (i, from) = match (a.peek(), b.peek()) {
                (Some(&&(x, at)), Some(&&y)) if x < y => {
                    a.next();
                    (x, at)
                }
                (_, Some(&&y)) => {
                    b.next();
                    (y, 0)
                }
                (Some(&&(x, at)), None) => {
                    a.next();
                    (x, at)
                }
                (None, None) => break,
            };
            let Some(r) = self.routes.get(i) else {
                continue;
            };
            if let Some(c) = &r.conditions {
                if condition_miss(c, event).is_some() {
                    continue;
                }
            }
            // A route without a pattern (a document route of every event)
            // matches here, without the call.
            let captures = if r.regex.is_none() {
                None
            } else {
                let from = if r.literal_leads { from } else { 0 };
                let Some(captures) = self.pattern_match(r, message, from, &mut set_matches) else {
                    continue;
                };
                captures
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
    /// the pattern has groups). No match starts before `from`.
    fn pattern_match<'e>(
        &self,
        r: &CompiledRoute,
        message: &'e str,
        from: usize,
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
            match s.captures(message, from) {
                Found::Match(spans) => Some(Some(Captures::Sequence(spans))),
                Found::NoMatch => None,
                Found::SearchFrom(from) => re.captures_at(message, from).map(|c| Some(c.into())),
            }
        } else if let Some(a) = &r.anchored {
            a.captures(re, message, from).map(|c| Some(c.into()))
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
        let message = event.message_after_bom();
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
            if let Some(m) = r.conditions.as_ref().and_then(|c| condition_miss(c, event)) {
                miss(i, m);
                continue;
            }
            let Some(captures) = self.pattern_match(r, message, 0, &mut set_matches) else {
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

    /// A config of a UDP listener and `routes` (sinks and routes in TOML).
    fn config_of(routes: &str) -> Config {
        let toml = format!("\n{}{routes}", crate::config::test_udp_listener!());
        Config::from_toml(&toml, "t").unwrap()
    }

    fn config() -> Config {
        config_of(
            r#"[[sinks]]
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
        )
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
        let text = include_str!("../../benches/e2e/sluice.toml")
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

    /// A frame without PRI has no facility or severity: a route asking
    /// for either does not take it (none is made up for it).
    #[test]
    fn a_frame_without_pri_meets_no_facility_or_severity_condition() {
        let text = concat!(
            "\n",
            crate::config::test_udp_listener!(),
            "[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n",
            "[[routes]]\nname = \"user\"\nsink = \"f\"\nfacility = \"user\"\ndocument = {}\n",
            "[[routes]]\nname = \"notice\"\nsink = \"f\"\nseverity = \"notice\"\ndocument = {}\n",
            "[default_route]\nsink = \"f\"\ndocument = {}\n",
        );
        let router = Router::new(&Config::from_toml(text, "t").unwrap().routes).unwrap();
        assert_eq!(
            names(&router, "<13>Nov 24 09:01:02 h app: x"),
            ["user", "notice"]
        );
        assert_eq!(names(&router, "Nov 24 09:01:02 h app: x"), ["default"]);
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

    /// RFC 5424 keeps a BOM at the start of MSG (§6.4); a pattern anchored
    /// at the start still matches the text after it, on the fast path and
    /// on the full walk.
    #[test]
    fn an_anchored_pattern_matches_the_text_after_a_bom() {
        let config = config_of(
            r#"[[sinks]]
name = "f"
type = "stdout"
[[routes]]
name = "gc"
sink = "f"
pattern = '^heap_used=(?P<used>\d+)'
metric = { measurement = "gc", fields = { used = "int" } }
[default_route]
sink = "f"
document = {}
"#,
        );
        let router = Router::new(&config.routes).unwrap();
        let e = decode(
            Bytes::from_static("<14>1 - h jvm - - - \u{feff}heap_used=42".as_bytes()),
            None,
            0,
            &DecodeOptions::default(),
        );
        assert_eq!(e.message(), "\u{feff}heap_used=42");
        let used = |out: &[RouteMatch<'_>]| {
            let m = out.first().expect("the gc route matched");
            assert_eq!(router.route_name(m.route), "gc");
            m.captures
                .as_ref()
                .and_then(|c| c.get(1))
                .map(str::to_owned)
        };
        let mut out = Vec::new();
        router.route(&e, &mut out);
        assert_eq!(used(&out).as_deref(), Some("42"));
        out.clear();
        router.evaluate(&e, &mut out, |_, _| {});
        assert_eq!(used(&out).as_deref(), Some("42"));
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
                let view = super::walk_tests::view;
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
