//! The watermark of a source task: a bounded out-of-orderness generator per partition it
//! reads, combined by a [`WatermarkTracker`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::{TimeError, millis};
use super::generator::BoundedOutOfOrderness;
use super::operator::Checkpointed;
use super::snapshot;
use super::timestamp::{Timestamp, Watermark};
use super::tracker::WatermarkTracker;
use crate::codec::CodecError;

/// Watermarks of a task reading source partitions: each partition has its own
/// [`BoundedOutOfOrderness`] generator (records are ordered, if at all, only within a
/// partition), and the task's watermark is the minimum over the partitions that are not idle.
///
/// Partitions are named by their number in the topic. The set may change (a consumer group
/// rebalances): [`assign`](Self::assign) keeps the generators of the partitions the task
/// keeps; a record from a partition not assigned yet assigns it.
///
/// Per record, [`observe`](Self::observe); per batch, or on a timer when nothing arrives,
/// [`tick`](Self::tick) with the current instant, which returns the task's new watermark when
/// it moved.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dataflow::time::{SourceWatermarks, Timestamp, Watermark};
///
/// let mut source = SourceWatermarks::new([0, 1], Duration::from_millis(100))?
///     .with_idle_timeout(Duration::from_secs(30));
/// let now = Instant::now();
/// source.observe(0, Timestamp::from_millis(1_000));
/// source.observe(1, Timestamp::from_millis(700));
/// assert_eq!(source.tick(now), Some(Watermark::new(Timestamp::from_millis(600))));
///
/// // Partition 1 goes quiet: after 30 s it no longer holds the watermark back.
/// source.observe(0, Timestamp::from_millis(5_000));
/// let later = now + Duration::from_secs(30);
/// assert_eq!(source.tick(later), Some(Watermark::new(Timestamp::from_millis(4_900))));
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SourceWatermarks {
    /// The out-of-orderness bound, in milliseconds.
    bound: i64,
    /// The partitions read, in the order of the tracker's inputs.
    partitions: Vec<u32>,
    /// Their generators, in the same order.
    generators: Vec<BoundedOutOfOrderness>,
    tracker: WatermarkTracker,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    partitions: Vec<(u32, Option<Timestamp>)>,
    current: Watermark,
}

impl SourceWatermarks {
    /// Watermarks for `partitions` whose records arrive at most `bound` out of order, each.
    pub fn new(
        partitions: impl IntoIterator<Item = u32>,
        bound: Duration,
    ) -> Result<Self, TimeError> {
        let mut source = Self {
            bound: millis("out-of-orderness bound", bound, false)?,
            partitions: Vec::new(),
            generators: Vec::new(),
            tracker: WatermarkTracker::new(0),
        };
        source.assign(partitions);
        Ok(source)
    }

    /// Leaves a partition out of the minimum once it has had no record for `timeout`.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.tracker = self.tracker.with_idle_timeout(timeout);
        self
    }

    /// The task now reads `partitions`: the ones it keeps keep their generators, new ones
    /// start at [`Watermark::MIN`], the others are forgotten. The task's watermark does not
    /// go back.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = u32>) {
        let wanted: Vec<u32> = partitions.into_iter().collect();
        for at in (0..self.partitions.len()).rev() {
            if !wanted.contains(&self.partitions[at]) {
                self.partitions.remove(at);
                self.generators.remove(at);
                self.tracker.remove_input(at);
            }
        }
        for partition in wanted {
            self.index(partition);
        }
    }

    /// The index of `partition`, assigning it if needed.
    fn index(&mut self, partition: u32) -> usize {
        if let Some(at) = self.partitions.iter().position(|&p| p == partition) {
            return at;
        }
        self.partitions.push(partition);
        self.generators
            .push(BoundedOutOfOrderness::with_bound(self.bound));
        self.tracker.add_input()
    }

    /// A record stamped `time` was read from `partition`. Takes effect at the next
    /// [`tick`](Self::tick).
    #[inline]
    pub fn observe(&mut self, partition: u32, time: Timestamp) {
        let at = self.index(partition);
        let watermark = self.generators[at].observe(time);
        self.tracker.observe(at, watermark);
    }

    /// Settles idleness as of `now`; returns the task's watermark if it moved forward.
    pub fn tick(&mut self, now: Instant) -> Option<Watermark> {
        self.tracker.tick(now)
    }

    /// The task's watermark as of the last [`tick`](Self::tick).
    pub fn watermark(&self) -> Watermark {
        self.tracker.watermark()
    }

    /// Whether every partition the task reads was idle at the last [`tick`](Self::tick): the
    /// task should tell the tasks downstream (see [`WatermarkTracker::mark_idle`]).
    pub fn all_idle(&self) -> bool {
        self.tracker.all_idle()
    }

    /// The partitions the task reads.
    pub fn partitions(&self) -> &[u32] {
        &self.partitions
    }

    /// The watermark of `partition`, if the task reads it.
    pub fn partition_watermark(&self, partition: u32) -> Option<Watermark> {
        let at = self.partitions.iter().position(|&p| p == partition)?;
        Some(self.generators[at].watermark())
    }

    /// Whether `partition` was idle at the last [`tick`](Self::tick) (`false` if the task does
    /// not read it).
    pub fn is_idle(&self, partition: u32) -> bool {
        self.partitions
            .iter()
            .position(|&p| p == partition)
            .is_some_and(|at| self.tracker.is_idle(at))
    }
}

