//! Format 1 (before issue #20): `[len u32][crc32 u32][body]` records, no
//! segment header; read only to upgrade and to verify.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

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
