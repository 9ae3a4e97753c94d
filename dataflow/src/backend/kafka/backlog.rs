//! How far behind a topic's consumer groups are, for backpressure on internal topics: the
//! end of a partition (its high watermark) minus a group's committed offset there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::context::Context;
use super::drop_blocking;

/// Bound of one offset or watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the committed offsets of groups, one client per group (a consumer that never joins:
/// it only asks the group's coordinator, as `kafka-consumer-groups --describe` does).
pub(super) struct Backlogs {
    /// The settings of the backend's consumers (holds the password: never printed).
    config: ClientConfig,
    readers: HashMap<String, Arc<BaseConsumer<Context>>>,
}

impl Backlogs {
    pub(super) fn new(config: ClientConfig) -> Self {
        Self {
            config,
            readers: HashMap::new(),
        }
    }

    /// The client that reads `group`'s offsets, made on first use.
    pub(super) fn reader(&mut self, group: &str) -> Result<Arc<BaseConsumer<Context>>, KafkaError> {
        if let Some(reader) = self.readers.get(group) {
            return Ok(Arc::clone(reader));
        }
        let mut config = self.config.clone();
        config.set("group.id", group);
        let reader: Arc<BaseConsumer<Context>> =
            Arc::new(config.create_with_context(Context::default())?);
        self.readers.insert(group.to_owned(), Arc::clone(&reader));
        Ok(reader)
    }
}

impl Drop for Backlogs {
    fn drop(&mut self) {
        // Closing a client blocks: off the async workers.
        drop_blocking(std::mem::take(&mut self.readers));
    }
}

/// The largest backlog among `readers`' groups on `partition` of `topic`: records up to its
/// end (the high watermark, or `written_end` when that is further: tansu 0.6 reports the first
/// offset of the last batch + 1) that a group has not committed. A group with no commit yet
/// starts at the earliest record. Blocking.
pub(super) fn largest_backlog(
    readers: &[Arc<BaseConsumer<Context>>],
    topic: &str,
    partition: i32,
    written_end: Option<i64>,
) -> Result<Option<u64>, KafkaError> {
    let Some(first) = readers.first() else {
        return Ok(None);
    };
    let (low, high) = first.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
    let end = high.max(written_end.unwrap_or(0));
    let mut largest = 0;
    for reader in readers {
        let mut asked = TopicPartitionList::new();
        asked.add_partition(topic, partition);
        let committed = reader.committed_offsets(asked, REQUEST_TIMEOUT)?;
        let next = match committed
            .find_partition(topic, partition)
            .map(|element| element.offset())
        {
            Some(Offset::Offset(next)) => next,
            _ => low,
        };
        largest = largest.max(u64::try_from(end - next).unwrap_or(0));
    }
    Ok(Some(largest))
}
