//! `Sluice`: the real binary in its own temp directory, started, scraped and stopped.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// The child's stderr goes to this file in its directory.
pub(crate) const STDERR_LOG: &str = "stderr.log";

/// How much of the child's stderr a failing test prints (its tail).
const STDERR_SHOWN: u64 = 64 * 1024;

/// How many of the last lines (rows) a timed-out wait shows.
pub(crate) const LAST_SHOWN: usize = 5;

/// The last `n` lines of `text`, for the message of a timed-out wait.
pub(crate) fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running sluice; killed on drop if the test did not stop it. Its
/// stderr goes to `stderr.log` in its directory; a test that panics prints
/// the command line and the tail of that log.
pub(crate) struct Sluice {
    pub(crate) child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ready: serde_json::Value,
    /// The command line as started, for the report of a failing test.
    command: String,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", report(&self.command, self.dir.path()));
        }
    }
}

/// The command line and the tail of its `stderr.log` in `dir`.
fn report(command: &str, dir: &Path) -> String {
    let path = dir.join(STDERR_LOG);
    let text = match std::fs::File::open(&path) {
        Ok(mut f) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let from = len.saturating_sub(STDERR_SHOWN);
            let mut tail = Vec::new();
            let _ = f
                .seek(SeekFrom::Start(from))
                .and_then(|_| f.read_to_end(&mut tail));
            let cut = if from > 0 {
                format!("[first {from} bytes left out]\n")
            } else {
                String::new()
            };
            format!("{cut}{}", String::from_utf8_lossy(&tail))
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    };
    format!(
        "--- sluice command: {command}\n--- its stderr ({}):\n{text}--- end of stderr",
        path.display()
    )
}

/// Start `cmd` in `dir`: stdout piped, stderr appended to `stderr.log`
/// there. Returns the child and the command line.
fn launch(mut cmd: Command, dir: &Path) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(STDERR_LOG))
        .unwrap();
    cmd.current_dir(dir).stdout(Stdio::piped()).stderr(log);
    let command = format!("{cmd:?}");
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    (child, command)
}

/// Read the readiness line of a just-started child; on anything else, kill
/// it and fail showing its command line and stderr.
#[track_caller]
fn readiness(child: &mut Child, command: &str, dir: &Path) -> serde_json::Value {
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let ready = read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str::<serde_json::Value>(&line).map_err(|e| e.to_string()));
    match ready {
        Ok(ready) if ready["ready"] == true => ready,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no readiness line: read {line:?} ({other:?})\n{}",
                report(command, dir)
            )
        }
    }
}

impl Sluice {
    #[track_caller]
    pub(crate) fn start(config: &str) -> Sluice {
        Sluice::start_with_env(config, &[])
    }

