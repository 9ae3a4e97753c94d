//! Where topics live: a [`Backend`] makes a topic exist and hands it to an [`Open`] request.
//! A backend keeps its topics either typed in an embedded broker (`mem://`, `file://`) or as
//! bytes (everything else); the request (see `open.rs`) knows the value type, and so knows
//! how to wrap either.

use std::fmt;

use broker::Broker;
use broker::storage::Storage;

use super::bytes::ByteTopic;
use super::{BackendError, BoxFuture};
use crate::codec::Codec;
use crate::spec::TopicSpec;

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

    /// Where a pipeline in one process keeps its checkpoints by default, if the backend has a
    /// place on disk (`file://DIR`: `DIR/_checkpoints`).
    fn state_dir(&self) -> Option<std::path::PathBuf> {
        None
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
