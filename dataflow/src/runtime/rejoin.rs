//! Remote tasks that outlive backend outages.
//!
//! A bridge retries a lost connection for a while by itself (Redis: 30 s per operation, or
//! `retry_for_ms`; Kafka: 60 s). When the backend stays away longer, the task ends with a
//! transient error (`BackendError::Unreachable` or `Server`). Rather than leave its
//! partitions unread until someone restarts the process, the task joins its group again
//! once the backend answers and starts afresh: it reads from the last commit, so the records
//! of the batch in flight are processed again (at-least-once), and its keyed state starts
//! over, as when a partition moves to another process. Fatal errors (authentication, a
//! missing topic, a codec) still end the task, and so does any error once the pipeline is
//! stopping.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::BackendError;
use crate::dead_letter::StoredDeadLetter;
use crate::error::PipelineError;
use crate::runtime::launch::remote_member;
use crate::runtime::output::Output;
use crate::runtime::port::RemotePort;
use crate::runtime::task::{Mode, Task, TaskSetup};
use crate::stage::Exchange;

/// The first wait before joining again; it doubles up to [`REJOIN_CAP`] while the backend
/// stays away.
const REJOIN_FIRST: Duration = Duration::from_millis(100);
const REJOIN_CAP: Duration = Duration::from_secs(5);

/// What a task of a segment on a remote backend needs to be made again.
pub(crate) struct Rejoin<In> {
    input: RemotePort,
    group: String,
    setup: TaskSetup,
    stored_dead_letters: Option<RemotePort>,
    _input: PhantomData<fn() -> In>,
}

/// An output to the backend topic that keeps dead letters, if there is one.
pub(crate) async fn stored_output(
    topic: Option<&RemotePort>,
) -> Result<Option<Output<StoredDeadLetter>>, BackendError> {
    match topic {
        Some(topic) => Ok(Some(Output::remote(topic).await?)),
        None => Ok(None),
    }
}

impl<In: Exchange> Rejoin<In> {
    pub(crate) fn new(
        input: RemotePort,
        group: String,
        setup: TaskSetup,
        stored_dead_letters: Option<RemotePort>,
    ) -> Self {
        Self {
            input,
            group,
            setup,
            stored_dead_letters,
            _input: PhantomData,
        }
    }

    /// Runs `first`, then, each time a task ends on a transient backend error while the
    /// pipeline runs, a new one made by `make_task` for a new member of the group.
    pub(crate) async fn supervise<F, Fut>(
        self,
        first: Task<In>,
        make_task: Arc<F>,
    ) -> Result<(), PipelineError>
    where
        F: Fn(Task<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), PipelineError>> + Send + 'static,
    {
        let mut task = first;
        loop {
            let error = match make_task(task).await {
                Err(PipelineError::Backend(error)) if !error.is_fatal() => error,
                done => return done,
            };
            task = self.next_task(error).await?;
        }
    }

    /// A new task once the backend answers again, or `error` if the pipeline stops first.
    async fn next_task(&self, mut error: BackendError) -> Result<Task<In>, PipelineError> {
        self.note(&error);
        let mut signal = self.setup.signal.clone();
        let mut wait = REJOIN_FIRST;
        loop {
            if *signal.borrow_and_update() != Mode::Run {
                return Err(error.into());
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // A stop (or a drain) is seen at the top of the loop.
                _ = signal.changed() => continue,
            }
            wait = (wait * 2).min(REJOIN_CAP);
            match self.task().await {
                Ok(task) => return Ok(task),
                Err(next) if !next.is_fatal() => error = next,
                Err(fatal) => return Err(fatal.into()),
            }
        }
    }

    /// A task for a new member of the group.
    async fn task(&self) -> Result<Task<In>, BackendError> {
        let member = remote_member(&self.input, &self.group).await?;
        let stored = stored_output(self.stored_dead_letters.as_ref()).await?;
        let setup = self.setup.clone();
        Ok(Task::new(member, &self.input.name, setup, stored))
    }

    /// Counts the task's end in its metrics.
    fn note(&self, error: &BackendError) {
        let mut metrics = self
            .setup
            .metrics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics.outages += 1;
        metrics.last_outage = Some(error.to_string());
    }
}
