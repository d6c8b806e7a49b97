//! A real `influxd` for the InfluxDB tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A real `influxd` (Debian package `influxdb`) with its own temp dirs,
/// listening on a free port on loopback.
pub(crate) struct Influxd {
    pub(crate) child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) addr: SocketAddr,
    /// Extra lines for the [http] section.
    pub(crate) http_extra: String,
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Influxd {
    pub(crate) fn start() -> Influxd {
        Influxd::start_with("")
    }

    /// An influxd with auth on and an admin `admin`/`adm1n` (the first user
    /// may be created without credentials).
    pub(crate) fn start_with_admin() -> Influxd {
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

    /// Run statement `q` as the admin of `start_with_admin`; its body.
    pub(crate) fn as_admin(&self, q: &str) -> String {
        let (status, body) = http(
            self.addr,
            "POST",
            &format!("/query?u=admin&p=adm1n&q={}", url_encode(q)),
            b"",
        );
        assert_eq!(status, 200, "{q}: {body}");
        body
    }

    pub(crate) fn start_with(http_extra: &str) -> Influxd {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Influxd {
            child: None,
            dir,
            addr: "127.0.0.1:0".parse().unwrap(),
            http_extra: http_extra.to_owned(),
        };
        d.launch();
        d
    }

    /// Start influxd on `self.addr` (port 0 the first time) and wait until
    /// it answers /ping.
    pub(crate) fn launch(&mut self) {
        let root = self.dir.path();
        let conf = root.join("influxd.conf");
        std::fs::write(
            &conf,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:0\"\n[meta]\n  dir = \"{r}/meta\"\n[data]\n  dir = \"{r}/data\"\n  wal-dir = \"{r}/wal\"\n  query-log-enabled = false\n[monitor]\n  store-enabled = false\n[http]\n  bind-address = \"{a}\"\n  log-enabled = false\n{h}\n[ifql]\n  enabled = false\n",
                r = root.display(),
                a = self.addr,
                h = self.http_extra
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .args(["-config", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start influxd ({e}): install the Debian package influxdb (.ci/run does)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "influxd did not come up");
            if self.addr.port() == 0 {
                let log = std::fs::read_to_string(root.join("influxd.log")).unwrap_or_default();
                if let Some(a) = log
                    .lines()
                    .find(|l| l.contains("Listening on HTTP"))
                    .and_then(|l| l.split("addr=").nth(1))
                    .and_then(|a| a.split_whitespace().next())
                {
                    self.addr = a.parse().unwrap();
                }
            } else if http(self.addr, "GET", "/ping", b"").0 == 204 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Run an InfluxQL statement; the JSON answer.
    pub(crate) fn query(&self, db: &str, q: &str) -> serde_json::Value {
        let (status, body) = http(
            self.addr,
            "GET",
            &format!("/query?db={}&q={}", url_encode(db), url_encode(q)),
            b"",
        );
        assert_eq!(status, 200, "{q}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `SELECT * FROM measurement` as rows of (column → value), waiting up to
    /// 10 s for at least `n` rows; then panics naming the query, `n`, how
    /// many rows there were, the last of them and the tail of influxd's log.
    #[track_caller]
    pub(crate) fn rows(
        &self,
        db: &str,
        measurement: &str,
        n: usize,
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.query(db, &format!("SELECT * FROM \"{measurement}\""));
            let series = &v["results"][0]["series"][0];
            let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                match series["values"].as_array() {
                    Some(values) => {
                        let cols: Vec<&str> = series["columns"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|c| c.as_str().unwrap())
                            .collect();
                        values
                            .iter()
                            .map(|row| {
                                cols.iter()
                                    .zip(row.as_array().unwrap())
                                    .filter(|(_, v)| !v.is_null())
                                    .map(|(c, v)| ((*c).to_owned(), v.clone()))
                                    .collect()
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
            if rows.len() >= n {
                return rows;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("influxd.log"))
                    .unwrap_or_else(|e| format!("(cannot read influxd.log: {e})"));
                panic!(
                    "waited 10 s for {n} rows of {db}.{measurement}, in vain: it has {}; the last: {:?}\n--- tail of influxd.log:\n{}",
                    rows.len(),
                    &rows[rows.len().saturating_sub(LAST_SHOWN)..],
                    tail_lines(&log, LAST_SHOWN * 2),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
