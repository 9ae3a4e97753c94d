//! The broker: a registry of named, typed topics.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::TopicConfig;
use crate::error::TopicError;
use crate::name;
use crate::storage::Storage;
use crate::sync::Arc;
use crate::topic::Topic;
use crate::topic_state::TopicState;

/// A topic of any value type, as the registry holds it.
trait ErasedTopic: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn type_name(&self) -> &'static str;
    fn partitions(&self) -> u32;
    fn config(&self) -> &TopicConfig;
    fn shut_down(&self);
}

impl<T: Send + Sync + 'static> ErasedTopic for Arc<TopicState<T>> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn partitions(&self) -> u32 {
        self.partitions.len() as u32
    }

    fn config(&self) -> &TopicConfig {
        &self.config
    }

    fn shut_down(&self) {
        TopicState::shut_down(self);
    }
}

/// What [`Broker::create_or_open`] may do.
enum Want {
    /// Create the topic; it must not exist.
    New(TopicConfig),
    /// Create it, or open it if it exists with these settings.
    NewOrExisting(TopicConfig),
    /// Open it; it must exist.
    Existing,
}

#[derive(Default)]
struct Registry {
    topics: HashMap<String, Box<dyn ErasedTopic>>,
    closed: bool,
}

/// An embedded log broker: named topics with Kafka semantics, in this process.
///
/// Cheap to clone (clones share the topics), `Send + Sync`.
#[derive(Clone, Default)]
pub struct Broker {
    // std's Mutex even under loom: topic lookup is not part of any modelled protocol.
    registry: std::sync::Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("topics", &self.topic_names())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A new, empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates topic `name` with `config`, or opens it if it exists.
    ///
    /// Opening an existing topic checks the value type and every setting of `config` against
    /// the ones it was created with: a mismatch is an error ([`TopicError::TypeMismatch`],
    /// [`TopicError::PartitionMismatch`], [`TopicError::ConfigMismatch`]), never a topic with
    /// other settings than asked for.
    /// Names are checked like Kafka's: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or
    /// `..`; names starting with `__` are reserved for [internal topics](Self::internal_topic).
    pub fn topic<T: Send + Sync + 'static>(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Topic<T>, TopicError> {
        name::validate_user_topic(name).map_err(|source| TopicError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        self.create_or_open(name, Want::NewOrExisting(config))
    }

    /// Creates topic `name` with `config`; fails with [`TopicError::AlreadyExists`] if a topic
    /// of that name exists. Names are checked as by [`topic`](Self::topic).
    ///
    /// Together with [`open_topic`](Self::open_topic), it separates the place that owns a
    /// topic from the places that use it, so that a typo in a name is an error rather than a
    /// new, empty topic:
    ///
    /// ```
    /// use broker::{Broker, TopicConfig, TopicError};
    ///
    /// # fn main() -> Result<(), TopicError> {
    /// let broker = Broker::new();
    /// let orders = broker.create_topic::<u64>("orders", TopicConfig::new().partitions(4))?;
    /// assert!(matches!(
    ///     broker.create_topic::<u64>("orders", TopicConfig::new()),
    ///     Err(TopicError::AlreadyExists { .. })
    /// ));
    ///
    /// let same = broker.open_topic::<u64>("orders")?;
    /// assert_eq!(same.partitions(), orders.partitions());
    /// assert!(matches!(
    ///     broker.open_topic::<u64>("ordres"),
    ///     Err(TopicError::NotFound { .. })
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_topic<T: Send + Sync + 'static>(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Topic<T>, TopicError> {
        name::validate_user_topic(name).map_err(|source| TopicError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        self.create_or_open(name, Want::New(config))
    }

