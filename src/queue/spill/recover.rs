//! Opening a log: listing and classifying its segments, scanning each
//! for valid records and corrupt regions, truncating a torn tail, and
//! upgrading a format-1 log.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;

/// How a segment is read, from its header and its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Format 1 (before issue #20): upgraded at open.
    V1,
    /// Format 2.
    V2,
    /// Format 2 with a damaged header (a flipped magic or version byte):
    /// read by scanning, the header counted as a corrupt region; never
    /// taken for another format, never deleted for it.
    V2BadHeader,
}

/// Classify the segments of one log. A header that does not say format 2
/// is damage, not another format, when the log's other segments are
/// format 2, when a header-less segment comes after a format-2 one, or
/// when records in format-2 framing are found inside. Only a log whose
/// every such segment says a newer version (and holds no format-2
/// record) is refused as newer.
pub(super) fn classify(listed: &[(u64, PathBuf)]) -> Result<Vec<Kind>, SpillError> {
    let raw = listed
        .iter()
        .map(|(_, p)| segment_version(p))
        .collect::<Result<Vec<_>, _>>()?;
    let first_v2 = listed
        .iter()
        .zip(&raw)
        .filter(|(_, v)| **v == Some(FORMAT_VERSION))
        .map(|((seq, _), _)| *seq)
        .min();
    let mut kinds = Vec::with_capacity(listed.len());
    for ((seq, path), version) in listed.iter().zip(&raw) {
        let has_v2_records = || scan(path, None).map(|s| !s.seqs.is_empty());
        let kind = match version {
            Some(FORMAT_VERSION) => Kind::V2,
            None if first_v2.is_some_and(|f| f < *seq) || has_v2_records()? => Kind::V2BadHeader,
            None => Kind::V1,
            Some(_) if first_v2.is_some() || has_v2_records()? => Kind::V2BadHeader,
            Some(version) => {
                return Err(SpillError::NewerFormat {
                    path: path.clone(),
                    version: *version,
                });
            }
        };
        if kind == Kind::V2BadHeader {
            tracing::warn!(path = %path.display(), "spill log: segment header damaged; records recovered by scanning");
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// What a full check of one segment found.
#[derive(Default)]
pub(super) struct Scan {
    /// End of the last valid record (the header's end if none).
    pub(super) valid_end: u64,
    /// Corrupt regions: where each begins.
    pub(super) regions: Vec<u64>,
    /// The segment ends in a corrupt region (no valid record after it).
    pub(super) bad_tail: bool,
    /// Sequence numbers of valid records after `after`, in order.
    pub(super) seqs: Vec<u64>,
}

/// Check a format-2 segment; sequence numbers at or below `after` are
/// not collected.
pub(super) fn scan(path: &Path, after: Option<u64>) -> Result<Scan, SpillError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::new(file);
    let mut out = Scan {
        valid_end: SEGMENT_HEADER.min(size),
        ..Scan::default()
    };
    let mut at = SEGMENT_HEADER;
    if size < SEGMENT_HEADER {
        return Ok(out);
    }
    r.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
    let mut body = Vec::new();
    loop {
        match step(&mut r, at, size, &mut body).map_err(io_err(path))? {
            Step::End => return Ok(out),
            Step::Record { seq, bytes, .. } => {
                at += bytes;
                out.valid_end = at;
                out.bad_tail = false;
                if after.is_none_or(|a| seq > a) {
                    out.seqs.push(seq);
                }
            }
            Step::Corrupt { next } => {
                out.regions.push(at);
                out.bad_tail = true;
                match next {
                    Some(q) => at = q,
                    None => return Ok(out),
                }
            }
        }
    }
}

/// Records lost in the gaps of `seqs` (ascending) after `prev`.
pub(super) fn gaps(prev: &mut Option<u64>, seqs: &[u64]) -> u64 {
    let mut lost = 0;
    for &s in seqs {
        if let Some(p) = *prev {
            lost += s.saturating_sub(p).saturating_sub(1);
            *prev = Some(p.max(s));
        } else {
            *prev = Some(s);
        }
    }
    lost
}

pub(super) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpillError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

impl SpillLog {
    /// Open (or create) the log in `dir`, checking every record; a
    /// format-1 log is upgraded.
    pub fn open(dir: &Path, options: SpillOptions) -> Result<(SpillLog, Recovery), SpillError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let found = read_ack(dir)?;
        let listed = list_segments(dir)?;
        let mut old = Vec::new();
        let mut current = Vec::new();
        let mut bad_headers = 0;
        let kinds = classify(&listed)?;
        for ((seq, path), kind) in listed.into_iter().zip(kinds) {
            match kind {
                Kind::V1 => old.push((seq, path)),
                Kind::V2 => current.push((seq, path)),
                Kind::V2BadHeader => {
                    bad_headers += 1;
                    current.push((seq, path));
                }
            }
        }
        let v1_ack = match found {
            AckFound::V1(p) => Some(p),
            _ => None,
        };
        let ack = match found {
            AckFound::V2(a) => a,
            _ => AckState::default(),
        };
        // The last acknowledged record: known from a format-2 ack, or 0 for
        // a new log; unknown (the ack file lost) leaves the first record
        // read as the baseline for counting gaps.
        let ack = match (ack.seq, current.is_empty() && old.is_empty()) {
            (None, true) => AckState {
                seq: Some(0),
                ..ack
            },
            _ => ack,
        };
        let mut recovery = Recovery {
            corrupt_regions: bad_headers,
            ..Recovery::default()
        };
        let (segments, first_seen, max_seq) = check_segments(&current, &ack, &mut recovery)?;
        let next_segment = segments
            .last()
            .map_or(ack.at.segment, |s| s.seq)
            .max(old.last().map_or(0, |(s, _)| *s))
            + 1;
        let read = match segments.first() {
            Some(s) if s.seq == ack.at.segment && ack.at.offset >= SEGMENT_HEADER => ack.at,
            Some(s) => Position {
                segment: s.seq,
                offset: SEGMENT_HEADER,
            },
            None => Position {
                segment: next_segment,
                offset: SEGMENT_HEADER,
            },
        };
        let ack_path = dir.join("ack");
        let ack_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&ack_path)
            .map_err(io_err(&ack_path))?;
        // Unknown (the ack file lost): everything present is replayed, and
        // what came before it was delivered.
        let acked_seq = ack
            .seq
            .unwrap_or_else(|| first_seen.map_or(max_seq, |f: u64| f.saturating_sub(1)));
        let state = AckState {
            generation: ack.generation,
            seq: Some(acked_seq),
            at: read,
        };
        if !matches!(found, AckFound::V2(_))
            || ack_file.metadata().map_err(io_err(&ack_path))?.len() != ACK_FILE as u64
        {
            // Preallocate both slots: later acknowledgements rewrite them
            // in place and never need free space.
            ack_file.set_len(0).map_err(io_err(&ack_path))?;
            let mut both = [0u8; ACK_FILE];
            both[..ACK_SLOT].copy_from_slice(&ack_slot(&state));
            ack_file.write_all_at(&both, 0).map_err(io_err(&ack_path))?;
            ack_file.sync_all().map_err(io_err(&ack_path))?;
        }
        let mut log = SpillLog {
            dir: dir.to_owned(),
            options,
            segments,
            writer: None,
            next_seq: max_seq + 1,
            next_segment,
            ack_file,
            read,
            ack: state,
            max_read_seq: Some(acked_seq),
            read_seq: None,
            lost: 0,
            reader: None,
            body: Vec::new(),
            pending: recovery.pending_records,
            unacked_read: 0,
            outstanding: std::collections::VecDeque::new(),
            next_token: 0,
            last_sync: std::time::Instant::now(),
            dirty: false,
            syncs: 0,
            write_failed: false,
            sealed: false,
        };
        if !old.is_empty() || v1_ack.is_some() {
            recovery.upgraded_records = log.upgrade(&old, v1_ack)?;
            recovery.pending_records += recovery.upgraded_records;
        }
        Ok((log, recovery))
    }

    /// Copy the unacknowledged records of format-1 segments `old` into
    /// this log, then remove them and the format-1 ack.
    pub(super) fn upgrade(
        &mut self,
        old: &[(u64, PathBuf)],
        ack: Option<Position>,
    ) -> Result<u64, SpillError> {
        let ack = ack.unwrap_or_default();
        let mut copied = 0u64;
        let mut scratch = Vec::new();
        let mut chunk = Vec::new();
        for (seq, path) in old {
            if *seq < ack.segment {
                continue;
            }
            let from = if *seq == ack.segment { ack.offset } else { 0 };
            let (_, bad) = v1::read(path, from, |r| {
                chunk.push(r);
                if chunk.len() >= 1000 {
                    copied += self.append_all(&chunk, &mut scratch)?;
                    chunk.clear();
                }
                Ok(())
            })?;
            copied += self.append_all(&chunk, &mut scratch)?;
            chunk.clear();
            if bad {
                tracing::warn!(path = %path.display(), "spill log (format 1): corrupt record; the rest of this segment was not recoverable");
            }
        }
        self.sync()?;
        for (_, path) in old {
            fs::remove_file(path).map_err(io_err(path))?;
        }
        tracing::info!(dir = %self.dir.display(), records = copied, "spill log upgraded from format 1 to format 2");
        Ok(copied)
    }
}

