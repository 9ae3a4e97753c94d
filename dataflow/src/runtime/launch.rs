//! Starting a pipeline: its topics resolved on the backend, one consumer group per segment,
//! one task per partition.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use broker::{Broker, Topic, TopicConfig};
use tokio::sync::watch;

use crate::backend::store::Backend;
use crate::backend::{Connection, StartAt};
use crate::dead_letter::{DeadLetter, StoredDeadLetter};
use crate::error::{PipelineError, StartError};
use crate::graph::{Graph, NodeKind};
use crate::metrics::Registry;
use crate::options::{BackendChoice, Guarantee, PipelineOptions};
use crate::runtime::checkpoint::coordinator::Coordinator;
use crate::runtime::checkpoint::snapshot::Checkpoint;
use crate::runtime::checkpoint::store::{CheckpointStore, Files, InBroker};
use crate::runtime::checkpoint::transaction::Sinks;
use crate::runtime::checkpoint::{self, error::StateError};
use crate::runtime::frame::{Frame, FramedTopic};
use crate::runtime::port::{Port, Transaction};
use crate::runtime::rejoin::Rejoin;
use crate::runtime::running::{Running, Segment};
use crate::runtime::task::{
    ChangelogRecord, ChangelogSetup, CheckpointSetup, Mode, Task, TaskSetup,
};
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
    /// Checkpoints, in a pipeline that runs in one process.
    checkpoints: Option<Checkpoints>,
}

/// A pipeline's checkpoints while it starts.
struct Checkpoints {
    coordinator: Coordinator,
    /// In an exactly-once pipeline, what its sinks need.
    transaction: Option<Transaction>,
    restored: Arc<Option<Checkpoint>>,
    /// Tasks declared so far.
    tasks: usize,
    /// Tasks per segment.
    segment_tasks: Vec<usize>,
    /// For each internal topic (by node name), where its writer count goes.
    writers: Vec<(String, Arc<AtomicU32>)>,
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
        let exactly_once = options.guarantee == Guarantee::ExactlyOnce;
        if exactly_once && connection.broker().is_none() {
            return Err(StateError::ExactlyOnce(format!(
                "pipelines on {}:// are at-least-once: exactly-once needs sinks on the embedded broker (mem://, file://)",
                connection.scheme()
            ))
            .into());
        }
        let checkpoints = if connection.backend().shared_between_processes() {
            None
        } else {
            let store = checkpoint_store(&options, &connection, &broker, &prefix)?;
            let restored = store.load()?;
            let fingerprint = checkpoint::fingerprint(&graph);
            if let Some(checkpoint) = &restored {
                checkpoint.check(&prefix, fingerprint, "the latest checkpoint")?;
            }
            let sinks = Sinks::default();
            let coordinator = Coordinator::new(
                prefix.clone(),
                fingerprint,
                options.checkpoint_every,
                store,
                sinks.clone(),
                restored.as_ref(),
            );
            let restored = Arc::new(restored);
            Some(Checkpoints {
                coordinator,
                transaction: exactly_once.then(|| Transaction {
                    sinks,
                    restored: Arc::clone(&restored),
                }),
                restored,
                tasks: 0,
                segment_tasks: Vec::new(),
                writers: Vec::new(),
            })
        };
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
            checkpoints,
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
        .map(|port| {
            // Sources take no part in it: only the outputs of a port are held back.
            match self
                .checkpoints
                .as_ref()
                .and_then(|c| c.transaction.clone())
            {
                Some(transaction) => port.transactional(transaction),
                None => port,
            }
        })
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
        // Frames carry each record's origin on (and, with checkpoints, the barriers).
        let frames =
            Port::<Frame<T>>::open(self.backend(), spec.clone(), self.options.codec).await?;
        let framed = FramedTopic::new(Arc::clone(frames.topic().await?));
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints
                .writers
                .push((node.to_owned(), framed.writers()));
        }
        let port = Port::from_topic(self.backend(), spec, Arc::new(framed), self.options.codec);
        let topic = Arc::clone(port.topic().await?);
        self.fail_internal.push(Box::new(move || topic.fail()));
        Ok(port)
    }

    /// The changelog of segment `index`'s keyed state (`{group prefix}.segment-N.changelog`,
    /// `partitions` partitions), if the segment has any.
    async fn changelogs(
        &mut self,
        index: usize,
        partitions: u32,
    ) -> Result<Option<ChangelogSetup>, StartError> {
        let stateful = self.graph.nodes.iter().any(|n| {
            n.segment == index
                && matches!(n.kind, NodeKind::Count | NodeKind::Fold | NodeKind::Reduce)
        });
        if !stateful {
            return Ok(None);
        }
        let spec = TopicSpec::new(format!("{}.segment-{index}.changelog", self.group_prefix()))
            .partitions(partitions);
        let port = Port::<ChangelogRecord>::open(self.backend(), spec, self.options.codec).await?;
        Ok(Some(ChangelogSetup {
            topic: Arc::clone(port.topic().await?),
            partitions,
        }))
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
        // Keyed state on a backend shared between processes follows changelogs there.
        let changelogs = match self.checkpoints {
            Some(_) => None,
            None => self.changelogs(index, partitions).await?,
        };
        let mut declared = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            let checkpoint = self.checkpoints.as_mut().map(|checkpoints| {
                checkpoints.tasks += 1;
                CheckpointSetup {
                    link: checkpoints.coordinator.link(),
                    task: checkpoints.tasks - 1,
                    source: upstream.is_empty(),
                    partition,
                    restored: Arc::clone(&checkpoints.restored),
                }
            });
            let setup = TaskSetup {
                pipeline: self.name,
                graph: self.graph,
                signal: receiver.clone(),
                metrics: self.registry.task(self.graph.nodes.len()),
                batch: self.options.batch,
                linger: self.options.linger,
                sample_every: self.options.sample_every,
                latency: self.options.metrics,
                dead_letters: self.dead_letters.clone(),
                stored_dead_letters: Arc::clone(&stored_dead_letters),
                codec: self
                    .options
                    .codec
                    .unwrap_or_else(|| self.backend().default_codec()),
                checkpoint,
                input_node: input_node(&self.graph, index),
                // Only sources start where the options say: internal topics hold nothing
                // older than the run's groups.
                start: if upstream.is_empty() {
                    self.options.start_at
                } else {
                    StartAt::Earliest
                },
                changelogs: changelogs.clone(),
            };
            let rejoin = Rejoin::new(input.clone(), group.clone(), setup);
            let task = rejoin.task().await?;
            declared.push((rejoin, task));
        }
        // Every member has joined: the assignment is final, and a restart from a checkpoint
        // moves each source partition to where the checkpoint left it.
        for (rejoin, mut task) in declared {
            task.restore_positions().await?;
            tasks.push(Box::pin(rejoin.supervise(task, Arc::clone(&make_task))));
        }
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.segment_tasks.push(partitions as usize);
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
        let coordinator = self.checkpoints.map(|checkpoints| {
            count_writers(&self.graph, &checkpoints);
            let tasks = checkpoints.tasks;
            self.runtime.spawn(checkpoints.coordinator.run(tasks))
        });
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
            coordinator,
        }
    }
}

