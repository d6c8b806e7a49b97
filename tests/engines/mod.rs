//! Real OpenSearch and Elasticsearch for the integration tests (issue #23).
//!
//! `Launcher.java` (beside this file) starts nodes of the engines' own
//! integ-test zips, which `.ci/run` resolves into the local Maven
//! repository with `pom.xml`. One engine of each kind is shared by every
//! test of the test binary (started once, on first use; each test writes
//! its own indices); tests that need special node settings or a cluster
//! start their own. The launcher stops its nodes when its stdin closes,
//! which happens when the test binary exits.
//!
//! A missing `java`, JDK or zip makes a test skip with the reason printed;
//! with `SLUICE_REQUIRE_TOOLS=1` (.ci/run) or `CI=true` it fails instead:
//! CI never skips an engine test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

mod cases;
mod guard;

pub(crate) const OPENSEARCH_VERSION: &str = "3.6.0";
pub(crate) const ELASTICSEARCH_VERSION: &str = "8.19.21";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    OpenSearch,
    Elasticsearch,
}

impl Kind {
    fn zip(self) -> PathBuf {
        let repo = std::env::var_os("SLUICE_M2_REPO")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".m2/repository")
            });
        let (group, name, version) = match self {
            Kind::OpenSearch => ("org/opensearch", "opensearch", OPENSEARCH_VERSION),
            Kind::Elasticsearch => ("org/elasticsearch", "elasticsearch", ELASTICSEARCH_VERSION),
        };
        repo.join(format!(
            "{group}/distribution/integ-test-zip/{name}/{version}/{name}-{version}.zip"
        ))
    }

    /// The JDK the engine runs on: OpenSearch 3 needs Java 21 or newer,
    /// Elasticsearch 8 runs on 17.
    fn java_home(self) -> PathBuf {
        let (var, default) = match self {
            Kind::OpenSearch => (
                "SLUICE_OPENSEARCH_JAVA_HOME",
                "/usr/lib/jvm/temurin-25-jdk-amd64",
            ),
            Kind::Elasticsearch => (
                "SLUICE_ELASTICSEARCH_JAVA_HOME",
                "/usr/lib/jvm/java-17-openjdk-amd64",
            ),
        };
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::OpenSearch => "opensearch",
            Kind::Elasticsearch => "elasticsearch",
        }
    }
}

/// A running engine: its launcher and its nodes' HTTP addresses.
#[allow(dead_code)] // kind: for a case that needs to tell the engines apart
pub(crate) struct Engine {
    pub(crate) kind: Kind,
    pub(crate) nodes: Vec<SocketAddr>,
    /// The launcher; `None` for an engine already running (see [`running`]).
    child: Option<Launched>,
}

struct Launched {
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    stdout: Mutex<BufReader<std::process::ChildStdout>>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        // Stdin closed: the launcher stops its nodes and exits.
        drop(self.stdin.lock().unwrap().take());
        let mut child = self.child.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Why an engine cannot start here, or `None` when everything is in place.
fn missing(kind: Kind) -> Option<String> {
    let java_ok = Command::new("java")
        .arg("-version")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !java_ok {
        return Some("no `java` on PATH".into());
    }
    let zip = kind.zip();
    if !zip.is_file() {
        return Some(format!(
            "{} is not there (run `mvn -q -f tests/engines/pom.xml dependency:resolve`)",
            zip.display()
        ));
    }
    let java = kind.java_home().join("bin/java");
    if !java.is_file() {
        return Some(format!("no JDK at {} for {}", java.display(), kind.name()));
    }
    None
}

/// Skip (print why and return `None`) when the engine cannot run here;
/// fail when `SLUICE_REQUIRE_TOOLS=1` or `CI=true`.
fn available(kind: Kind) -> bool {
    crate::util::tool_available(kind.name(), missing(kind))
}

/// Start `nodes` nodes of `kind` with extra settings (`key=value`).
pub(crate) fn start(kind: Kind, nodes: usize, heap: &str, settings: &[&str]) -> Option<Engine> {
    if !available(kind) {
        return None;
    }
    // A port race (the launcher picks free ports, a node binds them a few
    // seconds later) shows as a node that exits: try again, twice.
    // One start at a time: JVMs starting side by side on a small, busy
    // machine all take minutes; one after the other each takes one.
    static STARTING: Mutex<()> = Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = String::new();
    for _ in 0..3 {
        match launch(kind, nodes, heap, settings) {
            Ok(e) => return Some(e),
            Err(e) => last = e,
        }
    }
    panic!("{} did not start: {last}", kind.name());
}

fn launch(kind: Kind, nodes: usize, heap: &str, settings: &[&str]) -> Result<Engine, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines");
    let cache = std::env::var_os("SLUICE_ENGINE_CACHE")
        .map_or_else(|| PathBuf::from("/tmp/sluice-engines"), PathBuf::from);
    let mut cmd = Command::new("java");
    cmd.arg(dir.join("Launcher.java"))
        .arg("--zip")
        .arg(kind.zip())
        .arg("--cache")
        .arg(cache)
        .arg("--java-home")
        .arg(kind.java_home())
        .args(["--nodes", &nodes.to_string(), "--heap", heap])
        // C1 only and one GC thread: the engines start in a fraction of
        // the time on the 2-core machine; the tests need no peak speed.
        .arg("--fast-start");
    for s in settings {
        cmd.args(["--set", s]);
    }
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("java Launcher.java: {e}"))?;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let _ = stdout.read_line(&mut line);
    let ready: serde_json::Value = match serde_json::from_str(&line) {
        Ok(v) => v,
        Err(_) => {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let _ = child.wait();
            return Err(format!("no readiness line ({line:?}); stderr:\n{err}"));
        }
    };
    let nodes: Vec<SocketAddr> = ready["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["http"].as_str().unwrap().parse().unwrap())
        .collect();
    eprintln!(
        "{} {} node(s) {nodes:?} ready in {:.1} s",
        kind.name(),
        nodes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Engine {
        kind,
        nodes,
        child: Some(Launched {
            stdin: Mutex::new(child.stdin.take()),
            stdout: Mutex::new(stdout),
            child: Mutex::new(child),
        }),
    })
}

