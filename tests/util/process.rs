//! `Sluice`: the real binary in its own temp directory, started, scraped and stopped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A running sluice; killed on drop if the test did not stop it.
pub(crate) struct Sluice {
    pub(crate) child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ready: serde_json::Value,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Sluice {
    pub(crate) fn start(config: &str) -> Sluice {
        Sluice::start_with_env(config, &[])
    }

    /// Start with extra environment variables (e.g. secrets for `${NAME}`).
    pub(crate) fn start_with_env(config: &str, env: &[(&str, &str)]) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c", "sluice.toml"])
            .envs(env.iter().copied())
            .stderr(Stdio::null());
        Sluice::spawn(cmd, dir)
    }

    /// Run `cmd` (a sluice command line, perhaps under a wrapper) in `dir`,
    /// its stdout piped, and wait for its readiness line.
    pub(crate) fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Sluice {
        let mut child = cmd
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("readiness line {line:?}: {e}"));
        assert_eq!(ready["ready"], true);
        Sluice {
            child: Some(child),
            dir,
            ready,
        }
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

    /// Lines of `file` once it has at least `n` (waits up to 10 s).
    pub(crate) fn wait_lines(&self, file: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = read_lines(&self.path(file));
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of one Prometheus sample, e.g.
    /// `sluice_listener_frames_total{listener="tcp"}`; 0 if absent.
    pub(crate) fn metric(&self, sample: &str) -> u64 {
        self.scrape()
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0)
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
        (status, serde_json::from_str(&body).unwrap())
    }

    /// SIGKILL (`kill -9`), and reap it.
    pub(crate) fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Start sluice again in the same directory with the same config file
    /// (after a stop or a kill).
    pub(crate) fn relaunch(&mut self) {
        let mut child = Command::new(BIN)
            .args(["run", "-c", "sluice.toml"])
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.ready =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("readiness line {line:?}: {e}"));
        self.child = Some(child);
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
