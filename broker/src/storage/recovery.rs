//! Recovery of one partition's segment files when it is opened: every valid record is kept,
//! whatever damage surrounds it, and nothing is lost without a report.
//!
//! * A bad frame (a flipped byte, a zeroed block) anywhere in a segment is skipped: frames
//!   carry their length and a CRC, so the scan resynchronises on the next valid frame. The
//!   damaged bytes are copied aside to a `.quarantined` file and the segment is rewritten
//!   without them; the offsets they held are reported lost.
//! * A torn tail (bad bytes with no valid frame after them, at the end of the last segment) is
//!   cut.
//! * Offsets missing between segments (a deleted or cut-short segment file) are reported
//!   lost. So are offsets that the index files show were written but that no segment file
//!   holds any more: a deleted segment whose `.index` and `.timeindex` remain, or a last
//!   segment cut exactly at a frame boundary.
//!
//! Lost offsets are never given to new records: the next offset is past every offset known
//! written (a new, empty segment starts there if the lost ones were at the end), and readers
//! of the partition are told they skipped them.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::storage::frame::{self, FrameError};
use crate::storage::fs::Fs;
use crate::storage::segment::{Segment, file, io, write_file};
use crate::storage::{StorageConfig, StorageError, StoredRecord};

/// What recovery found and did when a partition was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// A torn tail cut from the last segment: (segment, position, bytes cut, why).
    pub truncated: Option<(PathBuf, u64, u64, FrameError)>,
    /// The first damaged bytes found, in any segment: (segment, position, why). Every valid
    /// frame around them is kept; the damaged bytes are in [`quarantined`](Self::quarantined)
    /// files, and the records they held in [`lost`](Self::lost).
    pub corrupt: Option<(PathBuf, u64, String)>,
    /// Files set aside: damaged bytes copied out of a segment
    /// (`<segment>.log.<position>.quarantined`), and index files of a missing segment
    /// (renamed `*.quarantined`).
    pub quarantined: Vec<PathBuf>,
    /// Index files written anew (missing or not matching their segment).
    pub rebuilt_indexes: usize,
    /// Every run of offsets recovery found lost, in order: nothing is lost without a line
    /// here.
    pub lost: Vec<LostRecords>,
}

impl RecoveryReport {
    /// How many records were found lost.
    pub fn lost_records(&self) -> u64 {
        self.lost
            .iter()
            .map(|l| l.offsets.end - l.offsets.start)
            .sum()
    }
}

/// A run of records recovery found lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRecords {
    /// Their offsets. New records never take them; a reader that reaches them is told it
    /// skipped them ([`RecvError::Lagged`](crate::RecvError::Lagged)).
    pub offsets: Range<u64>,
    /// The segment file they were in (for offsets missing between two segments, the later
    /// one).
    pub segment: PathBuf,
    /// Why they are lost.
    pub reason: String,
}

/// The most offsets a gap may span: a base offset further away is not a gap but a damaged
/// file name.
const MAX_GAP: u64 = 1 << 32;

/// What recovery gives the partition log.
pub(super) struct Recovered {
    pub(super) segments: Vec<Segment>,
    pub(super) records: Vec<StoredRecord>,
    /// The next offset to write: past every record found and every offset known written.
    pub(super) next_offset: u64,
    pub(super) report: RecoveryReport,
}

/// A valid frame found by [`scan`] (its record is in the records `scan` filled).
struct Found {
    /// Where it starts in the segment, and its size.
    at: Range<usize>,
    offset: u64,
    timestamp: u64,
    /// Damaged bytes come right before it.
    after_damage: bool,
}

/// What one segment's bytes hold.
struct Scan {
    found: Vec<Found>,
    /// Damaged byte ranges between valid frames, with why.
    damage: Vec<(Range<usize>, String)>,
    /// Bad bytes up to the end, with no valid frame after them.
    unreadable_tail: Option<(usize, FrameError)>,
}

