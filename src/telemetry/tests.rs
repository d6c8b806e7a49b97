use super::*;

/// Issue #23 defect 4: a reload replaced the worker of (es, r) while it
/// held 300 records; /health said ok. Until that worker is done, /health
/// is degraded and lists it (route, sink, why, how many it holds), and
/// `sluice_sink_held_records` counts them.
#[test]
fn a_replaced_worker_that_holds_records_shows_until_it_is_done() {
    let t = Telemetry::new();
    let old = t.sink("es", "r");
    old.health
        .failing("data_stream \"logs-x\": a plain index already holds this name");
    old.health.set_held(300);
    old.held_records.inc_by(300);
    // The reload: the new config's worker for (es, r), writing fine.
    let new = t.sink("es", "r");
    t.keep_sinks(&[("es".into(), "r".into())]);
    let (code, body) = t.health();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, v["status"].as_str()),
        (200, Some("degraded")),
        "{body}"
    );
    let sinks = v["sinks"].as_array().unwrap();
    let previous: Vec<_> = sinks
        .iter()
        .filter(|s| s["previous_config"] == true)
        .collect();
    assert_eq!(previous.len(), 1, "{body}");
    assert_eq!(previous[0]["sink"], "es", "{body}");
    assert_eq!(previous[0]["route"], "r", "{body}");
    assert_eq!(previous[0]["held_records"], 300, "{body}");
    assert!(
        previous[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("a plain index already holds")),
        "{body}"
    );
    let metrics = t.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_sink_held_records{") && l.ends_with(" 300")),
        "{metrics}"
    );
    // The old worker wrote them and ended: only the new one is listed.
    old.health.ok();
    old.health.set_held(0);
    old.held_records.dec_by(300);
    drop(old);
    let (code, body) = t.health();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")), "{body}");
    assert_eq!(v["sinks"].as_array().map(Vec::len), Some(1), "{body}");
    drop(new);
}

/// A replaced worker that ended (its queue closed and empty) is not
/// listed, failing or not.
#[test]
fn a_replaced_worker_that_ended_is_not_listed() {
    let t = Telemetry::new();
    let old = t.sink("es", "r");
    old.health.failing("unreachable");
    drop(old);
    let _new = t.sink("es", "r");
    let (_, body) = t.health();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok", "{body}");
    assert_eq!(v["sinks"].as_array().map(Vec::len), Some(1), "{body}");
}
