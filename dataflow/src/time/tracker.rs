//! The watermark of a task: the minimum over its inputs, with idle inputs left out.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::operator::Checkpointed;
use super::snapshot;
use super::timestamp::Watermark;
use crate::codec::CodecError;

/// Combines the watermarks of a task's inputs (source partitions, or the upstream tasks that
/// write to its partition of an internal topic) into the task's watermark: the minimum over
/// the inputs that are not idle.
///
/// An input that has shown no activity (no record, no watermark) for the idle timeout stops
/// holding the watermark back, until it shows activity again (an input active since the last
/// tick is never idle at this one, even with a zero timeout). If every input is idle, the
/// watermark stays where it is. The task's watermark never moves backwards, even when an
/// input behind it wakes up: that input's records behind it are late.
///
/// Time is passed in, never read: [`observe`](Self::observe) and [`touch`](Self::touch) note
/// activity (cheap, per record or per batch), and [`tick`](Self::tick) settles it at `now`
/// (per batch, or on a timer when nothing arrives), so a test drives it with made-up
/// instants and gets the same answer every time.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dataflow::time::{Timestamp, Watermark, WatermarkTracker};
///
/// let start = Instant::now();
/// let mut task = WatermarkTracker::new(2).with_idle_timeout(Duration::from_secs(10));
/// task.observe(0, Watermark::new(Timestamp::from_millis(500)));
/// assert_eq!(task.tick(start), None); // input 1 has said nothing yet, but is not idle
///
/// task.observe(0, Watermark::new(Timestamp::from_millis(900)));
/// let later = start + Duration::from_secs(10);
/// assert_eq!(task.tick(later), Some(Watermark::new(Timestamp::from_millis(900))));
/// assert!(task.is_idle(1));
/// # let _ = task;
/// ```
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    inputs: Vec<Input>,
    idle_timeout: Option<Duration>,
    /// The task's watermark: only ever raised.
    current: Watermark,
}

#[derive(Debug, Clone)]
struct Input {
    watermark: Watermark,
    /// Activity since the last tick.
    touched: bool,
    /// The input said it is idle (an upstream task whose own inputs all are), since its last
    /// activity.
    declared_idle: bool,
    /// When the input last showed activity, as of the last tick; `None` until the first tick
    /// after a start or a restore, which starts its clock.
    last_active: Option<Instant>,
    idle: bool,
}

impl Input {
    fn new(watermark: Watermark) -> Self {
        Self {
            watermark,
            touched: false,
            declared_idle: false,
            last_active: None,
            idle: false,
        }
    }
}

/// What a checkpoint keeps of a tracker: the watermarks, not the idleness (a restarted task
/// starts every input's idle clock again).
#[derive(Serialize, Deserialize)]
struct Saved {
    inputs: Vec<Watermark>,
    current: Watermark,
}

impl WatermarkTracker {
    /// A tracker of `inputs` inputs, all at [`Watermark::MIN`], that never considers one idle.
    pub fn new(inputs: usize) -> Self {
        Self {
            inputs: (0..inputs).map(|_| Input::new(Watermark::MIN)).collect(),
            idle_timeout: None,
            current: Watermark::MIN,
        }
    }

    /// Leaves an input out of the minimum once it has shown no activity for `timeout` (of
    /// processing time, as measured by the instants given to [`tick`](Self::tick)).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Adds an input (a partition assigned to the task), at [`Watermark::MIN`] until it says
    /// otherwise; returns its index. Until then it holds the watermark where it is (or, with an
    /// idle timeout, until it turns idle): the task's watermark does not go back.
    pub fn add_input(&mut self) -> usize {
        self.inputs.push(Input::new(Watermark::MIN));
        self.inputs.len() - 1
    }

    /// Removes input `input` (a partition revoked from the task); the inputs after it move
    /// down one index. The task's watermark may move forward at the next tick.
    ///
    /// # Panics
    ///
    /// If `input` is not below [`inputs`](Self::inputs).
    pub fn remove_input(&mut self, input: usize) {
        self.inputs.remove(input);
    }

    /// Input `input` says its watermark is `watermark` (a lower one than it said before is
    /// ignored); that counts as activity. Takes effect at the next [`tick`](Self::tick).
    ///
    /// # Panics
    ///
    /// If `input` is not below [`inputs`](Self::inputs).
    #[inline]
    pub fn observe(&mut self, input: usize, watermark: Watermark) {
        let input = &mut self.inputs[input];
        input.watermark = input.watermark.max(watermark);
        input.touched = true;
        input.declared_idle = false;
    }

    /// Input `input` delivered a record without moving its watermark: activity only.
    ///
    /// # Panics
    ///
    /// If `input` is not below [`inputs`](Self::inputs).
    #[inline]
    pub fn touch(&mut self, input: usize) {
        let input = &mut self.inputs[input];
        input.touched = true;
        input.declared_idle = false;
    }

