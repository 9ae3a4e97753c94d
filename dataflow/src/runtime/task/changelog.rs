//! Keyed state on Redis and Kafka: it follows a changelog kept on the backend, so that when a
//! partition moves to another process (or a task joins its group again after an outage), its
//! new owner continues the aggregates (Kafka Streams' model).
//!
//! - The segment's changelog (`{group prefix}.segment-N.changelog`) has the partitions of the
//!   segment's input; a key's changes go to its partition.
//! - Before a task commits its input, it appends, per partition, the keys its stages changed
//!   with their new values, then `Covers(offset)`: the last input record those changes cover.
//!   Commits follow outputs, and the changelog is one.
//! - When its assignment changes, the batch in hand waits: the task forgets the keys of the
//!   partitions it lost, and for each partition it gained appends a marker and replays the
//!   changelog from its start up to the marker. Only changes followed by their `Covers` are
//!   applied (a crash can leave a batch's changes without it: their input was not committed,
//!   and is read again). Input records up to the last `Covers` are then skipped: their changes
//!   are in the state already, so a crash between the changelog and the input's commit counts
//!   nothing twice.
//!
//! The changelog grows with every change (no compaction yet): a restore reads all of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::Position;
use serde::{Deserialize, Serialize};

use crate::backend::log::{Batch, From, LogTopic, LogWriter, Wait};
use crate::error::PipelineError;
use crate::runtime::checkpoint::error::StateError;
use crate::runtime::state::Snapshot;

/// What a changelog holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ChangelogRecord {
    /// A key of node `node` and its new value (or none: removed), encoded by the state.
    Change { node: u32, change: Vec<u8> },
    /// The changes since the previous `Covers` are those of the input records up to and
    /// including `offset` (of the same partition of the segment's input).
    Covers(u64),
    /// Written by a task about to restore: it has read everything once it reads this back.
    Marker(u64),
}

/// The changelog of a segment's keyed state.
#[derive(Clone)]
pub(crate) struct ChangelogSetup {
    pub(crate) topic: Arc<dyn LogTopic<ChangelogRecord>>,
    /// The partitions of the segment's input (and of the changelog).
    pub(crate) partitions: u32,
}

/// How long a restore may take before it fails.
const RESTORE_LIMIT: Duration = Duration::from_secs(120);

pub(super) struct Changelogs {
    setup: ChangelogSetup,
    writer: Option<Box<dyn LogWriter<ChangelogRecord>>>,
    /// The partitions whose state the task holds (`None` before its first assignment).
    owned: Option<Vec<u32>>,
    /// An assignment whose state is not restored yet: the batch in hand waits for it.
    pending: Option<Vec<u32>>,
    /// Per partition, the last input record whose changes the state holds from a restore:
    /// input up to it is skipped.
    pub(super) covered: Vec<Position>,
    changes: Vec<(u32, Vec<u8>)>,
    records: Vec<(u32, ChangelogRecord)>,
}

