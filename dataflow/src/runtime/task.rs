//! One task: reads one partition of a segment's input, runs the fused stages on each record,
//! flushes outputs, commits.

use std::any::Any;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use broker::{GroupMember, Position, Record, RecvError, Topic, TryRecvError};
use tokio::sync::watch;

use crate::backend::{BackendError, BoxFuture, POLL_WAIT, Received, TopicReader, Undecodable};

use crate::codec::Codec;
use crate::dead_letter::{DeadLetter, StoredDeadLetter};
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

/// One task of a segment: owns one partition of the segment's input topic (on a remote
/// backend, whichever partitions the group gives it).
pub struct Task<In> {
    input: Input<In>,
    state: TaskState,
    /// Boxes an input value for a dead letter; made where `In: Exchange` is known, so that the
    /// task's methods need only `In: Clone`.
    erase: fn(&In) -> Arc<dyn Any + Send + Sync>,
    /// Encodes an input value for a stored dead letter (same reason).
    encode: fn(&In, Codec) -> Option<Vec<u8>>,
}

/// Where a task reads.
pub(super) enum Input<In> {
    Mem(GroupMember<In>),
    Remote(Box<dyn RemoteInput<In>>),
}

/// A remote reader, as a trait object made where `In`'s codec bounds are known (so that the
/// task's methods need only `In: Clone`).
pub(super) trait RemoteInput<In>: Send {
    fn recv_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Received<In>>, BackendError>>;
    fn commit(&mut self) -> BoxFuture<'_, Result<(), BackendError>>;
    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>>;
    /// A record's value decoded again from its payload, boxed for a dead letter.
    fn again(&self, payload: &[u8]) -> Arc<dyn Any + Send + Sync>;
}

impl<In: Exchange> RemoteInput<In> for Option<TopicReader<In>> {
    fn recv_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Received<In>>, BackendError>> {
        Box::pin(async move {
            match self {
                Some(reader) => reader.recv_batch(max, POLL_WAIT).await,
                None => Ok(Vec::new()),
            }
        })
    }

    fn commit(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            match self {
                Some(reader) => reader.commit().await,
                None => Ok(()),
            }
        })
    }

    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            match self.take() {
                Some(reader) => reader.leave().await,
                None => Ok(()),
            }
        })
    }

    fn again(&self, payload: &[u8]) -> Arc<dyn Any + Send + Sync> {
        let codec = self.as_ref().and_then(TopicReader::codec);
        match codec.map(|codec| codec.decode::<In>(payload)) {
            Some(Ok(value)) => Arc::new(value),
            // It decoded once; should it not now, the bytes still say what it was.
            _ => Arc::new(payload.to_vec()),
        }
    }
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
    /// The backend topic that keeps dead letters (remote backends only).
    stored: Option<Output<StoredDeadLetter>>,
    /// The codec of the input (remote backends only): a stored dead letter's payload is in it.
    input_codec: Option<Codec>,
    /// The last record processed in each partition, to commit (a task usually reads one
    /// partition, so this is usually one entry, updated in place).
    processed: Vec<Position>,
    finished: bool,
    /// A read error on a remote backend: the task ends, and [`Task::end`] returns it.
    error: Option<PipelineError>,
}

#[derive(Clone)]
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

/// What a task reads: one member of its segment's consumer group.
pub(crate) enum Membership<In> {
    Mem(GroupMember<In>),
    Remote(TopicReader<In>),
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

fn encode<In: Exchange>(value: &In, codec: Codec) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    codec.encode(value, &mut bytes).ok().map(|()| bytes)
}

