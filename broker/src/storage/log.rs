//! One partition's records on disk: a directory of segment files, each with an offset index
//! and a timestamp index; recovery on open; retention by whole segments.
//!
//! ```text
//! <dir>/00000000000000000000.log        frames (see `frame`), offsets from the file's base
//! <dir>/00000000000000000000.index      (relative offset u32, file position u32) every
//!                                       `index_interval` bytes
//! <dir>/00000000000000000000.timeindex  (timestamp u64, relative offset u32), same points
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::storage::frame;
use crate::storage::fs::{AppendFile, Fs};
use crate::storage::recovery::{Recovered, RecoveryReport, recover};
use crate::storage::segment::{Segment, file, io};
use crate::storage::{Durability, StorageConfig, StorageError};

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Offset in the partition.
    pub offset: u64,
    /// Append time, nanoseconds since the UNIX epoch.
    pub timestamp: u64,
    /// Key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// Encoded value.
    pub value: Vec<u8>,
}

/// One partition's segment files.
pub struct PartitionLog {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    config: StorageConfig,
    segments: Vec<Segment>,
    active: Box<dyn AppendFile>,
    active_index: Box<dyn AppendFile>,
    active_timeindex: Box<dyn AppendFile>,
    next_offset: u64,
    bytes_since_index: u64,
    unsynced: bool,
    last_sync: Instant,
    scratch: Vec<u8>,
    /// A failed write lost buffered frames: appends are refused until reopened.
    failed: bool,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

impl PartitionLog {
    /// Opens (or creates) the partition in `dir`, recovering what is there (see
    /// [`RecoveryReport`]): every valid record, in offset order (with gaps where records
    /// were found lost), and a report of what was cut, quarantined or lost.
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        config: StorageConfig,
    ) -> Result<(Self, Vec<StoredRecord>, RecoveryReport), StorageError> {
        fs.create_dir_all(dir).map_err(io(dir))?;
        let Recovered {
            mut segments,
            records,
            next_offset,
            report,
        } = recover(&*fs, dir, &config)?;
        let end_of_files = segments
            .last()
            .map(|s| match records.last() {
                Some(r) if r.offset >= s.base => r.offset + 1,
                _ => s.base,
            })
            .unwrap_or(next_offset);
        if segments.is_empty() || next_offset > end_of_files {
            // Lost offsets at the end are kept from reuse by a new segment that starts past
            // them (its name keeps them lost after the next restart too).
            segments.push(Segment::empty(next_offset));
        }
        let active_base = segments.last().expect("non-empty").base;
        let open = |ext| {
            let path = file(dir, active_base, ext);
            fs.open_append(&path).map_err(io(&path))
        };
        let (active, active_index, active_timeindex) =
            (open("log")?, open("index")?, open("timeindex")?);
        let bytes_since_index = segments
            .last()
            .and_then(|s| s.index.last().map(|&(_, pos)| s.bytes - u64::from(pos)))
            .unwrap_or(u64::MAX);
        let log = Self {
            fs,
            dir: dir.to_owned(),
            config,
            segments,
            active,
            active_index,
            active_timeindex,
            next_offset,
            bytes_since_index,
            unsynced: false,
            last_sync: Instant::now(),
            scratch: Vec::new(),
            failed: false,
        };
        Ok((log, records, report))
    }

    /// The next offset to be written.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The oldest offset on disk.
    pub fn start_offset(&self) -> u64 {
        self.segments.first().map_or(self.next_offset, |s| s.base)
    }

