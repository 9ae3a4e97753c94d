//! Starting a pipeline: internal topics, one consumer group per segment, one task per
//! partition; and the handle to the running pipeline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use broker::{Broker, Overflow, Topic, TopicConfig};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{BackendError, Connection, TopicReader};
use crate::dead_letter::{DeadLetter, StoredDeadLetter};
use crate::error::{PipelineError, StartError};
use crate::graph::Graph;
use crate::metrics::{Metrics, Registry};
use crate::options::{BackendChoice, PipelineOptions};
use crate::runtime::port::{Bound, Port, RemotePort};
use crate::runtime::rejoin::{Rejoin, stored_output};
use crate::runtime::task::{Membership, Mode, Task, TaskSetup};
use crate::spec::{Binding, TopicSpec};
use crate::stage::Exchange;

/// A task's future, made when its segment is declared and spawned when the pipeline starts.
type TaskFuture = Pin<Box<dyn Future<Output = Result<(), PipelineError>> + Send>>;

struct Segment {
    upstream: Vec<usize>,
    signal: watch::Sender<Mode>,
    /// Made by `segment`, spawned by `finish`.
    pending: Vec<TaskFuture>,
    tasks: Vec<JoinHandle<Result<(), PipelineError>>>,
}

/// Builds a running pipeline; used by the code `#[pipeline]` generates.
pub struct Launch {
    name: &'static str,
    graph: Graph,
    options: PipelineOptions,
    connection: Connection,
    /// The embedded broker: the backend's, or (on a remote backend) a private one for the
    /// dead letters.
    broker: Broker,
    /// Whether the internal topics are the pipeline's own (a private embedded broker).
    private: bool,
    runtime: tokio::runtime::Handle,
    dead_letters: Topic<DeadLetter>,
    /// The backend topic that keeps dead letters (remote backends only).
    stored_dead_letters: Option<RemotePort>,
    registry: Arc<Registry>,
    segments: Vec<Segment>,
    started: Instant,
    /// Closes the pipeline's private internal topics: when a task fails, the tasks around it
    /// then fail too (their reads end, their sends are refused) instead of waiting forever
    /// on a topic nobody drains.
    close_internal: Vec<Box<dyn Fn() + Send + Sync>>,
}