/// Recovers the partition in `dir` (see the module docs).
pub(super) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    config: &StorageConfig,
) -> Result<Recovered, StorageError> {
    let mut logs = BTreeSet::new();
    let mut indexed = BTreeSet::new();
    for path in fs.list(dir).map_err(io(dir))? {
        let base = path
            .file_stem()
            .and_then(|s| s.to_str()?.parse::<u64>().ok());
        match (base, path.extension().and_then(|e| e.to_str())) {
            (Some(base), Some("log")) => logs.insert(base),
            (Some(base), Some("index" | "timeindex")) => indexed.insert(base),
            _ => false,
        };
    }
    let bases: Vec<u64> = logs.union(&indexed).copied().collect();
    let max_body = frame::max_body(config.max_record_bytes);
    // The most records a segment can hold: its size (plus one frame past it) in the
    // smallest frames.
    let most_records =
        (config.segment_bytes + max_body as u64 + frame::HEADER as u64) / frame::MIN as u64 + 1;
    let mut out = Recovered {
        segments: Vec::new(),
        records: Vec::new(),
        next_offset: 0,
        report: RecoveryReport::default(),
    };
    let mut expected: Option<u64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let log_path = file(dir, base, "log");
        let start = expected.unwrap_or(base);
        if base > start && base - start > MAX_GAP {
            return Err(StorageError::Corrupt {
                path: log_path,
                position: 0,
                reason: format!(
                    "the segment starts at offset {base}, {} past the end of the one before",
                    base - start
                ),
            });
        }
        let indexed_to = indexed_end(fs, dir, base, most_records);
        if !logs.contains(&base) {
            // A segment whose log file is gone: its index files say it held records.
            let to = next_base.unwrap_or(indexed_to.unwrap_or(base)).max(start);
            out.lose(
                start..to,
                &log_path,
                "the segment file is missing (its index files remain)",
            );
            for ext in ["index", "timeindex"] {
                let from = file(dir, base, ext);
                let to = from.with_extension(format!("{ext}.quarantined"));
                if fs.rename(&from, &to).is_ok() {
                    out.report.quarantined.push(to);
                }
            }
            expected = Some(to);
            continue;
        }
        if base > start {
            out.lose(
                start..base,
                &log_path,
                "missing between segments (a segment file was deleted or cut short)",
            );
        }
        let first = start.max(base);
        let data = fs.read(&log_path).map_err(io(&log_path))?;
        out.report.segments += 1;
        let last = next_base.is_none();
        let Scan {
            mut found,
            mut damage,
            unreadable_tail,
        } = scan(&data, first, max_body, &mut out.records);
        let mut length = data.len();
        let mut cut_record = false;
        if let Some((position, err)) = unreadable_tail {
            if last {
                out.report.truncated = Some((
                    log_path.clone(),
                    position as u64,
                    (data.len() - position) as u64,
                    err,
                ));
                length = position;
                // Bytes that ran out are a write that did not finish; a whole frame that
                // does not check is a record that was written, then damaged.
                cut_record = !matches!(err, FrameError::Truncated { .. });
            } else {
                damage.push((position..data.len(), err.to_string()));
            }
        }
        if damage.is_empty() {
            if length < data.len() {
                fs.truncate(&log_path, length as u64)
                    .map_err(io(&log_path))?;
            }
        } else {
            length = quarantine(fs, &log_path, &data, &mut found, &damage, &mut out.report)?;
        }
        let mut next = first;
        for f in &found {
            if f.offset > next {
                let reason = if f.after_damage {
                    "their frames are damaged (the bytes are quarantined)"
                } else {
                    "missing inside the segment"
                };
                out.lose(next..f.offset, &log_path, reason);
            }
            next = f.offset + 1;
        }
        if cut_record {
            out.lose(
                next..next + 1,
                &log_path,
                "its frame, the last of the segment, is damaged (cut)",
            );
            next += 1;
        }
        if last && let Some(indexed_to) = indexed_to.filter(|&to| to > next) {
            out.lose(
                next..indexed_to,
                &log_path,
                "the index files show records the segment file no longer holds (cut short, or \
                 an unsynced tail lost)",
            );
            next = indexed_to;
        }
        out.segments.push(Segment::of(
            base,
            length as u64,
            found.iter().map(|f| (f.at.clone(), f.offset, f.timestamp)),
            config,
        ));
        expected = Some(next);
    }
    out.next_offset = expected.unwrap_or(0);
    out.report.records = out.records.len() as u64;
    for segment in &out.segments {
        if write_indexes(fs, dir, segment)? {
            out.report.rebuilt_indexes += 1;
        }
    }
    Ok(out)
}

