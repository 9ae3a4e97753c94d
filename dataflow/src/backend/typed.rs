//! Typed producers and readers of a topic on any backend: what examples, tests and other
//! services use to feed a pipeline's sources and read its sinks, whatever the backend.

use std::hash::Hash;
use std::time::Duration;

use broker::Position;

use super::BackendError;
use super::log::{Batch, LogReader, LogTopic, LogWriter, Undecodable, Wait};
use crate::partition::partition_of;

/// Appends values to one topic of a [`Connection`](super::Connection).
pub struct TopicProducer<T> {
    topic: String,
    partitions: u32,
    writer: Box<dyn LogWriter<T>>,
    /// Reused from batch to batch.
    values: Vec<T>,
}

impl<T> std::fmt::Debug for TopicProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicProducer")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> TopicProducer<T> {
    pub(crate) async fn new(topic: &dyn LogTopic<T>) -> Result<Self, BackendError> {
        Ok(Self {
            topic: topic.name().to_owned(),
            partitions: topic.partitions(),
            writer: topic.writer().await?,
            values: Vec::new(),
        })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its partition count.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Appends `value` to the partition of `key` (the same hash a pipeline's `key_by` uses).
    pub async fn send_keyed<K: Hash + ?Sized>(
        &mut self,
        key: &K,
        value: T,
    ) -> Result<(), BackendError> {
        let partition = partition_of(key, self.partitions);
        self.send_batch(partition, [value]).await
    }

    /// Appends `values` to `partition`, in order, and returns once the backend has them. On a
    /// remote backend a value that does not encode (over the codec's size limit, say) fails
    /// the whole batch before anything is sent.
    pub async fn send_batch(
        &mut self,
        partition: u32,
        values: impl IntoIterator<Item = T>,
    ) -> Result<(), BackendError> {
        if partition >= self.partitions {
            return Err(BackendError::Topic {
                backend: "dataflow",
                topic: self.topic.clone(),
                message: format!(
                    "partition {partition} does not exist ({} partitions)",
                    self.partitions
                ),
            });
        }
        self.values.clear();
        self.values.extend(values);
        let sent = self.writer.append(partition, &mut self.values, None).await;
        self.values.clear();
        sent
    }
}

/// A record read through a [`TopicReader`].
#[derive(Debug)]
pub struct Received<T> {
    /// Where it was read.
    pub position: Position,
    /// When it was appended, in nanoseconds since the Unix epoch.
    pub timestamp_nanos: u64,
    /// The value, or its payload and why it did not decode (remote backends only).
    pub value: Result<T, Undecodable>,
}

/// A consumer-group member reading one topic of a [`Connection`](super::Connection).
pub struct TopicReader<T> {
    topic: String,
    reader: Option<Box<dyn LogReader<T>>>,
    batch: Batch<T>,
    /// The last position returned in each partition, committed by [`commit`](Self::commit).
    returned: Vec<Position>,
    /// Records skipped by retention, not reported yet.
    lagged: u64,
}

impl<T> std::fmt::Debug for TopicReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicReader")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> TopicReader<T> {
    pub(crate) fn new(topic: &str, reader: Box<dyn LogReader<T>>) -> Self {
        Self {
            topic: topic.to_owned(),
            reader: Some(reader),
            batch: Batch::default(),
            returned: Vec::new(),
            lagged: 0,
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn reader(&mut self) -> &mut dyn LogReader<T> {
        self.reader.as_deref_mut().expect("present until `leave`")
    }

    /// Waits up to `wait` for records and returns at most `max` (none once `wait` passed, or
    /// once the topic has ended: an embedded topic closed and read to its end, or standard
    /// input at its end).
    ///
    /// A reader that fell behind the topic's retention gets [`BackendError::Lagged`] once,
    /// with how many records it missed, and then continues from the oldest record kept.
    pub async fn recv_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received<T>>, BackendError> {
        let max = max.max(1);
        if self.lagged == 0 {
            let mut batch = std::mem::take(&mut self.batch);
            batch.clear();
            let read = self.reader().read(max, Wait::ForRecords, &mut batch);
            let read = match tokio::time::timeout(wait, read).await {
                Ok(read) => read,
                // The read is cancel-safe: what it had not returned is returned next time.
                Err(_elapsed) => Ok(()),
            };
            self.lagged += batch.lagged;
            self.batch = batch;
            read?;
        }
        if self.lagged > 0 && self.batch.len() == 0 {
            return Err(BackendError::Lagged {
                topic: self.topic.clone(),
                skipped: std::mem::take(&mut self.lagged),
            });
        }
        let batch = &mut self.batch;
        let mut received: Vec<Received<T>> = batch
            .records
            .drain(..)
            .map(|entry| Received {
                position: entry.meta.position,
                timestamp_nanos: entry.meta.timestamp_nanos,
                value: Ok(entry.value),
            })
            .collect();
        received.extend(
            batch
                .undecodable
                .drain(..)
                .map(|(meta, undecodable)| Received {
                    position: meta.position,
                    timestamp_nanos: meta.timestamp_nanos,
                    value: Err(undecodable),
                }),
        );
        for record in &received {
            match self
                .returned
                .iter_mut()
                .find(|p| p.partition == record.position.partition)
            {
                Some(last) => *last = record.position.max(*last),
                None => self.returned.push(record.position),
            }
        }
        Ok(received)
    }

    /// Commits every record returned so far. Returns the partitions whose commit was refused
    /// because the group gave them to another member meanwhile (it reads their records
    /// again): the same on every backend.
    pub async fn commit(&mut self) -> Result<Vec<u32>, BackendError> {
        if self.returned.is_empty() {
            return Ok(Vec::new());
        }
        let returned = std::mem::take(&mut self.returned);
        self.reader().commit(&returned).await
    }

    /// Leaves the group (its partitions go to the other members at once).
    pub async fn leave(mut self) -> Result<(), BackendError> {
        match self.reader.take() {
            Some(reader) => reader.leave().await,
            None => Ok(()),
        }
    }
}
