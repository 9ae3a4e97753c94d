//! The watermark of a source task: a bounded out-of-orderness generator per partition it
//! reads, combined by a [`WatermarkTracker`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::TimeError;
use super::generator::BoundedOutOfOrderness;
use super::operator::Checkpointed;
use super::snapshot;
use super::timestamp::{Timestamp, Watermark};
use super::tracker::WatermarkTracker;
use crate::codec::CodecError;

/// Watermarks of a task reading `partitions` source partitions: each partition has its own
/// [`BoundedOutOfOrderness`] generator (records are ordered, if at all, only within a
/// partition), and the task's watermark is the minimum over the partitions that are not idle.
///
/// Per record, [`observe`](Self::observe) (constant time); per batch, or on a timer when
/// nothing arrives, [`tick`](Self::tick) with the current instant, which returns the task's
/// new watermark when it moved.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dataflow::time::{SourceWatermarks, Timestamp, Watermark};
///
/// let mut source = SourceWatermarks::new(2, Duration::from_millis(100))?
///     .with_idle_timeout(Duration::from_secs(30));
/// let now = Instant::now();
/// source.observe(0, Timestamp::from_millis(1_000));
/// source.observe(1, Timestamp::from_millis(700));
/// assert_eq!(source.tick(now), Some(Watermark::new(Timestamp::from_millis(600))));
///
/// // Partition 1 goes quiet: after 30 s it no longer holds the watermark back.
/// source.observe(0, Timestamp::from_millis(5_000));
/// assert_eq!(source.tick(now + Duration::from_secs(30)), Some(Watermark::new(Timestamp::from_millis(4_900))));
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SourceWatermarks {
    partitions: Vec<BoundedOutOfOrderness>,
    tracker: WatermarkTracker,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    max_seen: Vec<Option<Timestamp>>,
    tracker: Vec<u8>,
}

impl SourceWatermarks {
    /// Watermarks for `partitions` partitions whose records arrive at most `bound` out of
    /// order, each.
    pub fn new(partitions: usize, bound: Duration) -> Result<Self, TimeError> {
        let generator = BoundedOutOfOrderness::new(bound)?;
        Ok(Self {
            partitions: vec![generator; partitions],
            tracker: WatermarkTracker::new(partitions),
        })
    }

    /// Leaves a partition out of the minimum once it has had no record for `timeout`.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.tracker = self.tracker.with_idle_timeout(timeout);
        self
    }

    /// A record stamped `time` was read from `partition`. Takes effect at the next
    /// [`tick`](Self::tick).
    ///
    /// # Panics
    ///
    /// If `partition` is not below the number of partitions.
    #[inline]
    pub fn observe(&mut self, partition: usize, time: Timestamp) {
        let watermark = self.partitions[partition].observe(time);
        self.tracker.observe(partition, watermark);
    }

    /// Settles idleness as of `now`; returns the task's watermark if it moved forward.
    pub fn tick(&mut self, now: Instant) -> Option<Watermark> {
        self.tracker.tick(now)
    }

    /// The task's watermark as of the last [`tick`](Self::tick).
    pub fn watermark(&self) -> Watermark {
        self.tracker.watermark()
    }

    /// The watermark of one partition.
    ///
    /// # Panics
    ///
    /// If `partition` is not below the number of partitions.
    pub fn partition_watermark(&self, partition: usize) -> Watermark {
        self.partitions[partition].watermark()
    }

    /// Whether `partition` was idle at the last [`tick`](Self::tick).
    ///
    /// # Panics
    ///
    /// If `partition` is not below the number of partitions.
    pub fn is_idle(&self, partition: usize) -> bool {
        self.tracker.is_idle(partition)
    }
}

impl Checkpointed for SourceWatermarks {
    /// Encodes every partition's generator and the task's watermark into `out`.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut tracker = Vec::new();
        self.tracker.save(&mut tracker)?;
        let saved = Saved {
            max_seen: self.partitions.iter().map(|g| g.max_seen()).collect(),
            tracker,
        };
        snapshot::save(&saved, out)
    }

    /// Replaces the state with what [`save`](Self::save) wrote. Refuses one saved with
    /// another number of partitions.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let saved: Saved = snapshot::restore(bytes)?;
        if saved.max_seen.len() != self.partitions.len() {
            return Err(snapshot::mismatch(format!(
                "the saved watermarks are of {} partitions, this task reads {}",
                saved.max_seen.len(),
                self.partitions.len()
            )));
        }
        self.tracker.restore(&saved.tracker)?;
        for (generator, max_seen) in self.partitions.iter_mut().zip(saved.max_seen) {
            generator.reset(max_seen);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn each_partition_has_its_own_bound_and_the_slowest_sets_the_watermark() {
        let now = Instant::now();
        let mut s = SourceWatermarks::new(2, Duration::from_millis(10)).expect("valid");
        s.observe(0, at(100));
        s.observe(1, at(300));
        // A record out of order in partition 1 does not lower it.
        s.observe(1, at(50));
        assert_eq!(s.tick(now), Some(Watermark::new(at(90))));
        assert_eq!(s.partition_watermark(1), Watermark::new(at(290)));
        s.observe(0, at(400));
        assert_eq!(s.tick(now), Some(Watermark::new(at(290))));
    }

    #[test]
    fn a_restored_source_goes_on_from_the_same_watermarks() {
        let now = Instant::now();
        let mut s = SourceWatermarks::new(2, Duration::from_millis(10)).expect("valid");
        s.observe(0, at(100));
        s.observe(1, at(200));
        s.tick(now);
        let mut bytes = Vec::new();
        s.save(&mut bytes).expect("encodes");

        let mut back = SourceWatermarks::new(2, Duration::from_millis(10)).expect("valid");
        back.restore(&bytes).expect("decodes");
        assert_eq!(back.watermark(), Watermark::new(at(90)));
        // A replayed older record moves nothing; a newer one moves partition 0 on from 100.
        back.observe(0, at(60));
        assert_eq!(back.tick(now), None);
        back.observe(0, at(150));
        assert_eq!(back.tick(now), Some(Watermark::new(at(140))));

        let mut other = SourceWatermarks::new(3, Duration::from_millis(10)).expect("valid");
        assert!(other.restore(&bytes).is_err());
    }
}
