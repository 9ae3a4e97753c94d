//! Dead letters: the records a task could not process, sent to the pipeline's dead-letter
//! topic in this process (values included) and to the backend's, which keeps them
//! ([`StoredDeadLetter`]), both before the record is committed.

use std::any::Any;
use std::sync::Arc;

use broker::Position;

use super::context::Failure;
use crate::backend::log::Undecodable;
use crate::codec::Codec;
use crate::dead_letter::{DeadLetter, StoredDeadLetter};
use crate::error::PipelineError;
use crate::graph::Graph;
use crate::runtime::output::Output;

/// The input record of a dead letter, made only when a stage failed.
pub(super) struct DeadInput {
    /// The value, or `()` if it could not be read again.
    pub(super) value: Arc<dyn Any + Send + Sync>,
    pub(super) value_type: &'static str,
    /// Its bytes and their codec, for the backend's copy.
    pub(super) payload: Option<(Vec<u8>, Codec)>,
    /// The backend's own name for its place (Redis: the entry id).
    pub(super) id: Option<String>,
}

/// Where a task's dead letters go.
pub(super) struct DeadLetters {
    pub(super) pipeline: &'static str,
    pub(super) graph: Graph,
    /// The topic the task reads (dead letters name it).
    pub(super) topic: String,
    /// This process's dead-letter topic.
    pub(super) local: Output<DeadLetter>,
    /// The backend's topic that keeps them.
    pub(super) stored: Output<StoredDeadLetter>,
}

impl DeadLetters {
    /// A payload that did not decode: a dead letter of the `decode` step.
    pub(super) fn undecodable(
        &mut self,
        position: Position,
        undecodable: Undecodable,
        codec: Option<Codec>,
    ) {
        let payload = codec.map(|codec| (undecodable.payload.clone(), codec));
        let letter = DeadLetter {
            pipeline: self.pipeline,
            stage: "decode",
            error: undecodable.error.to_string(),
            panicked: false,
            topic: self.topic.clone(),
            position,
            id: undecodable.id,
            value: Arc::new(undecodable.payload),
            value_type: "Vec<u8>",
        };
        self.push(letter, payload);
    }

    /// Turns the failures recorded for the record at `position` into dead letters.
    pub(super) fn failed(
        &mut self,
        failures: &mut Vec<Failure>,
        position: Position,
        input: DeadInput,
    ) {
        for failure in failures.drain(..) {
            let letter = DeadLetter {
                pipeline: self.pipeline,
                stage: self.graph.nodes[failure.node].name,
                error: failure.error,
                panicked: failure.panicked,
                topic: self.topic.clone(),
                position,
                id: input.id.clone(),
                value: Arc::clone(&input.value),
                value_type: input.value_type,
            };
            self.push(letter, input.payload.clone());
        }
    }

    /// A value that did not encode for `destination`: a dead letter of the `encode` step,
    /// carrying that value and the position of the batch's last input record.
    pub(super) fn unencodable(
        &mut self,
        destination: &str,
        position: Position,
        value: Arc<dyn Any + Send + Sync>,
        value_type: &'static str,
        error: String,
    ) {
        let letter = DeadLetter {
            pipeline: self.pipeline,
            stage: "encode",
            error: format!("{error} (writing to `{destination}`)"),
            panicked: false,
            topic: self.topic.clone(),
            position,
            id: None,
            value,
            value_type,
        };
        // A value that did not encode has no payload.
        self.push(letter, None);
    }

    fn push(&mut self, letter: DeadLetter, payload: Option<(Vec<u8>, Codec)>) {
        let partition = letter.position.partition;
        self.stored.push(0, StoredDeadLetter::new(&letter, payload));
        self.local.push(partition, letter);
    }

    /// Sends what was buffered: to the backend first, where they are kept, then to this
    /// process's topic. Returns how many were kept without their payload.
    ///
    /// A dead letter too large for the store (its payload over 64 MiB, say) is kept without
    /// its payload, saying so; one that cannot be kept even so fails the task, so that its
    /// record is not committed.
    pub(super) async fn flush(&mut self) -> Result<u64, PipelineError> {
        self.stored.flush().await?;
        let mut stripped = 0;
        for rejected in std::mem::take(&mut self.stored.rejected) {
            let Some(letter) = rejected.value.downcast_ref::<StoredDeadLetter>() else {
                continue;
            };
            let mut letter = letter.clone();
            let size = letter.payload.take().map_or(0, |p| p.len());
            letter.format = None;
            letter.error = format!(
                "{} (its payload of {size} bytes was not kept: {})",
                letter.error, rejected.error
            );
            self.stored.push(0, letter);
            stripped += 1;
        }
        if stripped > 0 {
            self.stored.flush().await?;
            if let Some(rejected) = self.stored.rejected.pop() {
                return Err(PipelineError::DeadLetterLost {
                    topic: self.stored.topic().to_owned(),
                    error: rejected.error,
                });
            }
        }
        self.local.flush().await?;
        Ok(stripped)
    }
}
