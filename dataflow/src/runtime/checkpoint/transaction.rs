//! Exactly-once sinks: the outputs of a checkpoint's epoch are held back, kept in the
//! checkpoint, and appended only once it is durable, by one writer in a fixed order. After a
//! crash, the checkpoint says where its outputs start in each sink partition and what they
//! are; the restart appends whatever of them did not make it. A reader of the sink sees each
//! output once, one checkpoint interval late (Kafka's `read_committed`, without aborted
//! records to skip: nothing uncommitted is ever written).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::error::StateError;
use crate::backend::log::LogTopic;
use crate::backend::{BackendError, BoxFuture};
use crate::stage::Deliver;

/// How held-back outputs are encoded in a checkpoint.
pub(crate) fn held_codec() -> crate::codec::Codec {
    crate::codec::Codec::bincode().max_bytes(usize::MAX)
}

/// Appends held-back outputs (typed, in memory) to their sink.
pub(crate) type AppendLater =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BackendError>> + Send>;

/// What a task hands over for one sink partition at a checkpoint.
pub(crate) struct HeldOutputs {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    /// The outputs encoded, for the checkpoint.
    pub(crate) records: Vec<Vec<u8>>,
    /// Appends them, once the checkpoint is durable.
    pub(crate) append: AppendLater,
}

/// The outputs of one checkpoint for one sink partition, as the checkpoint keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeptOutputs {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    /// The end offset of the partition before they are appended.
    pub(crate) start: u64,
    pub(crate) records: Vec<Vec<u8>>,
}

/// A sink of an exactly-once pipeline, as the coordinator sees it.
pub(crate) trait Sink: Send + Sync {
    /// The end offset of each partition.
    fn end_offsets(&self) -> Vec<u64>;

    /// Decodes `records` and appends them to `partition` (recovery only).
    fn append_encoded(
        &self,
        partition: u32,
        records: Vec<Vec<u8>>,
    ) -> BoxFuture<'static, Result<(), StateError>>;
}

/// The sinks of an exactly-once pipeline, by topic name, as their outputs open.
#[derive(Clone, Default)]
pub(crate) struct Sinks(Arc<Mutex<BTreeMap<String, Arc<dyn Sink>>>>);

impl Sinks {
    pub(crate) fn register(&self, topic: &str, sink: Arc<dyn Sink>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), sink);
    }

    /// The end offset of `partition` of `topic`, if that sink is registered.
    pub(crate) fn end_offset(&self, topic: &str, partition: u32) -> Option<u64> {
        let sinks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sinks
            .get(topic)
            .and_then(|sink| sink.end_offsets().get(partition as usize).copied())
    }
}

/// Appends what a restored checkpoint's outputs for `topic` still lack: those of each
/// partition past what its end offset shows were appended before the crash.
pub(crate) async fn recover(
    sink: &dyn Sink,
    topic: &str,
    kept: &[KeptOutputs],
) -> Result<(), StateError> {
    let ends = sink.end_offsets();
    for outputs in kept.iter().filter(|o| o.topic == topic) {
        let end = ends.get(outputs.partition as usize).copied().unwrap_or(0);
        let appended = end
            .checked_sub(outputs.start)
            .filter(|&n| n <= outputs.records.len() as u64);
        let Some(appended) = appended else {
            return Err(StateError::SinkMoved {
                topic: topic.to_owned(),
                partition: outputs.partition,
                expected: format!(
                    "between {} and {}",
                    outputs.start,
                    outputs.start + outputs.records.len() as u64
                ),
                found: end,
            });
        };
        let rest = outputs.records[appended as usize..].to_vec();
        if !rest.is_empty() {
            sink.append_encoded(outputs.partition, rest).await?;
        }
    }
    Ok(())
}

/// A sink topic of the embedded broker, as an exactly-once pipeline completes it.
pub(crate) struct SinkTopic<T> {
    pub(crate) topic: Arc<dyn LogTopic<T>>,
}

impl<T: Deliver> Sink for SinkTopic<T> {
    fn end_offsets(&self) -> Vec<u64> {
        self.topic.end_offsets().unwrap_or_default()
    }

    fn append_encoded(
        &self,
        partition: u32,
        records: Vec<Vec<u8>>,
    ) -> BoxFuture<'static, Result<(), StateError>> {
        let topic = Arc::clone(&self.topic);
        Box::pin(async move {
            let corrupt = |reason: String| StateError::Corrupt {
                what: format!("the held-back outputs of `{}`", topic.name()),
                reason,
            };
            let mut values = records
                .iter()
                .map(|bytes| held_codec().decode::<T>(bytes))
                .collect::<Result<Vec<T>, _>>()
                .map_err(|e| corrupt(e.to_string()))?;
            let mut writer = topic.writer().await.map_err(|e| corrupt(e.to_string()))?;
            writer
                .append(partition, &mut values, None)
                .await
                .map_err(|e| StateError::Io {
                    path: topic.name().to_owned(),
                    message: e.to_string(),
                })
        })
    }
}
