//! `sluice spill verify`: reading every route's log without changing it.

use std::fs::{self};
use std::path::{Path, PathBuf};

use super::*;

/// What [`verify`] found for one route's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct VerifyReport {
    pub route: String,
    /// On-disk format (1: written before issue #20; upgraded at start).
    pub format: u32,
    pub segments: usize,
    pub bytes: u64,
    /// Valid records not yet acknowledged: what the next start delivers.
    pub pending_records: u64,
    /// Records lost to corrupt regions (from the sequence-number gaps
    /// around them), plus one per torn or corrupt tail of the log.
    pub lost_records: u64,
    /// Corrupt regions: the segment and the offset where each begins.
    pub corrupt: Vec<(String, u64)>,
}

/// Does `dir` hold a route's spill log (segments or an ack file)?
pub(super) fn is_route_log(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name == "ack" || name.ends_with(".seg")
        })
    })
}

/// Create `<data_dir>/spill/`. `run` does so at start, durable routes or
/// not: a data dir is recognised by this folder ([`spill_folder`]), so
/// `sluice spill verify` finds nothing to verify in a data dir whose
/// routes have no log yet, rather than refusing it.
pub(crate) fn create_spill_folder(data_dir: &Path) -> Result<(), SpillError> {
    let dir = data_dir.join("spill");
    fs::create_dir_all(&dir).map_err(io_err(&dir))
}

/// The spill folder `dir` names: `dir/spill` for a data dir, or `dir`
/// itself when it holds route logs and nothing else; anything else is
/// refused (a dead-letter folder must never pass for routes).
pub(crate) fn spill_folder(dir: &Path) -> Result<PathBuf, SpillError> {
    let refuse = |why: String| SpillError::NotSpillFolder {
        path: dir.to_owned(),
        why,
    };
    if !dir.is_dir() {
        return Err(refuse("no such folder".into()));
    }
    if is_route_log(dir) {
        return Err(refuse(format!(
            "it is one route's log; pass the folder above it ({})",
            dir.parent()
                .map_or(String::new(), |p| p.display().to_string())
        )));
    }
    let inner = dir.join("spill");
    let (folder, allow_empty) = if inner.is_dir() {
        (inner, true)
    } else {
        (dir.to_owned(), false)
    };
    let mut routes = 0;
    for entry in fs::read_dir(&folder).map_err(io_err(&folder))? {
        let path = entry.map_err(io_err(&folder))?.path();
        if !(path.is_dir() && is_route_log(&path)) {
            return Err(refuse(format!(
                "{} holds no spill log (pass the data dir or its spill folder)",
                path.display()
            )));
        }
        routes += 1;
    }
    if routes == 0 && !allow_empty {
        return Err(refuse(
            "it holds no route's spill log (pass the data dir or its spill folder)".into(),
        ));
    }
    Ok(folder)
}

/// Read every route's log under `dir` (a data dir or its spill folder)
/// without changing anything.
pub(crate) fn verify(dir: &Path) -> Result<Vec<VerifyReport>, SpillError> {
    let spill = spill_folder(dir)?;
    let mut reports = Vec::new();
    let mut dirs: Vec<PathBuf> = fs::read_dir(&spill)
        .map_err(io_err(&spill))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        reports.push(verify_route(&dir)?);
    }
    Ok(reports)
}

pub(super) fn verify_route(dir: &Path) -> Result<VerifyReport, SpillError> {
    let found = read_ack(dir)?;
    let mut report = VerifyReport {
        route: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        format: FORMAT_VERSION,
        segments: 0,
        bytes: 0,
        pending_records: 0,
        lost_records: 0,
        corrupt: Vec::new(),
    };
    let (ack, v1_ack) = match found {
        AckFound::V2(a) => (a, None),
        AckFound::V1(p) => (AckState::default(), Some(p)),
        AckFound::None => (AckState::default(), None),
    };
    let mut prev = ack.seq;
    let listed = list_segments(dir)?;
    let last = listed.len().saturating_sub(1);
    let kinds = classify(&listed)?;
    for (i, ((seq, path), kind)) in listed.iter().zip(kinds).enumerate() {
        if kind == Kind::V2BadHeader && *seq >= ack.at.segment {
            report.corrupt.push((path.display().to_string(), 0));
        }
        match kind {
            Kind::V1 => {
                report.format = 1;
                let v1_ack = v1_ack.unwrap_or_default();
                if *seq < v1_ack.segment {
                    continue;
                }
                report.segments += 1;
                report.bytes += fs::metadata(path).map_err(io_err(path))?.len();
                let from = if *seq == v1_ack.segment {
                    v1_ack.offset
                } else {
                    0
                };
                let (records, bad) = v1::read(path, from, |_| Ok(()))?;
                report.pending_records += records;
                if bad {
                    report.corrupt.push((path.display().to_string(), 0));
                }
            }
            Kind::V2 | Kind::V2BadHeader => {
                if *seq < ack.at.segment {
                    continue;
                }
                report.segments += 1;
                let found = scan(path, ack.seq)?;
                report.bytes += fs::metadata(path).map_err(io_err(path))?.len();
                report.pending_records += found.seqs.len() as u64;
                report.lost_records += gaps(&mut prev, &found.seqs);
                if found.bad_tail && i == last {
                    report.lost_records += 1;
                }
                for at in found.regions {
                    report.corrupt.push((path.display().to_string(), at));
                }
            }
        }
    }
    Ok(report)
}
