//! The thread that fsyncs the journals of a topic with `Durability::Interval`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::durable::Journal;

/// Fsyncs the journals of a topic with `Durability::Interval` every interval, until dropped.
pub(crate) struct Flusher {
    stop: Arc<AtomicBool>,
}

impl Flusher {
    pub(crate) fn start<T: Send + Sync + 'static>(
        journals: Vec<Arc<Journal<T>>>,
        every: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("broker-flush".to_owned())
            .spawn(move || {
                // Relaxed: a late stop costs one more round of fsyncs.
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    for journal in &journals {
                        let _ = journal.sync_now();
                    }
                }
            });
        drop(spawned);
        Self { stop }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
