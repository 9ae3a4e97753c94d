//! Error types. Each error that is given a value gives it back.

use std::fmt;

/// Why a topic or group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than 249 bytes.
    #[error("name is {len} bytes long, the limit is 249")]
    TooLong {
        /// Length of the refused name, in bytes.
        len: usize,
    },
    /// The name is `.` or `..`.
    #[error("name cannot be `.` or `..`")]
    DotOnly,
    /// The name holds a character outside `[a-zA-Z0-9._-]`.
    #[error("name has the character {ch:?} at byte {index}, only `[a-zA-Z0-9._-]` are allowed")]
    InvalidChar {
        /// The first refused character.
        ch: char,
        /// Its byte index in the name.
        index: usize,
    },
    /// A user topic name starts with the reserved `__` prefix.
    #[error("names starting with `__` are reserved for internal topics")]
    Reserved,
    /// An internal topic name does not start with `__`.
    #[error("internal topic names must start with `__`")]
    NotInternal,
}

/// Why a topic could not be created or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is not a valid topic name.
    #[error("invalid topic name {name:?}: {source}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// Why it was refused.
        source: NameError,
    },
    /// The topic exists with another value type.
    #[error("topic `{name}` holds `{existing}` values, not `{requested}`")]
    TypeMismatch {
        /// Topic name.
        name: String,
        /// Value type the topic was created with.
        existing: &'static str,
        /// Value type asked for now.
        requested: &'static str,
    },
    /// The topic exists with another partition count.
    #[error("topic `{name}` has {existing} partitions, not {requested}")]
    PartitionMismatch {
        /// Topic name.
        name: String,
        /// Partition count the topic was created with.
        existing: u32,
        /// Partition count asked for now.
        requested: u32,
    },
    /// The topic exists with another setting (capacity and overflow, byte or age retention,
    /// block size) than the one asked for.
    #[error("topic `{name}` has {setting} {existing}, not {requested}")]
    ConfigMismatch {
        /// Topic name.
        name: String,
        /// Which setting differs.
        setting: &'static str,
        /// Its value in the existing topic.
        existing: String,
        /// The value asked for now.
        requested: String,
    },
    /// The configuration cannot work.
    #[error("invalid configuration for topic `{name}`: {reason}")]
    InvalidConfig {
        /// Topic name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A file-backed topic's files could not be opened or recovered.
    #[error("storage of topic `{name}`: {message}")]
    Storage {
        /// Topic name.
        name: String,
        /// What failed.
        message: String,
    },
    /// A topic of this name exists already ([`Broker::create_topic`](crate::Broker::create_topic)).
    #[error("topic `{name}` exists already")]
    AlreadyExists {
        /// Topic name.
        name: String,
    },
    /// No topic has this name.
    #[error("no topic named `{name}`")]
    NotFound {
        /// Topic name.
        name: String,
    },
    /// The broker was closed.
    #[error("the broker is closed")]
    BrokerClosed,
}

/// A send that did not happen; the value is given back.
#[derive(PartialEq, Eq, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The topic is closed.
    #[error("sending on a closed topic")]
    Closed(T),
    /// The partition asked for does not exist.
    #[error("partition {partition} does not exist, the topic has {partitions}")]
    NoSuchPartition {
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
        /// The value that was not sent.
        value: T,
    },
    /// A file-backed topic could not encode or write the record; nothing was kept.
    #[error("the record was not stored: {message}")]
    Storage {
        /// What failed.
        message: String,
        /// The value that was not sent.
        value: T,
    },
    /// A file-backed topic with `Durability::Always` appended the record (readers see it)
    /// but could not fsync it: it may not survive a power loss. The value is in the log.
    #[error("record {position:?} was appended but not made durable: {message}")]
    NotDurable {
        /// Where it was appended.
        position: crate::record::Position,
        /// What failed.
        message: String,
    },
}

impl<T> SendError<T> {
    /// Takes the value that was not sent (`None` for `NotDurable`: it was appended).
    pub fn into_inner(self) -> Option<T> {
        match self {
            Self::Closed(value)
            | Self::NoSuchPartition { value, .. }
            | Self::Storage { value, .. } => Some(value),
            Self::NotDurable { .. } => None,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::NoSuchPartition {
                partition,
                partitions,
                ..
            } => f
                .debug_struct("NoSuchPartition")
                .field("partition", partition)
                .field("partitions", partitions)
                .finish_non_exhaustive(),
            Self::Storage { message, .. } => f
                .debug_struct("Storage")
                .field("message", message)
                .finish_non_exhaustive(),
            Self::NotDurable { position, message } => f
                .debug_struct("NotDurable")
                .field("position", position)
                .field("message", message)
                .finish(),
        }
    }
}

/// A non-waiting send that did not happen; the value is given back.
#[derive(PartialEq, Eq, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// The topic is bounded with `Overflow::Block` and full: a reader or group must move on
    /// first.
    #[error("topic is full")]
    Full(T),
    /// The send failed for a reason waiting would not fix.
    #[error(transparent)]
    Send(SendError<T>),
}

