//! The on-disk log a route's queue spills to (issue #7): an append-only,
//! segmented log of records under `<data_dir>/<route>/`.
//!
//! - Segment files `NNNNNNNNNNNNNNNNNNNN.seg` (20-digit sequence), each a run
//!   of records `[len u32 LE][crc32 u32 LE][body]`; `body` is the record's
//!   time (i64 LE), a key flag and key, then the payload. A new segment
//!   starts when the current one would exceed `segment_bytes`.
//! - `ack` holds `SEGMENT OFFSET`: every record before it was acknowledged
//!   by the sink. It is replaced atomically (write, fsync, rename).
//!   Segments wholly before it are deleted.
//! - Opening a log checks every record: a torn or corrupt tail of the last
//!   segment (a crash mid-write) is truncated; a bad record inside an
//!   earlier segment ends that segment's readable part. Both are counted in
//!   [`Recovery`] and never stop the open.
//!
//! [`crate::queue`] uses it for `when_full = "spill"` and `durable = true`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::route::Record;

/// Bytes before a record's body: length and checksum.
const HEADER: usize = 8;
/// Largest body accepted (a frame is at most 16 MiB; documents add a little).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("spill log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spill log {dir}: full ({bytes} of {max} bytes)")]
    Full { dir: PathBuf, bytes: u64, max: u64 },
    #[error("spill log {path}: record of {len} bytes is over the {MAX_BODY}-byte limit")]
    TooLarge { path: PathBuf, len: usize },
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
    /// Bad records found (each ends the readable part of its segment).
    pub corrupt_records: u64,
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
    /// Bytes of valid records.
    len: u64,
}

pub struct SpillLog {
    dir: PathBuf,
    options: SpillOptions,
    segments: Vec<Segment>,
    writer: Option<(File, u64)>,
    /// Next record to read; records before `ack` are acknowledged.
    read: Position,
    ack: Position,
    reader: Option<(u64, BufReader<File>)>,
    pending: u64,
    /// Records read and not yet acknowledged.
    unacked_read: u64,
    last_sync: std::time::Instant,
    dirty: bool,
    syncs: u64,
}

fn segment_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.extend_from_slice(&record.time_nanos.to_le_bytes());
    match record.key {
        Some(k) => {
            out.push(1);
            out.extend_from_slice(&k);
        }
        None => out.push(0),
    }
    out.extend_from_slice(record.payload.as_bytes());
    let body = &out[start + HEADER..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
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

/// Read one record at the reader's position: `Ok(None)` at a clean end,
/// `Err(())` for a torn or corrupt record.
fn read_record(r: &mut impl Read, remaining: u64) -> Result<Option<(Record, u64)>, ()> {
    if remaining == 0 {
        return Ok(None);
    }
    if remaining < HEADER as u64 {
        return Err(());
    }
    let mut header = [0u8; HEADER];
    r.read_exact(&mut header).map_err(|_| ())?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_BODY || (HEADER + len) as u64 > remaining {
        return Err(());
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|_| ())?;
    if crc32fast::hash(&body) != crc {
        return Err(());
    }
    let record = decode(&body).ok_or(())?;
    Ok(Some((record, (HEADER + len) as u64)))
}

/// Valid length and record count of a segment file from `from`; whether it
/// ended in a bad record.
fn scan(path: &Path, from: u64) -> Result<(u64, u64, bool), SpillError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(from)).map_err(io_err(path))?;
    let (mut at, mut records) = (from, 0);
    loop {
        match read_record(&mut r, size.saturating_sub(at)) {
            Ok(None) => return Ok((at, records, false)),
            Ok(Some((_, n))) => {
                at += n;
                records += 1;
            }
            Err(()) => return Ok((at, records, true)),
        }
    }
}

/// Records of a segment after the ack position: `records` (from the full
/// check) unless the ack stands inside this segment, which is read again
/// from there.
fn pending_in(
    path: &Path,
    seq: u64,
    ack: Position,
    len: u64,
    records: u64,
) -> Result<u64, SpillError> {
    if seq == ack.segment && ack.offset > 0 {
        Ok(scan(path, ack.offset.min(len))?.1)
    } else {
        Ok(records)
    }
}

