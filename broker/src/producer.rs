//! Producers: append records, choosing the partition round-robin, by key, or explicitly.

use std::future::poll_fn;
use std::task::Poll;

use crate::block::Entry;
use crate::clock::now_nanos;
use crate::durable::{self, Journal, JournalFailure};
use crate::error::{SendError, TrySendError};
use crate::notify::Wake;
use crate::partition::{ClaimError, Partition};
use crate::partitioner::partition_for_key;
use crate::record::Position;
use crate::sync::{Arc, AtomicUsize, Ordering, next_id, thread};
use crate::topic_state::TopicState;

/// Appends records to a topic. Cheap to clone; `Send + Sync`, so one producer can be shared
/// by many tasks, or each task can have its own clone.
///
/// Every send returns the record's [`Position`] once it is appended (visible to readers).
/// On a topic bounded with [`Overflow::Block`](crate::Overflow::Block), a send waits while the
/// partition is full; [`try_send`](Self::try_send) returns [`TrySendError::Full`] instead.
/// Every error gives the value back.
///
/// # File-backed topics
///
/// An async send (`send`, `send_keyed`, `send_to`, `send_batch`) hands the file work (encode,
/// `write`, and the fsync of [`Durability::Always`](crate::storage::Durability::Always)) to
/// the topic's writer thread and waits for it: it never blocks the executor's thread. The
/// writer serves every async sender of the topic, so concurrent sends share its writes and
/// fsyncs. Dropping a send's future before the writer took the value cancels it; after, the
/// value is appended all the same. The blocking and `try_` forms do the file work on the
/// calling thread (the `try_` forms do not wait for room, but do write).
pub struct Producer<T> {
    topic: Arc<TopicState<T>>,
    /// Round-robin counter for unkeyed sends; each handle has its own.
    next: AtomicUsize,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.topic))
    }
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topic", &self.topic.name)
            .finish_non_exhaustive()
    }
}

/// Where a send goes.
#[derive(Clone, Copy)]
enum Route<'k> {
    RoundRobin,
    Key(&'k [u8]),
    Partition(u32),
}

/// What one claim of a batch did.
enum Appended {
    /// Nothing is left to append.
    Done,
    /// Some values were appended; more are left.
    More,
    Closed,
    /// The partition is full (`Overflow::Block`).
    Full,
}

/// Appends as many of `values` as one claim allows, recording the last position.
fn append_some<T>(
    part: &Partition<T>,
    values: &mut impl ExactSizeIterator<Item = T>,
    last: &mut Option<Position>,
) -> Appended {
    let remaining = values.len();
    if remaining == 0 {
        return Appended::Done;
    }
    match part.claim(remaining) {
        Ok(claim) => {
            let timestamp = now_nanos();
            *last = Some(Position {
                partition: part.index,
                offset: claim.offset + claim.count as u64 - 1,
            });
            let entries = values.by_ref().map(|value| Entry {
                timestamp,
                key: None,
                value,
            });
            part.publish(claim, entries);
            Appended::More
        }
        Err(ClaimError::Closed) => Appended::Closed,
        Err(ClaimError::Full) => Appended::Full,
    }
}

/// A batch's error: the failed value and the ones not tried yet.
fn rest_of_batch<T>(err: SendError<T>, rest: impl Iterator<Item = T>) -> SendError<Vec<T>> {
    let gather = |first: Option<T>| first.into_iter().chain(rest).collect::<Vec<T>>();
    match err {
        SendError::Closed(value) => SendError::Closed(gather(Some(value))),
        SendError::NoSuchPartition {
            partition,
            partitions,
            value,
        } => SendError::NoSuchPartition {
            partition,
            partitions,
            value: gather(Some(value)),
        },
        SendError::Storage { message, value } => SendError::Storage {
            message,
            value: gather(Some(value)),
        },
        SendError::NotDurable { position, message } => {
            drop(gather(None));
            SendError::NotDurable { position, message }
        }
    }
}

