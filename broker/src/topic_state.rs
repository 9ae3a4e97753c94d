//! What every handle of a topic shares: its name, configuration and partitions, the journals
//! of a file-backed topic, and the state of its consumer groups.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Start, TopicConfig};
use crate::durable::{GroupStore, Journal, Writer};
use crate::error::{GroupError, TopicError};
use crate::group_state::GroupState;
use crate::name;
use crate::partition::Partition;
use crate::storage::{Durability, PartitionLog, RecoveryReport, Storage, codec};
use crate::sync::{Arc, Mutex, lock};

pub(crate) struct TopicState<T> {
    pub(crate) name: String,
    pub(crate) config: TopicConfig,
    pub(crate) partitions: Box<[Arc<Partition<T>>]>,
    groups: Mutex<Groups>,
    /// File-backed topics only.
    pub(crate) durable: Option<DurableTopic<T>>,
}

/// The consumer groups of a topic.
#[derive(Default)]
struct Groups {
    by_name: HashMap<String, Arc<GroupState>>,
    /// Set by [`TopicState::shut_down`]: no group is opened any more.
    shut_down: bool,
}

/// What a file-backed topic keeps besides its partitions.
pub(crate) struct DurableTopic<T> {
    /// One per partition, in front of it: every append goes through it first.
    pub(crate) journals: Box<[std::sync::Arc<Journal<T>>]>,
    groups: std::sync::Arc<GroupStore>,
    pub(crate) reports: Vec<RecoveryReport>,
    /// Does the file work of async sends, and the fsyncs of `Durability::Interval`; stops its
    /// thread when the topic goes.
    pub(crate) writer: Writer<T>,
}

impl<T> TopicState<T> {
    pub(crate) fn new(name: &str, config: TopicConfig) -> Self {
        let partitions = (0..config.partitions)
            .map(|i| Arc::new(Partition::new(i, &config)))
            .collect();
        Self {
            name: name.to_owned(),
            config,
            partitions,
            groups: Mutex::new(Groups::default()),
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
                // Records recovery found lost keep their offsets, as missing ones.
                part.restore_missing(record.offset - part.end());
                part.restore(
                    record.timestamp,
                    record.key.map(Vec::into_boxed_slice),
                    value,
                );
            }
            part.restore_missing(log.next_offset() - part.end());
            let journal = std::sync::Arc::new(Journal::new(
                log,
                storage.config.durability,
                |value: &T, out| codec::encode(value, out),
                (config.retain_bytes, config.retain_age),
            ));
            journals.push(journal);
            partitions.push(Arc::new(part));
            reports.push(report);
        }
        let writer = Writer::start(
            partitions
                .iter()
                .cloned()
                .zip(journals.iter().cloned())
                .collect(),
            storage.config.durability,
        );
        Ok(Self {
            name: name.to_owned(),
            config,
            partitions: partitions.into_boxed_slice(),
            groups: Mutex::new(Groups::default()),
            durable: Some(DurableTopic {
                journals: journals.into_boxed_slice(),
                groups: std::sync::Arc::new(GroupStore {
                    fs: std::sync::Arc::clone(&storage.fs),
                    root: storage.root.clone(),
                    topic: name.to_owned(),
                }),
                reports,
                writer,
            }),
        })
    }

    pub(crate) fn close(&self) {
        for part in self.partitions.iter() {
            part.close();
        }
    }

    /// Closes the topic for good, as its broker closes: besides what [`close`](Self::close)
    /// does, no group is opened or joined and no commit is accepted any more.
    pub(crate) fn shut_down(&self) {
        {
            let mut groups = lock(&self.groups);
            groups.shut_down = true;
            for group in groups.by_name.values() {
                group.shut_down();
            }
        }
        self.close();
    }

    /// The writer of a file-backed topic.
    pub(crate) fn writer(&self) -> Option<&Writer<T>> {
        self.durable.as_ref().map(|durable| &durable.writer)
    }

    /// The journal in front of partition `index`, for a file-backed topic.
    pub(crate) fn journal(&self, index: u32) -> Option<&Journal<T>> {
        self.durable
            .as_ref()
            .map(|durable| &*durable.journals[index as usize])
    }

    /// The state of consumer group `name`; if it does not exist yet, it is created with its
    /// committed offsets at `start` (or, for a file-backed topic, at the offsets it stored).
    pub(crate) fn group_state(
        &self,
        name: &str,
        start: Start,
    ) -> Result<Arc<GroupState>, GroupError> {
        name::validate(name).map_err(|source| GroupError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        let mut groups = lock(&self.groups);
        if groups.shut_down {
            return Err(GroupError::BrokerClosed);
        }
        if let Some(shared) = groups.by_name.get(name) {
            return Ok(Arc::clone(shared));
        }
        let durable = self.durable.as_ref();
        let stored = match durable {
            Some(durable) => durable
                .groups
                .load(name)
                .map_err(|message| GroupError::Storage { message })?,
            None => None,
        };
        let mut group = GroupState::new(name, &self.partitions, start, stored)?;
        if let Some(durable) = durable {
            let store = std::sync::Arc::clone(&durable.groups);
            let group_name = name.to_owned();
            group.persist = Some(Box::new(move |offsets| store.save(&group_name, offsets)));
        }
        let shared = Arc::new(group);
        groups.by_name.insert(name.to_owned(), Arc::clone(&shared));
        Ok(shared)
    }
}
