//! Topic configuration and reader start positions.

use std::time::{Duration, SystemTime};

/// What a bounded topic does when it holds `capacity` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The producer waits until the slowest reader or consumer group that must not lose
    /// records (independent readers, and every group's committed offset) is less than
    /// `capacity` records behind. Nothing is ever dropped while such a reader exists. A reader's
    /// progress is published every 32 records (or a quarter of a small capacity) and whenever
    /// it waits for more, so a producer may wait for a reader that has just read a few records
    /// more than it shows. With no reader and no group at all, nobody can lose anything, and
    /// producers do not wait.
    ///
    /// Either way the partition is a log, not a queue: the newest `capacity` records stay
    /// replayable (a new reader from [`Start::Earliest`] or a seek finds them) even once every
    /// reader has read them; older ones are removed as with [`Overflow::DropOldest`].
    #[default]
    Block,
    /// The oldest records are removed; a reader that had not read them gets
    /// [`RecvError::Lagged`](crate::RecvError::Lagged) with the exact number skipped, then
    /// continues from the oldest record kept.
    DropOldest,
}

/// Per-topic settings: partitions, bound and overflow, retention.
///
/// The default is one partition, unbounded (every record kept, like a `Vec`), which suits
/// tests and replayed topics; set a [`capacity`](Self::capacity) to bound memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub(crate) partitions: u32,
    pub(crate) capacity: Option<u64>,
    pub(crate) overflow: Overflow,
    pub(crate) retain_bytes: Option<u64>,
    pub(crate) retain_age: Option<Duration>,
    pub(crate) block_size: Option<usize>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TopicConfig {
    /// One partition, unbounded.
    pub fn new() -> Self {
        Self {
            partitions: 1,
            capacity: None,
            overflow: Overflow::Block,
            retain_bytes: None,
            retain_age: None,
            block_size: None,
        }
    }

    /// Number of partitions (at least 1).
    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Bounds each partition to `records` records, with the given overflow policy.
    ///
    /// Memory is freed a block of records at a time, so a partition holds at least the newest
    /// `records` records (once that many were appended) and fewer than `records` plus one
    /// block, where a block holds `records / 8` rounded down to a power of two, at least 4 and
    /// at most 1024 records: `capacity(1_000, ..)` keeps from 1 000 to 1 063 records,
    /// `capacity(65_536, ..)` from 65 536 to 66 559. (A block is only freed once every record
    /// in it is written: a producer that stalls between claiming an offset and writing it
    /// holds its block.)
    pub fn capacity(mut self, records: u64, overflow: Overflow) -> Self {
        self.capacity = Some(records);
        self.overflow = overflow;
        self
    }

    /// Keeps at most about `bytes` bytes per partition (the in-memory size of each record:
    /// the record header, the inline size of the value and the key's bytes; heap memory owned
    /// by the value is not counted). Older records are removed as with
    /// [`Overflow::DropOldest`].
    pub fn retain_bytes(mut self, bytes: u64) -> Self {
        self.retain_bytes = Some(bytes);
        self
    }

    /// Removes records older than `age`. Retention runs whenever a partition starts a new
    /// block of records and on [`Topic::enforce_retention`](crate::Topic::enforce_retention).
    pub fn retain_age(mut self, age: Duration) -> Self {
        self.retain_age = Some(age);
        self
    }

    /// Records per memory block (a power of two). Memory is allocated and freed a block at a
    /// time; the default is 1024, or an eighth of a smaller capacity (see
    /// [`capacity`](Self::capacity)). Exposed for tests.
    #[doc(hidden)]
    pub fn block_size(mut self, records: usize) -> Self {
        self.block_size = Some(records);
        self
    }

    pub(crate) fn effective_block_size(&self) -> usize {
        if let Some(size) = self.block_size {
            return size;
        }
        match self.capacity {
            // Bounded topics keep blocks of at most an eighth of their capacity, so that what
            // they hold stays within one block of `capacity`.
            Some(cap) => bounded_block_size(cap),
            None => MAX_AUTO_BLOCK,
        }
    }

    /// The first setting (other than the partition count) in which `requested` differs from
    /// `self`: its name, its value here and its value there.
    pub(crate) fn difference(
        &self,
        requested: &TopicConfig,
    ) -> Option<(&'static str, String, String)> {
        let bound = |c: &TopicConfig| c.capacity.map(|capacity| (capacity, c.overflow));
        let differ = |setting, existing: String, requested: String| {
            (existing != requested).then_some((setting, existing, requested))
        };
        let show = |value: Option<String>| value.unwrap_or_else(|| "none".to_owned());
        differ(
            "capacity",
            show(bound(self).map(|(c, o)| format!("{c} ({o:?})"))),
            show(bound(requested).map(|(c, o)| format!("{c} ({o:?})"))),
        )
        .or_else(|| {
            differ(
                "retain_bytes",
                show(self.retain_bytes.map(|b| b.to_string())),
                show(requested.retain_bytes.map(|b| b.to_string())),
            )
        })
        .or_else(|| {
            differ(
                "retain_age",
                show(self.retain_age.map(|a| format!("{a:?}"))),
                show(requested.retain_age.map(|a| format!("{a:?}"))),
            )
        })
        .or_else(|| {
            differ(
                "block_size",
                self.effective_block_size().to_string(),
                requested.effective_block_size().to_string(),
            )
        })
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.partitions == 0 {
            return Err("a topic needs at least one partition");
        }
        if self.capacity == Some(0) {
            return Err("capacity must be at least 1");
        }
        if self.retain_bytes == Some(0) {
            return Err("retain_bytes must be at least 1");
        }
        match self.block_size {
            Some(size) if size == 0 || !size.is_power_of_two() => {
                Err("block size must be a power of two")
            }
            Some(size) if size > 1 << 20 => Err("block size must be at most 2^20"),
            _ => Ok(()),
        }
    }
}

/// The largest block a topic gets unless told otherwise.
const MAX_AUTO_BLOCK: usize = 1024;

/// The block size of a topic bounded to `capacity` records: `capacity / 8` rounded down to a
/// power of two, at least 4 and at most 1024.
fn bounded_block_size(capacity: u64) -> usize {
    let eighth = (capacity / 8).clamp(4, MAX_AUTO_BLOCK as u64);
    1 << eighth.ilog2()
}

/// Where a reader starts, or moves to on a seek.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest record kept.
    Earliest,
    /// The end: only records appended from now on.
    Latest,
    /// This offset (the same in every partition, when a reader reads several).
    Offset(u64),
    /// The first record appended at or after this time.
    Timestamp(SystemTime),
}
