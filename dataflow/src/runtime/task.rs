//! One task: reads one partition of a segment's input, runs the fused stages on each record,
//! flushes outputs, commits.

use std::any::Any;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use broker::{GroupMember, Position, Record, RecvError, Topic, TryRecvError};
use tokio::sync::watch;

use crate::dead_letter::DeadLetter;
use crate::error::PipelineError;
use crate::graph::Graph;
use crate::metrics::TaskMetrics;
use crate::runtime::output::Output;
use crate::stage::Exchange;

mod async_stage;

/// What a segment's tasks are asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Run,
    /// Stop reading: finish the batch in hand, flush, commit, end (source segments).
    Stop,
    /// Read until the input is empty (upstream has ended), flush, commit, end.
    Drain,
}

/// A stage failure recorded during a record's processing.
struct Failure {
    node: usize,
    error: String,
    panicked: bool,
}

/// The per-record context handed to the fused stages.
pub struct Cx<'a> {
    metrics: &'a mut TaskMetrics,
    failures: &'a mut Vec<Failure>,
    clock: &'a quanta::Clock,
    sampled: bool,
    node: usize,
    partition: u32,
    source_timestamp: u64,
}

impl Cx<'_> {
    /// Runs stage `node`, timing it when this record is sampled.
    #[inline(always)]
    pub fn time<R>(&mut self, node: usize, stage: impl FnOnce() -> R) -> R {
        self.node = node;
        if self.sampled {
            let start = self.clock.raw();
            let out = stage();
            let nanos = self.clock.delta_as_nanos(start, self.clock.raw());
            self.metrics.latency[node].saturating_record(nanos.max(1));
            out
        } else {
            stage()
        }
    }

    /// Counts a record entering node `node`.
    #[inline(always)]
    pub fn count(&mut self, node: usize) {
        self.metrics.counts[node] += 1;
    }

    /// Counts a record written by sink `node`, and its end-to-end latency when sampled.
    #[inline(always)]
    pub fn sink(&mut self, node: usize) {
        self.metrics.counts[node] += 1;
        if self.sampled {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let nanos = now.saturating_sub(self.source_timestamp).max(1);
            self.metrics.end_to_end[node].saturating_record(nanos);
        }
    }

    /// Sends the record to the dead-letter output: stage `node` rejected it.
    #[cold]
    pub fn fail(&mut self, node: usize, error: impl Display) {
        self.metrics.failures[node] += 1;
        self.failures.push(Failure {
            node,
            error: error.to_string(),
            panicked: false,
        });
    }

    /// The partition this task reads.
    #[inline(always)]
    pub fn partition(&self) -> u32 {
        self.partition
    }
}

/// One task of a segment: owns one partition of the segment's input topic.
pub struct Task<In> {
    member: GroupMember<In>,
    state: TaskState,
    /// Boxes an input value for a dead letter; made where `In: Exchange` is known, so that the
    /// task's methods need only `In: Clone`.
    erase: fn(&In) -> Arc<dyn Any + Send + Sync>,
}

struct TaskState {
    pipeline: &'static str,
    graph: Graph,
    topic: String,
    signal: watch::Receiver<Mode>,
    mode: Mode,
    metrics: Arc<Mutex<TaskMetrics>>,
    batch: usize,
    sample_every: u32,
    latency: bool,
    until_sample: u32,
    clock: quanta::Clock,
    failures: Vec<Failure>,
    dead: Output<DeadLetter>,
    /// The last record processed in each partition, to commit (a task usually reads one
    /// partition, so this is usually one entry, updated in place).
    processed: Vec<Position>,
    finished: bool,
}