impl Launch {
    /// Prepares pipeline `name` with its compiled graph, connected to its backend.
    pub async fn new(
        name: &'static str,
        graph: Graph,
        options: PipelineOptions,
    ) -> Result<Self, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let (connection, private) = match &options.backend {
            None => (Connection::mem(&Broker::new()), true),
            Some(BackendChoice::Url(url)) => {
                let connection = Connection::open(url).await?;
                let private = connection.broker().is_some();
                (connection, private)
            }
            Some(BackendChoice::Connection(connection)) => (connection.clone(), false),
        };
        let broker = connection.broker().cloned().unwrap_or_default();
        let dead_letters = match &options.dead_letters {
            Some(topic) => topic.clone(),
            None => broker.internal_topic::<DeadLetter>(
                &format!("__{name}.dead-letters"),
                TopicConfig::new(),
            )?,
        };
        let mut launch = Self {
            name,
            graph,
            options,
            connection,
            broker,
            private,
            runtime,
            dead_letters,
            stored_dead_letters: None,
            registry: Arc::default(),
            segments: Vec::new(),
            started: Instant::now(),
            close_internal: Vec::new(),
        };
        if launch.connection.remote_backend().is_some() {
            let spec = TopicSpec::new(format!("{}.dead-letters", launch.group_prefix()))
                .codec(StoredDeadLetter::codec());
            launch.stored_dead_letters = Some(launch.remote_topic(spec).await?);
        }
        Ok(launch)
    }

    /// Resolves the binding of source or sink `param` on the backend.
    pub async fn bind<T: Send + Sync + 'static>(
        &mut self,
        param: &'static str,
        binding: Binding<T>,
    ) -> Result<Port<T>, StartError> {
        match (binding, self.connection.remote_backend()) {
            (Binding::Topic(topic), None) => Ok(Port::Mem(topic)),
            (Binding::Topic(_), Some(backend)) => Err(StartError::EmbeddedTopic {
                name: param,
                backend: backend.scheme(),
            }),
            (Binding::Named(spec), None) => Ok(Port::Mem(crate::backend::connection::mem_topic(
                &self.broker,
                &spec,
            )?)),
            (Binding::Named(spec), Some(_)) => self.remote_port(spec).await,
        }
    }

    /// The remote topic `spec`, created if it does not exist.
    fn remote_port<T>(
        &self,
        spec: TopicSpec,
    ) -> impl Future<Output = Result<Port<T>, StartError>> + Send + 'static {
        let remote = self.remote_topic(spec);
        async move { Ok(Port::Remote(remote.await?)) }
    }

    fn remote_topic(
        &self,
        spec: TopicSpec,
    ) -> impl Future<Output = Result<RemotePort, StartError>> + Send + 'static {
        let backend = self
            .connection
            .remote_backend()
            .expect("called on remote backends only")
            .clone();
        let codec = spec.codec.unwrap_or(self.options.codec);
        async move {
            let partitions = backend
                .ensure_topic(&spec.name, spec.partitions.unwrap_or(1))
                .await?;
            Ok(RemotePort {
                backend,
                name: spec.name,
                partitions,
                codec,
                bound: None,
            })
        }
    }

    /// The internal topic that joins two segments at node `node`, with `partitions`
    /// partitions, bounded: producers into it wait while it holds
    /// [`internal_capacity`](PipelineOptions::internal_capacity) records per partition not yet
    /// processed (backpressure). On a remote backend it is a topic named `{group
    /// prefix}.{node}.internal`, bounded where the backend can tell a backlog (Redis 7).
    pub async fn internal_topic<T: Exchange>(
        &mut self,
        node: &str,
        partitions: u32,
    ) -> Result<Port<T>, StartError> {
        if self.connection.remote_backend().is_some() {
            let name = format!("{}.{node}.internal", self.group_prefix());
            let mut remote = self
                .remote_topic(TopicSpec::new(name).partitions(partitions))
                .await?;
            let closed = Arc::new(AtomicBool::new(false));
            remote.bound = Some(Bound {
                capacity: self.options.internal_capacity,
                closed: Arc::clone(&closed),
            });
            // Release: a producer that sees the flag sees a failed pipeline.
            self.close_internal
                .push(Box::new(move || closed.store(true, Ordering::Release)));
            return Ok(Port::Remote(remote));
        }
        let config = TopicConfig::new()
            .partitions(partitions)
            .capacity(self.options.internal_capacity, Overflow::Block);
        let topic = self
            .broker
            .internal_topic::<T>(&format!("__{}.{node}", self.group_prefix()), config)?;
        if self.private {
            let closer = topic.clone();
            self.close_internal.push(Box::new(move || closer.close()));
        }
        Ok(Port::Mem(topic))
    }

    fn group_prefix(&self) -> String {
        self.options
            .group
            .clone()
            .unwrap_or_else(|| self.name.to_owned())
    }

    /// Declares segment `index` (segments are declared in topological order): one task per
    /// partition of `input`, each made by `make_task`, all members of one consumer group so
    /// that a restart resumes from the committed offsets. On a remote backend, a task that
    /// ends on a transient backend error is made again (see [`Rejoin`]). The tasks start in
    /// [`finish`](Self::finish).
    pub async fn segment<In, F, Fut>(
        &mut self,
        index: usize,
        input: &Port<In>,
        upstream: &[usize],
        make_task: F,
    ) -> Result<(), StartError>
    where
        In: Exchange,
        F: Fn(Task<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), PipelineError>> + Send + 'static,
    {
        debug_assert_eq!(index, self.segments.len(), "segments start in order");
        let group_name = format!("{}.segment-{index}", self.group_prefix());
        let members = members(input, &group_name).await?;
        let (signal, receiver) = watch::channel(Mode::Run);
        let make_task = Arc::new(make_task);
        let mut pending: Vec<TaskFuture> = Vec::with_capacity(members.len());
        for member in members {
            let setup = TaskSetup {
                pipeline: self.name,
                graph: self.graph,
                signal: receiver.clone(),
                metrics: self.registry.task(self.graph.nodes.len()),
                batch: self.options.batch,
                sample_every: self.options.sample_every,
                latency: self.options.metrics,
                dead_letters: self.dead_letters.clone(),
            };
            let stored = stored_output(self.stored_dead_letters.as_ref()).await?;
            let task = Task::new(member, input.name(), setup.clone(), stored);
            pending.push(match input {
                Port::Mem(_) => Box::pin(make_task(task)),
                Port::Remote(remote) => {
                    let rejoin = Rejoin::new(
                        remote.clone(),
                        group_name.clone(),
                        setup,
                        self.stored_dead_letters.clone(),
                    );
                    Box::pin(rejoin.supervise(task, Arc::clone(&make_task)))
                }
            });
        }
        self.segments.push(Segment {
            upstream: upstream.to_vec(),
            signal,
            pending,
            tasks: Vec::new(),
        });
        Ok(())
    }

    /// Starts every task. Only now: every segment's consumer group exists before the first
    /// record is read, so an internal topic never drops records for lack of a reader (a
    /// bounded topic with no group keeps only its newest records).
    pub fn finish(mut self) -> Running {
        let close_internal: Arc<Vec<Box<dyn Fn() + Send + Sync>>> =
            Arc::new(std::mem::take(&mut self.close_internal));
        for segment in &mut self.segments {
            segment.tasks = segment
                .pending
                .drain(..)
                .map(|task| {
                    let close_internal = Arc::clone(&close_internal);
                    self.runtime.spawn(async move {
                        let result = task.await;
                        if result.is_err() {
                            close_internal.iter().for_each(|close| close());
                        }
                        result
                    })
                })
                .collect();
        }
        Running {
            graph: self.graph,
            connection: self.connection,
            broker: self.broker,
            dead_letters: self.dead_letters,
            dead_letter_topic: self
                .stored_dead_letters
                .as_ref()
                .map(|port| port.name.clone()),
            registry: self.registry,
            segments: self.segments,
            started: self.started,
        }
    }
}

