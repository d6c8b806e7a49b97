//! The on-disk log a route's queue spills to (issue #7): an append-only,
//! segmented log of records under `<data_dir>/spill/<route>/`.
//!
//! Format 2 (issue #20):
//!
//! - Segment files `NNNNNNNNNNNNNNNNNNNN.seg` (20-digit sequence) start
//!   with a 16-byte header, [`SEGMENT_MAGIC`] and the format version, then
//!   a run of records `[magic 4][len u32 LE][seq u64 LE][crc32 u32 LE][body]`.
//!   The magic (`F5 1C E0 02`; `F5` never occurs in UTF-8 text) lets a
//!   reader find the next record after a corrupt one by scanning; the CRC
//!   covers length, sequence number and body. `seq` numbers the records of
//!   a log 1, 2, 3, … without gaps, so the records a corrupt region cost
//!   are counted exactly from the sequence numbers around it. `body` is the
//!   record's time (i64 LE), a key flag and key, then the payload. A new
//!   segment starts when the current one would exceed `segment_bytes`.
//! - `ack` is a fixed 96-byte file of two slots, written alternately in
//!   place: the newest slot with a good CRC holds the last acknowledged
//!   record's `seq` and where reading resumes. Rewriting allocated bytes
//!   needs no free space, so acknowledging works on a full disk, and the
//!   segments it frees are deleted. A log whose records are all
//!   acknowledged deletes its last segment too once it is large or a write
//!   failed, so a full disk frees completely when the sink catches up.
//! - An append that fails (ENOSPC, EIO) is cut back off the segment
//!   (truncated to the last good record), so nothing torn stays between
//!   good records; the caller counts the records it refused.
//! - Opening checks every record. A corrupt region is skipped up to the
//!   next valid record; the records it held are counted when the reader
//!   passes it (the gap in `seq`); a torn or corrupt tail of the last
//!   segment (a crash mid-write) is truncated and counts as one record (how
//!   many it held is unknowable). Nothing found stops the open.
//! - Format 1 (sluice before issue #20: no headers, no magic, a text `ack`)
//!   is upgraded in place at open: its unacknowledged records are copied
//!   into format-2 segments, then the old files are removed (a crash in
//!   between copies them again: at least once).
//! - A damaged segment header (a flipped magic or version byte) is not
//!   taken for another format when the log's other segments are format 2
//!   or format-2 records are found inside: the segment is read by
//!   scanning and the header counted as a corrupt region. Only a log whose
//!   headers all say a newer version, with no format-2 record, is refused.
//!
//! [`crate::queue`] uses it for `when_full = "spill"` and `durable = true`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::record::Record;

/// A segment file's first bytes: magic, then the format version (u32 LE)
/// and 4 reserved bytes.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SLUICESP";
/// The on-disk format this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of a segment's header.
const SEGMENT_HEADER: u64 = 16;
/// A record's first bytes.
const RECORD_MAGIC: [u8; 4] = [0xF5, 0x1C, 0xE0, 0x02];
/// Bytes before a record's body: magic, length, sequence number, checksum.
const HEADER: usize = 20;
/// Largest body accepted (a frame is at most 16 MiB; documents add a little).
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// A drained log deletes its last segment once it holds this much.
const ROLL_BYTES: u64 = 1024 * 1024;
/// Bytes of one ack slot, and the ack file (two slots).
const ACK_SLOT: usize = 48;
const ACK_FILE: usize = 2 * ACK_SLOT;
const ACK_MAGIC: &[u8; 4] = b"SLAK";

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("spill log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spill log {dir}: full ({bytes} of {max} bytes)")]
    Full { dir: PathBuf, bytes: u64, max: u64 },
    #[error("spill log {path}: record of {len} bytes is over the {MAX_BODY}-byte limit")]
    TooLarge { path: PathBuf, len: usize },
    #[error("{path} is not a spill folder: {why}")]
    NotSpillFolder { path: PathBuf, why: String },
    #[error(
        "spill log {path}: format version {version} is newer than this sluice reads ({FORMAT_VERSION})"
    )]
    NewerFormat { path: PathBuf, version: u32 },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> SpillError + '_ {
    move |source| SpillError::Io {
        path: path.to_owned(),
        source,
    }
}

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never by sluice (the kernel writes back; a power loss loses data).
    Never,
    /// After every [`SpillLog::append`] call.
    EveryBatch,
    /// When the caller says a batch is complete ([`SpillLog::flush`]): the
    /// route queue does so after each batch of frames a reader took in.
    OnFlush,
    /// At most once per this many milliseconds, on [`SpillLog::maybe_sync`].
    IntervalMs(u64),
}

#[derive(Debug, Clone)]
pub struct SpillOptions {
    pub segment_bytes: u64,
    /// Bound of all segments together; an append beyond it is refused.
    pub max_bytes: u64,
    pub fsync: Fsync,
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records written and not acknowledged: replayed before new ones.
    pub pending_records: u64,
    /// Bytes cut off the end of the last segment (torn or corrupt tail).
    pub truncated_bytes: u64,
    /// Torn or corrupt tails truncated; each counts as one lost record.
    pub truncated_records: u64,
    /// Corrupt regions found (a truncated tail is one).
    pub corrupt_regions: u64,
    /// Records lost to corrupt regions before the tail, from the gaps in
    /// their sequence numbers; counted as the reader passes them.
    pub lost_records: u64,
    /// Records of a format-1 log copied into format 2.
    pub upgraded_records: u64,
}

/// Where in the log: segment sequence number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

struct Segment {
    seq: u64,
    path: PathBuf,
    /// Bytes of the header and valid records.
    len: u64,
}

/// The acknowledged state: the last record acknowledged (`None`: nothing
/// known, e.g. a new log) and where reading resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct AckState {
    generation: u64,
    seq: Option<u64>,
    at: Position,
}