pub(crate) struct TaskSetup {
    pub(crate) pipeline: &'static str,
    pub(crate) graph: Graph,
    pub(crate) signal: watch::Receiver<Mode>,
    pub(crate) metrics: Arc<Mutex<TaskMetrics>>,
    pub(crate) batch: usize,
    pub(crate) sample_every: u32,
    pub(crate) latency: bool,
    pub(crate) dead_letters: Topic<DeadLetter>,
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

fn erase<In: Exchange>(value: &In) -> Arc<dyn Any + Send + Sync> {
    Arc::new(value.clone())
}

impl<In: Exchange> Task<In> {
    pub(crate) fn new(member: GroupMember<In>, topic: &str, setup: TaskSetup) -> Self {
        Self {
            erase: erase::<In>,
            member,
            state: TaskState {
                pipeline: setup.pipeline,
                graph: setup.graph,
                topic: topic.to_owned(),
                signal: setup.signal,
                mode: Mode::Run,
                metrics: setup.metrics,
                batch: setup.batch,
                sample_every: setup.sample_every,
                latency: setup.latency,
                until_sample: 0,
                clock: quanta::Clock::new(),
                failures: Vec::new(),
                dead: Output::new(&setup.dead_letters),
                processed: Vec::new(),
                finished: false,
            },
        }
    }
}

impl<In: Clone> Task<In> {
    /// Reads a batch of records and runs `stages` on each. Returns `false` once the task must
    /// end (after a stop or a drain); then nothing was read.
    pub async fn next_batch<F>(&mut self, mut stages: F) -> bool
    where
        F: FnMut(In, &mut Cx<'_>),
    {
        let Self {
            member,
            state,
            erase,
        } = self;
        let erase = *erase;
        if state.finished {
            return false;
        }
        loop {
            match state.mode {
                Mode::Stop => {
                    state.finished = true;
                    return false;
                }
                Mode::Run => {
                    tokio::select! {
                        biased;
                        changed = state.signal.changed() => {
                            state.mode = if changed.is_ok() { *state.signal.borrow_and_update() } else { Mode::Stop };
                        }
                        received = member.recv() => {
                            match received {
                                Ok(record) => {
                                    state.process_one(&record, erase, &mut stages);
                                    state.process_rest(member, erase, &mut stages);
                                    return true;
                                }
                                Err(RecvError::Lagged { skipped, .. }) => lock(&state.metrics).lagged += skipped,
                                Err(_closed) => state.mode = Mode::Drain,
                            }
                        }
                    }
                }
                Mode::Drain => match member.try_recv() {
                    Ok(record) => {
                        state.process_one(&record, erase, &mut stages);
                        state.process_rest(member, erase, &mut stages);
                        return true;
                    }
                    Err(TryRecvError::Lagged { skipped, .. }) => {
                        lock(&state.metrics).lagged += skipped
                    }
                    Err(_empty_or_closed) => {
                        state.finished = true;
                        return false;
                    }
                },
            }
        }
    }

    /// Sends what `output` buffered during the batch.
    pub async fn flush<T>(&mut self, output: &mut Output<T>) -> Result<(), PipelineError> {
        output.flush().await.map(drop)
    }

    /// Sends the batch's dead letters, then commits the batch's input positions. Call it after
    /// every output was flushed: outputs first, then the commit (at-least-once).
    pub async fn commit(&mut self) -> Result<(), PipelineError> {
        self.state.dead.flush().await?;
        for position in self.state.processed.drain(..) {
            self.member.commit(position)?;
        }
        Ok(())
    }
}

type Erase<In> = fn(&In) -> Arc<dyn Any + Send + Sync>;

fn lock(metrics: &Mutex<TaskMetrics>) -> std::sync::MutexGuard<'_, TaskMetrics> {
    metrics.lock().unwrap_or_else(|p| p.into_inner())
}

impl TaskState {
    fn process_one<In: Clone, F>(
        &mut self,
        record: &Record<'_, In>,
        erase: Erase<In>,
        stages: &mut F,
    ) where
        F: FnMut(In, &mut Cx<'_>),
    {
        let metrics = Arc::clone(&self.metrics);
        self.process(&mut lock(&metrics), record, erase, stages);
    }

    /// The rest of a batch: what is available now, up to the batch size.
    fn process_rest<In: Clone, F>(
        &mut self,
        member: &mut GroupMember<In>,
        erase: Erase<In>,
        stages: &mut F,
    ) where
        F: FnMut(In, &mut Cx<'_>),
    {
        let metrics = Arc::clone(&self.metrics);
        let mut guard = lock(&metrics);
        for _ in 1..self.batch {
            match member.try_recv() {
                Ok(record) => self.process(&mut guard, &record, erase, stages),
                Err(TryRecvError::Lagged { skipped, .. }) => guard.lagged += skipped,
                Err(_) => break,
            }
        }
    }

    fn process<In: Clone, F>(
        &mut self,
        metrics: &mut TaskMetrics,
        record: &Record<'_, In>,
        erase: Erase<In>,
        stages: &mut F,
    ) where
        F: FnMut(In, &mut Cx<'_>),
    {
        let sampled = self.next_sampled();
        let position = record.position();
        let mut cx = Cx {
            metrics,
            failures: &mut self.failures,
            clock: &self.clock,
            sampled,
            node: 0,
            partition: position.partition,
            source_timestamp: record.timestamp_nanos(),
        };
        let value = record.value().clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| stages(value, &mut cx)));
        if let Err(panic) = outcome {
            let node = cx.node;
            cx.metrics.failures[node] += 1;
            self.failures.push(Failure {
                node,
                error: panic_message(&*panic),
                panicked: true,
            });
        }
        if !self.failures.is_empty() {
            // The dead letter carries the input record, read again from the log.
            self.dead_letters(position, erase(record.value()), std::any::type_name::<In>());
        }
        self.state_processed(position);
    }

    fn state_processed(&mut self, position: Position) {
        match self
            .processed
            .iter_mut()
            .find(|p| p.partition == position.partition)
        {
            Some(last) => *last = position.max(*last),
            None => self.processed.push(position),
        }
    }

    /// Whether the next record is timed (one in `sample_every`).
    fn next_sampled(&mut self) -> bool {
        self.latency && {
            if self.until_sample == 0 {
                self.until_sample = self.sample_every - 1;
                true
            } else {
                self.until_sample -= 1;
                false
            }
        }
    }

    /// Turns the failures recorded for the record at `position` into dead letters.
    fn dead_letters(
        &mut self,
        position: Position,
        value: Arc<dyn Any + Send + Sync>,
        value_type: &'static str,
    ) {
        for failure in self.failures.drain(..) {
            let letter = DeadLetter {
                pipeline: self.pipeline,
                stage: self.graph.nodes[failure.node].name,
                error: failure.error,
                panicked: failure.panicked,
                topic: self.topic.clone(),
                position,
                value: Arc::clone(&value),
                value_type,
            };
            self.dead.push(position.partition, letter);
        }
    }
}
