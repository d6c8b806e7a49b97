//! Durability defects an outside tester found after issue #20: a reload
//! of a durable route acknowledged a batch the retired generation still
//! held for a failing sink (records lost, uncounted).
//!
//! Every case checks sent = delivered + counted drops, exactly, and prints
//! its figures.

use crate::es_server::EsServer;
use crate::util::{Sluice, Tmpfs, es_config, fill, http, tcp_send, wait_while};

/// Numbers N of the documents stored ("message N"), sorted, deduplicated
/// (Elasticsearch's ids make a replayed document a no-op).
fn stored_numbers(es: &EsServer) -> Vec<usize> {
    let mut n = crate::util::stored_numbers(es);
    n.dedup();
    n
}

/// Records of route `durable` its queue dropped or lost, every reason.
fn counted(s: &Sluice) -> u64 {
    s.scrape()
        .lines()
        .filter(|l| {
            (l.starts_with("sluice_queue_dropped_records_total{")
                || l.starts_with("sluice_queue_spill_corrupt_records_total{")
                || l.starts_with("sluice_sink_failed_records_total{"))
                && l.contains("route=\"durable\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn frames(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| format!("<14>1 - h app - - - message {i}\n").into_bytes())
        .collect()
}

fn durable_config(url: &str) -> String {
    es_config(
        &[url.to_owned()],
        "",
        r#"
[[routes]]
name = "durable"
sink = "es"
document = {}
[routes.queue]
durable = true
fsync = "batch"
"#,
    )
}

/// Reload while the retired generation's worker holds a batch (read from
/// the shared spill log) for a sink answering 503: the new generation's
/// acknowledgement must not cover it. After `kill -9` and a restart every
/// record is delivered.
#[test]
fn fix_spill_reload_does_not_ack_a_batch_the_old_worker_holds() {
    let a = EsServer::start();
    a.knobs(|k| k.fail_requests = usize::MAX);
    let b = EsServer::start();
    let mut s = Sluice::start(&durable_config(&a.url()));
    tcp_send(s.addr("tcp"), &frames(0, 100));
    wait_while!(30, || a.state.lock().unwrap().requests < 2);
    assert!(
        a.state.lock().unwrap().requests >= 2,
        "waited for the first sink to be tried (and fail) twice"
    );
    std::fs::write(s.path("sluice.toml"), durable_config(&b.url())).unwrap();
    let (status, body) = http(s.admin_addr(), "POST", "/reload", b"");
    assert_eq!(status, 200, "reload: {body}");
    tcp_send(s.addr("tcp"), &frames(100, 200));
    wait_while!(30, || stored_numbers(&b).len() < 100);
    assert_eq!(
        stored_numbers(&b),
        (100..200).collect::<Vec<_>>(),
        "waited for the records sent after the reload to reach the new sink"
    );
    s.kill9();
    a.knobs(|k| k.fail_requests = 0);
    s.relaunch();
    let delivered = || {
        let mut all = stored_numbers(&a);
        all.extend(stored_numbers(&b));
        all.sort();
        all.dedup();
        all
    };
    wait_while!(60, || delivered().len() < 200);
    let got = delivered();
    let drops = counted(&s);
    eprintln!(
        "reload + kill -9: sent 200, delivered {} (first sink {}, second {}), counted drops {drops}",
        got.len(),
        stored_numbers(&a).len(),
        stored_numbers(&b).len()
    );
    assert_eq!(got.len() as u64 + drops, 200, "sent = delivered + counted");
    assert_eq!(got, (0..200).collect::<Vec<_>>(), "every record delivered");
    assert!(s.stop().success());
}

/// Issue #20 follow-up, item 4: the file sink's disk fills in the middle
/// of a batch. The failed write leaves nothing behind (no torn line), and
/// the retry once space is back writes each record exactly once.
#[test]
fn fix_spill_file_sink_on_a_full_disk_writes_no_torn_line_and_no_duplicate() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let out = tmpfs.path().join("out.ndjson");
    let routes = format!(
        r#"
[[sinks]]
name = "full"
type = "file"
path = "{}"
batch_max_events = 1000
linger_ms = 200
[[routes]]
name = "durable"
sink = "full"
document = {{}}
"#,
        out.display()
    );
    let mut s = Sluice::start(&crate::util::config("", &routes));
    // The sink opened (created) its file: now leave 8 KiB, less than a batch.
    let filler = fill(tmpfs.path(), 8192);
    let n = 300usize;
    let padding = "p".repeat(200);
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| format!("<14>1 - h app - - - message {i} {padding}\n").into_bytes())
        .collect();
    tcp_send(s.addr("tcp"), &bytes);
    let retries = |s: &Sluice| {
        s.scrape()
            .lines()
            .filter(|l| l.starts_with("sluice_sink_retries_total{") && l.contains("\"full\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    wait_while!(30, || retries(&s) == 0);
    assert!(
        retries(&s) > 0,
        "waited for a write to fail on the full disk"
    );
    std::fs::remove_file(filler).unwrap();
    let lines = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    wait_while!(60, || lines().len() < n);
    let retried = retries(&s);
    let drops = counted(&s);
    assert!(s.stop().success());
    let lines = lines();
    let mut numbers = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("line {} is torn ({e}): {:.80}", i + 1, l));
        let m = v["message"].as_str().unwrap_or_default();
        numbers.push(m.split(' ').nth(1).unwrap().parse::<usize>().unwrap());
    }
    eprintln!(
        "file sink on a full disk: sent {n}, lines {}, failed writes retried {retried}, counted drops {drops}",
        lines.len()
    );
    assert_eq!(lines.len(), n, "every record written exactly once");
    numbers.sort();
    assert_eq!(numbers, (0..n).collect::<Vec<_>>(), "each record once");
    assert_eq!(drops, 0);
}