/// Check every format-2 segment of a log being opened (`current`, in
/// order) against the acknowledged state `ack`: delete those wholly
/// acknowledged, count what was found into `recovery`, and truncate a torn
/// or corrupt tail of the last one. Gives the segments kept, the first
/// sequence number seen and the highest one.
fn check_segments(
    current: &[(u64, PathBuf)],
    ack: &AckState,
    recovery: &mut Recovery,
) -> Result<(Vec<Segment>, Option<u64>, u64), SpillError> {
    let mut segments = Vec::new();
    let mut prev = ack.seq;
    let mut first_seen = None;
    let mut max_seq = ack.seq.unwrap_or(0);
    let last = current.len().saturating_sub(1);
    for (i, (seq, path)) in current.iter().enumerate() {
        if seq < &ack.at.segment {
            // Acknowledged whole: a crash came between ack and delete.
            let _ = fs::remove_file(path);
            continue;
        }
        let found = scan(path, ack.seq)?;
        let size = fs::metadata(path).map_err(io_err(path))?.len();
        recovery.corrupt_regions += found.regions.len() as u64;
        recovery.pending_records += found.seqs.len() as u64;
        first_seen = first_seen.or(found.seqs.first().copied());
        recovery.lost_records += gaps(&mut prev, &found.seqs);
        max_seq = max_seq.max(found.seqs.iter().copied().max().unwrap_or(0));
        let mut len = size;
        if found.bad_tail || size < SEGMENT_HEADER {
            if i == last {
                len = found.valid_end;
                recovery.truncated_bytes += size - len;
                if found.bad_tail {
                    recovery.truncated_records += 1;
                }
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                if size < SEGMENT_HEADER {
                    // A segment whose creation was cut short: written anew.
                    f.set_len(0).map_err(io_err(path))?;
                    f.write_all_at(&segment_header(), 0).map_err(io_err(path))?;
                    len = SEGMENT_HEADER;
                } else {
                    f.set_len(len).map_err(io_err(path))?;
                }
                f.sync_all().map_err(io_err(path))?;
                tracing::warn!(path = %path.display(), kept = len, cut = size - len, "spill log: torn or corrupt tail truncated");
            } else {
                tracing::warn!(path = %path.display(), at = ?found.regions, "spill log: corrupt region skipped; its records are counted as lost when read");
            }
        } else if !found.regions.is_empty() {
            tracing::warn!(path = %path.display(), at = ?found.regions, "spill log: corrupt region skipped; its records are counted as lost when read");
        }
        segments.push(Segment {
            seq: *seq,
            path: path.clone(),
            len,
        });
    }
    Ok((segments, first_seen, max_seq))
}
