//! A block of record slots: the unit in which partition memory is allocated and freed.
//!
//! Each slot is written exactly once, by the producer that claimed its offset (see
//! [`Partition::claim`](crate::partition::Partition)), and becomes readable when its `state`
//! becomes [`READY`]. A slot of a file-backed partition whose record recovery found lost
//! becomes [`MISSING`] instead, and holds nothing. A block is freed when the partition has
//! dropped it and no reader holds it.

use std::mem::MaybeUninit;

use crate::sync::{AtomicU8, AtomicU64, Ordering, UnsafeCell};

/// A slot not written yet.
const EMPTY: u8 = 0;
/// A slot whose entry is written.
const READY: u8 = 1;
/// A slot whose record was lost (recovery of a file-backed partition): it holds no entry.
const MISSING: u8 = 2;

/// What a slot holds once written.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Append time, nanoseconds since the UNIX epoch.
    pub(crate) timestamp: u64,
    pub(crate) key: Option<Box<[u8]>>,
    pub(crate) value: T,
}

/// What a slot holds, as [`Block::look`] sees it.
pub(crate) enum Look {
    /// Published: [`Block::read`] gives its entry.
    Ready,
    /// Not written yet.
    Empty,
    /// A lost record (never written).
    Missing,
}

pub(crate) struct Slot<T> {
    /// [`EMPTY`], then once [`READY`] (with `Release`, after `entry` is fully written; read
    /// with `Acquire` before `entry` is read) or [`MISSING`]. Reset only when the block is
    /// recycled.
    state: AtomicU8,
    entry: UnsafeCell<MaybeUninit<Entry<T>>>,
}

pub(crate) struct Block<T> {
    /// Offset of the first slot.
    pub(crate) base: u64,
    /// Empty for a [hole](Self::hole): a block of lost records that takes no slot memory.
    slots: Box<[Slot<T>]>,
    /// How many offsets it spans: `slots.len()`, or a hole's size.
    len: usize,
    /// Sum of the record sizes written into this block; maintained only for topics with byte
    /// retention.
    pub(crate) bytes: AtomicU64,
}

// SAFETY: a block hands out `&Entry<T>` to readers on any thread (so `T: Sync`) and drops
// entries on whichever thread frees it (so `T: Send`). Slot writes are exclusive (one claimer
// per slot) and published through `state`.
unsafe impl<T: Send + Sync> Sync for Block<T> {}
// SAFETY: as above; moving a block moves ownership of its entries.
unsafe impl<T: Send + Sync> Send for Block<T> {}

