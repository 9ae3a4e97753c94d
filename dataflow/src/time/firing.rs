//! When a window's result goes out: once, final, when the watermark passes its end plus the
//! allowed lateness; and, if asked, early results before that.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{TimeError, millis};
use super::timestamp::Watermark;
use super::window::Window;

/// One result of a window: the key, the window's bounds and the aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowResult<K, V> {
    /// The key.
    pub key: K,
    /// The window (for a session, its bounds when the result went out).
    pub window: Window,
    /// The aggregate of the window's records so far.
    pub value: V,
    /// Whether more results of this window may follow.
    pub firing: Firing,
}

/// Whether a [`WindowResult`] is the window's last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Firing {
    /// A partial result: the window is still open, and a later result (at least the final
    /// one) supersedes it. For session windows, a later session may also absorb this one.
    Early,
    /// The window closed: the watermark passed its end plus the allowed lateness, and its
    /// state is gone. Exactly one per window.
    Final,
}

/// When a window sends partial results before its final one. Never, by default.
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::EarlyFiring;
///
/// let _ = EarlyFiring::never();
/// let _ = EarlyFiring::every_update();
/// let _ = EarlyFiring::every_updates(100)?;
/// let _ = EarlyFiring::every_event_time(Duration::from_secs(10))?;
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EarlyFiring(Early);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Early {
    #[default]
    Never,
    /// After this many updates of a window since its last result.
    Updates(u64),
    /// When the watermark crosses a multiple of this many milliseconds.
    EventTime(i64),
}

impl EarlyFiring {
    /// Only the final result.
    pub const fn never() -> Self {
        Self(Early::Never)
    }

    /// A result after every record a window takes in.
    pub const fn every_update() -> Self {
        Self(Early::Updates(1))
    }

    /// A result after every `n` records a window takes in (counted since its last result; a
    /// session merge adds the counts).
    pub fn every_updates(n: u64) -> Result<Self, TimeError> {
        if n == 0 {
            return Err(TimeError::ZeroUpdates);
        }
        Ok(Self(Early::Updates(n)))
    }

    /// Whenever the watermark crosses a multiple of `period` (since the epoch), a result from
    /// every open window updated since its last one (Flink's continuous event-time trigger).
    /// Each crossing scans the open windows once.
    pub fn every_event_time(period: Duration) -> Result<Self, TimeError> {
        Ok(Self(Early::EventTime(millis(
            "early firing period",
            period,
            true,
        )?)))
    }

    /// Whether a window updated `pending` times since its last result sends one now.
    #[inline]
    pub(crate) fn after_update(self, pending: u64) -> bool {
        matches!(self.0, Early::Updates(n) if pending >= n)
    }

    /// Whether the watermark's move from `old` to `new` crossed a period.
    pub(crate) fn period_crossed(self, old: Watermark, new: Watermark) -> bool {
        match self.0 {
            Early::EventTime(period) => {
                let old = old.timestamp().as_millis().div_euclid(period);
                let new = new.timestamp().as_millis().div_euclid(period);
                new > old
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn wm(ms: i64) -> Watermark {
        Watermark::new(Timestamp::from_millis(ms))
    }

    #[test]
    fn update_counts_fire_at_their_multiple() {
        let every3 = EarlyFiring::every_updates(3).expect("valid");
        assert!(!every3.after_update(2));
        assert!(every3.after_update(3));
        assert!(EarlyFiring::every_update().after_update(1));
        assert!(!EarlyFiring::never().after_update(1_000));
        assert_eq!(EarlyFiring::every_updates(0), Err(TimeError::ZeroUpdates));
    }

    #[test]
    fn periods_fire_when_the_watermark_crosses_a_multiple() {
        let every10 = EarlyFiring::every_event_time(Duration::from_millis(10)).expect("valid");
        assert!(!every10.period_crossed(wm(10), wm(19)));
        assert!(every10.period_crossed(wm(19), wm(20)));
        assert!(every10.period_crossed(wm(-1), wm(0)));
        assert!(every10.period_crossed(Watermark::MIN, wm(0)));
        assert!(!EarlyFiring::every_update().period_crossed(wm(0), wm(100)));
    }
}
