//! Where a pipeline's topics live, chosen at run time by URL with no change to pipeline
//! code: the embedded broker (`mem://`, the default), the embedded broker with file-backed
//! topics (`file://DIR`), standard input and output (`stdio://`), Redis Streams (`redis://`,
//! `rediss://`, cargo feature `redis`) or Kafka (`kafka://`, cargo feature `kafka`).
//!
//! # One log interface
//!
//! The runtime reads and writes every topic (sources, sinks, internal topics, dead letters)
//! and every [`Connection`] producer and reader through one typed interface (`log.rs`: a
//! topic, a writer, a group member). The embedded broker implements it directly (`mem/`):
//! values are never encoded, and the only dynamic dispatch is one call per batch. Every other
//! backend moves bytes: it implements the byte-level traits [`RemoteBackend`],
//! [`RemoteProducer`] and [`RemoteMember`] once (`bytes/`), and one codec adapter turns them
//! into the typed interface; values cross the process edge through a
//! [`Codec`](crate::codec::Codec) (bincode by default, JSON for other tools).
//!
//! Every backend has the same commit model: a consumer group whose members commit the last
//! record they processed in each partition, after the outputs it produced were written
//! (Kafka: an offset commit; Redis: an `XACK` of every entry up to it).
//!
//! # Adding a backend
//!
//! A backend is one folder under `backend/` with a `connect(url)` function, and one line in
//! `connect` in `backend/mod.rs`. A backend of your own outside this crate implements the byte-level
//! traits and is used through [`Connection::remote`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) mod bytes;
pub(crate) mod connection;
mod error;
pub(crate) mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub(crate) mod log;
pub(crate) mod mem;
pub(crate) mod open;
#[cfg(feature = "redis")]
pub mod redis;
mod secret;
pub(crate) mod stdio;
pub(crate) mod store;
mod typed;
mod url;

#[cfg(feature = "redis")]
pub(crate) use bytes::POLL_WAIT;
pub use bytes::{Delivery, RemoteBackend, RemoteMember, RemoteProducer};
pub use connection::Connection;
pub use error::BackendError;
pub use log::Undecodable;
pub use secret::Secret;
pub use typed::{Received, TopicProducer, TopicReader};
pub use url::BackendUrl;

/// Where a consumer group that does not exist yet starts reading (a group that exists goes
/// on from its committed offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartAt {
    /// The oldest record kept (the default).
    #[default]
    Earliest,
    /// The records appended from now on.
    Latest,
    /// The first record appended at or after this time (not on Kafka).
    Timestamp(std::time::SystemTime),
}

/// A boxed future, as the backend traits return (they are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What connecting to a backend gives.
type Connecting = BoxFuture<'static, Result<Arc<dyn store::Backend>, BackendError>>;

/// Connects to the backend `url` names: the one place where URLs are dispatched.
pub(crate) fn connect(url: BackendUrl) -> Connecting {
    match url.scheme.as_str() {
        "mem" => mem::connect(url),
        "file" => file::connect(url),
        "stdio" => stdio::connect(url),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => remote(url, redis::RedisBackend::connect),
        #[cfg(feature = "kafka")]
        "kafka" => remote(url, kafka::KafkaBackend::connect),
        scheme => {
            let error = match disabled(scheme) {
                Some(feature) => BackendError::FeatureDisabled {
                    scheme: scheme.to_owned(),
                    feature,
                },
                None => BackendError::UnknownScheme {
                    scheme: scheme.to_owned(),
                },
            };
            Box::pin(async move { Err(error) })
        }
    }
}

/// The cargo feature a scheme of this crate needs, when this build lacks it.
fn disabled(scheme: &str) -> Option<&'static str> {
    match scheme {
        "redis" | "rediss" if cfg!(not(feature = "redis")) => Some("redis"),
        "kafka" if cfg!(not(feature = "kafka")) => Some("kafka"),
        _ => None,
    }
}

/// A network backend that moves bytes, connected by `connect` once its URL names servers.
#[cfg(any(feature = "redis", feature = "kafka"))]
fn remote<B, F>(url: BackendUrl, connect: fn(BackendUrl) -> F) -> Connecting
where
    B: RemoteBackend + 'static,
    F: Future<Output = Result<B, BackendError>> + Send + 'static,
{
    Box::pin(async move {
        url.require_hosts()?;
        let backend: Arc<dyn RemoteBackend> = Arc::new(connect(url).await?);
        Ok(Arc::new(bytes::Bytes(backend)) as Arc<dyn store::Backend>)
    })
}
