//! Records as readers see them: borrowed without a copy, or owned on request.

use std::fmt;
use std::ops::Deref;
use std::time::SystemTime;

use crate::block::Entry;
use crate::clock::from_unix_nanos;

/// Where a record is: its partition and its offset in that partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Partition index, from 0.
    pub partition: u32,
    /// Offset in the partition, dense from 0.
    pub offset: u64,
}

/// A record read from a topic, borrowed from the log without copying the value.
///
/// It borrows the reader that returned it: read the next record once you are done with this
/// one, or keep an owned copy with [`Record::to_owned`].
pub struct Record<'a, T> {
    entry: &'a Entry<T>,
    position: Position,
}

impl<'a, T> Record<'a, T> {
    pub(crate) fn new(entry: &'a Entry<T>, partition: u32, offset: u64) -> Self {
        Self {
            entry,
            position: Position { partition, offset },
        }
    }

    /// The value.
    pub fn value(&self) -> &'a T {
        &self.entry.value
    }

    /// The offset in its partition.
    pub fn offset(&self) -> u64 {
        self.position.offset
    }

    /// The partition index.
    pub fn partition(&self) -> u32 {
        self.position.partition
    }

    /// Partition and offset together.
    pub fn position(&self) -> Position {
        self.position
    }

    /// When the record was appended.
    pub fn timestamp(&self) -> SystemTime {
        from_unix_nanos(self.entry.timestamp)
    }

    /// When the record was appended, in nanoseconds since the UNIX epoch.
    pub fn timestamp_nanos(&self) -> u64 {
        self.entry.timestamp
    }

    /// The key it was sent with, if any.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.entry.key.as_deref()
    }

    /// An owned copy (clones the value and the key).
    pub fn to_owned(&self) -> OwnedRecord<T>
    where
        T: Clone,
    {
        OwnedRecord {
            position: self.position,
            timestamp_nanos: self.entry.timestamp,
            key: self.entry.key.clone(),
            value: self.entry.value.clone(),
        }
    }
}

impl<T> Deref for Record<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.entry.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Record<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("partition", &self.position.partition)
            .field("offset", &self.position.offset)
            .field("timestamp_nanos", &self.entry.timestamp)
            .field("key", &self.entry.key)
            .field("value", &self.entry.value)
            .finish()
    }
}

/// An owned copy of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord<T> {
    /// Partition and offset.
    pub position: Position,
    /// Append time, nanoseconds since the UNIX epoch.
    pub timestamp_nanos: u64,
    /// The key it was sent with, if any.
    pub key: Option<Box<[u8]>>,
    /// The value.
    pub value: T,
}
