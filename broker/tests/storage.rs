//! The segment files of a partition: recovery after simulated power loss and torn writes
//! (R4), byte flips in closed segments (R5), a full disk (R11), indexes, retention.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use broker::storage::fs::{Crash, Fs, OsFs, SimFs};
use broker::storage::{
    Durability, PartitionLog, RecoveryReport, StorageConfig, StorageError, StoredRecord,
};

fn config(durability: Durability) -> StorageConfig {
    StorageConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        max_record_bytes: 4096,
        durability,
    }
}

fn value(i: u64) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat((i % 13) as usize)).into_bytes()
}

fn open(
    fs: &SimFs,
    durability: Durability,
) -> (
    PartitionLog,
    Vec<StoredRecord>,
    broker::storage::RecoveryReport,
) {
    PartitionLog::open(
        Arc::new(fs.clone()),
        Path::new("/data/t-0"),
        config(durability),
    )
    .unwrap()
}

/// Asserts `records` are exactly values 0..n in order with dense offsets.
fn assert_prefix(records: &[StoredRecord], n: u64) {
    assert_eq!(records.len() as u64, n);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset, i as u64, "dense offsets");
        assert_eq!(record.value, value(i as u64), "value at {i}");
    }
}

/// Asserts that every record is exactly what was written at its offset, in order, and that
/// the records and the offsets the report calls lost are together exactly `0..n`: nothing
/// served is corrupt, and nothing is lost without a report.
fn assert_kept_or_reported(records: &[StoredRecord], report: &RecoveryReport, n: u64) {
    let mut offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    for record in records {
        assert_eq!(
            record.value,
            value(record.offset),
            "value at {}",
            record.offset
        );
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "in order, once");
    for lost in &report.lost {
        offsets.extend(lost.offsets.clone());
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..n).collect::<Vec<_>>(), "{report:?}");
}

#[test]
fn records_survive_a_reopen_and_offsets_continue() {
    let fs = SimFs::new();
    let (mut log, records, report) = open(&fs, Durability::Always);
    assert!(records.is_empty() && report.truncated.is_none());
    for i in 0..100 {
        assert_eq!(log.append(i * 10, Some(b"k"), &value(i)).unwrap(), i);
    }
    drop(log);
    let (mut log, records, report) = open(&fs, Durability::Always);
    assert_prefix(&records, 100);
    assert_eq!(records[3].key.as_deref(), Some(&b"k"[..]));
    assert!(report.segments > 1, "segments rolled by size");
    assert_eq!(log.append(0, None, &value(100)).unwrap(), 100);
}

/// R4 with `Always`: whatever a power loss drops, every acknowledged record is there.
#[test]
fn r4_always_loses_nothing_acknowledged_in_a_power_loss() {
    for crash in [Crash::DropUnsynced, Crash::Torn(3), Crash::Torn(40)] {
        let fs = SimFs::new();
        let (mut log, _, _) = open(&fs, Durability::Always);
        for i in 0..60 {
            log.append(i, None, &value(i)).unwrap();
        }
        fs.crash(crash);
        drop(log);
        let (_, records, _) = open(&fs, Durability::Always);
        assert_prefix(&records, 60);
    }
}

/// R4 with an interval (and torn writes): loss is limited to what came after the last sync;
/// nothing kept is corrupt, reordered or duplicated; a torn tail is cut and reported. Offsets
/// the index files show were written but that the segment lost are reported lost, and new
/// records start after them (so that no offset ever names two records).
#[test]
fn r4_interval_loses_at_most_the_unsynced_tail_and_never_corrupts() {
    for torn in [0usize, 1, 7, 19, 33, 64, 200] {
        let fs = SimFs::new();
        let (mut log, _, _) = open(&fs, Durability::Interval(Duration::from_secs(3600)));
        for i in 0..40 {
            log.append(i, None, &value(i)).unwrap();
        }
        log.sync().unwrap(); // the interval elapses here
        for i in 40..70 {
            log.append(i, None, &value(i)).unwrap();
        }
        fs.crash(if torn == 0 {
            Crash::DropUnsynced
        } else {
            Crash::Torn(torn)
        });
        drop(log);
        let (mut log, records, report) = open(&fs, Durability::Always);
        let kept = records.len() as u64;
        assert!(
            (40..=70).contains(&kept),
            "kept {kept}: synced records are never lost"
        );
        assert_prefix(&records, kept);
        let next = log.next_offset();
        assert!((kept..=70).contains(&next), "{next}");
        assert_kept_or_reported(&records, &report, next);
        if torn > 0 && kept < 70 {
            assert!(
                report.truncated.is_some() || torn < 8,
                "a torn frame is cut and reported"
            );
        }
        assert_eq!(
            log.append(0, None, &value(next)).unwrap(),
            next,
            "appends continue after every offset known written"
        );
        drop(log);
        let (_, records, report) = open(&fs, Durability::Always);
        assert_kept_or_reported(&records, &report, next + 1);
        assert_eq!(records.len() as u64, kept + 1);
        assert!(
            report.truncated.is_none(),
            "the cut tail left a clean file: {report:?}"
        );
    }
}