    /// Appends a record (key and encoded value) and returns its offset. When this returns, the
    /// record is in the operating system's hands (a killed process keeps it); it is durable
    /// against a power loss with [`Durability::Always`]; with `Interval(d)`, once `d` has
    /// passed since the last sync (checked on each append and by [`sync`](Self::sync)); with
    /// `Never`, when the operating system writes it back. On error nothing of the record is
    /// kept: the partition is as it was.
    pub fn append(
        &mut self,
        timestamp: u64,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<u64, StorageError> {
        let size = key.map_or(0, <[u8]>::len) + value.len();
        if size > self.config.max_record_bytes {
            return Err(StorageError::RecordTooLarge {
                size,
                limit: self.config.max_record_bytes,
            });
        }
        let offset = self.next_offset;
        self.scratch.clear();
        frame::encode(&mut self.scratch, offset, timestamp, key, value);
        let frame_len = self.scratch.len() as u64;
        let segment = self.segments.last().expect("an active segment");
        if segment.bytes > 0 && segment.bytes + frame_len > self.config.segment_bytes {
            self.roll()?;
        }
        let path = file(&self.dir, self.segments.last().expect("active").base, "log");
        if self.failed {
            return Err(StorageError::Failed);
        }
        if let Err(source) = self.active.append(&self.scratch) {
            self.recover_from_failed_write()?;
            return Err(StorageError::Io { path, source });
        }
        if self.bytes_since_index >= self.config.index_interval_bytes {
            self.write_index_entry(offset, timestamp);
        }
        let segment = self.segments.last_mut().expect("active");
        self.bytes_since_index += frame_len;
        segment.bytes += frame_len;
        segment.last_timestamp = timestamp;
        self.next_offset += 1;
        self.unsynced = true;
        match self.config.durability {
            Durability::Always => {
                if let Err(err) = self.sync() {
                    // Written (and kept: a retry would duplicate it), but maybe not durable.
                    return Err(StorageError::NotDurable {
                        offset,
                        source: Box::new(err),
                    });
                }
            }
            // A failed interval fsync is retried by the next one (and reported by an explicit
            // `sync`); the record itself was written.
            Durability::Interval(every) if self.last_sync.elapsed() >= every => {
                let _ = self.sync();
            }
            _ => {}
        }
        Ok(offset)
    }

    /// Appends an entry to the active segment's offset and timestamp indexes for the record
    /// at `offset`, which starts at the segment's current end. Indexes are rebuilt on
    /// recovery, so a failed write loses nothing; it is cut back (both files, so that they
    /// stay aligned and agree), and the entry is tried again with the next record.
    fn write_index_entry(&mut self, offset: u64, timestamp: u64) {
        let segment = self.segments.last_mut().expect("active");
        let relative = (offset - segment.base) as u32;
        let position = segment.bytes as u32;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&relative.to_le_bytes());
        entry[4..].copy_from_slice(&position.to_le_bytes());
        let mut time = [0u8; 12];
        time[..8].copy_from_slice(&timestamp.to_le_bytes());
        time[8..].copy_from_slice(&relative.to_le_bytes());
        let written = self
            .active_index
            .append(&entry)
            .and_then(|()| self.active_timeindex.append(&time));
        if written.is_err() {
            let entries = segment.index.len() as u64;
            for (ext, size) in [("index", 8), ("timeindex", 12)] {
                let _ = self
                    .fs
                    .truncate(&file(&self.dir, segment.base, ext), entries * size);
            }
            return;
        }
        segment.index.push((relative, position));
        segment.times.push(timestamp);
        self.bytes_since_index = 0;
    }

    /// After a failed write (a full disk, say): reopens the file and cuts it back to its last
    /// whole frame, so that nothing partial is ever visible and the next append starts clean:
    /// appends go on in place once the disk has room again. Every earlier frame was written
    /// before it was acknowledged, so nothing acknowledged is cut. Only if the file is
    /// shorter than what was written to it (something else truncated it) does the partition
    /// refuse appends until it is reopened and recovered.
    fn recover_from_failed_write(&mut self) -> Result<(), StorageError> {
        let segment = self.segments.last().expect("active");
        let path = file(&self.dir, segment.base, "log");
        let fresh = self.fs.open_append(&path).map_err(io(&path))?;
        drop(std::mem::replace(&mut self.active, fresh));
        let on_disk = self.fs.len(&path).map_err(io(&path))?;
        if on_disk < segment.bytes {
            self.failed = true;
            return Ok(());
        }
        self.fs.truncate(&path, segment.bytes).map_err(io(&path))
    }

