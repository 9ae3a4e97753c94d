//! Why a pipeline's state could not be saved or restored.

/// A checkpoint could not be read back or written: never a silent fresh start, never a wrong
/// state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A checkpoint does not verify (bad magic, wrong length, CRC mismatch). Remove it to start
    /// the pipeline without its state (and replay from its sources' committed offsets).
    #[error("checkpoint {what} is corrupt: {reason}")]
    Corrupt {
        /// The file (or topic) holding it.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint belongs to another pipeline (another group prefix).
    #[error(
        "checkpoint {what} belongs to pipeline `{found}`, not `{expected}`: give each pipeline its own state directory"
    )]
    OtherPipeline {
        /// The file holding it.
        what: String,
        /// The pipeline that wrote it.
        found: String,
        /// This pipeline.
        expected: String,
    },
    /// The checkpoint was taken by another shape of this pipeline (stages added, removed or
    /// rewired): its state cannot be mapped onto this graph.
    #[error(
        "checkpoint {what} was taken by another version of pipeline `{pipeline}` (its graph changed): remove it, or start the new version under another group prefix"
    )]
    GraphChanged {
        /// The file holding it.
        what: String,
        /// The pipeline.
        pipeline: String,
    },
    /// A task's state does not decode as its node's state type.
    #[error("the saved state of node `{node}` does not decode: {reason}")]
    State {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// An exactly-once sink was written by someone else since the checkpoint: its end offset
    /// is not where the checkpoint's outputs put it, so they cannot be completed once.
    #[error(
        "exactly-once sink `{topic}` partition {partition} ends at {found}, the checkpoint expects {expected}: the pipeline must be its only writer"
    )]
    SinkMoved {
        /// The sink topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// Where the checkpoint expects it to end.
        expected: String,
        /// Where it ends.
        found: u64,
    },
    /// Exactly-once was asked for where it cannot hold.
    #[error("exactly-once: {0}")]
    ExactlyOnce(String),
    /// Reading or writing the state directory failed (a full disk, permissions).
    #[error("state directory {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What failed.
        message: String,
    },
}