    /// Input `input` says it is idle (an upstream task all of whose inputs are idle, as
    /// [`all_idle`](Self::all_idle) tells it): it stops holding the watermark back at the next
    /// [`tick`](Self::tick), without waiting for a timeout, until its next activity.
    ///
    /// # Panics
    ///
    /// If `input` is not below [`inputs`](Self::inputs).
    pub fn mark_idle(&mut self, input: usize) {
        let input = &mut self.inputs[input];
        input.touched = false;
        input.declared_idle = true;
    }

    /// Whether every input was idle at the last [`tick`](Self::tick) (and there is at least
    /// one): the task should tell the tasks downstream, which then leave it out of their
    /// minimum ([`mark_idle`](Self::mark_idle)).
    pub fn all_idle(&self) -> bool {
        !self.inputs.is_empty() && self.inputs.iter().all(|i| i.idle)
    }

    /// Settles activity and idleness as of `now` and recomputes the task's watermark;
    /// returns it if it moved forward.
    pub fn tick(&mut self, now: Instant) -> Option<Watermark> {
        let mut low: Option<Watermark> = None;
        for input in &mut self.inputs {
            if input.touched || (input.last_active.is_none() && !input.declared_idle) {
                input.touched = false;
                input.idle = false;
                input.last_active = Some(now);
            } else if input.declared_idle {
                input.idle = true;
            } else if let (Some(timeout), Some(last)) = (self.idle_timeout, input.last_active) {
                input.idle = now.saturating_duration_since(last) >= timeout;
            }
            if !input.idle {
                low = Some(low.map_or(input.watermark, |low| low.min(input.watermark)));
            }
        }
        match low {
            Some(low) if low > self.current => {
                self.current = low;
                Some(low)
            }
            _ => None,
        }
    }

    /// The task's watermark as of the last [`tick`](Self::tick).
    pub fn watermark(&self) -> Watermark {
        self.current
    }

    /// The last watermark input `input` gave.
    ///
    /// # Panics
    ///
    /// If `input` is not below [`inputs`](Self::inputs).
    pub fn input_watermark(&self, input: usize) -> Watermark {
        self.inputs[input].watermark
    }

    /// Whether input `input` was idle at the last [`tick`](Self::tick).
    ///
    /// # Panics
    ///
    /// If `input` is not below [`inputs`](Self::inputs).
    pub fn is_idle(&self, input: usize) -> bool {
        self.inputs[input].idle
    }
}

impl Checkpointed for WatermarkTracker {
    /// Encodes the watermarks (not the idleness) into `out`, for a checkpoint.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let saved = Saved {
            inputs: self.inputs.iter().map(|i| i.watermark).collect(),
            current: self.current,
        };
        snapshot::save(&saved, out)
    }

    /// Replaces the watermarks with those [`save`](Self::save) wrote; every input starts
    /// active, its idle clock starting at the next [`tick`](Self::tick). Refuses a state
    /// saved with another number of inputs.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let saved: Saved = snapshot::restore(bytes)?;
        if saved.inputs.len() != self.inputs.len() {
            return Err(snapshot::mismatch(format!(
                "the saved watermarks are of {} inputs, this task has {}",
                saved.inputs.len(),
                self.inputs.len()
            )));
        }
        self.reset(saved.inputs, saved.current);
        Ok(())
    }
}

