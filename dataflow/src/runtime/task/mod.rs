//! One task: reads one partition of a segment's input (or whichever partitions its group gives
//! it), runs the fused stages on each record, flushes outputs, commits.
//!
//! The rooms: [`read`] is the read loop, [`context`] what stages see while they run,
//! [`dead_letters`] what happens to records that fail, [`async_stage`] segments that start
//! with an `async fn`. This file ties them together: a batch in, stages on each record, outputs
//! flushed, then the commit (outputs first: at-least-once).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use broker::{Position, Topic};
use tokio::sync::watch;

use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::BackendError;
use crate::backend::log::{Batch, LogReader, LogTopic, RecordMeta};
use crate::codec::Codec;
use crate::dead_letter::{DeadLetter, StoredDeadLetter};
use crate::error::PipelineError;
use crate::graph::Graph;
use crate::metrics::TaskMetrics;
use crate::runtime::checkpoint::CommitLater;
use crate::runtime::checkpoint::error::StateError;
use crate::runtime::checkpoint::transaction::HeldOutputs;
use crate::runtime::output::Output;
use crate::runtime::state::{KeyedState, Snapshot};
use crate::stage::Exchange;

mod async_stage;
mod changelog;
mod checkpoint;
mod context;
mod dead_letters;
mod read;

pub(crate) use changelog::{ChangelogRecord, ChangelogSetup};
pub(crate) use checkpoint::CheckpointSetup;
pub use context::Cx;
pub(crate) use read::Mode;

use changelog::Changelogs;
use checkpoint::{Checkpoints, Stopped};
use context::{Failure, Sampling};
use dead_letters::{DeadInput, DeadLetters};
use read::{Control, Next};

/// What every task of a segment shares, to make a task (again, after an outage).
#[derive(Clone)]
pub(crate) struct TaskSetup {
    pub(crate) pipeline: &'static str,
    pub(crate) graph: Graph,
    pub(crate) signal: watch::Receiver<Mode>,
    pub(crate) metrics: Arc<Mutex<TaskMetrics>>,
    pub(crate) batch: usize,
    /// How long a batch waits for more records once it has some.
    pub(crate) linger: std::time::Duration,
    pub(crate) sample_every: u32,
    pub(crate) latency: bool,
    pub(crate) dead_letters: Topic<DeadLetter>,
    pub(crate) stored_dead_letters: Arc<dyn LogTopic<StoredDeadLetter>>,
    /// The pipeline's codec: a stored dead letter of the embedded broker carries its value
    /// encoded with it.
    pub(crate) codec: Codec,
    /// How the task takes part in checkpoints, in a pipeline that takes them.
    pub(crate) checkpoint: Option<CheckpointSetup>,
    /// The node that reads the segment's input.
    pub(crate) input_node: Option<usize>,
    /// Where the segment's group starts if it does not exist yet.
    pub(crate) start: crate::backend::StartAt,
    /// The changelogs of the segment's keyed state, on a backend shared between processes.
    pub(crate) changelogs: Option<ChangelogSetup>,
}

