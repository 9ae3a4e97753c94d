//! Topics: named, typed, partitioned logs.

use std::collections::HashMap;

use crate::config::{Start, TopicConfig};
use crate::consumer::Consumer;
use crate::cursor::{Cursor, CursorSet};
use crate::durable::{Flusher, GroupStore, Journal};
use crate::error::TopicError;
use crate::error::{GroupError, SeekError};
use crate::group::{Group, GroupShared};
use crate::name;
use crate::partition::Partition;
use crate::producer::Producer;
use crate::storage::{Durability, PartitionLog, RecoveryReport, Storage, codec};
use crate::sync::{Arc, Mutex, lock};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) struct TopicShared<T> {
    pub(crate) name: String,
    pub(crate) config: TopicConfig,
    pub(crate) partitions: Box<[Arc<Partition<T>>]>,
    groups: Mutex<HashMap<String, Arc<GroupShared>>>,
    /// File-backed topics only.
    durable: Option<DurableTopic>,
}

/// What a file-backed topic keeps besides its partitions.
struct DurableTopic {
    groups: std::sync::Arc<GroupStore>,
    reports: Vec<RecoveryReport>,
    /// Stops its thread when the topic goes.
    _flusher: Option<Flusher>,
}

impl<T> TopicShared<T> {
    pub(crate) fn new(name: &str, config: TopicConfig) -> Self {
        let partitions = (0..config.partitions)
            .map(|i| Arc::new(Partition::new(i, &config)))
            .collect();
        Self {
            name: name.to_owned(),
            config,
            partitions,
            groups: Mutex::new(HashMap::new()),
            durable: None,
        }
    }

    /// Opens a file-backed topic: recovers each partition's files and replays them into
    /// memory.
    pub(crate) fn open_durable(
        name: &str,
        config: TopicConfig,
        storage: &Storage,
    ) -> Result<Self, TopicError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let fail = |message: String| TopicError::Storage {
            name: name.to_owned(),
            message,
        };
        // The topic layer fsyncs for `Always` (sharing fsyncs between producers); the files
        // fsync by themselves for `Interval`, and never for `Never`.
        let mut file_config = storage.config.clone();
        if file_config.durability == Durability::Always {
            file_config.durability = Durability::Never;
        }
        let mut partitions = Vec::new();
        let mut journals = Vec::new();
        let mut reports = Vec::new();
        for index in 0..config.partitions {
            let dir = crate::storage::partition_dir(&storage.root, name, index)
                .map_err(|e| fail(e.to_string()))?;
            let (log, records, report) = PartitionLog::open(
                std::sync::Arc::clone(&storage.fs),
                &dir,
                file_config.clone(),
            )
            .map_err(|e| fail(e.to_string()))?;
            let origin = records.first().map_or(log.next_offset(), |r| r.offset);
            let mut part = Partition::starting_at(index, &config, origin);
            for record in records {
                let value: T = codec::decode(&record.value).map_err(|e| {
                    fail(format!("partition {index} offset {}: {e}", record.offset))
                })?;
                part.restore(
                    record.timestamp,
                    record.key.map(Vec::into_boxed_slice),
                    value,
                );
            }
            let journal = std::sync::Arc::new(Journal::new(
                log,
                storage.config.durability,
                |value: &T, out| codec::encode(value, out),
                (config.retain_bytes, config.retain_age),
            ));
            part.journal = Some(std::sync::Arc::clone(&journal));
            journals.push(journal);
            partitions.push(Arc::new(part));
            reports.push(report);
        }
        let flusher = match storage.config.durability {
            Durability::Interval(every) => Some(Flusher::start(journals, every)),
            _ => None,
        };
        Ok(Self {
            name: name.to_owned(),
            config,
            partitions: partitions.into_boxed_slice(),
            groups: Mutex::new(HashMap::new()),
            durable: Some(DurableTopic {
                groups: std::sync::Arc::new(GroupStore {
                    fs: std::sync::Arc::clone(&storage.fs),
                    root: storage.root.clone(),
                    topic: name.to_owned(),
                }),
                reports,
                _flusher: flusher,
            }),
        })
    }

    pub(crate) fn close(&self) {
        for part in self.partitions.iter() {
            part.close();
        }
    }
}

/// A topic: a named log of `T` values in one or more partitions. Cheap to clone.
///
/// Get one from [`Broker::topic`](crate::Broker::topic); make producers, readers and groups
/// from it.
pub struct Topic<T> {
    pub(crate) shared: Arc<TopicShared<T>>,
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
        name::validate(name).map_err(|source| GroupError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        let mut groups = lock(&self.shared.groups);
        let shared = match groups.get(name) {
            Some(shared) => Arc::clone(shared),
            None => {
                let durable = self.shared.durable.as_ref();
                let stored = match durable {
                    Some(durable) => durable
                        .groups
                        .load(name)
                        .map_err(|message| GroupError::Storage { message })?,
                    None => None,
                };
                let mut group = GroupShared::new(name, &self.shared, start, stored)?;
                if let Some(durable) = durable {
                    let store = std::sync::Arc::clone(&durable.groups);
                    let group_name = name.to_owned();
                    group.persist = Some(Box::new(move |offsets| store.save(&group_name, offsets)));
                }
                let shared = Arc::new(group);
                groups.insert(name.to_owned(), Arc::clone(&shared));
                shared
            }
        };
        Ok(Group::new(Arc::clone(&self.shared), shared))
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
            if let Some(journal) = &part.journal {
                journal.retain();
            }
        }
    }

    /// Fsyncs every record appended so far (file-backed topics; a no-op in memory).
    pub fn sync(&self) -> Result<(), TopicError> {
        for part in self.shared.partitions.iter() {
            if let Some(journal) = &part.journal {
                journal.sync_now().map_err(|message| TopicError::Storage {
                    name: self.shared.name.clone(),
                    message,
                })?;
            }
        }
        Ok(())
    }
}
