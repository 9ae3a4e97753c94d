//! Why a time setting (a window size, a lateness, a bound) was refused.

use std::time::Duration;

/// A duration given to a watermark generator, a window or a join that it cannot use.
///
/// Event time is counted in whole milliseconds ([`Timestamp`](super::Timestamp)), so every
/// duration must be a whole number of milliseconds; sizes, slides and gaps must be at least
/// one millisecond.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The duration is zero where a positive one is needed.
    #[error("{what} must be at least 1 ms, got {got:?}")]
    Zero {
        /// What the duration is for (`"window size"`, `"session gap"`, ...).
        what: &'static str,
        /// The duration given.
        got: Duration,
    },
    /// The duration has a part smaller than a millisecond.
    #[error("{what} must be a whole number of milliseconds, got {got:?}")]
    NotWholeMillis {
        /// What the duration is for.
        what: &'static str,
        /// The duration given.
        got: Duration,
    },
    /// The duration does not fit event time's range (`i64::MAX` milliseconds).
    #[error(
        "{what} is longer than event time's range of {} ms, got {got:?}",
        i64::MAX
    )]
    TooLong {
        /// What the duration is for.
        what: &'static str,
        /// The duration given.
        got: Duration,
    },
    /// A hopping window's slide is longer than its size: records between two windows would
    /// belong to none.
    #[error(
        "hopping window slide {slide:?} is longer than its size {size:?}: records between windows would belong to none"
    )]
    SlideLongerThanSize {
        /// The window size.
        size: Duration,
        /// The slide.
        slide: Duration,
    },
    /// An early firing every `n` updates with `n == 0`.
    #[error("early firing every 0 updates: use `EarlyFiring::every_update()` for every update")]
    ZeroUpdates,
}

/// `d` in whole milliseconds, or why it is not usable; `positive` refuses zero.
pub(crate) fn millis(what: &'static str, d: Duration, positive: bool) -> Result<i64, TimeError> {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(TimeError::NotWholeMillis { what, got: d });
    }
    let ms = i64::try_from(d.as_millis()).map_err(|_| TimeError::TooLong { what, got: d })?;
    if positive && ms == 0 {
        return Err(TimeError::Zero { what, got: d });
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_milliseconds_convert_and_the_rest_is_refused_by_name() {
        assert_eq!(millis("x", Duration::from_secs(2), true), Ok(2000));
        assert_eq!(millis("lateness", Duration::ZERO, false), Ok(0));
        let zero = millis("window size", Duration::ZERO, true).unwrap_err();
        assert_eq!(
            zero.to_string(),
            "window size must be at least 1 ms, got 0ns"
        );
        let sub = millis("session gap", Duration::from_micros(1500), true).unwrap_err();
        assert_eq!(
            sub.to_string(),
            "session gap must be a whole number of milliseconds, got 1.5ms"
        );
        assert!(matches!(
            millis("bound", Duration::MAX, false),
            Err(TimeError::NotWholeMillis { .. })
        ));
        assert!(matches!(
            millis("bound", Duration::from_secs(u64::MAX), false),
            Err(TimeError::TooLong { .. })
        ));
    }
}
