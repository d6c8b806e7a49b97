//! Reload (SIGHUP / admin): routes swapped under load, listeners rebound.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn reload_config(routes: &str) -> String {
    config(
        "",
        &format!("{routes}\n[default_route]\nsink = \"metrics\"\ndocument = {{}}\n"),
    )
}

/// While a TCP sender streams, SIGHUP swaps in a config that changes a
/// route's pattern and adds a route: nothing is lost, the connection stays
/// up, and from one message on every message follows the new routes. A
/// broken config on reload is refused (POST /reload names file, line and
/// key) and the running one keeps working.
#[test]
fn reload_swaps_routes_under_a_streaming_sender_and_refuses_a_broken_config() {
    let v1 = reload_config(
        r#"
[[routes]]
name = "old"
sink = "events"
pattern = 'msg \d+'
document = {}
"#,
    );
    let v2 = reload_config(
        r#"
[[routes]]
name = "old"
sink = "events"
pattern = 'msg \d*[02468]$'
document = {}
[[routes]]
name = "added"
sink = "events"
pattern = 'msg'
document = {}
"#,
    );
    let mut s = Sluice::start(&v1);
    let pid = s.child.as_ref().unwrap().id().to_string();
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    // Frames go on arriving while the reload runs; the sender keeps
    // streaming until sluice logs the reload done, then 1,000 more, so
    // the cut falls inside the stream however long the reload takes.
    let mut total = 3000;
    let mut reloaded_at = None;
    let mut applied = false;
    let mut i = 0;
    while i < total || !applied {
        conn.write_all(format!("<14>1 - h app - - - msg {i}\n").as_bytes())
            .unwrap();
        if i == 1000 {
            // Everything before the SIGHUP routed under v1 first: a
            // frame sent before it must not be read after the swap.
            wait_until(20, "msg 1000 routed before the SIGHUP", || {
                read_lines(&s.path("events.ndjson"))
                    .iter()
                    .any(|l| l.contains("\"msg 1000\""))
            });
            std::fs::write(s.path("sluice.toml"), &v2).unwrap();
            assert!(
                Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            reloaded_at = Some(i);
        }
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(20));
            if reloaded_at.is_some() && !applied && s.stderr().contains("reloaded: ") {
                applied = true;
                total = total.max(i + 1000);
            }
        }
        assert!(
            applied || i < 100_000,
            "sent 100,000 frames while waiting for the reload to be logged"
        );
        i += 1;
    }
    conn.flush().unwrap();
    let last = format!("\"msg {}\"", total - 1);
    let lines_wanted = |lines: &[String]| lines.iter().any(|l| l.contains(&last));
    wait_while!(20, || !lines_wanted(&read_lines(&s.path("events.ndjson"))));
    std::thread::sleep(Duration::from_millis(300));
    let mut routes_of: Vec<Vec<String>> = vec![Vec::new(); total];
    for l in read_lines(&s.path("events.ndjson")) {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let i: usize = v["message"].as_str().unwrap()[4..].parse().unwrap();
        routes_of[i].push(v["route"].as_str().unwrap().to_owned());
    }
    // Nothing lost: every message reached a route.
    let missing: Vec<usize> = (0..total).filter(|&i| routes_of[i].is_empty()).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    // One cut: before it only "old"; from it on "added", and "old" for evens.
    let cut = (0..total)
        .find(|&i| routes_of[i].contains(&"added".to_owned()))
        .expect("the new route never matched");
    assert!(cut > 0 && cut < total, "cut at {cut}");
    assert!(
        reloaded_at.is_some_and(|r| cut > r - 1),
        "cut {cut} before the SIGHUP"
    );
    for (i, routes) in routes_of.iter().enumerate() {
        let mut routes = routes.clone();
        routes.sort();
        let want: Vec<&str> = if i < cut {
            vec!["old"]
        } else if i % 2 == 0 {
            vec!["added", "old"]
        } else {
            vec!["added"]
        };
        assert_eq!(routes, want, "message {i} (cut at {cut})");
    }
    assert_eq!(
        s.metric("sluice_listener_connections_accepted_total{listener=\"tcp\"}"),
        1,
        "the sender's connection was kept"
    );

    // A broken config is refused, with file, line and key; v2 keeps running.
    std::fs::write(
        s.path("sluice.toml"),
        v2.replace(
            "sink = \"events\"\npattern = 'msg'",
            "sink = \"nowhere\"\npattern = 'msg'",
        ),
    )
    .unwrap();
    let admin: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    let (status, body) = http(admin, "POST", "/reload", b"");
    assert_eq!(status, 400, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["reloaded"], false);
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("sluice.toml:")
            && error.contains("routes[1].sink")
            && error.contains("nowhere"),
        "{error}"
    );
    conn.write_all(b"<14>1 - h app - - - msg 4\n").unwrap();
    conn.flush().unwrap();
    let msg4 = || {
        read_lines(&s.path("events.ndjson"))
            .into_iter()
            .filter(|l| l.contains("\"msg 4\""))
            .collect::<Vec<String>>()
    };
    wait_while!(10, || msg4().len() < 3);
    std::thread::sleep(Duration::from_millis(200));
    let last = msg4();
    assert_eq!(
        last.len(),
        3,
        "msg 4 once under v1 and twice more under v2: {last:?}"
    );
    // And a valid reload through the admin port answers what changed.
    std::fs::write(s.path("sluice.toml"), &v1).unwrap();
    let (status, body) = http(admin, "POST", "/reload", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("routes: old"), "{body}");
    drop(conn);
    assert!(s.stop().success());
}

