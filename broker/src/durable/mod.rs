//! File-backed topics: what stands between the in-memory partitions and the segment files.
//!
//! The in-memory log ([`crate::partition`]) knows nothing about files. A file-backed topic puts
//! a [`Journal`] in front of each partition: an append goes to the partition's segment files
//! first, then to the in-memory log that serves every read. On open, the files are recovered
//! and replayed into memory, so readers and groups see the same log as before the restart.
//! Groups' committed offsets go to a [`GroupStore`]. Async producers hand their appends to
//! the topic's [`Writer`] thread, so that no file work blocks an executor's thread.
//!
//! std's primitives even under loom: file I/O is not part of any loom model, and the threads
//! here are plain threads.

mod group_store;
mod journal;
mod send;
mod writer;

pub(crate) use group_store::GroupStore;
pub(crate) use journal::{Journal, JournalFailure};
pub(crate) use send::{send, single};
pub(crate) use writer::{Stop, Writer};
