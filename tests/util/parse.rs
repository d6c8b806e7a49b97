//! `sluice parse` as a subprocess.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::*;

/// `sluice parse ARGS` with `input` on stdin (run in a temp dir): one JSON
/// object per output line.
pub(crate) fn sluice_parse(args: &[&str], input: &[u8]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("parse")
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sluice parse {args:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