impl Checkpointed for SourceWatermarks {
    /// Encodes every partition's generator and the task's watermark into `out`.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let saved = Saved {
            partitions: self
                .partitions
                .iter()
                .zip(&self.generators)
                .map(|(&p, g)| (p, g.max_seen()))
                .collect(),
            current: self.watermark(),
        };
        snapshot::save(&saved, out)
    }

    /// Puts back the generators of the partitions the task reads (others start at
    /// [`Watermark::MIN`]; saved ones it no longer reads are forgotten) and the task's
    /// watermark.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let saved: Saved = snapshot::restore(bytes)?;
        let mut inputs = Vec::with_capacity(self.partitions.len());
        for (partition, generator) in self.partitions.iter().zip(&mut self.generators) {
            let max_seen = saved
                .partitions
                .iter()
                .find(|(p, _)| p == partition)
                .and_then(|&(_, max_seen)| max_seen);
            generator.reset(max_seen);
            inputs.push(generator.watermark());
        }
        self.tracker.reset(inputs, saved.current);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn wm(ms: i64) -> Watermark {
        Watermark::new(at(ms))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn each_partition_has_its_own_bound_and_the_slowest_sets_the_watermark() {
        let now = Instant::now();
        let mut s = SourceWatermarks::new([0, 1], ms(10)).expect("valid");
        s.observe(0, at(100));
        s.observe(1, at(300));
        // A record out of order in partition 1 does not lower it.
        s.observe(1, at(50));
        assert_eq!(s.tick(now), Some(wm(90)));
        assert_eq!(s.partition_watermark(1), Some(wm(290)));
        s.observe(0, at(400));
        assert_eq!(s.tick(now), Some(wm(290)));
    }

    #[test]
    fn a_rebalance_keeps_the_partitions_kept_and_never_moves_the_watermark_back() {
        let now = Instant::now();
        let mut s = SourceWatermarks::new([3, 5], ms(0)).expect("valid");
        s.observe(3, at(100));
        s.observe(5, at(200));
        assert_eq!(s.tick(now), Some(wm(100)));
        s.assign([5, 7]);
        assert_eq!(s.partitions(), [5, 7]);
        assert_eq!(s.partition_watermark(5), Some(wm(200)));
        assert_eq!(s.partition_watermark(3), None);
        assert_eq!(s.tick(now), None, "7 has said nothing yet");
        s.observe(7, at(50));
        assert_eq!(s.tick(now), None);
        assert_eq!(s.watermark(), wm(100));
        // A record from a partition not assigned assigns it.
        s.observe(9, at(500));
        s.observe(7, at(600));
        assert_eq!(s.partitions(), [5, 7, 9]);
        assert_eq!(s.tick(now), Some(wm(200)));
    }

    #[test]
    fn a_restored_source_goes_on_from_the_same_watermarks() {
        let now = Instant::now();
        let mut s = SourceWatermarks::new([0, 1], ms(10)).expect("valid");
        s.observe(0, at(100));
        s.observe(1, at(200));
        s.tick(now);
        let mut bytes = Vec::new();
        s.save(&mut bytes).expect("encodes");

        let mut back = SourceWatermarks::new([0, 1], ms(10)).expect("valid");
        back.restore(&bytes).expect("decodes");
        assert_eq!(back.watermark(), wm(90));
        // A replayed older record moves nothing; a newer one moves partition 0 on from 100.
        back.observe(0, at(60));
        assert_eq!(back.tick(now), None);
        back.observe(0, at(150));
        assert_eq!(back.tick(now), Some(wm(140)));

        // Restored into a task that now reads partitions 1 and 2 only.
        let mut moved = SourceWatermarks::new([1, 2], ms(10)).expect("valid");
        moved.restore(&bytes).expect("decodes");
        assert_eq!(moved.partition_watermark(1), Some(wm(190)));
        assert_eq!(moved.partition_watermark(2), Some(Watermark::MIN));
        assert_eq!(moved.watermark(), wm(90));
        assert!(moved.restore(b"\\xff").is_err());
    }
}
