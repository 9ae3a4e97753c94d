//! A connection to a backend, shared by pipelines and by the code that feeds their sources
//! and reads their sinks.

use std::sync::Arc;

use broker::Broker;

use super::bytes::{Bytes, RemoteBackend};
use super::mem::MemBackend;
use super::open;
use super::store::Backend;
use super::{BackendError, BackendUrl, StartAt, TopicProducer, TopicReader};
use crate::spec::TopicSpec;
use crate::stage::Deliver;

/// A backend, connected: the embedded broker, files, standard input and output, or a remote
/// service. Cheap to clone.
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
    backend: Arc<dyn Backend>,
}

impl Connection {
    /// Connects to the backend `url` names (`mem://` makes a new embedded broker). Fails fast
    /// on a bad URL, a missing cargo feature, bad credentials or an unreachable server.
    pub async fn open(url: &str) -> Result<Self, BackendError> {
        let url = BackendUrl::parse(url)?;
        Ok(Self {
            backend: super::connect(url).await?,
        })
    }

    /// The embedded broker `broker`.
    pub fn mem(broker: &Broker) -> Self {
        Self {
            backend: Arc::new(MemBackend::new(broker.clone())),
        }
    }

    /// A backend that moves bytes (a bridge of this crate, or your own).
    pub fn remote(backend: Arc<dyn RemoteBackend>) -> Self {
        Self {
            backend: Arc::new(Bytes(backend)),
        }
    }

    /// The embedded broker, on `mem://` and `file://`.
    pub fn broker(&self) -> Option<&Broker> {
        self.backend.broker()
    }

    /// The scheme (`mem`, `file`, `stdio`, `redis`, `kafka`).
    pub fn scheme(&self) -> &'static str {
        self.backend.scheme()
    }

    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// A producer of the topic `spec` names, created if it does not exist.
    pub async fn producer<T: Deliver>(
        &self,
        spec: impl Into<TopicSpec>,
    ) -> Result<TopicProducer<T>, BackendError> {
        let spec = spec.into();
        let topic = open::open::<T>(&*self.backend, &spec, None).await?;
        TopicProducer::new(&*topic).await
    }

    /// A member of consumer group `group` of the topic `spec` names (created if it does not
    /// exist). A new group starts at the earliest record.
    pub async fn reader<T: Deliver>(
        &self,
        spec: impl Into<TopicSpec>,
        group: &str,
    ) -> Result<TopicReader<T>, BackendError> {
        let spec = spec.into();
        let topic = open::open::<T>(&*self.backend, &spec, None).await?;
        let member = topic.join(group, 1, StartAt::Earliest).await?;
        Ok(TopicReader::new(topic.name(), member))
    }
}
