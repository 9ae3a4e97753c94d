//! The open-loop schedule of a latency run: the sender sends record `i` at its intended time
//! `t0 + i / rate` on a clock shared with the reader, never waiting for the reader, and the
//! reader measures from that intended time (no coordinated omission).

use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::stats::latency_histogram;

/// Nanoseconds since `base` (the clock the sender and the reader share).
pub fn now_ns(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Waits until `base + t`: sleeps while more than 300 us away (sleep overshoots by the timer
/// slack, about 50 us), yields the core while more than 20 us away (so that a third thread,
/// a kernel worker say, can run without preempting the reader), then spins.
pub fn wait_until(base: Instant, t: u64) {
    loop {
        let now = now_ns(base);
        if now >= t {
            return;
        }
        let left = t - now;
        if left > 300_000 {
            thread::sleep(Duration::from_nanos(left - 200_000));
        } else if left > 20_000 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The schedule of one run, in nanoseconds from `base`, shared by the sender and the reader.
#[derive(Clone, Copy)]
pub struct Schedule {
    /// The shared clock's origin.
    pub base: Instant,
    /// Intended time of the first record.
    pub t0: u64,
    /// Records intended before this are not recorded (warm-up).
    pub record_from: u64,
    /// Intended times run up to here.
    pub end: u64,
    /// Records per second.
    pub rate: u64,
}

impl Schedule {
    /// A schedule that starts `lead_ns` from now (so that the reader is up), warms up for
    /// `warmup_ms` milliseconds, then records for `seconds` at `rate` records per second.
    pub fn new(base: Instant, lead_ns: u64, warmup_ms: u64, seconds: f64, rate: u64) -> Self {
        let t0 = now_ns(base) + lead_ns;
        Self {
            base,
            t0,
            record_from: t0 + warmup_ms * 1_000_000,
            end: t0 + warmup_ms * 1_000_000 + (seconds * 1e9) as u64,
            rate,
        }
    }

    /// The intended send time of record `i` (exact integer schedule: `t0 + i * 1e9 / rate`),
    /// or `None` past the end.
    pub fn intended(&self, i: u64) -> Option<u64> {
        let t = self.t0 + i * 1_000_000_000 / self.rate;
        (t < self.end).then_some(t)
    }

    /// The same schedule, moved to start at `t0` (the same spacing and length).
    pub fn starting_at(self, t0: u64) -> Self {
        let shift = t0.saturating_sub(self.t0);
        Self {
            t0: self.t0 + shift,
            record_from: self.record_from + shift,
            end: self.end + shift,
            ..self
        }
    }

    /// How many records the schedule sends.
    pub fn count(&self) -> u64 {
        (0..).take_while(|&i| self.intended(i).is_some()).count() as u64
    }

    /// Calls `send(intended)` for every record, at its intended time; returns the count. A
    /// sender that falls behind sends the backlog at once.
    pub fn pace(&self, mut send: impl FnMut(u64)) -> u64 {
        let mut i = 0;
        while let Some(intended) = self.intended(i) {
            wait_until(self.base, intended);
            send(intended);
            i += 1;
        }
        i
    }

    /// As [`Schedule::pace`], calling `send(intended, started)` with the time the send
    /// started; also returns how late each recorded send started (the sending thread's own
    /// scheduling delays, a part of every latency).
    pub fn pace_noting_delays(&self, mut send: impl FnMut(u64, u64)) -> (u64, Histogram<u64>) {
        let mut late = latency_histogram();
        let sent = self.pace(|intended| {
            let started = now_ns(self.base);
            if intended >= self.record_from {
                late.saturating_record(started.saturating_sub(intended).max(1));
            }
            send(intended, started);
        });
        (sent, late)
    }
}