impl<T> Block<T> {
    pub(crate) fn new(base: u64, size: usize) -> Self {
        let slots: Box<[Slot<T>]> = (0..size)
            .map(|_| Slot {
                state: AtomicU8::new(EMPTY),
                entry: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            base,
            len: slots.len(),
            slots,
            bytes: AtomicU64::new(0),
        }
    }

    /// A block at `base` made of recycled slots (all unpublished).
    pub(crate) fn from_slots(base: u64, slots: Box<[Slot<T>]>) -> Self {
        Self {
            base,
            len: slots.len(),
            slots,
            bytes: AtomicU64::new(0),
        }
    }

    /// A block of `size` lost records at `base` (recovery of a file-backed partition found them
    /// gone): every offset reads as missing, and it takes no slot memory, so that a large gap
    /// costs little.
    pub(crate) fn hole(base: u64, size: usize) -> Self {
        Self {
            base,
            slots: Box::new([]),
            len: size,
            bytes: AtomicU64::new(0),
        }
    }

    /// Whether it is a [hole](Self::hole) (whose slots cannot be recycled).
    pub(crate) fn is_hole(&self) -> bool {
        self.slots.is_empty()
    }

    /// Drops every entry and gives the slots back for another block: allocating and faulting
    /// in a fresh block per `len()` records costs about a tenth of an SPSC append.
    pub(crate) fn recycle(mut self) -> Box<[Slot<T>]> {
        for slot in self.slots.iter() {
            // Relaxed: `self` is owned, so every other access happened before.
            if slot.state.load(Ordering::Relaxed) == READY {
                // SAFETY: the entry was initialised (ready) and is dropped exactly once, here;
                // the state is reset right after, so `Drop` will not drop it again.
                slot.entry
                    .with_mut(|ptr| unsafe { (*ptr).assume_init_drop() });
            }
            slot.state.store(EMPTY, Ordering::Relaxed);
        }
        std::mem::take(&mut self.slots)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes slot `index` and publishes it.
    ///
    /// # Safety
    ///
    /// The caller must hold the exclusive claim on slot `index` (it won the compare-exchange
    /// on the partition tail for this offset) and write it only once.
    pub(crate) unsafe fn write(&self, index: usize, entry: Entry<T>) {
        let slot = &self.slots[index];
        // SAFETY: the claim makes this thread the only writer, and no reader reads the entry
        // before `state` is READY (set below).
        slot.entry.with_mut(|ptr| unsafe { (*ptr).write(entry) });
        // Release: pairs with the Acquire in `read`, so a reader that sees READY sees the
        // whole entry.
        slot.state.store(READY, Ordering::Release);
    }

    /// Marks slot `index` as a lost record: complete, but with no entry to read.
    ///
    /// The caller must hold the exclusive claim on the slot, as for [`write`](Self::write).
    pub(crate) fn mark_missing(&self, index: usize) {
        // Release: pairs with the Acquire in `is_missing` and `is_complete`.
        self.slots[index].state.store(MISSING, Ordering::Release);
    }

    /// Whether slot `index` is a lost record.
    pub(crate) fn is_missing(&self, index: usize) -> bool {
        // Acquire: pairs with the Release in `mark_missing`.
        self.slots
            .get(index)
            .is_none_or(|slot| slot.state.load(Ordering::Acquire) == MISSING)
    }

    /// What slot `index` holds, from one load of its state (a reader that waits for the slot
    /// checks it in a loop while the producer writes it: one load, not two).
    pub(crate) fn look(&self, index: usize) -> Look {
        let Some(slot) = self.slots.get(index) else {
            return Look::Missing; // a hole has no slots
        };
        // Acquire: pairs with the Release in `write` and `mark_missing`.
        match slot.state.load(Ordering::Acquire) {
            READY => Look::Ready,
            MISSING => Look::Missing,
            _ => Look::Empty,
        }
    }

    /// The entry at `index`, if it was published.
    pub(crate) fn read(&self, index: usize) -> Option<&Entry<T>> {
        // A hole has no slot: nothing to read.
        let slot = self.slots.get(index)?;
        // Acquire: pairs with the Release in `write`.
        if slot.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY is set only after the entry was written, it is never written
            // again, and the block (so the entry) lives as long as `&self`.
            Some(slot.entry.with(|ptr| unsafe { (*ptr).assume_init_ref() }))
        } else {
            None
        }
    }

    /// Whether every slot was published (or marked missing), so that no producer will touch
    /// this block again.
    pub(crate) fn is_complete(&self) -> bool {
        // Acquire: pairs with the Release in `write` and `mark_missing`; after this returns
        // true no write to this block is still in progress.
        self.slots
            .iter()
            .all(|s| s.state.load(Ordering::Acquire) != EMPTY)
    }

    /// Timestamp of the newest record of a complete block (its last slot, or the last one
    /// before a run of missing slots; 0 if every record of it is missing); `None` if the block
    /// is not complete.
    pub(crate) fn last_timestamp(&self) -> Option<u64> {
        let last = self.len - 1;
        if let Some(entry) = self.read(last) {
            return Some(entry.timestamp);
        }
        if !self.is_missing(last) {
            return None;
        }
        // Only blocks restored with lost records get here.
        let newest = (0..last).rev().find_map(|i| self.read(i));
        Some(newest.map_or(0, |e| e.timestamp))
    }
}

impl<T> Drop for Block<T> {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            // Relaxed: `&mut self` means every other access happened before (through the
            // `Arc` that owned this block).
            if slot.state.load(Ordering::Relaxed) == READY {
                // SAFETY: the entry was initialised (ready) and is dropped exactly once, here.
                slot.entry
                    .with_mut(|ptr| unsafe { (*ptr).assume_init_drop() });
            }
        }
    }
}
