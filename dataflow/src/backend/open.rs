//! Opening a topic for values of one type: the requests [`Backend::open`] fills. The
//! embedded broker's topics are wrapped as they are, a byte backend's through the codec
//! adapter: this is the one place where the two kinds meet.

use std::sync::Arc;

use broker::{Broker, Overflow, Topic, TopicConfig};

use super::BackendError;
use super::bytes::ByteTopic;
use super::bytes::codec::CodecTopic;
use super::log::LogTopic;
use super::mem::EmbeddedTopic;
use super::store::{Backend, OnDisk, Open};
use crate::codec::Codec;
use crate::spec::{Role, TopicSpec};
use crate::stage::Deliver;

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
