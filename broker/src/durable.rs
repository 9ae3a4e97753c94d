//! File-backed partitions: an append goes to the partition's segment files first, then to the
//! in-memory log that serves every read. On open, the files are recovered and replayed into
//! memory, so readers and groups see the same log as before the restart.
//!
//! With [`Durability::Always`] a record is published to readers only once it is fsynced, and
//! producers share fsyncs: while one fsync runs, the appends behind it queue, and the next
//! fsync covers them all (group commit).

// std's primitives even under loom: file I/O is not part of any loom model, and the flusher
// is a plain thread.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::block::Entry;
use crate::partition::{ClaimError, Partition};
use crate::storage::codec::CodecError;
use crate::storage::{Durability, PartitionLog};

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

    /// Appends `entry` to the files, then to `part`. Returns its offset.
    pub(crate) fn append(
        &self,
        part: &Partition<T>,
        mut entry: Entry<T>,
    ) -> Result<u64, JournalFailure<T>> {
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
        let offset = match log.append(entry.timestamp, entry.key.as_deref(), scratch) {
            Ok(offset) => offset,
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
        drop(state);
        let synced = match self.durability {
            Durability::Always => self.sync_through(offset + 1),
            _ => Ok(()),
        };
        part.publish(claim, std::iter::once(entry));
        synced
            .map(|()| offset)
            .map_err(|message| JournalFailure::NotDurable(offset, message))
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

/// Fsyncs the journals of a topic with `Durability::Interval` every interval, until dropped.
pub(crate) struct Flusher {
    stop: Arc<AtomicBool>,
}

impl Flusher {
    pub(crate) fn start<T: Send + Sync + 'static>(
        journals: Vec<Arc<Journal<T>>>,
        every: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("broker-flush".to_owned())
            .spawn(move || {
                // Relaxed: a late stop costs one more round of fsyncs.
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    for journal in &journals {
                        let _ = journal.sync_now();
                    }
                }
            });
        drop(spawned);
        Self { stop }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Committed offsets of a file-backed topic's groups: one small file per group, replaced
/// atomically (write a temporary file, fsync, rename) on every commit.
///
/// ```text
/// count: u32 LE, offsets: [u64 LE; count], crc: u32 LE (CRC-32 of what precedes)
/// ```
pub(crate) struct GroupStore {
    pub(crate) fs: Arc<dyn crate::storage::fs::Fs>,
    pub(crate) root: std::path::PathBuf,
    pub(crate) topic: String,
}

impl GroupStore {
    fn path(&self, group: &str) -> Result<std::path::PathBuf, String> {
        crate::storage::group_file(&self.root, &self.topic, group).map_err(|e| e.to_string())
    }

    /// The offsets last committed by `group`, if it ever committed.
    pub(crate) fn load(&self, group: &str) -> Result<Option<Vec<u64>>, String> {
        let path = self.path(group)?;
        let bytes = match self.fs.read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("{path:?}: {err}")),
        };
        let corrupt = || format!("{path:?}: corrupt committed offsets");
        let count = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(corrupt)?;
        if bytes.len() != 4 + 8 * count + 4 {
            return Err(corrupt());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(corrupt());
        }
        Ok(Some(
            body[4..]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ))
    }

    /// Durably replaces `group`'s committed offsets.
    pub(crate) fn save(&self, group: &str, offsets: &[u64]) -> Result<(), String> {
        let path = self.path(group)?;
        let temporary = path.with_extension("offsets.tmp");
        let fail = |err: std::io::Error| format!("{path:?}: {err}");
        if let Some(dir) = path.parent() {
            self.fs.create_dir_all(dir).map_err(fail)?;
        }
        let mut bytes = Vec::with_capacity(8 + offsets.len() * 8);
        bytes.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        for offset in offsets {
            bytes.extend_from_slice(&offset.to_le_bytes());
        }
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let _ = self.fs.remove(&temporary);
        let mut file = self.fs.open_append(&temporary).map_err(fail)?;
        file.append(&bytes).map_err(fail)?;
        file.sync().map_err(fail)?;
        self.fs.rename(&temporary, &path).map_err(fail)
    }
}
