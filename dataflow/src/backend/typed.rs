//! Typed producers and readers of a topic on any backend: what examples, tests and other
//! services use to feed a pipeline's sources and read its sinks, whatever the backend.

use std::hash::Hash;
use std::time::Duration;

use broker::{GroupMember, Position, Producer, RecvError, SendError, TryRecvError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{BackendError, RemoteMember, RemoteProducer};
use crate::codec::{Codec, CodecError};
use crate::runtime::output::partition_of;

/// Appends values to one topic of a [`Connection`](super::Connection).
pub struct TopicProducer<T> {
    topic: String,
    partitions: u32,
    inner: ProducerInner<T>,
}

enum ProducerInner<T> {
    Mem(Producer<T>),
    Remote {
        producer: Box<dyn RemoteProducer>,
        codec: Codec,
        buffer: Vec<Vec<u8>>,
    },
}

impl<T> std::fmt::Debug for TopicProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicProducer")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + Send + Sync + 'static> TopicProducer<T> {
    pub(crate) fn mem(topic: &broker::Topic<T>) -> Self {
        Self {
            topic: topic.name().to_owned(),
            partitions: topic.partitions(),
            inner: ProducerInner::Mem(topic.producer()),
        }
    }

    pub(crate) fn remote(
        topic: &str,
        partitions: u32,
        producer: Box<dyn RemoteProducer>,
        codec: Codec,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            partitions,
            inner: ProducerInner::Remote {
                producer,
                codec,
                buffer: Vec::new(),
            },
        }
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

    /// Appends `values` to `partition`, in order. On a remote backend a value that does not
    /// encode (over the codec's size limit, say) fails the whole batch before anything is sent.
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
        match &mut self.inner {
            ProducerInner::Mem(producer) => {
                let values: Vec<T> = values.into_iter().collect();
                producer
                    .send_batch(partition, values)
                    .await
                    .map_err(|err| match err {
                        SendError::Closed(_) => BackendError::Closed {
                            topic: self.topic.clone(),
                        },
                        other => BackendError::Server {
                            backend: "mem",
                            message: other.to_string(),
                        },
                    })
                    .map(drop)
            }
            ProducerInner::Remote { .. } => {
                let encoded = self.encode(&mut values.into_iter())?;
                self.send_encoded(partition, encoded).await
            }
        }
    }

    /// Encodes `values` for a remote backend (nothing on the embedded broker); fails on the
    /// first value that does not encode.
    pub(crate) fn encode(
        &mut self,
        values: &mut dyn Iterator<Item = T>,
    ) -> Result<Vec<Vec<u8>>, BackendError> {
        let mut failed = None;
        let encoded = self.encode_each(values, &mut |_, err| {
            failed.get_or_insert(err);
        });
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(encoded),
        }
    }

    /// Encodes `values` for a remote backend, handing each value that does not encode to
    /// `rejected` instead of failing the batch (nothing on the embedded broker).
    pub(crate) fn encode_each(
        &mut self,
        values: &mut dyn Iterator<Item = T>,
        rejected: &mut dyn FnMut(T, CodecError),
    ) -> Vec<Vec<u8>> {
        let ProducerInner::Remote { codec, buffer, .. } = &mut self.inner else {
            return Vec::new();
        };
        let mut encoded = std::mem::take(buffer);
        encoded.clear();
        for value in values {
            let mut bytes = Vec::new();
            match codec.encode(&value, &mut bytes) {
                Ok(()) => encoded.push(bytes),
                Err(err) => rejected(value, err),
            }
        }
        encoded
    }

    /// Sends what [`encode`](Self::encode) made to `partition`.
    /// How many records of `partition` the topic's slowest group has not processed yet, when
    /// the backend can tell (remote topics only).
    pub(crate) async fn backlog(&mut self, partition: u32) -> Result<Option<u64>, BackendError> {
        match &mut self.inner {
            ProducerInner::Mem(_) => Ok(None),
            ProducerInner::Remote { producer, .. } => producer.backlog(partition).await,
        }
    }

    pub(crate) async fn send_encoded(
        &mut self,
        partition: u32,
        encoded: Vec<Vec<u8>>,
    ) -> Result<(), BackendError> {
        let ProducerInner::Remote {
            producer, buffer, ..
        } = &mut self.inner
        else {
            return Ok(());
        };
        let sent = if encoded.is_empty() {
            Ok(())
        } else {
            producer.send(partition, &encoded).await
        };
        *buffer = encoded;
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
    /// The payload of a value that decoded (remote backends only), kept so that a dead letter
    /// can decode the value again instead of every record being cloned in case one fails.
    pub(crate) payload: Vec<u8>,
}

