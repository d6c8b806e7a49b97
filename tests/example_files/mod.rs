//! The files people copy: `examples/compose/` (the docker-compose pipeline's
//! sluice config, Grafana provisioning and dashboards) and the Dockerfile.
//! The dashboards are checked against what the example config really
//! produces: the config runs (listen addresses and sink URLs pointed at a
//! real influxd and the `_bulk` stand-in), status lines go in, and every
//! dashboard query must find data.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpStream, UdpSocket};

use crate::util::repo;
use crate::util::{EsServer, Influxd, Sluice, wait_while};

mod compose;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dashboard(path: &str) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The data source uids provisioned in examples/compose/grafana, by uid → type.
fn provisioned_datasources() -> BTreeMap<String, String> {
    let text = read("examples/compose/grafana/provisioning/datasources/sluice.yml");
    let mut out = BTreeMap::new();
    let mut uid = None;
    for line in text.lines().map(str::trim) {
        if let Some(u) = line.strip_prefix("uid: ") {
            uid = Some(u.to_owned());
        } else if let Some(t) = line.strip_prefix("type: ") {
            out.insert(uid.take().expect("uid before type"), t.to_owned());
        }
    }
    out
}

/// Every (data source uid, query text) in a dashboard, after checking the
/// structure Grafana needs to import it: uid, title, schemaVersion, panels
/// with unique ids, a grid position and targets with unique refIds, each
/// naming a provisioned data source of the right type.
fn dashboard_queries(path: &str) -> Vec<(String, String)> {
    let d = dashboard(path);
    let sources = provisioned_datasources();
    assert!(
        d["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "{path}: uid"
    );
    assert!(
        d["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{path}: title"
    );
    assert!(
        d["schemaVersion"].as_u64().is_some(),
        "{path}: schemaVersion"
    );
    let panels = d["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "{path}: no panels");
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    let check_source = |what: &str, ds: &serde_json::Value| -> String {
        let uid = ds["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: datasource uid"));
        let kind = sources
            .get(uid)
            .unwrap_or_else(|| panic!("{what}: data source {uid} is not provisioned"));
        assert_eq!(ds["type"].as_str(), Some(kind.as_str()), "{what}");
        uid.to_owned()
    };
    for p in panels {
        let title = p["title"].as_str().expect("panel title");
        let what = format!("{path}: panel {title:?}");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "{what}: id"
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].as_u64().is_some(), "{what}: gridPos.{k}");
        }
        assert!(p["type"].as_str().is_some(), "{what}: type");
        check_source(&what, &p["datasource"]);
        let mut refs = BTreeSet::new();
        for t in p["targets"].as_array().expect("targets") {
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{what}: refId"
            );
            let uid = check_source(&what, &t["datasource"]);
            let q = t["query"].as_str().or(t["expr"].as_str()).expect("query");
            out.push((uid, q.to_owned()));
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating.list") {
        let uid = check_source(&format!("{path}: variable"), &v["datasource"]);
        out.push((uid, v["query"].as_str().expect("variable query").to_owned()));
    }
    out
}

