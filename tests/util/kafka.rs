//! A real Kafka cluster for the integration tests (issue #24).
//!
//! `tests/kafka/Launcher.java` starts 1 or 3 KRaft nodes (combined broker
//! and controller) over the jars `tests/kafka/pom.xml` names, which
//! `.ci/run` resolves into the local Maven repository; the classpath is
//! asked of Maven offline (`dependency:build-classpath`) once per test
//! binary. One single-node cluster is shared by the tests of the binary
//! ([`shared`]; each test uses its own topics); a test that stops, kills
//! or restarts nodes starts its own ([`Kafka::start`]). The launcher stops
//! its nodes when its stdin closes, which happens when the test binary
//! exits (or the [`Kafka`] is dropped).
//!
//! A missing `java`, `mvn` or jar makes a test skip with the reason
//! printed; with `SLUICE_REQUIRE_TOOLS=1` (.ci/run) or `CI=true` it fails
//! instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Keep in step with tests/kafka/pom.xml.
pub(crate) const KAFKA_VERSION: &str = "4.4.0";

/// A running cluster.
pub(crate) struct Kafka {
    /// `127.0.0.1:PORT,...`: every node's broker listener.
    pub(crate) bootstrap: String,
    /// Node id → broker port.
    pub(crate) ports: Vec<u16>,
    child: Mutex<Child>,
    io: Mutex<(Option<ChildStdin>, BufReader<ChildStdout>)>,
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub(crate) struct KafkaRecord {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
}

impl KafkaRecord {
    /// The first header `name` as text, if there is one.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// The classpath of tests/kafka/pom.xml, or why there is none.
fn classpath() -> Result<String, String> {
    static CP: OnceLock<Result<String, String>> = OnceLock::new();
    CP.get_or_init(|| {
        if !Command::new("java")
            .arg("-version")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Err("no `java` on PATH".into());
        }
        let pom = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/pom.xml");
        let out = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("mvn");
        cmd.args(["-o", "-q", "-B", "-f"])
            .arg(&pom)
            .arg("dependency:build-classpath")
            .arg(format!("-Dmdep.outputFile={}", out.path().display()));
        if let Some(repo) = std::env::var_os("SLUICE_M2_REPO") {
            let mut arg = std::ffi::OsString::from("-Dmaven.repo.local=");
            arg.push(repo);
            cmd.arg(arg);
        }
        let status = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot start `mvn` ({e}); install maven (.ci/run does)"))?;
        let cp = std::fs::read_to_string(out.path()).unwrap_or_default();
        if !status.success() || !cp.contains("kafka_2.13") {
            return Err(format!(
                "the Kafka {KAFKA_VERSION} jars are not in the local Maven repository \
                 (run `mvn -q -f tests/kafka/pom.xml dependency:resolve`)"
            ));
        }
        Ok(cp.trim().to_owned())
    })
    .clone()
}

/// Whether Kafka can run here; skips (prints why) or, when tools are
/// required, fails.
#[track_caller]
pub(crate) fn kafka_available() -> bool {
    crate::util::tool_available("the Kafka test", classpath().err())
}

/// The single-node cluster the tests of this binary share (`None`: skip).
pub(crate) fn shared() -> Option<&'static Kafka> {
    static SHARED: OnceLock<Option<Kafka>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if !kafka_available() {
                return None;
            }
            Some(Kafka::start(1, &[]))
        })
        .as_ref()
}

impl Kafka {
    /// Start `nodes` nodes (1 or 3) with extra broker settings
    /// (`key=value`). Call [`kafka_available`] first.
    pub(crate) fn start(nodes: usize, settings: &[&str]) -> Kafka {
        let cp = classpath().unwrap_or_else(|e| panic!("Kafka cannot start: {e}"));
        // One start at a time: JVMs starting side by side on a small, busy
        // machine all take much longer.
        static STARTING: Mutex<()> = Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = String::new();
        // A port race (free ports picked, bound by a node moments later)
        // shows as a node that exits: try again, twice.
        for _ in 0..3 {
            match Kafka::launch(&cp, nodes, settings) {
                Ok(k) => return k,
                Err(e) => last = e,
            }
        }
        panic!("Kafka did not start: {last}");
    }