/// An engine already running, named by `SLUICE_ENGINE_<NAME>` (its nodes'
/// `host:port`, comma-separated), e.g. one started by hand with
/// `Launcher.java` to run the tests again without waiting for a start.
fn running(kind: Kind, name: &str) -> Option<Engine> {
    let nodes = std::env::var(format!("SLUICE_ENGINE_{name}")).ok()?;
    Some(Engine {
        kind,
        nodes: nodes
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect(),
        child: None,
    })
}

/// An engine of `kind` shared by the tests that need it, named `name`
/// (`running` may supply it), started with `settings` on first use.
pub(crate) fn shared_with(
    cell: &'static OnceLock<Option<Engine>>,
    kind: Kind,
    name: &str,
    settings: &[&str],
) -> Option<&'static Engine> {
    cell.get_or_init(|| running(kind, name).or_else(|| start(kind, 1, "512m", settings)))
        .as_ref()
}

/// The engine of `kind` every test shares (one node, default settings).
pub(crate) fn shared(kind: Kind) -> Option<&'static Engine> {
    static OPENSEARCH: OnceLock<Option<Engine>> = OnceLock::new();
    static ELASTICSEARCH: OnceLock<Option<Engine>> = OnceLock::new();
    let cell = match kind {
        Kind::OpenSearch => &OPENSEARCH,
        Kind::Elasticsearch => &ELASTICSEARCH,
    };
    shared_with(
        cell,
        kind,
        match kind {
            Kind::OpenSearch => "OPENSEARCH",
            Kind::Elasticsearch => "ELASTICSEARCH",
        },
        &[],
    )
}