    /// Makes every record appended so far durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if !self.unsynced {
            return Ok(());
        }
        let base = self.segments.last().expect("active").base;
        let path = file(&self.dir, base, "log");
        if let Err(source) = self.active.sync() {
            self.recover_from_failed_write()?;
            return Err(StorageError::Io { path, source });
        }
        let _ = self.active_index.sync();
        let _ = self.active_timeindex.sync();
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Closes the active segment (synced) and starts a new one at the next offset.
    fn roll(&mut self) -> Result<(), StorageError> {
        self.unsynced = true;
        self.sync()?;
        let base = self.next_offset;
        let open = |ext| {
            let path = file(&self.dir, base, ext);
            self.fs.open_append(&path).map_err(io(&path))
        };
        let (log, index, timeindex) = (open("log")?, open("index")?, open("timeindex")?);
        self.active = log;
        self.active_index = index;
        self.active_timeindex = timeindex;
        self.segments.push(Segment::empty(base));
        self.bytes_since_index = u64::MAX;
        Ok(())
    }

    /// Deletes whole closed segments while the partition holds more than `max_bytes`, or while
    /// the oldest segment's newest record is older than `max_age` before `now_nanos`. Returns
    /// the new start offset.
    pub fn retain(
        &mut self,
        max_bytes: Option<u64>,
        max_age: Option<Duration>,
        now_nanos: u64,
    ) -> Result<u64, StorageError> {
        let mut total: u64 = self.segments.iter().map(|s| s.bytes).sum();
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let by_bytes = max_bytes.is_some_and(|max| total > max);
            let by_age = max_age.is_some_and(|age| {
                oldest.last_timestamp < now_nanos.saturating_sub(age.as_nanos() as u64)
            });
            if !(by_bytes || by_age) {
                break;
            }
            // Indexes first: a crash in between leaves a segment without indexes (rebuilt on
            // recovery), never indexes without their segment (which recovery reports lost).
            for ext in ["index", "timeindex", "log"] {
                let path = file(&self.dir, oldest.base, ext);
                let _ = self.fs.remove(&path);
            }
            total -= oldest.bytes;
            self.segments.remove(0);
        }
        Ok(self.start_offset())
    }

    /// Where the record at `offset` starts: its segment's base and a position at or before it
    /// (from the offset index), to scan from.
    pub fn locate(&self, offset: u64) -> Option<(u64, u32)> {
        let segment = self.segments.iter().rev().find(|s| s.base <= offset)?;
        let relative = (offset - segment.base) as u32;
        let entry = segment.index.partition_point(|&(r, _)| r <= relative);
        let position = entry.checked_sub(1).map_or(0, |i| segment.index[i].1);
        Some((segment.base, position))
    }

    /// The first offset appended at or after `nanos` (or the end): the segments' newest
    /// timestamps and the timestamp index narrow the scan to one index interval.
    pub fn offset_for_time(&mut self, nanos: u64) -> Result<u64, StorageError> {
        let Some(segment) = self.segments.iter().find(|s| s.last_timestamp >= nanos) else {
            return Ok(self.next_offset);
        };
        // The last index entry before `nanos`: the answer is at or after it.
        let entry = segment.times.partition_point(|&t| t < nanos);
        let from = entry.checked_sub(1).map_or(segment.base, |i| {
            segment.base + u64::from(segment.index[i].0)
        });
        let mut offset = from;
        loop {
            let batch = self.read_from(offset, 256)?;
            let Some(last) = batch.last() else {
                return Ok(self.next_offset);
            };
            if let Some(found) = batch.iter().find(|r| r.timestamp >= nanos) {
                return Ok(found.offset);
            }
            offset = last.offset + 1;
        }
    }

    /// Reads up to `max` records from disk starting at `offset`, using the offset index to
    /// skip to the right place. Only synced or flushed bytes are visible.
    pub fn read_from(
        &mut self,
        offset: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        let _ = self.sync();
        let Some((base, position)) = self.locate(offset) else {
            return Ok(Vec::new());
        };
        let max_body = frame::max_body(self.config.max_record_bytes);
        let mut out = Vec::new();
        let mut segment_base = base;
        let mut position = position as usize;
        while out.len() < max {
            let path = file(&self.dir, segment_base, "log");
            let data = self.fs.read(&path).map_err(io(&path))?;
            while out.len() < max && position < data.len() {
                let (record, size) = frame::decode(&data[position..], max_body).map_err(|e| {
                    StorageError::Corrupt {
                        path: path.clone(),
                        position: position as u64,
                        reason: e.to_string(),
                    }
                })?;
                if record.offset >= offset {
                    out.push(StoredRecord {
                        offset: record.offset,
                        timestamp: record.timestamp,
                        key: record.key.map(<[u8]>::to_vec),
                        value: record.value.to_vec(),
                    });
                }
                position += size;
            }
            match self.segments.iter().find(|s| s.base > segment_base) {
                Some(next) if out.len() < max => {
                    segment_base = next.base;
                    position = 0;
                }
                _ => break,
            }
        }
        Ok(out)
    }
}
