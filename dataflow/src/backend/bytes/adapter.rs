//! A byte-level backend as the runtime sees every backend: its topics are made to exist with
//! their partitions, and handed over as bytes (the codec adapter wraps them).

use std::sync::Arc;

use super::{ByteTopic, RemoteBackend};
use crate::backend::store::{Backend, Open};
use crate::backend::{BackendError, BoxFuture};
use crate::spec::TopicSpec;

/// A [`RemoteBackend`] as the runtime sees every backend.
#[derive(Debug)]
pub(crate) struct Bytes(pub(crate) Arc<dyn RemoteBackend>);

impl Backend for Bytes {
    fn scheme(&self) -> &'static str {
        self.0.scheme()
    }

    fn shared_between_processes(&self) -> bool {
        self.0.shared_between_processes()
    }

    fn open<'a>(
        &'a self,
        spec: &'a TopicSpec,
        open: &'a mut dyn Open,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let partitions = self
                .0
                .ensure_topic(&spec.name, spec.partitions.unwrap_or(1))
                .await?;
            open.bytes(ByteTopic {
                backend: Arc::clone(&self.0),
                name: spec.name.clone(),
                partitions,
            })
        })
    }
}
