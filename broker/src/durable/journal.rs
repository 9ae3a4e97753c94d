//! The journal of one file-backed partition: it stands in front of the in-memory partition,
//! so that an append reaches the segment files before readers can see it.
//!
//! With [`Durability::Always`] a record is published to readers only once it is fsynced, and
//! producers share fsyncs: while one fsync runs, the appends behind it queue, and the next
//! fsync covers them all (group commit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::block::Entry;
use crate::partition::{Claim, ClaimError, Partition};
use crate::storage::codec::CodecError;
use crate::storage::{Durability, PartitionLog, StorageError};

/// Why a file-backed append did not happen (or is not known durable).
pub(crate) enum JournalFailure<T> {
    /// Refused before anything was written; the entry is given back.
    Refused(ClaimError, Entry<T>),
    /// Encoding or writing failed; nothing was kept; the entry is given back.
    Storage(String, Entry<T>),
    /// Appended (and visible), but the fsync failed: it may not survive a power loss.
    NotDurable(u64, String),
}

struct State {
    log: PartitionLog,
    scratch: Vec<u8>,
}

/// A record written to the files, its offset claimed in memory, not yet visible to readers.
pub(crate) struct Written<T> {
    claim: Claim<T>,
    entry: Entry<T>,
    /// The file layer could not fsync it.
    pub(crate) unsynced: Unsynced,
}

/// Why the file layer could not fsync a written record, if it could not.
pub(crate) struct Unsynced(Option<String>);

impl Unsynced {
    pub(crate) fn take_message(&mut self) -> Option<String> {
        self.0.take()
    }
}

impl<T> Written<T> {
    pub(crate) fn offset(&self) -> u64 {
        self.claim.offset
    }

    /// Makes it visible to the readers of `part` (the partition it was written for).
    pub(crate) fn publish(self, part: &Partition<T>) {
        part.publish(self.claim, std::iter::once(self.entry));
    }
}

/// The files of one partition, and the order in which appends reach them.
pub(crate) struct Journal<T> {
    state: Mutex<State>,
    /// Every offset below this is fsynced (`Durability::Always`).
    synced: AtomicU64,
    /// One fsync at a time; the others wait and usually find their record covered.
    sync_turn: Mutex<()>,
    durability: Durability,
    encode: fn(&T, &mut Vec<u8>) -> Result<(), CodecError>,
    /// Byte and age retention of the files (the topic's), applied every 1024 appends.
    retain_bytes: Option<u64>,
    retain_age: Option<Duration>,
}

fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T> Journal<T> {
    pub(crate) fn new(
        log: PartitionLog,
        durability: Durability,
        encode: fn(&T, &mut Vec<u8>) -> Result<(), CodecError>,
        retention: (Option<u64>, Option<Duration>),
    ) -> Self {
        let synced = AtomicU64::new(log.next_offset());
        Self {
            state: Mutex::new(State {
                log,
                scratch: Vec::new(),
            }),
            synced,
            sync_turn: Mutex::new(()),
            durability,
            encode,
            retain_bytes: retention.0,
            retain_age: retention.1,
        }
    }

    /// Appends `entry` to the files, then to `part` (after its fsync with
    /// [`Durability::Always`]). Returns its offset. Blocks the calling thread for the file
    /// work: async producers hand it to the topic's [`Writer`](super::Writer) instead.
    pub(crate) fn append(
        &self,
        part: &Partition<T>,
        entry: Entry<T>,
    ) -> Result<u64, JournalFailure<T>> {
        let mut written = self.write(part, entry)?;
        let offset = written.offset();
        let synced = match written.unsynced.take_message() {
            Some(message) => Err(message),
            None => self.sync_for(offset + 1),
        };
        written.publish(part);
        synced
            .map(|()| offset)
            .map_err(|message| JournalFailure::NotDurable(offset, message))
    }

    /// Writes `entry` to the files and claims its offset in `part`, without publishing it:
    /// the caller syncs as the durability asks ([`sync_for`](Self::sync_for)), then
    /// publishes.
    pub(crate) fn write(
        &self,
        part: &Partition<T>,
        mut entry: Entry<T>,
    ) -> Result<Written<T>, JournalFailure<T>> {
        let mut state = lock(&self.state);
        // Under the state lock nobody else appends, so the room seen here is still there
        // when the record is claimed below.
        if part.is_closed() {
            return Err(JournalFailure::Refused(ClaimError::Closed, entry));
        }
        if part.is_full() {
            return Err(JournalFailure::Refused(ClaimError::Full, entry));
        }
        let State { log, scratch } = &mut *state;
        scratch.clear();
        if let Err(err) = (self.encode)(&entry.value, scratch) {
            return Err(JournalFailure::Storage(err.to_string(), entry));
        }
        entry.timestamp = crate::clock::now_nanos();
        let (offset, unsynced) = match log.append(entry.timestamp, entry.key.as_deref(), scratch) {
            Ok(offset) => (offset, Unsynced(None)),
            // Written, so it takes its offset in memory too.
            Err(StorageError::NotDurable { offset, source }) => {
                (offset, Unsynced(Some(source.to_string())))
            }
            Err(err) => return Err(JournalFailure::Storage(err.to_string(), entry)),
        };
        let claim = match part.claim(1) {
            Ok(claim) => claim,
            // Closed in between: the record is in the files (it reappears after a restart)
            // but was not acknowledged.
            Err(err) => return Err(JournalFailure::Refused(err, entry)),
        };
        debug_assert_eq!(claim.offset, offset, "the files and the memory log agree");
        if offset % 1024 == 1023 && (self.retain_bytes.is_some() || self.retain_age.is_some()) {
            let _ = log.retain(self.retain_bytes, self.retain_age, entry.timestamp);
        }
        Ok(Written {
            claim,
            entry,
            unsynced,
        })
    }

    /// Makes every offset below `target` as durable as the durability level promises before
    /// an acknowledgement: fsynced with [`Durability::Always`] (sharing fsyncs), nothing to
    /// do otherwise.
    pub(crate) fn sync_for(&self, target: u64) -> Result<(), String> {
        match self.durability {
            Durability::Always => self.sync_through(target),
            Durability::Interval(_) | Durability::Never => Ok(()),
        }
    }

    /// Makes every offset below `target` durable, sharing fsyncs between producers.
    fn sync_through(&self, target: u64) -> Result<(), String> {
        // Acquire: pairs with the Release below, after the fsync that covered it.
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let _turn = lock(&self.sync_turn);
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(()); // another producer's fsync covered this record: group commit
        }
        self.sync_now()
    }

    /// Fsyncs everything appended so far.
    pub(crate) fn sync_now(&self) -> Result<(), String> {
        let mut state = lock(&self.state);
        let end = state.log.next_offset();
        state.log.sync().map_err(|e| e.to_string())?;
        drop(state);
        // Release: pairs with the Acquire in `sync_through`.
        self.synced.fetch_max(end, Ordering::Release);
        Ok(())
    }

    /// Applies byte and age retention to the files now.
    pub(crate) fn retain(&self) {
        let _ = lock(&self.state).log.retain(
            self.retain_bytes,
            self.retain_age,
            crate::clock::now_nanos(),
        );
    }
}
