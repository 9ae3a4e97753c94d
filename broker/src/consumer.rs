//! Independent readers: each keeps its own position, any number per partition.

use std::future::poll_fn;
use std::time::{Duration, Instant};

use crate::batch::{self, BatchReader};
use crate::config::Start;
use crate::cursor::{CursorSet, SetStep};
use crate::error::{RecvError, RecvTimeoutError, SeekError, TryRecvError};
use crate::notify::Wake;
use crate::record::{OwnedRecord, Record};
use crate::wait::{Readable, block_step, poll_step, try_step};

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
    fn deferred(&mut self) -> Option<SetStep> {
        self.take_deferred()
    }

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

impl<T> BatchReader<T> for CursorSet<T> {
    fn cursors(&mut self) -> &mut CursorSet<T> {
        self
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
        let step = try_step(&mut self.set);
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
            SetStep::Reassigned => unreachable!("a consumer has no assignment to report"),
        }
    }

    /// Moves every partition read to `start`.
    ///
    /// On error (an offset out of range in some partition) the partitions before it have
    /// moved and the others have not.
    pub fn seek(&mut self, start: Start) -> Result<(), SeekError> {
        self.set.forget_deferred();
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
        self.set.forget_deferred();
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

/// Batches: many records per call, for readers that handle records in groups (a pipeline
/// task, a bulk writer). Values are cloned into [`OwnedRecord`]s (a batch may span memory
/// blocks, which borrowed records would have to keep alive); read one record at a time with
/// [`recv`](Consumer::recv) to borrow values without a copy.
impl<T: Clone> Consumer<T> {
    /// Waits for a record, then appends to `out` every record available now, up to `max` in
    /// all; returns how many it appended (at least one, unless `max` is 0: then `Ok(0)` at
    /// once).
    ///
    /// A [`RecvError::Lagged`] or [`RecvError::Closed`] met after some records ends the batch
    /// early, and the next receive returns it: nothing is skipped without a report.
    ///
    /// Cancel-safe: records are taken only in the poll that returns them, so dropping the
    /// future (a `select!` branch that lost, a timeout) loses no record. That is also how to
    /// give it a deadline: the broker's futures run on any executor and bring no timer, so use
    /// the executor's, for instance tokio's:
    ///
    /// ```
    /// use std::time::Duration;
    /// use broker::{Broker, Start, TopicConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let topic = Broker::new().topic::<u32>("t", TopicConfig::new())?;
    /// topic.producer().send_batch(0, 0..10).await?;
    /// let mut reader = topic.consumer(Start::Earliest)?;
    ///
    /// let mut batch = Vec::new();
    /// let n = reader.recv_batch(4, &mut batch).await?;
    /// assert_eq!(n, 4);
    /// assert_eq!(batch.iter().map(|r| r.value).collect::<Vec<_>>(), [0, 1, 2, 3]);
    ///
    /// batch.clear();
    /// assert_eq!(reader.recv_batch(100, &mut batch).await?, 6, "what is there, up to 100");
    ///
    /// // Nothing more: a deadline from the executor's timer ends the wait, losing nothing.
    /// let waited = tokio::time::timeout(
    ///     Duration::from_millis(10),
    ///     reader.recv_batch(100, &mut batch),
    /// )
    /// .await;
    /// assert!(waited.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv_batch(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
    ) -> Result<usize, RecvError> {
        batch::recv(&mut self.set, max, out).await
    }

    /// Blocking [`recv_batch`](Self::recv_batch).
    pub fn recv_batch_blocking(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
    ) -> Result<usize, RecvError> {
        batch::recv_blocking(&mut self.set, max, out, None).expect("no deadline")
    }

    /// Blocking [`recv_batch`](Self::recv_batch) that waits for the first record at most
    /// `timeout`.
    pub fn recv_batch_timeout(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        match batch::recv_blocking(&mut self.set, max, out, Some(Instant::now() + timeout)) {
            None => Err(RecvTimeoutError::Timeout),
            Some(received) => received.map_err(RecvTimeoutError::Recv),
        }
    }

    /// [`recv_batch`](Self::recv_batch) without waiting: [`TryRecvError::Empty`] if no record
    /// is available now.
    pub fn try_recv_batch(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
    ) -> Result<usize, TryRecvError> {
        batch::try_recv(&mut self.set, max, out)
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}
