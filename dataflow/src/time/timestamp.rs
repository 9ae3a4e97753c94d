//! Event time: [`Timestamp`]s on records and the [`Watermark`]s that say how far it has got.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in event time: milliseconds since the Unix epoch (1970-01-01T00:00:00Z), signed.
///
/// Milliseconds, as Kafka, Kafka Streams, Flink and Redis stream ids count them, so a
/// timestamp read from any of them, or from the epoch-millisecond fields most event formats
/// carry, converts exactly. Signed, so times before 1970 and the arithmetic of window starts
/// need no special cases. The embedded broker stamps records in nanoseconds;
/// [`Timestamp::from_unix_nanos`] truncates them, which keeps their order.
///
/// ```
/// use dataflow::time::Timestamp;
///
/// let t = Timestamp::from_millis(1_700_000_000_123);
/// assert_eq!(t.as_millis(), 1_700_000_000_123);
/// assert_eq!(Timestamp::from_unix_nanos(1_700_000_000_123_999_999), t);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest representable time.
    pub const MIN: Self = Self(i64::MIN);
    /// The latest representable time: the end of time, where [`Watermark::MAX`] stands.
    pub const MAX: Self = Self(i64::MAX);
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// The time `millis` milliseconds after the Unix epoch (before it if negative).
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// A broker append time (nanoseconds since the epoch), truncated to the millisecond.
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        // u64::MAX / 1e6 < i64::MAX: the cast cannot wrap.
        Self((nanos / 1_000_000) as i64)
    }

    /// A wall-clock time, truncated towards the past to the millisecond, saturating at the
    /// ends of the range.
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                let d = before.duration();
                // Truncating towards the past: 1.5 ms before the epoch is -2 ms.
                let whole = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                let partial = i64::from(!d.subsec_nanos().is_multiple_of(1_000_000));
                Self(whole.saturating_neg().saturating_sub(partial))
            }
        }
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// `self - d`, saturating at [`Timestamp::MIN`].
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(ms))
    }

    /// `self + ms` milliseconds, saturating at both ends.
    pub(crate) const fn plus(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `self - ms` milliseconds, saturating at both ends.
    pub(crate) const fn minus(self, ms: i64) -> Self {
        Self(self.0.saturating_sub(ms))
    }
}

/// How far event time has got: a watermark `w` says that every record stamped before `w` has
/// arrived.
///
/// A record stamped before the current watermark is *late*; whether it still counts depends
/// on the allowed lateness of the window or join that receives it (see [`Arrival`]). A window
/// `[start, end)` is complete once the watermark reaches `end`, and closes (its final result
/// goes out and its state is dropped) once it reaches `end + lateness`.
///
/// Watermarks never move backwards: every type of this module that holds one keeps the
/// largest it was given. [`Watermark::MIN`] is where a stream starts (nothing known yet),
/// [`Watermark::MAX`] where a finite one ends (every window closes).
///
/// [`Arrival`]: super::Arrival
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Watermark(Timestamp);

impl Watermark {
    /// Nothing known yet: no record is late.
    pub const MIN: Self = Self(Timestamp::MIN);
    /// The end of a finite stream: every record is late and every window closes.
    pub const MAX: Self = Self(Timestamp::MAX);

    /// The watermark that stands at `time`: records stamped before it are late.
    pub const fn new(time: Timestamp) -> Self {
        Self(time)
    }

    /// Where the watermark stands.
    pub const fn timestamp(self) -> Timestamp {
        self.0
    }

    /// Whether a record stamped `time` is behind this watermark.
    pub fn is_behind(self, time: Timestamp) -> bool {
        time < self.0
    }
}

impl Default for Watermark {
    /// [`Watermark::MIN`].
    fn default() -> Self {
        Self::MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_times_truncate_towards_the_past_on_both_sides_of_the_epoch() {
        let after = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(Timestamp::from_system_time(after).as_millis(), 1);
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(Timestamp::from_system_time(before).as_millis(), -2);
        let exactly = UNIX_EPOCH - Duration::from_millis(3);
        assert_eq!(Timestamp::from_system_time(exactly).as_millis(), -3);
    }

    #[test]
    fn nanosecond_append_times_keep_their_order_in_milliseconds() {
        let a = Timestamp::from_unix_nanos(1_999_999);
        let b = Timestamp::from_unix_nanos(2_000_000);
        assert_eq!((a.as_millis(), b.as_millis()), (1, 2));
        assert_eq!(
            Timestamp::from_unix_nanos(u64::MAX).as_millis(),
            18_446_744_073_709
        );
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(
            Timestamp::MAX.saturating_add(Duration::from_millis(1)),
            Timestamp::MAX
        );
        assert_eq!(
            Timestamp::MIN.saturating_sub(Duration::from_millis(1)),
            Timestamp::MIN
        );
        assert_eq!(Timestamp::MIN.minus(5), Timestamp::MIN);
        assert_eq!(Timestamp::from_millis(10).plus(-15).as_millis(), -5);
        assert_eq!(
            Timestamp::EPOCH.saturating_add(Duration::from_secs(u64::MAX)),
            Timestamp::MAX
        );
    }

    #[test]
    fn a_record_is_behind_a_watermark_only_if_stamped_before_it() {
        let w = Watermark::new(Timestamp::from_millis(100));
        assert!(w.is_behind(Timestamp::from_millis(99)));
        assert!(!w.is_behind(Timestamp::from_millis(100)));
        assert!(!Watermark::MIN.is_behind(Timestamp::MIN));
        assert!(Watermark::MAX.is_behind(Timestamp::from_millis(i64::MAX - 1)));
        assert_eq!(Watermark::default(), Watermark::MIN);
    }
}