/// Where a pipeline's checkpoints are kept: the state directory of its options, else the
/// backend's place on disk, else its embedded broker (or the pipeline's own).
fn checkpoint_store(
    options: &PipelineOptions,
    connection: &Connection,
    broker: &Broker,
    prefix: &str,
) -> Result<Arc<dyn CheckpointStore>, StateError> {
    if let Some(dir) = &options.state_dir {
        return Ok(Arc::new(Files::new(dir.clone())?));
    }
    if let Some(dir) = connection.backend().state_dir() {
        broker::validate_name(prefix).map_err(|e| StateError::Io {
            path: dir.join(prefix).display().to_string(),
            message: format!("the group prefix cannot name a directory: {e}"),
        })?;
        return Ok(Arc::new(Files::new(dir.join(prefix))?));
    }
    Ok(Arc::new(InBroker::new(broker, prefix)?))
}

/// Tells each internal topic how many tasks write to each of its partitions: every task of
/// every segment with a node that feeds it.
fn count_writers(graph: &Graph, checkpoints: &Checkpoints) {
    for (name, writers) in &checkpoints.writers {
        let Some(node) = graph.nodes.iter().position(|n| n.name == name) else {
            continue;
        };
        let mut segments: Vec<usize> = graph
            .edges
            .iter()
            .filter(|(_, to)| *to == node)
            .map(|(from, _)| graph.nodes[*from].segment)
            .collect();
        segments.sort_unstable();
        segments.dedup();
        let count: usize = segments
            .iter()
            .map(|&s| checkpoints.segment_tasks.get(s).copied().unwrap_or(0))
            .sum();
        // Release: pairs with the Acquire of the readers, which start after this.
        writers.store(count as u32, Ordering::Release);
    }
}

/// The node that reads segment `segment`'s input: its source, or the repartition, merge or
/// async stage in front of it.
fn input_node(graph: &Graph, segment: usize) -> Option<usize> {
    let in_segment = |n: usize| graph.nodes[n].segment == segment;
    graph
        .edges
        .iter()
        .find(|&&(from, to)| in_segment(to) && !in_segment(from))
        .map(|&(from, to)| match graph.nodes[to].kind {
            NodeKind::Merge | NodeKind::MapAsync | NodeKind::MapAsyncUnordered => to,
            _ => from,
        })
        .or_else(|| {
            (0..graph.nodes.len())
                .find(|&n| in_segment(n) && graph.nodes[n].kind == NodeKind::Source)
        })
}
