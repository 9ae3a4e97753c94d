//! The embedded broker (`mem://`, the default): topics live in this process, typed. It
//! implements the log interface directly: values are never encoded, a batch is read with one
//! awaited receive and non-waiting ones after it, and appended with one claim per run.

use std::sync::Arc;

use std::future::Future;

use broker::{
    Broker, CommitError, Consumer, GroupMember, Producer, Record, RecvError, SendError, Start,
    Topic, TopicConfig, TryRecvError,
};

use super::log::{Batch, Entry, From, Joining, LogReader, LogTopic, LogWriter, RecordMeta, Wait};
use super::store::{Backend, OnDisk, Open};
use super::url::BackendUrl;
use super::{BackendError, BoxFuture, StartAt};
use crate::codec::CodecError;
use crate::spec::TopicSpec;

/// Connects to `mem://`: a new embedded broker. The URL takes no host and no parameter.
pub(crate) fn connect(
    url: BackendUrl,
) -> BoxFuture<'static, Result<Arc<dyn Backend>, BackendError>> {
    Box::pin(async move {
        url.refuse_location_and_params()?;
        Ok(Arc::new(MemBackend::new(Broker::new())) as Arc<dyn Backend>)
    })
}

/// The embedded broker as a backend.
#[derive(Debug)]
pub(crate) struct MemBackend {
    broker: Broker,
}

impl MemBackend {
    pub(crate) fn new(broker: Broker) -> Self {
        Self { broker }
    }
}

impl Backend for MemBackend {
    fn scheme(&self) -> &'static str {
        "mem"
    }

    fn shared_between_processes(&self) -> bool {
        false
    }

    fn broker(&self) -> Option<&Broker> {
        Some(&self.broker)
    }

    fn open<'a>(
        &'a self,
        _spec: &'a TopicSpec,
        open: &'a mut dyn Open,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move { open.embedded(&self.broker, None) })
    }
}

/// A topic of the embedded broker, in memory or file-backed.
pub(crate) struct EmbeddedTopic<T> {
    topic: Topic<T>,
    /// Whether [`LogTopic::fail`] closes it: only a pipeline's own internal topics, never one
    /// shared with other code or with the next run.
    closable: bool,
}

impl<T: Send + Sync + 'static> EmbeddedTopic<T> {
    pub(crate) fn new(topic: Topic<T>, closable: bool) -> Self {
        Self { topic, closable }
    }

    /// The topic `spec` names: opened if it exists (it keeps its partitions), else created.
    pub(crate) fn open_or_create(broker: &Broker, spec: &TopicSpec) -> Result<Self, BackendError> {
        let topic = match broker.open_topic::<T>(&spec.name) {
            Ok(topic) => topic,
            Err(broker::TopicError::NotFound { .. }) => broker.topic::<T>(
                &spec.name,
                TopicConfig::new().partitions(spec.partitions.unwrap_or(1)),
            )?,
            Err(other) => return Err(other.into()),
        };
        Ok(Self::new(topic, false))
    }

    /// The file-backed topic `name`, with the partitions `disk` gives.
    pub(crate) fn durable(
        broker: &Broker,
        name: &str,
        disk: OnDisk<'_>,
    ) -> Result<Self, BackendError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let config = TopicConfig::new().partitions(disk.partitions);
        let topic = broker.durable_topic::<T>(name, config, disk.storage)?;
        Ok(Self::new(topic, false))
    }

    /// The embedded topic itself.
    pub(crate) fn topic(&self) -> &Topic<T> {
        &self.topic
    }
}

