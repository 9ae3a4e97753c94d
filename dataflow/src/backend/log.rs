//! The typed log interface: every topic a pipeline touches (sources, sinks, internal topics,
//! dead letters) and every [`Connection`](super::Connection) producer or reader goes through
//! these three traits, whatever the backend.
//!
//! - [`LogTopic`]: a topic of `T`, resolved on its backend: its name, its partition count, and
//!   what makes writers and group members.
//! - [`LogWriter`]: appends values to one partition at a time.
//! - [`LogReader`]: one member of a consumer group: reads batches, commits, leaves.
//!
//! Two implementations exist. The embedded broker's topics implement them directly
//! ([`super::mem`]): values are never encoded, and the only dynamic dispatch is one call per
//! batch. Every other backend moves bytes: it implements the byte-level traits of
//! [`super::bytes`] once, and one codec adapter ([`super::bytes::codec`]) turns them into
//! these. The runtime never asks which kind it holds.

use std::fmt;

use broker::Position;

use super::{BackendError, BoxFuture, StartAt};
use crate::codec::CodecError;

/// A group member or reader, on its way.
pub(crate) type Joining<'a, T> = BoxFuture<'a, Result<Box<dyn LogReader<T>>, BackendError>>;

/// A topic of `T` on a backend.
pub(crate) trait LogTopic<T>: Send + Sync {
    /// The topic's name on its backend.
    fn name(&self) -> &str;

    /// Its partition count.
    fn partitions(&self) -> u32;

    /// A writer of this topic.
    fn writer(&self) -> BoxFuture<'_, Result<Box<dyn LogWriter<T>>, BackendError>>;

    /// Joins consumer group `group` as a new member. `local_members` is how many members of
    /// this group this process joins, one after the other (a pipeline: one per partition), so
    /// that a backend can tell when they have all joined. A new group starts at `start`.
    fn join<'a>(&'a self, group: &'a str, local_members: u32, start: StartAt) -> Joining<'a, T>;

    /// A reader of `partition` alone, outside any group (commits do nothing), from its first
    /// record kept or from its end: for an in-process topic between two segments of a
    /// checkpointing pipeline (from the end: the checkpoints carry its recovery), or a
    /// changelog a task restores keyed state from (from the start). `None` when the backend
    /// has none.
    fn partition_reader(&self, partition: u32, from: From) -> Option<Joining<'_, T>> {
        let _ = (partition, from);
        None
    }

    /// The end offset of each partition, where the backend keeps them in this process (the
    /// embedded broker): an exactly-once sink needs them.
    fn end_offsets(&self) -> Option<Vec<u64>> {
        None
    }

    /// A task of the pipeline failed: writers waiting for room in this topic give up (with
    /// [`BackendError::Closed`]), and readers of an in-process topic end, so that no task waits
    /// for one that is gone. Only called on the internal topics of one pipeline run.
    fn fail(&self) {}
}

/// Appends values to a topic.
pub(crate) trait LogWriter<T>: Send {
    /// Appends `values` (drained) to `partition`, in order, and returns once they are as
    /// durable as the topic promises (appended in memory, fsynced, or acknowledged by the
    /// server). Waits while a bounded topic is full.
    ///
    /// A value that cannot be written (it does not encode) is handed back in `rejected` with
    /// the reason, and the others are written; without `rejected`, such a value fails the
    /// whole batch with [`BackendError::Codec`] before anything is written.
    fn append<'a>(
        &'a mut self,
        partition: u32,
        values: &'a mut Vec<T>,
        rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// [`append`](Self::append), with each value's origin: the append time of the source
    /// record it was made from (nanoseconds since the Unix epoch), which an internal topic
    /// carries on so that end-to-end latency is measured from the source. Other topics have
    /// no use for it.
    fn append_traced<'a>(
        &'a mut self,
        partition: u32,
        values: &'a mut Vec<T>,
        origins: &'a mut Vec<u64>,
        rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        origins.clear();
        self.append(partition, values, rejected)
    }

    /// Marks, in every partition, that writer `writer` has written everything before
    /// checkpoint `epoch` (internal topics of a checkpointing pipeline; nothing elsewhere).
    fn barrier(&mut self, epoch: u64, writer: u32) -> BoxFuture<'_, Result<(), BackendError>> {
        let _ = (epoch, writer);
        Box::pin(async { Ok(()) })
    }
}

/// Where a partition reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum From {
    /// The first record kept.
    Start,
    /// The end: records appended from now on.
    End,
}

/// How long a read waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Until there is something to return: records, a lag or the end of the stream.
    ForRecords,
    /// Not at all on the embedded broker; one short poll on a remote backend. An empty batch
    /// then means "nothing more for now" (a drain stops there).
    Briefly,
}

