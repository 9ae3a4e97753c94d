//! Parking and waking readers (or producers waiting for space) without losing a wake-up.
//!
//! The protocol is the classic one (tokio's `Notify`, `event-listener`):
//!
//! * a waiter [`register`](Notifier::register)s, then issues a `SeqCst` fence, then checks its
//!   condition again, and only then parks (or returns `Pending`);
//! * a notifier makes its change visible, issues a `SeqCst` fence, and wakes only if the
//!   `waiters` count is non-zero.
//!
//! The two fences order "register, re-check" against "publish, read waiters": either the
//! notifier sees the registration, or the waiter's re-check sees the change. So a producer
//! with nobody parked pays one fence and one load, and no lock.

use std::task::Waker;

use crate::sync::{AtomicUsize, Mutex, Ordering, fence, lock, thread};

/// How to wake one waiter.
#[derive(Debug, Clone)]
pub(crate) enum Wake {
    /// An async task.
    Task(Waker),
    /// A parked thread.
    Thread(thread::Thread),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Task(waker) => waker.wake(),
            Wake::Thread(thread) => thread.unpark(),
        }
    }

    fn will_wake(&self, other: &Wake) -> bool {
        match (self, other) {
            (Wake::Task(a), Wake::Task(b)) => a.will_wake(b),
            (Wake::Thread(a), Wake::Thread(b)) => a.id() == b.id(),
            _ => false,
        }
    }
}

/// A set of parked waiters, each known by a unique id so that re-registering replaces.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    /// Number of entries in `list`. Read without the lock on the hot path of publishing;
    /// written only under the lock.
    waiters: AtomicUsize,
    list: Mutex<Vec<(u64, Wake)>>,
}

impl Notifier {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers (or refreshes) waiter `id`. The caller must then call [`fence`] (or
    /// [`Notifier::register_fenced`]) and re-check its condition before parking.
    pub(crate) fn register(&self, id: u64, wake: &Wake) {
        let mut list = lock(&self.list);
        if let Some(entry) = list.iter_mut().find(|(i, _)| *i == id) {
            if !entry.1.will_wake(wake) {
                entry.1 = wake.clone();
            }
            return;
        }
        list.push((id, wake.clone()));
        // Relaxed: the count is read after the notifier's SeqCst fence, which orders it
        // against the waiter's SeqCst fence issued after this registration.
        self.waiters.store(list.len(), Ordering::Relaxed);
    }

    /// Registers and issues the `SeqCst` fence that must separate the registration from the
    /// re-check.
    pub(crate) fn register_fenced(&self, id: u64, wake: &Wake) {
        self.register(id, wake);
        fence(Ordering::SeqCst);
    }

    /// Removes waiter `id` if it is still registered.
    pub(crate) fn unregister(&self, id: u64) {
        // Relaxed: a stale non-zero count only costs the notifier a lock; a stale zero cannot
        // be read here because only this thread's own registration could have made it
        // non-zero, and the lock orders both.
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut list = lock(&self.list);
        if let Some(index) = list.iter().position(|(i, _)| *i == id) {
            list.swap_remove(index);
            self.waiters.store(list.len(), Ordering::Relaxed);
        }
    }

    /// Wakes every registered waiter. The caller must have published its change and issued a
    /// `SeqCst` fence (see [`Notifier::notify_all_fenced`]).
    pub(crate) fn notify_all(&self) {
        // Relaxed: ordered by the caller's SeqCst fence (see the module docs).
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        let woken = {
            let mut list = lock(&self.list);
            self.waiters.store(0, Ordering::Relaxed);
            std::mem::take(&mut *list)
        };
        for (_, wake) in woken {
            wake.wake();
        }
    }

    /// Issues the `SeqCst` fence that must follow a published change, then wakes everyone.
    pub(crate) fn notify_all_fenced(&self) {
        fence(Ordering::SeqCst);
        self.notify_all();
    }
}
