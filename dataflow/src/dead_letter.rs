//! The dead-letter output: records a stage could not process, with enough context to replay
//! them.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use broker::Position;

/// A record that a stage rejected (`Err`), panicked on, or that could not be decoded.
///
/// It carries the *input record of the segment* where it failed (the source record, or the
/// record of the internal topic for stages after a repartition), so it can be replayed.
#[derive(Clone)]
pub struct DeadLetter {
    /// The pipeline's name.
    pub pipeline: &'static str,
    /// The stage that failed.
    pub stage: &'static str,
    /// The error's `Display`, or the panic message.
    pub error: String,
    /// Whether the stage panicked (rather than returning `Err`).
    pub panicked: bool,
    /// The topic the record was read from.
    pub topic: String,
    /// Its partition and offset there.
    pub position: Position,
    /// The record's value, as read; see [`DeadLetter::value`].
    pub value: Arc<dyn Any + Send + Sync>,
    /// The value's type name.
    pub value_type: &'static str,
}

impl DeadLetter {
    /// The value, if it is a `T`.
    pub fn value<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("pipeline", &self.pipeline)
            .field("stage", &self.stage)
            .field("error", &self.error)
            .field("panicked", &self.panicked)
            .field("topic", &self.topic)
            .field("position", &self.position)
            .field("value_type", &self.value_type)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage `{}` of pipeline `{}` {} on {}[{}]@{}: {}",
            self.stage,
            self.pipeline,
            if self.panicked { "panicked" } else { "failed" },
            self.topic,
            self.position.partition,
            self.position.offset,
            self.error
        )
    }
}
