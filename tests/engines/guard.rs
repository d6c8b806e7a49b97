//! A `data_stream` the engine cannot give (issue #23, found by an outside
//! tester): a plain index that already holds the name, an engine without
//! data streams. The sink refuses at setup and holds the route's records
//! (not written into the wrong index, not dropped); `/health` says why,
//! an ERROR is logged once; once the cause is gone, everything arrives.

use std::time::Duration;

use super::Kind;
use super::cases::{counted_drops, fresh, send_numbered};
use crate::util::{Sluice, config, read_lines, wait_while};

/// A config whose route `all` sends everything to an Elasticsearch sink
/// `ds` writing into data stream `ds` on `url`, with a template of its
/// own (`sluice-guard-<ds>`: not the one another case's sink `ds` keeps).
fn data_stream_config(url: &str, ds: &str) -> String {
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "ds"
type = "elasticsearch"
urls = ["{url}"]
data_stream = "{ds}"
template_name = "sluice-guard-{ds}"
linger_ms = 50
[[routes]]
name = "all"
sink = "ds"
final = true
document = {{}}
[default_route]
sink = "events"
document = {{}}
"#
        ),
    )
}

/// Records accepted into route `all`'s queue.
fn accepted(s: &Sluice) -> u64 {
    s.metric_sum("sluice_queue_pushed_records_total", "route=\"all\"")
}

/// While held: `/health` degraded naming route, sink and why; nothing
/// stored in `index`, nothing dropped or dead-lettered, everything sent
/// accepted (held in sluice). Returns the /health error.
fn assert_held(s: &Sluice, engine: &super::Engine, index: &str, sent: u64, why: &str) -> String {
    wait_while!(60, || !s
        .sink_health("ds", "all")
        .1
        .is_some_and(|e| e.contains(why)));
    let (status, error) = s.sink_health("ds", "all");
    let error = error.unwrap_or_default();
    eprintln!("/health while held: {status}: {error}");
    assert!(
        error.contains(why),
        "waited 60 s for /health (route all, sink ds) to say {why:?}: {error}"
    );
    assert_eq!(status, "degraded");
    // A few retries later: still nothing written anywhere, nothing lost.
    std::thread::sleep(Duration::from_secs(6));
    let (stored, drops, took) = (engine.count(index), counted_drops(s), accepted(s));
    eprintln!(
        "held: sent {sent}, accepted {took}, stored in {index} {stored}, counted drops {drops}"
    );
    assert_eq!(stored, 0, "nothing written into {index}");
    assert_eq!(drops, 0, "held records are not drops");
    assert_eq!(took, sent, "every record sent is held in sluice");
    assert!(read_lines(&s.path("sluice-data/dead-letter/ds.ndjson")).is_empty());
    let errors = s
        .stderr()
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("records held until an operator acts"))
        .count();
    assert_eq!(
        errors,
        1,
        "one ERROR line, not one per retry:\n{}",
        s.stderr()
    );
    error
}

/// Stop sluice while it holds `n` records: they are lost at the shutdown
/// deadline and said so (the exit status and the last line): sent =
/// stored (0) + lost at shutdown, exactly.
fn stop_holding(s: &mut Sluice, n: u64) {
    let status = s.stop();
    let said = format!("error: {n} records were lost at shutdown");
    let last = s.stderr().lines().last().unwrap_or("").to_owned();
    eprintln!("stopped while holding {n}: {status}; {last}");
    assert!(
        !status.success(),
        "held records lost at shutdown fail the exit"
    );
    assert!(last.starts_with(&said), "{last}");
}

