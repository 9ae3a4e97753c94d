//! An embedded log broker with Kafka semantics: topics, partitions, dense offsets, consumer
//! groups, replay, all inside the process and without locks on the hot path.
//!
//! # Hello, world!
//!
//! ```
//! use broker::{Broker, Start, TopicConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::new();
//! let orders = broker.topic::<String>("orders", TopicConfig::new().partitions(2))?;
//!
//! let producer = orders.producer();
//! let at = producer.send_keyed_blocking(b"customer-7", "two coffees".to_owned())?;
//!
//! let mut reader = orders.consumer(Start::Earliest)?;
//! let record = reader.recv_blocking()?;
//! assert_eq!(record.value(), "two coffees");
//! assert_eq!(record.position(), at);
//! assert_eq!(record.key(), Some(&b"customer-7"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! # Topics, partitions, offsets
//!
//! A [`Broker`] holds named [`Topic`]s, each typed by its value (`T: Send + Sync + 'static`).
//! Reopening a name with another type, partition count or setting is an error
//! ([`TopicError::TypeMismatch`], [`TopicError::PartitionMismatch`],
//! [`TopicError::ConfigMismatch`]). A topic has N
//! partitions; each is an append-only log whose records have a dense offset from 0, an append
//! timestamp, an optional key and the value. A [`Producer`] picks the partition round-robin
//! ([`send`](Producer::send)), by key hash ([`send_keyed`](Producer::send_keyed), Kafka's
//! murmur2 partitioner), or explicitly ([`send_to`](Producer::send_to)). Order is kept within
//! a partition.
//!
//! # Reading without copying
//!
//! A [`Record`] borrows the value from the log: no copy, no allocation, no reference count
//! per record. Ask for an owned copy with [`Record::to_owned`]. Any number of readers read the
//! same partition, each at its own position: the log is the fan-out.
//!
//! # Waiting
//!
//! Every receive and every send has an async form (any executor: the futures only use
//! wakers), a blocking form (`*_blocking`, parking the thread) and a non-waiting form
//! (`try_*`). A reader with nothing to read parks and is woken by the next append; nothing
//! spins. A producer pays for a wake-up only when somebody is parked.
//!
//! Every async receive is cancel-safe: dropping its future (a `select!` branch that lost, a
//! timeout) loses no record.
//!
//! # Batches
//!
//! [`Consumer::recv_batch`] and [`GroupMember::recv_batch`] wait for one record, then take
//! every record available now up to a limit, in the same poll (so they are cancel-safe too);
//! give them a deadline with the executor's timer. Their blocking forms take a timeout.
//! A producer appends many values with one claim with [`Producer::send_batch`].
//!
//! # Consumer groups
//!
//! ```
//! use broker::{Broker, TopicConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::new();
//! let jobs = broker.topic::<u32>("jobs", TopicConfig::new().partitions(4))?;
//! for i in 0..8 {
//!     jobs.producer().send_to_blocking(i % 4, i)?;
//! }
//!
//! let group = jobs.group("workers")?;
//! let mut a = group.join();
//! let mut b = group.join();
//! a.refresh();
//! b.refresh();
//! assert_eq!(a.assignment().len() + b.assignment().len(), 4);
//!
//! let record = a.recv_blocking()?;
//! record.commit()?; // the group resumes after this record
//! # Ok(())
//! # }
//! ```
//!
//! Members share the partitions, one owner per partition at a time; every join or leave
//! rebalances. Each group keeps a committed offset per partition, and a new owner resumes
//! from it: commit after processing for at-least-once. A member that lost a partition cannot
//! commit it any more, even once it gets it back. [`GroupMember::recv_event`] reports every
//! change of a member's partitions ([`AssignmentChange`]) before the first record read under
//! it.
//!
//! # Overflow and retention
//!
//! Chosen per topic in [`TopicConfig`]:
//!
//! * unbounded (the default): everything is kept, for replay;
//! * [`Overflow::Block`] with a capacity: a producer waits while the slowest independent
//!   reader or group (by its committed offset) is `capacity` records behind. Nothing is lost,
//!   and the newest `capacity` records stay replayable even once everyone has read them;
//! * [`Overflow::DropOldest`] with a capacity: old records go, and a reader that had not read
//!   them gets [`RecvError::Lagged`] with the exact number skipped, then continues from the
//!   oldest record kept;
//! * retention by bytes or age, for replayed topics.
//!
//! Memory is allocated and freed in blocks of records; a removed block is freed as soon as no
//! reader is reading it.
//!
//! # File-backed topics
//!
//! [`Broker::durable_topic`] keeps a topic's records (serde + bincode) and its groups' committed
//! offsets in a directory ([`storage::Storage`]): segment files with a CRC per record, offset
//! and timestamp indexes, retention by whole segments, and an explicit fsync policy
//! ([`storage::Durability`]: on every append, at an interval, or never). At every level an
//! append reaches the operating system before it is acknowledged, so a killed process loses
//! no acknowledged record; the level decides what a power loss keeps. Reopening recovers
//! the files: it cuts a torn tail, sets damaged bytes aside and keeps every valid record
//! around them, reports what it did and every record it found lost ([`Topic::recovery`]),
//! and replays the records into memory, where readers read them (a reader that reaches lost
//! records is told it skipped them, with [`RecvError::Lagged`]).
//!
//! # Closing
//!
//! [`Topic::close`] (or [`Broker::close`]) makes sends fail, giving the value back, and lets
//! readers finish what was appended before they get [`RecvError::Closed`]. After
//! [`Topic::close`], group members still commit what they read (a clean stop drains and
//! commits); after [`Broker::close`], joins and commits fail too.

#![deny(unsafe_op_in_unsafe_fn)]

mod assignment;
mod batch;
mod block;
mod broker;
mod clock;
mod config;
mod consumer;
mod cursor;
mod durable;
mod error;
mod group;
mod group_state;
mod name;
mod notify;
mod partition;
mod partitioner;
mod producer;
mod record;
pub mod storage;
mod sync;
mod topic;
mod topic_state;
mod wait;

pub use crate::assignment::AssignmentChange;
pub use crate::broker::Broker;
pub use crate::config::{Overflow, Start, TopicConfig};
pub use crate::consumer::Consumer;
pub use crate::error::{
    CommitError, GroupError, NameError, RecvError, RecvTimeoutError, SeekError, SendError,
    TopicError, TryRecvError, TrySendError,
};
pub use crate::group::{Group, GroupMember, GroupRecord, Left, MemberEvent};
pub use crate::name::{INTERNAL_PREFIX, MAX_NAME_LEN, validate as validate_name};
pub use crate::partitioner::{murmur2, partition_for_key};
pub use crate::producer::Producer;
pub use crate::record::{OwnedRecord, Position, Record};
pub use crate::topic::Topic;
