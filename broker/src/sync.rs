//! The one place that chooses between `std` and `loom` synchronization primitives.
//!
//! Every other module imports atomics, `Arc`, `Mutex`, `UnsafeCell` and thread parking from
//! here, so that `RUSTFLAGS="--cfg loom"` model-checks the real code paths.

#[cfg(loom)]
pub(crate) use loom::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread,
};

#[cfg(not(loom))]
pub(crate) use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread,
};

/// A cell with loom's closure-based API, so that loom can track every access.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// A cell with loom's closure-based API, backed by `std::cell::UnsafeCell`.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent before it can panic, so a poisoned lock holds valid data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A process-wide unique id (for readers registered with a notifier, group members).
///
/// Deliberately `std` even under loom: ids only need to be unique, not modelled.
pub(crate) fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: uniqueness needs only the atomicity of the increment.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Waiting a few instructions for another thread that is known to be about to finish a step
/// (installing the next block). Under loom, every wait must yield to the model.
pub(crate) struct Spin {
    #[cfg(not(loom))]
    backoff: crossbeam_utils::Backoff,
}

impl Spin {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            backoff: crossbeam_utils::Backoff::new(),
        }
    }

    /// Whether spinning has gone on long enough that the caller should park instead.
    pub(crate) fn is_completed(&self) -> bool {
        #[cfg(not(loom))]
        return self.backoff.is_completed();
        #[cfg(loom)]
        return true;
    }

    /// Spins, then yields the thread once spinning has gone on for a while.
    pub(crate) fn snooze(&self) {
        #[cfg(not(loom))]
        self.backoff.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}
