//! File-backed storage of partitions: segment files with CRC-framed records, offset and
//! timestamp indexes, explicit durability, and recovery that cuts torn tails and quarantines
//! corruption.
//!
//! # What an acknowledgement means
//!
//! An append returns once its record is written to the partition's active segment, that is
//! handed to the operating system with one `write` (there is no buffer in the process), so at
//! every level **a killed process (`kill -9`, a panic, an abort) loses no acknowledged
//! record**. What a power loss (or a kernel crash) keeps depends on the level:
//!
//! | level | an acknowledged record survives a process kill | ... and a power loss |
//! |---|---|---|
//! | [`Durability::Always`] | yes | yes: fsynced before the acknowledgement |
//! | [`Durability::Interval`]`(d)` | yes | if it is older than the last fsync, at most `d` before |
//! | [`Durability::Never`] | yes | only once the operating system wrote it back |
//!
//! With `Interval(d)`, a power loss loses at most the records acknowledged since the last
//! fsync (`d` ago or less: fsyncs run every `d` and on an explicit sync), never an older one,
//! and never corrupts, reorders or duplicates what is kept.
//!
//! Whatever the level, recovery never serves a partial or corrupt record: frames are checked
//! (length before allocation, then CRC), a torn tail is cut, and damage anywhere else is set
//! aside while every valid frame around it is kept. Records found lost (damaged, in a deleted
//! segment, or cut off where the index files show they were) are listed in the
//! [`RecoveryReport`], never reused, and reported to readers as skipped.

pub mod codec;
mod frame;
pub mod fs;
mod log;
mod recovery;
mod segment;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::NameError;

pub use frame::FrameError;
pub use log::{PartitionLog, StoredRecord};
pub use recovery::{LostRecords, RecoveryReport};

/// The directory of partition `partition` of topic `topic` under `root`. The topic name is
/// validated first (Kafka's rules), so no name can reach outside `root`: not `..`, not a
/// separator, not a NUL, not an absolute path.
pub fn partition_dir(root: &Path, topic: &str, partition: u32) -> Result<PathBuf, NameError> {
    crate::name::validate(topic)?;
    Ok(root.join(topic).join(partition.to_string()))
}

/// The file holding the committed offsets of consumer group `group` of topic `topic`.
pub fn group_file(root: &Path, topic: &str, group: &str) -> Result<PathBuf, NameError> {
    crate::name::validate(topic)?;
    crate::name::validate(group)?;
    Ok(root
        .join(topic)
        .join("groups")
        .join(format!("{group}.offsets")))
}

/// Where and how a file-backed topic keeps its files: `root/<topic>/<partition>/` segments and
/// `root/<topic>/groups/<group>.offsets` committed offsets.
#[derive(Clone)]
pub struct Storage {
    pub(crate) root: PathBuf,
    pub(crate) config: StorageConfig,
    pub(crate) fs: std::sync::Arc<dyn fs::Fs>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("root", &self.root)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Files under `root`, with the default [`StorageConfig`] (fsync on every append).
    pub fn dir(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            config: StorageConfig::default(),
            fs: std::sync::Arc::new(fs::OsFs),
        }
    }

    /// Segment size, index interval, record size limit and durability.
    pub fn config(mut self, config: StorageConfig) -> Self {
        self.config = config;
        self
    }

    /// The durability level (see the module docs for what an acknowledgement means).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// Another file system (a simulated one in tests).
    pub fn file_system(mut self, fs: std::sync::Arc<dyn fs::Fs>) -> Self {
        self.fs = fs;
        self
    }
}

/// When appended records are fsynced. At every level an append is handed to the operating
/// system before it is acknowledged, so a killed process loses nothing acknowledged; the
/// level decides what a power loss keeps (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Never explicitly: the operating system writes back when it likes. Survives a killed
    /// process, not a power loss.
    Never,
    /// At most this long after the previous sync. A power loss loses at most the records of
    /// the last interval.
    Interval(Duration),
    /// On every append, before it returns. Survives a power loss.
    #[default]
    Always,
}

/// How a partition is stored on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// A segment is closed and a new one started past this size (default 64 MiB).
    pub segment_bytes: u64,
    /// An index entry every this many bytes of frames (default 4 KiB).
    pub index_interval_bytes: u64,
    /// The largest key plus value a record may have (default 1 MiB); checked before any
    /// allocation when reading.
    pub max_record_bytes: usize,
    /// When records are fsynced.
    pub durability: Durability,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            max_record_bytes: 1 << 20,
            durability: Durability::Always,
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O error on a file.
    #[error("i/o error on {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The record is larger than the limit.
    #[error("record of {size} bytes is over the limit of {limit} bytes")]
    RecordTooLarge {
        /// Its key and value bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A frame read back from disk is invalid.
    #[error("corrupt record in {path:?} at byte {position}: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The active segment is shorter than what was written to it (something else truncated
    /// it): reopen the partition to recover what is on disk.
    #[error("the active segment lost bytes written to it: reopen the partition to recover")]
    Failed,
    /// The record was written (it is kept, and its offset is taken) but the fsync that
    /// `Durability::Always` asks for failed: it may not survive a power loss.
    #[error("record {offset} was written but not made durable: {source}")]
    NotDurable {
        /// Its offset.
        offset: u64,
        /// Why the fsync failed.
        source: Box<StorageError>,
    },
}