impl Recovered {
    fn lose(&mut self, offsets: Range<u64>, segment: &Path, reason: &str) {
        if offsets.is_empty() {
            return;
        }
        self.report.lost.push(LostRecords {
            offsets,
            segment: segment.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

/// The valid frames of a segment that starts at offset `first` (or later), resynchronising
/// past damage: a frame whose offset goes backwards is damage too. Their records are appended
/// to `records`.
fn scan(data: &[u8], first: u64, max_body: usize, records: &mut Vec<StoredRecord>) -> Scan {
    let mut scan = Scan {
        found: Vec::new(),
        damage: Vec::new(),
        unreadable_tail: None,
    };
    let mut expected = first;
    let mut position = 0;
    let mut after_damage = false;
    while position < data.len() {
        let err = match frame::decode(&data[position..], max_body) {
            Ok((record, size)) if record.offset >= expected => {
                scan.found.push(Found {
                    at: position..position + size,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    after_damage,
                });
                records.push(StoredRecord {
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key.map(<[u8]>::to_vec),
                    value: record.value.to_vec(),
                });
                expected = record.offset + 1;
                position += size;
                after_damage = false;
                continue;
            }
            Ok((record, size)) => {
                scan.damage.push((
                    position..position + size,
                    format!(
                        "offset {} where {expected} or later was expected",
                        record.offset
                    ),
                ));
                position += size;
                after_damage = true;
                continue;
            }
            Err(err) => err,
        };
        match frame::find(data, position + 1, max_body, expected) {
            Some(next) => {
                scan.damage.push((position..next, err.to_string()));
                position = next;
                after_damage = true;
            }
            None => {
                scan.unreadable_tail = Some((position, err));
                break;
            }
        }
    }
    scan
}

/// Copies each damaged range of the segment at `path` aside to a `.quarantined` file, then
/// rewrites the segment with its valid frames only (`found`, whose positions are updated);
/// returns its new length.
fn quarantine(
    fs: &dyn Fs,
    path: &Path,
    data: &[u8],
    found: &mut [Found],
    damage: &[(Range<usize>, String)],
    report: &mut RecoveryReport,
) -> Result<usize, StorageError> {
    if report.corrupt.is_none() {
        let (range, reason) = &damage[0];
        report.corrupt = Some((path.to_owned(), range.start as u64, reason.clone()));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("segment");
    for (range, _) in damage {
        let aside = path.with_file_name(format!("{name}.{}.quarantined", range.start));
        write_file(fs, &aside, &data[range.clone()])?;
        report.quarantined.push(aside);
    }
    let mut clean = Vec::with_capacity(data.len());
    for f in found.iter_mut() {
        let at = clean.len();
        clean.extend_from_slice(&data[f.at.clone()]);
        f.at = at..clean.len();
    }
    write_file(fs, path, &clean)?;
    Ok(clean.len())
}

/// One past the last offset the index files of the segment at `base` show was written, if
/// they show any: the larger of the two files' last entries, read as far as their entries
/// are whole and increasing, and believed only within `most_records` of `base`.
fn indexed_end(fs: &dyn Fs, dir: &Path, base: u64, most_records: u64) -> Option<u64> {
    let last_relative = |ext, size: usize, relative_at: usize| {
        let bytes = fs.read(&file(dir, base, ext)).ok()?;
        let mut last: Option<u32> = None;
        for entry in bytes.chunks_exact(size) {
            let relative = u32::from_le_bytes(
                entry[relative_at..relative_at + 4]
                    .try_into()
                    .expect("4 bytes"),
            );
            if last.is_some_and(|l| relative <= l) {
                break;
            }
            last = Some(relative);
        }
        last
    };
    let relative = last_relative("index", 8, 0).max(last_relative("timeindex", 12, 8))?;
    (u64::from(relative) < most_records).then(|| base + u64::from(relative) + 1)
}

/// Writes a segment's index files if missing or not matching; returns whether it did.
fn write_indexes(fs: &dyn Fs, dir: &Path, segment: &Segment) -> Result<bool, StorageError> {
    let mut offsets = Vec::with_capacity(segment.index.len() * 8);
    let mut times = Vec::with_capacity(segment.index.len() * 12);
    for (&(relative, position), &timestamp) in segment.index.iter().zip(&segment.times) {
        offsets.extend_from_slice(&relative.to_le_bytes());
        offsets.extend_from_slice(&position.to_le_bytes());
        times.extend_from_slice(&timestamp.to_le_bytes());
        times.extend_from_slice(&relative.to_le_bytes());
    }
    let mut rebuilt = false;
    for (ext, expected) in [("index", offsets), ("timeindex", times)] {
        let path = file(dir, segment.base, ext);
        if fs.read(&path).ok().as_deref() != Some(expected.as_slice()) {
            write_file(fs, &path, &expected)?;
            rebuilt = true;
        }
    }
    Ok(rebuilt)
}
