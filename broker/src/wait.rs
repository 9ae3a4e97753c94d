//! Waiting for a record: the same step-register-recheck-park loop for async tasks and
//! blocking threads, over anything that reads like a [`CursorSet`].

use std::task::{Context, Poll};

use crate::cursor::SetStep;
use crate::notify::Wake;
use crate::sync::{Spin, thread};

/// A reader that can try once, and register for a wake-up.
pub(crate) trait Readable {
    /// A step an earlier receive met but could not report (a batch that ended on a lag),
    /// to report first.
    fn deferred(&mut self) -> Option<SetStep>;
    fn step(&mut self) -> SetStep;
    /// Registers `wake` wherever a change could make `step` succeed, then fences.
    fn register(&mut self, wake: &Wake);
    fn unregister(&mut self);
}

/// One step, after any deferred one.
pub(crate) fn try_step<R: Readable>(reader: &mut R) -> SetStep {
    match reader.deferred() {
        Some(step) => step,
        None => reader.step(),
    }
}

/// Polls for a step other than `Empty`.
pub(crate) fn poll_step<R: Readable>(reader: &mut R, cx: &mut Context<'_>) -> Poll<SetStep> {
    let step = try_step(reader);
    if step != SetStep::Empty {
        reader.unregister();
        return Poll::Ready(step);
    }
    reader.register(&Wake::Task(cx.waker().clone()));
    match reader.step() {
        SetStep::Empty => Poll::Pending,
        step => {
            reader.unregister();
            Poll::Ready(step)
        }
    }
}

/// Blocks the thread until a step other than `Empty`, or until `deadline` (`None` then).
pub(crate) fn block_step<R: Readable>(
    reader: &mut R,
    deadline: Option<std::time::Instant>,
) -> Option<SetStep> {
    if let Some(step) = reader.deferred() {
        return Some(step);
    }
    // A short, bounded spin-then-yield before parking (as crossbeam-channel's blocking
    // receive does): a record that is microseconds away costs no kernel round trip.
    let spin = Spin::new();
    loop {
        let step = reader.step();
        if step != SetStep::Empty {
            reader.unregister();
            return Some(step);
        }
        if !spin.is_completed() {
            spin.snooze();
            continue;
        }
        reader.register(&Wake::Thread(thread::current()));
        let step = reader.step();
        if step != SetStep::Empty {
            reader.unregister();
            return Some(step);
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = std::time::Instant::now();
                if now >= deadline {
                    reader.unregister();
                    return None;
                }
                park_timeout(deadline - now);
            }
        }
    }
}

#[cfg(not(loom))]
fn park_timeout(timeout: std::time::Duration) {
    thread::park_timeout(timeout);
}

#[cfg(loom)]
fn park_timeout(_timeout: std::time::Duration) {
    // loom has no timed park; a yield keeps the model finite.
    thread::yield_now();
}
