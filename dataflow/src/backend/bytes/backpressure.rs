//! Backpressure on an internal topic of a byte-level backend: the embedded broker bounds an
//! internal topic itself (a producer into a full one waits); on a remote backend the producer
//! asks the backend how far behind the downstream group is, and waits while that is over the
//! bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::RemoteProducer;
use crate::backend::BackendError;

/// The first wait while a partition is over its bound; it doubles up to [`WAIT_CAP`].
const WAIT_FIRST: Duration = Duration::from_millis(1);
const WAIT_CAP: Duration = Duration::from_millis(50);

/// The bound of one internal topic, shared by its writers.
#[derive(Clone, Debug)]
pub(crate) struct Bound {
    /// Records per partition not yet processed by the downstream group.
    pub(crate) capacity: u64,
    /// Set when a task of the pipeline failed: a producer waiting for the downstream group
    /// then fails too, instead of waiting forever for a reader that is gone.
    pub(crate) closed: Arc<AtomicBool>,
}

impl Bound {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            capacity,
            closed: Arc::default(),
        }
    }

    /// Makes the writers waiting on this bound give up.
    pub(crate) fn close(&self) {
        // Release: pairs with the Acquire in `after_send`; a writer that sees the flag sees a
        // failed pipeline.
        self.closed.store(true, Ordering::Release);
    }
}

/// A bound on the backlog of each partition of one remote topic, for one writer.
pub(crate) struct Backpressure {
    topic: String,
    bound: Bound,
    /// Records sent to a partition between two backlog checks (an eighth of the capacity):
    /// one check costs a round trip, so not every batch pays it.
    check_every: u64,
    /// Records sent to each partition since its last check.
    since_check: Vec<u64>,
}

impl Backpressure {
    pub(crate) fn new(topic: &str, bound: Bound) -> Self {
        Self {
            topic: topic.to_owned(),
            check_every: (bound.capacity / 8).max(1),
            bound,
            since_check: Vec::new(),
        }
    }

    /// After `sent` records went to `partition`: waits, when a check is due, until the
    /// slowest group's backlog there is back under the bound. A backlog may thus exceed the
    /// bound by what is sent between two checks plus one batch. Fails with
    /// [`BackendError::Closed`] if a task of the pipeline fails meanwhile (the reader may be
    /// gone).
    pub(crate) async fn after_send(
        &mut self,
        producer: &mut dyn RemoteProducer,
        partition: u32,
        sent: usize,
    ) -> Result<(), BackendError> {
        let index = partition as usize;
        if self.since_check.len() <= index {
            self.since_check.resize(index + 1, 0);
        }
        self.since_check[index] += sent as u64;
        if self.since_check[index] < self.check_every {
            return Ok(());
        }
        self.since_check[index] = 0;
        let mut wait = WAIT_FIRST;
        while producer
            .backlog(partition)
            .await?
            .is_some_and(|backlog| backlog > self.bound.capacity)
        {
            // Acquire: pairs with the Release in `Bound::close`.
            if self.bound.closed.load(Ordering::Acquire) {
                return Err(BackendError::Closed {
                    topic: self.topic.clone(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(WAIT_CAP);
        }
        Ok(())
    }
}
