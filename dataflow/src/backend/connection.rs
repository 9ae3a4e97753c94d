//! A connection to a backend, shared by pipelines and by the code that feeds their sources
//! and reads their sinks.

use std::sync::Arc;

use broker::{Broker, TopicConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::url::Scheme;
use super::{BackendError, BackendUrl, RemoteBackend, TopicProducer, TopicReader};
use crate::spec::TopicSpec;

/// A backend, connected: the embedded broker or a remote service. Cheap to clone.
///
/// ```
/// # async fn run() -> Result<(), dataflow::backend::BackendError> {
/// use dataflow::backend::Connection;
///
/// let connection = Connection::open("mem://").await?;
/// let mut producer = connection.producer::<String>("lines").await?;
/// producer.send_batch(0, ["hello".to_owned()]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Mem(Broker),
    Remote(Arc<dyn RemoteBackend>),
}

impl Connection {
    /// Connects to the backend `url` names (`mem://` makes a new embedded broker). Fails fast
    /// on a bad URL, a missing cargo feature, bad credentials or an unreachable server.
    pub async fn open(url: &str) -> Result<Self, BackendError> {
        let url = BackendUrl::parse(url)?;
        match url.scheme {
            Scheme::Mem => Ok(Self::mem(&Broker::new())),
            Scheme::Redis | Scheme::Rediss => Self::open_redis(url).await,
            Scheme::Kafka => Self::open_kafka(url).await,
        }
    }

    #[cfg(feature = "redis")]
    async fn open_redis(url: BackendUrl) -> Result<Self, BackendError> {
        let backend = super::redis::RedisBackend::connect(url).await?;
        Ok(Self::remote(Arc::new(backend)))
    }

    #[cfg(not(feature = "redis"))]
    async fn open_redis(url: BackendUrl) -> Result<Self, BackendError> {
        Err(BackendError::FeatureDisabled {
            scheme: url.scheme.as_str(),
            feature: "redis",
        })
    }

    #[cfg(feature = "kafka")]
    async fn open_kafka(url: BackendUrl) -> Result<Self, BackendError> {
        let backend = super::kafka::KafkaBackend::connect(url).await?;
        Ok(Self::remote(Arc::new(backend)))
    }

    #[cfg(not(feature = "kafka"))]
    async fn open_kafka(_url: BackendUrl) -> Result<Self, BackendError> {
        Err(BackendError::FeatureDisabled {
            scheme: "kafka",
            feature: "kafka",
        })
    }

    /// The embedded broker `broker`.
    pub fn mem(broker: &Broker) -> Self {
        Self {
            inner: Inner::Mem(broker.clone()),
        }
    }

    /// A remote backend (a bridge of this crate, or your own).
    pub fn remote(backend: Arc<dyn RemoteBackend>) -> Self {
        Self {
            inner: Inner::Remote(backend),
        }
    }

    /// The embedded broker, on `mem://`.
    pub fn broker(&self) -> Option<&Broker> {
        match &self.inner {
            Inner::Mem(broker) => Some(broker),
            Inner::Remote(_) => None,
        }
    }

    /// The remote backend, if this is not `mem://`.
    pub fn remote_backend(&self) -> Option<&Arc<dyn RemoteBackend>> {
        match &self.inner {
            Inner::Mem(_) => None,
            Inner::Remote(backend) => Some(backend),
        }
    }

    /// The scheme (`mem`, `redis`, `kafka`).
    pub fn scheme(&self) -> &'static str {
        match &self.inner {
            Inner::Mem(_) => "mem",
            Inner::Remote(backend) => backend.scheme(),
        }
    }

    /// A producer of the topic `spec` names, created if it does not exist.
    pub async fn producer<T: Serialize + Send + Sync + 'static>(
        &self,
        spec: impl Into<TopicSpec>,
    ) -> Result<TopicProducer<T>, BackendError> {
        let spec = spec.into();
        match &self.inner {
            Inner::Mem(broker) => Ok(TopicProducer::mem(&mem_topic::<T>(broker, &spec)?)),
            Inner::Remote(backend) => {
                let partitions = backend
                    .ensure_topic(&spec.name, spec.partitions.unwrap_or(1))
                    .await?;
                let producer = backend.producer(&spec.name).await?;
                Ok(TopicProducer::remote(
                    &spec.name,
                    partitions,
                    producer,
                    spec.codec.unwrap_or_default(),
                ))
            }
        }
    }

    /// A member of consumer group `group` of the topic `spec` names (created if it does not
    /// exist). A new group starts at the earliest record.
    pub async fn reader<T: DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        spec: impl Into<TopicSpec>,
        group: &str,
    ) -> Result<TopicReader<T>, BackendError> {
        let spec = spec.into();
        match &self.inner {
            Inner::Mem(broker) => {
                let topic = mem_topic::<T>(broker, &spec)?;
                let mut member = topic.group(group)?.join();
                member.refresh();
                Ok(TopicReader::mem(&spec.name, member))
            }
            Inner::Remote(backend) => {
                let partitions = backend
                    .ensure_topic(&spec.name, spec.partitions.unwrap_or(1))
                    .await?;
                let member = backend.join(&spec.name, group, partitions, 1).await?;
                Ok(TopicReader::remote(
                    &spec.name,
                    member,
                    spec.codec.unwrap_or_default(),
                ))
            }
        }
    }
}

/// The embedded topic `spec` names: opened if it exists, else created.
pub(crate) fn mem_topic<T: Send + Sync + 'static>(
    broker: &Broker,
    spec: &TopicSpec,
) -> Result<broker::Topic<T>, BackendError> {
    match broker.open_topic::<T>(&spec.name) {
        Ok(topic) => Ok(topic),
        Err(broker::TopicError::NotFound { .. }) => Ok(broker.topic::<T>(
            &spec.name,
            TopicConfig::new().partitions(spec.partitions.unwrap_or(1)),
        )?),
        Err(other) => Err(other.into()),
    }
}
