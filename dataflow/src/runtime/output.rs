//! Outputs of a segment: a buffer per destination topic, flushed once per batch.

use std::hash::{DefaultHasher, Hash, Hasher};

use broker::{Producer, SendError, Topic};

use crate::error::PipelineError;
use crate::stage::Key;

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
    producer: Producer<T>,
    topic: String,
    partitions: u32,
    buffer: Vec<(u32, T)>,
}

impl<T: Send + Sync + 'static> Output<T> {
    pub(crate) fn new(topic: &Topic<T>) -> Self {
        Self {
            producer: topic.producer(),
            topic: topic.name().to_owned(),
            partitions: topic.partitions(),
            buffer: Vec::new(),
        }
    }
}

impl<T> Output<T> {
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
            let values = self.buffer.drain(..run).map(|(_, value)| value);
            if let Err(err) = self.producer.send_batch(partition, values).await {
                self.buffer.clear();
                return Err(match err {
                    SendError::Closed(_) => PipelineError::OutputClosed {
                        topic: self.topic.clone(),
                    },
                    _ => unreachable!("partitions come from the topic itself"),
                });
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
