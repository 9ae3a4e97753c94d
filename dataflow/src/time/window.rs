//! Windows and the assigners that put a record's timestamp into them: tumbling, hopping and
//! session windows.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{TimeError, millis};
use super::timestamp::Timestamp;

/// A window of event time, `[start, end)`: it holds the records stamped at or after `start`
/// and before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// The first instant in the window.
    pub start: Timestamp,
    /// The first instant after the window.
    pub end: Timestamp,
}

impl Window {
    /// The window `[start, end)`.
    pub const fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    /// Whether a record stamped `time` falls in the window.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start <= time && time < self.end
    }

    /// Whether the two windows share an instant.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The smallest window that covers both.
    pub fn cover(&self, other: &Window) -> Window {
        Window::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Puts a timestamp into the windows that contain it, for windows that never merge (tumbling,
/// hopping, or your own, such as calendar months).
pub trait WindowAssigner {
    /// The windows of one timestamp.
    type Windows: Iterator<Item = Window>;

    /// The windows that contain `time`, in order of their end.
    fn assign(&self, time: Timestamp) -> Self::Windows;
}

/// Tumbling windows: consecutive windows of one size, aligned to the Unix epoch, each record
/// in exactly one.
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{Timestamp, Tumbling, Window, WindowAssigner};
///
/// let minutes = Tumbling::new(Duration::from_secs(60))?;
/// let at = |ms| Timestamp::from_millis(ms);
/// let windows: Vec<Window> = minutes.assign(at(150_000)).collect();
/// assert_eq!(windows, [Window::new(at(120_000), at(180_000))]);
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    size: i64,
}

impl Tumbling {
    /// Windows of `size` (at least 1 ms, in whole milliseconds).
    pub fn new(size: Duration) -> Result<Self, TimeError> {
        Ok(Self {
            size: millis("window size", size, true)?,
        })
    }

    /// The window size, in milliseconds.
    pub fn size_millis(&self) -> i64 {
        self.size
    }
}

impl WindowAssigner for Tumbling {
    type Windows = Aligned;

    #[inline]
    fn assign(&self, time: Timestamp) -> Aligned {
        Aligned::new(time, self.size, self.size)
    }
}

/// Hopping (sliding) windows: windows of one size starting every `slide`, aligned to the Unix
/// epoch, each record in `ceil(size / slide)` of them (Kafka Streams' hopping windows,
/// Flink's sliding windows).
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{Hopping, Timestamp, Window, WindowAssigner};
///
/// let hopping = Hopping::new(Duration::from_secs(60), Duration::from_secs(20))?;
/// let at = |s: i64| Timestamp::from_millis(s * 1000);
/// let windows: Vec<Window> = hopping.assign(at(65)).collect();
/// assert_eq!(windows, [
///     Window::new(at(20), at(80)),
///     Window::new(at(40), at(100)),
///     Window::new(at(60), at(120)),
/// ]);
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hopping {
    size: i64,
    slide: i64,
}

impl Hopping {
    /// Windows of `size` every `slide` (both at least 1 ms, in whole milliseconds, and the
    /// slide no longer than the size, so that every record is in a window).
    pub fn new(size: Duration, slide: Duration) -> Result<Self, TimeError> {
        let size_ms = millis("window size", size, true)?;
        let slide_ms = millis("window slide", slide, true)?;
        if slide_ms > size_ms {
            return Err(TimeError::SlideLongerThanSize { size, slide });
        }
        Ok(Self {
            size: size_ms,
            slide: slide_ms,
        })
    }

    /// The window size, in milliseconds.
    pub fn size_millis(&self) -> i64 {
        self.size
    }

    /// The slide, in milliseconds.
    pub fn slide_millis(&self) -> i64 {
        self.slide
    }
}

impl WindowAssigner for Hopping {
    type Windows = Aligned;

    #[inline]
    fn assign(&self, time: Timestamp) -> Aligned {
        Aligned::new(time, self.size, self.slide)
    }
}

/// The windows of one timestamp among windows of one size every `slide`, aligned to the
/// epoch: an arithmetic sequence. Bounds that do not fit event time's range are clipped to it.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// The next window's start, unclipped (i128: it may lie outside `i64`).
    start: i128,
    remaining: u64,
    size: i64,
    slide: i64,
}

impl Aligned {
    fn new(time: Timestamp, size: i64, slide: i64) -> Self {
        let t = i128::from(time.as_millis());
        let (size_w, slide_w) = (i128::from(size), i128::from(slide));
        let last = t - t.rem_euclid(slide_w);
        // Starts `last - j * slide` with `start + size > t`: `span / slide` of them, rounded
        // up; `span` is in `1..=size` because `t - last < slide <= size`.
        let span = last - t + size_w;
        let count = (span + slide_w - 1) / slide_w;
        Self {
            start: last - (count - 1) * slide_w,
            remaining: count as u64,
            size,
            slide,
        }
    }
}