/// One member of a consumer group: it reads the partitions the group gives it.
pub(crate) trait LogReader<T>: Send {
    /// Appends up to `max` records to `batch` (in order within each partition), waiting as
    /// `wait` says. Cancel-safe: dropping the future before it completes loses no record (it is
    /// returned by the next call).
    fn read<'a>(
        &'a mut self,
        max: usize,
        wait: Wait,
        batch: &'a mut Batch<T>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Commits, for each position, every record of its partition up to and including it: the
    /// group resumes after it. Partitions this member no longer owns (the group gave them to
    /// another member) are refused and returned; their new owner reads those records again.
    fn commit<'a>(
        &'a mut self,
        positions: &'a [Position],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>>;

    /// The value of a record this member returned, read again (from the log, or decoded again
    /// from its payload): a dead letter carries it, so that records need not be copied in case
    /// one fails. `None` if it is gone (retention removed it).
    /// `payloads` are those of the batch the record came in.
    fn again(&self, record: &RecordMeta, payloads: &[Vec<u8>]) -> Option<T>;

    /// The codec of the payloads this member reads, when the backend moves bytes: a stored
    /// dead letter carries the record's payload as read, in this codec.
    fn payload_codec(&self) -> Option<crate::codec::Codec> {
        None
    }

    /// Leaves the group: its partitions go to the other members at once.
    fn leave(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>>;

    /// The partitions this member reads now, as far as it knows (`None` if it cannot tell):
    /// a task restores the keyed state of a partition it gains, and drops that of one it
    /// loses.
    fn assignment(&self) -> Option<Vec<u32>> {
        None
    }

    /// Moves the reading position of each partition this member owns among `positions`
    /// (`(partition, next offset)`) there, and returns those partitions: a pipeline restarting
    /// from a checkpoint reads its sources from the checkpoint's positions. Backends without
    /// checkpoints move nothing.
    fn seek<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        let _ = positions;
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Where a record was read and when it was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordMeta {
    /// Its partition and offset.
    pub(crate) position: Position,
    /// When it was appended, in nanoseconds since the Unix epoch.
    pub(crate) timestamp_nanos: u64,
    /// Its index in the batch's payloads, when the backend keeps them.
    pub(crate) payload: u32,
}

/// A record read into a [`Batch`].
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub(crate) value: T,
    pub(crate) meta: RecordMeta,
}

/// What one read returned: records, and what else it met. Reused from batch to batch.
pub(crate) struct Batch<T> {
    /// The records, in order within each partition.
    pub(crate) records: Vec<Entry<T>>,
    /// Payloads that did not decode as `T` (remote backends): dead letters.
    pub(crate) undecodable: Vec<(RecordMeta, Undecodable)>,
    /// The payloads of `records` (remote backends only), indexed by [`RecordMeta::payload`].
    pub(crate) payloads: Vec<Vec<u8>>,
    /// The backend's own names of the records' places, beside `payloads` (Redis entry ids).
    pub(crate) ids: Vec<Option<String>>,
    /// Checkpoint barriers met among the records (internal topics of a checkpointing
    /// pipeline).
    pub(crate) barriers: Vec<Barrier>,
    /// Records skipped because retention removed them before this member read them.
    pub(crate) lagged: u64,
    /// The stream has ended (an embedded topic closed and read to its end, or the end of
    /// standard input): no record will follow.
    pub(crate) ended: bool,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            undecodable: Vec::new(),
            payloads: Vec::new(),
            ids: Vec::new(),
            barriers: Vec::new(),
            lagged: 0,
            ended: false,
        }
    }
}

impl<T> Batch<T> {
    /// Empties it for the next read (keeping its allocations).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.undecodable.clear();
        self.payloads.clear();
        self.ids.clear();
        self.barriers.clear();
        self.lagged = 0;
        self.ended = false;
    }

    /// How many records it holds, decoded or not.
    pub(crate) fn len(&self) -> usize {
        self.records.len() + self.undecodable.len()
    }

    /// Whether it holds anything a task must handle: records or barriers.
    pub(crate) fn has_work(&self) -> bool {
        self.len() > 0 || !self.barriers.is_empty()
    }
}

/// A checkpoint barrier read from an internal topic (see `runtime/frame.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Barrier {
    pub(crate) epoch: u64,
    pub(crate) writer: u32,
    /// How many writers each partition of the topic has (so how many barriers of one epoch
    /// a reader of a partition meets).
    pub(crate) writers: u32,
    pub(crate) position: Position,
}

/// A payload that did not decode as the topic's value type.
#[derive(Debug)]
pub struct Undecodable {
    /// Why.
    pub error: CodecError,
    /// The bytes as read.
    pub payload: Vec<u8>,
    /// The backend's own name for the record's place, when it is not the offset (Redis: the
    /// entry id).
    pub id: Option<String>,
}

impl fmt::Display for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a payload of {} bytes did not decode: {}",
            self.payload.len(),
            self.error
        )
    }
}

impl std::error::Error for Undecodable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
