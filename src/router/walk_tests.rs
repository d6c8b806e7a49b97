//! The fast route walk (`Router::route`, which starts
//! a leading literal's pattern at the literal's first occurrence) against
//! the full walk (`Router::evaluate`) and the plain regexes, on random
//! messages over a small alphabet full of overlapping occurrences, with
//! one literal route (the one-needle scan), a few (the packed scan) and
//! more than 64 (the automaton).

use super::*;
use crate::config::Config;
use crate::decode::{DecodeOptions, decode};

use bytes::Bytes;
use proptest::prelude::*;

const PATTERNS: [&str; 10] = [
    r"abab(?P<n>\d+)",
    r"aab(?P<n>\d*)b",
    r"aba(?P<x>[ab]+)=(?P<v>\d+)",
    r"bab=(?P<v>\d+) (?P<w>\w+)",
    r"a=b(?P<t>\S*)",
    r"ab=1",
    r"abab\d",
    r"b=1(?P<r>.*)$",
    r"aaa(?P<k>b+)a",
    r"xab(?P<q>[ab]*)",
];

fn router(patterns: &[&str]) -> Router {
    let mut text = String::from(
        "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n[[sinks]]\nname = \"f\"\ntype = \"stdout\"\n",
    );
    for (i, p) in patterns.iter().enumerate() {
        text.push_str(&format!(
            "[[routes]]\nname = \"p{i}\"\nsink = \"f\"\npattern = '{p}'\ndocument = {{}}\n"
        ));
    }
    text.push_str("[default_route]\nsink = \"f\"\ndocument = {}\n");
    Router::new(&Config::from_toml(&text, "t").unwrap().routes).unwrap()
}

pub(super) type View = Vec<(usize, Option<Vec<Option<String>>>)>;

/// Each match's route and captures, comparable across the two walks.
pub(super) fn view(v: &[RouteMatch<'_>]) -> View {
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
}

fn check(router: &Router, patterns: &[regex::Regex], message: &str) -> Result<(), TestCaseError> {
    let frame = format!("<14>1 - h a - - - {message}");
    let e = decode(Bytes::from(frame), None, 0, &DecodeOptions::default());
    let (mut fast, mut full) = (Vec::new(), Vec::new());
    router.route(&e, &mut fast);
    router.evaluate(&e, &mut full, |_, _| {});
    prop_assert_eq!(view(&fast), view(&full), "{:?}", message);
    // And each the plain regex's captures.
    let mut plain: View = patterns
        .iter()
        .enumerate()
        .filter_map(|(i, re)| {
            let c = re.captures(e.message())?;
            let groups = (0..c.len())
                .map(|g| c.get(g).map(|m| m.as_str().to_owned()))
                .collect::<Vec<_>>();
            Some((i, (c.len() > 1).then_some(groups)))
        })
        .collect();
    if plain.is_empty() {
        plain.push((patterns.len(), None));
    }
    prop_assert_eq!(view(&fast), plain, "{:?}", message);
    Ok(())
}

fn regexes(patterns: &[&str]) -> Vec<regex::Regex> {
    patterns
        .iter()
        .map(|p| regex::Regex::new(p).unwrap())
        .collect()
}

/// Routers built once: each pattern alone (the one-needle scan), then all
/// of them (the packed scan); and the patterns' plain regexes.
fn routers() -> &'static (Vec<Router>, Vec<regex::Regex>) {
    static ROUTERS: std::sync::OnceLock<(Vec<Router>, Vec<regex::Regex>)> =
        std::sync::OnceLock::new();
    ROUTERS.get_or_init(|| {
        let mut v: Vec<Router> = PATTERNS.iter().map(|p| router(&[p])).collect();
        v.push(router(&PATTERNS));
        (v, regexes(&PATTERNS))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn fast_walk_agrees_on_overlapping_literals(
        message in "[ab= 1x]{0,40}",
        pick in 0usize..PATTERNS.len(),
    ) {
        let (routers, plain) = routers();
        check(&routers[pick], std::slice::from_ref(&plain[pick]), &message)?;
        check(&routers[PATTERNS.len()], plain, &message)?;
    }
}

/// More than 64 literals: the automaton, reporting by end position.
#[test]
fn fast_walk_agrees_with_the_automaton() {
    let mut patterns: Vec<String> = PATTERNS.iter().map(|p| p.to_string()).collect();
    for i in 0..60 {
        patterns.push(format!("zz{i:03}q(?P<g>\\d+)"));
    }
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let (r, plain) = (router(&refs), regexes(&refs));
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&"[ab= 1x]{0,40}", |m| check(&r, &plain, &m))
        .unwrap();
}

/// A message in which more literals occur than the candidates kept
/// ([`MAX_CANDIDATES`]): the walk falls back to every route and still
/// agrees with the full walk and the plain regexes, at the bound and
/// past it.
#[test]
fn more_candidates_than_kept_fall_back_to_every_route() {
    let patterns: Vec<String> = (0..MAX_CANDIDATES + 8)
        .map(|i| format!("k{i:02}=(?P<v>\\d+)"))
        .collect();
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let (r, plain) = (router(&refs), regexes(&refs));
    for n in [
        1,
        MAX_CANDIDATES - 1,
        MAX_CANDIDATES,
        MAX_CANDIDATES + 1,
        patterns.len(),
    ] {
        // The later routes' literals first: candidates arrive out of
        // route order.
        let message: Vec<String> = (0..n).rev().map(|i| format!("k{i:02}={i}")).collect();
        check(&r, &plain, &message.join(" ")).unwrap();
    }
}