impl<T> TrySendError<T> {
    /// Takes the value that was not sent (`None` if it was appended but not made durable).
    pub fn into_inner(self) -> Option<T> {
        match self {
            Self::Full(value) => Some(value),
            Self::Send(err) => err.into_inner(),
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Send(err) => f.debug_tuple("Send").field(err).finish(),
        }
    }
}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        Self::Send(err)
    }
}

/// Why a receive returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The reader fell behind the topic's retention: `skipped` records were removed before it
    /// read them. The reader has moved to the oldest record kept, and the next receive
    /// continues from there. (A file-backed topic also reports so the records its recovery
    /// found lost: see [`Topic::recovery`](crate::Topic::recovery).)
    #[error("reader lagged behind on partition {partition}: {skipped} records were skipped")]
    Lagged {
        /// Partition where records were skipped.
        partition: u32,
        /// Exactly how many records were skipped.
        skipped: u64,
    },
    /// The topic is closed and every record was read.
    #[error("topic is closed and fully read")]
    Closed,
}

/// Why a non-waiting receive returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No record is available now.
    #[error("no record available")]
    Empty,
    /// See [`RecvError::Lagged`].
    #[error("reader lagged behind on partition {partition}: {skipped} records were skipped")]
    Lagged {
        /// Partition where records were skipped.
        partition: u32,
        /// Exactly how many records were skipped.
        skipped: u64,
    },
    /// The topic is closed and every record was read.
    #[error("topic is closed and fully read")]
    Closed,
}

impl TryRecvError {
    /// The same error from a receive that waits (which never ends `Empty`).
    pub(crate) fn into_waiting(self) -> RecvError {
        match self {
            Self::Lagged { partition, skipped } => RecvError::Lagged { partition, skipped },
            Self::Closed => RecvError::Closed,
            Self::Empty => unreachable!("a waiting receive does not return empty"),
        }
    }
}

impl From<RecvError> for TryRecvError {
    fn from(err: RecvError) -> Self {
        match err {
            RecvError::Lagged { partition, skipped } => Self::Lagged { partition, skipped },
            RecvError::Closed => Self::Closed,
        }
    }
}

/// A receive with a deadline that returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// The deadline passed with no record.
    #[error("timed out waiting for a record")]
    Timeout,
    /// See [`RecvError`].
    #[error(transparent)]
    Recv(#[from] RecvError),
}

/// Why a reader could not be positioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeekError {
    /// The partition does not exist.
    #[error("partition {partition} does not exist, the topic has {partitions}")]
    NoSuchPartition {
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// The reader does not read this partition (a group member that does not own it).
    #[error("partition {partition} is not read by this reader")]
    NotAssigned {
        /// The partition asked for.
        partition: u32,
    },
    /// The offset is outside the records kept.
    #[error(
        "offset {offset} is out of range for partition {partition}, kept: {earliest}..={latest}"
    )]
    OffsetOutOfRange {
        /// Partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// The oldest offset kept.
        earliest: u64,
        /// The next offset to be written (reading there waits for new records).
        latest: u64,
    },
}

/// Why a commit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The partition does not exist.
    #[error("partition {partition} does not exist, the topic has {partitions}")]
    NoSuchPartition {
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// The member does not own this partition, or lost it (to a rebalance) since it read what
    /// it commits, even if it got it back since: the partition's next owner resumed from the
    /// last successful commit, and this member resumes from the group's committed offset.
    #[error("partition {partition} is not owned by this member in generation {generation}")]
    NotOwner {
        /// Partition.
        partition: u32,
        /// The group's current generation.
        generation: u64,
    },
    /// A file-backed topic could not store the commit; the committed offset did not move.
    #[error("the commit was not stored: {message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// The offset is below where the member began reading the partition under its current
    /// ownership (the group's committed offset then, or where it sought to since): it was
    /// read under an earlier ownership, which the member lost since.
    #[error(
        "offset {offset} of partition {partition} is below {from}, where this member's current ownership of it began"
    )]
    Stale {
        /// Partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// Where the member's current ownership began.
        from: u64,
    },
    /// The broker was closed ([`Broker::close`](crate::Broker::close)): its groups accept
    /// no commit any more.
    #[error("the broker is closed")]
    BrokerClosed,
    /// The offset is past the end of the partition.
    #[error("offset {offset} is past the end of partition {partition} ({end})")]
    OffsetOutOfRange {
        /// Partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// The partition's end offset.
        end: u64,
    },
}

/// Why a group could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The name is not a valid group name.
    #[error("invalid group name {name:?}: {source}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// Why it was refused.
        source: NameError,
    },
    /// A file-backed topic could not read the group's committed offsets.
    #[error("committed offsets of the group: {message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// A new group's start position does not exist in some partition.
    #[error("invalid start position for group: {0}")]
    Start(#[from] SeekError),
    /// The broker was closed ([`Broker::close`](crate::Broker::close)).
    #[error("the broker is closed")]
    BrokerClosed,
}