impl<In: Exchange> Task<In> {
    /// A task reading as `member`; on a remote backend, `stored` keeps its dead letters there.
    pub(crate) fn new(
        member: Membership<In>,
        topic: &str,
        setup: TaskSetup,
        stored: Option<Output<StoredDeadLetter>>,
    ) -> Self {
        let (input, input_codec) = match member {
            Membership::Mem(member) => (Input::Mem(member), None),
            Membership::Remote(reader) => {
                let codec = reader.codec();
                (Input::Remote(Box::new(Some(reader))), codec)
            }
        };
        Self {
            erase: erase::<In>,
            encode: encode::<In>,
            input,
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
                dead: Output::mem(&setup.dead_letters),
                stored,
                input_codec,
                processed: Vec::new(),
                finished: false,
                error: None,
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
            input,
            state,
            erase,
            ..
        } = self;
        let erase = *erase;
        if state.finished {
            return false;
        }
        let member = match input {
            Input::Mem(member) => member,
            Input::Remote(reader) => {
                return state.next_remote(&mut **reader, &mut stages).await;
            }
        };
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

    /// Sends what `output` buffered during the batch. A value that does not encode for a
    /// remote topic (over the codec's size limit, say) becomes a dead letter of the `encode`
    /// step, carrying that value and the position of the batch's last input record.
    pub async fn flush<T>(&mut self, output: &mut Output<T>) -> Result<(), PipelineError> {
        output.flush().await?;
        if output.rejected.is_empty() {
            return Ok(());
        }
        let state = &mut self.state;
        let position = state.processed.last().copied().unwrap_or(Position {
            partition: 0,
            offset: 0,
        });
        let destination = output.topic().to_owned();
        for rejected in std::mem::take(&mut output.rejected) {
            let letter = DeadLetter {
                pipeline: state.pipeline,
                stage: "encode",
                error: format!("{} (writing to `{destination}`)", rejected.error),
                panicked: false,
                topic: state.topic.clone(),
                position,
                value: rejected.value,
                value_type: rejected.value_type,
            };
            // A value that did not encode has no payload.
            state.push_dead(letter, None);
        }
        Ok(())
    }

    /// Sends the batch's dead letters (to the backend first, where they are kept), then
    /// commits the batch's input positions. Call it after every output was flushed: outputs
    /// first, then the commit (at-least-once).
    pub async fn commit(&mut self) -> Result<(), PipelineError> {
        if let Some(stored) = &mut self.state.stored {
            stored.flush().await?;
            // A dead letter too large for the store (over 64 MiB) is kept in this process
            // only, as every dead letter is.
            stored.rejected.clear();
        }
        self.state.dead.flush().await?;
        match &mut self.input {
            Input::Mem(member) => {
                for position in self.state.processed.drain(..) {
                    member.commit(position)?;
                }
            }
            Input::Remote(reader) => {
                self.state.processed.clear();
                reader.commit().await?;
            }
        }
        Ok(())
    }

    /// Ends the task: leaves its group (a remote group hands its partitions over at once)
    /// and returns the error that ended the reads, if any.
    pub async fn end(mut self) -> Result<(), PipelineError> {
        if let Input::Remote(reader) = &mut self.input {
            let left = reader.leave().await;
            if let Some(err) = self.state.error.take() {
                return Err(err);
            }
            left?;
        }
        match self.state.error.take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

type Erase<In> = fn(&In) -> Arc<dyn Any + Send + Sync>;

/// The input record of a dead letter, made only when a stage failed.
struct DeadInput {
    value: Arc<dyn Any + Send + Sync>,
    value_type: &'static str,
    /// Its bytes in the input's codec, for the backend's copy (remote backends only).
    payload: Option<Vec<u8>>,
}

fn lock(metrics: &Mutex<TaskMetrics>) -> std::sync::MutexGuard<'_, TaskMetrics> {
    metrics.lock().unwrap_or_else(|p| p.into_inner())
}

impl TaskState {
    /// Waits for a batch from a remote backend, polling briefly so that a stop is seen soon;
    /// `None` once the task must end.
    async fn poll_remote<In>(
        &mut self,
        reader: &mut dyn RemoteInput<In>,
    ) -> Option<Vec<Received<In>>> {
        loop {
            if self.finished {
                return None;
            }
            match self.signal.has_changed() {
                Ok(true) => self.mode = *self.signal.borrow_and_update(),
                Ok(false) => {}
                Err(_) => self.mode = Mode::Stop,
            }
            if self.mode == Mode::Stop {
                self.finished = true;
                return None;
            }
            match reader.recv_batch(self.batch).await {
                Ok(batch) if batch.is_empty() => {
                    if self.mode == Mode::Drain {
                        self.finished = true;
                        return None;
                    }
                }
                Ok(batch) => return Some(batch),
                Err(err) => {
                    self.error = Some(err.into());
                    self.finished = true;
                    return None;
                }
            }
        }
    }

    /// A payload that did not decode: a dead letter of the `decode` step.
    fn undecodable(&mut self, position: Position, undecodable: Undecodable) {
        let payload = self.stored.is_some().then(|| undecodable.payload.clone());
        let letter = DeadLetter {
            pipeline: self.pipeline,
            stage: "decode",
            error: undecodable.error.to_string(),
            panicked: false,
            topic: self.topic.clone(),
            position,
            value: Arc::new(undecodable.payload),
            value_type: "Vec<u8>",
        };
        self.push_dead(letter, payload);
        self.state_processed(position);
    }

    /// Buffers `letter` for the dead-letter output and, on a remote backend, for the backend
    /// topic that keeps them, with `payload` (the record's bytes in the input's codec).
    fn push_dead(&mut self, letter: DeadLetter, payload: Option<Vec<u8>>) {
        if let Some(stored) = &mut self.stored {
            let payload = payload.zip(self.input_codec);
            stored.push(0, StoredDeadLetter::new(&letter, payload));
        }
        self.dead.push(letter.position.partition, letter);
    }

    /// [`Task::next_batch`] on a remote backend.
    async fn next_remote<In: Clone, F>(
        &mut self,
        reader: &mut dyn RemoteInput<In>,
        stages: &mut F,
    ) -> bool
    where
        F: FnMut(In, &mut Cx<'_>),
    {
        let Some(batch) = self.poll_remote(reader).await else {
            return false;
        };
        let metrics = Arc::clone(&self.metrics);
        let mut guard = lock(&metrics);
        for record in batch {
            match record.value {
                Ok(value) => {
                    // A dead letter decodes the value again from its payload.
                    let payload = record.payload;
                    let reader = &*reader;
                    self.process_value(
                        &mut guard,
                        value,
                        record.position,
                        record.timestamp_nanos,
                        stages,
                        || DeadInput {
                            value: reader.again(&payload),
                            value_type: std::any::type_name::<In>(),
                            payload: Some(payload),
                        },
                    );
                }
                Err(undecodable) => self.undecodable(record.position, undecodable),
            }
        }
        true
    }

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
        // The dead letter carries the input record, read again from the log.
        self.process_value(
            metrics,
            record.value().clone(),
            record.position(),
            record.timestamp_nanos(),
            stages,
            || DeadInput {
                value: erase(record.value()),
                value_type: std::any::type_name::<In>(),
                payload: None,
            },
        );
    }

    /// Runs the stages on `value` (read at `position`); `input` gives the value again, boxed,
    /// for a dead letter.
    fn process_value<In, F>(
        &mut self,
        metrics: &mut TaskMetrics,
        value: In,
        position: Position,
        timestamp: u64,
        stages: &mut F,
        input: impl FnOnce() -> DeadInput,
    ) where
        F: FnMut(In, &mut Cx<'_>),
    {
        let sampled = self.next_sampled();
        let mut cx = Cx {
            metrics,
            failures: &mut self.failures,
            clock: &self.clock,
            sampled,
            node: 0,
            partition: position.partition,
            source_timestamp: timestamp,
        };
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
            self.dead_letters(position, input());
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
    fn dead_letters(&mut self, position: Position, input: DeadInput) {
        let mut failures = std::mem::take(&mut self.failures);
        for failure in failures.drain(..) {
            let letter = DeadLetter {
                pipeline: self.pipeline,
                stage: self.graph.nodes[failure.node].name,
                error: failure.error,
                panicked: failure.panicked,
                topic: self.topic.clone(),
                position,
                value: Arc::clone(&input.value),
                value_type: input.value_type,
            };
            self.push_dead(letter, input.payload.clone());
        }
        // The (now empty) buffer is kept for the next record.
        self.failures = failures;
    }
}