fn read_ack(dir: &Path) -> Result<Position, SpillError> {
    let path = dir.join("ack");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mut parts = text.split_whitespace().map(str::parse::<u64>);
            match (parts.next(), parts.next()) {
                (Some(Ok(segment)), Some(Ok(offset))) => Ok(Position { segment, offset }),
                // An unreadable ack file: replay everything (at least once).
                _ => Ok(Position::default()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Position::default()),
        Err(e) => Err(io_err(&path)(e)),
    }
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

impl SpillLog {
    /// Open (or create) the log in `dir`, checking every record.
    pub fn open(dir: &Path, options: SpillOptions) -> Result<(SpillLog, Recovery), SpillError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let ack = read_ack(dir)?;
        let mut recovery = Recovery::default();
        let mut segments = Vec::new();
        let listed = list_segments(dir)?;
        let last = listed.len().saturating_sub(1);
        for (i, (seq, path)) in listed.into_iter().enumerate() {
            if seq < ack.segment {
                // Acknowledged whole: a crash came between ack and delete.
                let _ = fs::remove_file(&path);
                continue;
            }
            let (len, records, bad) = scan(&path, 0)?;
            let size = fs::metadata(&path).map_err(io_err(&path))?.len();
            if bad {
                recovery.corrupt_records += 1;
                if i == last {
                    recovery.truncated_bytes += size - len;
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    f.set_len(len).map_err(io_err(&path))?;
                    f.sync_all().map_err(io_err(&path))?;
                    tracing::warn!(path = %path.display(), kept = len, cut = size - len, "spill log: torn or corrupt tail truncated");
                } else {
                    tracing::warn!(path = %path.display(), readable = len, "spill log: corrupt record; the rest of this segment is skipped");
                }
            }
            recovery.pending_records += pending_in(&path, seq, ack, len, records)?;
            segments.push(Segment { seq, path, len });
        }
        let read = if segments.first().is_some_and(|s| s.seq == ack.segment) {
            ack
        } else {
            Position {
                segment: segments.first().map_or(1, |s| s.seq),
                offset: 0,
            }
        };
        let log = SpillLog {
            dir: dir.to_owned(),
            options,
            segments,
            writer: None,
            read,
            ack: read,
            reader: None,
            pending: recovery.pending_records,
            unacked_read: 0,
            last_sync: std::time::Instant::now(),
            dirty: false,
            syncs: 0,
        };
        Ok((log, recovery))
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

    /// Append records; refused whole with [`SpillError::Full`] when they
    /// would take the log over `max_bytes`.
    pub fn append(&mut self, records: &[Record], scratch: &mut Vec<u8>) -> Result<(), SpillError> {
        scratch.clear();
        for r in records {
            encode(r, scratch);
        }
        let bytes = self.bytes();
        if bytes + scratch.len() as u64 > self.options.max_bytes {
            return Err(SpillError::Full {
                dir: self.dir.clone(),
                bytes,
                max: self.options.max_bytes,
            });
        }
        let add = scratch.len() as u64;
        let full = |s: &Segment| s.len > 0 && s.len + add > self.options.segment_bytes;
        let next_segment = self.segments.last().is_none_or(full);
        if self.writer.is_none() || next_segment {
            if self.dirty {
                self.sync()?;
            }
            let seq = match self.segments.last() {
                // The last segment after an open, while it has room.
                Some(s) if !next_segment => s.seq,
                Some(s) => s.seq + 1,
                None => self.read.segment.max(1),
            };
            let path = self.dir.join(segment_name(seq));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            if self.segments.last().is_none_or(|s| s.seq != seq) {
                self.segments.push(Segment { seq, path, len: 0 });
            }
            self.writer = Some((file, seq));
        }
        let Some((file, seq)) = &mut self.writer else {
            return Ok(());
        };
        let seq = *seq;
        let path = self.dir.join(segment_name(seq));
        file.write_all(scratch).map_err(io_err(&path))?;
        if let Some(s) = self.segments.last_mut() {
            s.len += scratch.len() as u64;
        }
        self.pending += records.len() as u64;
        self.dirty = true;
        if self.options.fsync == Fsync::EveryBatch {
            self.sync()?;
        }
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
    pub fn read_batch(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, SpillError> {
        let mut n = 0;
        while n < max {
            let Some(idx) = self
                .segments
                .iter()
                .position(|s| s.seq == self.read.segment)
            else {
                break;
            };
            let seg_len = self.segments[idx].len;
            if self.read.offset >= seg_len {
                // End of this segment: on to the next, if there is one.
                match self.segments.get(idx + 1) {
                    Some(next) => {
                        self.read = Position {
                            segment: next.seq,
                            offset: 0,
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
            match read_record(r, seg_len - self.read.offset) {
                Ok(Some((record, len))) => {
                    out.push(record);
                    self.read.offset += len;
                    n += 1;
                }
                // Checked at open; a record written since cannot be bad
                // unless the disk lies: skip the rest of the segment.
                Ok(None) | Err(()) => {
                    self.read.offset = seg_len;
                }
            }
        }
        self.unacked_read += n as u64;
        Ok(n)
    }

    /// The sink took everything read so far: persist that and delete
    /// segments wholly acknowledged.
    pub fn ack(&mut self) -> Result<(), SpillError> {
        if self.read == self.ack {
            return Ok(());
        }
        let path = self.dir.join("ack");
        let tmp = self.dir.join("ack.tmp");
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            write!(f, "{} {}", self.read.segment, self.read.offset).map_err(io_err(&tmp))?;
            if self.options.fsync != Fsync::Never {
                f.sync_all().map_err(io_err(&tmp))?;
            }
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.ack = self.read;
        self.pending = self.pending.saturating_sub(self.unacked_read);
        self.unacked_read = 0;
        let writing = self.writer.as_ref().map(|(_, s)| *s);
        let ack = self.ack;
        self.segments.retain(|s| {
            let done = s.seq < ack.segment && Some(s.seq) != writing;
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
        self.read = self.ack;
        self.reader = None;
        self.unacked_read = 0;
    }
}

/// What [`verify`] found for one route's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub route: String,
    pub segments: usize,
    pub bytes: u64,
    pub pending_records: u64,
    /// Segments with a bad record, and the valid length before it.
    pub corrupt: Vec<(String, u64)>,
}

/// Read every route's log under `data_dir` without changing anything.
pub fn verify(data_dir: &Path) -> Result<Vec<VerifyReport>, SpillError> {
    let mut reports = Vec::new();
    let mut dirs: Vec<PathBuf> = fs::read_dir(data_dir)
        .map_err(io_err(data_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let ack = read_ack(&dir)?;
        let mut report = VerifyReport {
            route: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            segments: 0,
            bytes: 0,
            pending_records: 0,
            corrupt: Vec::new(),
        };
        for (seq, path) in list_segments(&dir)? {
            if seq < ack.segment {
                continue;
            }
            report.segments += 1;
            let (len, records, bad) = scan(&path, 0)?;
            report.bytes += len;
            if bad {
                report.corrupt.push((path.display().to_string(), len));
            }
            report.pending_records += pending_in(&path, seq, ack, len, records)?;
        }
        reports.push(report);
    }
    Ok(reports)
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
                corrupt_records: 1
            }
        );
        assert_eq!(fs::metadata(&seg).unwrap().len(), good);
        log.append(&[rec(10)], &mut scratch).unwrap();
        assert_eq!(read_all(&mut log), (0..11).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        let (mut log, _) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        for i in 0..5 {
            log.append(&[rec(i)], &mut scratch).unwrap();
        }
        drop(log);
        let seg = list_segments(dir.path()).unwrap()[0].1.clone();
        let mut bytes = fs::read(&seg).unwrap();
        let third = bytes.len() * 3 / 5 + 12;
        bytes[third] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        let (mut log, recovery) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
        assert_eq!(recovery.corrupt_records, 1);
        let got = read_all(&mut log);
        assert!(got.len() < 5 && got == (0..got.len() as u64).map(rec).collect::<Vec<_>>());
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
                Ok(()) => ok += 1,
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
    }
}
