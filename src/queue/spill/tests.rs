use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::verify::{verify, verify_route};
use super::*;

fn rec(i: u64) -> Record {
    Record {
        payload: format!("record {i} {}", "x".repeat((i % 7) as usize)).into(),
        time_nanos: i as i64,
        key: (i % 2 == 0).then_some([i as u8; 16]),
        kafka: None,
        ack: None,
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

/// The Kafka sink's records (topic, key, raw envelope: a frame that is
/// not UTF-8, an IPv6 peer, a timezone) come back from the log whole, and
/// survive a reopen; records of other sinks are written byte for byte as
/// before the Kafka part existed (flag byte 0 or 1, no more).
#[test]
fn kafka_parts_survive_the_spill_log_and_other_records_keep_their_bytes() {
    use crate::record::{Envelope, KafkaPart};
    use std::sync::Arc;
    let with_part = |i: u64, envelope: bool| Record {
        payload: if envelope {
            String::new().into()
        } else {
            format!("{{\"n\":{i}}}").into()
        },
        time_nanos: i as i64,
        key: None,
        kafka: Some(Box::new(KafkaPart {
            topic: format!("syslog.r{i}"),
            key: (i % 2 == 0).then(|| format!("host{i}")),
            envelope: envelope.then(|| Envelope {
                frame: bytes::Bytes::from(vec![b'<', 0xff, 0xfe, i as u8, b'\n']),
                received_nanos: 1_796_000_000_000_000_000 + i as i64,
                peer: (i % 3 != 0).then(|| format!("[2001:db8::{i}]:5514").parse().unwrap()),
                listener: Arc::from("tcp_in"),
                framing: Arc::from("octet"),
                nonce: 0x0123_4567_89ab_cdef,
                frame_number: i,
                timezone: (i % 2 == 1).then(|| Arc::from("Europe/Berlin")),
            }),
        })),
        ack: None,
    };
    let records: Vec<Record> = (0..20)
        .map(|i| match i % 3 {
            0 => with_part(i, true),
            1 => with_part(i, false),
            _ => rec(i),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut scratch = Vec::new();
    let (mut log, _) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
    log.append(&records, &mut scratch).unwrap();
    assert_eq!(read_all(&mut log), records);
    drop(log);
    let (mut log, recovery) = SpillLog::open(dir.path(), options(1 << 20)).unwrap();
    assert_eq!(recovery.pending_records, 20);
    assert_eq!(read_all(&mut log), records);

    // A record without a Kafka part: time, flag 1, key, payload, as before.
    let mut out = Vec::new();
    segment::encode(&rec(4), 9, &mut out);
    let mut body = 4i64.to_le_bytes().to_vec();
    body.push(1);
    body.extend_from_slice(&[4u8; 16]);
    body.extend_from_slice(rec(4).payload.as_bytes());
    assert_eq!(&out[HEADER..], body.as_slice());
    // A flag byte above 3 is not a record.
    body[8] = 4;
    assert_eq!(segment::decode(&body), None);
}
