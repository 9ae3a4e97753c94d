//! A pipeline's topic once resolved on its backend: an embedded topic, or a remote one.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use broker::Topic;

use crate::backend::SharedBackend;
use crate::codec::Codec;

/// A source, sink or internal topic of a running pipeline.
pub enum Port<T> {
    /// On the embedded broker: values are shared, never encoded.
    Mem(Topic<T>),
    /// On a remote backend: values cross through `codec`.
    Remote(RemotePort),
}

/// A topic on a remote backend.
#[derive(Clone)]
pub struct RemotePort {
    pub(crate) backend: SharedBackend,
    pub(crate) name: String,
    pub(crate) partitions: u32,
    pub(crate) codec: Codec,
    /// For an internal topic: the backlog per partition above which producers wait
    /// (backpressure), when the backend can tell a backlog.
    pub(crate) bound: Option<Bound>,
}

/// The bound of a remote internal topic.
#[derive(Clone)]
pub(crate) struct Bound {
    /// Records per partition not yet processed by the downstream group.
    pub(crate) capacity: u64,
    /// Set when a task of the pipeline failed: a producer waiting for the downstream group
    /// then fails too, instead of waiting forever for a reader that is gone.
    pub(crate) closed: Arc<AtomicBool>,
}

impl<T> Clone for Port<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Mem(topic) => Self::Mem(topic.clone()),
            Self::Remote(remote) => Self::Remote(remote.clone()),
        }
    }
}

impl<T: Send + Sync + 'static> Port<T> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Mem(topic) => topic.name(),
            Self::Remote(remote) => &remote.name,
        }
    }

    /// Its partition count.
    pub fn partitions(&self) -> u32 {
        match self {
            Self::Mem(topic) => topic.partitions(),
            Self::Remote(remote) => remote.partitions,
        }
    }
}