fn clip(ms: i128) -> Timestamp {
    Timestamp::from_millis(ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

impl Iterator for Aligned {
    type Item = Window;

    #[inline]
    fn next(&mut self) -> Option<Window> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let start = self.start;
        self.start += i128::from(self.slide);
        Some(Window::new(
            clip(start),
            clip(start + i128::from(self.size)),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Aligned {}

/// Session windows: a key's records closer together than `gap` share a window, which ends
/// `gap` after its last record. A record `gap` or more after the previous one starts a new
/// session; a record that falls between two sessions merges them.
///
/// Sessions merge, so their accumulators must too: session windows take a
/// [`SessionAggregator`](super::SessionAggregator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    gap: i64,
}

impl Session {
    /// Sessions that end after `gap` without a record (at least 1 ms, in whole milliseconds).
    pub fn new(gap: Duration) -> Result<Self, TimeError> {
        Ok(Self {
            gap: millis("session gap", gap, true)?,
        })
    }

    /// The gap, in milliseconds.
    pub fn gap_millis(&self) -> i64 {
        self.gap
    }

    /// The session of a record alone: `[time, time + gap)`.
    pub fn window_of(&self, time: Timestamp) -> Window {
        Window::new(time, time.plus(self.gap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn w(start: i64, end: i64) -> Window {
        Window::new(at(start), at(end))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_on_both_sides_of_it() {
        let t = Tumbling::new(ms(10)).expect("valid");
        assert_eq!(t.assign(at(0)).collect::<Vec<_>>(), [w(0, 10)]);
        assert_eq!(t.assign(at(9)).collect::<Vec<_>>(), [w(0, 10)]);
        assert_eq!(t.assign(at(10)).collect::<Vec<_>>(), [w(10, 20)]);
        assert_eq!(t.assign(at(-1)).collect::<Vec<_>>(), [w(-10, 0)]);
        assert_eq!(t.assign(at(-10)).collect::<Vec<_>>(), [w(-10, 0)]);
    }

    #[test]
    fn hopping_windows_are_every_window_that_contains_the_record() {
        let h = Hopping::new(ms(10), ms(3)).expect("valid");
        for time in -40..40 {
            let got: Vec<Window> = h.assign(at(time)).collect();
            let want: Vec<Window> = (-60..60)
                .filter(|s: &i64| s.rem_euclid(3) == 0)
                .map(|s| w(s, s + 10))
                .filter(|win| win.contains(at(time)))
                .collect();
            assert_eq!(got, want, "at {time}");
            assert_eq!(h.assign(at(time)).len(), want.len());
        }
    }

    #[test]
    fn windows_at_the_ends_of_time_are_clipped_not_wrapped() {
        let t = Tumbling::new(ms(7)).expect("valid");
        let low: Vec<Window> = t.assign(Timestamp::MIN).collect();
        assert_eq!(low.len(), 1);
        assert_eq!(low[0].start, Timestamp::MIN);
        assert!(low[0].contains(Timestamp::MIN));
        let high: Vec<Window> = t.assign(at(i64::MAX - 1)).collect();
        assert_eq!(high[0].end, Timestamp::MAX);
        assert!(high[0].contains(at(i64::MAX - 1)));
        let h = Hopping::new(ms(10), ms(3)).expect("valid");
        assert!(h.assign(Timestamp::MIN).all(|win| win.start <= win.end));
    }

    #[test]
    fn bad_sizes_are_refused_with_their_reason() {
        assert!(matches!(
            Tumbling::new(Duration::ZERO),
            Err(TimeError::Zero { .. })
        ));
        assert_eq!(
            Hopping::new(ms(10), ms(20)).unwrap_err().to_string(),
            "hopping window slide 20ms is longer than its size 10ms: records between windows would belong to none"
        );
        assert!(Hopping::new(ms(10), Duration::ZERO).is_err());
        assert!(Session::new(Duration::from_nanos(1)).is_err());
    }

    #[test]
    fn a_record_alone_is_a_session_of_one_gap() {
        let s = Session::new(ms(30)).expect("valid");
        assert_eq!(s.window_of(at(100)), w(100, 130));
        assert!(!s.window_of(at(100)).overlaps(&s.window_of(at(130))));
        assert!(s.window_of(at(100)).overlaps(&s.window_of(at(129))));
        assert_eq!(w(0, 5).cover(&w(3, 9)), w(0, 9));
    }
}
