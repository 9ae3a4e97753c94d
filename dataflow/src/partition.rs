//! Which partition a key goes to: one fixed hash, shared by `key_by`, the outputs of a task and
//! the producers of a `Connection`, so that every task, process and run of a build agree.

use std::hash::{DefaultHasher, Hash, Hasher};

/// The partition of `key` among `partitions`: a fixed hash, so that every task and every run
/// of a build agree.
pub fn partition_of<K: Hash + ?Sized>(key: &K, partitions: u32) -> u32 {
    if partitions == 1 {
        return 0;
    }
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % u64::from(partitions)) as u32
}
