//! A pipeline's topic once resolved on its backend.

use std::sync::Arc;

use broker::Topic;
use tokio::sync::OnceCell;

use crate::backend::BackendError;
use crate::backend::log::LogTopic;
use crate::backend::mem::EmbeddedTopic;
use crate::backend::open::{self, Probed};
use crate::backend::store::Backend;
use crate::codec::Codec;
use crate::error::PipelineError;
use crate::runtime::checkpoint::error::StateError;
use crate::runtime::checkpoint::snapshot::Checkpoint;
use crate::runtime::checkpoint::transaction::{SinkTopic, Sinks, recover};
use crate::runtime::output::Output;
use crate::spec::TopicSpec;
use crate::stage::Deliver;

/// A source, sink or internal topic of a running pipeline.
///
/// It is resolved in two steps: when the pipeline binds it, the topic is made to exist on the
/// backend (so that a bad name, a missing permission or, on the embedded broker, a topic of
/// another value type fail `start`); it is opened for its values (which may need their codec)
/// when the first task reads or writes it.
pub struct Port<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    spec: TopicSpec,
    partitions: u32,
    backend: Arc<dyn Backend>,
    /// The codec of the pipeline, for a spec that names none (else the backend's).
    codec: Option<Codec>,
    /// A topic of the embedded broker, bound as it is or found in memory when probed.
    embedded: Option<Topic<T>>,
    topic: OnceCell<Arc<dyn LogTopic<T>>>,
    /// In an exactly-once pipeline: where its outputs are held back.
    transaction: Option<Transaction>,
    /// Set once the sink is registered and its held-back outputs are complete.
    ready: OnceCell<()>,
}

/// What an exactly-once pipeline's sinks need.
#[derive(Clone)]
pub(crate) struct Transaction {
    pub(crate) sinks: Sinks,
    /// The checkpoint the pipeline started from: its outputs are completed first.
    pub(crate) restored: Arc<Option<Checkpoint>>,
}

impl<T> Clone for Port<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Send + Sync + 'static> Port<T> {
    /// The topic `spec` names on `backend`, made to exist.
    pub(crate) async fn probe(
        backend: &Arc<dyn Backend>,
        spec: TopicSpec,
        codec: Option<Codec>,
    ) -> Result<Self, BackendError> {
        let Probed {
            partitions,
            embedded,
        } = open::probe::<T>(&**backend, &spec).await?;
        Ok(Self::new(backend, spec, partitions, codec, embedded))
    }

    /// An embedded topic bound as it is.
    pub(crate) fn embedded(
        backend: &Arc<dyn Backend>,
        topic: Topic<T>,
        codec: Option<Codec>,
    ) -> Self {
        let spec = TopicSpec::new(topic.name()).partitions(topic.partitions());
        Self::new(backend, spec, topic.partitions(), codec, Some(topic))
    }

    fn new(
        backend: &Arc<dyn Backend>,
        spec: TopicSpec,
        partitions: u32,
        codec: Option<Codec>,
        embedded: Option<Topic<T>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                spec,
                partitions,
                backend: Arc::clone(backend),
                codec,
                embedded,
                topic: OnceCell::new(),
                transaction: None,
                ready: OnceCell::new(),
            }),
        }
    }

    /// The same port, a sink of an exactly-once pipeline.
    pub(crate) fn transactional(self, transaction: Transaction) -> Self {
        let inner = Arc::try_unwrap(self.inner).ok().expect("not shared yet");
        Self {
            inner: Arc::new(Inner {
                transaction: Some(transaction),
                ..inner
            }),
        }
    }

    /// The topic's name on its backend.
    pub fn name(&self) -> &str {
        match (self.inner.topic.get(), &self.inner.embedded) {
            (Some(topic), _) => topic.name(),
            (None, Some(topic)) => topic.name(),
            (None, None) => &self.inner.spec.name,
        }
    }

    /// Its partition count.
    pub fn partitions(&self) -> u32 {
        self.inner.partitions
    }
}

impl<T: Send + Sync + 'static> Port<T> {
    /// A port whose topic is already open.
    pub(crate) fn from_topic(
        backend: &Arc<dyn Backend>,
        spec: TopicSpec,
        topic: Arc<dyn LogTopic<T>>,
        codec: Option<Codec>,
    ) -> Self {
        let port = Self::new(backend, spec, topic.partitions(), codec, None);
        let _ = port.inner.topic.set(topic);
        port
    }
}

impl<T: Deliver> Port<T> {
    /// The topic `spec` names on `backend`, opened for its values.
    pub(crate) async fn open(
        backend: &Arc<dyn Backend>,
        spec: TopicSpec,
        codec: Option<Codec>,
    ) -> Result<Self, BackendError> {
        let topic = open::open::<T>(&**backend, &spec, codec).await?;
        Ok(Self::from_topic(backend, spec, topic, codec))
    }

    /// An output that writes to this topic: in an exactly-once pipeline, one that holds its
    /// outputs back, once the sink is registered and the outputs of the checkpoint the
    /// pipeline started from are complete.
    pub(crate) async fn output(&self) -> Result<Output<T>, PipelineError> {
        let topic = self.topic().await?;
        let Some(transaction) = &self.inner.transaction else {
            return Ok(Output::new(&**topic).await?);
        };
        self.inner
            .ready
            .get_or_try_init(|| async {
                if topic.end_offsets().is_none() {
                    return Err(StateError::ExactlyOnce(format!(
                        "sink `{}` is not a topic of the embedded broker",
                        topic.name()
                    )));
                }
                let sink = SinkTopic {
                    topic: Arc::clone(topic),
                };
                if let Some(checkpoint) = transaction.restored.as_ref() {
                    recover(&sink, topic.name(), &checkpoint.outputs).await?;
                }
                transaction.sinks.register(topic.name(), Arc::new(sink));
                Ok(())
            })
            .await?;
        Ok(Output::held(topic).await?)
    }

    /// The topic, opened for its values (once; later calls share it).
    pub(crate) async fn topic(&self) -> Result<&Arc<dyn LogTopic<T>>, BackendError> {
        let inner = &*self.inner;
        inner
            .topic
            .get_or_try_init(|| async {
                match &inner.embedded {
                    Some(topic) => {
                        Ok(Arc::new(EmbeddedTopic::new(topic.clone(), false))
                            as Arc<dyn LogTopic<T>>)
                    }
                    None => open::open::<T>(&*inner.backend, &inner.spec, inner.codec).await,
                }
            })
            .await
    }
}
