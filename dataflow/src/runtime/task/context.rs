//! What the fused stages see of their task while they run on one record: timing, counts,
//! failures.

use std::any::Any;
use std::fmt::Display;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::metrics::TaskMetrics;

/// A stage failure recorded during a record's processing.
pub(super) struct Failure {
    pub(super) node: usize,
    pub(super) error: String,
    pub(super) panicked: bool,
}

impl Failure {
    /// A panic of stage `node`.
    pub(super) fn panic(node: usize, panic: &(dyn Any + Send)) -> Self {
        let error = if let Some(s) = panic.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = panic.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Self {
            node,
            error,
            panicked: true,
        }
    }
}

/// The per-record context handed to the fused stages.
pub struct Cx<'a> {
    pub(super) metrics: &'a mut TaskMetrics,
    pub(super) failures: &'a mut Vec<Failure>,
    pub(super) clock: &'a quanta::Clock,
    pub(super) sampled: bool,
    /// The stage running now: a panic is charged to it.
    pub(super) node: usize,
    pub(super) partition: u32,
    pub(super) source_timestamp: u64,
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

    /// The append time of the source record the current one comes from (nanoseconds since
    /// the Unix epoch): what end-to-end latency is measured from.
    #[inline(always)]
    pub fn origin(&self) -> u64 {
        self.source_timestamp
    }
}

/// Which records are timed: one in `every`.
pub(super) struct Sampling {
    pub(super) on: bool,
    pub(super) every: u32,
    until_next: u32,
}

impl Sampling {
    pub(super) fn new(on: bool, every: u32) -> Self {
        Self {
            on,
            every: every.max(1),
            until_next: 0,
        }
    }

    /// Whether the next record is timed.
    #[inline]
    pub(super) fn next(&mut self) -> bool {
        self.on && {
            if self.until_next == 0 {
                self.until_next = self.every - 1;
                true
            } else {
                self.until_next -= 1;
                false
            }
        }
    }
}
