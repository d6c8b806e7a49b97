//! Appending records and reading them back in batches.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};

use super::*;

impl SpillLog {
    /// Append all of `records` (upgrade: over `max_bytes` is still an error).
    pub(super) fn append_all(
        &mut self,
        records: &[Record],
        scratch: &mut Vec<u8>,
    ) -> Result<u64, SpillError> {
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
    pub(super) fn open_writer(&mut self, next: bool) -> Result<(), SpillError> {
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

    /// Read on from the first record of segment `seq` (its reader is
    /// opened when read).
    fn read_from_start_of(&mut self, seq: u64) {
        self.read = Position {
            segment: seq,
            offset: SEGMENT_HEADER,
        };
        self.reader = None;
    }

    pub(super) fn read_into(
        &mut self,
        max: usize,
        out: &mut Vec<Record>,
    ) -> Result<usize, SpillError> {
        let mut n = 0;
        while n < max {
            let Some(idx) = self
                .segments
                .iter()
                .position(|s| s.seq == self.read.segment)
            else {
                // The segment read was deleted (drained): the first one left.
                let next = self.segments.iter().find(|s| s.seq > self.read.segment);
                match next.map(|s| s.seq) {
                    Some(seq) => {
                        self.read_from_start_of(seq);
                        continue;
                    }
                    None => break,
                }
            };
            let seg_len = self.segments[idx].len;
            if self.read.offset >= seg_len {
                // End of this segment: on to the next, if there is one.
                match self.segments.get(idx + 1).map(|s| s.seq) {
                    Some(seq) => {
                        self.read_from_start_of(seq);
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
}
