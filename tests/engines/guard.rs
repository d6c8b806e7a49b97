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
ilm_policy = "sluice-guard-policy"
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
    // Neither engine the tests run has ILM: said once, not per retry.
    let no_ilm = s
        .stderr()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("has no ILM"))
        .count();
    assert_eq!(
        no_ilm,
        1,
        "one no-ILM WARN, not one per setup attempt:\n{}",
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

/// Issue #23 defect 5: sluice's own template of the current version, left
/// from an earlier `index` (patterns `tmpl-before*`), is kept when the
/// sink now writes `tmpl-after`: its mappings no longer apply, so a WARN
/// names the template, its patterns and the index; the INFO line does not
/// call it a data stream.
#[test]
fn a_kept_template_that_misses_a_changed_index_is_warned_about() {
    let Some(engine) = super::shared(Kind::OpenSearch) else {
        return;
    };
    let index = "tmpl-after";
    let template = "sluice-guard-changed";
    fresh(
        engine,
        &[
            &format!("/{index}"),
            &format!("/_index_template/{template}"),
        ],
    );
    engine.ok(
        "PUT",
        &format!("/_index_template/{template}"),
        r#"{"index_patterns":["tmpl-before*"],"version":1,"_meta":{"managed_by":"sluice"}}"#,
    );
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
template_name = "{template}"
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
    send_numbered(s.addr("tcp"), 0, 10, "changed index");
    let stored = engine.wait_count(index, 10, 30);
    let drops = counted_drops(&s);
    eprintln!("sent 10, stored {stored}, counted drops {drops}");
    assert_eq!(stored, 10, "waited 30 s for the documents");
    assert_eq!(10, stored + drops);
    let stderr = s.stderr();
    let warn = stderr
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains(&format!("index template {template:?}")));
    eprintln!("{}", warn.unwrap_or("(no WARN line)"));
    assert!(
        warn.is_some_and(|l| l.contains("tmpl-before*") && l.contains(index)),
        "a WARN naming the kept template, its patterns and the index:\n{stderr}"
    );
    let info = stderr
        .lines()
        .find(|l| l.contains(" INFO ") && l.contains("index template"))
        .unwrap_or("");
    assert!(!info.contains("data_stream"), "{info}");
    assert!(s.stop().success());
}

/// Issue #23 defect 4: a reload while a memory route's records are held.
/// The previous config's worker keeps them (not moved to the new config's
/// route) and shows on /health (degraded, `previous_config`, its
/// `held_records`) and in `sluice_sink_held_records` until they are
/// written; /health said "ok" meanwhile, and the records were lost at the
/// next stop. Once the plain index is removed they arrive: sent = stored
/// + counted drops.
#[test]
fn a_reload_while_records_are_held_shows_them_until_they_are_written() {
    let Some(engine) = super::shared(Kind::OpenSearch) else {
        return;
    };
    let ds = "logs-sluice-reload";
    let after = "reload-after";
    fresh(
        engine,
        &[
            &format!("/_data_stream/{ds}"),
            &format!("/{ds}"),
            &format!("/{after}"),
            &format!("/_index_template/sluice-guard-{ds}"),
            &format!("/_index_template/sluice-guard-{after}"),
        ],
    );
    engine.ok("PUT", &format!("/{ds}"), "{}");
    let v1 = data_stream_config(&engine.urls()[0], ds);
    let mut s = Sluice::start(&v1);
    let n = 30;
    send_numbered(s.addr("tcp"), 0, n, "held");
    assert_held(
        &s,
        engine,
        ds,
        n as u64,
        "a plain index already holds this name",
    );
    let held = || s.metric_sum("sluice_sink_held_records", "route=\"all\"");
    wait_while!(60, || held() != n as u64);
    assert_eq!(held(), n as u64, "waited 60 s for the held batch");
    // The operator points the sink at a plain index and reloads.
    // Its own template: the previous worker's, for the data stream, is
    // still to be installed once the index is removed.
    let v2 = v1
        .replace(
            &format!("data_stream = \"{ds}\""),
            &format!("index = \"{after}\"\nmanage_template = true"),
        )
        .replace(
            &format!("template_name = \"sluice-guard-{ds}\""),
            &format!("template_name = \"sluice-guard-{after}\""),
        );
    std::fs::write(s.path("sluice.toml"), &v2).unwrap();
    let pid = s.child.as_ref().unwrap().id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_while!(60, || !s.stderr().contains("reloaded"));
    let m = 10;
    send_numbered(s.addr("tcp"), n, m, "after reload");
    let stored_after = engine.wait_count(after, m as u64, 60);
    assert_eq!(
        stored_after, m as u64,
        "waited 60 s for the new config's writes"
    );
    let (code, h) = s.health_status();
    let previous: Vec<_> = h["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["previous_config"] == true)
        .cloned()
        .collect();
    eprintln!("/health after the reload: {code} {h}");
    // Degraded, or failing once unhealthy_after_secs (120) passed.
    assert_ne!(h["status"], "ok", "records are held: not ok: {h}");
    assert_eq!(previous.len(), 1, "{h}");
    assert_eq!(previous[0]["route"], "all", "{h}");
    assert_eq!(previous[0]["sink"], "ds", "{h}");
    assert_eq!(previous[0]["held_records"], n, "{h}");
    assert_eq!(held(), n as u64, "still counted in /metrics");
    // The operator removes the plain index: the previous worker writes.
    engine.ok("DELETE", &format!("/{ds}"), "");
    let stored = engine.wait_count(ds, n as u64, 60);
    let drops = counted_drops(&s);
    eprintln!(
        "sent {}, stored {stored} in {ds} + {stored_after} in {after}, counted drops {drops}",
        n + m
    );
    assert_eq!(stored, n as u64, "waited 60 s for the held records");
    assert_eq!((n + m) as u64, stored + stored_after + drops);
    wait_while!(30, || s.health()["status"] != "ok" || held() != 0);
    assert_eq!(s.health()["status"], "ok", "{}", s.health());
    assert_eq!(held(), 0);
    assert!(s.stop().success());
}
