//! Checkpoints of a pipeline in one process (`mem://`, `file://`, `stdio://`): asynchronous
//! barrier snapshots, as Flink takes them (Carbone et al., 2015), aligned by pausing.
//!
//! Every interval the coordinator asks the source tasks for checkpoint `n`. A source task
//! finishes its batch, flushes its outputs, writes barrier `n` into every partition of every
//! internal topic it writes, reports its positions, and pauses. A downstream task that has read
//! barrier `n` from every writer of its partition has processed every record before the
//! checkpoint and nothing after it (the writers are paused): it flushes its outputs (sinks as
//! durable as their fsync policy makes them), writes barrier `n` on, and reports its state.
//! Once every task has reported, the sources go on (the pause lasts as long as the barrier's
//! trip through the graph), and the checkpoint is written in the background; once it is
//! durable, the sources commit its positions. A restart restores the last checkpoint's state
//! and reads the sources from its positions, so internal topics need no recovery of their own
//! and are read without consumer groups.
//!
//! A clean stop (or the end of the sources) drains the pipeline and takes a last checkpoint of
//! where everything stopped.

use tokio::sync::{mpsc, watch};

use crate::backend::{BackendError, BoxFuture};

pub(crate) mod coordinator;
pub(crate) mod error;
pub(crate) mod snapshot;
pub(crate) mod store;
pub(crate) mod transaction;

use snapshot::{SavedState, SourcePosition};
use transaction::HeldOutputs;

/// The fingerprint of a graph: its checkpoints fit only a pipeline with the same one. Stable
/// across builds (a CRC of the graph's description, not the standard library's hasher).
pub(crate) fn fingerprint(graph: &crate::graph::Graph) -> u64 {
    let mut description = String::new();
    for node in graph.nodes {
        description.push_str(&format!(
            "{}:{}:{};",
            node.name,
            node.kind.operator(),
            node.segment
        ));
    }
    for (from, to) in graph.edges {
        description.push_str(&format!("{from}>{to};"));
    }
    u64::from(crc32fast::hash(description.as_bytes()))
}

/// The epoch of the last checkpoint, taken when the pipeline stops.
pub(crate) const LAST: u64 = u64::MAX;

/// Commits a source task's positions of the last checkpoint, once it is durable.
pub(crate) type CommitLater =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BackendError>> + Send>;

/// What a task tells the coordinator.
pub(crate) enum Report {
    /// Task `task` passed checkpoint `epoch`: its sources' positions and its states then.
    Passed {
        epoch: u64,
        task: usize,
        sources: Vec<SourcePosition>,
        states: Vec<SavedState>,
        /// An exactly-once task's outputs of the epoch, held back.
        outputs: Vec<HeldOutputs>,
    },
    /// Task `task` ended. When it drained its input (a stop, or the end of its sources), `last`
    /// holds where it stopped, and `commit` commits its sources there once the last checkpoint
    /// is kept; after a failure, `last` is `None` and no last checkpoint is taken.
    Ended {
        task: usize,
        last: Option<(Vec<SourcePosition>, Vec<SavedState>, Vec<HeldOutputs>)>,
        commit: Option<CommitLater>,
    },
}

/// A task's line to the coordinator.
#[derive(Clone)]
pub(crate) struct Link {
    /// The checkpoint the sources are asked for (0: none yet).
    pub(crate) trigger: watch::Receiver<u64>,
    /// The last checkpoint every task has passed: paused sources go on.
    pub(crate) resume: watch::Receiver<u64>,
    /// The last checkpoint kept durably: its positions may be committed.
    pub(crate) durable: watch::Receiver<u64>,
    pub(crate) reports: mpsc::UnboundedSender<Report>,
}
