//! Reading what the file sinks wrote, and the repository's config files.

use std::path::{Path, PathBuf};

use crate::util::observed;

pub(crate) fn read_lines(path: &Path) -> Vec<String> {
    let lines: Vec<String> = std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    observed(format!("{} has {} lines", path.display(), lines.len()));
    lines
}

pub(crate) fn messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Every `*.toml` under `dir`, recursively.
pub(crate) fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// A path in the repository (the crate's root).
pub(crate) fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The `.seg` files of a spill log folder, sorted.
pub(crate) fn spill_segments(log_dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    segments
}