/// Regression (#23): `data_stream = NAME` where a plain index NAME exists
/// was written into that index silently. Now the records are held until
/// the index is removed; then the data stream is created and receives
/// them all: sent = stored + counted drops.
#[test]
fn a_data_stream_name_held_by_a_plain_index_is_refused_until_it_is_removed() {
    let Some(engine) = super::shared(Kind::OpenSearch) else {
        return;
    };
    let ds = "logs-sluice-plain";
    fresh(
        engine,
        &[
            &format!("/_data_stream/{ds}"),
            &format!("/{ds}"),
            &format!("/_index_template/sluice-guard-{ds}"),
        ],
    );
    engine.ok("PUT", &format!("/{ds}"), "{}");
    let mut s = Sluice::start(&data_stream_config(&engine.urls()[0], ds));
    // Checked at start-up: /health says so before any record arrives.
    let why = "a plain index already holds this name";
    wait_while!(60, || !s
        .sink_health("ds", "all")
        .1
        .is_some_and(|e| e.contains(why)));
    let (status, error) = s.sink_health("ds", "all");
    eprintln!("/health at start-up, nothing sent: {status}: {error:?}");
    assert!(
        error.is_some_and(|e| e.contains(why)),
        "waited 60 s for /health to say {why:?} at start-up"
    );
    let n = 100;
    send_numbered(s.addr("tcp"), 0, n, "held");
    let error = assert_held(
        &s,
        engine,
        ds,
        n as u64,
        "a plain index already holds this name",
    );
    assert!(error.contains(ds), "{error}");
    // The operator removes the index: the next retry sets the sink up,
    // the data stream is created, the held records arrive.
    engine.ok("DELETE", &format!("/{ds}"), "");
    let stored = engine.wait_count(ds, n as u64, 60);
    let drops = counted_drops(&s);
    let v = engine.ok("GET", &format!("/_data_stream/{ds}"), "");
    eprintln!("after the index was removed: sent {n}, stored {stored}, counted drops {drops}");
    assert_eq!(v["data_streams"][0]["name"], ds, "{v}");
    assert_eq!(stored, n as u64, "waited 60 s for the held records");
    assert_eq!(n as u64, stored + drops);
    wait_while!(20, || s.health()["status"] != "ok");
    assert_eq!(s.health()["status"], "ok");
    assert!(s.stop().success());
}

