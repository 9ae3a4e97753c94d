//! Outputs of a segment: a buffer per partition of each destination topic, flushed once per
//! batch.

use std::any::Any;
use std::hash::Hash;
use std::sync::Arc;

use crate::backend::BackendError;
use crate::backend::log::{LogTopic, LogWriter};
use crate::codec::CodecError;
use crate::error::PipelineError;
use crate::partition::partition_of;
use crate::stage::Key;

/// Values bound for one topic, buffered during a batch.
pub struct Output<T> {
    writer: Box<dyn LogWriter<T>>,
    topic: String,
    /// One buffer per partition: a flush appends each in one call, keeping per-partition order.
    buffers: Vec<Vec<T>>,
    /// Values of the last flush that did not encode, typed.
    failed: Vec<(T, CodecError)>,
    /// The same, boxed for dead letters (remote topics only).
    pub(crate) rejected: Vec<Rejected>,
    /// Boxes a rejected value; made where `T`'s bounds are known, so that `flush` needs none.
    erase: fn(T) -> Arc<dyn Any + Send + Sync>,
}

fn erase<T: Send + Sync + 'static>(value: T) -> Arc<dyn Any + Send + Sync> {
    Arc::new(value)
}

/// A value that could not be encoded for a remote topic.
pub(crate) struct Rejected {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) value_type: &'static str,
    pub(crate) error: String,
}

impl<T: Send + Sync + 'static> Output<T> {
    /// An output to `topic`.
    pub(crate) async fn new(topic: &dyn LogTopic<T>) -> Result<Self, BackendError> {
        Ok(Self {
            writer: topic.writer().await?,
            topic: topic.name().to_owned(),
            buffers: (0..topic.partitions()).map(|_| Vec::new()).collect(),
            failed: Vec::new(),
            rejected: Vec::new(),
            erase: erase::<T>,
        })
    }
}

impl<T> Output<T> {
    /// The destination topic's name.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Appends everything buffered, partition by partition, waiting while a bounded topic is
    /// full. A value that does not encode is kept in `rejected` (a dead letter for the
    /// caller), and the others are written.
    pub(crate) async fn flush(&mut self) -> Result<(), PipelineError> {
        for (partition, values) in self.buffers.iter_mut().enumerate() {
            if values.is_empty() {
                continue;
            }
            let appended = self
                .writer
                .append(partition as u32, values, Some(&mut self.failed))
                .await;
            if let Err(err) = appended {
                self.buffers.iter_mut().for_each(Vec::clear);
                return Err(match err {
                    BackendError::Closed { topic } => PipelineError::OutputClosed { topic },
                    other => other.into(),
                });
            }
        }
        self.rejected
            .extend(self.failed.drain(..).map(|(value, error)| Rejected {
                value: (self.erase)(value),
                value_type: std::any::type_name::<T>(),
                error: error.to_string(),
            }));
        Ok(())
    }

    /// Marks in every partition that this writer has written everything before checkpoint
    /// `epoch` (internal topics; nothing for a sink).
    pub(crate) async fn barrier(&mut self, epoch: u64, writer: u32) -> Result<(), PipelineError> {
        self.writer
            .barrier(epoch, writer)
            .await
            .map_err(|err| match err {
                BackendError::Closed { topic } => PipelineError::OutputClosed { topic },
                other => other.into(),
            })
    }

    /// Buffers `value` for the partition matching the input partition (keeps per-partition
    /// order).
    #[inline]
    pub fn push(&mut self, input_partition: u32, value: T) {
        let partitions = self.buffers.len() as u32;
        let partition = if partitions == 1 {
            0
        } else {
            input_partition % partitions
        };
        self.buffers[partition as usize].push(value);
    }

    /// Buffers `value` for the partition of `key`.
    #[inline]
    pub fn push_keyed<K: Hash + ?Sized>(&mut self, key: &K, value: T) {
        let partition = partition_of(key, self.buffers.len() as u32);
        self.buffers[partition as usize].push(value);
    }
}

impl<K: Key, V> Output<(K, V)> {
    /// Buffers a `(key, value)` pair for the partition of its key.
    #[inline]
    pub fn push_pair(&mut self, pair: (K, V)) {
        let partition = partition_of(&pair.0, self.buffers.len() as u32);
        self.buffers[partition as usize].push(pair);
    }
}
