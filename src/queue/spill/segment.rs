//! The segment format: file names, a segment's header, one record's
//! encoding (magic, length, sequence number, CRC, body) and reading the
//! next record back.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::*;

pub(super) fn segment_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

pub(super) fn encode(record: &Record, seq: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&record.time_nanos.to_le_bytes());
    // The flag byte: bit 0 a document key follows, bit 1 a Kafka part
    // (topic, key, raw envelope) follows it. Records without a Kafka part
    // are written as before.
    out.push(u8::from(record.key.is_some()) | (u8::from(record.kafka.is_some()) << 1));
    if let Some(k) = record.key {
        out.extend_from_slice(&k);
    }
    if let Some(kafka) = &record.kafka {
        kafka_part::encode(kafka, out);
    }
    out.extend_from_slice(record.payload.as_bytes());
    let len = (out.len() - start - HEADER) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = record_crc(&out[start + 4..start + 16], &out[start + HEADER..]);
    out[start + 16..start + 20].copy_from_slice(&crc.to_le_bytes());
}

/// CRC of a record's length and sequence number (`len_seq`) and body.
pub(super) fn record_crc(len_seq: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_seq);
    h.update(body);
    h.finalize()
}

pub(super) fn decode(body: &[u8]) -> Option<Record> {
    let time_nanos = i64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let flags = *body.get(8)?;
    if flags > 3 {
        return None;
    }
    let (key, mut rest) = match flags & 1 {
        0 => (None, body.get(9..)?),
        _ => (Some(body.get(9..25)?.try_into().ok()?), body.get(25..)?),
    };
    let kafka = match flags & 2 {
        0 => None,
        _ => Some(Box::new(kafka_part::decode(&mut rest)?)),
    };
    let payload = String::from_utf8(rest.to_vec()).ok()?;
    Some(Record {
        payload: payload.into(),
        time_nanos,
        key,
        kafka,
        ack: None,
    })
}

/// One step of reading a segment.
pub(super) enum Step {
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
pub(super) fn try_record(
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
pub(super) fn step(
    r: &mut BufReader<File>,
    at: u64,
    end: u64,
    body: &mut Vec<u8>,
) -> io::Result<Step> {
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
pub(super) fn segment_version(path: &Path) -> Result<Option<u32>, SpillError> {
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

pub(super) fn segment_header() -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}
