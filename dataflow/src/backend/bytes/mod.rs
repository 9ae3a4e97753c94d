//! Backends that move bytes (Redis, Kafka, standard input and output, and any backend of
//! your own): they implement the byte-level traits below once, and the codec adapter
//! ([`codec`]) turns them into the runtime's typed log interface.
//!
//! [`RemoteBackend`] holds topics of encoded records; a [`RemoteProducer`] appends to one; a
//! [`RemoteMember`] is one member of a consumer group of one. Every backend has the same
//! commit model: a member commits the last record it processed in each partition, after the
//! outputs it produced were written (Kafka: an offset commit; Redis: an `XACK` of every entry up
//! to it).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{BackendError, BoxFuture, StartAt};

mod adapter;
pub(crate) mod backpressure;
pub(crate) mod codec;

pub(crate) use adapter::Bytes;

/// A record read from a remote topic, still encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition (on Redis, the entry id packed as `ms << 20 | seq` when
    /// that fits, see the `redis` module).
    pub offset: u64,
    /// When it was appended, in nanoseconds since the Unix epoch.
    pub timestamp_nanos: u64,
    /// The encoded value.
    pub payload: Vec<u8>,
    /// The backend's own name for the record's place, when it is not the offset (Redis: the
    /// entry id): dead letters show it.
    pub id: Option<String>,
}

/// A log service that holds topics of encoded records: implemented by the Redis, Kafka and
/// stdio bridges, and by any backend of your own (see [`Connection::remote`]).
///
/// [`Connection::remote`]: super::Connection::remote
pub trait RemoteBackend: Send + Sync + fmt::Debug {
    /// The URL scheme, for messages (`redis`, `kafka`).
    fn scheme(&self) -> &'static str;

    /// Whether several processes share its topics and groups (Redis, Kafka): then a pipeline
    /// cannot bind one of its sources or sinks to an embedded topic. Default: yes.
    fn shared_between_processes(&self) -> bool {
        true
    }

    /// Creates `topic` with `partitions` partitions unless it exists; returns the partition
    /// count it has.
    fn ensure_topic<'a>(
        &'a self,
        topic: &'a str,
        partitions: u32,
    ) -> BoxFuture<'a, Result<u32, BackendError>>;

    /// A producer of `topic`.
    fn producer<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteProducer>, BackendError>>;

    /// Reads `partition` of `topic` outside any group: up to `max` records after `cursor` (an
    /// empty cursor: from the first record kept), waiting a little when there are none, and
    /// the cursor to go on from. A task restoring keyed state reads its changelog this way.
    /// Default: not supported.
    fn read_partition<'a>(
        &'a self,
        topic: &'a str,
        partition: u32,
        cursor: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Delivery>, String), BackendError>> {
        let _ = (partition, cursor, max);
        Box::pin(async move {
            Err(BackendError::Topic {
                backend: self.scheme(),
                topic: topic.to_owned(),
                message: "this backend cannot read a partition outside a group".to_owned(),
            })
        })
    }

    /// Joins consumer group `group` of `topic` (`partitions` partitions) as a new member.
    /// A group that does not exist yet starts at the earliest record. `local_members` is how
    /// many members of this group the process joins, one after the other (a pipeline: one
    /// per partition; a lone reader: 1), so that a bridge can tell when they have all joined.
    fn join<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        partitions: u32,
        local_members: u32,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>>;

    /// [`join`](Self::join), a group that does not exist yet starting at `start`. Default:
    /// the earliest record only.
    fn join_at<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        partitions: u32,
        local_members: u32,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>> {
        match start {
            StartAt::Earliest => self.join(topic, group, partitions, local_members),
            other => Box::pin(async move {
                Err(BackendError::Topic {
                    backend: self.scheme(),
                    topic: topic.to_owned(),
                    message: format!("a new group cannot start at {other:?} on this backend"),
                })
            }),
        }
    }
}

/// Appends encoded records to one remote topic.
pub trait RemoteProducer: Send {
    /// Appends `payloads` to `partition`, in order, and returns once the backend has them.
    fn send<'a>(
        &'a mut self,
        partition: u32,
        payloads: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// How many records of `partition` its slowest consumer group has not processed yet
    /// (not read, or read and not committed), for backpressure; `None` when the backend
    /// cannot tell cheaply (then nothing waits).
    fn backlog(&mut self, partition: u32) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        let _ = partition;
        Box::pin(async { Ok(None) })
    }
}

/// One member of a consumer group of a remote topic. The backend decides which partitions it
/// reads, and moves them to the other members when it leaves or dies.
pub trait RemoteMember: Send {
    /// Waits up to `wait` for records and returns at most `max` of them, in order within each
    /// partition (an empty batch once `wait` has passed).
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, BackendError>>;

    /// Commits, for each `(partition, offset)`, every record of that partition up to and
    /// including `offset`. A commit for a partition the member no longer owns is refused, and
    /// the partition returned (its new owner reads those records again: at-least-once).
    fn commit<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>>;

    /// Leaves the group, handing this member's partitions to the others at once.
    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>>;

    /// Whether the stream has ended: no record will follow what `poll` returned (standard
    /// input at its end). Default: never (a remote topic can always grow).
    fn ended(&self) -> bool {
        false
    }

    /// The partitions this member reads now, as far as it knows (`None` if it cannot tell):
    /// a task restores the keyed state of a partition it gains.
    fn assignment(&self) -> Option<Vec<u32>> {
        None
    }
}

/// How long one poll waits when nothing arrives.
pub(crate) const POLL_WAIT: Duration = Duration::from_millis(200);

/// A topic of a byte-level backend, resolved: what the codec adapter wraps.
#[derive(Clone, Debug)]
pub(crate) struct ByteTopic {
    pub(crate) backend: Arc<dyn RemoteBackend>,
    pub(crate) name: String,
    pub(crate) partitions: u32,
}
