//! A segment of a partition's files, as the partition log keeps it in memory, and the file
//! names and writes both the log and its recovery use.

use std::path::{Path, PathBuf};

use crate::storage::fs::Fs;
use crate::storage::{StorageConfig, StorageError};

/// One segment: `<base>.log` and its two indexes.
pub(super) struct Segment {
    pub(super) base: u64,
    /// Bytes of valid frames.
    pub(super) bytes: u64,
    /// Newest timestamp in the segment.
    pub(super) last_timestamp: u64,
    /// (relative offset, position) pairs, as in the `.index` file.
    pub(super) index: Vec<(u32, u32)>,
    /// The timestamp of the record at each `index` entry, as in the `.timeindex` file.
    pub(super) times: Vec<u64>,
}

impl Segment {
    /// An empty segment at `base`.
    pub(super) fn empty(base: u64) -> Self {
        Self {
            base,
            bytes: 0,
            last_timestamp: 0,
            index: Vec::new(),
            times: Vec::new(),
        }
    }

    /// The segment at `base` of `bytes` bytes, holding `records` (each as its byte range in
    /// the file, offset and timestamp), with an index entry every `index_interval_bytes` of
    /// frames.
    pub(super) fn of(
        base: u64,
        bytes: u64,
        records: impl IntoIterator<Item = (std::ops::Range<usize>, u64, u64)>,
        config: &StorageConfig,
    ) -> Self {
        let mut segment = Self::empty(base);
        segment.bytes = bytes;
        let mut since_index = u64::MAX;
        for (at, offset, timestamp) in records {
            if since_index >= config.index_interval_bytes {
                segment
                    .index
                    .push(((offset - base) as u32, at.start as u32));
                segment.times.push(timestamp);
                since_index = 0;
            }
            since_index += (at.end - at.start) as u64;
            segment.last_timestamp = timestamp;
        }
        segment
    }
}

/// The file of the segment at `base` with this extension.
pub(super) fn file(dir: &Path, base: u64, extension: &str) -> PathBuf {
    dir.join(format!("{base:020}.{extension}"))
}

/// An I/O error on `path`.
pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Replaces `path` with `bytes`, durably and atomically: a temporary file, fsynced, then
/// renamed over it.
pub(super) fn write_file(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    let temporary = PathBuf::from(name);
    let _ = fs.remove(&temporary);
    let mut out = fs.open_append(&temporary).map_err(io(&temporary))?;
    out.append(bytes).map_err(io(&temporary))?;
    out.sync().map_err(io(&temporary))?;
    fs.rename(&temporary, path).map_err(io(path))
}