/// One task of a segment.
pub struct Task<In> {
    /// `None` once the task has left its group.
    reader: Option<Box<dyn LogReader<In>>>,
    batch: Batch<In>,
    control: Control,
    metrics: Arc<Mutex<TaskMetrics>>,
    sampling: Sampling,
    clock: quanta::Clock,
    failures: Vec<Failure>,
    letters: DeadLetters,
    codec: Codec,
    /// Its part in checkpoints, in a pipeline that takes them.
    checkpoints: Option<Checkpoints>,
    /// The changelogs its keyed state follows, on a backend shared between processes.
    changelogs: Option<Changelogs>,
    /// The batch in hand waits for the keyed state of a new assignment (restored at the next
    /// commit), and is processed after it.
    waiting: Waiting,
    /// The node that reads the segment's input: records that do not decode count there.
    input_node: Option<usize>,
    /// The last record processed in each partition, to commit (a task usually reads one
    /// partition, so this is usually one entry, updated in place). With checkpoints, what
    /// was processed since the task started.
    processed: Vec<Position>,
    /// The error that ended the reads, returned by [`Task::end`].
    error: Option<PipelineError>,
    /// An exactly-once task's outputs since the last checkpoint, held back.
    held: Vec<HeldOutputs>,
    /// Boxes an input value for a dead letter; made where `In: Exchange` is known, so that the
    /// task's methods need only `In: Clone`.
    erase: fn(In) -> Arc<dyn Any + Send + Sync>,
    /// Encodes an input value for a stored dead letter (same reason).
    encode: fn(&In, Codec) -> Option<Vec<u8>>,
    /// Commits a source's last positions once the last checkpoint is kept (same reason).
    commit_later: fn(Box<dyn LogReader<In>>, Vec<Position>) -> CommitLater,
}

fn commit_later<In: Exchange>(
    mut reader: Box<dyn LogReader<In>>,
    positions: Vec<Position>,
) -> CommitLater {
    Box::new(move || {
        Box::pin(async move {
            if !positions.is_empty() {
                reader.commit(&positions).await?;
            }
            reader.leave().await
        })
    })
}

fn erase<In: Exchange>(value: In) -> Arc<dyn Any + Send + Sync> {
    Arc::new(value)
}

fn encode<In: Exchange>(value: &In, codec: Codec) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    codec.encode(value, &mut bytes).ok().map(|()| bytes)
}

fn lock(metrics: &Mutex<TaskMetrics>) -> MutexGuard<'_, TaskMetrics> {
    metrics.lock().unwrap_or_else(|p| p.into_inner())
}

impl<In: Exchange> Task<In> {
    /// A task reading as `reader`, a member of its segment's group of the topic `topic`.
    pub(crate) async fn new(
        reader: Box<dyn LogReader<In>>,
        topic: &str,
        setup: TaskSetup,
    ) -> Result<Self, BackendError> {
        let local = crate::backend::mem::EmbeddedTopic::new(setup.dead_letters.clone(), false);
        let letters = DeadLetters {
            pipeline: setup.pipeline,
            graph: setup.graph,
            topic: topic.to_owned(),
            local: Output::new(&local).await?,
            stored: Output::new(&*setup.stored_dead_letters).await?,
        };
        let checkpoints = setup.checkpoint.map(Checkpoints::new);
        let trigger = checkpoints.as_ref().and_then(Checkpoints::trigger);
        Ok(Self {
            reader: Some(reader),
            batch: Batch::default(),
            control: Control::new(setup.signal, trigger, setup.batch, setup.linger),
            metrics: setup.metrics,
            sampling: Sampling::new(setup.latency, setup.sample_every),
            clock: quanta::Clock::new(),
            failures: Vec::new(),
            letters,
            codec: setup.codec,
            checkpoints,
            changelogs: setup.changelogs.map(Changelogs::new),
            waiting: Waiting::No,
            input_node: setup.input_node,
            processed: Vec::new(),
            error: None,
            held: Vec::new(),
            erase: erase::<In>,
            encode: encode::<In>,
            commit_later: commit_later::<In>,
        })
    }
}

