//! Async stages: a segment whose first stage is an `async fn` runs up to `limit` of its
//! futures at once, in input order unless asked otherwise, then the fused stages after it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

use broker::{Position, RecvError, TryRecvError};
use futures_util::FutureExt;
use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt};

use super::{Cx, DeadInput, Erase, Failure, Input, Mode, Task, lock, panic_message};

/// A record read for an async batch, owned.
struct Read<In> {
    value: In,
    position: Position,
    timestamp: u64,
}

impl<In: Clone> Task<In> {
    /// Reads a batch, runs `stage` (an async stage, node `node`) on each record with at most
    /// `limit` futures in flight, and hands each output to `rest` (the fused stages after it),
    /// in input order when `ordered`. Returns `false` once the task must end.
    pub async fn next_batch_async<S, Fut, R>(
        &mut self,
        node: usize,
        limit: usize,
        ordered: bool,
        mut stage: S,
        mut rest: R,
    ) -> bool
    where
        S: FnMut(In) -> Fut,
        Fut: Future,
        R: FnMut(Fut::Output, &mut Cx<'_>),
    {
        let Some(batch) = self.read_batch().await else {
            return false;
        };
        let limit = limit.max(1);
        let erase = self.erase;
        let mut started = 0;
        let clock = self.state.clock.clone();
        // Each future yields its batch index, its result (or panic), and its start time.
        let start = |stage: &mut S, index: usize, read: &Read<In>| {
            let future = catch_unwind(AssertUnwindSafe(|| stage(read.value.clone())));
            let begun = clock.raw();
            async move {
                let outcome = match future {
                    Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                (index, outcome, begun)
            }
        };
        let mut in_order = FuturesOrdered::new();
        let mut any_order = FuturesUnordered::new();
        loop {
            while started < batch.len() && in_order.len() + any_order.len() < limit {
                let future = start(&mut stage, started, &batch[started]);
                if ordered {
                    in_order.push_back(future);
                } else {
                    any_order.push(future);
                }
                started += 1;
            }
            let next = if ordered {
                in_order.next().await
            } else {
                any_order.next().await
            };
            let Some((index, outcome, begun)) = next else {
                break;
            };
            self.finish_one(&batch[index], node, outcome, begun, erase, &mut rest);
        }
        true
    }

    fn finish_one<Out, R>(
        &mut self,
        read: &Read<In>,
        node: usize,
        outcome: std::thread::Result<Out>,
        begun: u64,
        erase: Erase<In>,
        rest: &mut R,
    ) where
        R: FnMut(Out, &mut Cx<'_>),
    {
        let encode = self.encode;
        let state = &mut self.state;
        let sampled = state.next_sampled();
        let metrics = std::sync::Arc::clone(&state.metrics);
        let mut guard = lock(&metrics);
        guard.counts[node] += 1;
        if sampled {
            let nanos = state.clock.delta_as_nanos(begun, state.clock.raw());
            guard.latency[node].saturating_record(nanos.max(1));
        }
        match outcome {
            Ok(output) => {
                let mut cx = Cx {
                    metrics: &mut guard,
                    failures: &mut state.failures,
                    clock: &state.clock,
                    sampled,
                    node,
                    partition: read.position.partition,
                    source_timestamp: read.timestamp,
                };
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| rest(output, &mut cx))) {
                    let node = cx.node;
                    cx.metrics.failures[node] += 1;
                    state.failures.push(Failure {
                        node,
                        error: panic_message(&*panic),
                        panicked: true,
                    });
                }
            }
            Err(panic) => {
                guard.failures[node] += 1;
                state.failures.push(Failure {
                    node,
                    error: panic_message(&*panic),
                    panicked: true,
                });
            }
        }
        drop(guard);
        if !state.failures.is_empty() {
            // The payload as read is gone (the value was decoded): it is encoded again.
            let input = DeadInput {
                value: erase(&read.value),
                value_type: std::any::type_name::<In>(),
                payload: state
                    .input_codec
                    .and_then(|codec| encode(&read.value, codec)),
            };
            state.dead_letters(read.position, input);
        }
        state.state_processed(read.position);
    }

    /// Waits for records and reads up to a batch of them, owned; `None` once the task must end.
    async fn read_batch(&mut self) -> Option<Vec<Read<In>>> {
        let Self { input, state, .. } = self;
        if state.finished {
            return None;
        }
        let member = match input {
            Input::Mem(member) => member,
            Input::Remote(reader) => {
                let mut batch = Vec::new();
                for record in state.poll_remote(&mut **reader).await? {
                    match record.value {
                        Ok(value) => batch.push(Read {
                            value,
                            position: record.position,
                            timestamp: record.timestamp_nanos,
                        }),
                        Err(undecodable) => state.undecodable(record.position, undecodable),
                    }
                }
                return Some(batch);
            }
        };
        let owned = |record: &broker::Record<'_, In>| Read {
            value: record.value().clone(),
            position: record.position(),
            timestamp: record.timestamp_nanos(),
        };
        let mut batch = Vec::new();
        loop {
            match state.mode {
                Mode::Stop => {
                    state.finished = true;
                    return None;
                }
                Mode::Run => {
                    tokio::select! {
                        biased;
                        changed = state.signal.changed() => {
                            state.mode = if changed.is_ok() { *state.signal.borrow_and_update() } else { Mode::Stop };
                        }
                        received = member.recv() => match received {
                            Ok(record) => {
                                batch.push(owned(&record));
                                break;
                            }
                            Err(RecvError::Lagged { skipped, .. }) => lock(&state.metrics).lagged += skipped,
                            Err(_closed) => state.mode = Mode::Drain,
                        },
                    }
                }
                Mode::Drain => match member.try_recv() {
                    Ok(record) => {
                        batch.push(owned(&record));
                        break;
                    }
                    Err(TryRecvError::Lagged { skipped, .. }) => {
                        lock(&state.metrics).lagged += skipped
                    }
                    Err(_) => {
                        state.finished = true;
                        return None;
                    }
                },
            }
        }
        while batch.len() < state.batch {
            match member.try_recv() {
                Ok(record) => batch.push(owned(&record)),
                Err(TryRecvError::Lagged { skipped, .. }) => lock(&state.metrics).lagged += skipped,
                Err(_) => break,
            }
        }
        Some(batch)
    }
}
