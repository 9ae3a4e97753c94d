//! Async stages: a segment whose first stage is an `async fn` runs up to `limit` of its
//! futures at once, in input order unless asked otherwise, then the fused stages after it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt};

use super::context::{Cx, Failure};
use super::{Task, lock};
use crate::backend::log::RecordMeta;

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
        if !self.fill().await {
            return false;
        }
        if self.waits() {
            return true;
        }
        {
            let metrics = Arc::clone(&self.metrics);
            self.undecodable_before(&mut lock(&metrics), None);
        }
        let limit = limit.max(1);
        let (metas, values): (Vec<RecordMeta>, Vec<In>) = self
            .batch
            .records
            .drain(..)
            .map(|entry| (entry.meta, entry.value))
            .unzip();
        let mut values = values.into_iter().enumerate();
        let clock = self.clock.clone();
        // Each future yields its batch index, its result (or panic), and its start time.
        let start = |stage: &mut S, index: usize, value: In| {
            let future = catch_unwind(AssertUnwindSafe(|| stage(value)));
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
            while in_order.len() + any_order.len() < limit {
                let Some((index, value)) = values.next() else {
                    break;
                };
                let future = start(&mut stage, index, value);
                if ordered {
                    in_order.push_back(future);
                } else {
                    any_order.push(future);
                }
            }
            let next = if ordered {
                in_order.next().await
            } else {
                any_order.next().await
            };
            let Some((index, outcome, begun)) = next else {
                break;
            };
            self.finish_one(&metas[index], node, outcome, begun, &mut rest);
        }
        true
    }

    fn finish_one<Out, R>(
        &mut self,
        meta: &RecordMeta,
        node: usize,
        outcome: std::thread::Result<Out>,
        begun: u64,
        rest: &mut R,
    ) where
        R: FnMut(Out, &mut Cx<'_>),
    {
        let sampled = self.sampling.next();
        let metrics = Arc::clone(&self.metrics);
        let mut metrics = lock(&metrics);
        metrics.counts[node] += 1;
        if sampled {
            let nanos = self.clock.delta_as_nanos(begun, self.clock.raw());
            metrics.latency[node].saturating_record(nanos.max(1));
        }
        match outcome {
            Ok(output) => {
                let mut cx = Cx {
                    metrics: &mut metrics,
                    failures: &mut self.failures,
                    clock: &self.clock,
                    sampled,
                    node,
                    partition: meta.position.partition,
                    source_timestamp: meta.timestamp_nanos,
                };
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| rest(output, &mut cx))) {
                    let node = cx.node;
                    cx.metrics.failures[node] += 1;
                    self.failures.push(Failure::panic(node, &*panic));
                }
            }
            Err(panic) => {
                metrics.failures[node] += 1;
                self.failures.push(Failure::panic(node, &*panic));
            }
        }
        drop(metrics);
        self.after_record(meta);
    }
}
