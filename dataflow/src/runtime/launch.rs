//! Starting a pipeline: its topics resolved on the backend, one consumer group per segment,
//! one task per partition.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use broker::{Broker, Topic, TopicConfig};
use tokio::sync::watch;

use crate::backend::Connection;
use crate::backend::store::Backend;
use crate::dead_letter::{DeadLetter, StoredDeadLetter};
use crate::error::{PipelineError, StartError};
use crate::graph::Graph;
use crate::metrics::Registry;
use crate::options::{BackendChoice, PipelineOptions};
use crate::runtime::port::Port;
use crate::runtime::rejoin::Rejoin;
use crate::runtime::running::{Running, Segment};
use crate::runtime::task::{Mode, Task, TaskSetup};
use crate::spec::{Binding, TopicSpec};
use crate::stage::Exchange;

/// A task's future, made when its segment is declared and spawned when the pipeline starts.
type TaskFuture = Pin<Box<dyn Future<Output = Result<(), PipelineError>> + Send>>;

/// A segment declared, its tasks not spawned yet.
struct Declared {
    upstream: Vec<usize>,
    signal: watch::Sender<Mode>,
    tasks: Vec<TaskFuture>,
}

/// Builds a running pipeline; used by the code `#[pipeline]` generates.
pub struct Launch {
    name: &'static str,
    graph: Graph,
    options: PipelineOptions,
    connection: Connection,
    /// The embedded broker holding this process's dead letters: the backend's own, if it is
    /// an embedded broker, else a private one.
    broker: Broker,
    /// Whether the connection is the pipeline's own (not shared with other code), so that a
    /// failing run may close its internal topics.
    private: bool,
    runtime: tokio::runtime::Handle,
    dead_letters: Topic<DeadLetter>,
    /// The backend topic that keeps dead letters.
    stored_dead_letters: Port<StoredDeadLetter>,
    registry: Arc<Registry>,
    segments: Vec<Declared>,
    started: Instant,
    /// Closes the pipeline's internal topics: when a task fails, the tasks around it then
    /// fail too (their reads end, their sends are refused) instead of waiting forever on a
    /// topic nobody drains.
    fail_internal: Vec<Box<dyn Fn() + Send + Sync>>,
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
            Some(BackendChoice::Url(url)) => (Connection::open(url).await?, true),
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
        let prefix = options.group.clone().unwrap_or_else(|| name.to_owned());
        let spec =
            TopicSpec::dead_letters(format!("{prefix}.dead-letters"), StoredDeadLetter::codec());
        let stored_dead_letters = Port::open(connection.backend(), spec, options.codec).await?;
        Ok(Self {
            name,
            graph,
            options,
            connection,
            broker,
            private,
            runtime,
            dead_letters,
            stored_dead_letters,
            registry: Arc::default(),
            segments: Vec::new(),
            started: Instant::now(),
            fail_internal: Vec::new(),
        })
    }

    fn backend(&self) -> &Arc<dyn Backend> {
        self.connection.backend()
    }

    /// Resolves the binding of source or sink `param` on the backend.
    pub async fn bind<T: Send + Sync + 'static>(
        &mut self,
        param: &'static str,
        binding: Binding<T>,
    ) -> Result<Port<T>, StartError> {
        match binding {
            Binding::Topic(_) if self.backend().shared_between_processes() => {
                Err(StartError::EmbeddedTopic {
                    name: param,
                    backend: self.backend().scheme(),
                })
            }
            Binding::Topic(topic) => Ok(Port::embedded(self.backend(), topic, self.options.codec)),
            Binding::Named(spec) => {
                Ok(Port::probe(self.backend(), spec, self.options.codec).await?)
            }
        }
    }

    /// The internal topic that joins two segments at node `node`, with `partitions`
    /// partitions, bounded: producers into it wait while it holds
    /// [`internal_capacity`](PipelineOptions::internal_capacity) records per partition not yet
    /// processed (backpressure). It is named `{group prefix}.{node}.internal` (on the
    /// embedded broker, under the reserved prefix `__`).
    pub async fn internal_topic<T: Exchange>(
        &mut self,
        node: &str,
        partitions: u32,
    ) -> Result<Port<T>, StartError> {
        let spec = TopicSpec::internal(
            format!("{}.{node}.internal", self.group_prefix()),
            partitions,
            self.options.internal_capacity,
            self.private,
        );
        let port = Port::<T>::open(self.backend(), spec, self.options.codec).await?;
        let topic = Arc::clone(port.topic().await?);
        self.fail_internal.push(Box::new(move || topic.fail()));
        Ok(port)
    }

    fn group_prefix(&self) -> String {
        self.options
            .group
            .clone()
            .unwrap_or_else(|| self.name.to_owned())
    }

    /// Declares segment `index` (segments are declared in topological order): one task per
    /// partition of `input`, each made by `make_task`, all members of one consumer group so
    /// that a restart resumes from the committed offsets. A task that ends on a transient
    /// backend error is made again (see [`Rejoin`]). The tasks start in
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
        let group = format!("{}.segment-{index}", self.group_prefix());
        let (signal, receiver) = watch::channel(Mode::Run);
        let make_task = Arc::new(make_task);
        let stored_dead_letters = Arc::clone(self.stored_dead_letters.topic().await?);
        let partitions = input.partitions();
        let mut tasks: Vec<TaskFuture> = Vec::with_capacity(partitions as usize);
        // Every member joins before any task reads, so that on the embedded broker the
        // assignment is final (one partition each) before the first record is read.
        for _ in 0..partitions {
            let setup = TaskSetup {
                pipeline: self.name,
                graph: self.graph,
                signal: receiver.clone(),
                metrics: self.registry.task(self.graph.nodes.len()),
                batch: self.options.batch,
                sample_every: self.options.sample_every,
                latency: self.options.metrics,
                dead_letters: self.dead_letters.clone(),
                stored_dead_letters: Arc::clone(&stored_dead_letters),
                codec: self
                    .options
                    .codec
                    .unwrap_or_else(|| self.backend().default_codec()),
            };
            let rejoin = Rejoin::new(input.clone(), group.clone(), setup);
            let task = rejoin.task().await?;
            tasks.push(Box::pin(rejoin.supervise(task, Arc::clone(&make_task))));
        }
        self.segments.push(Declared {
            upstream: upstream.to_vec(),
            signal,
            tasks,
        });
        Ok(())
    }

    /// Starts every task. Only now: every segment's consumer group exists before the first
    /// record is read, so an internal topic never drops records for lack of a reader.
    pub fn finish(self) -> Running {
        let fail_internal = Arc::new(self.fail_internal);
        let segments = self
            .segments
            .into_iter()
            .map(|segment| Segment {
                upstream: segment.upstream,
                signal: segment.signal,
                tasks: segment
                    .tasks
                    .into_iter()
                    .map(|task| {
                        let fail_internal = Arc::clone(&fail_internal);
                        self.runtime.spawn(async move {
                            let result = task.await;
                            if result.is_err() {
                                fail_internal.iter().for_each(|fail| fail());
                            }
                            result
                        })
                    })
                    .collect(),
            })
            .collect();
        Running {
            graph: self.graph,
            dead_letter_topic: self.stored_dead_letters.name().to_owned(),
            connection: self.connection,
            broker: self.broker,
            dead_letters: self.dead_letters,
            registry: self.registry,
            segments,
            started: self.started,
        }
    }
}