/// R5: random bytes flipped in closed segments: recovery never panics, serves only valid
/// records (each exactly as written), keeps every valid record after the damage, and reports
/// the damage and every record it lost.
#[test]
fn r5_byte_flips_in_closed_segments_are_detected_and_never_served() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..1_000 {
        let fs = SimFs::new();
        let (mut log, _, _) = open(&fs, Durability::Always);
        for i in 0..80 {
            log.append(i, None, &value(i)).unwrap();
        }
        drop(log);
        let segments: Vec<PathBuf> = fs
            .paths()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        let closed = &segments[..segments.len() - 1];
        let target = &closed[next() as usize % closed.len()];
        let len = fs.read(target).unwrap().len();
        let at = next() as usize % len;
        fs.corrupt(target, at, 1 << (next() % 8));
        let (mut log, records, report) = open(&fs, Durability::Always);
        assert!(
            records.len() < 80,
            "round {round}: the flip must be noticed"
        );
        assert_kept_or_reported(&records, &report, 80);
        assert!(
            records.last().is_some_and(|r| r.offset == 79),
            "round {round}: the records after the damage are kept"
        );
        let (path, _, _) = report.corrupt.clone().expect("corruption is reported");
        assert_eq!(&path, target);
        assert!(
            !report.quarantined.is_empty(),
            "the bad bytes are kept aside"
        );
        // The segment was rewritten without the damage: the next open finds none, and
        // reports the same lost records again.
        assert_eq!(log.append(0, None, &value(80)).unwrap(), 80);
        drop(log);
        let (_, again, second) = open(&fs, Durability::Always);
        assert!(second.corrupt.is_none(), "round {round}: {second:?}");
        let offsets =
            |r: &RecoveryReport| r.lost.iter().map(|l| l.offsets.clone()).collect::<Vec<_>>();
        assert_eq!(offsets(&second), offsets(&report), "round {round}");
        assert_eq!(again.len(), records.len() + 1);
    }
}

/// R21 (issue 11, item 8): one byte flipped inside the active segment: every valid frame
/// after the damage is still served, the damage is reported and quarantined, and appends go
/// on after it.
#[test]
fn r21_a_flip_in_the_active_segment_keeps_every_valid_frame_after_it() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let fs = SimFs::new();
        let big = StorageConfig {
            segment_bytes: 1 << 20,
            ..config(Durability::Always)
        };
        let dir = Path::new("/data/t-0");
        let (mut log, _, _) = PartitionLog::open(Arc::new(fs.clone()), dir, big.clone()).unwrap();
        for i in 0..200 {
            log.append(i, None, &value(i)).unwrap();
        }
        drop(log);
        let segment = dir.join("00000000000000000000.log");
        let len = fs.read(&segment).unwrap().len();
        let at = seed as usize % len;
        fs.corrupt(&segment, at, 1 << (seed % 8));
        let (mut log, records, report) =
            PartitionLog::open(Arc::new(fs.clone()), dir, big.clone()).unwrap();
        assert_kept_or_reported(&records, &report, 200);
        let lost = report.lost_records();
        assert!(
            (1..=2).contains(&lost),
            "round {round}: a flip in one frame loses that frame (at byte {at}): {report:?}"
        );
        assert!(
            report.corrupt.is_some() || report.truncated.is_some(),
            "{report:?}"
        );
        assert_eq!(log.append(0, None, &value(200)).unwrap(), 200);
    }
}