impl WatermarkTracker {
    /// Puts the inputs and the task's watermark where a checkpoint left them; every input
    /// active, its idle clock starting at the next tick.
    pub(crate) fn reset(&mut self, inputs: Vec<Watermark>, current: Watermark) {
        self.inputs = inputs.into_iter().map(Input::new).collect();
        self.current = current;
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
    fn the_task_watermark_is_the_minimum_over_its_inputs() {
        let now = Instant::now();
        let mut t = WatermarkTracker::new(3);
        t.observe(0, wm(30));
        t.observe(1, wm(10));
        assert_eq!(t.tick(now), None, "input 2 is still at the start of time");
        t.observe(2, wm(20));
        assert_eq!(t.tick(now), Some(wm(10)));
        t.observe(1, wm(40));
        assert_eq!(t.tick(now), Some(wm(20)));
        assert_eq!(t.watermark(), wm(20));
    }

    #[test]
    fn an_input_never_lowers_its_own_watermark_nor_the_task_one() {
        let now = Instant::now();
        let mut t = WatermarkTracker::new(1);
        t.observe(0, wm(50));
        assert_eq!(t.tick(now), Some(wm(50)));
        t.observe(0, wm(20));
        assert_eq!(t.tick(now), None);
        assert_eq!(t.input_watermark(0), wm(50));
        assert_eq!(t.watermark(), wm(50));
    }

    #[test]
    fn without_an_idle_timeout_a_silent_input_holds_the_watermark_for_ever() {
        let start = Instant::now();
        let mut t = WatermarkTracker::new(2);
        t.observe(0, wm(100));
        t.tick(start);
        assert_eq!(t.tick(start + Duration::from_secs(3600)), None);
        assert_eq!(t.watermark(), Watermark::MIN);
        assert!(!t.is_idle(1));
    }

    #[test]
    fn an_idle_input_stops_holding_back_and_rejoins_on_activity_without_going_back() {
        let start = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut t = WatermarkTracker::new(2).with_idle_timeout(timeout);
        t.observe(0, wm(10));
        t.observe(1, wm(5));
        assert_eq!(t.tick(start), Some(wm(5)));

        // Input 1 falls silent; input 0 goes on.
        t.observe(0, wm(20));
        assert_eq!(t.tick(start + Duration::from_secs(4)), None, "not idle yet");
        t.observe(0, wm(30));
        assert_eq!(t.tick(start + timeout), Some(wm(30)));
        assert!(t.is_idle(1));

        // Input 1 wakes up behind: it holds the watermark again, which does not go back.
        t.touch(1);
        t.observe(0, wm(50));
        assert_eq!(t.tick(start + Duration::from_secs(6)), None);
        assert!(!t.is_idle(1));
        assert_eq!(t.watermark(), wm(30));
        t.observe(1, wm(45));
        assert_eq!(t.tick(start + Duration::from_secs(7)), Some(wm(45)));
    }

    #[test]
    fn when_every_input_is_idle_the_watermark_stays() {
        let start = Instant::now();
        let mut t = WatermarkTracker::new(2).with_idle_timeout(Duration::from_secs(1));
        t.observe(0, wm(10));
        t.observe(1, wm(20));
        assert_eq!(t.tick(start), Some(wm(10)));
        assert_eq!(t.tick(start + Duration::from_secs(2)), None);
        assert!(t.is_idle(0) && t.is_idle(1));
        assert_eq!(t.watermark(), wm(10));
    }

    #[test]
    fn an_input_declared_idle_stops_holding_back_at_once_until_it_speaks_again() {
        let now = Instant::now();
        let mut t = WatermarkTracker::new(2);
        t.observe(0, wm(50));
        t.tick(now);
        t.mark_idle(1);
        assert_eq!(t.tick(now), Some(wm(50)), "no timeout needed");
        assert!(t.is_idle(1) && !t.all_idle());
        t.observe(1, wm(20));
        t.observe(0, wm(60));
        assert_eq!(t.tick(now), None, "input 1 holds it again");
        assert!(!t.is_idle(1));
        t.mark_idle(0);
        t.mark_idle(1);
        t.tick(now);
        assert!(t.all_idle());
        assert!(!WatermarkTracker::new(0).all_idle());
    }

    #[test]
    fn the_idle_clock_starts_at_the_first_tick() {
        let start = Instant::now();
        let mut t = WatermarkTracker::new(2).with_idle_timeout(Duration::from_secs(5));
        t.observe(0, wm(10));
        // The first tick comes long after construction: input 1 is not idle yet.
        assert_eq!(t.tick(start + Duration::from_secs(100)), None);
        assert!(!t.is_idle(1));
        t.observe(0, wm(11));
        assert_eq!(t.tick(start + Duration::from_secs(105)), Some(wm(11)));
    }

    #[test]
    fn inputs_come_and_go_without_moving_the_watermark_back() {
        let now = Instant::now();
        let mut t = WatermarkTracker::new(2);
        t.observe(0, wm(10));
        t.observe(1, wm(30));
        assert_eq!(t.tick(now), Some(wm(10)));
        let added = t.add_input();
        assert_eq!((added, t.inputs()), (2, 3));
        t.observe(0, wm(40));
        assert_eq!(t.tick(now), None, "the new input holds the watermark");
        t.observe(added, wm(5));
        assert_eq!(t.tick(now), None, "and does not take it back");
        assert_eq!(t.watermark(), wm(10));
        t.remove_input(added);
        assert_eq!(t.tick(now), Some(wm(30)));
        t.remove_input(1);
        assert_eq!(t.tick(now), Some(wm(40)));
    }

    #[test]
    fn a_restored_tracker_has_its_watermarks_and_restarts_idle_clocks() {
        let start = Instant::now();
        let mut t = WatermarkTracker::new(2).with_idle_timeout(Duration::from_secs(1));
        t.observe(0, wm(10));
        t.observe(1, wm(20));
        t.tick(start);
        t.observe(1, wm(25));
        t.tick(start + Duration::from_secs(2));
        assert!(t.is_idle(0));
        assert_eq!(t.watermark(), wm(25));
        let mut bytes = Vec::new();
        t.save(&mut bytes).expect("encodes");

        let mut back = WatermarkTracker::new(2).with_idle_timeout(Duration::from_secs(1));
        back.restore(&bytes).expect("decodes");
        assert_eq!(back.watermark(), wm(25));
        assert_eq!(back.input_watermark(0), wm(10));
        assert!(!back.is_idle(0));

        let mut other = WatermarkTracker::new(3);
        let err = other.restore(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode value: the saved watermarks are of 2 inputs, this task has 3"
        );
    }
}