/// One batch handed out by [`SpillLog::read_batch_tracked`]: acknowledge
/// it with [`SpillLog::ack_read`] once its sink is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadToken(u64);

/// A read not yet acknowledged: where it ended, its last sequence number,
/// how many records it took, and whether its batch completed.
struct OutstandingRead {
    token: u64,
    end: Position,
    end_seq: Option<u64>,
    records: u64,
    done: bool,
}

pub struct SpillLog {
    dir: PathBuf,
    options: SpillOptions,
    segments: Vec<Segment>,
    writer: Option<(File, u64)>,
    /// Sequence number of the next record appended.
    next_seq: u64,
    /// Number of the next segment when none is left to append to.
    next_segment: u64,
    ack_file: File,
    /// Next record to read; records before `ack` are acknowledged.
    read: Position,
    ack: AckState,
    /// Sequence number of the last record read (`ack.seq` after a rewind
    /// is not gone back to: a gap is counted once).
    max_read_seq: Option<u64>,
    /// Highest sequence number read and not yet acknowledged.
    read_seq: Option<u64>,
    /// Records lost to corruption the reader passed, not yet taken.
    lost: u64,
    reader: Option<(u64, BufReader<File>)>,
    body: Vec<u8>,
    pending: u64,
    /// Records read and not yet acknowledged.
    unacked_read: u64,
    /// Reads not yet acknowledged, oldest first: several workers (the
    /// generations of a route across a reload) may read one log, and the
    /// ack advances only over the completed prefix of these.
    outstanding: std::collections::VecDeque<OutstandingRead>,
    /// Token of the next read.
    next_token: u64,
    last_sync: std::time::Instant,
    dirty: bool,
    syncs: u64,
    /// An append failed since the log was last drained.
    write_failed: bool,
    /// The last segment takes no more appends (a failed write could not
    /// be cut back).
    sealed: bool,
}

fn segment_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

fn encode(record: &Record, seq: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&record.time_nanos.to_le_bytes());
    match record.key {
        Some(k) => {
            out.push(1);
            out.extend_from_slice(&k);
        }
        None => out.push(0),
    }
    out.extend_from_slice(record.payload.as_bytes());
    let len = (out.len() - start - HEADER) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = record_crc(&out[start + 4..start + 16], &out[start + HEADER..]);
    out[start + 16..start + 20].copy_from_slice(&crc.to_le_bytes());
}

/// CRC of a record's length and sequence number (`len_seq`) and body.
fn record_crc(len_seq: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_seq);
    h.update(body);
    h.finalize()
}

fn decode(body: &[u8]) -> Option<Record> {
    let time_nanos = i64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let (key, rest) = match body.get(8)? {
        0 => (None, body.get(9..)?),
        1 => (Some(body.get(9..25)?.try_into().ok()?), body.get(25..)?),
        _ => return None,
    };
    let payload = String::from_utf8(rest.to_vec()).ok()?;
    Some(Record {
        payload,
        time_nanos,
        key,
    })
}

/// One step of reading a segment.
enum Step {
    /// A valid record of `bytes` bytes, numbered `seq`.
    Record {
        record: Record,
        seq: u64,
        bytes: u64,
    },
    /// Bytes that are no record: the next valid record starts at `next`
    /// (the reader is there), or none does before the end.
    Corrupt {
        next: Option<u64>,
    },
    End,
}

/// Read the record at `at` (the reader is there), ending before `end`:
/// `None` if what is there is not a valid record (the reader is then
/// anywhere).
fn try_record(
    r: &mut BufReader<File>,
    at: u64,
    end: u64,
    body: &mut Vec<u8>,
) -> io::Result<Option<(Record, u64, u64)>> {
    if end.saturating_sub(at) < HEADER as u64 {
        return Ok(None);
    }
    let mut header = [0u8; HEADER];
    r.read_exact(&mut header)?;
    if header[..4] != RECORD_MAGIC {
        return Ok(None);
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[8..16]);
    let seq = u64::from_le_bytes(seq);
    let crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    if len > MAX_BODY || at + (HEADER + len) as u64 > end {
        return Ok(None);
    }
    body.clear();
    body.resize(len, 0);
    r.read_exact(body)?;
    if record_crc(&header[4..16], body) != crc {
        return Ok(None);
    }
    Ok(decode(body).map(|record| (record, seq, (HEADER + len) as u64)))
}

/// Read one step at `at` (the reader is there) in a segment whose valid
/// bytes end at `end`.
fn step(r: &mut BufReader<File>, at: u64, end: u64, body: &mut Vec<u8>) -> io::Result<Step> {
    if at >= end {
        return Ok(Step::End);
    }
    if let Some((record, seq, bytes)) = try_record(r, at, end, body)? {
        return Ok(Step::Record { record, seq, bytes });
    }
    // Resynchronise: the next magic that starts a valid record.
    let mut from = at + 1;
    let mut chunk = vec![0u8; 64 * 1024];
    while from + (HEADER as u64) <= end {
        r.seek(SeekFrom::Start(from))?;
        let want = ((end - from) as usize).min(chunk.len());
        let buf = chunk.get_mut(..want).unwrap_or_default();
        r.read_exact(buf)?;
        let candidates: Vec<u64> = buf
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == RECORD_MAGIC)
            .map(|(i, _)| from + i as u64)
            .collect();
        for q in candidates {
            r.seek(SeekFrom::Start(q))?;
            if try_record(r, q, end, body)?.is_some() {
                r.seek(SeekFrom::Start(q))?;
                return Ok(Step::Corrupt { next: Some(q) });
            }
        }
        // The last 3 bytes may begin a magic that continues in the next chunk.
        from += (want as u64).saturating_sub(3).max(1);
    }
    Ok(Step::Corrupt { next: None })
}

