//! The handle to a running pipeline: metrics, pictures, dead letters, and a clean stop.

use std::sync::Arc;
use std::time::Instant;

use broker::{Broker, Topic};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{BackendError, Connection};
use crate::dead_letter::DeadLetter;
use crate::error::PipelineError;
use crate::graph::Graph;
use crate::metrics::{Metrics, Registry};
use crate::runtime::task::Mode;

/// A segment's tasks, running.
pub(crate) struct Segment {
    pub(crate) upstream: Vec<usize>,
    pub(crate) signal: watch::Sender<Mode>,
    pub(crate) tasks: Vec<JoinHandle<Result<(), PipelineError>>>,
}

/// A running pipeline.
///
/// [`shutdown`](Self::shutdown) stops it cleanly: intake stops, in-flight records drain
/// through every segment, inputs are committed, and the final metrics are returned, so that a
/// restart with the same group prefix neither loses nor repeats a record. Dropping it without
/// a shutdown asks its tasks to stop after their current batch.
pub struct Running {
    pub(crate) graph: Graph,
    pub(crate) connection: Connection,
    pub(crate) broker: Broker,
    pub(crate) dead_letters: Topic<DeadLetter>,
    pub(crate) dead_letter_topic: String,
    pub(crate) registry: Arc<Registry>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) started: Instant,
    /// Takes the checkpoints, in a pipeline that runs in one process.
    pub(crate) coordinator: Option<JoinHandle<Result<(), PipelineError>>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("pipeline", &self.graph.name)
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The metrics so far.
    pub fn metrics(&self) -> Metrics {
        self.registry.snapshot(&self.graph, self.started.elapsed())
    }

    /// The compiled graph.
    pub fn graph(&self) -> Graph {
        self.graph
    }

    /// The graph as Mermaid, with each node's count and p99 so far.
    pub fn to_mermaid(&self) -> String {
        self.graph.mermaid_with(Some(&self.metrics()))
    }

    /// The graph as Graphviz DOT, with each node's count and p99 so far.
    pub fn to_dot(&self) -> String {
        self.graph.dot_with(Some(&self.metrics()))
    }

    /// The dead-letter output: this process's dead letters, values included.
    pub fn dead_letters(&self) -> Topic<DeadLetter> {
        self.dead_letters.clone()
    }

    /// The backend topic that keeps the dead letters of every process of the pipeline, as
    /// [`StoredDeadLetter`](crate::StoredDeadLetter)s (JSON, one partition): `{group
    /// prefix}.dead-letters`. Each is written there before its record's input is committed,
    /// so none is lost when a process dies (on `mem://`, none is lost while the broker lives;
    /// on `stdio://` they are written to standard error).
    pub fn dead_letter_topic(&self) -> Option<&str> {
        Some(&self.dead_letter_topic)
    }

    /// The embedded broker: the backend's (`mem://`, `file://`), or on another backend a
    /// private one holding this process's dead letters.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The backend the pipeline runs on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Stops intake, drains every segment, commits, and returns the final metrics.
    pub async fn shutdown(self) -> Result<Metrics, PipelineError> {
        self.wind_down(true).await
    }

    /// Waits until every source has ended (the end of standard input on `stdio://`, an
    /// embedded topic closed and read to its end), drains every segment, commits, and returns
    /// the final metrics. On sources that never end (a remote topic) it waits until a task
    /// fails: stop those with [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # use dataflow::{pipeline, Sink, Source};
    /// # use dataflow::broker::{Broker, TopicConfig};
    /// #[pipeline]
    /// fn copy(input: Source<u64>, output: Sink<u64>) {
    ///     input.map(|x: u64| x + 1).to(output);
    /// }
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = Broker::new();
    /// let input = broker.topic::<u64>("in", TopicConfig::new())?;
    /// let output = broker.topic::<u64>("out", TopicConfig::new())?;
    /// input.producer().send_batch(0, [1, 2, 3]).await?;
    /// input.close(); // the end of the stream
    ///
    /// let running = Copy::builder().input(input).output(output.clone()).start().await?;
    /// let metrics = running.until_end().await?;
    /// assert_eq!(output.end_offsets(), [3]);
    /// # let _ = metrics;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn until_end(self) -> Result<Metrics, PipelineError> {
        self.wind_down(false).await
    }

    /// Ends the pipeline segment by segment: the sources stop now (`stop_sources`) or at the
    /// end of their input; every later segment drains what its upstream left.
    async fn wind_down(mut self, stop_sources: bool) -> Result<Metrics, PipelineError> {
        let segments = std::mem::take(&mut self.segments);
        if stop_sources {
            for segment in segments.iter().filter(|s| s.upstream.is_empty()) {
                segment.signal.send_replace(Mode::Stop);
            }
        }
        let mut first_error = None;
        for (index, segment) in segments.into_iter().enumerate() {
            // Upstream segments come first and have ended: drain what they left.
            if !segment.upstream.is_empty() {
                segment.signal.send_replace(Mode::Drain);
            }
            for task in segment.tasks {
                let result = match task.await {
                    Ok(result) => result,
                    Err(join) => Err(PipelineError::Task {
                        segment: index,
                        message: join.to_string(),
                    }),
                };
                if let Err(err) = result {
                    // A task that failed because another one did (its topic closed under
                    // it) does not hide the cause.
                    if first_error.as_ref().is_none_or(is_consequence) {
                        first_error = Some(err);
                    }
                }
            }
        }
        // Every task has ended: the last checkpoint is taken, and the sources committed there.
        if let Some(coordinator) = self.coordinator.take() {
            let last = match coordinator.await {
                Ok(result) => result,
                Err(join) => Err(PipelineError::Task {
                    segment: 0,
                    message: format!("the checkpoint coordinator failed: {join}"),
                }),
            };
            if let (Err(err), None) = (last, &first_error) {
                first_error = Some(err);
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(self.metrics()),
        }
    }
}

/// Whether `error` is what a task meets when another task failed first: the pipeline closes
/// its internal topics then, so that no task waits forever.
fn is_consequence(error: &PipelineError) -> bool {
    matches!(
        error,
        PipelineError::OutputClosed { .. } | PipelineError::Backend(BackendError::Closed { .. })
    )
}

impl Drop for Running {
    fn drop(&mut self) {
        for segment in &self.segments {
            segment.signal.send_replace(Mode::Stop);
        }
    }
}
