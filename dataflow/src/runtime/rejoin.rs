//! Tasks that outlive backend outages.
//!
//! A bridge retries a lost connection for a while by itself (Redis: 30 s per operation, or
//! `retry_for_ms`; Kafka: 60 s). When the backend stays away longer, the task ends with a
//! transient error (`BackendError::Unreachable` or `Server`). Rather than leave its
//! partitions unread until someone restarts the process, the task joins its group again
//! once the backend answers and starts afresh: it reads from the last commit, so the records
//! of the batch in flight are processed again (at-least-once), and its keyed state starts
//! over, as when a partition moves to another process. Fatal errors (authentication, a
//! missing topic, a codec) still end the task, and so does any error once the pipeline is
//! stopping. Every task runs under this supervision; on the embedded broker no error is
//! transient in practice, so it never rejoins there.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::BackendError;
use crate::backend::log::From;
use crate::error::PipelineError;
use crate::runtime::port::Port;
use crate::runtime::task::{Mode, Task, TaskSetup};
use crate::stage::Exchange;

/// The first wait before joining again; it doubles up to [`REJOIN_CAP`] while the backend
/// stays away.
const REJOIN_FIRST: Duration = Duration::from_millis(100);
const REJOIN_CAP: Duration = Duration::from_secs(5);

/// What a task of a segment needs to be made again.
pub(crate) struct Rejoin<In> {
    input: Port<In>,
    group: String,
    setup: TaskSetup,
}

impl<In: Exchange> Rejoin<In> {
    pub(crate) fn new(input: Port<In>, group: String, setup: TaskSetup) -> Self {
        Self {
            input,
            group,
            setup,
        }
    }

    /// A task for a new member of the group (in a pipeline that takes checkpoints, a
    /// downstream task reads its partition of the internal topic directly).
    pub(crate) async fn task(&self) -> Result<Task<In>, BackendError> {
        let topic = self.input.topic().await?;
        let partition_reader = match &self.setup.checkpoint {
            Some(checkpoint) if !checkpoint.source => {
                topic.partition_reader(checkpoint.partition, From::End)
            }
            _ => None,
        };
        let reader = match partition_reader {
            Some(reader) => reader.await?,
            None => {
                topic
                    .join(&self.group, topic.partitions(), self.setup.start)
                    .await?
            }
        };
        Task::new(reader, topic.name(), self.setup.clone()).await
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
