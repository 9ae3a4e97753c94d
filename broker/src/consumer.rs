//! Independent readers: each keeps its own position, any number per partition.

use std::future::poll_fn;
use std::time::{Duration, Instant};

use crate::config::Start;
use crate::cursor::{CursorSet, SetStep};
use crate::error::{RecvError, RecvTimeoutError, SeekError, TryRecvError};
use crate::notify::Wake;
use crate::record::Record;
use crate::wait::{Readable, block_step, poll_step};

/// An independent reader of one, several or all partitions of a topic.
///
/// Its position is its own: other readers and groups do not move it, and it does not move
/// theirs. On a topic bounded with [`Overflow::Block`](crate::Overflow::Block), producers wait
/// for it (it must not lose records), so drop readers you no longer use.
pub struct Consumer<T> {
    set: CursorSet<T>,
    partitions: u32,
}

impl<T> Readable for CursorSet<T> {
    fn step(&mut self) -> SetStep {
        CursorSet::step(self)
    }

    fn register(&mut self, wake: &Wake) {
        CursorSet::register(self, wake, None);
    }

    fn unregister(&mut self) {
        CursorSet::unregister(self, None);
    }
}

impl<T> Consumer<T> {
    pub(crate) fn new(set: CursorSet<T>, partitions: u32) -> Self {
        Self { set, partitions }
    }

    /// Waits for the next record.
    ///
    /// Cancel-safe: dropping the future before it completes loses no record.
    pub async fn recv(&mut self) -> Result<Record<'_, T>, RecvError> {
        let step = poll_fn(|cx| poll_step(&mut self.set, cx)).await;
        self.finish(step).map_err(TryRecvError::into_waiting)
    }

    /// Blocks the thread until the next record.
    pub fn recv_blocking(&mut self) -> Result<Record<'_, T>, RecvError> {
        let step = block_step(&mut self.set, None).expect("no deadline");
        self.finish(step).map_err(TryRecvError::into_waiting)
    }

    /// Blocks the thread until the next record or until `timeout` passes.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Record<'_, T>, RecvTimeoutError> {
        match block_step(&mut self.set, Some(Instant::now() + timeout)) {
            None => Err(RecvTimeoutError::Timeout),
            Some(step) => self
                .finish(step)
                .map_err(|e| RecvTimeoutError::Recv(e.into_waiting())),
        }
    }

    /// The next record if one is available now.
    pub fn try_recv(&mut self) -> Result<Record<'_, T>, TryRecvError> {
        let step = self.set.step();
        self.finish(step)
    }

    fn finish(&self, step: SetStep) -> Result<Record<'_, T>, TryRecvError> {
        match step {
            SetStep::Ready(i) => {
                let cursor = &self.set.cursors[i];
                let (entry, offset) = cursor.last();
                Ok(Record::new(entry, cursor.partition(), offset))
            }
            SetStep::Empty => Err(TryRecvError::Empty),
            SetStep::Lagged { partition, skipped } => {
                Err(TryRecvError::Lagged { partition, skipped })
            }
            SetStep::Closed => Err(TryRecvError::Closed),
        }
    }

    /// Moves every partition read to `start`.
    ///
    /// On error (an offset out of range in some partition) the partitions before it have
    /// moved and the others have not.
    pub fn seek(&mut self, start: Start) -> Result<(), SeekError> {
        self.set.cursors.iter_mut().try_for_each(|c| c.seek(start))
    }

    /// Moves one partition to `start`.
    pub fn seek_partition(&mut self, partition: u32, start: Start) -> Result<(), SeekError> {
        if partition >= self.partitions {
            return Err(SeekError::NoSuchPartition {
                partition,
                partitions: self.partitions,
            });
        }
        self.set
            .cursors
            .iter_mut()
            .find(|c| c.partition() == partition)
            .ok_or(SeekError::NotAssigned { partition })?
            .seek(start)
    }

    /// The next offset this reader will read in `partition`, if it reads it.
    pub fn position(&self, partition: u32) -> Option<u64> {
        self.set
            .cursors
            .iter()
            .find(|c| c.partition() == partition)
            .map(|c| c.position())
    }

    /// The partitions this reader reads.
    pub fn assignment(&self) -> Vec<u32> {
        self.set.cursors.iter().map(|c| c.partition()).collect()
    }

    /// Records this reader can still read, over all its partitions: appended, not yet read,
    /// and still kept (records removed by retention before it read them are not counted; its
    /// next receive reports them as [`RecvError::Lagged`](crate::RecvError::Lagged)).
    pub fn lag(&self) -> u64 {
        self.set
            .cursors
            .iter()
            .map(|c| c.part.lag_from(c.position()))
            .sum()
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}
