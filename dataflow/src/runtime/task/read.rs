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

/// What the next read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// A batch of records (or barriers) to process.
    Batch,
    /// Nothing read: the coordinator asks a source task for checkpoint `epoch`.
    Asked(u64),
    /// The task must end.
    End,
}

/// Where a task is in its life, and how it learns what to do next.
pub(super) struct Control {
    signal: watch::Receiver<Mode>,
    /// A source task's checkpoint requests.
    trigger: Option<watch::Receiver<u64>>,
    mode: Mode,
    /// Records per batch at most.
    batch: usize,
    /// How long a batch waits for more records once it has some (zero: not at all).
    linger: std::time::Duration,
    finished: bool,
}

impl Control {
    pub(super) fn new(
        signal: watch::Receiver<Mode>,
        trigger: Option<watch::Receiver<u64>>,
        batch: usize,
        linger: std::time::Duration,
    ) -> Self {
        Self {
            signal,
            trigger,
            linger,
            mode: Mode::Run,
            batch: batch.max(1),
            finished: false,
        }
    }

    /// A mode signal of its own, for waits outside the read loop.
    pub(super) fn signal(&self) -> watch::Receiver<Mode> {
        self.signal.clone()
    }

    /// Reads the next batch into `batch` (emptied first): [`Next::End`] once the task must
    /// end (it was asked to stop, or it drained its input to the end; then `batch` is empty).
    pub(super) async fn next<In>(
        &mut self,
        reader: &mut dyn LogReader<In>,
        batch: &mut Batch<In>,
        lagged: &mut u64,
    ) -> Result<Next, BackendError> {
        batch.clear();
        loop {
            if self.finished {
                return Ok(Next::End);
            }
            match self.signal.has_changed() {
                Ok(true) => self.mode = *self.signal.borrow_and_update(),
                Ok(false) => {}
                Err(_) => self.mode = Mode::Stop,
            }
            match self.mode {
                Mode::Stop => {
                    self.finished = true;
                    return Ok(Next::End);
                }
                Mode::Run => {
                    if let Some(trigger) = &mut self.trigger
                        && trigger.has_changed().unwrap_or(false)
                    {
                        return Ok(Next::Asked(*trigger.borrow_and_update()));
                    }
                    let asked = async {
                        match &mut self.trigger {
                            Some(trigger) => match trigger.changed().await {
                                Ok(()) => *trigger.borrow_and_update(),
                                Err(_) => std::future::pending().await,
                            },
                            None => std::future::pending().await,
                        }
                    };
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
                        epoch = asked => return Ok(Next::Asked(epoch)),
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
            if batch.has_work() {
                if self.mode == Mode::Run && !self.linger.is_zero() {
                    self.linger(reader, batch).await?;
                }
                return Ok(Next::Batch);
            }
            if self.mode == Mode::Drain {
                self.finished = true;
                return Ok(Next::End);
            }
        }
    }

    /// Lets a batch that is not full wait up to the linger time for more records (micro-batching:
    /// fewer, larger batches under light load, at the price of that much latency). A barrier
    /// or a change of mode ends the wait.
    async fn linger<In>(
        &mut self,
        reader: &mut dyn LogReader<In>,
        batch: &mut Batch<In>,
    ) -> Result<(), BackendError> {
        let deadline = tokio::time::Instant::now() + self.linger;
        while batch.len() < self.batch && batch.barriers.is_empty() && !batch.ended {
            tokio::select! {
                biased;
                // Seen at the next read.
                _ = self.signal.changed() => {
                    self.mode = *self.signal.borrow_and_update();
                    break;
                }
                () = tokio::time::sleep_until(deadline) => break,
                read = reader.read(self.batch, Wait::ForRecords, batch) => read?,
            }
        }
        Ok(())
    }

    /// Ends the task at the next read (after a read error).
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }
}