impl Engine {
    /// `http://127.0.0.1:PORT` of every node.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|a| format!("http://{a}")).collect()
    }

    /// Kill node `i` (kill -9) and wait until the launcher says so.
    pub(crate) fn stop_node(&self, i: usize) {
        let launched = self.child.as_ref().expect("an engine this test started");
        let mut stdin = launched.stdin.lock().unwrap();
        writeln!(stdin.as_mut().unwrap(), "stop {i}").unwrap();
        stdin.as_mut().unwrap().flush().unwrap();
        let mut line = String::new();
        launched
            .stdout
            .lock()
            .unwrap()
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("{{\"stopped\":{i}}}"));
    }

    /// A request to the first live node; (status, JSON answer, or Null).
    pub(crate) fn req(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.req_to(0, method, path, body)
    }

    pub(crate) fn req_to(
        &self,
        node: usize,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let (status, text) = request(self.nodes[node], method, path, body);
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// A request that must answer 2xx.
    pub(crate) fn ok(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let (status, v) = self.req(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// `_count` of `index` after a refresh (0 when it does not exist).
    pub(crate) fn count(&self, index: &str) -> u64 {
        let _ = self.req("POST", &format!("/{index}/_refresh"), "");
        let (_, v) = self.req("GET", &format!("/{index}/_count"), "");
        v["count"].as_u64().unwrap_or(0)
    }

    /// Wait (up to `secs`) until `_count` of `index` reaches `n`; the count.
    pub(crate) fn wait_count(&self, index: &str, n: u64, secs: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let c = self.count(index);
            if c >= n || Instant::now() > deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every document of `index` (`_source`), at most 10,000.
    pub(crate) fn sources(&self, index: &str) -> Vec<serde_json::Value> {
        let _ = self.req("POST", &format!("/{index}/_refresh"), "");
        let v = self.ok(
            "POST",
            &format!("/{index}/_search"),
            r#"{"size":10000,"query":{"match_all":{}}}"#,
        );
        v["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_source"].clone())
            .collect()
    }
}

impl Engine {
    /// Every document of `index` (`_source`), read with a scroll (a
    /// consistent view over every shard; a `search_after` walk on `_doc`
    /// order alone skips a document at each page boundary of an index
    /// with several shards, whose `_doc` values tie); bounded at 200 pages
    /// of 5,000.
    ///
    /// A walk some shard failed to answer (`_shards.failed`, as a search
    /// may right after a node is lost, its copies being promoted) or that
    /// read fewer documents than its first page's total is read again, up
    /// to 10 times a second apart: the engine's passing state, not what
    /// sluice stored. The last walk is returned whatever it read, for the
    /// caller's assertions.
    pub(crate) fn sources_all(&self, index: &str) -> Vec<serde_json::Value> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (out, whole) = self.walk(index);
            if whole || attempt == 10 {
                return out;
            }
            eprintln!(
                "{index}: walk {attempt} read {} documents with shards missing or short of its total; reading again",
                out.len()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Wait (up to `secs`) until `index` is green with no shard
    /// initializing or relocating; whether it got there.
    pub(crate) fn wait_settled(&self, index: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, v) = self.req(
                "GET",
                &format!("/_cluster/health/{index}?wait_for_status=green&wait_for_no_initializing_shards=true&wait_for_no_relocating_shards=true&timeout=20s"),
                "",
            );
            if status == 200 && v["timed_out"] == false {
                return true;
            }
            if Instant::now() > deadline {
                eprintln!("{index}: not settled after {secs} s: {status} {v}");
                return false;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// One scroll over `index`: its documents' sources, and whether every
    /// shard answered every page and the pages held the first's total. A
    /// page the engine refuses (a scroll context lost with its shard copy)
    /// ends the walk short.
    fn walk(&self, index: &str) -> (Vec<serde_json::Value>, bool) {
        let _ = self.req("POST", &format!("/{index}/_refresh"), "");
        let (status, mut v) = self.req(
            "POST",
            &format!("/{index}/_search?scroll=1m"),
            r#"{"size":5000,"sort":["_doc"],"track_total_hits":true,"query":{"match_all":{}}}"#,
        );
        let total = v["hits"]["total"]["value"].as_u64();
        let mut whole = (200..300).contains(&status);
        let mut out = Vec::new();
        for _ in 0..200 {
            whole &= v["_shards"]["failed"].as_u64() == Some(0);
            let Some(hits) = v["hits"]["hits"].as_array().filter(|h| !h.is_empty()) else {
                break;
            };
            out.extend(hits.iter().map(|h| h["_source"].clone()));
            let Some(id) = v["_scroll_id"].as_str().map(str::to_owned) else {
                whole = false;
                break;
            };
            let (status, next) = self.req(
                "POST",
                "/_search/scroll",
                &format!(r#"{{"scroll":"1m","scroll_id":"{id}"}}"#),
            );
            if !(200..300).contains(&status) {
                eprintln!("{index}: a scroll page answered {status} {next}");
                whole = false;
                let _ = self.req(
                    "DELETE",
                    "/_search/scroll",
                    &format!(r#"{{"scroll_id":"{id}"}}"#),
                );
                return (out, whole);
            }
            v = next;
        }
        if let Some(id) = v["_scroll_id"].as_str() {
            let _ = self.req(
                "DELETE",
                "/_search/scroll",
                &format!(r#"{{"scroll_id":"{id}"}}"#),
            );
        }
        whole &= total == Some(out.len() as u64);
        (out, whole)
    }
}

/// One HTTP/1.1 request with a JSON body (Connection: close); (status,
/// body). Status 0 when the node is unreachable.
pub(crate) fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let content_type = if path.contains("_bulk") {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, String::new());
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut rest = &raw[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return (status, String::from_utf8_lossy(rest).into_owned());
    }
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(rest.len());
        body.extend_from_slice(&rest[start..end]);
        rest = rest.get(end + 2..).unwrap_or_default();
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}
