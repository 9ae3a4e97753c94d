//! The one read loop every task runs, whatever its backend and whatever its stages: wait for a
//! batch while the pipeline runs, stop when asked, drain to the end when upstream has ended.

use tokio::sync::watch;

use crate::backend::BackendError;
use crate::backend::log::{Batch, LogReader, Wait};

/// What a segment's tasks are asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Run,
    /// Stop reading: finish the batch in hand, flush, commit, end (source segments).
    Stop,
    /// Read until the input is empty (upstream has ended), flush, commit, end.
    Drain,
}

/// Where a task is in its life, and how it learns what to do next.
pub(super) struct Control {
    signal: watch::Receiver<Mode>,
    mode: Mode,
    /// Records per batch at most.
    batch: usize,
    finished: bool,
}

impl Control {
    pub(super) fn new(signal: watch::Receiver<Mode>, batch: usize) -> Self {
        Self {
            signal,
            mode: Mode::Run,
            batch: batch.max(1),
            finished: false,
        }
    }

    /// Reads the next batch into `batch` (emptied first). `Ok(false)` once the task must end:
    /// it was asked to stop, or it drained its input to the end; then `batch` is empty.
    pub(super) async fn next<In>(
        &mut self,
        reader: &mut dyn LogReader<In>,
        batch: &mut Batch<In>,
        lagged: &mut u64,
    ) -> Result<bool, BackendError> {
        batch.clear();
        loop {
            if self.finished {
                return Ok(false);
            }
            match self.signal.has_changed() {
                Ok(true) => self.mode = *self.signal.borrow_and_update(),
                Ok(false) => {}
                Err(_) => self.mode = Mode::Stop,
            }
            match self.mode {
                Mode::Stop => {
                    self.finished = true;
                    return Ok(false);
                }
                Mode::Run => {
                    tokio::select! {
                        biased;
                        changed = self.signal.changed() => {
                            // `changed` marks the new mode seen: read it now.
                            self.mode = match changed {
                                Ok(()) => *self.signal.borrow_and_update(),
                                Err(_) => Mode::Stop,
                            };
                            continue;
                        }
                        read = reader.read(self.batch, Wait::ForRecords, batch) => read?,
                    }
                }
                Mode::Drain => reader.read(self.batch, Wait::Briefly, batch).await?,
            }
            *lagged += std::mem::take(&mut batch.lagged);
            if batch.ended {
                // Nothing follows: read what is left, then end.
                self.mode = Mode::Drain;
                batch.ended = false;
            }
            if batch.len() > 0 {
                return Ok(true);
            }
            if self.mode == Mode::Drain {
                self.finished = true;
                return Ok(false);
            }
        }
    }

    /// Ends the task at the next read (after a read error).
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }
}
