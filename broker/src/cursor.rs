//! Reading positions: one per partition ([`Cursor`]), and a round-robin set of them
//! ([`CursorSet`]) behind every consumer and group member.

use crate::block::{Block, Entry, Look};
use crate::config::Start;
use crate::error::SeekError;
use crate::notify::{Notifier, Wake};
use crate::partition::{Lookup, Partition, SharedPosition, Tracking, shared_position};
use crate::sync::{Arc, Ordering, next_id};

/// How many records a tracked reader reads between two publications of its position: 32, or
/// a quarter of a small capacity.
fn publish_every<T>(part: &Partition<T>) -> u64 {
    part.policy.capacity.map_or(32, |c| (c / 4).clamp(1, 32))
}

/// What one attempt to read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A record was read; the cursor stands just past it.
    Ready,
    Empty,
    /// The reader fell behind retention and moved forward by this many records.
    Lagged(u64),
    Closed,
}

/// A reading position in one partition.
pub(crate) struct Cursor<T> {
    pub(crate) part: Arc<Partition<T>>,
    /// The block holding `pos` (or the one just before it, at a block boundary or the end).
    /// Holding it keeps its memory alive while a record borrowed from it is in use.
    block: Arc<Block<T>>,
    /// Next offset to read.
    pos: u64,
    /// `Overflow::Block` only: `pos`, published for producers and retention every
    /// `publish_every` records and whenever the reader runs dry (so a fence per record is
    /// not paid; producers may see the reader up to that many records behind).
    tracked: Option<(u64, SharedPosition)>,
    /// The last position stored in `tracked`.
    published: u64,
    publish_every: u64,
}

impl<T> Cursor<T> {
    /// A cursor at `start`, tracked when the partition makes producers wait for readers.
    pub(crate) fn new(part: Arc<Partition<T>>, start: Start) -> Result<Self, SeekError> {
        let tracked = part
            .policy
            .blocks_producers()
            .then(|| (next_id(), shared_position()));
        let tracking = tracked.as_ref().map(|(id, position)| Tracking {
            id: *id,
            position,
            register: true,
        });
        let (pos, block) = part.position(|p, blocks| resolve(p, blocks, start), tracking)?;
        Ok(Self {
            publish_every: publish_every(&part),
            part,
            block,
            pos,
            tracked,
            published: pos,
        })
    }

    /// A cursor at a given offset that is not tracked: group members are held back by their
    /// group's committed offset instead.
    pub(crate) fn untracked_at(part: Arc<Partition<T>>, offset: u64) -> Self {
        let (pos, block) = part
            .position::<std::convert::Infallible>(
                // Below `start` stays below: the first read reports the records lost as
                // `Lagged` rather than skipping them silently.
                |p, _| Ok(offset.min(p.end())),
                None,
            )
            .unwrap_or_else(|never| match never {});
        Self {
            publish_every: publish_every(&part),
            part,
            block,
            pos,
            tracked: None,
            published: pos,
        }
    }

    pub(crate) fn partition(&self) -> u32 {
        self.part.index
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    pub(crate) fn seek(&mut self, start: Start) -> Result<(), SeekError> {
        let tracking = self.tracked.as_ref().map(|(id, position)| Tracking {
            id: *id,
            position,
            register: false,
        });
        let (pos, block) = self
            .part
            .position(|p, blocks| resolve(p, blocks, start), tracking)?;
        self.pos = pos;
        self.published = pos;
        self.block = block;
        Ok(())
    }

    /// Tries to read the record at the current position.
    pub(crate) fn step(&mut self) -> Step {
        loop {
            let start = self.part.start();
            if self.pos < start {
                let skipped = start - self.pos;
                // Exactly to `start`, not to whatever `start` is by now: if retention moved
                // on meanwhile, the next step reports those records too, so that the counts
                // add up exactly.
                self.jump_to(start);
                return Step::Lagged(skipped);
            }
            let index = self.pos - self.block.base;
            if index >= self.block.len() as u64 {
                match self.part.lookup(self.pos) {
                    Lookup::Found(block) => {
                        self.block = block;
                        continue;
                    }
                    Lookup::NotYet => return self.empty_or_closed(),
                    // Retention moved `start` past us; the next round reports it.
                    Lookup::Behind => continue,
                }
            }
            return match self.block.look(index as usize) {
                Look::Ready => {
                    self.pos += 1;
                    if self.pos - self.published >= self.publish_every {
                        self.publish_position();
                    }
                    Step::Ready
                }
                Look::Empty => self.empty_or_closed(),
                Look::Missing => {
                    // Records recovery found lost: skipped, and said so, as retention's are.
                    let end = self.part.hole_end(self.pos);
                    let skipped = end - self.pos;
                    self.jump_to(end);
                    Step::Lagged(skipped)
                }
            };
        }
    }

    /// The record just read by a successful [`step`](Self::step).
    pub(crate) fn last(&self) -> (&Entry<T>, u64) {
        let offset = self.pos - 1;
        let index = (offset - self.block.base) as usize;
        let entry = self
            .block
            .read(index)
            .expect("`last` is only called after `step` returned `Ready`");
        (entry, offset)
    }

    fn empty_or_closed(&mut self) -> Step {
        // Running dry: let producers waiting for room see everything read so far.
        if self.published != self.pos {
            self.publish_position();
        }
        if self.part.is_closed_at(self.pos) {
            Step::Closed
        } else {
            Step::Empty
        }
    }

    fn jump_to(&mut self, target: u64) {
        let tracking = self.tracked.as_ref().map(|(id, position)| Tracking {
            id: *id,
            position,
            register: false,
        });
        let (pos, block) = self
            .part
            .position::<std::convert::Infallible>(|_, _| Ok(target), tracking)
            .unwrap_or_else(|never| match never {});
        self.pos = pos;
        self.published = pos;
        self.block = block;
    }

    fn publish_position(&mut self) {
        self.published = self.pos;
        if let Some((_, position)) = &self.tracked {
            // Release: pairs with the Acquire in `Partition::refresh_limit` and `retain`.
            position.store(self.pos, Ordering::Release);
            self.part.space.notify_all_fenced();
        }
    }
}

impl<T> Drop for Cursor<T> {
    fn drop(&mut self) {
        if let Some((id, _)) = &self.tracked {
            self.part.untrack(*id);
        }
    }
}

/// Resolves a start position to an offset, under the partition's `blocks` lock.
pub(crate) fn resolve<T>(
    part: &Partition<T>,
    blocks: &std::collections::VecDeque<Arc<Block<T>>>,
    start: Start,
) -> Result<u64, SeekError> {
    let (earliest, latest) = (part.start(), part.end());
    match start {
        Start::Earliest => Ok(earliest),
        Start::Latest => Ok(latest),
        Start::Offset(offset) if (earliest..=latest).contains(&offset) => Ok(offset),
        Start::Offset(offset) => Err(SeekError::OffsetOutOfRange {
            partition: part.index,
            offset,
            earliest,
            latest,
        }),
        Start::Timestamp(time) => {
            Ok(part.offset_for_time(blocks, crate::clock::to_unix_nanos(time)))
        }
    }
}

/// What one attempt over a set of cursors gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetStep {
    /// Cursor `index` read a record.
    Ready(usize),
    Empty,
    Lagged {
        partition: u32,
        skipped: u64,
    },
    Closed,
    /// A group member's partitions changed since it last reported them (only from
    /// `GroupMember::recv_event` and its forms).
    Reassigned,
}