/// An alias that holds the name is refused the same way (OpenSearch).
#[test]
fn a_data_stream_name_held_by_an_alias_is_refused() {
    let Some(engine) = super::shared(Kind::OpenSearch) else {
        return;
    };
    let ds = "logs-sluice-alias";
    fresh(
        engine,
        &[
            "/logs-sluice-alias-real",
            "/_index_template/sluice-guard-logs-sluice-alias",
        ],
    );
    engine.ok(
        "PUT",
        "/logs-sluice-alias-real",
        &format!(r#"{{"aliases":{{"{ds}":{{"is_write_index":true}}}}}}"#),
    );
    let mut s = Sluice::start(&data_stream_config(&engine.urls()[0], ds));
    send_numbered(s.addr("tcp"), 0, 20, "held");
    let error = assert_held(
        &s,
        engine,
        "logs-sluice-alias-real",
        20,
        "an alias (of logs-sluice-alias-real) already holds this name",
    );
    assert!(error.contains(ds), "{error}");
    stop_holding(&mut s, 20);
}

/// The Elasticsearch integ-test zip has no data-streams module: a
/// `data_stream` sink says so and holds its records, rather than retrying
/// writes that answer 500 until it gives up on them.
#[test]
fn an_engine_without_data_streams_is_refused() {
    let Some(engine) = super::shared(Kind::Elasticsearch) else {
        return;
    };
    let ds = "logs-sluice-nods";
    fresh(
        engine,
        &[
            &format!("/{ds}"),
            &format!("/_index_template/sluice-guard-{ds}"),
        ],
    );
    let mut s = Sluice::start(&data_stream_config(&engine.urls()[0], ds));
    send_numbered(s.addr("tcp"), 0, 20, "held");
    let error = assert_held(&s, engine, ds, 20, "has no data streams");
    assert!(error.contains("Elasticsearch 8.19.21"), "{error}");
    stop_holding(&mut s, 20);
}

/// `manage_template = true` and a template of that name without a
/// `version` that sluice did not write (an operator's own): kept, as
/// Logstash (`template_overwrite`) and Beats (`setup.template.overwrite`)
/// keep an existing template by default, with a WARN naming it. Before,
/// it was replaced with an INFO line only.
#[test]
fn an_operators_unversioned_template_is_kept_with_a_warning() {
    let Some(engine) = super::shared(Kind::OpenSearch) else {
        return;
    };
    let index = "tmpl-own";
    fresh(
        engine,
        &[&format!("/{index}"), "/_index_template/sluice-es"],
    );
    let own = r#"{"index_patterns":["tmpl-own*"],"priority":300,"template":{"mappings":{"properties":{"message":{"type":"keyword"}}}}}"#;
    engine.ok("PUT", "/_index_template/sluice-es", own);
    let urls = format!("\"{}\"", engine.urls()[0]);
    let mut s = Sluice::start(&config(
        "",
        &format!(
            r#"
[[sinks]]
name = "es"
type = "elasticsearch"
urls = [{urls}]
index = "{index}"
manage_template = true
linger_ms = 50
[[routes]]
name = "all"
sink = "es"
final = true
document = {{}}
[default_route]
sink = "events"
document = {{}}
"#
        ),
    ));
    send_numbered(s.addr("tcp"), 0, 10, "own template");
    let stored = engine.wait_count(index, 10, 30);
    let drops = counted_drops(&s);
    eprintln!("sent 10, stored {stored}, counted drops {drops}");
    assert_eq!(stored, 10, "waited 30 s for the documents");
    assert_eq!(10, stored + drops);
    let t = engine.ok("GET", "/_index_template/sluice-es", "");
    let kept = &t["index_templates"][0]["index_template"];
    assert!(
        kept.get("version").is_none(),
        "the template was replaced: {t}"
    );
    assert_eq!(kept["priority"], 300, "{t}");
    let m = engine.ok("GET", &format!("/{index}/_mapping"), "");
    assert_eq!(
        m[index]["mappings"]["properties"]["message"]["type"], "keyword",
        "the operator's mapping applies: {m}"
    );
    let stderr = s.stderr();
    let warn = stderr
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains("index template \"sluice-es\""));
    eprintln!("{}", warn.unwrap_or("(no WARN line)"));
    assert!(
        warn.is_some_and(|l| l.contains("without a `version`") && l.contains("kept")),
        "a WARN naming the kept template:\n{stderr}"
    );
    assert!(s.stop().success());
}

/// A current template of the sink's name kept (here a newer version, as
/// another sluice whose sink has the same name leaves it) that does not
/// cover this data stream: the first write would create a plain index, so
/// the records are held, the template named. Found when the engine cases
/// ran in a row and shared the template `sluice-ds`.
#[test]
fn a_kept_template_that_misses_the_data_stream_is_refused() {
    let Some(engine) = super::shared(Kind::OpenSearch) else {
        return;
    };
    let ds = "logs-sluice-kept";
    let template = format!("sluice-guard-{ds}");
    fresh(
        engine,
        &[
            &format!("/_data_stream/{ds}"),
            &format!("/{ds}"),
            &format!("/_index_template/{template}"),
        ],
    );
    engine.ok(
        "PUT",
        &format!("/_index_template/{template}"),
        r#"{"index_patterns":["logs-sluice-elsewhere"],"version":5,"data_stream":{}}"#,
    );
    let mut s = Sluice::start(&data_stream_config(&engine.urls()[0], ds));
    send_numbered(s.addr("tcp"), 0, 20, "held");
    let error = assert_held(&s, engine, ds, 20, "is kept (version 5");
    assert!(error.contains(&template), "{error}");
    let (status, _) = engine.req("GET", &format!("/{ds}"), "");
    assert_eq!(status, 404, "no plain index {ds} was created");
    stop_holding(&mut s, 20);
}
