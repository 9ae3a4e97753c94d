//! Errors of starting and running pipelines.

use broker::{GroupError, TopicError};

use crate::backend::BackendError;

/// Why a pipeline did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A source or sink parameter was not bound to a topic in the builder.
    #[error("`{name}` is not bound to a topic: call `.{name}(topic)` on the builder")]
    Unbound {
        /// The parameter's name.
        name: &'static str,
    },
    /// `start` was called outside a tokio runtime.
    #[error(
        "a pipeline starts inside a tokio runtime (multi-threaded): call `start` from async code or inside `Runtime::enter`"
    )]
    NoRuntime,
    /// An internal topic could not be created.
    #[error("internal topic: {0}")]
    Topic(#[from] TopicError),
    /// A consumer group could not be opened.
    #[error("consumer group: {0}")]
    Group(#[from] GroupError),
    /// The backend could not be reached, or refused a topic or a group.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The checkpoint to restart from could not be read or does not fit this pipeline.
    #[error(transparent)]
    State(#[from] crate::runtime::checkpoint::error::StateError),
    /// A source or sink is bound to an embedded topic but the pipeline runs on a remote
    /// backend.
    #[error(
        "`{name}` is bound to an embedded topic but the pipeline runs on {backend}://: bind it by name (`.{name}(\"topic\")`)"
    )]
    EmbeddedTopic {
        /// The parameter's name.
        name: &'static str,
        /// The backend's scheme.
        backend: &'static str,
    },
}

/// Why a running pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A topic the pipeline writes to was closed.
    #[error("topic `{topic}` was closed while the pipeline was writing to it")]
    OutputClosed {
        /// The topic's name.
        topic: String,
    },
    /// A commit was refused (the task lost its partition).
    #[error("commit refused: {0}")]
    Commit(#[from] broker::CommitError),
    /// The backend failed (after its own retries), or refused a record.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A checkpoint could not be taken or kept (a full disk under the state directory, say):
    /// the last one kept stands.
    #[error(transparent)]
    State(#[from] crate::runtime::checkpoint::error::StateError),
    /// A dead letter could not be kept on the backend, even without its payload: its record is
    /// not committed, and the task ends (a restart reads it again).
    #[error("a dead letter could not be kept in `{topic}`: {error}")]
    DeadLetterLost {
        /// The dead-letter topic.
        topic: String,
        /// Why.
        error: String,
    },
    /// A task ended abnormally (it panicked outside a stage).
    #[error("a task of segment {segment} failed: {message}")]
    Task {
        /// The segment.
        segment: usize,
        /// What happened.
        message: String,
    },
}