/// Is this segment in format 2? (`Ok(false)`: format 1, no header.)
fn segment_version(path: &Path) -> Result<Option<u32>, SpillError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut header = [0u8; SEGMENT_HEADER as usize];
    match f.read_exact(&mut header) {
        Ok(()) if &header[..8] == SEGMENT_MAGIC => Ok(Some(u32::from_le_bytes([
            header[8], header[9], header[10], header[11],
        ]))),
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            // Shorter than a header: format 1 unless it begins like one
            // (a crash while a new segment was being created).
            let size = f.metadata().map_err(io_err(path))?.len() as usize;
            let n = size.min(8);
            let mut head = vec![0u8; n];
            f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
            f.read_exact(&mut head).map_err(io_err(path))?;
            if head[..] == SEGMENT_MAGIC[..n] {
                Ok(Some(FORMAT_VERSION))
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// How a segment is read, from its header and its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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
fn classify(listed: &[(u64, PathBuf)]) -> Result<Vec<Kind>, SpillError> {
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
struct Scan {
    /// End of the last valid record (the header's end if none).
    valid_end: u64,
    /// Corrupt regions: where each begins.
    regions: Vec<u64>,
    /// The segment ends in a corrupt region (no valid record after it).
    bad_tail: bool,
    /// Sequence numbers of valid records after `after`, in order.
    seqs: Vec<u64>,
}

/// Check a format-2 segment; sequence numbers at or below `after` are
/// not collected.
fn scan(path: &Path, after: Option<u64>) -> Result<Scan, SpillError> {
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
fn gaps(prev: &mut Option<u64>, seqs: &[u64]) -> u64 {
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

fn ack_slot(state: &AckState) -> [u8; ACK_SLOT] {
    let mut slot = [0u8; ACK_SLOT];
    slot[..4].copy_from_slice(ACK_MAGIC);
    slot[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    slot[8..16].copy_from_slice(&state.generation.to_le_bytes());
    // 0 stands for "nothing acknowledged" (sequence numbers start at 1).
    slot[16..24].copy_from_slice(&state.seq.unwrap_or(0).to_le_bytes());
    slot[24..32].copy_from_slice(&state.at.segment.to_le_bytes());
    slot[32..40].copy_from_slice(&state.at.offset.to_le_bytes());
    let crc = crc32fast::hash(&slot[..40]);
    slot[40..44].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn parse_ack_slot(slot: &[u8]) -> Option<AckState> {
    if slot.len() < ACK_SLOT || &slot[..4] != ACK_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes([slot[40], slot[41], slot[42], slot[43]]);
    if crc32fast::hash(&slot[..40]) != crc {
        return None;
    }
    Some(AckState {
        generation: u64_at(slot, 8),
        // 0: nothing acknowledged yet (numbering starts at 1).
        seq: Some(u64_at(slot, 16)),
        at: Position {
            segment: u64_at(slot, 24),
            offset: u64_at(slot, 32),
        },
    })
}

/// The ack file as found: format 2 (the newest good slot), format 1 text
/// `SEGMENT OFFSET`, or nothing usable.
enum AckFound {
    V2(AckState),
    V1(Position),
    None,
}

fn read_ack(dir: &Path) -> Result<AckFound, SpillError> {
    let path = dir.join("ack");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AckFound::None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    if bytes.starts_with(ACK_MAGIC) || bytes.len() == ACK_FILE {
        let newest = bytes
            .chunks(ACK_SLOT)
            .filter_map(parse_ack_slot)
            .max_by_key(|s| s.generation);
        return Ok(newest.map_or(AckFound::None, AckFound::V2));
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    Ok(match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => AckFound::V1(Position { segment, offset }),
        _ => AckFound::None,
    })
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpillError> {
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

/// Format 1 (before issue #20): `[len u32][crc32 u32][body]` records, no
/// segment header; read only to upgrade and to verify.
mod v1 {
    use super::*;

    /// Records of a format-1 segment from `from` and whether it ended in a
    /// bad record; `f` is called with each record.
    pub(super) fn read(
        path: &Path,
        from: u64,
        mut f: impl FnMut(Record) -> Result<(), SpillError>,
    ) -> Result<(u64, bool), SpillError> {
        let file = File::open(path).map_err(io_err(path))?;
        let size = file.metadata().map_err(io_err(path))?.len();
        let mut r = BufReader::new(file);
        r.seek(SeekFrom::Start(from)).map_err(io_err(path))?;
        let (mut at, mut records) = (from, 0);
        loop {
            let remaining = size.saturating_sub(at);
            if remaining == 0 {
                return Ok((records, false));
            }
            let mut header = [0u8; 8];
            if remaining < 8 || r.read_exact(&mut header).is_err() {
                return Ok((records, true));
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if len > MAX_BODY || (8 + len) as u64 > remaining {
                return Ok((records, true));
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() || crc32fast::hash(&body) != crc {
                return Ok((records, true));
            }
            let Some(record) = decode(&body) else {
                return Ok((records, true));
            };
            f(record)?;
            at += (8 + len) as u64;
            records += 1;
        }
    }
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
    fn upgrade(
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

    /// Append all of `records` (upgrade: over `max_bytes` is still an error).
    fn append_all(&mut self, records: &[Record], scratch: &mut Vec<u8>) -> Result<u64, SpillError> {
        let mut done = 0;
        while done < records.len() {
            done += self.append(&records[done..], scratch)?;
        }
        Ok(done as u64)
    }

    /// Records written and not acknowledged.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Records written and not yet read.
    pub fn unread(&self) -> u64 {
        self.pending.saturating_sub(self.unacked_read)
    }

    /// Bytes of all segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Records lost to corruption that the reader passed since the last
    /// call (each counted once).
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// Append records: as many from the front as fit within `max_bytes`
    /// (how many is returned; refused with [`SpillError::Full`] when not
    /// even the first fits). A write that fails (a full disk) is cut back
    /// off the segment, so the log holds none of the records and stays
    /// readable; the caller counts them.
    pub fn append(
        &mut self,
        records: &[Record],
        scratch: &mut Vec<u8>,
    ) -> Result<usize, SpillError> {
        scratch.clear();
        let bytes = self.bytes();
        let mut n = 0;
        for r in records {
            let before = scratch.len();
            encode(r, self.next_seq + n as u64, scratch);
            if bytes + scratch.len() as u64 > self.options.max_bytes {
                scratch.truncate(before);
                break;
            }
            n += 1;
        }
        if n == 0 {
            return Err(SpillError::Full {
                dir: self.dir.clone(),
                bytes,
                max: self.options.max_bytes,
            });
        }
        let add = scratch.len() as u64;
        let full = |s: &Segment| s.len > SEGMENT_HEADER && s.len + add > self.options.segment_bytes;
        let next_segment = self.sealed || self.segments.last().is_none_or(full);
        if self.writer.is_none() || next_segment {
            self.open_writer(next_segment)?;
        }
        let Some((file, seq)) = &mut self.writer else {
            return Ok(0);
        };
        let seq = *seq;
        let Some(segment) = self.segments.last_mut() else {
            return Ok(0);
        };
        if let Err(e) = file.write_all(scratch) {
            self.write_failed = true;
            // Cut back to the last good record; if even that fails, the
            // segment is sealed and the next append starts another (this
            // reader stops at the length known here; the next open skips
            // the torn bytes as a corrupt region that cost no record).
            if file.set_len(segment.len).is_err() {
                self.writer = None;
                self.sealed = true;
            }
            return Err(io_err(&self.dir.join(segment_name(seq)))(e));
        }
        segment.len += add;
        self.next_seq += n as u64;
        self.pending += n as u64;
        self.dirty = true;
        if self.options.fsync == Fsync::EveryBatch {
            self.sync()?;
        }
        Ok(n)
    }

    /// Open the segment to append to: the last one (after an open), or a
    /// new one when `next` or there is none.
    fn open_writer(&mut self, next: bool) -> Result<(), SpillError> {
        if self.dirty {
            self.sync()?;
        }
        let seq = match self.segments.last() {
            Some(s) if !next => s.seq,
            Some(s) => (s.seq + 1).max(self.next_segment),
            None => self.next_segment,
        };
        let path = self.dir.join(segment_name(seq));
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if self.segments.last().is_none_or(|s| s.seq != seq) {
            if let Err(e) = file.write_all(&segment_header()) {
                drop(file);
                let _ = fs::remove_file(&path);
                self.write_failed = true;
                return Err(io_err(&path)(e));
            }
            if self.options.fsync != Fsync::Never {
                // The new file's name is durable too.
                if let Ok(d) = File::open(&self.dir) {
                    let _ = d.sync_all();
                }
            }
            self.segments.push(Segment {
                seq,
                path,
                len: SEGMENT_HEADER,
            });
            self.next_segment = seq + 1;
            self.sealed = false;
        }
        self.writer = Some((file, seq));
        Ok(())
    }

    /// Force appended records to disk.
    pub fn sync(&mut self) -> Result<(), SpillError> {
        if let Some((file, seq)) = &self.writer {
            file.sync_data()
                .map_err(io_err(&self.dir.join(segment_name(*seq))))?;
        }
        self.dirty = false;
        self.syncs += 1;
        self.last_sync = std::time::Instant::now();
        Ok(())
    }

    /// Under [`Fsync::OnFlush`]: a batch is complete; sync what it wrote.
    pub fn flush(&mut self) -> Result<(), SpillError> {
        if self.options.fsync == Fsync::OnFlush && self.dirty {
            return self.sync();
        }
        Ok(())
    }

    /// How many times appended records were forced to disk.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// The fsync policy.
    pub fn fsync(&self) -> Fsync {
        self.options.fsync
    }

    /// Under [`Fsync::IntervalMs`], sync when the interval has passed.
    pub fn maybe_sync(&mut self) -> Result<(), SpillError> {
        if let Fsync::IntervalMs(ms) = self.options.fsync {
            if self.dirty && self.last_sync.elapsed().as_millis() as u64 >= ms {
                return self.sync();
            }
        }
        Ok(())
    }

    /// Read up to `max` records after the last read (not yet acknowledged).
    /// A corrupt region is skipped; the records it cost are counted (see
    /// [`SpillLog::take_lost`]).
    pub fn read_batch(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, SpillError> {
        let before = out.len();
        self.read_batch_tracked(max, out)?;
        Ok(out.len() - before)
    }

    /// [`SpillLog::read_batch`], returning the token that acknowledges
    /// exactly this read ([`SpillLog::ack_read`]); `None` when nothing was
    /// read.
    pub fn read_batch_tracked(
        &mut self,
        max: usize,
        out: &mut Vec<Record>,
    ) -> Result<Option<ReadToken>, SpillError> {
        let start = self.read;
        let result = self.read_into(max, out);
        let n = result.as_ref().map_or(0, |n| *n);
        if self.read == start {
            result?;
            return Ok(None);
        }
        let token = self.next_token;
        self.next_token += 1;
        // A read that only skipped a corrupt region or an empty tail has no
        // batch to wait for: complete at once.
        self.outstanding.push_back(OutstandingRead {
            token,
            end: self.read,
            end_seq: self.read_seq,
            records: n as u64,
            done: n == 0,
        });
        if n == 0 {
            result?;
            return Ok(None);
        }
        // Records read before an error are handed out (and acknowledged
        // through the token); the error recurs on the next read.
        if let Err(e) = result {
            tracing::warn!(error = %e, "spill log read stopped early");
        }
        Ok(Some(ReadToken(token)))
    }

    fn read_into(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, SpillError> {
        let mut n = 0;
        while n < max {
            let Some(idx) = self
                .segments
                .iter()
                .position(|s| s.seq == self.read.segment)
            else {
                // The segment read was deleted (drained): the first one left.
                match self.segments.iter().find(|s| s.seq > self.read.segment) {
                    Some(next) => {
                        self.read = Position {
                            segment: next.seq,
                            offset: SEGMENT_HEADER,
                        };
                        self.reader = None;
                        continue;
                    }
                    None => break,
                }
            };
            let seg_len = self.segments[idx].len;
            if self.read.offset >= seg_len {
                // End of this segment: on to the next, if there is one.
                match self.segments.get(idx + 1) {
                    Some(next) => {
                        self.read = Position {
                            segment: next.seq,
                            offset: SEGMENT_HEADER,
                        };
                        self.reader = None;
                        continue;
                    }
                    None => break,
                }
            }
            let path = self.segments[idx].path.clone();
            if self
                .reader
                .as_ref()
                .is_none_or(|(seq, _)| *seq != self.read.segment)
            {
                let mut f = File::open(&path).map_err(io_err(&path))?;
                f.seek(SeekFrom::Start(self.read.offset))
                    .map_err(io_err(&path))?;
                self.reader = Some((self.read.segment, BufReader::new(f)));
            }
            let Some((_, r)) = &mut self.reader else {
                break;
            };
            match step(r, self.read.offset, seg_len, &mut self.body).map_err(io_err(&path))? {
                Step::Record { record, seq, bytes } => {
                    out.push(record);
                    self.read.offset += bytes;
                    self.lost += gaps(&mut self.max_read_seq, &[seq]);
                    self.read_seq = Some(seq);
                    n += 1;
                }
                Step::Corrupt { next } => {
                    tracing::warn!(path = %path.display(), at = self.read.offset, "spill log: corrupt region skipped");
                    self.read.offset = next.unwrap_or(seg_len);
                    // Reopened at the offset: the scan moved the file's.
                    self.reader = None;
                }
                Step::End => self.read.offset = seg_len,
            }
        }
        self.unacked_read += n as u64;
        Ok(n)
    }

    /// The sink took everything read so far: persist that (in place: no
    /// free space needed) and delete segments wholly acknowledged.
    pub fn ack(&mut self) -> Result<(), SpillError> {
        for r in &mut self.outstanding {
            r.done = true;
        }
        self.ack_done()
    }

    /// The sink is done with the batch of `token` (written, rejected or
    /// given up). The ack advances over the longest prefix of completed
    /// reads only: a batch another worker still holds (read earlier) keeps
    /// it, and everything after, unacknowledged (replayed after a restart).
    pub fn ack_read(&mut self, token: ReadToken) -> Result<(), SpillError> {
        if let Some(r) = self.outstanding.iter_mut().find(|r| r.token == token.0) {
            r.done = true;
        }
        self.ack_done()
    }

    /// Persist the ack at the end of the completed prefix of reads.
    fn ack_done(&mut self) -> Result<(), SpillError> {
        let mut end = None;
        let mut records = 0;
        while self.outstanding.front().is_some_and(|r| r.done) {
            if let Some(r) = self.outstanding.pop_front() {
                records += r.records;
                end = Some((r.end, r.end_seq));
            }
        }
        let Some((at, end_seq)) = end else {
            return Ok(());
        };
        if at == self.ack.at {
            return Ok(());
        }
        let state = AckState {
            generation: self.ack.generation + 1,
            seq: end_seq.or(self.ack.seq),
            at,
        };
        let path = self.dir.join("ack");
        let slot = (state.generation % 2) * ACK_SLOT as u64;
        self.ack_file
            .write_all_at(&ack_slot(&state), slot)
            .map_err(io_err(&path))?;
        if self.options.fsync != Fsync::Never {
            self.ack_file.sync_data().map_err(io_err(&path))?;
        }
        self.ack = state;
        self.pending = self.pending.saturating_sub(records);
        self.unacked_read = self.unacked_read.saturating_sub(records);
        let writing = self.writer.as_ref().map(|(_, s)| *s);
        let at = self.ack.at;
        // Drained: the last segment goes too once it is large or a write
        // failed (a full disk frees completely).
        let drained = self.pending == 0
            && self.segments.last().is_some_and(|s| {
                s.seq == at.segment
                    && at.offset >= s.len
                    && (self.write_failed || s.len >= ROLL_BYTES)
            });
        if drained {
            self.writer = None;
            self.reader = None;
            self.dirty = false;
            self.write_failed = false;
        }
        self.segments.retain(|s| {
            let done = drained || (s.seq < at.segment && Some(s.seq) != writing);
            if done {
                let _ = fs::remove_file(&s.path);
            }
            !done
        });
        Ok(())
    }

    /// Records read but not acknowledged go back to be read again (the
    /// sink failed them).
    pub fn rewind(&mut self) {
        self.read = self.ack.at;
        self.read_seq = None;
        self.reader = None;
        self.unacked_read = 0;
        self.outstanding.clear();
    }
}

fn segment_header() -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// What [`verify`] found for one route's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
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
fn is_route_log(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name == "ack" || name.ends_with(".seg")
        })
    })
}

/// The spill folder `dir` names: `dir/spill` for a data dir, or `dir`
/// itself when it holds route logs and nothing else; anything else is
/// refused (a dead-letter folder must never pass for routes).
pub fn spill_folder(dir: &Path) -> Result<PathBuf, SpillError> {
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
pub fn verify(dir: &Path) -> Result<Vec<VerifyReport>, SpillError> {
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

fn verify_route(dir: &Path) -> Result<VerifyReport, SpillError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            payload: format!("record {i} {}", "x".repeat((i % 7) as usize)),
            time_nanos: i as i64,
            key: (i % 2 == 0).then_some([i as u8; 16]),
        }
    }

    fn options(segment_bytes: u64) -> SpillOptions {
        SpillOptions {
            segment_bytes,
            max_bytes: 1 << 30,
            fsync: Fsync::EveryBatch,
        }
    }

    fn read_all(log: &mut SpillLog) -> Vec<Record> {
        let mut out = Vec::new();
        while log.read_batch(7, &mut out).unwrap() > 0 {}
        out
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, rec0) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert_eq!(rec0, Recovery::default());
        for i in 0..50 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        assert!(log.segments.len() > 5, "{} segments", log.segments.len());
        assert_eq!(log.pending(), 50);
        let got = read_all(&mut log);
        assert_eq!(got, (0..50).map(rec).collect::<Vec<_>>());
        drop(log);
        // Nothing acknowledged: all 50 are replayed.
        let (mut log, recovery) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert_eq!(recovery.pending_records, 50);
        assert_eq!(read_all(&mut log).len(), 50);
    }

    #[test]
    fn an_ack_covers_only_completed_reads_in_a_contiguous_prefix() {
        // Two workers (old and new generation after a reload) read one log:
        // the later batch completing must not acknowledge the earlier one.
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir.path(), options(200)).unwrap();
        for i in 0..30 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        let (mut held, mut done, mut third) = (Vec::new(), Vec::new(), Vec::new());
        let _t1 = log.read_batch_tracked(10, &mut held).unwrap().unwrap();
        let t2 = log.read_batch_tracked(10, &mut done).unwrap().unwrap();
        log.ack_read(t2).unwrap();
        assert_eq!(
            log.pending(),
            30,
            "the held batch keeps everything after it"
        );
        drop(log);
        let (mut log, recovery) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert_eq!(recovery.pending_records, 30);
        assert_eq!(read_all(&mut log), (0..30).map(rec).collect::<Vec<_>>());
        drop(log);
        // Completed out of order, the prefix advances once the first is done.
        let (mut log, _) = SpillLog::open(dir.path(), options(200)).unwrap();
        held.clear();
        done.clear();
        let t1b = log.read_batch_tracked(10, &mut held).unwrap().unwrap();
        let t2b = log.read_batch_tracked(10, &mut done).unwrap().unwrap();
        let _t3 = log.read_batch_tracked(10, &mut third).unwrap().unwrap();
        log.ack_read(t2b).unwrap();
        assert_eq!(log.pending(), 30);
        log.ack_read(t1b).unwrap();
        assert_eq!(log.pending(), 10, "reads 1 and 2 acknowledged, read 3 not");
        drop(log);
        let (mut log, recovery) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert_eq!(recovery.pending_records, 10);
        assert_eq!(read_all(&mut log), (20..30).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn acknowledged_records_are_not_replayed_and_their_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir.path(), options(200)).unwrap();
        for i in 0..40 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        let mut first = Vec::new();
        log.read_batch(25, &mut first).unwrap();
        log.ack().unwrap();
        assert_eq!(log.pending(), 15);
        let segments_left = list_segments(dir.path()).unwrap().len();
        assert!(segments_left < log.segments.len() + 1 && segments_left < 8);
        // A failed batch is read again after rewind.
        let mut again = Vec::new();
        log.read_batch(5, &mut again).unwrap();
        log.rewind();
        drop(log);
        let (mut log, recovery) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert_eq!(recovery.pending_records, 15);
        assert_eq!(read_all(&mut log), (25..40).map(rec).collect::<Vec<_>>());
        // Appends after reopening follow the replayed ones.
        log.append(&[rec(99)], &mut scratch).unwrap();
        let mut tail = Vec::new();
        log.read_batch(10, &mut tail).unwrap();
        assert_eq!(tail, vec![rec(99)]);
    }

    #[test]
    fn a_torn_tail_is_truncated_counted_and_appending_goes_on() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("route");
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(&dir, options(1 << 20)).unwrap();
        for i in 0..10 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        drop(log);
        let seg = list_segments(&dir).unwrap()[0].1.clone();
        let good = fs::metadata(&seg).unwrap().len();
        // A crash mid-write: half a header and garbage.
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&[0x20, 0, 0, 0, 0xde, 0xad, 0xbe])
            .unwrap();
        let report = verify(data.path()).unwrap();
        assert_eq!(report[0].route, "route");
        assert_eq!(report[0].corrupt, vec![(seg.display().to_string(), good)]);
        assert_eq!(report[0].pending_records, 10);
        let (mut log, recovery) = SpillLog::open(&dir, options(1 << 20)).unwrap();
        assert_eq!(
            recovery,
            Recovery {
                pending_records: 10,
                truncated_bytes: 7,
                truncated_records: 1,
                corrupt_regions: 1,
                ..Recovery::default()
            }
        );
        assert_eq!(fs::metadata(&seg).unwrap().len(), good);
        log.append(&[rec(10)], &mut scratch).unwrap();
        assert_eq!(read_all(&mut log), (0..11).map(rec).collect::<Vec<_>>());
    }

    /// A flipped bit costs exactly the record it hit: the reader
    /// resynchronises at the next record and counts one lost, in the
    /// middle of a segment and at the end of a segment that is not the
    /// last; `verify` reports the same.
    #[test]
    fn a_flipped_bit_costs_only_its_record_and_is_counted() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("r");
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(&dir, options(600)).unwrap();
        for i in 0..40 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        drop(log);
        let segs = list_segments(&dir).unwrap();
        assert!(segs.len() >= 3, "{segs:?}");
        // In the middle of the first segment, and in the last record of
        // the second.
        let hit_first = |path: &Path, needle: &str| {
            let mut bytes = fs::read(path).unwrap();
            let at = bytes
                .windows(needle.len())
                .rposition(|w| w == needle.as_bytes())
                .unwrap();
            bytes[at + 2] ^= 0x40;
            fs::write(path, &bytes).unwrap();
        };
        let second: Vec<Record> = {
            let (mut log, _) = SpillLog::open(&dir, options(600)).unwrap();
            read_all(&mut log)
        };
        let first_of_second = (0..40)
            .find(|i| {
                fs::read(&segs[1].1)
                    .unwrap()
                    .windows(rec(*i).payload.len())
                    .any(|w| w == rec(*i).payload.as_bytes())
            })
            .unwrap();
        let last_of_second = (first_of_second..40)
            .take_while(|i| {
                fs::read(&segs[1].1)
                    .unwrap()
                    .windows(rec(*i).payload.len())
                    .any(|w| w == rec(*i).payload.as_bytes())
            })
            .last()
            .unwrap();
        assert_eq!(second.len(), 40);
        hit_first(&segs[0].1, "record 2 ");
        hit_first(&segs[1].1, &format!("record {last_of_second} "));
        let report = verify(data.path()).unwrap();
        assert_eq!(report[0].lost_records, 2, "{report:?}");
        assert_eq!(report[0].pending_records, 38);
        assert_eq!(report[0].corrupt.len(), 2);
        let (mut log, recovery) = SpillLog::open(&dir, options(600)).unwrap();
        assert_eq!((recovery.corrupt_regions, recovery.lost_records), (2, 2));
        assert_eq!(recovery.pending_records, 38);
        let got = read_all(&mut log);
        let want: Vec<Record> = (0..40)
            .filter(|&i| i != 2 && i != last_of_second)
            .map(rec)
            .collect();
        assert_eq!(got, want);
        assert_eq!(log.take_lost(), 2);
        // Read again after a rewind: counted once.
        log.rewind();
        read_all(&mut log);
        assert_eq!(log.take_lost(), 0);
    }

    /// Garbage between records (a write that could not be cut back) is
    /// skipped and costs nothing: no sequence number is missing.
    #[test]
    fn torn_bytes_between_records_cost_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        log.append(&[rec(0), rec(1)], &mut scratch).unwrap();
        drop(log);
        let seg = list_segments(dir.path()).unwrap()[0].1.clone();
        let mut torn = Vec::new();
        encode(&rec(2), 3, &mut torn);
        torn.truncate(torn.len() - 3);
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        let (mut log, _) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        // The torn tail was cut; now torn bytes in the middle.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&torn).unwrap();
        log.segments[0].len += torn.len() as u64;
        log.writer = None;
        log.append(&[rec(2)], &mut scratch).unwrap();
        assert_eq!(read_all(&mut log), vec![rec(0), rec(1), rec(2)]);
        assert_eq!(log.take_lost(), 0);
    }

    /// Acknowledging rewrites the fixed-size ack file in place (it needs
    /// no free space), and a drained log deletes its last segment once a
    /// write failed; the numbering goes on after a reopen.
    #[test]
    fn ack_is_in_place_and_a_drained_log_frees_its_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        let ack = dir.path().join("ack");
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let before = ino(&ack);
        assert_eq!(fs::metadata(&ack).unwrap().len(), ACK_FILE as u64);
        for i in 0..5 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        let mut out = Vec::new();
        log.read_batch(3, &mut out).unwrap();
        log.ack().unwrap();
        assert_eq!(ino(&ack), before, "rewritten in place, not replaced");
        assert_eq!(fs::metadata(&ack).unwrap().len(), ACK_FILE as u64);
        log.write_failed = true;
        log.read_batch(10, &mut out).unwrap();
        log.ack().unwrap();
        assert_eq!(log.pending(), 0);
        assert!(list_segments(dir.path()).unwrap().is_empty(), "drained");
        log.append(&[rec(5)], &mut scratch).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap()[0].0, 2);
        drop(log);
        let (mut log, recovery) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        assert_eq!(recovery.pending_records, 1);
        assert_eq!(read_all(&mut log), vec![rec(5)]);
        assert_eq!(
            log.take_lost(),
            0,
            "sequence numbers go on across the drain"
        );
        log.ack().unwrap();
        drop(log);
        let (_, recovery) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        assert_eq!(recovery.pending_records, 0);
    }

    /// A format-1 log (sluice before issue #20) is upgraded at open: its
    /// unacknowledged records come back, in order, and its files go.
    #[test]
    fn a_format_1_log_is_upgraded() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("r");
        fs::create_dir_all(&dir).unwrap();
        let v1 = |records: std::ops::Range<u64>| {
            let mut out = Vec::new();
            for i in records {
                let mut body = Vec::new();
                encode(&rec(i), 0, &mut body);
                let body = &body[HEADER..];
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
                out.extend_from_slice(body);
            }
            out
        };
        fs::write(dir.join(segment_name(1)), v1(0..5)).unwrap();
        fs::write(dir.join(segment_name(2)), v1(5..9)).unwrap();
        // Acknowledged: segment 2 up to its second record.
        let two = v1(5..7).len();
        fs::write(dir.join("ack"), format!("2 {two}")).unwrap();
        let report = verify(data.path()).unwrap();
        assert_eq!((report[0].format, report[0].pending_records), (1, 2));
        let (mut log, recovery) = SpillLog::open(&dir, options(1 << 20)).unwrap();
        assert_eq!(
            (recovery.upgraded_records, recovery.pending_records),
            (2, 2)
        );
        assert_eq!(read_all(&mut log), vec![rec(7), rec(8)]);
        let segs = list_segments(&dir).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segment_version(&segs[0].1).unwrap(), Some(FORMAT_VERSION));
        log.ack().unwrap();
        drop(log);
        let (_, recovery) = SpillLog::open(&dir, options(1 << 20)).unwrap();
        assert_eq!(recovery.pending_records, 0);
    }

    /// `verify` takes a data dir (its `spill` folder) or a spill folder,
    /// and refuses anything else.
    #[test]
    fn verify_finds_the_spill_folder_and_refuses_others() {
        let data = tempfile::tempdir().unwrap();
        SpillLog::open(&data.path().join("spill/a"), options(1 << 20)).unwrap();
        fs::create_dir_all(data.path().join("dead-letter")).unwrap();
        for dir in [data.path().to_owned(), data.path().join("spill")] {
            let r = verify(&dir).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].route, "a");
        }
        for dir in [
            data.path().join("dead-letter"),
            data.path().join("spill/a"),
            data.path().join("nowhere"),
        ] {
            let e = verify(&dir).unwrap_err().to_string();
            assert!(e.contains("is not a spill folder"), "{e}");
        }
        fs::create_dir_all(data.path().join("spill/stray")).unwrap();
        let e = verify(data.path()).unwrap_err().to_string();
        assert!(e.contains("stray holds no spill log"), "{e}");
    }

    #[test]
    fn on_flush_syncs_once_per_batch_and_only_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let mut o = options(1 << 20);
        o.fsync = Fsync::OnFlush;
        let (mut log, _) = SpillLog::open(dir.path(), o).unwrap();
        for i in 0..5 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        assert_eq!(log.syncs(), 0);
        log.flush().unwrap();
        log.flush().unwrap();
        assert_eq!(log.syncs(), 1, "one batch, one fsync; nothing new, none");
        log.append(&[rec(5)], &mut scratch).unwrap();
        log.flush().unwrap();
        assert_eq!(log.syncs(), 2);
    }

    #[test]
    fn the_byte_bound_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(
            dir.path(),
            SpillOptions {
                segment_bytes: 100,
                max_bytes: 300,
                fsync: Fsync::Never,
            },
        )
        .unwrap();
        let mut ok = 0;
        for i in 0..100 {
            match log.append(&[rec(i)], &mut scratch) {
                Ok(n) => ok += n,
                Err(SpillError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            ok > 3 && log.bytes() <= 300,
            "{ok} records, {} bytes",
            log.bytes()
        );
    }

    #[test]
    fn garbage_files_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let route = dir.path().join("r");
        fs::create_dir_all(&route).unwrap();
        let mut seed = 12345u64;
        for n in 0..50 {
            let len = (seed % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            fs::write(route.join(segment_name(n + 1)), &bytes).unwrap();
        }
        fs::write(route.join("ack"), "not numbers").unwrap();
        verify(dir.path()).unwrap();
        let (mut log, _) = SpillLog::open(&route, options(1 << 20)).unwrap();
        read_all(&mut log);
        drop(log);
        // Format 2 headers before garbage, and garbage with record magics.
        for n in 0..50 {
            let mut bytes = segment_header().to_vec();
            for k in 0..(seed % 200) as usize {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if k % 17 == 0 {
                    bytes.extend_from_slice(&RECORD_MAGIC);
                }
                bytes.push(seed as u8);
            }
            fs::write(route.join(segment_name(100 + n)), &bytes).unwrap();
        }
        fs::write(route.join("ack"), [0xffu8; ACK_FILE]).unwrap();
        verify(dir.path()).unwrap();
        let (mut log, _) = SpillLog::open(&route, options(1 << 20)).unwrap();
        read_all(&mut log);
    }

    /// A log of 30 records over several segments; returns its segments.
    fn log_of_30(dir: &Path) -> Vec<(u64, PathBuf)> {
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir, options(200)).unwrap();
        for i in 0..30 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        log.flush().unwrap();
        drop(log);
        list_segments(dir).unwrap()
    }

    fn poke(path: &Path, at: u64, byte: u8) {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(&[byte], at).unwrap();
    }

    #[test]
    fn a_flipped_version_byte_is_a_damaged_header_not_a_newer_format() {
        let dir = tempfile::tempdir().unwrap();
        let segs = log_of_30(dir.path());
        assert!(segs.len() >= 3, "several segments: {}", segs.len());
        poke(&segs[0].1, 8, 3);
        let report = verify_route(dir.path()).unwrap();
        assert_eq!(report.pending_records, 30);
        assert!(!report.corrupt.is_empty(), "the damage is reported");
        let (mut log, recovery) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert_eq!(recovery.pending_records, 30);
        assert!(recovery.corrupt_regions >= 1, "the damage is counted");
        assert_eq!(read_all(&mut log), (0..30).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_single_segment_with_a_flipped_version_byte_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        for i in 0..5 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        log.flush().unwrap();
        drop(log);
        let segs = list_segments(dir.path()).unwrap();
        assert_eq!(segs.len(), 1);
        poke(&segs[0].1, 8, 3);
        let (mut log, recovery) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        assert_eq!(recovery.pending_records, 5);
        assert_eq!(read_all(&mut log), (0..5).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_flipped_magic_in_a_middle_segment_is_not_upgraded_away() {
        let dir = tempfile::tempdir().unwrap();
        let segs = log_of_30(dir.path());
        assert!(segs.len() >= 3, "several segments: {}", segs.len());
        let middle = &segs[segs.len() / 2].1;
        poke(middle, 0, b'X');
        let (mut log, recovery) = SpillLog::open(dir.path(), options(200)).unwrap();
        assert!(middle.exists(), "the damaged segment is kept");
        assert_eq!(recovery.upgraded_records, 0, "not taken for format 1");
        assert_eq!(recovery.pending_records, 30);
        assert_eq!(read_all(&mut log), (0..30).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_genuinely_newer_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut header = segment_header();
        header[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs::write(dir.path().join(segment_name(1)), header).unwrap();
        assert!(matches!(
            SpillLog::open(dir.path(), options(200)),
            Err(SpillError::NewerFormat { .. })
        ));
    }
}
