//! The watermark of one source partition: bounded out-of-orderness.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{TimeError, millis};
use super::timestamp::{Timestamp, Watermark};

/// Watermarks for one partition whose records arrive at most `bound` out of order: the
/// watermark is the largest timestamp seen minus `bound` (Flink's
/// `BoundedOutOfOrdernessWatermarks`, the Dataflow model's heuristic watermark).
///
/// A record up to `bound` older than the newest one seen is still on time; an older one is
/// late. The watermark starts at [`Watermark::MIN`] and never moves backwards, since the
/// largest timestamp seen never does. The generator is plain data: a checkpoint copies it
/// with serde, so a restarted partition goes on from the same watermark.
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{BoundedOutOfOrderness, Timestamp, Watermark};
///
/// let mut partition = BoundedOutOfOrderness::new(Duration::from_secs(5))?;
/// assert_eq!(partition.watermark(), Watermark::MIN);
/// partition.observe(Timestamp::from_millis(60_000));
/// partition.observe(Timestamp::from_millis(58_000)); // 2 s out of order: no effect
/// assert_eq!(partition.watermark(), Watermark::new(Timestamp::from_millis(55_000)));
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundedOutOfOrderness {
    /// The bound, in milliseconds (at least 0).
    bound: i64,
    /// The largest timestamp seen, if any.
    max_seen: Option<Timestamp>,
}

impl BoundedOutOfOrderness {
    /// A generator for records at most `bound` out of order (a whole number of milliseconds;
    /// zero for records in order).
    pub fn new(bound: Duration) -> Result<Self, TimeError> {
        Ok(Self {
            bound: millis("out-of-orderness bound", bound, false)?,
            max_seen: None,
        })
    }

    /// A generator of `bound` milliseconds, already checked.
    pub(crate) fn with_bound(bound: i64) -> Self {
        Self {
            bound,
            max_seen: None,
        }
    }

    /// Takes a record's timestamp into account; returns the watermark after it.
    #[inline]
    pub fn observe(&mut self, time: Timestamp) -> Watermark {
        if self.max_seen.is_none_or(|max| time > max) {
            self.max_seen = Some(time);
        }
        self.watermark()
    }

    /// The current watermark: the largest timestamp seen minus the bound, or
    /// [`Watermark::MIN`] before the first record.
    #[inline]
    pub fn watermark(&self) -> Watermark {
        match self.max_seen {
            Some(max) => Watermark::new(max.minus(self.bound)),
            None => Watermark::MIN,
        }
    }

    /// The largest timestamp seen so far.
    pub fn max_seen(&self) -> Option<Timestamp> {
        self.max_seen
    }

    /// Puts the generator back where a checkpoint left it.
    pub(crate) fn reset(&mut self, max_seen: Option<Timestamp>) {
        self.max_seen = max_seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn the_watermark_trails_the_largest_timestamp_by_the_bound_and_never_goes_back() {
        let mut g = BoundedOutOfOrderness::new(Duration::from_millis(10)).expect("valid");
        assert_eq!(g.watermark(), Watermark::MIN);
        assert_eq!(g.observe(at(100)), Watermark::new(at(90)));
        assert_eq!(g.observe(at(50)), Watermark::new(at(90)));
        assert_eq!(g.observe(at(95)), Watermark::new(at(90)));
        assert_eq!(g.observe(at(130)), Watermark::new(at(120)));
        assert_eq!(g.max_seen(), Some(at(130)));
    }

    #[test]
    fn a_zero_bound_puts_the_watermark_at_the_newest_record() {
        let mut g = BoundedOutOfOrderness::new(Duration::ZERO).expect("valid");
        let w = g.observe(at(7));
        assert!(
            !w.is_behind(at(7)),
            "a tie with the newest record is on time"
        );
        assert!(w.is_behind(at(6)));
    }

    #[test]
    fn the_watermark_saturates_at_the_start_of_time() {
        let mut g = BoundedOutOfOrderness::new(Duration::from_millis(10)).expect("valid");
        assert_eq!(g.observe(Timestamp::MIN), Watermark::MIN);
    }

    #[test]
    fn a_sub_millisecond_bound_is_refused() {
        assert!(BoundedOutOfOrderness::new(Duration::from_micros(10)).is_err());
    }
}
