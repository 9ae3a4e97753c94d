//! Receiving many records at once: the first is waited for, the rest are taken as they are,
//! in the same poll (so that a dropped future never holds records it took).

use std::future::poll_fn;
use std::task::Poll;
use std::time::Instant;

use crate::cursor::{CursorSet, SetStep};
use crate::error::{RecvError, TryRecvError};
use crate::record::{OwnedRecord, Record};
use crate::wait::{Readable, block_step, poll_step, try_step};

/// A reader that can fill a batch.
pub(crate) trait BatchReader<T>: Readable {
    /// The cursors it reads with.
    fn cursors(&mut self) -> &mut CursorSet<T>;
}

/// After a `first` step that was not `Empty`, appends to `out` the record it read and every
/// record available now, up to `max` in all; returns how many. A `Lagged` step met after some
/// records ends the batch and is deferred to the next receive; a `Closed` one ends it too (and
/// is met again).
pub(crate) fn fill<T: Clone, R: BatchReader<T>>(
    reader: &mut R,
    first: SetStep,
    max: usize,
    out: &mut Vec<OwnedRecord<T>>,
) -> Result<usize, TryRecvError> {
    let mut step = first;
    let mut taken = 0;
    while taken < max {
        match step {
            SetStep::Ready(i) => {
                let cursor = &reader.cursors().cursors[i];
                let (entry, offset) = cursor.last();
                out.push(Record::new(entry, cursor.partition(), offset).to_owned());
                taken += 1;
            }
            SetStep::Empty if taken > 0 => break,
            SetStep::Empty => return Err(TryRecvError::Empty),
            SetStep::Lagged { partition, skipped } if taken == 0 => {
                return Err(TryRecvError::Lagged { partition, skipped });
            }
            SetStep::Closed if taken == 0 => return Err(TryRecvError::Closed),
            lagged_or_closed => {
                reader.cursors().defer(lagged_or_closed);
                break;
            }
        }
        if taken < max {
            step = reader.step();
        }
    }
    Ok(taken)
}

/// Waits for a first record, then fills the batch in the same poll.
pub(crate) async fn recv<T: Clone, R: BatchReader<T>>(
    reader: &mut R,
    max: usize,
    out: &mut Vec<OwnedRecord<T>>,
) -> Result<usize, RecvError> {
    if max == 0 {
        return Ok(0);
    }
    poll_fn(|cx| match poll_step(reader, cx) {
        Poll::Ready(first) => Poll::Ready(fill(reader, first, max, out)),
        Poll::Pending => Poll::Pending,
    })
    .await
    .map_err(TryRecvError::into_waiting)
}

/// Blocks the thread for a first record (or until `deadline`: `None` then), then fills the
/// batch.
pub(crate) fn recv_blocking<T: Clone, R: BatchReader<T>>(
    reader: &mut R,
    max: usize,
    out: &mut Vec<OwnedRecord<T>>,
    deadline: Option<Instant>,
) -> Option<Result<usize, RecvError>> {
    if max == 0 {
        return Some(Ok(0));
    }
    let first = block_step(reader, deadline)?;
    Some(fill(reader, first, max, out).map_err(TryRecvError::into_waiting))
}

/// Fills the batch with what is available now.
pub(crate) fn try_recv<T: Clone, R: BatchReader<T>>(
    reader: &mut R,
    max: usize,
    out: &mut Vec<OwnedRecord<T>>,
) -> Result<usize, TryRecvError> {
    if max == 0 {
        return Ok(0);
    }
    let first = try_step(reader);
    fill(reader, first, max, out)
}
