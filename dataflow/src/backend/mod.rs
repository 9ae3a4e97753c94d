//! Where a pipeline's topics live: the embedded broker (`mem://`, the default), Redis Streams
//! (`redis://`, `rediss://`, cargo feature `redis`) or Kafka (`kafka://`, cargo feature
//! `kafka`), chosen at run time by URL with no change to pipeline code.
//!
//! The remote backends move bytes; values cross the process edge through a
//! [`Codec`](crate::codec::Codec) (bincode by default, JSON for other tools). Every backend has
//! the same commit model: a consumer group whose members commit the last record they
//! processed in each partition, after the outputs it produced were written (Kafka: an offset
//! commit; Redis: an `XACK` of every entry up to it).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub(crate) mod connection;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "redis")]
pub mod redis;
mod secret;
mod typed;
mod url;

pub use connection::Connection;
pub use error::BackendError;
pub use secret::Secret;
pub use typed::{Received, TopicProducer, TopicReader, Undecodable};
pub use url::BackendUrl;

/// A remote backend shared by every task of a pipeline.
pub type SharedBackend = std::sync::Arc<dyn RemoteBackend>;

/// A boxed future, as the remote backend traits return (they are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A record read from a remote topic, still encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition (on Redis, the entry id packed as `ms << 20 | seq`).
    pub offset: u64,
    /// When it was appended, in nanoseconds since the Unix epoch.
    pub timestamp_nanos: u64,
    /// The encoded value.
    pub payload: Vec<u8>,
}

/// A log service that holds topics of encoded records: implemented by the Redis and Kafka
/// bridges.
pub trait RemoteBackend: Send + Sync + fmt::Debug {
    /// The URL scheme, for messages (`redis`, `kafka`).
    fn scheme(&self) -> &'static str;

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
    /// including `offset`. A commit for a partition the member no longer owns is dropped
    /// (its new owner reads those records again: at-least-once).
    fn commit<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Leaves the group, handing this member's partitions to the others at once.
    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>>;
}

/// How long a poll waits when nothing arrives, so that a stop request is seen promptly.
pub(crate) const POLL_WAIT: Duration = Duration::from_millis(200);