impl<T: Clone + Send + Sync + 'static> LogTopic<T> for EmbeddedTopic<T> {
    fn name(&self) -> &str {
        self.topic.name()
    }

    fn partitions(&self) -> u32 {
        self.topic.partitions()
    }

    fn writer(&self) -> BoxFuture<'_, Result<Box<dyn LogWriter<T>>, BackendError>> {
        let writer = MemWriter {
            producer: self.topic.producer(),
            name: self.topic.name().to_owned(),
        };
        Box::pin(async move { Ok(Box::new(writer) as Box<dyn LogWriter<T>>) })
    }

    fn join<'a>(&'a self, group: &'a str, _local_members: u32, start: StartAt) -> Joining<'a, T> {
        let start = match start {
            StartAt::Latest => Start::Latest,
            StartAt::Timestamp(at) => Start::Timestamp(at),
            _ => Start::Earliest,
        };
        Box::pin(async move {
            let member = self.topic.group_starting_at(group, start)?.join();
            Ok(Box::new(MemReader {
                source: member,
                topic: self.topic.clone(),
            }) as Box<dyn LogReader<T>>)
        })
    }

    fn partition_reader(&self, partition: u32, from: From) -> Option<Joining<'_, T>> {
        let start = match from {
            From::Start => Start::Earliest,
            From::End => Start::Latest,
        };
        Some(Box::pin(async move {
            let consumer = self
                .topic
                .partition_consumer(partition, start)
                .map_err(|e| BackendError::Server {
                    backend: "mem",
                    message: e.to_string(),
                })?;
            Ok(Box::new(MemReader {
                source: consumer,
                topic: self.topic.clone(),
            }) as Box<dyn LogReader<T>>)
        }))
    }

    fn end_offsets(&self) -> Option<Vec<u64>> {
        Some(self.topic.end_offsets())
    }

    fn fail(&self) {
        if self.closable {
            self.topic.close();
        }
    }
}

/// Appends to an embedded topic: one claim per run of values.
struct MemWriter<T> {
    producer: Producer<T>,
    name: String,
}

impl<T: Send + Sync + 'static> LogWriter<T> for MemWriter<T> {
    fn append<'a>(
        &'a mut self,
        partition: u32,
        values: &'a mut Vec<T>,
        _rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            match self.producer.send_batch(partition, values.drain(..)).await {
                Ok(_) => Ok(()),
                Err(SendError::Closed(_)) => Err(BackendError::Closed {
                    topic: self.name.clone(),
                }),
                Err(other) => Err(BackendError::Server {
                    backend: "mem",
                    message: other.to_string(),
                }),
            }
        })
    }
}

/// What a [`MemReader`] reads through: a group member, or an independent reader of one
/// partition.
trait ReadRecords<T: 'static>: Send {
    /// Waits for the next record (cancel-safe: nothing is taken until it returns one).
    fn recv(&mut self) -> impl Future<Output = Result<Record<'_, T>, RecvError>> + Send;

    /// The next record, if one is there now.
    fn try_recv(&mut self) -> Result<Record<'_, T>, TryRecvError>;

    /// Commits `position`; a partition the reader does not own is refused.
    fn commit(&self, position: broker::Position) -> Result<(), CommitError>;

    /// The partitions it reads.
    fn partitions(&self) -> Vec<u32>;

    /// Moves the position of `partition`, if the reader reads it (`Ok(false)` if not).
    fn seek(&mut self, partition: u32, next_offset: u64) -> Result<bool, broker::SeekError>;
}