impl<In: Clone> Task<In> {
    /// Reads the next batch; `false` once the task must end (then nothing was read). Undecodable
    /// records become dead letters here.
    async fn fill(&mut self) -> bool {
        match self.waiting {
            // The state is back: now the batch in hand.
            Waiting::Restored => {
                self.waiting = Waiting::No;
                return true;
            }
            // Not restored: the generated loop commits (restores) before the next read.
            Waiting::ForState => return true,
            Waiting::No => {}
        }
        let Some(reader) = self.reader.as_deref_mut() else {
            return false;
        };
        let mut lagged = 0;
        let read = self
            .control
            .next(reader, &mut self.batch, &mut lagged)
            .await;
        if lagged > 0 {
            lock(&self.metrics).lagged += lagged;
        }
        match read {
            Ok(Next::Batch) => {}
            Ok(Next::Asked(epoch)) => {
                if let Some(checkpoints) = &mut self.checkpoints {
                    checkpoints.asked(epoch);
                }
                return true;
            }
            Ok(Next::End) => return false,
            Err(err) => {
                self.error = Some(err.into());
                self.control.finish();
                return false;
            }
        }
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.note(&self.batch.barriers);
        }
        if let Some(changelogs) = &mut self.changelogs
            && changelogs.note_assignment(reader.assignment())
        {
            self.waiting = Waiting::ForState;
        }
        true
    }

    /// Whether the batch in hand waits for its keyed state (then the stages do not run yet).
    fn waits(&self) -> bool {
        self.waiting == Waiting::ForState
    }

    /// Turns the batch's payloads that did not decode into dead letters of the `decode` step,
    /// those before `position` in its partition (all, without a position), so that dead letters
    /// come in the order their records were read. Counted at the segment's input node.
    fn undecodable_before(&mut self, metrics: &mut TaskMetrics, position: Option<Position>) {
        let codec = self.reader.as_deref().and_then(|r| r.payload_codec());
        let before = |meta: &RecordMeta| {
            position.is_none_or(|p| meta.position.partition != p.partition || meta.position < p)
        };
        while self
            .batch
            .undecodable
            .first()
            .is_some_and(|(meta, _)| before(meta))
        {
            let (meta, undecodable) = self.batch.undecodable.remove(0);
            if let Some(node) = self.input_node {
                metrics.failures[node] += 1;
                if self.letters.graph.nodes[node].kind == crate::graph::NodeKind::Source {
                    metrics.counts[node] += 1;
                }
            }
            self.letters.undecodable(meta.position, undecodable, codec);
            note_processed(&mut self.processed, meta.position);
        }
    }

    /// Reads a batch of records and runs `stages` on each. Returns `false` once the task must
    /// end (after a stop or a drain); then nothing was read.
    pub async fn next_batch<F>(&mut self, mut stages: F) -> bool
    where
        F: FnMut(In, &mut Cx<'_>),
    {
        if !self.fill().await {
            return false;
        }
        if self.waits() {
            return true;
        }
        let metrics = Arc::clone(&self.metrics);
        let mut metrics = lock(&metrics);
        let mut records = std::mem::take(&mut self.batch.records);
        // The last record of the partition being read: records of a partition come in order,
        // so its position is noted once per run of the partition, not once per record.
        let mut last: Option<Position> = None;
        for entry in records.drain(..) {
            let position = entry.meta.position;
            if last.is_some_and(|l| l.partition != position.partition) {
                note_processed(&mut self.processed, last.take().expect("checked"));
            }
            if !self.batch.undecodable.is_empty() {
                self.undecodable_before(&mut metrics, Some(position));
            }
            // Its changes are in the restored state already (see `changelog.rs`).
            if self
                .changelogs
                .as_ref()
                .is_some_and(|c| !c.covered.is_empty() && c.covers(position))
            {
                last = Some(position);
                continue;
            }
            let sampled = self.sampling.next();
            let mut cx = Cx {
                metrics: &mut metrics,
                failures: &mut self.failures,
                clock: &self.clock,
                sampled,
                node: 0,
                partition: entry.meta.position.partition,
                source_timestamp: entry.meta.timestamp_nanos,
            };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| stages(entry.value, &mut cx))) {
                let node = cx.node;
                cx.metrics.failures[node] += 1;
                self.failures.push(Failure::panic(node, &*panic));
            }
            if !self.failures.is_empty() {
                self.dead_letters(&entry.meta);
            }
            last = Some(position);
        }
        if let Some(last) = last {
            note_processed(&mut self.processed, last);
        }
        self.undecodable_before(&mut metrics, None);
        // The (now empty) vector is kept for the next batch.
        self.batch.records = records;
        true
    }

    /// The failures recorded for the record `meta`, as dead letters.
    #[cold]
    fn dead_letters(&mut self, meta: &RecordMeta) {
        let input = self.dead_input(meta);
        self.letters
            .failed(&mut self.failures, meta.position, input);
    }

    /// After a record's stages, one at a time (async stages): its dead letters if a stage
    /// failed, and its position to commit.
    fn after_record(&mut self, meta: &RecordMeta) {
        if !self.failures.is_empty() {
            self.dead_letters(meta);
        }
        note_processed(&mut self.processed, meta.position);
    }

    /// The input of a failed record, read again from the log (or decoded again from its
    /// payload) rather than copied in case it failed.
    fn dead_input(&self, meta: &RecordMeta) -> DeadInput {
        let reader = self
            .reader
            .as_deref()
            .expect("a reading task has its reader");
        let value = reader.again(meta, &self.batch.payloads);
        let payload = match reader.payload_codec() {
            Some(codec) => self
                .batch
                .payloads
                .get(meta.payload as usize)
                .map(|payload| (payload.clone(), codec)),
            None => value
                .as_ref()
                .and_then(|value| (self.encode)(value, self.codec))
                .map(|bytes| (bytes, self.codec)),
        };
        DeadInput {
            value: value.map_or_else(|| Arc::new(()) as Arc<dyn Any + Send + Sync>, self.erase),
            value_type: std::any::type_name::<In>(),
            payload,
            id: self.batch.ids.get(meta.payload as usize).cloned().flatten(),
        }
    }

    /// Sends what `output` buffered during the batch. A value that does not encode for a
    /// remote topic (over the codec's size limit, say) becomes a dead letter of the `encode`
    /// step, carrying that value and the position of the batch's last input record.
    pub async fn flush<T>(&mut self, output: &mut Output<T>) -> Result<(), PipelineError> {
        output.flush().await?;
        self.held.append(&mut output.held);
        if let Some(checkpoints) = &self.checkpoints
            && let Some(epoch) = checkpoints.due
        {
            // Everything before the checkpoint is written: the barrier follows it.
            output.barrier(epoch, checkpoints.task() as u32).await?;
        }
        if output.rejected.is_empty() {
            return Ok(());
        }
        let position = self.processed.last().copied().unwrap_or(Position {
            partition: 0,
            offset: 0,
        });
        let destination = output.topic().to_owned();
        for rejected in std::mem::take(&mut output.rejected) {
            self.letters.unencodable(
                &destination,
                position,
                rejected.value,
                rejected.value_type,
                rejected.error,
            );
        }
        Ok(())
    }

    /// Sends the batch's dead letters (to the backend first, where they are kept), then
    /// commits the batch's input positions. Call it after every output was flushed: outputs
    /// first, then the commit (at-least-once).
    pub async fn commit(&mut self) -> Result<(), PipelineError> {
        self.commit_with(&mut []).await
    }

    /// [`commit`](Self::commit) for a task whose stages keep `states`: a checkpoint copies
    /// them.
    pub async fn commit_with(
        &mut self,
        states: &mut [&mut dyn Snapshot],
    ) -> Result<(), PipelineError> {
        let stripped = self.letters.flush().await?;
        if stripped > 0 {
            lock(&self.metrics).dead_letters_stripped += stripped;
        }
        if let Some(changelogs) = &mut self.changelogs {
            if self.waiting == Waiting::ForState {
                changelogs.restore(states).await?;
                self.waiting = Waiting::Restored;
                return Ok(());
            }
            // Commits follow outputs: the state's changelog is one.
            changelogs.write(states, &self.processed).await?;
        }
        let positions = match &mut self.checkpoints {
            None => std::mem::take(&mut self.processed),
            Some(checkpoints) => {
                if let Some(epoch) = checkpoints.due.take() {
                    let mut mode = self.control.signal();
                    let topic = &self.letters.topic;
                    let held = std::mem::take(&mut self.held);
                    checkpoints
                        .pass(epoch, topic, &self.processed, states, held, &mut mode)
                        .await?;
                }
                // With checkpoints, a source commits only what a kept checkpoint covers.
                checkpoints.committable().unwrap_or_default()
            }
        };
        if positions.is_empty() {
            return Ok(());
        }
        let reader = self
            .reader
            .as_deref_mut()
            .expect("a reading task has its reader");
        let refused = reader.commit(&positions).await?;
        if !refused.is_empty() {
            lock(&self.metrics).commits_refused += refused.len() as u64;
        }
        Ok(())
    }

    /// The state of node `node` in this task: restored from the checkpoint the pipeline
    /// started from, or empty.
    pub fn keyed_state<K, V>(&self, node: usize) -> Result<KeyedState<K, V>, PipelineError>
    where
        K: Hash + Eq + Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let saved = self
            .checkpoints
            .as_ref()
            .and_then(|checkpoints| checkpoints.restored_state(node));
        KeyedState::restore(node, saved).map_err(|e| {
            StateError::State {
                node: self.letters.graph.nodes[node].name.to_owned(),
                reason: e.to_string(),
            }
            .into()
        })
    }

    /// Moves a source task's reader to where the checkpoint the pipeline started from left
    /// its sources.
    pub(crate) async fn restore_positions(&mut self) -> Result<(), BackendError> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(());
        };
        let positions = checkpoints.restored_positions(&self.letters.topic);
        let Some(reader) = self.reader.as_deref_mut() else {
            return Ok(());
        };
        if positions.is_empty() {
            return Ok(());
        }
        // What the checkpoint covers counts as processed: the next checkpoint commits it,
        // should the group's offsets lag behind (a crash between the two).
        for partition in reader.seek(&positions).await? {
            if let Some(&(_, next_offset)) = positions.iter().find(|(p, _)| *p == partition)
                && let Some(offset) = next_offset.checked_sub(1)
            {
                note_processed(&mut self.processed, Position { partition, offset });
            }
        }
        Ok(())
    }

    /// Ends the task: leaves its group (its partitions go to the other members at once) and
    /// returns the error that ended the reads, if any.
    pub async fn end(self) -> Result<(), PipelineError> {
        self.end_with(&mut []).await
    }

    /// [`end`](Self::end) for a task whose stages keep `states`: the last checkpoint copies
    /// them.
    pub async fn end_with(mut self, states: &mut [&mut dyn Snapshot]) -> Result<(), PipelineError> {
        if let Some(checkpoints) = &mut self.checkpoints {
            let clean = self.error.is_none();
            let held = std::mem::take(&mut self.held);
            let last = clean.then_some(Stopped {
                topic: self.letters.topic.as_str(),
                positions: &self.processed,
                states,
                outputs: held,
            });
            // A source's group commits where the last checkpoint left it, once it is kept.
            let commit = match (clean && checkpoints.is_source(), self.reader.take()) {
                (true, Some(reader)) => Some((self.commit_later)(reader, self.processed.clone())),
                (_, reader) => {
                    if let Some(reader) = reader {
                        let _ = reader.leave().await;
                    }
                    None
                }
            };
            checkpoints.end(last, commit)?;
        }
        let left = match self.reader.take() {
            Some(reader) => reader.leave().await,
            None => Ok(()),
        };
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        left.map_err(PipelineError::from)
    }
}

/// Whether the batch in hand waits for the keyed state of a new assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    No,
    /// Read, not processed: the next commit restores the state.
    ForState,
    /// Restored: the next read hands the batch in hand out again.
    Restored,
}

/// Keeps the highest position processed per partition.
fn note_processed(processed: &mut Vec<Position>, position: Position) {
    match processed
        .iter_mut()
        .find(|p| p.partition == position.partition)
    {
        Some(last) => *last = position.max(*last),
        None => processed.push(position),
    }
}