    fn launch(cp: &str, nodes: usize, settings: &[&str]) -> Result<Kafka, String> {
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/Launcher.java");
        let cache = std::env::var_os("SLUICE_ENGINE_CACHE")
            .map_or_else(|| PathBuf::from("/tmp/sluice-engines"), PathBuf::from);
        let heap = if nodes > 1 { "160m" } else { "192m" };
        let mut cmd = Command::new("java");
        cmd.args([
            "-Xmx96m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-cp",
            cp,
        ])
        .arg(launcher)
        .args(["--classpath", cp, "--cache"])
        .arg(cache)
        .args(["--nodes", &nodes.to_string(), "--heap", heap]);
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
        let Ok(ready) = serde_json::from_str::<serde_json::Value>(&line) else {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let _ = child.wait();
            return Err(format!("no readiness line ({line:?}); stderr:\n{err}"));
        };
        // The launcher's stderr (SLF4J notes, a node's last words) is not
        // read again: drain it so that it never blocks on a full pipe.
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = err.read_to_end(&mut sink);
        });
        let bootstrap = ready["bootstrap"].as_str().unwrap().to_owned();
        let ports = ready["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["port"].as_u64().unwrap() as u16)
            .collect();
        eprintln!(
            "kafka {nodes} node(s) at {bootstrap} ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Kafka {
            bootstrap,
            ports,
            io: Mutex::new((child.stdin.take(), stdout)),
            child: Mutex::new(child),
        })
    }

    /// Send one launcher command and return its answer; panics on
    /// `{"error":...}`.
    pub(crate) fn command(&self, line: &str) -> serde_json::Value {
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        let (stdin, stdout) = &mut *io;
        let stdin = stdin.as_mut().expect("the launcher's stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        let v: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("launcher answered {answer:?} to {line:?}: {e}"));
        assert!(v.get("error").is_none(), "launcher: {v}");
        v
    }

    /// Create `topic` with `partitions`, `replication` and topic configs
    /// (`key=value`, e.g. `min.insync.replicas=2`, `max.message.bytes=2000`);
    /// returns once every partition has a leader.
    pub(crate) fn create_topic(
        &self,
        topic: &str,
        partitions: u32,
        replication: u16,
        configs: &[&str],
    ) {
        self.command(&format!(
            "create {topic} {partitions} {replication} {}",
            configs.join(" ")
        ));
    }

    /// Delete `topic`; returns once the cluster no longer lists it (a
    /// `create_topic` of the same name then makes a new topic, its
    /// offsets from 0 again).
    pub(crate) fn delete_topic(&self, topic: &str) {
        self.command(&format!("delete {topic}"));
    }

    /// Every record of `topic` up to its end offsets of now.
    pub(crate) fn read_topic(&self, topic: &str) -> Vec<KafkaRecord> {
        let file = tempfile::NamedTempFile::new().unwrap();
        let n = self.command(&format!("dump {topic} {}", file.path().display()))["dumped"]
            .as_u64()
            .unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        let records: Vec<KafkaRecord> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                KafkaRecord {
                    partition: v["partition"].as_i64().unwrap() as i32,
                    offset: v["offset"].as_i64().unwrap(),
                    key: v["key"].as_str().map(unhex),
                    value: v["value"].as_str().map(unhex).unwrap_or_default(),
                    headers: v["headers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| (h[0].as_str().unwrap().to_owned(), h[1].as_str().map(unhex)))
                        .collect(),
                }
            })
            .collect();
        assert_eq!(records.len() as u64, n, "dump of {topic}");
        records
    }

    /// Produce `records` (partition: `None` = the producer's choice) with
    /// acks=all; returns once every one is acknowledged.
    pub(crate) fn produce(&self, topic: &str, records: &[KafkaRecord]) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for r in records {
            let v = serde_json::json!({
                "partition": (r.partition >= 0).then_some(r.partition),
                "key": r.key.as_deref().map(hex),
                "value": hex(&r.value),
                "headers": r.headers.iter().map(|(k, v)| serde_json::json!([k, v.as_deref().map(hex)])).collect::<Vec<_>>(),
            });
            writeln!(file, "{v}").unwrap();
        }
        file.flush().unwrap();
        let n = self.command(&format!("produce {topic} {}", file.path().display()))["produced"]
            .as_u64()
            .unwrap();
        assert_eq!(n, records.len() as u64);
    }

    /// The leader node of `topic`'s `partition` (`None`: none now).
    pub(crate) fn leader(&self, topic: &str, partition: u32) -> Option<usize> {
        let id = self.command(&format!("leader {topic} {partition}"))["leader"]
            .as_i64()
            .unwrap();
        usize::try_from(id).ok()
    }

    /// `kill -9` node `i`.
    pub(crate) fn kill_node(&self, i: usize) {
        self.command(&format!("kill {i}"));
    }

    /// Stop node `i` (SIGTERM, waits for it to exit).
    pub(crate) fn stop_node(&self, i: usize) {
        self.command(&format!("stop {i}"));
    }

    /// Start node `i` again (same ports and data); returns once the
    /// cluster lists it as a broker.
    pub(crate) fn start_node(&self, i: usize) {
        self.command(&format!("start {i}"));
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        // Stdin closed: the launcher stops its nodes and exits.
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        io.0.take();
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.wait();
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A sink `es` to `es` (index `syslog`) and the route `events` to it with
/// ECS documents into a `block` queue: an indexer's (and, in the two-tier
/// tests, the edge's single-process twin).
pub(crate) fn es_events_route(es: &crate::util::EsServer) -> String {
    format!(
        r#"
[[sinks]]
name = "es"
type = "elasticsearch"
urls = ["{}"]
index = "syslog"
linger_ms = 20
timeout_secs = 5
max_backoff_secs = 1
[[routes]]
name = "events"
sink = "es"
document = {{ format = "ecs" }}
[routes.queue]
max_events = 100000
when_full = "block"
"#,
        es.url()
    )
}