impl<T: Send + Sync + 'static> ReadRecords<T> for GroupMember<T> {
    async fn recv(&mut self) -> Result<Record<'_, T>, RecvError> {
        GroupMember::recv(self)
            .await
            .map(broker::GroupRecord::into_record)
    }

    fn try_recv(&mut self) -> Result<Record<'_, T>, TryRecvError> {
        GroupMember::try_recv(self).map(broker::GroupRecord::into_record)
    }

    fn commit(&self, position: broker::Position) -> Result<(), CommitError> {
        GroupMember::commit(self, position)
    }

    fn partitions(&self) -> Vec<u32> {
        GroupMember::assignment(self)
    }

    fn seek(&mut self, partition: u32, next_offset: u64) -> Result<bool, broker::SeekError> {
        self.refresh();
        match GroupMember::seek(self, partition, Start::Offset(next_offset)) {
            Ok(()) => Ok(true),
            Err(broker::SeekError::NotAssigned { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

/// An independent reader commits nothing: a checkpoint carries its recovery.
impl<T: Send + Sync + 'static> ReadRecords<T> for Consumer<T> {
    async fn recv(&mut self) -> Result<Record<'_, T>, RecvError> {
        Consumer::recv(self).await
    }

    fn try_recv(&mut self) -> Result<Record<'_, T>, TryRecvError> {
        Consumer::try_recv(self)
    }

    fn commit(&self, _position: broker::Position) -> Result<(), CommitError> {
        Ok(())
    }

    fn partitions(&self) -> Vec<u32> {
        Consumer::assignment(self)
    }

    fn seek(&mut self, partition: u32, next_offset: u64) -> Result<bool, broker::SeekError> {
        if self.assignment().contains(&partition) {
            self.seek_partition(partition, Start::Offset(next_offset))
                .map(|()| true)
        } else {
            Ok(false)
        }
    }
}

/// Reads an embedded topic.
struct MemReader<T, R> {
    source: R,
    /// To read a record again for a dead letter.
    topic: Topic<T>,
}

fn entry<T: Clone>(record: &Record<'_, T>) -> Entry<T> {
    Entry {
        value: record.value().clone(),
        meta: RecordMeta {
            position: record.position(),
            timestamp_nanos: record.timestamp_nanos(),
            payload: 0,
        },
    }
}

impl<T, R> LogReader<T> for MemReader<T, R>
where
    T: Clone + Send + Sync + 'static,
    R: ReadRecords<T>,
{
    fn read<'a>(
        &'a mut self,
        max: usize,
        wait: Wait,
        batch: &'a mut Batch<T>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if wait == Wait::ForRecords {
                // `recv` is cancel-safe: nothing is taken until it returns a record.
                match self.source.recv().await {
                    Ok(record) => batch.records.push(entry(&record)),
                    Err(RecvError::Lagged { skipped, .. }) => batch.lagged += skipped,
                    Err(_closed) => batch.ended = true,
                }
            }
            while batch.records.len() < max && !batch.ended {
                match self.source.try_recv() {
                    Ok(record) => batch.records.push(entry(&record)),
                    Err(TryRecvError::Lagged { skipped, .. }) => batch.lagged += skipped,
                    Err(TryRecvError::Closed) => batch.ended = true,
                    Err(_empty) => break,
                }
            }
            Ok(())
        })
    }

    fn commit<'a>(
        &'a mut self,
        positions: &'a [broker::Position],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        let mut refused = Vec::new();
        let mut result = Ok(());
        for &position in positions {
            match self.source.commit(position) {
                Ok(()) => {}
                Err(CommitError::NotOwner { partition, .. }) => refused.push(partition),
                Err(other) => {
                    result = Err(BackendError::Commit {
                        topic: self.topic.name().to_owned(),
                        message: other.to_string(),
                    });
                    break;
                }
            }
        }
        Box::pin(async move { result.map(|()| refused) })
    }

    fn again(&self, record: &RecordMeta, _payloads: &[Vec<u8>]) -> Option<T> {
        let position = record.position;
        let mut reader = self
            .topic
            .partition_consumer(position.partition, Start::Offset(position.offset))
            .ok()?;
        reader.try_recv().ok().map(|r| r.value().clone())
    }

    fn leave(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }

    fn assignment(&self) -> Option<Vec<u32>> {
        Some(self.source.partitions())
    }

    fn seek<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        let mut moved = Vec::new();
        let mut result = Ok(());
        for &(partition, next_offset) in positions {
            match self.source.seek(partition, next_offset) {
                Ok(true) => moved.push(partition),
                Ok(false) => {}
                Err(e) => {
                    result = Err(BackendError::Server {
                        backend: "mem",
                        message: format!(
                            "cannot resume partition {partition} at {next_offset}: {e}"
                        ),
                    });
                    break;
                }
            }
        }
        Box::pin(async move { result.map(|()| moved) })
    }
}