/// A running pipeline.
///
/// [`shutdown`](Self::shutdown) stops it cleanly: intake stops, in-flight records drain
/// through every segment, inputs are committed, and the final metrics are returned, so that a
/// restart with the same group prefix neither loses nor repeats a record. Dropping it without
/// a shutdown asks its tasks to stop after their current batch.
pub struct Running {
    graph: Graph,
    connection: Connection,
    broker: Broker,
    dead_letters: Topic<DeadLetter>,
    dead_letter_topic: Option<String>,
    registry: Arc<Registry>,
    segments: Vec<Segment>,
    started: Instant,
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

    /// On a remote backend, the backend topic that keeps the dead letters of every process
    /// of the pipeline, as [`StoredDeadLetter`]s (JSON, one partition): `{group
    /// prefix}.dead-letters`. Each is written there before its record's input is committed,
    /// so none is lost when a process dies. `None` on the embedded broker.
    pub fn dead_letter_topic(&self) -> Option<&str> {
        self.dead_letter_topic.as_deref()
    }

    /// The embedded broker: the one holding the internal topics, or on a remote backend the
    /// private one holding the dead letters.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The backend the pipeline runs on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Stops intake, drains every segment, commits, and returns the final metrics.
    pub async fn shutdown(mut self) -> Result<Metrics, PipelineError> {
        let segments = std::mem::take(&mut self.segments);
        for segment in segments.iter().filter(|s| s.upstream.is_empty()) {
            segment.signal.send_replace(Mode::Stop);
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
        match first_error {
            Some(err) => Err(err),
            None => Ok(self.metrics()),
        }
    }
}

/// A new member of group `group` of the remote topic `remote`, one of the `partitions` that
/// this process joins (one per partition).
pub(crate) async fn remote_member<In>(
    remote: &RemotePort,
    group: &str,
) -> Result<Membership<In>, BackendError>
where
    In: DeserializeOwned + Clone + Send + Sync + 'static,
{
    let member = remote
        .backend
        .join(&remote.name, group, remote.partitions, remote.partitions)
        .await?;
    Ok(Membership::Remote(TopicReader::remote(
        &remote.name,
        member,
        remote.codec,
    )))
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

/// One member of group `group` of `input` per partition, all joined before any reads, so that
/// on the embedded broker the assignment is final (one partition each) before the first
/// record is read.
async fn members<In>(input: &Port<In>, group: &str) -> Result<Vec<Membership<In>>, StartError>
where
    In: DeserializeOwned + Clone + Send + Sync + 'static,
{
    match input {
        Port::Mem(topic) => {
            let group = topic.group(group)?;
            let mut members: Vec<_> = (0..topic.partitions()).map(|_| group.join()).collect();
            members.iter_mut().for_each(|m| m.refresh());
            Ok(members.into_iter().map(Membership::Mem).collect())
        }
        Port::Remote(remote) => {
            let mut members = Vec::new();
            for _ in 0..remote.partitions {
                members.push(remote_member(remote, group).await?);
            }
            Ok(members)
        }
    }
}