/// What one attempt to append gave.
enum Attempt<T> {
    Done(Position),
    /// `Overflow::Block` and full: wait for room, then try again.
    Full(Entry<T>),
    Failed(SendError<T>),
}

/// Where a send goes: a partition, and the journal in front of it if the topic is file-backed.
struct Target<'a, T> {
    part: &'a Partition<T>,
    journal: Option<&'a Journal<T>>,
}

/// Appends one entry now (through the journal in front of a file-backed partition).
fn attempt<T>(target: &Target<'_, T>, mut entry: Entry<T>) -> Attempt<T> {
    let Target { part, journal } = *target;
    let position = |offset| Position {
        partition: part.index,
        offset,
    };
    if let Some(journal) = journal {
        return match journal.append(part, entry) {
            Ok(offset) => Attempt::Done(position(offset)),
            Err(JournalFailure::Refused(ClaimError::Full, e)) => Attempt::Full(e),
            Err(JournalFailure::Refused(ClaimError::Closed, e)) => {
                Attempt::Failed(SendError::Closed(e.value))
            }
            Err(JournalFailure::Storage(message, e)) => Attempt::Failed(SendError::Storage {
                message,
                value: e.value,
            }),
            Err(JournalFailure::NotDurable(offset, message)) => {
                Attempt::Failed(SendError::NotDurable {
                    position: position(offset),
                    message,
                })
            }
        };
    }
    match part.claim(1) {
        Ok(claim) => {
            let offset = claim.offset;
            entry.timestamp = now_nanos();
            part.publish(claim, std::iter::once(entry));
            Attempt::Done(position(offset))
        }
        Err(ClaimError::Full) => Attempt::Full(entry),
        Err(ClaimError::Closed) => Attempt::Failed(SendError::Closed(entry.value)),
    }
}

impl<T> Producer<T> {
    pub(crate) fn new(topic: Arc<TopicState<T>>) -> Self {
        // Different handles start on different partitions.
        let next = AtomicUsize::new(next_id() as usize);
        Self { topic, next }
    }

