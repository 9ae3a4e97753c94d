//! How a backend hands out topics: [`Backend::open`] makes a topic exist and gives it to an
//! [`Open`] request, which turns it into the typed log interface. A backend keeps its topics
//! either typed in an embedded broker (`mem://`, `file://`) or as bytes (everything else);
//! the request knows the value type and so knows how to wrap either. This is the one place
//! where the two kinds meet.

use std::fmt;
use std::sync::Arc;

use broker::storage::Storage;
use broker::{Broker, Overflow, Topic, TopicConfig};

use super::bytes::ByteTopic;
use super::bytes::codec::CodecTopic;
use super::log::LogTopic;
use super::mem::EmbeddedTopic;
use super::{BackendError, BoxFuture};
use crate::codec::Codec;
use crate::spec::{Role, TopicSpec};
use crate::stage::Deliver;

/// Where topics live, as the runtime sees every backend.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// The URL scheme (`mem`, `file`, `redis`, ...).
    fn scheme(&self) -> &'static str;

    /// Whether several processes share its topics and groups (Redis, Kafka): then a pipeline
    /// cannot bind a source or sink to an embedded topic of its own process.
    fn shared_between_processes(&self) -> bool;

    /// The codec of its topics when neither the topic nor the pipeline names one.
    fn default_codec(&self) -> Codec {
        Codec::bincode()
    }

    /// The embedded broker that holds its topics, if it is one.
    fn broker(&self) -> Option<&Broker> {
        None
    }

    /// Makes the topic `spec` names exist (created with its partitions if it does not) and
    /// hands it to `open`.
    fn open<'a>(
        &'a self,
        spec: &'a TopicSpec,
        open: &'a mut dyn Open,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// Where a file-backed topic keeps its files, and the partitions it has there.
#[derive(Clone, Copy)]
pub(crate) struct OnDisk<'a> {
    pub(crate) storage: &'a Storage,
    /// The partitions found on disk, or those the spec asks for when it is new.
    pub(crate) partitions: u32,
}

/// A request for a topic of one value type, filled by [`Backend::open`].
pub(crate) trait Open: Send {
    /// The topic lives, typed, in `broker`; in files when `disk` says where.
    fn embedded(&mut self, broker: &Broker, disk: Option<OnDisk<'_>>) -> Result<(), BackendError>;

    /// The topic is `topic`, a topic of encoded records.
    fn bytes(&mut self, topic: ByteTopic) -> Result<(), BackendError>;
}

/// Opens the topic `spec` names for values of `T`; its records are encoded (on a backend that
/// moves bytes) with the spec's codec, else `codec`, else the backend's default.
pub(crate) async fn open<T: Deliver>(
    backend: &dyn Backend,
    spec: &TopicSpec,
    codec: Option<Codec>,
) -> Result<Arc<dyn LogTopic<T>>, BackendError> {
    let mut request = Typed::<T> {
        spec,
        codec: spec
            .codec
            .or(codec)
            .unwrap_or_else(|| backend.default_codec()),
        topic: None,
    };
    backend.open(spec, &mut request).await?;
    Ok(request.topic.expect("every backend fills the request"))
}

/// What [`probe`] learned of a topic without knowing how to encode its values.
pub(crate) struct Probed<T> {
    /// Its partition count.
    pub(crate) partitions: u32,
    /// The topic itself when it lives in memory (typed without a codec).
    pub(crate) embedded: Option<Topic<T>>,
}

/// Makes the topic `spec` names exist, and opens it at once when it lives in memory (so that
/// a topic of another value type is refused now).
pub(crate) async fn probe<T: Send + Sync + 'static>(
    backend: &dyn Backend,
    spec: &TopicSpec,
) -> Result<Probed<T>, BackendError> {
    let mut request = Probe::<T> { spec, probed: None };
    backend.open(spec, &mut request).await?;
    Ok(request.probed.expect("every backend fills the request"))
}

struct Typed<'a, T> {
    spec: &'a TopicSpec,
    codec: Codec,
    topic: Option<Arc<dyn LogTopic<T>>>,
}

impl<T: Deliver> Open for Typed<'_, T> {
    fn embedded(&mut self, broker: &Broker, disk: Option<OnDisk<'_>>) -> Result<(), BackendError> {
        let topic = match disk {
            Some(disk) => EmbeddedTopic::durable(broker, &self.spec.name, disk)?,
            _ => in_memory(broker, self.spec)?,
        };
        self.topic = Some(Arc::new(topic));
        Ok(())
    }

    fn bytes(&mut self, topic: ByteTopic) -> Result<(), BackendError> {
        self.topic = Some(Arc::new(CodecTopic::<T>::new(topic, self.codec, self.spec)));
        Ok(())
    }
}

struct Probe<'a, T> {
    spec: &'a TopicSpec,
    probed: Option<Probed<T>>,
}

impl<T: Send + Sync + 'static> Open for Probe<'_, T> {
    fn embedded(&mut self, broker: &Broker, disk: Option<OnDisk<'_>>) -> Result<(), BackendError> {
        self.probed = Some(match disk {
            // A file-backed topic needs the codec to open: its partitions for now.
            Some(disk) => Probed {
                partitions: disk.partitions,
                embedded: None,
            },
            _ => {
                let topic = in_memory::<T>(broker, self.spec)?;
                Probed {
                    partitions: topic.topic().partitions(),
                    embedded: Some(topic.topic().clone()),
                }
            }
        });
        Ok(())
    }

    fn bytes(&mut self, topic: ByteTopic) -> Result<(), BackendError> {
        self.probed = Some(Probed {
            partitions: topic.partitions,
            embedded: None,
        });
        Ok(())
    }
}

/// The in-memory topic `spec` names: an internal topic (bounded, `Block`) or a data topic
/// (opened if it exists, else created).
fn in_memory<T: Send + Sync + 'static>(
    broker: &Broker,
    spec: &TopicSpec,
) -> Result<EmbeddedTopic<T>, BackendError> {
    match spec.role {
        Role::Internal { capacity, closable } => {
            let config = TopicConfig::new()
                .partitions(spec.partitions.unwrap_or(1))
                .capacity(capacity, Overflow::Block);
            let topic = broker.internal_topic::<T>(&format!("__{}", spec.name), config)?;
            Ok(EmbeddedTopic::new(topic, closable))
        }
        Role::Data | Role::DeadLetters => EmbeddedTopic::open_or_create(broker, spec),
    }
}