/// A payload that did not decode as the topic's value type.
#[derive(Debug)]
pub struct Undecodable {
    /// Why.
    pub error: CodecError,
    /// The bytes as read.
    pub payload: Vec<u8>,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// A consumer-group member reading one topic of a [`Connection`](super::Connection).
pub struct TopicReader<T> {
    topic: String,
    inner: ReaderInner<T>,
    /// The last position returned in each partition, committed by [`commit`](Self::commit).
    returned: Vec<(u32, u64)>,
}

enum ReaderInner<T> {
    Mem(GroupMember<T>),
    Remote {
        member: Box<dyn RemoteMember>,
        codec: Codec,
    },
}

impl<T> std::fmt::Debug for TopicReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicReader")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Clone + Send + Sync + 'static> TopicReader<T> {
    pub(crate) fn mem(topic: &str, member: GroupMember<T>) -> Self {
        Self {
            topic: topic.to_owned(),
            inner: ReaderInner::Mem(member),
            returned: Vec::new(),
        }
    }

    pub(crate) fn remote(topic: &str, member: Box<dyn RemoteMember>, codec: Codec) -> Self {
        Self {
            topic: topic.to_owned(),
            inner: ReaderInner::Remote { member, codec },
            returned: Vec::new(),
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Waits up to `wait` for records and returns at most `max` (none once `wait` passed, or
    /// once an embedded topic is closed and read to its end).
    pub async fn recv_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received<T>>, BackendError> {
        let max = max.max(1);
        let batch = match &mut self.inner {
            ReaderInner::Mem(member) => mem_batch(member, max, wait).await,
            ReaderInner::Remote { member, codec } => {
                let codec = *codec;
                member
                    .poll(max, wait)
                    .await?
                    .into_iter()
                    .map(|delivery| {
                        let position = Position {
                            partition: delivery.partition,
                            offset: delivery.offset,
                        };
                        let (value, payload) = match codec.decode(&delivery.payload) {
                            Ok(value) => (Ok(value), delivery.payload),
                            Err(error) => {
                                let payload = delivery.payload;
                                (Err(Undecodable { error, payload }), Vec::new())
                            }
                        };
                        Received {
                            position,
                            timestamp_nanos: delivery.timestamp_nanos,
                            value,
                            payload,
                        }
                    })
                    .collect()
            }
        };
        for record in &batch {
            note_returned(&mut self.returned, record.position);
        }
        Ok(batch)
    }

    /// Commits every record returned so far.
    pub async fn commit(&mut self) -> Result<(), BackendError> {
        if self.returned.is_empty() {
            return Ok(());
        }
        match &mut self.inner {
            ReaderInner::Mem(member) => {
                for &(partition, offset) in &self.returned {
                    member.commit(Position { partition, offset }).map_err(|e| {
                        BackendError::Server {
                            backend: "mem",
                            message: e.to_string(),
                        }
                    })?;
                }
            }
            ReaderInner::Remote { member, .. } => member.commit(&self.returned).await?,
        }
        self.returned.clear();
        Ok(())
    }

    /// The codec of a remote topic (`None` on the embedded broker).
    pub(crate) fn codec(&self) -> Option<Codec> {
        match &self.inner {
            ReaderInner::Mem(_) => None,
            ReaderInner::Remote { codec, .. } => Some(*codec),
        }
    }

    /// Leaves the group (its partitions go to the other members at once).
    pub async fn leave(mut self) -> Result<(), BackendError> {
        match &mut self.inner {
            ReaderInner::Mem(_) => Ok(()),
            ReaderInner::Remote { member, .. } => member.leave().await,
        }
    }
}

/// Keeps the highest position returned per partition.
pub(crate) fn note_returned(returned: &mut Vec<(u32, u64)>, position: Position) {
    match returned.iter_mut().find(|(p, _)| *p == position.partition) {
        Some((_, offset)) => *offset = (*offset).max(position.offset),
        None => returned.push((position.partition, position.offset)),
    }
}

async fn mem_batch<T: Clone>(
    member: &mut GroupMember<T>,
    max: usize,
    wait: Duration,
) -> Vec<Received<T>> {
    let mut batch = Vec::new();
    let received = |record: &broker::GroupRecord<'_, T>| Received {
        position: record.position(),
        timestamp_nanos: record.timestamp_nanos(),
        value: Ok(record.value().clone()),
        payload: Vec::new(),
    };
    loop {
        match tokio::time::timeout(wait, member.recv()).await {
            Ok(Ok(record)) => {
                batch.push(received(&record));
                break;
            }
            Ok(Err(RecvError::Lagged { .. })) => continue,
            Ok(Err(_)) | Err(_) => return batch,
        }
    }
    while batch.len() < max {
        match member.try_recv() {
            Ok(record) => batch.push(received(&record)),
            Err(TryRecvError::Lagged { .. }) => continue,
            Err(_) => break,
        }
    }
    batch
}
