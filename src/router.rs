//! [`Event`] → the routes it goes to.
//!
//! Routes are ordered. A route matches when all its header conditions hold
//! (facility, severity, hostname, appname, msgid — checked first, they are
//! cheap) and its `pattern`, if any, matches the message. The patterns of
//! all routes are compiled into one `RegexSet`, so an event costs one pass
//! over its message however many patterns there are; captures are extracted
//! only for the routes that matched. An event goes to every matching route
//! up to the first matching `final` route; an event no route matched goes to
//! the default route, never nowhere.

use regex::{Captures, Regex, RegexSet};

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
}

struct CompiledRoute {
    name: String,
    conditions: Conditions,
    /// Index in the `RegexSet`, and the route's own regex for captures.
    pattern: Option<(usize, Regex)>,
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

pub struct Router {
    routes: Vec<CompiledRoute>,
    set: RegexSet,
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
    let one_of = |wanted: &Option<Vec<String>>, got: Option<&str>| match wanted {
        Some(list) => got.is_some_and(|g| list.iter().any(|w| w == g)),
        None => true,
    };
    if !one_of(&c.hostnames, event.hostname()) {
        return Some(Miss::Hostname);
    }
    if !one_of(&c.appnames, event.appname()) {
        return Some(Miss::Appname);
    }
    if !one_of(&c.msgids, event.msgid()) {
        return Some(Miss::Msgid);
    }
    None
}

impl Router {
    pub fn new(routes: &[RouteConfig]) -> Result<Router, RouterError> {
        let mut patterns = Vec::new();
        let mut compiled = Vec::new();
        let mut default_route = None;
        for (i, r) in routes.iter().enumerate() {
            if r.is_default {
                default_route = Some(i);
            }
            let pattern = match &r.pattern {
                Some(p) => {
                    let re = Regex::new(p).map_err(|source| RouterError::Pattern {
                        route: r.name.clone(),
                        source,
                    })?;
                    patterns.push(p.clone());
                    Some((patterns.len() - 1, re))
                }
                None => None,
            };
            let capture_names = pattern
                .as_ref()
                .map(|(_, re)| crate::route::capture_names(re))
                .unwrap_or_default();
            compiled.push(CompiledRoute {
                name: r.name.clone(),
                conditions: r.conditions.clone(),
                pattern,
                capture_names,
                is_final: r.is_final,
            });
        }
        let set = RegexSet::new(&patterns).map_err(RouterError::Set)?;
        Ok(Router {
            routes: compiled,
            set,
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

    /// Append the routes `event` goes to, in route order.
    pub fn route<'e>(&self, event: &'e Event, out: &mut Vec<RouteMatch<'e>>) {
        self.evaluate(event, out, |_, _| {});
    }

    /// Like [`Router::route`], also telling `miss` why each other route did
    /// not take the event.
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
            let captures = match &r.pattern {
                Some((slot, re)) => {
                    let set = set_matches.get_or_insert_with(|| self.set.matches(message));
                    if !set.matched(*slot) {
                        miss(i, Miss::Pattern);
                        continue;
                    }
                    if re.captures_len() > 1 {
                        re.captures(message)
                    } else {
                        None
                    }
                }
                None => None,
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
        assert_eq!(&out[0].captures.as_ref().unwrap()["used"], "42");
        assert_eq!(misses[0], (1, Miss::Severity));
    }
}
