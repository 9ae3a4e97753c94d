//! A block of record slots: the unit in which partition memory is allocated and freed.
//!
//! Each slot is written exactly once, by the producer that claimed its offset (see
//! [`Partition::claim`](crate::partition::Partition)), and becomes readable when its `ready`
//! flag is set. A block is freed when the partition has dropped it and no reader holds it.

use std::mem::MaybeUninit;

use crate::sync::{AtomicBool, AtomicU64, Ordering, UnsafeCell};

/// What a slot holds once written.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Append time, nanoseconds since the UNIX epoch.
    pub(crate) timestamp: u64,
    pub(crate) key: Option<Box<[u8]>>,
    pub(crate) value: T,
}

pub(crate) struct Slot<T> {
    /// Set once, with `Release`, after `entry` is fully written; read with `Acquire` before
    /// `entry` is read. Never cleared.
    ready: AtomicBool,
    entry: UnsafeCell<MaybeUninit<Entry<T>>>,
}

pub(crate) struct Block<T> {
    /// Offset of the first slot.
    pub(crate) base: u64,
    slots: Box<[Slot<T>]>,
    /// Sum of the record sizes written into this block; maintained only for topics with byte
    /// retention.
    pub(crate) bytes: AtomicU64,
}

// SAFETY: a block hands out `&Entry<T>` to readers on any thread (so `T: Sync`) and drops
// entries on whichever thread frees it (so `T: Send`). Slot writes are exclusive (one claimer
// per slot) and published through `ready`.
unsafe impl<T: Send + Sync> Sync for Block<T> {}
// SAFETY: as above; moving a block moves ownership of its entries.
unsafe impl<T: Send + Sync> Send for Block<T> {}

impl<T> Block<T> {
    pub(crate) fn new(base: u64, size: usize) -> Self {
        let slots = (0..size)
            .map(|_| Slot {
                ready: AtomicBool::new(false),
                entry: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            base,
            slots,
            bytes: AtomicU64::new(0),
        }
    }

    /// A block at `base` made of recycled slots (all unpublished).
    pub(crate) fn from_slots(base: u64, slots: Box<[Slot<T>]>) -> Self {
        Self {
            base,
            slots,
            bytes: AtomicU64::new(0),
        }
    }

    /// Drops every entry and gives the slots back for another block: allocating and faulting
    /// in a fresh block per `len()` records costs about a tenth of an SPSC append.
    pub(crate) fn recycle(mut self) -> Box<[Slot<T>]> {
        for slot in self.slots.iter() {
            // Relaxed: `self` is owned, so every other access happened before.
            if slot.ready.load(Ordering::Relaxed) {
                // SAFETY: the entry was initialised (ready) and is dropped exactly once, here;
                // the flag is cleared right after, so `Drop` will not drop it again.
                slot.entry
                    .with_mut(|ptr| unsafe { (*ptr).assume_init_drop() });
                slot.ready.store(false, Ordering::Relaxed);
            }
        }
        std::mem::take(&mut self.slots)
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
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
        // before `ready` is set below.
        slot.entry.with_mut(|ptr| unsafe { (*ptr).write(entry) });
        // Release: pairs with the Acquire in `read`, so a reader that sees `ready` sees the
        // whole entry.
        slot.ready.store(true, Ordering::Release);
    }

    /// The entry at `index`, if it was published.
    pub(crate) fn read(&self, index: usize) -> Option<&Entry<T>> {
        let slot = &self.slots[index];
        // Acquire: pairs with the Release in `write`.
        if slot.ready.load(Ordering::Acquire) {
            // SAFETY: `ready` is set only after the entry was written, it is never written
            // again, and the block (so the entry) lives as long as `&self`.
            Some(slot.entry.with(|ptr| unsafe { (*ptr).assume_init_ref() }))
        } else {
            None
        }
    }

    /// Whether every slot was published, so that no producer will touch this block again.
    pub(crate) fn is_complete(&self) -> bool {
        // Acquire: pairs with the Release in `write`; after this returns true no write to
        // this block is still in progress.
        self.slots.iter().all(|s| s.ready.load(Ordering::Acquire))
    }

    /// Timestamp of the newest published record (the last slot), if the block is complete.
    pub(crate) fn last_timestamp(&self) -> Option<u64> {
        self.read(self.slots.len() - 1).map(|e| e.timestamp)
    }
}

impl<T> Drop for Block<T> {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            // Relaxed: `&mut self` means every other access happened before (through the
            // `Arc` that owned this block).
            if slot.ready.load(Ordering::Relaxed) {
                // SAFETY: the entry was initialised (ready) and is dropped exactly once, here.
                slot.entry
                    .with_mut(|ptr| unsafe { (*ptr).assume_init_drop() });
            }
        }
    }
}
