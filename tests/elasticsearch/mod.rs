//! The Elasticsearch sink against the `_bulk` stand-in (tests/es_server), and sink health.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use crate::es_server::EsServer;

use crate::util::*;

/// Documents arrive in the index of their day (UTC), in the ECS shape by
/// default and in Flume's shape where a route asks for it.
#[test]
fn elasticsearch_documents_arrive_with_index_names_and_shapes() {
    let es = EsServer::start();
    let routes = r#"
[[routes]]
name = "ecs"
sink = "es"
appname = "billing"
document = {}
[[routes]]
name = "legacy"
sink = "es"
appname = "orders"
document = { format = "flume" }
"#;
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    tcp_send(
        s.addr("tcp"),
        b"<134>1 2026-11-23T23:30:00.123+01:00 web01 billing 4711 GC - heap_used=1234\n<166>1 2026-11-24T10:00:00Z web02 orders - - - Order created id=1001\n",
    );
    wait_while!(10, || es.total() < 2);
    // 23:30+01:00 is 22:30 UTC on the 23rd.
    let ecs = es.docs("syslog-2026.11.23");
    assert_eq!(ecs.len(), 1, "{ecs:?}");
    let doc = ecs.values().next().unwrap();
    assert_eq!(doc["@timestamp"], "2026-11-23T22:30:00.123Z");
    assert_eq!(doc["log"]["syslog"]["facility"]["name"], "local0");
    assert_eq!(doc["host"]["hostname"], "web01");
    assert_eq!(doc["process"]["pid"], 4711);
    assert_eq!(doc["message"], "heap_used=1234");
    let flume = es.docs("syslog-2026.11.24");
    let doc = flume.values().next().unwrap();
    // Flume's SyslogUtils keeps everything after the hostname as the body:
    // RFC 5424's app, procid, msgid and SD stay in @message (#26 item 1).
    assert_eq!(doc["@message"], "orders - - - Order created id=1001");
    assert_eq!(doc["@source_host"], "web02");
    assert_eq!(doc["@fields"]["Facility"], "20");
    // Every _bulk request the node answered is one observation of the
    // sink's request latency histogram.
    let requests = es.state.lock().unwrap().requests as u64;
    assert!(requests >= 1);
    assert_eq!(
        s.metric("sluice_sink_request_duration_seconds_count{sink=\"es\"}"),
        requests
    );
    // The answer is asked to keep only what the sink reads.
    assert_eq!(
        es.state.lock().unwrap().filter_path.as_deref(),
        Some("errors,error,status,items.*.status,items.*.error")
    );
    assert!(s.stop().success());
}

/// With 20% of items answered 429, every document is stored exactly once;
/// documents with a mapping error (400) are dead-lettered with the reason.
#[test]
fn elasticsearch_429_items_are_retried_and_400_items_dead_lettered() {
    let es = EsServer::start();
    es.knobs(|k| {
        k.reject_429_percent = 20;
        k.mapping_error_marker = Some("BROKEN".into());
    });
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let mut frames = String::new();
    for i in 0..500 {
        let text = if i % 100 == 7 { "BROKEN" } else { "ok" };
        frames.push_str(&format!(
            "<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i} {text}\n"
        ));
    }
    tcp_send(s.addr("tcp"), frames.as_bytes());
    wait_while!(20, || es.total() < 495);
    let docs = es.docs("syslog-2026.11.24");
    let mut ns: Vec<u64> = docs
        .values()
        .map(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .split(['=', ' '])
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    ns.sort_unstable();
    let want: Vec<u64> = (0..500).filter(|i| i % 100 != 7).collect();
    assert_eq!(ns, want, "every good document exactly once");
    // About a fifth of the items really were answered 429 and sent again.
    let answered_429 = es.state.lock().unwrap().answered_429;
    assert!((50..=150).contains(&answered_429), "{answered_429}");
    let sample = |r: &str| {
        format!("sluice_sink_failed_records_total{{sink=\"es\",route=\"all\",reason=\"{r}\"}}")
    };
    wait_while!(5, || s.metric(&sample("rejected")) < 5);
    assert_eq!(s.metric(&sample("rejected")), 5);
    assert_eq!(s.metric(&sample("gave_up")), 0);
    let dead = read_lines(&s.path("sluice-data/dead-letter/es.ndjson"));
    assert_eq!(dead.len(), 5);
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .contains("mapper_parsing_exception"),
            "{v}"
        );
        assert!(
            v["document"]["message"]
                .as_str()
                .unwrap()
                .contains("BROKEN")
        );
        assert_eq!(v["index"], "syslog-2026.11.24");
    }
    assert!(s.stop().success());
}