/// The compose example's sluice config, runnable here: listeners on
/// loopback port 0, the sinks at the given URLs, its data beside it.
fn compose_config(influx: &str, es: &str) -> String {
    let text = read("examples/compose/sluice.toml");
    assert!(text.contains("http://influxdb:8086") && text.contains("http://elasticsearch:9200"));
    text.lines()
        .map(|l| {
            if l.starts_with("listen = \"0.0.0.0:") {
                "listen = \"127.0.0.1:0\"".to_owned()
            } else if l.starts_with("data_dir = ") {
                // The container's volume: here, beside the config.
                String::new()
            } else {
                l.replace("http://influxdb:8086", influx)
                    .replace("http://elasticsearch:9200", es)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Grafana's macros as Grafana expands them for "last hour, all apps".
fn expand_influxql(q: &str) -> String {
    q.replace("$timeFilter", "time > now() - 1h")
        .replace("$__interval", "10s")
        .replace("/^$app$/", "/^.*$/")
}

/// Does an InfluxQL answer hold at least one series with a non-null,
/// non-zero value (for SHOW TAG VALUES: any value)?
fn has_data(answer: &serde_json::Value) -> bool {
    answer["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().into_iter().flatten())
        .any(|row| {
            row.as_array().unwrap().iter().skip(1).any(|v| match v {
                serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
                serde_json::Value::String(_) => true,
                _ => false,
            })
        })
}

/// Metric names (`sluice_…`) and the labels each query groups by.
fn promql_names_and_labels(expr: &str) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("sluice_") {
        let end = rest[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(rest.len(), |e| at + e);
        names.push(rest[at..end].to_owned());
        rest = &rest[end..];
    }
    let mut labels = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find(" by (") {
        let end = at + rest[at..].find(')').expect("by (...)");
        labels.extend(rest[at + 5..end].split(',').map(|l| l.trim().to_owned()));
        rest = &rest[end..];
    }
    (names, labels)
}

/// The compose example end to end against a real influxd: its status lines
/// become points, and every InfluxQL query of the service-status dashboard
/// (panels and the `app` variable) returns data from them; every metric and
/// label the telemetry dashboard queries is in sluice's own `/metrics`.
#[test]
fn compose_example_feeds_every_dashboard_query() {
    if !crate::util::influxd_available() {
        return;
    }
    let influx = Influxd::start();
    let es = EsServer::start();
    let mut s = Sluice::start(&compose_config(&influx.url(), &es.url()));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut frames = Vec::new();
    for (i, (route, code)) in [
        ("/api/v1/orders", 200),
        ("/api/v1/orders", 503),
        ("/login", 302),
    ]
    .iter()
    .enumerate()
    {
        frames.push(format!(
            "<134>1 - web0{i} orders 17 - - status route={route} code={code} latency_ms=1.{i} bytes=2{i}0"
        ));
    }
    frames
        .push("<132>1 - web01 orders 17 - - status heap_used=1234 heap_max=4096 threads=17".into());
    for f in &frames {
        udp.send_to(f.as_bytes(), s.addr("syslog_udp")).unwrap();
    }
    // log4j 1.2 without header over its own listener, and a TCP sender.
    udp.send_to(
        b"<132>local0:WARN  [main] com.example.Svc - status heap_used=2000 heap_max=4096 threads=20",
        s.addr("log4j_udp"),
    )
    .unwrap();
    std::io::Write::write_all(
        &mut TcpStream::connect(s.addr("syslog_tcp")).unwrap(),
        b"<134>1 - web02 billing 9 - - status route=/pay code=200 latency_ms=3.5 bytes=99\n",
    )
    .unwrap();

    let count = |m: &str| {
        influx.query("syslog", &format!("SELECT count(*) FROM \"{m}\""))["results"][0]["series"][0]
            ["values"][0][1]
            .as_u64()
            .unwrap_or(0)
    };
    wait_while!(20, || count("http_requests") < 4 || count("jvm_status") < 2);
    assert_eq!(count("http_requests"), 4);
    assert_eq!(count("jvm_status"), 2);

    let queries = dashboard_queries("examples/compose/grafana/dashboards/service-status.json");
    assert!(queries.len() >= 7, "{queries:?}");
    for (uid, q) in &queries {
        assert_eq!(uid, "sluice-influxdb", "{q}");
        let answer = influx.query("syslog", &expand_influxql(q));
        assert!(answer["results"][0]["error"].is_null(), "{q}: {answer}");
        assert!(has_data(&answer), "no data for {q}: {answer}");
    }

    let scrape = s.scrape();
    let queries = dashboard_queries("examples/compose/grafana/dashboards/sluice-telemetry.json");
    assert!(queries.len() >= 10, "{queries:?}");
    for (uid, q) in &queries {
        assert_eq!(uid, "sluice-prometheus", "{q}");
        let (names, labels) = promql_names_and_labels(q);
        assert!(!names.is_empty(), "{q}");
        for name in &names {
            let samples: Vec<&str> = scrape
                .lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .collect();
            assert!(!samples.is_empty(), "{q}: no {name} in /metrics");
            for label in &labels {
                assert!(
                    samples.iter().all(|l| l.contains(&format!("{label}=\""))),
                    "{q}: {name} has no label {label}"
                );
            }
        }
    }
    // The events went to Elasticsearch (Kibana's side of the example).
    wait_while!(10, || es.total() < 6);
    assert_eq!(es.total(), 6);
    assert!(s.stop().success());
}

/// Dockerfile instructions as (INSTRUCTION, arguments), continuation lines
/// joined and comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let joined = std::mem::take(&mut current);
                let (i, args) = joined.trim().split_once(' ').expect("instruction");
                out.push((i.to_ascii_uppercase(), args.trim().to_owned()));
            }
        }
    }
    out
}

fn instruction<'a>(d: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    d.iter()
        .filter(|(i, _)| i == name)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// The Dockerfile checked against the code and the config it ships, since
/// no Docker engine runs here: every path it copies exists; the config it
/// installs is the one CMD runs; EXPOSE lists exactly the container
/// config's listener and admin ports (plus 6514, the TLS port of the
/// commented TLS listener); the file sinks write under the VOLUME; it builds
/// with --locked, smoke-tests --version and runs as a non-root user; and its
/// HEALTHCHECK command, run here against the container config, succeeds.
#[test]
fn dockerfile_matches_the_code_and_the_container_config() {
    let d = dockerfile();
    let run = instruction(&d, "RUN").join("\n");
    assert!(run.contains("cargo build --release --locked"), "{run}");
    assert!(run.contains("sluice --version"), "{run}");
    let user = instruction(&d, "USER");
    assert!(
        user.len() == 1 && user[0] != "root" && user[0] != "0",
        "{user:?}"
    );

    let mut installed = BTreeMap::new();
    for args in instruction(&d, "COPY") {
        let parts: Vec<&str> = args.split_whitespace().collect();
        if parts[0].starts_with("--from=") {
            continue;
        }
        let (dest, sources) = parts.split_last().unwrap();
        for src in sources {
            assert!(repo(src).exists(), "COPY {src}: not in the repository");
            installed.insert(dest.to_string(), src.to_string());
        }
    }
    let cmd: Vec<String> = serde_json::from_str(instruction(&d, "CMD")[0]).expect("CMD as JSON");
    let config_path = &cmd[cmd.iter().position(|a| a == "-c").expect("CMD -c") + 1];
    let source = installed
        .get(config_path.as_str())
        .unwrap_or_else(|| panic!("CMD runs {config_path}, which no COPY installs"));
    assert_eq!(source, "config/container.toml");
    let entry: Vec<String> = serde_json::from_str(instruction(&d, "ENTRYPOINT")[0]).unwrap();
    assert_eq!(entry, ["sluice"]);

    let config: toml::Table = read(source).parse().unwrap();
    let mut ports = BTreeSet::new();
    for l in config["listeners"].as_array().unwrap() {
        let port = l["listen"].as_str().unwrap().rsplit(':').next().unwrap();
        let proto = match l["protocol"].as_str().unwrap() {
            "udp" => "udp",
            _ => "tcp",
        };
        ports.insert(format!("{port}/{proto}"));
    }
    let admin = config["admin"]["listen"].as_str().unwrap();
    let admin_port = admin.rsplit(':').next().unwrap();
    ports.insert(format!("{admin_port}/tcp"));
    ports.insert("6514/tcp".to_owned());
    let exposed: BTreeSet<String> = instruction(&d, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| {
            if p.contains('/') {
                p.to_owned()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    assert_eq!(exposed, ports);
    assert!(
        read(source).contains("# [[listeners]]\n# name = \"tls\"")
            && read(source).contains("# listen = \"0.0.0.0:6514\""),
        "6514 is exposed for the TLS listener the container config shows"
    );

    let volume: Vec<String> = serde_json::from_str(instruction(&d, "VOLUME")[0]).unwrap();
    let data_dir = config["data_dir"].as_str().unwrap();
    assert!(
        volume
            .iter()
            .any(|v| data_dir == v || data_dir.starts_with(&format!("{v}/"))),
        "data_dir {data_dir} is outside the volume {volume:?}"
    );
    for s in config["sinks"].as_array().unwrap() {
        if let Some(path) = s.get("path").and_then(|p| p.as_str()) {
            assert!(
                volume.iter().any(|v| path.starts_with(&format!("{v}/"))),
                "sink path {path} is outside the volume {volume:?}"
            );
        }
    }

    // The HEALTHCHECK is `sluice health -c <the config CMD runs>`, run here
    // against sluice on the container config (loopback, port 0, files in a
    // temp dir), with the admin address it got.
    let health = instruction(&d, "HEALTHCHECK")[0];
    let command: Vec<String> =
        serde_json::from_str(health.split_once("CMD ").expect("HEALTHCHECK CMD").1)
            .expect("HEALTHCHECK CMD as JSON");
    assert_eq!(command, ["sluice", "health", "-c", config_path.as_str()]);
    let text = read(source)
        .replace("0.0.0.0:5514", "127.0.0.1:0")
        .replace("0.0.0.0:5515", "127.0.0.1:0")
        .replace("0.0.0.0:5516", "127.0.0.1:0")
        .replace(admin, "127.0.0.1:0")
        .replace("/var/lib/sluice/", "")
        .replace("data_dir = \"/var/lib/sluice\"", "data_dir = \"data\"");
    let mut s = Sluice::start(&text);
    let admin_now = s.ready["admin"].as_str().unwrap().to_owned();
    // [admin] comes first in the container config.
    let as_run = s.path("as-run.toml");
    std::fs::write(
        &as_run,
        text.replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{admin_now}\""),
            1,
        ),
    )
    .unwrap();
    let status = std::process::Command::new(crate::util::BIN)
        .args(&command[1..command.len() - 1])
        .arg(&as_run)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "HEALTHCHECK {command:?} against {admin_now}"
    );
    assert!(s.stop().success());
}

/// The container config's commented TLS listener, uncommented and given
/// generated certificate files, is a valid listener on 6514.
#[test]
fn container_config_tls_listener_works_when_uncommented() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::util::ca("clients CA");
    let (cert, key) = crate::util::leaf(&["sluice"], &ca);
    std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), ca.0.pem()).unwrap();

    let mut text = String::new();
    let mut in_block = false;
    let mut uncommented = 0;
    for line in read("config/container.toml").lines() {
        if line == "# [[listeners]]" {
            in_block = true;
        }
        if in_block && line.starts_with("# ") {
            let l = line[2..].split("   #").next().unwrap();
            text.push_str(&l.replace("/etc/sluice/tls", dir.path().to_str().unwrap()));
            uncommented += 1;
        } else {
            in_block = false;
            text.push_str(line);
        }
        text.push('\n');
    }
    assert!(uncommented >= 8, "the TLS block: {uncommented} lines");
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(crate::util::BIN)
        .args(["check", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("listener tls: tls 0.0.0.0:6514"),
        "{stdout}"
    );
    assert!(stdout.contains("client certificates required"), "{stdout}");
}