    /// The partition (and its journal, if file-backed) a send goes to, and its entry.
    fn partition(
        &self,
        route: Route<'_>,
        value: T,
    ) -> Result<(Target<'_, T>, Entry<T>), SendError<T>> {
        let partitions = self.topic.partitions.len() as u32;
        let (index, key) = match route {
            Route::RoundRobin if partitions == 1 => (0, None),
            // Relaxed: only the spread matters, not an order.
            Route::RoundRobin => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                ((n % partitions as usize) as u32, None)
            }
            Route::Key(key) => (partition_for_key(key, partitions), Some(key.into())),
            Route::Partition(partition) if partition < partitions => (partition, None),
            Route::Partition(partition) => {
                return Err(SendError::NoSuchPartition {
                    partition,
                    partitions,
                    value,
                });
            }
        };
        let entry = Entry {
            timestamp: 0,
            key,
            value,
        };
        let target = Target {
            part: &self.topic.partitions[index as usize],
            journal: self.topic.journal(index),
        };
        Ok((target, entry))
    }

    async fn send_route(&self, route: Route<'_>, value: T) -> Result<Position, SendError<T>> {
        let (target, entry) = self.partition(route, value)?;
        let part = target.part;
        if let Some(writer) = self.topic.writer() {
            // File work goes to the topic's writer thread: this task only waits.
            return durable::send(writer, part, vec![entry])
                .await
                .map(|last| last.expect("one value was sent"))
                .map_err(durable::single);
        }
        let mut entry = Some(entry);
        let mut waiter = None;
        let result = poll_fn(|cx| {
            let pending = match attempt(&target, entry.take().expect("polled after completion")) {
                Attempt::Done(pos) => return Poll::Ready(Ok(pos)),
                Attempt::Failed(err) => return Poll::Ready(Err(err)),
                Attempt::Full(e) => e,
            };
            let id = *waiter.get_or_insert_with(next_id);
            part.space
                .register_fenced(id, &Wake::Task(cx.waker().clone()));
            match attempt(&target, pending) {
                Attempt::Done(pos) => Poll::Ready(Ok(pos)),
                Attempt::Failed(err) => Poll::Ready(Err(err)),
                Attempt::Full(e) => {
                    entry = Some(e);
                    Poll::Pending
                }
            }
        })
        .await;
        if let Some(id) = waiter {
            part.space.unregister(id);
        }
        result
    }

    fn send_route_blocking(&self, route: Route<'_>, value: T) -> Result<Position, SendError<T>> {
        let (target, mut entry) = self.partition(route, value)?;
        let part = target.part;
        let mut waiter = None;
        let result = loop {
            entry = match attempt(&target, entry) {
                Attempt::Done(pos) => break Ok(pos),
                Attempt::Failed(err) => break Err(err),
                Attempt::Full(e) => e,
            };
            let id = *waiter.get_or_insert_with(next_id);
            part.space
                .register_fenced(id, &Wake::Thread(thread::current()));
            entry = match attempt(&target, entry) {
                Attempt::Done(pos) => break Ok(pos),
                Attempt::Failed(err) => break Err(err),
                Attempt::Full(e) => e,
            };
            thread::park();
        };
        if let Some(id) = waiter {
            part.space.unregister(id);
        }
        result
    }

    fn try_send_route(&self, route: Route<'_>, value: T) -> Result<Position, TrySendError<T>> {
        let (target, entry) = self.partition(route, value)?;
        match attempt(&target, entry) {
            Attempt::Done(pos) => Ok(pos),
            Attempt::Full(e) => Err(TrySendError::Full(e.value)),
            Attempt::Failed(err) => Err(TrySendError::Send(err)),
        }
    }

    /// Appends `value` to the next partition in round-robin order, waiting for room if the
    /// topic is bounded with `Overflow::Block`.
    pub async fn send(&self, value: T) -> Result<Position, SendError<T>> {
        self.send_route(Route::RoundRobin, value).await
    }

    /// Appends `value` with `key`, to the partition the key hashes to (Kafka's default
    /// partitioner: murmur2 of the key bytes). The key is stored with the record.
    pub async fn send_keyed(&self, key: &[u8], value: T) -> Result<Position, SendError<T>> {
        self.send_route(Route::Key(key), value).await
    }

    /// Appends `value` to `partition`.
    pub async fn send_to(&self, partition: u32, value: T) -> Result<Position, SendError<T>> {
        self.send_route(Route::Partition(partition), value).await
    }

    /// Blocking [`send`](Self::send).
    pub fn send_blocking(&self, value: T) -> Result<Position, SendError<T>> {
        self.send_route_blocking(Route::RoundRobin, value)
    }

    /// Blocking [`send_keyed`](Self::send_keyed).
    pub fn send_keyed_blocking(&self, key: &[u8], value: T) -> Result<Position, SendError<T>> {
        self.send_route_blocking(Route::Key(key), value)
    }

    /// Blocking [`send_to`](Self::send_to).
    pub fn send_to_blocking(&self, partition: u32, value: T) -> Result<Position, SendError<T>> {
        self.send_route_blocking(Route::Partition(partition), value)
    }

    /// [`send`](Self::send) without waiting: [`TrySendError::Full`] if the partition is full.
    pub fn try_send(&self, value: T) -> Result<Position, TrySendError<T>> {
        self.try_send_route(Route::RoundRobin, value)
    }

    /// [`send_keyed`](Self::send_keyed) without waiting.
    pub fn try_send_keyed(&self, key: &[u8], value: T) -> Result<Position, TrySendError<T>> {
        self.try_send_route(Route::Key(key), value)
    }

    /// [`send_to`](Self::send_to) without waiting.
    pub fn try_send_to(&self, partition: u32, value: T) -> Result<Position, TrySendError<T>> {
        self.try_send_route(Route::Partition(partition), value)
    }

    /// The partition a batch goes to, or the batch back if it does not exist.
    fn batch_partition<I: Iterator<Item = T>>(
        &self,
        partition: u32,
        values: I,
    ) -> Result<(&Partition<T>, I), SendError<Vec<T>>> {
        match self.topic.partitions.get(partition as usize) {
            Some(part) => Ok((part, values)),
            None => Err(SendError::NoSuchPartition {
                partition,
                partitions: self.topic.partitions.len() as u32,
                value: values.collect(),
            }),
        }
    }

    fn send_each_blocking(
        &self,
        partition: u32,
        mut values: impl Iterator<Item = T>,
    ) -> Result<Option<Position>, SendError<Vec<T>>> {
        let mut last = None;
        while let Some(value) = values.next() {
            match self.send_route_blocking(Route::Partition(partition), value) {
                Ok(position) => last = Some(position),
                Err(err) => return Err(rest_of_batch(err, values)),
            }
        }
        Ok(last)
    }

    /// Appends every value of `values` to `partition`, in order, claiming many slots at once
    /// and waking readers once per claim (the Disruptor's batching). Waits while the partition
    /// is full. Returns the position of the last record appended (`None` for an empty batch);
    /// on error, gives back the values not appended.
    ///
    /// Not cancel-safe: dropping the future part-way leaves the values appended so far
    /// appended, and drops the others.
    pub async fn send_batch<I>(
        &self,
        partition: u32,
        values: I,
    ) -> Result<Option<Position>, SendError<Vec<T>>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let (part, mut values) = self.batch_partition(partition, values.into_iter())?;
        if let Some(writer) = self.topic.writer() {
            // One request to the topic's writer thread for the whole batch.
            let entries = values
                .map(|value| Entry {
                    timestamp: 0,
                    key: None,
                    value,
                })
                .collect();
            return durable::send(writer, part, entries).await;
        }
        let mut last = None;
        let mut waiter = None;
        let result = poll_fn(|cx| {
            loop {
                match append_some(part, &mut values, &mut last) {
                    Appended::Done => return Poll::Ready(Ok(last)),
                    Appended::More => continue,
                    Appended::Closed => {
                        return Poll::Ready(Err(SendError::Closed(values.by_ref().collect())));
                    }
                    Appended::Full => {}
                }
                let id = *waiter.get_or_insert_with(next_id);
                part.space
                    .register_fenced(id, &Wake::Task(cx.waker().clone()));
                if part.is_full() {
                    return Poll::Pending;
                }
            }
        })
        .await;
        if let Some(id) = waiter {
            part.space.unregister(id);
        }
        result
    }

    /// Appends every value of `values` to `partition`, in order, claiming many slots at once
    /// and waking readers once per claim (the Disruptor's batching). Blocks while the
    /// partition is full. Returns the position of the last record appended (`None` for an
    /// empty batch); on error, gives back the values not appended.
    pub fn send_batch_blocking<I>(
        &self,
        partition: u32,
        values: I,
    ) -> Result<Option<Position>, SendError<Vec<T>>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let (part, mut values) = self.batch_partition(partition, values.into_iter())?;
        if self.topic.journal(partition).is_some() {
            return self.send_each_blocking(partition, values);
        }
        let mut last = None;
        let mut waiter = None;
        let result = loop {
            match append_some(part, &mut values, &mut last) {
                Appended::Done => break Ok(last),
                Appended::More => continue,
                Appended::Closed => break Err(SendError::Closed(values.collect())),
                Appended::Full => {}
            }
            let id = *waiter.get_or_insert_with(next_id);
            part.space
                .register_fenced(id, &Wake::Thread(thread::current()));
            if part.is_full() {
                thread::park();
            }
        };
        if let Some(id) = waiter {
            part.space.unregister(id);
        }
        result
    }
}