    /// Creates or opens a file-backed topic: its records and its groups' committed offsets are
    /// kept in `storage` and survive a restart (reopen it with the same name, type and
    /// partition count). Values go through serde + bincode; see
    /// [`storage`](crate::storage) for what an acknowledgement means at each durability level,
    /// and [`Topic::recovery`] for what recovery found.
    ///
    /// Every record kept on disk is also kept in memory, where readers read it: bound a
    /// replayed topic with byte or age retention.
    pub fn durable_topic<T>(
        &self,
        name: &str,
        config: TopicConfig,
        storage: &Storage,
    ) -> Result<Topic<T>, TopicError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        name::validate_user_topic(name).map_err(|source| TopicError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if registry.closed {
            return Err(TopicError::BrokerClosed);
        }
        if registry.topics.contains_key(name) {
            drop(registry);
            return self.create_or_open(name, Want::NewOrExisting(config));
        }
        config.check().map_err(|reason| TopicError::InvalidConfig {
            name: name.to_owned(),
            reason,
        })?;
        let shared = Arc::new(TopicState::<T>::open_durable(name, config, storage)?);
        registry
            .topics
            .insert(name.to_owned(), Box::new(Arc::clone(&shared)));
        Ok(Topic { shared })
    }

    /// Creates or opens an internal topic: its name must start with `__`.
    pub fn internal_topic<T: Send + Sync + 'static>(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Topic<T>, TopicError> {
        name::validate_internal_topic(name).map_err(|source| TopicError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        self.create_or_open(name, Want::NewOrExisting(config))
    }

    /// Opens an existing topic (in memory or file-backed, user or internal), checking its
    /// value type; fails with [`TopicError::NotFound`] if no topic has this name (see
    /// [`create_topic`](Self::create_topic) for an example).
    pub fn open_topic<T: Send + Sync + 'static>(&self, name: &str) -> Result<Topic<T>, TopicError> {
        self.create_or_open(name, Want::Existing)
    }

    fn create_or_open<T: Send + Sync + 'static>(
        &self,
        name: &str,
        want: Want,
    ) -> Result<Topic<T>, TopicError> {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if registry.closed {
            return Err(TopicError::BrokerClosed);
        }
        if let Some(existing) = registry.topics.get(name) {
            let Some(shared) = existing.as_any().downcast_ref::<Arc<TopicState<T>>>() else {
                return Err(TopicError::TypeMismatch {
                    name: name.to_owned(),
                    existing: existing.type_name(),
                    requested: std::any::type_name::<T>(),
                });
            };
            let config = match &want {
                Want::New(_) => {
                    return Err(TopicError::AlreadyExists {
                        name: name.to_owned(),
                    });
                }
                Want::NewOrExisting(config) => Some(config),
                Want::Existing => None,
            };
            if let Some(config) = config {
                if config.partitions != existing.partitions() {
                    return Err(TopicError::PartitionMismatch {
                        name: name.to_owned(),
                        existing: existing.partitions(),
                        requested: config.partitions,
                    });
                }
                if let Some((setting, existing, requested)) = existing.config().difference(config) {
                    return Err(TopicError::ConfigMismatch {
                        name: name.to_owned(),
                        setting,
                        existing,
                        requested,
                    });
                }
            }
            return Ok(Topic {
                shared: Arc::clone(shared),
            });
        }
        let config = match want {
            Want::New(config) | Want::NewOrExisting(config) => config,
            Want::Existing => {
                return Err(TopicError::NotFound {
                    name: name.to_owned(),
                });
            }
        };
        config.check().map_err(|reason| TopicError::InvalidConfig {
            name: name.to_owned(),
            reason,
        })?;
        let shared = Arc::new(TopicState::<T>::new(name, config));
        registry
            .topics
            .insert(name.to_owned(), Box::new(Arc::clone(&shared)));
        Ok(Topic { shared })
    }

    /// The names of every topic, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = registry.topics.keys().cloned().collect();
        names.sort();
        names
    }

    /// Closes the broker: every topic is closed (see [`Topic::close`]: sends fail, readers
    /// finish what was appended), and, unlike after [`Topic::close`], the broker's groups
    /// stop too: opening a group fails with [`GroupError::BrokerClosed`], a member that joins
    /// now is not counted and reads nothing (its receives return
    /// [`RecvError::Closed`](crate::RecvError::Closed)), and commits fail with
    /// [`CommitError::BrokerClosed`]. Creating or opening topics fails with
    /// [`TopicError::BrokerClosed`].
    ///
    /// [`GroupError::BrokerClosed`]: crate::GroupError::BrokerClosed
    /// [`CommitError::BrokerClosed`]: crate::CommitError::BrokerClosed
    pub fn close(&self) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.closed = true;
        for topic in registry.topics.values() {
            topic.shut_down();
        }
    }
}