/// Keys of a TOML value, recursively; the keys under `fields` and
/// `patterns` are the user's names, not config keys.
fn config_keys(value: &toml::Value, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                out.insert(k.clone());
                if k != "fields" && k != "patterns" {
                    config_keys(v, out);
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| config_keys(v, out)),
        _ => {}
    }
}

/// Every key any shipped config uses is documented in the README (as a
/// word inside a `code` span), so the reference cannot fall behind the
/// examples.
#[test]
fn readme_documents_every_key_the_shipped_configs_use() {
    let readme = read("README.md");
    let documented: BTreeSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    let mut files = Vec::new();
    crate::util::toml_files(&repo("config"), &mut files);
    crate::util::toml_files(&repo("examples"), &mut files);
    let mut missing = BTreeMap::new();
    for f in &files {
        let value: toml::Value = std::fs::read_to_string(f).unwrap().parse().unwrap();
        let mut keys = BTreeSet::new();
        config_keys(&value, &mut keys);
        for k in keys {
            if !documented.contains(k.as_str()) {
                missing.insert(k, f.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
}

/// The sluice config in the Flume migration note (its TOML blocks
/// together) passes `sluice check`, and its documents have Flume's shape.
#[test]
fn flume_migration_note_config_is_valid() {
    let note = read("examples/flume-migration.md");
    let blocks: Vec<&str> = note
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "the note's two TOML blocks");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from-flume.toml");
    std::fs::write(&path, blocks.concat()).unwrap();
    let out = std::process::Command::new(crate::util::BIN)
        .args(["check", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports = crate::util::sluice_parse(
        &["-c", path.to_str().unwrap()],
        b"<134>1 2026-11-28T10:00:00Z web01 orders 17 - - GET /x code=200 latency_ms=1.5\n",
    );
    let routes = reports[0]["routes"].as_array().unwrap();
    let events = routes.iter().find(|r| r["route"] == "events").unwrap();
    // Flume's body: everything after the hostname (issue #26).
    assert_eq!(
        events["document"]["@message"],
        "orders 17 - - GET /x code=200 latency_ms=1.5"
    );
    assert_eq!(events["document"]["@fields"]["Severity"], "6");
    assert_eq!(events["document"]["@fields"]["code"], "200");
    let status = routes.iter().find(|r| r["route"] == "status").unwrap();
    assert!(
        status["line"]
            .as_str()
            .unwrap()
            .starts_with("http_requests,app=orders,code=200,host=web01 latency_ms=1.5 "),
        "{status}"
    );
}