impl Changelogs {
    pub(super) fn new(setup: ChangelogSetup) -> Self {
        Self {
            setup,
            writer: None,
            owned: None,
            pending: None,
            covered: Vec::new(),
            changes: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Notes the reader's assignment after a read: `true` when the state must be restored
    /// before the batch in hand is processed.
    pub(super) fn note_assignment(&mut self, assignment: Option<Vec<u32>>) -> bool {
        let mut now = assignment.unwrap_or_default();
        now.sort_unstable();
        if self.owned.as_ref() == Some(&now) {
            return false;
        }
        self.pending = Some(now);
        true
    }

    /// Whether the input record at `position` is covered by the state restored already.
    #[inline]
    pub(super) fn covers(&self, position: Position) -> bool {
        self.covered
            .iter()
            .any(|c| c.partition == position.partition && position.offset <= c.offset)
    }

    /// Restores the pending assignment's state into `states`.
    pub(super) async fn restore(
        &mut self,
        states: &mut [&mut dyn Snapshot],
    ) -> Result<(), PipelineError> {
        let Some(now) = self.pending.take() else {
            return Ok(());
        };
        let before = self.owned.take().unwrap_or_default();
        for state in states.iter_mut() {
            state.track_changes();
            state.keep_partitions(&now, self.setup.partitions);
        }
        self.covered.retain(|c| now.contains(&c.partition));
        for &partition in now.iter().filter(|p| !before.contains(p)) {
            if let Some(offset) = self.replay(partition, states).await? {
                self.covered.push(Position { partition, offset });
            }
        }
        self.owned = Some(now);
        Ok(())
    }

    /// Appends the changes of `states`, and what input they cover (`processed`: the last
    /// record processed in each partition), to the changelog.
    pub(super) async fn write(
        &mut self,
        states: &mut [&mut dyn Snapshot],
        processed: &[Position],
    ) -> Result<(), PipelineError> {
        self.records.clear();
        for state in states.iter_mut() {
            self.changes.clear();
            state
                .take_changes(self.setup.partitions, &mut self.changes)
                .map_err(|e| StateError::State {
                    node: state.node().to_string(),
                    reason: e.to_string(),
                })?;
            let node = state.node() as u32;
            self.records.extend(
                self.changes.drain(..).map(|(partition, change)| {
                    (partition, ChangelogRecord::Change { node, change })
                }),
            );
        }
        if self.records.is_empty() {
            return Ok(());
        }
        for position in processed {
            self.records
                .push((position.partition, ChangelogRecord::Covers(position.offset)));
        }
        // Stable: each partition's changes, then its `Covers`.
        self.records.sort_by_key(|(partition, _)| *partition);
        let records = std::mem::take(&mut self.records);
        let writer = self.writer().await?;
        let mut run = Vec::new();
        let mut records = records.into_iter().peekable();
        while let Some((partition, record)) = records.next() {
            run.push(record);
            if records.peek().is_none_or(|(next, _)| *next != partition) {
                writer.append(partition, &mut run, None).await?;
            }
        }
        Ok(())
    }

    async fn writer(&mut self) -> Result<&mut Box<dyn LogWriter<ChangelogRecord>>, PipelineError> {
        if self.writer.is_none() {
            self.writer = Some(self.setup.topic.writer().await?);
        }
        Ok(self.writer.as_mut().expect("just made"))
    }

    /// Replays changelog partition `partition` into `states`, up to a marker appended now;
    /// returns the last input record the replayed changes cover.
    async fn replay(
        &mut self,
        partition: u32,
        states: &mut [&mut dyn Snapshot],
    ) -> Result<Option<u64>, PipelineError> {
        let marker = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(partition) << 48);
        let mut mark = vec![ChangelogRecord::Marker(marker)];
        self.writer()
            .await?
            .append(partition, &mut mark, None)
            .await?;
        let topic = Arc::clone(&self.setup.topic);
        let fail = |reason: String| StateError::State {
            node: format!("{} (partition {partition})", topic.name()),
            reason,
        };
        let reading = topic
            .partition_reader(partition, From::Start)
            .ok_or_else(|| fail("the backend cannot read its changelog".to_owned()))?;
        let mut reader = reading.await?;
        let mut batch = Batch::default();
        // Changes not yet followed by their `Covers`.
        let mut uncovered: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut covered = None;
        let deadline = Instant::now() + RESTORE_LIMIT;
        loop {
            if Instant::now() > deadline {
                return Err(fail(format!("not read to its end within {RESTORE_LIMIT:?}")).into());
            }
            batch.clear();
            reader.read(4096, Wait::Briefly, &mut batch).await?;
            for entry in batch.records.drain(..) {
                match entry.value {
                    ChangelogRecord::Change { node, change } => uncovered.push((node, change)),
                    ChangelogRecord::Covers(offset) => {
                        for (node, change) in uncovered.drain(..) {
                            if let Some(state) = states.iter_mut().find(|s| s.node() as u32 == node)
                            {
                                state
                                    .apply_change(&change)
                                    .map_err(|e| fail(e.to_string()))?;
                            }
                        }
                        covered = Some(offset);
                    }
                    ChangelogRecord::Marker(seen) if seen == marker => return Ok(covered),
                    ChangelogRecord::Marker(_) => {}
                }
            }
        }
    }
}