/// A dead node is skipped and its traffic goes to the others; a restart of
/// the server mid-stream loses nothing.
#[test]
fn elasticsearch_dead_node_is_skipped_and_a_restart_loses_nothing() {
    let mut es = EsServer::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(
        &[format!("http://{dead}"), es.url()],
        "",
        routes,
    ));
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    let mut send = |range: std::ops::Range<usize>| {
        for i in range {
            conn.write_all(
                format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n").as_bytes(),
            )
            .unwrap();
        }
    };
    send(0..100);
    wait_while!(10, || es.total() < 100);
    assert_eq!(
        es.total(),
        100,
        "the live node took the dead node's traffic"
    );
    es.stop();
    send(100..200);
    std::thread::sleep(Duration::from_secs(2));
    es.launch();
    send(200..300);
    wait_while!(30, || es.total() < 300);
    assert_eq!(
        es.total(),
        300,
        "nothing lost across the restart, nothing twice"
    );
    drop(conn);
    assert!(s.stop().success());
}

/// Whole requests answered 503, and answers slower than the sink's timeout,
/// are retried until the documents are stored, each once.
#[test]
fn elasticsearch_whole_request_failures_and_slow_answers_are_retried() {
    let es = EsServer::start();
    es.knobs(|k| {
        k.fail_requests = 3;
        k.delay = Duration::from_millis(1500);
    });
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    // timeout_secs = 1 < the 1.5 s delay: the first answers time out.
    let config = es_config(&[es.url()], "", routes).replace("timeout_secs = 5", "timeout_secs = 1");
    let mut s = Sluice::start(&config);
    let frames: String = (0..20)
        .map(|i| format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n"))
        .collect();
    tcp_send(s.addr("tcp"), frames.as_bytes());
    std::thread::sleep(Duration::from_secs(3));
    es.knobs(|k| k.delay = Duration::ZERO);
    wait_while!(30, || es.total() < 20);
    assert_eq!(es.total(), 20);
    assert!(
        es.state.lock().unwrap().requests >= 4,
        "3 failures, then success"
    );
    assert_eq!(
        s.metric("sluice_sink_failed_records_total{sink=\"es\",route=\"all\",reason=\"rejected\"}"),
        0
    );
    assert!(s.stop().success());
}

/// The Elasticsearch sink speaks HTTPS to a node whose certificate is
/// signed by a private CA given in `ca_file`; without it, it refuses the
/// node (and holds the documents).
#[test]
fn elasticsearch_over_https_with_a_custom_ca() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A private CA and a certificate for localhost signed by it.
    let ca = crate::util::ca("private CA");
    let (leaf, leaf_key) = crate::util::leaf(&["localhost"], &ca);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.0.pem()).unwrap();

    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let stored = Arc::new(AtomicUsize::new(0));
    let counter = stored.clone();
    // A minimal HTTPS _bulk node: every create is answered 201.
    runtime.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, mut body) = loop {
                    let Ok(n) = tls.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..p]).to_lowercase(), buf[p + 4..].to_vec());
                    }
                };
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                    .unwrap_or(0);
                while body.len() < len {
                    let Ok(n) = tls.read(&mut chunk).await else { return };
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let mut text = String::new();
                if head.contains("content-encoding: gzip") {
                    let _ = flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text);
                } else {
                    text = String::from_utf8_lossy(&body).into_owned();
                }
                let n = text.lines().count() / 2;
                counter.fetch_add(n, Ordering::SeqCst);
                let items: Vec<String> = (0..n).map(|_| r#"{"create":{"status":201}}"#.to_owned()).collect();
                let answer = format!(r#"{{"took":1,"errors":false,"items":[{}]}}"#, items.join(","));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });

    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let url = format!("https://localhost:{port}");
    // Without the CA: the certificate is not trusted, nothing is stored.
    let config_without = es_config(std::slice::from_ref(&url), "", routes)
        .replace("shutdown_timeout_secs = 10", "shutdown_timeout_secs = 1");
    let mut s = Sluice::start(&config_without);
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - untrusted\n",
    );
    wait_while!(10, || s.health()["status"] != "degraded");
    assert_eq!(s.health()["status"], "degraded");
    assert_eq!(stored.load(Ordering::SeqCst), 0);
    // The document the sink still held at the shutdown deadline is
    // reported lost: exit code 1.
    assert_eq!(s.stop().code(), Some(1));
    // With it: stored.
    let extra = format!("ca_file = \"{}\"", ca_file.display());
    let mut s = Sluice::start(&es_config(&[url], &extra, routes));
    tcp_send(s.addr("tcp"), b"<14>1 2026-11-24T10:00:00Z h app - - - trusted\n<14>1 2026-11-24T10:00:01Z h app - - - again\n");
    wait_while!(10, || stored.load(Ordering::SeqCst) < 2);
    assert_eq!(stored.load(Ordering::SeqCst), 2);
    assert!(s.stop().success());
}

