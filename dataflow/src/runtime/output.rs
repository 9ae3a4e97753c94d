//! Outputs of a segment: a buffer per destination topic, flushed once per batch.

use std::any::Any;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use broker::{Producer, SendError, Topic};

use crate::backend::{BackendError, BoxFuture, TopicProducer};
use crate::error::PipelineError;
use crate::runtime::backpressure::Backpressure;
use crate::runtime::port::{Port, RemotePort};
use crate::stage::{Deliver, Key};

/// The partition of `key` among `partitions`: a fixed hash, so that every task and every run
/// of a build agree.
pub fn partition_of<K: Hash + ?Sized>(key: &K, partitions: u32) -> u32 {
    if partitions == 1 {
        return 0;
    }
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % u64::from(partitions)) as u32
}

/// Values bound for one topic, buffered during a batch.
pub struct Output<T> {
    sender: Sender<T>,
    topic: String,
    partitions: u32,
    buffer: Vec<(u32, T)>,
    /// Values of the last flush that did not encode (remote topics only): dead letters.
    pub(crate) rejected: Vec<Rejected>,
}

/// A value that could not be encoded for a remote topic.
pub(crate) struct Rejected {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) value_type: &'static str,
    pub(crate) error: String,
}

enum Sender<T> {
    Mem(Producer<T>),
    Remote(Box<dyn RemoteOutput<T>>),
}

/// A remote producer, as a trait object made where `T: Serialize` is known.
trait RemoteOutput<T>: Send {
    /// Encodes `values` (before anything is sent) and appends them to `partition`; a value
    /// that does not encode goes to `rejected` instead.
    fn send<'a>(
        &'a mut self,
        partition: u32,
        values: &mut dyn Iterator<Item = T>,
        rejected: &mut Vec<Rejected>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// Encoded and waiting to be sent.
struct Encoding<T> {
    producer: TopicProducer<T>,
    /// Set for an internal topic on a backend that can tell a backlog.
    backpressure: Option<Backpressure>,
}

impl<T: Deliver> RemoteOutput<T> for Encoding<T> {
    fn send<'a>(
        &'a mut self,
        partition: u32,
        values: &mut dyn Iterator<Item = T>,
        rejected: &mut Vec<Rejected>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let encoded = self.producer.encode_each(values, &mut |value, error| {
            rejected.push(Rejected {
                value: Arc::new(value),
                value_type: std::any::type_name::<T>(),
                error: error.to_string(),
            })
        });
        Box::pin(async move {
            let sent = encoded.len();
            self.producer.send_encoded(partition, encoded).await?;
            match &mut self.backpressure {
                Some(backpressure) => {
                    backpressure
                        .after_send(&mut self.producer, partition, sent)
                        .await
                }
                None => Ok(()),
            }
        })
    }
}

impl<T: Send + Sync + 'static> Output<T> {
    /// An output to an embedded topic.
    pub(crate) fn mem(topic: &Topic<T>) -> Self {
        Self {
            sender: Sender::Mem(topic.producer()),
            topic: topic.name().to_owned(),
            partitions: topic.partitions(),
            buffer: Vec::new(),
            rejected: Vec::new(),
        }
    }
}

impl<T: Deliver> Output<T> {
    /// An output to `port`, on whichever backend it lives.
    pub(crate) async fn new(port: &Port<T>) -> Result<Self, PipelineError> {
        match port {
            Port::Mem(topic) => Ok(Self::mem(topic)),
            Port::Remote(remote) => Ok(Self::remote(remote).await?),
        }
    }

    /// An output to a topic on a remote backend.
    pub(crate) async fn remote(remote: &RemotePort) -> Result<Self, BackendError> {
        let producer = remote.backend.producer(&remote.name).await?;
        let producer =
            TopicProducer::remote(&remote.name, remote.partitions, producer, remote.codec);
        let backpressure = remote
            .bound
            .clone()
            .map(|bound| Backpressure::new(&remote.name, bound));
        Ok(Self {
            sender: Sender::Remote(Box::new(Encoding {
                producer,
                backpressure,
            })),
            topic: remote.name.clone(),
            partitions: remote.partitions,
            buffer: Vec::new(),
            rejected: Vec::new(),
        })
    }
}

impl<T> Output<T> {
    /// The destination topic's name.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Buffers `value` for the partition matching the input partition (keeps per-partition
    /// order).
    #[inline]
    pub fn push(&mut self, input_partition: u32, value: T) {
        let partition = if self.partitions == 1 {
            0
        } else {
            input_partition % self.partitions
        };
        self.buffer.push((partition, value));
    }

    /// Buffers `value` for the partition of `key`.
    #[inline]
    pub fn push_keyed<K: Hash + ?Sized>(&mut self, key: &K, value: T) {
        let partition = partition_of(key, self.partitions);
        self.buffer.push((partition, value));
    }

    /// Sends everything buffered, in order, waiting while a bounded topic is full. Runs of
    /// values for one partition go in one batch (one claim, one wake-up).
    pub(crate) async fn flush(&mut self) -> Result<usize, PipelineError> {
        let total = self.buffer.len();
        while let Some(&(partition, _)) = self.buffer.first() {
            let run = self
                .buffer
                .iter()
                .position(|(p, _)| *p != partition)
                .unwrap_or(self.buffer.len());
            let sent = match &mut self.sender {
                Sender::Mem(producer) => {
                    let values = self.buffer.drain(..run).map(|(_, value)| value);
                    producer
                        .send_batch(partition, values)
                        .await
                        .map_err(|err| match err {
                            SendError::Closed(_) => PipelineError::OutputClosed {
                                topic: self.topic.clone(),
                            },
                            _ => unreachable!("partitions come from the topic itself"),
                        })
                        .map(drop)
                }
                Sender::Remote(sender) => {
                    let mut values = self.buffer.drain(..run).map(|(_, value)| value);
                    sender
                        .send(partition, &mut values, &mut self.rejected)
                        .await
                        .map_err(PipelineError::from)
                }
            };
            if let Err(err) = sent {
                self.buffer.clear();
                return Err(err);
            }
        }
        Ok(total)
    }
}

impl<K: Key, V> Output<(K, V)> {
    /// Buffers a `(key, value)` pair for the partition of its key.
    #[inline]
    pub fn push_pair(&mut self, pair: (K, V)) {
        let partition = partition_of(&pair.0, self.partitions);
        self.buffer.push((partition, pair));
    }
}
