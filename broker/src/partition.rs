//! One partition: an append-only log of records in a deque of blocks.
//!
//! # Appending
//!
//! `tail` is the next offset to claim, encoded as `(lap << shift) | index`: `lap` numbers the
//! block, `index` is the slot in it. `index` may equal the block size, which means "this block
//! is full and the next one is being installed" (crossbeam-channel's list flavor uses the same
//! trick). A producer claims `n` slots with one compare-exchange on `tail`, writes them, and
//! publishes each through its slot's `ready` flag. The producer that claims the last slot of a
//! block allocates the next one, pushes it onto `blocks`, points `tail_block` at it, and moves
//! `tail` to the next lap. No lock is taken on this path, except once per block by the
//! producer that installs the next block.
//!
//! # Reading
//!
//! A reader holds an `Arc` of the block it reads, so the memory it reads cannot be freed under
//! it, and checks `start` (the oldest offset kept) to learn whether it fell behind retention.
//! It takes the `blocks` lock only to move to another block (once per block).
//!
//! # Freeing
//!
//! Retention runs when a block is installed. It only drops *complete* blocks (every slot
//! published), from the front, never the last one; so a block a producer still has to write
//! into is never freed, and a claimed offset always has its block.

use std::collections::VecDeque;
use std::ops::Range;
use std::ptr;

use crossbeam_utils::CachePadded;

use crate::block::{Block, Entry, Slot};
use crate::config::{Overflow, TopicConfig};
use crate::notify::Notifier;
use crate::sync::{Arc, AtomicPtr, AtomicU64, Mutex, Ordering, Spin, lock};

/// Set in `tail` once the partition is closed.
const CLOSED: u64 = 1 << 63;

/// Dropped blocks kept for reuse per partition.
const SPARE_BLOCKS: usize = 2;

/// How a partition is bounded and trimmed.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) capacity: Option<u64>,
    pub(crate) overflow: Overflow,
    pub(crate) retain_bytes: Option<u64>,
    pub(crate) retain_age_nanos: Option<u64>,
}