/// A reload rebinds only the listener whose address changed: the moved UDP
/// listener answers on its new address, a removed one stops, and the TCP
/// sender's connection on the unchanged listener carries on.
#[test]
fn reload_rebinds_only_listeners_whose_address_changed() {
    let extra = |addr: &str| {
        format!(
            "[[listeners]]\nname = \"moving\"\nprotocol = \"udp\"\nlisten = \"{addr}\"\n[[listeners]]\nname = \"leaving\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n"
        )
    };
    let v1 = config(&extra("127.0.0.1:0"), EVENTS_ROUTE);
    let mut s = Sluice::start(&v1);
    let mut conn = TcpStream::connect(s.addr("tcp")).unwrap();
    conn.write_all(b"<14>1 - h app - - - before\n").unwrap();
    s.wait_lines("events.ndjson", 1);
    let v2 = config(&extra("127.0.0.2:0"), EVENTS_ROUTE).replace(
        "[[listeners]]\nname = \"leaving\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n",
        "",
    );
    std::fs::write(s.path("sluice.toml"), &v2).unwrap();
    let admin: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    let (status, body) = http(admin, "POST", "/reload", b"");
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    let summary = summary["summary"].as_str().unwrap();
    assert!(summary.contains("listener leaving stopped"), "{summary}");
    assert!(!summary.contains("listener tcp"), "{summary}");
    let moved: SocketAddr = summary
        .split("listener moving listening on udp ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap_or_else(|| panic!("{summary}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(moved.ip().to_string(), "127.0.0.2");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<14>1 - h app - - - to the moved listener", moved)
        .unwrap();
    conn.write_all(b"<14>1 - h app - - - after\n").unwrap();
    let lines = s.wait_lines("events.ndjson", 3);
    let mut got = messages(&lines);
    got.sort();
    assert_eq!(got, ["after", "before", "to the moved listener"]);
    assert_eq!(
        s.metric("sluice_listener_connections_accepted_total{listener=\"tcp\"}"),
        1
    );
    let health = s.health();
    let names: Vec<&str> = health["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["listener"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"leaving"), "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    drop(conn);
    assert!(s.stop().success());
}

/// A reload that changes a kafka listener's consumer settings (here its
/// group_id) restarts the consumer at once, and the answer says which
/// topics and group stopped and started (a consumer binds no address);
/// a change of its other settings applies after a restart, as the answer
/// says. No broker is needed: the consumer is made at bind time and only
/// then reaches for the (closed) broker port.
#[test]
fn reload_restarts_a_kafka_listener_whose_consumer_settings_changed() {
    // A port nothing listens on: the consumer never reaches a broker.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kafka = |group: &str, timezone: &str| {
        config(
            &format!(
                "[[listeners]]\nname = \"from_kafka\"\nprotocol = \"kafka\"\nbrokers = [\"{closed}\"]\ntopics = [\"syslog.raw\", \"more\"]\ngroup_id = \"{group}\"\ntimezone = \"{timezone}\"\n"
            ),
            EVENTS_ROUTE,
        )
    };
    let mut s = Sluice::start(&kafka("g1", "UTC"));
    let admin: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    let reload = |text: &str| {
        std::fs::write(s.path("sluice.toml"), text).unwrap();
        let (status, body) = http(admin, "POST", "/reload", b"");
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        answer["summary"].as_str().unwrap().to_owned()
    };
    let summary = reload(&kafka("g2", "UTC"));
    println!("group_id changed: {summary}");
    assert!(
        summary.contains("listener from_kafka stopped (kafka topics syslog.raw,more group g1)"),
        "{summary}"
    );
    assert!(
        summary.contains("listener from_kafka listening on kafka topics syslog.raw,more group g2"),
        "{summary}"
    );
    assert!(!summary.contains("0.0.0.0:0"), "{summary}");
    let summary = reload(&kafka("g2", "Europe/Berlin"));
    println!("timezone changed: {summary}");
    assert!(
        summary.contains(
            "listener from_kafka: settings other than its consumer's (brokers, topics, group_id, …) apply after a restart"
        ),
        "{summary}"
    );
    assert!(
        !summary.contains("listener from_kafka stopped"),
        "{summary}"
    );
    assert!(s.stop().success());
}

/// att10: routes reordered by reloads while more connections stream than
/// read at once (so connections lend their staging slots, indexed by
/// route position, with the `_bulk` action lines cached in them, to the
/// next connection that reads): every document is stored once, in the
/// index of its own route's sink, never in the index the route at its
/// old position wrote to; items answered 429 are sent again and refused
/// ones are dead letters naming their own index (sent = stored + dead).
#[test]
fn reordered_routes_under_many_connections_keep_each_document_in_its_own_index() {
    let es = crate::es_server::EsServer::start();
    // Items answered 429 are sent again, those marked refused (400) go to
    // the dead letters: the kept item lists and answers read by their head.
    es.knobs(|k| {
        k.reject_429_percent = 20;
        k.mapping_error_marker = Some("BROKEN".into());
    });
    let es2 = format!(
        "[[sinks]]\nname = \"es2\"\ntype = \"elasticsearch\"\nurls = [\"{}\"]\nindex = \"other-%Y.%m.%d\"\nlinger_ms = 50\ntimeout_secs = 5\n",
        es.url()
    );
    let route = |name: &str, sink: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nsink = \"{sink}\"\nappname = \"{name}\"\ndocument = {{}}\n"
        )
    };
    let v1 = crate::util::es_config(&[es.url()], &es2, &(route("x", "es") + &route("y", "es2")));
    let v2 = crate::util::es_config(
        &[es.url()],
        &es2,
        &(route("y", "es2") + &route("z", "es2") + &route("x", "es")),
    );
    let mut s = Sluice::start(&v1);
    let addr = s.addr("tcp");
    let admin: SocketAddr = s.ready["admin"].as_str().unwrap().parse().unwrap();
    let connections = 12usize;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..connections)
        .map(|c| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                let mut i = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let app = ["x", "y", "z"][(c + i) % 3];
                    let mark = if i % 97 == 5 { " BROKEN" } else { "" };
                    conn.write_all(format!("<14>1 - h {app} - - - m {c}-{i}{mark}\n").as_bytes())
                        .unwrap();
                    i += 1;
                    if i % 5 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                conn.flush().unwrap();
                i
            })
        })
        .collect();
    // Reloads back and forth while they stream.
    for round in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(
            s.path("sluice.toml"),
            if round % 2 == 0 { &v2 } else { &v1 },
        )
        .unwrap();
        let (status, body) = http(admin, "POST", "/reload", b"");
        assert_eq!(status, 200, "{body}");
    }
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: Vec<usize> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let total: usize = sent.iter().sum();
    // Under v1 (in force at the end) "z" goes to the default route.
    let dead = |sink: &str| read_lines(&s.path(&format!("sluice-data/dead-letter/{sink}.ndjson")));
    let settled = || {
        es.state.lock().unwrap().docs.len()
            + read_lines(&s.path("events.ndjson")).len()
            + dead("es").len()
            + dead("es2").len()
    };
    let waited = std::time::Instant::now();
    while settled() < total && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    for ((index, _), doc) in es.state.lock().unwrap().docs.iter() {
        let msg = doc["message"].as_str().unwrap().to_owned();
        seen.entry(msg).or_default().push(index.clone());
    }
    for l in read_lines(&s.path("events.ndjson")) {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let msg = v["message"].as_str().unwrap().to_owned();
        seen.entry(msg).or_default().push("events".to_owned());
    }
    for l in dead("es").into_iter().chain(dead("es2")) {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let msg = v["document"]["message"].as_str().unwrap().to_owned();
        let index = v["index"].as_str().unwrap();
        seen.entry(msg).or_default().push(format!("dead:{index}"));
    }
    let mut wrong = Vec::new();
    for c in 0..connections {
        for i in 0..sent[c] {
            let app = ["x", "y", "z"][(c + i) % 3];
            let broken = i % 97 == 5;
            let mark = if broken { " BROKEN" } else { "" };
            let msg = format!("m {c}-{i}{mark}");
            let at = seen.get(&msg).cloned().unwrap_or_default();
            // A refused document is a dead letter naming its own index.
            let index = at.first().map_or("", |a| {
                a.strip_prefix("dead:")
                    .filter(|_| broken)
                    .unwrap_or(if broken && a != "events" { "" } else { a })
            });
            let ok = at.len() == 1
                && match app {
                    "x" => index.starts_with("syslog-"),
                    "y" => index.starts_with("other-"),
                    _ => index.starts_with("other-") || index == "events",
                };
            if !ok {
                wrong.push((msg, app, at));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {total} misplaced, lost or duplicated, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert_eq!(seen.values().map(Vec::len).sum::<usize>(), total);
    assert!(es.state.lock().unwrap().answered_429 > 0, "no item retried");
    assert!(!dead("es").is_empty() && !dead("es2").is_empty());
    assert!(s.stop().success());
}
