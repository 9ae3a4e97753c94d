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
use crate::runtime::checkpoint::transaction::{AppendLater, HeldOutputs, held_codec};
use crate::runtime::task::Cx;
use crate::stage::Key;

/// Values bound for one topic, buffered during a batch.
pub struct Output<T> {
    writer: Box<dyn LogWriter<T>>,
    topic: String,
    /// One buffer per partition: a flush appends each in one call, keeping per-partition order.
    buffers: Vec<Vec<T>>,
    /// Beside `buffers`, for an internal topic: each value's origin, the append time of the
    /// source record it was made from.
    origins: Vec<Vec<u64>>,
    /// Values of the last flush that did not encode, typed.
    failed: Vec<(T, CodecError)>,
    /// The same, boxed for dead letters (remote topics only).
    pub(crate) rejected: Vec<Rejected>,
    /// Boxes a rejected value; made where `T`'s bounds are known, so that `flush` needs none.
    erase: fn(T) -> Arc<dyn Any + Send + Sync>,
    /// For a sink of an exactly-once pipeline: how outputs are held back.
    hold: Option<Hold<T>>,
    /// Outputs held back by the flushes since the last checkpoint.
    pub(crate) held: Vec<HeldOutputs>,
}

/// How an exactly-once sink holds its outputs back: encoded for the checkpoint, and appended
/// by the checkpoint's keeper once it is durable.
struct Hold<T> {
    topic: Arc<dyn LogTopic<T>>,
    encode: fn(&T) -> Result<Vec<u8>, CodecError>,
    append: fn(Arc<dyn LogTopic<T>>, u32, Vec<T>) -> AppendLater,
}

fn append_held<T: Send + Sync + 'static>(
    topic: Arc<dyn LogTopic<T>>,
    partition: u32,
    mut values: Vec<T>,
) -> AppendLater {
    Box::new(move || {
        Box::pin(async move {
            let mut writer = topic.writer().await?;
            writer.append(partition, &mut values, None).await
        })
    })
}

fn encode_held<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::new();
    held_codec().encode(value, &mut bytes).map(|()| bytes)
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
            origins: (0..topic.partitions()).map(|_| Vec::new()).collect(),
            failed: Vec::new(),
            rejected: Vec::new(),
            erase: erase::<T>,
            hold: None,
            held: Vec::new(),
        })
    }

    /// An output to the sink `topic` of an exactly-once pipeline: what it flushes is held
    /// back until the checkpoint that covers it is durable.
    pub(crate) async fn held(topic: &Arc<dyn LogTopic<T>>) -> Result<Self, BackendError>
    where
        T: serde::Serialize,
    {
        let mut output = Self::new(&**topic).await?;
        output.hold = Some(Hold {
            topic: Arc::clone(topic),
            encode: encode_held::<T>,
            append: append_held::<T>,
        });
        Ok(output)
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
        if let Some(hold) = &self.hold {
            return hold.hold(&self.topic, &mut self.buffers, &mut self.held);
        }
        for (partition, values) in self.buffers.iter_mut().enumerate() {
            if values.is_empty() {
                continue;
            }
            let origins = &mut self.origins[partition];
            let appended = if origins.is_empty() {
                self.writer
                    .append(partition as u32, values, Some(&mut self.failed))
                    .await
            } else {
                self.writer
                    .append_traced(partition as u32, values, origins, Some(&mut self.failed))
                    .await
            };
            if let Err(err) = appended {
                self.buffers.iter_mut().for_each(Vec::clear);
                self.origins.iter_mut().for_each(Vec::clear);
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

    /// Buffers `value`, made from the record `cx` is processing, for the partition matching
    /// that record's (an internal topic: the value carries the record's origin on).
    #[inline]
    pub fn push_from(&mut self, cx: &Cx<'_>, value: T) {
        let partitions = self.buffers.len() as u32;
        let partition = if partitions == 1 {
            0
        } else {
            cx.partition() % partitions
        };
        self.buffers[partition as usize].push(value);
        self.origins[partition as usize].push(cx.origin());
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

    /// Buffers a `(key, value)` pair, made from the record `cx` is processing, for the
    /// partition of its key (a repartition: the pair carries the record's origin on).
    #[inline]
    pub fn push_pair_from(&mut self, cx: &Cx<'_>, pair: (K, V)) {
        let partition = partition_of(&pair.0, self.buffers.len() as u32) as usize;
        self.buffers[partition].push(pair);
        self.origins[partition].push(cx.origin());
    }
}

impl<T> Hold<T> {
    /// Takes what `buffers` hold, encoded and ready to append.
    fn hold(
        &self,
        name: &str,
        buffers: &mut [Vec<T>],
        held: &mut Vec<HeldOutputs>,
    ) -> Result<(), PipelineError> {
        for (partition, values) in buffers.iter_mut().enumerate() {
            if values.is_empty() {
                continue;
            }
            let records = values
                .iter()
                .map(self.encode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(BackendError::from)?;
            let values = std::mem::take(values);
            let partition = partition as u32;
            held.push(HeldOutputs {
                topic: name.to_owned(),
                partition,
                records,
                append: (self.append)(Arc::clone(&self.topic), partition, values),
            });
        }
        Ok(())
    }
}
