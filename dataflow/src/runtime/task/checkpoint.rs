//! A task's part in checkpoints (see `runtime/checkpoint`): a source task passes a checkpoint
//! when asked, a downstream task when it has read the checkpoint's barrier from every writer
//! of its partition; either then reports what the checkpoint needs from it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use broker::Position;
use tokio::sync::watch;

use super::read::Mode;
use crate::backend::log::Barrier;
use crate::error::PipelineError;
use crate::runtime::checkpoint::error::StateError;
use crate::runtime::checkpoint::snapshot::{Checkpoint, SavedState, SourcePosition};
use crate::runtime::checkpoint::transaction::HeldOutputs;
use crate::runtime::checkpoint::{CommitLater, Link, Report};
use crate::runtime::state::Snapshot;

/// What a task needs to take part in checkpoints.
#[derive(Clone)]
pub(crate) struct CheckpointSetup {
    pub(crate) link: Link,
    /// The task's number among all the tasks of the pipeline.
    pub(crate) task: usize,
    /// Whether it reads a source.
    pub(crate) source: bool,
    /// The partition it reads (a downstream task's state is that partition's).
    pub(crate) partition: u32,
    /// The checkpoint the pipeline started from.
    pub(crate) restored: Arc<Option<Checkpoint>>,
}

/// Where a task that drained its input stopped.
pub(super) struct Stopped<'a, 'b> {
    /// The topic it read.
    pub(super) topic: &'a str,
    /// The last record it processed in each partition.
    pub(super) positions: &'a [Position],
    pub(super) states: &'a mut [&'b mut dyn Snapshot],
    /// Its outputs held back since the last checkpoint (exactly-once).
    pub(super) outputs: Vec<HeldOutputs>,
}

pub(super) struct Checkpoints {
    setup: CheckpointSetup,
    /// Barriers read per checkpoint.
    seen: BTreeMap<u64, u32>,
    /// The checkpoint to pass once the batch in hand is written.
    pub(super) due: Option<u64>,
    /// The last checkpoint passed.
    passed: u64,
    /// Positions of checkpoints passed, to commit once they are kept (sources).
    pending: VecDeque<(u64, Vec<Position>)>,
}

impl Checkpoints {
    pub(super) fn new(setup: CheckpointSetup) -> Self {
        let passed = *setup.link.resume.borrow();
        Self {
            setup,
            seen: BTreeMap::new(),
            due: None,
            passed,
            pending: VecDeque::new(),
        }
    }

    /// The task's number, also its name as a writer of barriers.
    pub(super) fn task(&self) -> usize {
        self.setup.task
    }

    /// The coordinator's requests, for a source task (none for the others).
    pub(super) fn trigger(&self) -> Option<watch::Receiver<u64>> {
        self.setup.source.then(|| self.setup.link.trigger.clone())
    }

    /// A source task was asked for `epoch`.
    pub(super) fn asked(&mut self, epoch: u64) {
        if epoch > self.passed {
            self.due = Some(epoch);
        }
    }

    /// Counts `barriers`; a checkpoint whose barriers have all arrived is due.
    pub(super) fn note(&mut self, barriers: &[Barrier]) {
        for barrier in barriers {
            let seen = self.seen.entry(barrier.epoch).or_default();
            *seen += 1;
            if *seen >= barrier.writers {
                self.seen.remove(&barrier.epoch);
                self.due = Some(barrier.epoch);
            }
        }
    }

    /// The saved state of node `node` for this task, if the pipeline started from a
    /// checkpoint that has one.
    pub(super) fn restored_state(&self, node: usize) -> Option<&[u8]> {
        let checkpoint = self.setup.restored.as_ref().as_ref()?;
        checkpoint
            .states
            .iter()
            .find(|s| s.node as usize == node && s.partition == self.setup.partition)
            .map(|s| s.bytes.as_slice())
    }

    /// The positions of the sources to start from, if the pipeline restarted from a
    /// checkpoint (source tasks).
    pub(super) fn restored_positions(&self, topic: &str) -> Vec<(u32, u64)> {
        match (self.setup.source, self.setup.restored.as_ref()) {
            (true, Some(checkpoint)) => checkpoint
                .sources
                .iter()
                .filter(|s| s.topic == topic)
                .map(|s| (s.partition, s.next_offset))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Passes the due checkpoint: reports `positions` (read from `topic`, for a source) and
    /// `states`, then, for a source, waits until every task has passed it (or the task must
    /// stop).
    pub(super) async fn pass(
        &mut self,
        epoch: u64,
        topic: &str,
        positions: &[Position],
        states: &mut [&mut dyn Snapshot],
        outputs: Vec<HeldOutputs>,
        mode: &mut watch::Receiver<Mode>,
    ) -> Result<(), PipelineError> {
        self.passed = epoch;
        let sources = self.sources(topic, positions);
        let report = Report::Passed {
            epoch,
            task: self.setup.task,
            sources,
            states: self.save(states)?,
            outputs,
        };
        // The coordinator is gone only once the pipeline stops: nothing to wait for then.
        let _ = self.setup.link.reports.send(report);
        if !self.setup.source {
            return Ok(());
        }
        self.pending.push_back((epoch, positions.to_vec()));
        let mut resume = self.setup.link.resume.clone();
        loop {
            if *resume.borrow_and_update() >= epoch || *mode.borrow() == Mode::Stop {
                return Ok(());
            }
            tokio::select! {
                changed = resume.changed() => if changed.is_err() { return Ok(()) },
                changed = mode.changed() => if changed.is_err() { return Ok(()) },
            }
        }
    }

    /// The positions of the newest kept checkpoint not committed yet (sources).
    pub(super) fn committable(&mut self) -> Option<Vec<Position>> {
        let durable = *self.setup.link.durable.borrow();
        let mut newest = None;
        while self
            .pending
            .front()
            .is_some_and(|(epoch, _)| *epoch <= durable)
        {
            newest = self.pending.pop_front().map(|(_, positions)| positions);
        }
        newest
    }

    /// Tells the coordinator the task ended: where it stopped, if it drained cleanly, and how
    /// to commit its sources there once the last checkpoint is kept.
    pub(super) fn end(
        &mut self,
        last: Option<Stopped<'_, '_>>,
        commit: Option<CommitLater>,
    ) -> Result<(), PipelineError> {
        let last = match last {
            Some(stopped) => Some((
                self.sources(stopped.topic, stopped.positions),
                self.save(stopped.states)?,
                stopped.outputs,
            )),
            None => None,
        };
        let _ = self.setup.link.reports.send(Report::Ended {
            task: self.setup.task,
            last,
            commit,
        });
        Ok(())
    }

    /// Whether the task reads a source.
    pub(super) fn is_source(&self) -> bool {
        self.setup.source
    }

    fn sources(&self, topic: &str, positions: &[Position]) -> Vec<SourcePosition> {
        if !self.setup.source {
            return Vec::new();
        }
        positions
            .iter()
            .map(|p| SourcePosition {
                topic: topic.to_owned(),
                partition: p.partition,
                next_offset: p.offset + 1,
            })
            .collect()
    }

    fn save(&self, states: &mut [&mut dyn Snapshot]) -> Result<Vec<SavedState>, PipelineError> {
        states
            .iter()
            .map(|state| {
                let mut bytes = Vec::new();
                state.save(&mut bytes).map_err(|e| StateError::State {
                    node: state.node().to_string(),
                    reason: e.to_string(),
                })?;
                Ok(SavedState {
                    node: state.node() as u32,
                    partition: self.setup.partition,
                    bytes,
                })
            })
            .collect()
    }
}