/// A node that stores a batch and then drops the connection before
/// answering: the resend finds the documents (409 on create) and counts
/// them as stored, none twice. The API key is sent.
#[test]
fn elasticsearch_dropped_connection_after_processing_is_not_a_duplicate() {
    let es = EsServer::start();
    es.knobs(|k| k.drop_after_processing = 1);
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(
        &[es.url()],
        "api_key = \"a2V5OnNlY3JldA==\"",
        routes,
    ));
    let frames: String = (0..10)
        .map(|i| format!("<14>1 2026-11-24T10:00:00.{i:06}Z h app - - - n={i}\n"))
        .collect();
    tcp_send(s.addr("tcp"), frames.as_bytes());
    let sent = "sluice_sink_records_sent_total{sink=\"es\",route=\"all\"}";
    wait_while!(15, || s.metric(sent) < 10);
    assert_eq!(s.metric(sent), 10);
    assert_eq!(es.total(), 10);
    assert!(
        es.state.lock().unwrap().requests >= 2,
        "the batch was sent again"
    );
    assert_eq!(
        s.metric("sluice_sink_failed_records_total{sink=\"es\",route=\"all\",reason=\"rejected\"}"),
        0,
        "the 409s of the resend are not failures"
    );
    assert_eq!(
        es.state.lock().unwrap().authorization.as_deref(),
        Some("ApiKey a2V5OnNlY3JldA==")
    );
    assert!(s.stop().success());
}

/// A service that logs the same line several times within its timestamp's
/// precision sends byte-identical frames, which one TCP read (and one UDP
/// receive) takes together: each is its own document, none is taken for a
/// resend of another and dropped as "already stored" (409).
#[test]
fn identical_frames_received_together_are_each_stored() {
    let es = EsServer::start();
    let routes = "[[routes]]\nname = \"all\"\nsink = \"es\"\nfinal = true\ndocument = {}\n";
    let mut s = Sluice::start(&es_config(&[es.url()], "", routes));
    let line = "<14>Nov 24 10:00:00 h app: heartbeat ok\n";
    tcp_send(s.addr("tcp"), line.repeat(5).as_bytes());
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        udp.send_to(line.trim_end().as_bytes(), s.addr("udp"))
            .unwrap();
    }
    let sent = "sluice_sink_records_sent_total{sink=\"es\",route=\"all\"}";
    wait_while!(15, || s.metric(sent) < 8);
    assert_eq!(s.metric(sent), 8);
    assert_eq!(es.total(), 8, "identical frames were stored once");
    assert!(s.stop().success());
}

/// The stand-in enforces the `_bulk` rules the sink must follow, so a sink
/// that broke them would fail the tests above.
#[test]
fn es_test_server_enforces_the_bulk_protocol() {
    let es = EsServer::start();
    let post = |content_type: &str, body: &str| -> (u16, serde_json::Value) {
        let mut s = TcpStream::connect(es.addr).unwrap();
        write!(
            s,
            "POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
        let json = raw.split_once("\r\n\r\n").unwrap().1;
        (status, serde_json::from_str(json).unwrap_or_default())
    };
    let good = "{\"create\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":1}\n";
    let (status, v) = post("text/plain", good);
    assert_eq!(status, 406, "{v}");
    let (status, v) = post("application/x-ndjson", good.trim_end());
    assert_eq!(status, 400);
    assert_eq!(
        v["error"]["reason"],
        "The bulk request must be terminated by a newline [\\n]"
    );
    let (status, v) = post("application/x-ndjson", good);
    assert_eq!(status, 200);
    assert_eq!(v["items"][0]["create"]["status"], 201);
    // The same create again: a per-item 409, the request still 200.
    let (status, v) = post("application/x-ndjson", good);
    assert_eq!(status, 200);
    assert_eq!(v["errors"], true);
    assert_eq!(v["items"][0]["create"]["status"], 409);
    assert_eq!(
        v["items"][0]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
}

/// /health: 200 "ok"; 200 "degraded" while a sink fails for less than
/// `unhealthy_after_secs`; 503 "failing" naming the sink after that; back
/// to 200 "ok" when the sink recovers, with nothing lost.
#[test]
fn health_turns_503_when_a_sink_fails_beyond_its_deadline() {
    let es = EsServer::start();
    let text = es_config(&[es.url()], "", EVENTS_TO_ES).replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\nunhealthy_after_secs = 1",
    );
    let mut s = Sluice::start(&text);
    let (code, h) = s.health_status();
    assert_eq!((code, h["status"].as_str()), (200, Some("ok")), "{h}");
    assert!(
        h["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["up"] == true)
    );
    es.knobs(|k| k.fail_requests = 1_000_000);
    tcp_send(s.addr("tcp"), &numbered_frames(10));
    wait_while!(10, || s.health()["status"] != "degraded");
    assert_eq!(s.health()["status"], "degraded");
    wait_while!(10, || s.health_status().0 != 503);
    let (code, h) = s.health_status();
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "failing");
    let reason = h["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("sink es (route to_es) failing for "),
        "{reason}"
    );
    es.knobs(|k| k.fail_requests = 0);
    wait_while!(30, || {
        s.health_status().0 != 200 || s.health()["status"] != "ok"
    });
    assert_eq!(s.health()["status"], "ok");
    wait_while!(10, || es.total() < 10);
    assert_eq!(es.total(), 10);
    assert!(s.stop().success());
}

const EVENTS_TO_ES: &str = r#"
[[routes]]
name = "to_es"
sink = "es"
document = {}
"#;
