//! Durability defects an outside tester found after issue #20: a reload
//! of a durable route acknowledged a batch the retired generation still
//! held for a failing sink (records lost, uncounted).
//!
//! Every case checks sent = delivered + counted drops, exactly, and prints
//! its figures.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use super::es_server::EsServer;
use super::{Sluice, es_config, http, wait_while};

/// Numbers N of the documents stored ("message N"), sorted, deduplicated
/// (Elasticsearch's ids make a replayed document a no-op).
fn stored_numbers(es: &EsServer) -> Vec<usize> {
    let state = es.state.lock().unwrap();
    let mut n: Vec<usize> = state
        .docs
        .values()
        .filter_map(|d| {
            let m = d["message"].as_str()?.strip_prefix("message ")?;
            m.split(' ').next()?.parse().ok()
        })
        .collect();
    n.sort();
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

fn send(addr: SocketAddr, bytes: &[u8]) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(bytes).unwrap();
}

fn admin(s: &Sluice) -> SocketAddr {
    let mut a: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    if a.ip().is_unspecified() {
        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    a
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
    send(s.addr("tcp"), &frames(0, 100));
    wait_while(30, || a.state.lock().unwrap().requests < 2);
    assert!(
        a.state.lock().unwrap().requests >= 2,
        "waited for the first sink to be tried (and fail) twice"
    );
    std::fs::write(s.path("sluice.toml"), durable_config(&b.url())).unwrap();
    let (status, body) = http(admin(&s), "POST", "/reload", b"");
    assert_eq!(status, 200, "reload: {body}");
    send(s.addr("tcp"), &frames(100, 200));
    wait_while(30, || stored_numbers(&b).len() < 100);
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
    wait_while(60, || delivered().len() < 200);
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