/// Issue 11, item 9: a deleted segment file (its index files left behind) and a segment cut
/// exactly at a frame boundary lose records with a report; the offsets are not reused.
#[test]
fn deleted_and_cut_segments_are_reported_from_their_indexes() {
    // A deleted segment in the middle.
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    for i in 0..100 {
        log.append(i, None, &value(i)).unwrap();
    }
    drop(log);
    let logs: Vec<PathBuf> = fs
        .paths()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(logs.len() >= 4);
    fs.remove(&logs[1]).unwrap();
    let (_, records, report) = open(&fs, Durability::Always);
    assert_kept_or_reported(&records, &report, 100);
    assert_eq!(report.lost.len(), 1, "{report:?}");
    assert_eq!(report.lost[0].segment, logs[1]);
    assert!(report.lost[0].reason.contains("missing"), "{report:?}");

    // The last segment deleted: its index says how far it went.
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    for i in 0..100 {
        log.append(i, None, &value(i)).unwrap();
    }
    drop(log);
    let last = fs
        .paths()
        .into_iter()
        .rfind(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    fs.remove(&last).unwrap();
    let (mut log, records, report) = open(&fs, Durability::Always);
    let known = log.next_offset();
    assert!(known > records.len() as u64, "{report:?}");
    assert_kept_or_reported(&records, &report, known);
    assert_eq!(
        log.append(0, None, &value(known)).unwrap(),
        known,
        "no reuse"
    );
    drop(log);
    let (log, _, again) = open(&fs, Durability::Always);
    assert_eq!(
        log.next_offset(),
        known + 1,
        "not reused after a restart either"
    );
    assert_eq!(again.lost_records(), report.lost_records(), "{again:?}");

    // The active segment cut exactly at a frame boundary.
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    let mut frame_ends = Vec::new();
    let segment = Path::new("/data/t-0/00000000000000000000.log");
    for i in 0..20 {
        log.append(i, None, &value(i)).unwrap();
        frame_ends.push(fs.read(segment).unwrap().len());
    }
    drop(log);
    let fs_config = config(Durability::Always);
    assert!(
        frame_ends[19] as u64 <= fs_config.segment_bytes,
        "one segment"
    );
    // Cut after record 9: records 10..20 vanish on a frame boundary, but the index has an
    // entry past the cut (one every 128 bytes).
    fs.truncate(segment, frame_ends[9] as u64).unwrap();
    let (log, records, report) = open(&fs, Durability::Always);
    assert_eq!(records.len(), 10);
    assert!(report.truncated.is_none(), "a clean cut is no torn tail");
    assert!(
        log.next_offset() > 10,
        "the index shows more was written: {report:?}"
    );
    assert_kept_or_reported(&records, &report, log.next_offset());
}

/// R11: a full disk makes appends fail; nothing acknowledged is lost, nothing partial is
/// visible, and appends resume when space returns.
#[test]
fn r11_a_full_disk_fails_appends_and_they_resume_later() {
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    for i in 0..30 {
        log.append(i, None, &value(i)).unwrap();
    }
    fs.set_space(Some(50));
    let mut acked = 30;
    let mut failures = 0;
    for i in 30..40 {
        match log.append(i, None, &value(acked)) {
            Ok(offset) => {
                assert_eq!(offset, acked);
                acked += 1;
            }
            Err(StorageError::Io { .. }) => failures += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(failures > 0, "the disk filled up");
    fs.set_space(None);
    for _ in 0..5 {
        assert_eq!(log.append(0, None, &value(acked)).unwrap(), acked);
        acked += 1;
    }
    drop(log);
    let (_, records, report) = open(&fs, Durability::Always);
    assert_prefix(&records, acked);
    assert!(
        report.truncated.is_none(),
        "nothing partial was left: {report:?}"
    );
}

#[test]
fn missing_indexes_are_rebuilt_and_seeks_use_them() {
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    for i in 0..200 {
        log.append(i, None, &value(i)).unwrap();
    }
    drop(log);
    for path in fs.paths() {
        if path.extension().is_some_and(|e| e == "index") {
            fs.remove(&path).unwrap();
        }
    }
    let (mut log, records, report) = open(&fs, Durability::Always);
    assert_prefix(&records, 200);
    assert!(report.rebuilt_indexes > 0);
    let (base, position) = log.locate(150).unwrap();
    assert!(
        base <= 150 && position > 0,
        "the index skips into the segment"
    );
    let read = log.read_from(150, 10).unwrap();
    assert_eq!(
        read.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (150..160).collect::<Vec<_>>()
    );
    assert_eq!(read[0].value, value(150));
}

#[test]
fn retention_deletes_whole_old_segments() {
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    for i in 0..300 {
        log.append(i, None, &value(i)).unwrap();
    }
    let start = log.retain(Some(2048), None, 0).unwrap();
    assert!(start > 0 && start < 300);
    let (_, records, _) = open(&fs, Durability::Always);
    assert_eq!(records.first().unwrap().offset, start);
    assert_eq!(records.last().unwrap().offset, 299);
    let start_by_age = {
        let (mut log, _, _) = open(&fs, Durability::Always);
        log.retain(None, Some(Duration::from_nanos(10)), 1_000)
            .unwrap()
    };
    assert!(start_by_age > start, "old segments go by age too");
}

#[test]
fn oversized_records_are_refused_before_writing() {
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Always);
    let big = vec![0u8; 5000];
    assert!(matches!(
        log.append(0, None, &big),
        Err(StorageError::RecordTooLarge {
            size: 5000,
            limit: 4096
        })
    ));
    assert_eq!(log.append(0, None, b"ok").unwrap(), 0);
}

#[test]
fn the_real_file_system_round_trips() {
    let dir = std::env::temp_dir().join(format!("broker-storage-{}", std::process::id()));
    let fs: Arc<dyn Fs> = Arc::new(OsFs);
    {
        let (mut log, _, _) =
            PartitionLog::open(Arc::clone(&fs), &dir, config(Durability::Always)).unwrap();
        for i in 0..50 {
            log.append(i, None, &value(i)).unwrap();
        }
    }
    let (_, records, _) =
        PartitionLog::open(Arc::clone(&fs), &dir, config(Durability::Always)).unwrap();
    assert_prefix(&records, 50);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// R17: hostile topic and group names never make a path outside the data directory.
#[test]
fn r17_hostile_names_never_leave_the_data_directory() {
    use broker::storage::{group_file, partition_dir};
    let root = Path::new("/var/lib/broker");
    let long = "a".repeat(250);
    let hostile = [
        "",
        ".",
        "..",
        "../x",
        "x/../../etc",
        "/",
        "/etc/passwd",
        "a\0b",
        "caf\u{e9}",
        "a\\b",
        &long,
    ];
    for name in hostile {
        assert!(
            partition_dir(root, name, 0).is_err(),
            "topic {name:?} accepted"
        );
        assert!(
            group_file(root, "t", name).is_err(),
            "group {name:?} accepted"
        );
        assert!(
            group_file(root, name, "g").is_err(),
            "topic {name:?} accepted"
        );
    }
    for name in [
        "orders",
        "orders.v2",
        "__internal-x",
        "a..b",
        "-_-",
        &"b".repeat(249),
    ] {
        let dir = partition_dir(root, name, 3).unwrap();
        assert!(dir.starts_with(root));
        assert_eq!(
            dir.components().count(),
            root.components().count() + 2,
            "{dir:?}"
        );
        let file = group_file(root, name, name).unwrap();
        assert!(file.starts_with(root.join(name)));
    }
}

#[test]
fn the_timestamp_index_finds_the_first_record_at_or_after_a_time() {
    let fs = SimFs::new();
    let (mut log, _, _) = open(&fs, Durability::Never);
    for i in 0..300 {
        log.append(1_000 + i * 10, None, &value(i)).unwrap();
    }
    assert_eq!(log.offset_for_time(0).unwrap(), 0);
    assert_eq!(log.offset_for_time(1_000 + 1_234).unwrap(), 124);
    assert_eq!(log.offset_for_time(1_000 + 2_990).unwrap(), 299);
    assert_eq!(
        log.offset_for_time(1_000_000).unwrap(),
        300,
        "past the end: the end"
    );
    drop(log);
    let (mut log, _, _) = open(&fs, Durability::Never);
    assert_eq!(
        log.offset_for_time(1_000 + 1_500).unwrap(),
        150,
        "after recovery too"
    );
}