    /// Start with extra environment variables (e.g. secrets for `${NAME}`).
    #[track_caller]
    pub(crate) fn start_with_env(config: &str, env: &[(&str, &str)]) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c", "sluice.toml"])
            .envs(env.iter().copied());
        Sluice::spawn(cmd, dir)
    }

    /// Run `cmd` (a sluice command line, perhaps under a wrapper) in `dir`,
    /// its stdout piped and its stderr appended to `stderr.log` there, and
    /// wait for its readiness line.
    #[track_caller]
    pub(crate) fn spawn(cmd: Command, dir: tempfile::TempDir) -> Sluice {
        let (mut child, command) = launch(cmd, dir.path());
        let ready = readiness(&mut child, &command, dir.path());
        Sluice {
            child: Some(child),
            dir,
            ready,
            command,
        }
    }

    /// What sluice wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path(STDERR_LOG)).unwrap_or_default())
            .into_owned()
    }

    pub(crate) fn addr(&self, name: &str) -> SocketAddr {
        self.ready["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Lines of `file` once it has at least `n`; waits up to 10 s, then
    /// panics naming the file, `n`, how many lines it had, the last of them
    /// and the tail of sluice's stderr. A check that fewer (or no more)
    /// lines arrive reads [`Sluice::lines_now`] instead.
    #[track_caller]
    pub(crate) fn wait_lines(&self, file: &str, n: usize) -> Vec<String> {
        const SECS: u64 = 10;
        let deadline = Instant::now() + Duration::from_secs(SECS);
        loop {
            let lines = read_lines(&self.path(file));
            if lines.len() >= n {
                return lines;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {SECS} s for {n} lines in {file}, in vain: it has {}; its last lines: {:?}\n--- tail of sluice's stderr:\n{}",
                    lines.len(),
                    &lines[lines.len().saturating_sub(LAST_SHOWN)..],
                    tail_lines(&self.stderr(), LAST_SHOWN * 2),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lines of `file` as they are now, without waiting: for checks that
    /// nothing more arrives (after a settle or a counted wait elsewhere).
    pub(crate) fn lines_now(&self, file: &str) -> Vec<String> {
        read_lines(&self.path(file))
    }

    /// The value of one Prometheus sample, e.g.
    /// `sluice_listener_frames_total{listener="tcp"}`; 0 if absent.
    pub(crate) fn metric(&self, sample: &str) -> u64 {
        let value = self
            .scrape()
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0);
        observed(format!("{sample} = {value}"));
        value
    }

    /// Sum of every sample whose name (and labels) start with `prefix` and
    /// whose labels contain `labels`.
    pub(crate) fn metric_sum(&self, prefix: &str, labels: &str) -> u64 {
        let sum = self
            .scrape()
            .lines()
            .filter(|l| l.starts_with(prefix) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        observed(format!("sum of {prefix}…{labels}… = {sum}"));
        sum
    }

    /// The value of one sample that must be exposed (panics if absent).
    pub(crate) fn required_metric(&self, sample: &str) -> u64 {
        let value = self
            .scrape()
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{sample} is not in /metrics"));
        observed(format!("{sample} = {value}"));
        value
    }

    /// `/health`: the overall status and the error of the entry for sink
    /// `sink`, route `route` (none when there is no such entry).
    pub(crate) fn sink_health(&self, sink: &str, route: &str) -> (String, Option<String>) {
        let (_, h) = self.health_status();
        let entry = h["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["sink"] == sink && e["route"] == route)
            .cloned()
            .unwrap_or_default();
        (
            h["status"].as_str().unwrap_or("").to_owned(),
            entry["error"].as_str().map(str::to_owned),
        )
    }

    /// The admin address to connect to (loopback when it listens on all).
    pub(crate) fn admin_addr(&self) -> SocketAddr {
        let mut a: SocketAddr = self.ready["admin"].as_str().unwrap().parse().unwrap();
        if a.ip().is_unspecified() {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        a
    }

    /// `GET /metrics`: the Prometheus text.
    pub(crate) fn scrape(&self) -> String {
        let admin: SocketAddr = self.ready["admin"].as_str().unwrap().parse().unwrap();
        let (status, body) = http(admin, "GET", "/metrics", b"");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET /health` as JSON, asserting 200.
    pub(crate) fn health(&self) -> serde_json::Value {
        let (status, body) = self.health_status();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET /health`: status code and JSON.
    pub(crate) fn health_status(&self) -> (u16, serde_json::Value) {
        let admin: SocketAddr = self.ready["admin"].as_str().unwrap().parse().unwrap();
        let (status, body) = http(admin, "GET", "/health", b"");
        observed(format!("/health: {status} {body}"));
        (status, serde_json::from_str(&body).unwrap())
    }

    /// Send it a signal with `kill`, e.g. `"-STOP"`, `"-CONT"`, `"-HUP"`.
    pub(crate) fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success(),
            "kill {sig} {pid}"
        );
    }

    /// SIGKILL (`kill -9`), and reap it.
    pub(crate) fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Start sluice again in the same directory with the same config file
    /// (after a stop or a kill).
    #[track_caller]
    pub(crate) fn relaunch(&mut self) {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c", "sluice.toml"]);
        let (mut child, command) = launch(cmd, self.dir.path());
        self.ready = readiness(&mut child, &command, self.dir.path());
        self.child = Some(child);
        self.command = command;
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// SIGTERM, then wait for the exit.
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
