//! Durability defects an outside tester found after issue #20: a reload
//! of a durable route acknowledged a batch the retired generation still
//! held for a failing sink (records lost, uncounted).
//!
//! Every case checks sent = delivered + counted drops, exactly, and prints
//! its figures.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use crate::es_server::EsServer;
use crate::util::{Sluice, es_config, http, wait_while};

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
    wait_while!(30, || a.state.lock().unwrap().requests < 2);
    assert!(
        a.state.lock().unwrap().requests >= 2,
        "waited for the first sink to be tried (and fail) twice"
    );
    std::fs::write(s.path("sluice.toml"), durable_config(&b.url())).unwrap();
    let (status, body) = http(admin(&s), "POST", "/reload", b"");
    assert_eq!(status, 200, "reload: {body}");
    send(s.addr("tcp"), &frames(100, 200));
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

/// A tmpfs of a given size on a temp dir; unmounted on drop. `None` (after
/// saying why) when mounting is refused outside CI; under `CI=true` a
/// refused mount fails the case.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => e.to_string(),
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and mounting a tmpfs was refused: {why}");
        }
        eprintln!("SKIPPED: cannot mount a tmpfs ({why}); this case needs root");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fill the filesystem of `dir`, leaving about `leave` bytes free; returns
/// the filler, whose removal frees the space.
fn fill(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x55u8; 4096];
    let mut len = 0u64;
    while f.write_all(&chunk).is_ok() {
        len += 4096;
    }
    drop(f);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len.saturating_sub(leave))
        .unwrap();
    path
}

/// Issue #20 follow-up, item 4: the file sink's disk fills in the middle
/// of a batch. The failed write leaves nothing behind (no torn line), and
/// the retry once space is back writes each record exactly once.
#[test]
fn fix_spill_file_sink_on_a_full_disk_writes_no_torn_line_and_no_duplicate() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let out = tmpfs.dir.path().join("out.ndjson");
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
    let filler = fill(tmpfs.dir.path(), 8192);
    let n = 300usize;
    let padding = "p".repeat(200);
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| format!("<14>1 - h app - - - message {i} {padding}\n").into_bytes())
        .collect();
    send(s.addr("tcp"), &bytes);
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
