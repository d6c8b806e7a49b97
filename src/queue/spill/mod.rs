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
//!   record's time (i64 LE), a flag byte (bit 0: a document key follows;
//!   bit 1: a Kafka part follows it, see `kafka_part`) and what it says,
//!   then the payload. Records without a Kafka part are byte for byte
//!   what sluice wrote before the Kafka sink (flag 0 or 1); a record with
//!   one (flag 2 or 3) is corrupt to an older sluice. A new
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

mod ack;
mod kafka_part;
mod log;
mod recover;
mod segment;
#[cfg(test)]
mod tests;
mod v1;
pub(crate) mod verify;

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use crate::record::Record;

/// A segment file's first bytes: magic, then the format version (u32 LE)
/// and 4 reserved bytes.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"SLUICESP";
/// The on-disk format this build writes.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// Bytes of a segment's header.
const SEGMENT_HEADER: u64 = 16;
/// A record's first bytes.
const RECORD_MAGIC: [u8; 4] = [0xF5, 0x1C, 0xE0, 0x02];
/// Bytes before a record's body: magic, length, sequence number, checksum.
const HEADER: usize = 20;
/// Largest body accepted (a frame is at most 16 MiB; documents add a little).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;
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

/// When appended records are forced to disk (a setting: it lives in config).
pub use crate::config::Fsync;

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
pub(crate) struct Position {
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

use ack::*;
use recover::*;
use segment::*;