/// Several cursors read round-robin, with one waiter identity for parking.
pub(crate) struct CursorSet<T> {
    pub(crate) cursors: Vec<Cursor<T>>,
    next: usize,
    /// This reader's id in the partitions' notifiers.
    pub(crate) waiter_id: u64,
    /// Whether the reader may still be registered in some notifier.
    registered: bool,
    /// A `Lagged` step that a batch met after some records: its cursor has moved on, so it is
    /// reported by the next step instead of being lost.
    deferred_lag: Option<(u32, u64)>,
}

impl<T> CursorSet<T> {
    pub(crate) fn new(cursors: Vec<Cursor<T>>) -> Self {
        Self {
            cursors,
            next: 0,
            waiter_id: next_id(),
            registered: false,
            deferred_lag: None,
        }
    }

    /// Keeps a `Lagged` step for the next receive to report ([`take_deferred`]); any other
    /// step would be met again, and needs no keeping.
    ///
    /// [`take_deferred`]: Self::take_deferred
    pub(crate) fn defer(&mut self, step: SetStep) {
        if let SetStep::Lagged { partition, skipped } = step {
            self.deferred_lag = Some((partition, skipped));
        }
    }

    /// The deferred `Lagged` step, once. Receives ask for it before they step (not inside
    /// [`step`](Self::step): a branch there costs the per-record loop of a blocking
    /// receive dearly).
    pub(crate) fn take_deferred(&mut self) -> Option<SetStep> {
        let (partition, skipped) = self.deferred_lag.take()?;
        Some(SetStep::Lagged { partition, skipped })
    }

    /// Forgets a deferred `Lagged` step (after a seek, which moves past it).
    pub(crate) fn forget_deferred(&mut self) {
        self.deferred_lag = None;
    }

    /// One pass over the cursors, starting after the last one that gave a record.
    pub(crate) fn step(&mut self) -> SetStep {
        let n = self.cursors.len();
        if n == 1 {
            // One partition (every pipeline task): no round-robin arithmetic.
            return match self.cursors[0].step() {
                Step::Ready => SetStep::Ready(0),
                Step::Lagged(skipped) => SetStep::Lagged {
                    partition: self.cursors[0].partition(),
                    skipped,
                },
                Step::Closed => SetStep::Closed,
                Step::Empty => SetStep::Empty,
            };
        }
        let mut closed = 0;
        for k in 0..n {
            let i = (self.next + k) % n;
            match self.cursors[i].step() {
                Step::Ready => {
                    self.next = (i + 1) % n;
                    return SetStep::Ready(i);
                }
                Step::Lagged(skipped) => {
                    return SetStep::Lagged {
                        partition: self.cursors[i].partition(),
                        skipped,
                    };
                }
                Step::Closed => closed += 1,
                Step::Empty => {}
            }
        }
        if n > 0 && closed == n {
            SetStep::Closed
        } else {
            SetStep::Empty
        }
    }

    /// Registers for a wake-up from every partition read (and `extra`), with the fence that
    /// must precede the re-check.
    pub(crate) fn register(&mut self, wake: &Wake, extra: Option<&Notifier>) {
        self.registered = true;
        for cursor in &self.cursors {
            cursor.part.data.register(self.waiter_id, wake);
        }
        if let Some(extra) = extra {
            extra.register(self.waiter_id, wake);
        }
        crate::sync::fence(Ordering::SeqCst);
    }

    /// Removes any registration left from an earlier wait.
    pub(crate) fn unregister(&mut self, extra: Option<&Notifier>) {
        if !std::mem::take(&mut self.registered) {
            return;
        }
        for cursor in &self.cursors {
            cursor.part.data.unregister(self.waiter_id);
        }
        if let Some(extra) = extra {
            extra.unregister(self.waiter_id);
        }
    }
}

impl<T> Drop for CursorSet<T> {
    fn drop(&mut self) {
        self.unregister(None);
    }
}
