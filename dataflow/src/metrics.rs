//! Per-stage metrics: counts, rates and latency histograms.
//!
//! Each task keeps its own counters and HDR histograms (no sharing on the hot path; the task
//! takes its own, uncontended lock once per batch), and a snapshot merges them. Latency is
//! sampled: one record in `sample_every` (1024 by default) is timed through every stage of its
//! segment, and at each sink end to end from the record's append time at the source.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::graph::{Graph, NodeKind};

fn histogram() -> Histogram<u64> {
    // 1 ns to 1 hour, 2 significant digits: about 10 KiB each.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid bounds")
}

/// One task's counters, written by the task only.
#[derive(Debug)]
pub(crate) struct TaskMetrics {
    pub(crate) counts: Vec<u64>,
    pub(crate) failures: Vec<u64>,
    pub(crate) latency: Vec<Histogram<u64>>,
    /// End-to-end latency at sink nodes (from the source append time).
    pub(crate) end_to_end: Vec<Histogram<u64>>,
    pub(crate) lagged: u64,
    /// Partitions whose commit was refused because the group had given them to another
    /// member (their records are read again there).
    pub(crate) commits_refused: u64,
    /// Dead letters kept without their payload (too large for the store).
    pub(crate) dead_letters_stripped: u64,
    /// Times the task ended on a transient backend error and was made again.
    pub(crate) outages: u64,
    pub(crate) last_outage: Option<String>,
}

impl TaskMetrics {
    pub(crate) fn new(nodes: usize) -> Self {
        Self {
            counts: vec![0; nodes],
            failures: vec![0; nodes],
            latency: (0..nodes).map(|_| histogram()).collect(),
            end_to_end: (0..nodes).map(|_| histogram()).collect(),
            lagged: 0,
            commits_refused: 0,
            dead_letters_stripped: 0,
            outages: 0,
            last_outage: None,
        }
    }
}

/// Every task's metrics, for snapshots.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) tasks: Mutex<Vec<Arc<Mutex<TaskMetrics>>>>,
}

impl Registry {
    pub(crate) fn task(&self, nodes: usize) -> Arc<Mutex<TaskMetrics>> {
        let metrics = Arc::new(Mutex::new(TaskMetrics::new(nodes)));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&metrics));
        metrics
    }

    pub(crate) fn snapshot(&self, graph: &Graph, elapsed: Duration) -> Metrics {
        let nodes = graph.nodes.len();
        let mut merged = TaskMetrics::new(nodes);
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let task = task.lock().unwrap_or_else(|p| p.into_inner());
            for i in 0..nodes {
                merged.counts[i] += task.counts[i];
                merged.failures[i] += task.failures[i];
                merged.latency[i]
                    .add(&task.latency[i])
                    .expect("same bounds");
                merged.end_to_end[i]
                    .add(&task.end_to_end[i])
                    .expect("same bounds");
            }
            merged.lagged += task.lagged;
            merged.commits_refused += task.commits_refused;
            merged.dead_letters_stripped += task.dead_letters_stripped;
            merged.outages += task.outages;
            if task.last_outage.is_some() {
                merged.last_outage.clone_from(&task.last_outage);
            }
        }
        let secs = elapsed.as_secs_f64().max(1e-9);
        let quantile = |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        let stages = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let h = if node.kind == NodeKind::Sink {
                    &merged.end_to_end[i]
                } else {
                    &merged.latency[i]
                };
                StageStats {
                    name: node.name,
                    kind: node.kind,
                    count: merged.counts[i],
                    failed: merged.failures[i],
                    rate: merged.counts[i] as f64 / secs,
                    samples: h.len(),
                    p50_nanos: quantile(h, 0.5),
                    p99_nanos: quantile(h, 0.99),
                    p999_nanos: quantile(h, 0.999),
                    max_nanos: (!h.is_empty()).then(|| h.max()),
                }
            })
            .collect();
        Metrics {
            pipeline: graph.name,
            elapsed,
            stages,
            lagged: merged.lagged,
            commits_refused: merged.commits_refused,
            dead_letters_stripped: merged.dead_letters_stripped,
            outages: merged.outages,
            last_outage: merged.last_outage,
        }
    }
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StageStats {
    /// The node's name.
    pub name: &'static str,
    /// What it does.
    pub kind: NodeKind,
    /// Records that entered it (for a sink: records written).
    pub count: u64,
    /// Records it sent to the dead-letter output.
    pub failed: u64,
    /// `count` per second since the pipeline started.
    pub rate: f64,
    /// Timed (sampled) records behind the quantiles.
    pub samples: u64,
    /// Median latency of the stage (for a sink: end to end from the source append).
    pub p50_nanos: Option<u64>,
    /// 99th percentile.
    pub p99_nanos: Option<u64>,
    /// 99.9th percentile.
    pub p999_nanos: Option<u64>,
    /// Maximum.
    pub max_nanos: Option<u64>,
}

/// A snapshot of a pipeline's metrics. `Display` prints the per-stage table.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// The pipeline's name.
    pub pipeline: &'static str,
    /// Time since the pipeline started.
    pub elapsed: Duration,
    /// One entry per graph node, in node order.
    pub stages: Vec<StageStats>,
    /// Records skipped because an input topic's retention removed them before they were read.
    pub lagged: u64,
    /// Commits refused because the consumer group had given the partition to another member
    /// (another process joined, say): that member reads those records again.
    pub commits_refused: u64,
    /// Dead letters kept on the backend without their payload, which was too large for the
    /// store (their error says how large it was).
    pub dead_letters_stripped: u64,
    /// Times a task ended because its remote backend stayed unreachable longer than the
    /// bridge retries, and joined its group again (the records after its last commit were
    /// read again).
    pub outages: u64,
    /// The error of one of those outages, the latest one seen.
    pub last_outage: Option<String>,
}

impl Metrics {
    /// The figures of the node called `name`.
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// `1234` -> `1.2µs`.
pub(crate) fn human_nanos(nanos: u64) -> String {
    match nanos {
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{:.1}µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1}ms", n as f64 / 1e6),
        n => format!("{:.2}s", n as f64 / 1e9),
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pipeline `{}` after {:.2?} (latency: per stage; at sinks, end to end from the source append)",
            self.pipeline, self.elapsed
        )?;
        writeln!(
            f,
            "{:<20} {:<12} {:>10} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9}",
            "stage", "operator", "count", "failed", "rate/s", "p50", "p99", "p99.9", "max"
        )?;
        let q = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), human_nanos);
        for s in &self.stages {
            writeln!(
                f,
                "{:<20} {:<12} {:>10} {:>8} {:>12.0} {:>9} {:>9} {:>9} {:>9}",
                s.name,
                s.kind.operator(),
                s.count,
                s.failed,
                s.rate,
                q(s.p50_nanos),
                q(s.p99_nanos),
                q(s.p999_nanos),
                q(s.max_nanos)
            )?;
        }
        if self.lagged > 0 {
            writeln!(f, "records skipped by input retention: {}", self.lagged)?;
        }
        if self.commits_refused > 0 {
            writeln!(
                f,
                "commits refused (partition moved to another member): {}",
                self.commits_refused
            )?;
        }
        if self.dead_letters_stripped > 0 {
            writeln!(
                f,
                "dead letters kept without their payload (too large): {}",
                self.dead_letters_stripped
            )?;
        }
        if let (outages @ 1.., Some(last)) = (self.outages, &self.last_outage) {
            writeln!(
                f,
                "tasks that rejoined after a backend outage: {outages} ({last})"
            )?;
        }
        Ok(())
    }
}
