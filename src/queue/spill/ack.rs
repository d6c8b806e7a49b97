//! The ack file (two slots written alternately in place) and
//! acknowledging what the sink is done with.

use std::fs::{self};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::*;

pub(super) fn ack_slot(state: &AckState) -> [u8; ACK_SLOT] {
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

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

pub(super) fn parse_ack_slot(slot: &[u8]) -> Option<AckState> {
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
pub(super) enum AckFound {
    V2(AckState),
    V1(Position),
    None,
}

pub(super) fn read_ack(dir: &Path) -> Result<AckFound, SpillError> {
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

impl SpillLog {
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
    pub(super) fn ack_done(&mut self) -> Result<(), SpillError> {
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