impl Policy {
    pub(crate) fn from_config(config: &TopicConfig) -> Self {
        Self {
            capacity: config.capacity,
            overflow: config.overflow,
            retain_bytes: config.retain_bytes,
            retain_age_nanos: config
                .retain_age
                .map(|age| u64::try_from(age.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Whether producers wait for readers (and so readers' positions must be tracked).
    pub(crate) fn blocks_producers(&self) -> bool {
        self.capacity.is_some() && self.overflow == Overflow::Block
    }
}

/// Slots claimed by one producer, to be written by it alone.
pub(crate) struct Claim<T> {
    block: *const Block<T>,
    /// First slot index in `block`.
    index: usize,
    /// Number of slots claimed (at least 1).
    pub(crate) count: usize,
    /// Offset of the first claimed slot.
    pub(crate) offset: u64,
}

/// Why nothing was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    Closed,
    /// `Overflow::Block` and `capacity` records not yet released by the slowest tracked reader.
    Full,
}

/// The next offset a reader or group will read, shared with producers and retention. Padded:
/// each reader writes its own, and fan-out readers must not share a cache line.
pub(crate) type SharedPosition = Arc<CachePadded<AtomicU64>>;

/// A new [`SharedPosition`].
pub(crate) fn shared_position() -> SharedPosition {
    Arc::new(CachePadded::new(AtomicU64::new(0)))
}

/// A position that must not lose records (`Overflow::Block`), as passed to
/// [`Partition::position`].
pub(crate) struct Tracking<'a> {
    pub(crate) id: u64,
    pub(crate) position: &'a SharedPosition,
    /// Register it (the first positioning of a new reader or group).
    pub(crate) register: bool,
}

/// Where a block lookup landed.
pub(crate) enum Lookup<T> {
    Found(Arc<Block<T>>),
    /// The offset is at the end and its block is not installed yet.
    NotYet,
    /// The offset was dropped by retention.
    Behind,
}

pub(crate) struct Partition<T> {
    pub(crate) index: u32,
    /// Next offset to claim; see the module docs for the encoding, plus [`CLOSED`].
    tail: CachePadded<AtomicU64>,
    /// The block `tail` points into. Not owning: `blocks` owns it, and it is never freed while
    /// it is the tail block (retention never drops the last block).
    tail_block: CachePadded<AtomicPtr<Block<T>>>,
    /// Oldest offset kept. Only grows; written under the `blocks` lock.
    start: CachePadded<AtomicU64>,
    /// `Overflow::Block` only: producers may claim offsets below this without looking at the
    /// readers; past it they recompute it from `tracked`. Stale values are only ever too low.
    limit: AtomicU64,
    /// Every live block, oldest first, contiguous.
    blocks: Mutex<VecDeque<Arc<Block<T>>>>,
    /// Slots of dropped blocks that no reader held, ready for the next block (at most
    /// [`SPARE_BLOCKS`]). Lock order: after `blocks`.
    spare: Mutex<Vec<Box<[Slot<T>]>>>,
    block_size: usize,
    /// The offset of the first slot of the first block: block `k` starts at
    /// `origin + k * block_size`.
    origin: u64,
    /// `log2(block_size) + 1`: the lap's position in `tail`, leaving room for
    /// `index == block_size`.
    shift: u32,
    pub(crate) policy: Policy,
    /// Readers waiting for records.
    pub(crate) data: Notifier,
    /// Producers waiting for room (`Overflow::Block`).
    pub(crate) space: Notifier,
    /// `Overflow::Block` only: the next offset each tracked reader or group will read. Lock
    /// order: `blocks` before `tracked`.
    tracked: Mutex<Vec<(u64, SharedPosition)>>,
    /// File-backed partitions: the offsets recovery found lost, in order, each a run of
    /// missing slots. Set while the partition is opened, never after.
    holes: Vec<Range<u64>>,
}

// SAFETY: the raw `tail_block` pointer points into a block owned by `blocks` (an
// `Arc<Block<T>>`, which is Send + Sync for T: Send + Sync); everything else is Send + Sync.
unsafe impl<T: Send + Sync> Send for Partition<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Partition<T> {}

impl<T> Partition<T> {
    pub(crate) fn new(index: u32, config: &TopicConfig) -> Self {
        Self::starting_at(index, config, 0)
    }

    /// A partition whose first offset is `origin` (a file-backed partition whose older
    /// segments were deleted by retention).
    pub(crate) fn starting_at(index: u32, config: &TopicConfig, origin: u64) -> Self {
        let block_size = config.effective_block_size();
        let first = Arc::new(Block::new(origin, block_size));
        let first_ptr = ptr::from_ref::<Block<T>>(&first).cast_mut();
        let policy = Policy::from_config(config);
        Self {
            index,
            tail: CachePadded::new(AtomicU64::new(0)),
            tail_block: CachePadded::new(AtomicPtr::new(first_ptr)),
            start: CachePadded::new(AtomicU64::new(origin)),
            limit: AtomicU64::new(u64::MAX),
            origin,
            blocks: Mutex::new(VecDeque::from([first])),
            spare: Mutex::new(Vec::new()),
            block_size,
            shift: block_size.trailing_zeros() + 1,
            policy,
            data: Notifier::new(),
            space: Notifier::new(),
            tracked: Mutex::new(Vec::new()),
            holes: Vec::new(),
        }
    }

    fn dense(&self, tail: u64) -> u64 {
        let tail = tail & !CLOSED;
        let lap = tail >> self.shift;
        let index = tail & ((1 << self.shift) - 1);
        self.origin + lap * self.block_size as u64 + index
    }

    /// The next offset to be written (claimed slots included).
    pub(crate) fn end(&self) -> u64 {
        // Acquire: pairs with the Release of the installer's `tail` update.
        self.dense(self.tail.load(Ordering::Acquire))
    }

    /// The oldest offset kept.
    pub(crate) fn start(&self) -> u64 {
        // Acquire: pairs with the Release in `retain`, so the blocks it dropped are seen gone.
        self.start.load(Ordering::Acquire)
    }

    /// What a reader at `pos` can still read: the records from `pos` (or from the oldest kept,
    /// if retention removed older ones) to the end.
    pub(crate) fn lag_from(&self, pos: u64) -> u64 {
        let start = self.start();
        self.end().saturating_sub(pos.max(start))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Closed and no record at or after `pos` will ever be written.
    pub(crate) fn is_closed_at(&self, pos: u64) -> bool {
        let tail = self.tail.load(Ordering::Acquire);
        tail & CLOSED != 0 && self.dense(tail) <= pos
    }

    /// Claims up to `want` (at least 1) consecutive slots, never across a block boundary.
    pub(crate) fn claim(&self, want: usize) -> Result<Claim<T>, ClaimError> {
        debug_assert!(want > 0);
        let spin = Spin::new();
        let bs = self.block_size as u64;
        loop {
            // Acquire: pairs with the installer's Release store of `tail`, so that
            // `tail_block` below is at least the block of this lap.
            let tail = self.tail.load(Ordering::Acquire);
            if tail & CLOSED != 0 {
                return Err(ClaimError::Closed);
            }
            let index = tail & ((1 << self.shift) - 1);
            if index == bs {
                // The producer that took the last slot is installing the next block.
                spin.snooze();
                continue;
            }
            let offset = self.dense(tail);
            let mut count = want.min((bs - index) as usize) as u64;
            if self.policy.blocks_producers() {
                // Acquire: pairs with the Release in `refresh_limit`.
                let mut limit = self.limit.load(Ordering::Acquire);
                if offset >= limit {
                    limit = self.refresh_limit();
                    if offset >= limit {
                        return Err(ClaimError::Full);
                    }
                }
                count = count.min(limit - offset);
            }
            // Acquire: pairs with the installer's Release store; see above.
            let block = self.tail_block.load(Ordering::Acquire);
            // AcqRel on success: the claim must not be reordered before the loads above; the
            // Acquire on failure re-reads the newest tail.
            if self
                .tail
                .compare_exchange_weak(tail, tail + count, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // `tail` did not change between the load of `tail` and the CAS, and it only
                // ever grows, so no lap ended in between: `block` is this lap's block.
                if index + count == bs {
                    self.install_next(offset + count);
                } else if self.holds_a_block_too_many(offset + count) {
                    self.enforce_retention_at(offset + count);
                }
                return Ok(Claim {
                    block,
                    index: index as usize,
                    count: count as usize,
                    offset,
                });
            }
            spin.snooze();
        }
    }

    /// Appends a record recovered from a file-backed partition, with its stored timestamp.
    pub(crate) fn restore(&mut self, timestamp: u64, key: Option<Box<[u8]>>, value: T) {
        let claim = self
            .claim(1)
            .expect("a partition being opened is neither closed nor full");
        self.publish(
            claim,
            std::iter::once(Entry {
                timestamp,
                key,
                value,
            }),
        );
    }

    /// Appends `count` lost records (recovery of a file-backed partition found them gone): their
    /// slots are complete but hold nothing, and a reader that reaches them is told it skipped
    /// them (`Lagged`), as if retention had removed them.
    pub(crate) fn restore_missing(&mut self, count: u64) {
        let first = self.end();
        let end = first + count;
        let bs = self.block_size as u64;
        // `&mut self`: nothing else touches the partition, so plain loads and stores do.
        while self.end() < end {
            let tail = self.tail.load(Ordering::Relaxed);
            let index = tail & ((1 << self.shift) - 1);
            let base = self.end() - index;
            if index == 0 && end - base >= bs {
                // A whole block of lost records: a hole, with no slot memory, in place of the
                // fresh (empty) tail block; then the next block is installed as after a
                // block's last claim.
                let hole = Arc::new(Block::hole(base, self.block_size));
                let hole_ptr = ptr::from_ref::<Block<T>>(&hole).cast_mut();
                let fresh =
                    std::mem::replace(lock(&self.blocks).back_mut().expect("a tail block"), hole);
                drop(fresh);
                self.tail_block.store(hole_ptr, Ordering::Relaxed);
                self.tail.store(tail + bs, Ordering::Relaxed);
                self.install_next(base + bs);
                continue;
            }
            let want = usize::try_from(end - self.end()).unwrap_or(usize::MAX);
            let claim = self
                .claim(want)
                .expect("a partition being opened is neither closed nor full");
            // SAFETY: as in `publish`: the claimed slots are not written, so their block is
            // still owned by `blocks`.
            let block = unsafe { &*claim.block };
            for i in 0..claim.count {
                block.mark_missing(claim.index + i);
            }
        }
        if count > 0 {
            self.holes.push(first..end);
        }
    }

    /// Where the run of lost records that holds `pos` ends.
    pub(crate) fn hole_end(&self, pos: u64) -> u64 {
        let i = self.holes.partition_point(|hole| hole.end <= pos);
        self.holes
            .get(i)
            .filter(|hole| hole.contains(&pos))
            .map_or(pos + 1, |hole| hole.end)
    }

    /// Writes the claimed slots, in order, from `entries` (which yields exactly
    /// `claim.count` entries), then wakes parked readers.
    pub(crate) fn publish(&self, claim: Claim<T>, entries: impl Iterator<Item = Entry<T>>) {
        // SAFETY: the claimed slots are not yet written, so the block is not complete, so
        // retention has not dropped it (it drops complete blocks only), and `blocks` still
        // owns it.
        let block = unsafe { &*claim.block };
        let mut written = 0;
        let mut bytes = 0;
        for (i, entry) in entries.take(claim.count).enumerate() {
            if self.policy.retain_bytes.is_some() {
                bytes += record_size(&entry);
            }
            // SAFETY: slot `claim.index + i` was claimed by this producer alone and is
            // written once.
            unsafe { block.write(claim.index + i, entry) };
            written += 1;
        }
        assert_eq!(written, claim.count, "a claim must be filled completely");
        if bytes > 0 {
            // Relaxed: read by retention under the `blocks` lock, only to estimate usage.
            block.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        self.data.notify_all_fenced();
    }

    /// Installs the block that starts at `base` (called by the producer that claimed the last
    /// slot of the previous block), then applies retention.
    fn install_next(&self, base: u64) {
        let recycled = lock(&self.spare).pop();
        let block = Arc::new(match recycled {
            Some(slots) => Block::from_slots(base, slots),
            None => Block::new(base, self.block_size),
        });
        let block_ptr = ptr::from_ref::<Block<T>>(&block).cast_mut();
        {
            let mut blocks = lock(&self.blocks);
            blocks.push_back(block);
            self.retain(&mut blocks, base);
        }
        // Release: publishes the new block to producers that Acquire `tail` then
        // `tail_block`.
        self.tail_block.store(block_ptr, Ordering::Release);
        // Moves `(lap, block_size)` to `(lap + 1, 0)`, keeping the CLOSED bit. Release: see
        // above.
        let step = (1u64 << self.shift) - self.block_size as u64;
        self.tail.fetch_add(step, Ordering::Release);
    }

    /// Applies retention now (age retention otherwise runs only when a block fills).
    pub(crate) fn enforce_retention(&self) {
        self.enforce_retention_at(self.end());
    }

    fn enforce_retention_at(&self, end: u64) {
        let mut blocks = lock(&self.blocks);
        self.retain(&mut blocks, end);
    }

    /// Whether a bounded partition whose end is `end` holds a whole block more than its
    /// capacity, so that its oldest block can go now rather than when the next block is
    /// installed: the bound then holds within one block, not two. One load of `start`, which
    /// changes once per block.
    fn holds_a_block_too_many(&self, end: u64) -> bool {
        self.policy
            .capacity
            .is_some_and(|capacity| end - self.start() >= capacity + self.block_size as u64)
    }

    /// Drops complete blocks from the front while the policy says they are not needed.
    fn retain(&self, blocks: &mut VecDeque<Arc<Block<T>>>, end: u64) {
        let bs = self.block_size as u64;
        let policy = &self.policy;
        let keep_from = match (policy.capacity, policy.overflow) {
            (Some(capacity), Overflow::DropOldest) => Some(end.saturating_sub(capacity)),
            (Some(capacity), Overflow::Block) => {
                let slowest = lock(&self.tracked)
                    .iter()
                    // Acquire: pairs with the reader's Release of its position.
                    .map(|(_, pos)| pos.load(Ordering::Acquire))
                    .min();
                // A bounded log keeps its newest `capacity` records replayable, whoever read
                // them; and never drops what the slowest tracked reader has not read.
                let newest = end.saturating_sub(capacity);
                Some(slowest.map_or(newest, |slowest| slowest.min(newest)))
            }
            (None, _) => None,
        };
        let mut bytes: u64 = match policy.retain_bytes {
            // Relaxed: an estimate (see `publish`).
            Some(_) => blocks.iter().map(|b| b.bytes.load(Ordering::Relaxed)).sum(),
            None => 0,
        };
        let oldest_allowed = policy
            .retain_age_nanos
            .map(|age| crate::clock::now_nanos().saturating_sub(age));
        let mut dropped = false;
        while blocks.len() > 1 {
            let front = &blocks[0];
            let by_count = keep_from.is_some_and(|keep| front.base + bs <= keep);
            let by_bytes = policy.retain_bytes.is_some_and(|max| bytes > max);
            let by_age = oldest_allowed
                .is_some_and(|oldest| front.last_timestamp().is_some_and(|ts| ts < oldest));
            if !(by_count || by_bytes || by_age) || !front.is_complete() {
                break;
            }
            // Relaxed: see above.
            bytes = bytes.saturating_sub(front.bytes.load(Ordering::Relaxed));
            let front = blocks.pop_front().expect("len > 1");
            // Reuse its memory unless a reader still holds it (then it is freed when the
            // reader moves on), or it is a hole (which has none).
            if let Ok(block) = Arc::try_unwrap(front)
                && !block.is_hole()
            {
                let mut spare = lock(&self.spare);
                if spare.len() < SPARE_BLOCKS {
                    spare.push(block.recycle());
                }
            }
            dropped = true;
        }
        if dropped {
            // Release: pairs with readers' Acquire of `start`. Written under the `blocks`
            // lock, so `start` and the front block always agree for lock holders.
            self.start.store(blocks[0].base, Ordering::Release);
        }
    }

    /// `Overflow::Block` only: whether the next claim would wait for readers (recomputed).
    pub(crate) fn is_full(&self) -> bool {
        self.policy.blocks_producers() && self.end() >= self.refresh_limit()
    }

    /// Recomputes the `Overflow::Block` limit from the tracked readers.
    fn refresh_limit(&self) -> u64 {
        let capacity = self.policy.capacity.unwrap_or(u64::MAX);
        let tracked = lock(&self.tracked);
        let limit = tracked
            .iter()
            // Acquire: pairs with the reader's Release of its position.
            .map(|(_, pos)| pos.load(Ordering::Acquire))
            .min()
            .map_or(u64::MAX, |slowest| slowest.saturating_add(capacity));
        // Release: pairs with the Acquire in `claim`. Under the `tracked` lock, so that two
        // refreshes cannot store out of order with a registration.
        self.limit.store(limit, Ordering::Release);
        limit
    }

    /// The block holding `pos`.
    pub(crate) fn lookup(&self, pos: u64) -> Lookup<T> {
        let blocks = lock(&self.blocks);
        Self::lookup_in(&blocks, self.block_size, pos)
    }

    fn lookup_in(blocks: &VecDeque<Arc<Block<T>>>, block_size: usize, pos: u64) -> Lookup<T> {
        let front = blocks.front().expect("a partition always has a block").base;
        if pos < front {
            return Lookup::Behind;
        }
        let index = ((pos - front) / block_size as u64) as usize;
        match blocks.get(index) {
            Some(block) => Lookup::Found(Arc::clone(block)),
            None => Lookup::NotYet,
        }
    }

    /// Positions a reader: resolves its new position and the block holding it under the
    /// `blocks` lock, and stores (and, the first time, registers) its tracked position under
    /// the same lock, so that retention cannot drop records between the two. Returns the block
    /// whose range holds the position, or the last block when the position is the end.
    pub(crate) fn position<E>(
        &self,
        resolve: impl FnOnce(&Self, &VecDeque<Arc<Block<T>>>) -> Result<u64, E>,
        tracking: Option<Tracking<'_>>,
    ) -> Result<(u64, Arc<Block<T>>), E> {
        let blocks = lock(&self.blocks);
        let pos = resolve(self, &blocks)?;
        let block = match Self::lookup_in(&blocks, self.block_size, pos) {
            Lookup::Found(block) => block,
            Lookup::NotYet | Lookup::Behind => Arc::clone(blocks.back().expect("non-empty")),
        };
        if let Some(tracking) = tracking {
            // Release: pairs with the Acquire in `refresh_limit` and `retain`.
            tracking.position.store(pos, Ordering::Release);
            if tracking.register {
                lock(&self.tracked).push((tracking.id, Arc::clone(tracking.position)));
            }
            self.refresh_limit();
        }
        Ok((pos, block))
    }

    /// The first offset at or after `nanos`, or the end.
    pub(crate) fn offset_for_time(&self, blocks: &VecDeque<Arc<Block<T>>>, nanos: u64) -> u64 {
        let skip = blocks
            .iter()
            .take_while(|b| b.last_timestamp().is_some_and(|ts| ts < nanos))
            .count();
        for block in blocks.iter().skip(skip) {
            for index in 0..block.len() {
                match block.read(index) {
                    Some(entry) if entry.timestamp < nanos => {}
                    None if block.is_missing(index) => {}
                    Some(_) | None => return block.base + index as u64,
                }
            }
        }
        self.end()
    }

    pub(crate) fn untrack(&self, id: u64) {
        lock(&self.tracked).retain(|(i, _)| *i != id);
        // The slowest reader may be gone: producers waiting for room must look again.
        self.space.notify_all_fenced();
    }

    /// Marks the partition closed and wakes every waiter.
    pub(crate) fn close(&self) {
        // AcqRel: a claim that loads `tail` after this sees CLOSED and fails.
        self.tail.fetch_or(CLOSED, Ordering::AcqRel);
        self.data.notify_all_fenced();
        self.space.notify_all_fenced();
    }
}

/// The size a record counts for in byte retention.
fn record_size<T>(entry: &Entry<T>) -> u64 {
    (std::mem::size_of::<Entry<T>>() + entry.key.as_ref().map_or(0, |k| k.len())) as u64
}
