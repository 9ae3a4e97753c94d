//! Topics: named, typed, partitioned logs.

use crate::config::{Start, TopicConfig};
use crate::consumer::Consumer;
use crate::cursor::{Cursor, CursorSet};
use crate::durable::Journal;
use crate::error::{GroupError, SeekError, TopicError};
use crate::group::Group;
use crate::producer::Producer;
use crate::storage::RecoveryReport;
use crate::sync::Arc;
use crate::topic_state::TopicState;

/// A topic: a named log of `T` values in one or more partitions. Cheap to clone.
///
/// Get one from [`Broker::topic`](crate::Broker::topic); make producers, readers and groups
/// from it.
pub struct Topic<T> {
    pub(crate) shared: Arc<TopicState<T>>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> std::fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.shared.name)
            .field("partitions", &self.shared.partitions.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Topic<T> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// How many partitions it has.
    pub fn partitions(&self) -> u32 {
        self.shared.partitions.len() as u32
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &TopicConfig {
        &self.shared.config
    }

    /// A new producer.
    pub fn producer(&self) -> Producer<T> {
        Producer::new(Arc::clone(&self.shared))
    }

    /// A new independent reader of every partition, starting at `start` in each.
    pub fn consumer(&self, start: Start) -> Result<Consumer<T>, SeekError> {
        let cursors = self
            .shared
            .partitions
            .iter()
            .map(|part| Cursor::new(Arc::clone(part), start))
            .collect::<Result<_, _>>()?;
        Ok(Consumer::new(CursorSet::new(cursors), self.partitions()))
    }

    /// A new independent reader of one partition.
    pub fn partition_consumer(
        &self,
        partition: u32,
        start: Start,
    ) -> Result<Consumer<T>, SeekError> {
        let part =
            self.shared
                .partitions
                .get(partition as usize)
                .ok_or(SeekError::NoSuchPartition {
                    partition,
                    partitions: self.partitions(),
                })?;
        let cursor = Cursor::new(Arc::clone(part), start)?;
        Ok(Consumer::new(
            CursorSet::new(vec![cursor]),
            self.partitions(),
        ))
    }

    /// The consumer group `name`, created at the oldest records kept if it does not exist.
    pub fn group(&self, name: &str) -> Result<Group<T>, GroupError> {
        self.group_starting_at(name, Start::Earliest)
    }

    /// The consumer group `name`; if it does not exist yet, it is created with its committed
    /// offsets at `start` (resolved now, in each partition).
    pub fn group_starting_at(&self, name: &str, start: Start) -> Result<Group<T>, GroupError> {
        let state = self.shared.group_state(name, start)?;
        Ok(Group::new(Arc::clone(&self.shared), state))
    }

    /// The oldest offset kept, per partition.
    pub fn start_offsets(&self) -> Vec<u64> {
        self.shared.partitions.iter().map(|p| p.start()).collect()
    }

    /// The next offset to be written, per partition.
    pub fn end_offsets(&self) -> Vec<u64> {
        self.shared.partitions.iter().map(|p| p.end()).collect()
    }

    /// Closes the topic: sends fail with [`SendError::Closed`](crate::SendError::Closed)
    /// (giving the value back), and readers get [`RecvError::Closed`](crate::RecvError::Closed)
    /// once they have read every record. Records already appended stay readable.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether [`close`](Self::close) was called (on this topic or on the broker).
    pub fn is_closed(&self) -> bool {
        self.shared.partitions[0].is_closed()
    }

    /// What recovery found in each partition when this file-backed topic was opened (empty for
    /// an in-memory topic).
    pub fn recovery(&self) -> &[RecoveryReport] {
        self.shared.durable.as_ref().map_or(&[], |d| &d.reports)
    }

    /// Applies retention now. Count and byte retention are applied as records are appended;
    /// age retention otherwise runs only when a partition starts a new block.
    pub fn enforce_retention(&self) {
        for part in self.shared.partitions.iter() {
            part.enforce_retention();
        }
        for journal in self.journals() {
            journal.retain();
        }
    }

    /// Fsyncs every record appended so far (file-backed topics; a no-op in memory).
    pub fn sync(&self) -> Result<(), TopicError> {
        for journal in self.journals() {
            journal.sync_now().map_err(|message| TopicError::Storage {
                name: self.shared.name.clone(),
                message,
            })?;
        }
        Ok(())
    }

    /// The journals of a file-backed topic (none in memory).
    fn journals(&self) -> impl Iterator<Item = &Journal<T>> {
        self.shared
            .durable
            .iter()
            .flat_map(|durable| durable.journals.iter().map(|j| &**j))
    }
}
