//! Issue #26, "a Flume migrator's first day": the InfluxDB database made at
//! start-up (and a non-admin user that recovers), the example log4j files
//! against the shipped configs, `sluice health`, and what `check` and
//! `--help` print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{BIN, Influxd, STATUS_ROUTE, Sluice, config, http, tcp_send, url_encode};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Poll `f` every 50 ms until it returns `Some`, for at most `secs`;
/// panics naming `what` was awaited.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "waited {secs} s for {what}, in vain"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An influxd with auth on and an admin `admin`/`adm1n`; returns it and a
/// function running a statement as that admin.
fn influxd_with_auth() -> Influxd {
    let influx = Influxd::start_with("  auth-enabled = true");
    let (status, body) = http(
        influx.addr,
        "POST",
        &format!(
            "/query?q={}",
            url_encode("CREATE USER admin WITH PASSWORD 'adm1n' WITH ALL PRIVILEGES")
        ),
        b"",
    );
    assert_eq!(status, 200, "{body}");
    influx
}

fn as_admin(addr: SocketAddr, q: &str) -> String {
    let (status, body) = http(
        addr,
        "POST",
        &format!("/query?u=admin&p=adm1n&q={}", url_encode(q)),
        b"",
    );
    assert_eq!(status, 200, "{q}: {body}");
    body
}

fn influx_sink(influx: &Influxd, extra: &str) -> String {
    config(
        "",
        &format!(
            r#"
[[sinks]]
name = "influx"
type = "influxdb"
urls = ["{}"]
database = "metrics"
create_database = true
linger_ms = 50
{extra}
{STATUS_ROUTE}
[default_route]
sink = "events"
document = {{}}
"#,
            influx.url()
        ),
    )
}

/// Issue #26 item 2: a non-admin user may not create the database. Sluice
/// tries at start-up (not at the first write), shows why on /health, and
/// once an admin created the database and granted access it writes —
/// instead of a 403 every 10 s forever.
#[test]
fn influxdb_non_admin_user_proceeds_once_an_admin_made_the_database() {
    let influx = influxd_with_auth();
    as_admin(influx.addr, "CREATE USER sluice WITH PASSWORD 'pw'");
    let mut s = Sluice::start(&influx_sink(
        &influx,
        "username = \"sluice\"\npassword = \"pw\"",
    ));
    // Nothing sent yet: the start-up attempt alone makes /health degraded.
    let health = wait_for(10, "/health to say degraded at start-up", || {
        let h = s.health();
        (h["status"] == "degraded").then_some(h)
    });
    eprintln!("health before the admin acted: {health}");
    let error = health["sinks"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("metrics") && error.contains("403"),
        "the reason names the database and the refusal: {health}"
    );
    as_admin(influx.addr, "CREATE DATABASE metrics");
    as_admin(influx.addr, "GRANT WRITE ON metrics TO sluice");
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - status seq=1\n",
    );
    let rows = wait_for(30, "the point in metrics.autogen.status", || {
        let body = as_admin(influx.addr, "SELECT * FROM metrics.autogen.status");
        body.contains("\"values\"").then_some(body)
    });
    assert!(
        rows.contains("[\"2026-11-24T10:00:00Z\",\"app\",\"h\",1]"),
        "{rows}"
    );
    wait_for(10, "/health ok after the write", || {
        (s.health()["status"] == "ok").then_some(())
    });
    let lost = s.metric(
        "sluice_sink_failed_records_total{sink=\"influx\",route=\"status\",reason=\"gave_up\"}",
    );
    eprintln!("sent 1, stored 1, gave up {lost}");
    assert_eq!(lost, 0);
    assert!(s.stop().success());
}

/// Issue #26 item 2: the database is created at start-up, and a retention
/// policy Sluice creates with it is the database's default, so a plain
/// `SELECT * FROM status` finds the points.
#[test]
fn influxdb_database_is_created_at_start_up_with_its_policy_as_default() {
    let influx = Influxd::start();
    let mut s = Sluice::start(&influx_sink(
        &influx,
        "retention_policy = \"one_year\"\nretention_duration = \"52w\"",
    ));
    // Nothing sent: the database is there all the same.
    wait_for(10, "database metrics created at start-up", || {
        let dbs = influx.query("", "SHOW DATABASES");
        dbs["results"][0]["series"][0]["values"]
            .as_array()
            .is_some_and(|v| v.contains(&serde_json::json!(["metrics"])))
            .then_some(())
    });
    let rps = influx.query("metrics", "SHOW RETENTION POLICIES ON metrics");
    let one_year = rps["results"][0]["series"][0]["values"]
        .as_array()
        .and_then(|v| v.iter().find(|r| r[0] == "one_year").cloned())
        .unwrap_or_else(|| panic!("no one_year policy: {rps}"));
    eprintln!("one_year: {one_year}");
    assert_eq!(one_year[1], "8736h0m0s");
    assert_eq!(one_year[4], true, "the default policy: {rps}");
    tcp_send(
        s.addr("tcp"),
        b"<14>1 2026-11-24T10:00:00Z h app - - - status seq=7\n",
    );
    let rows = influx.rows("metrics", "status", 1);
    assert_eq!(rows.len(), 1, "SELECT * FROM status (default policy)");
    assert_eq!(rows[0]["seq"], 7.0);
    assert_eq!(s.health()["status"], "ok");
    assert!(s.stop().success());
}
