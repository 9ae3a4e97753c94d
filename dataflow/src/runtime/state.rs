//! Keyed state: the running aggregates of `count`, `fold` and `reduce`, kept where a
//! checkpoint can copy them, a changelog can follow them, and a restart can give them back.
//!
//! A task holds one [`KeyedState`] per stateful node of its segment. Generated code reads and
//! updates it like a `HashMap` (it dereferences to one; `entry`, `insert` and `remove` are its
//! own, so that it can note which keys changed). In one process the task encodes it into each
//! checkpoint and decodes it from the last one when it starts; on Redis and Kafka the task
//! appends the keys that changed to a changelog topic before it commits, and a task that gains
//! a partition restores that partition's keys from the changelog.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::ops::Deref;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError};
use crate::partition::partition_of;

/// The state of one node in one task: a value per key.
pub struct KeyedState<K, V> {
    node: usize,
    map: HashMap<K, V>,
    /// Keys changed since the changes were last taken, when a changelog follows the state.
    changed: Option<HashSet<K>>,
}

impl<K, V> KeyedState<K, V>
where
    K: Hash + Eq + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The state of `node`, decoded from `saved` (from the last checkpoint) when there is one.
    pub(crate) fn restore(node: usize, saved: Option<&[u8]>) -> Result<Self, CodecError> {
        let map = match saved {
            Some(bytes) => {
                // The bytes come from a checkpoint whose CRC matched: bytes this crate wrote,
                // so decoding them without a size limit cannot be made to allocate what they
                // do not hold (and a large state is no error).
                let (entries, read): (Vec<(K, V)>, usize) =
                    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                        .map_err(|e| CodecError::Decode(e.to_string()))?;
                if read != bytes.len() {
                    return Err(CodecError::TrailingBytes(bytes.len() - read));
                }
                entries.into_iter().collect()
            }
            None => HashMap::new(),
        };
        Ok(Self {
            node,
            map,
            changed: None,
        })
    }
}

impl<K: Hash + Eq + Clone, V> KeyedState<K, V> {
    /// The entry of `key` (noted as changed when a changelog follows the state).
    #[inline]
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        if let Some(changed) = &mut self.changed {
            changed.insert(key.clone());
        }
        self.map.entry(key)
    }

    /// Sets the value of `key`; returns the one before.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(changed) = &mut self.changed {
            changed.insert(key.clone());
        }
        self.map.insert(key, value)
    }

    /// Removes `key`; returns its value.
    #[inline]
    pub fn remove(&mut self, key: &K) -> Option<V> {
        if let Some(changed) = &mut self.changed {
            changed.insert(key.clone());
        }
        self.map.remove(key)
    }
}

impl<K, V> Deref for KeyedState<K, V> {
    type Target = HashMap<K, V>;

    #[inline(always)]
    fn deref(&self) -> &HashMap<K, V> {
        &self.map
    }
}

/// The codec of changelog entries.
fn change_codec() -> Codec {
    Codec::bincode().max_bytes(64 << 20)
}

/// What a checkpoint copies and a changelog follows: a node's state.
pub trait Snapshot: Send {
    /// The node whose state it is.
    fn node(&self) -> usize;

    /// Encodes the whole state into `out`.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// From now on, notes the keys that change (a changelog follows the state).
    fn track_changes(&mut self) {}

    /// Takes the changes since the last call: for each changed key, its partition among
    /// `partitions` and the key with its value (or none, removed), encoded.
    fn take_changes(
        &mut self,
        partitions: u32,
        out: &mut Vec<(u32, Vec<u8>)>,
    ) -> Result<(), CodecError> {
        let _ = (partitions, out);
        Ok(())
    }

    /// Applies a change that [`take_changes`](Self::take_changes) encoded.
    fn apply_change(&mut self, change: &[u8]) -> Result<(), CodecError> {
        let _ = change;
        Ok(())
    }

    /// Forgets the keys of every partition (among `partitions`) not in `owned`.
    fn keep_partitions(&mut self, owned: &[u32], partitions: u32) {
        let _ = (owned, partitions);
    }
}

impl<K, V> Snapshot for KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send,
    V: Serialize + DeserializeOwned + Send,
{
    fn node(&self) -> usize {
        self.node
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let entries: Vec<(&K, &V)> = self.map.iter().collect();
        Codec::bincode().max_bytes(usize::MAX).encode(&entries, out)
    }

    fn track_changes(&mut self) {
        self.changed.get_or_insert_with(HashSet::new);
    }

    fn take_changes(
        &mut self,
        partitions: u32,
        out: &mut Vec<(u32, Vec<u8>)>,
    ) -> Result<(), CodecError> {
        let Some(changed) = &mut self.changed else {
            return Ok(());
        };
        for key in changed.drain() {
            let mut bytes = Vec::new();
            change_codec().encode(&(&key, self.map.get(&key)), &mut bytes)?;
            out.push((partition_of(&key, partitions), bytes));
        }
        Ok(())
    }

    fn apply_change(&mut self, change: &[u8]) -> Result<(), CodecError> {
        let (key, value): (K, Option<V>) = change_codec().decode(change)?;
        match value {
            Some(value) => self.map.insert(key, value),
            None => self.map.remove(&key),
        };
        Ok(())
    }

    fn keep_partitions(&mut self, owned: &[u32], partitions: u32) {
        self.map
            .retain(|key, _| owned.contains(&partition_of(key, partitions)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_comes_back_whole() {
        let mut state = KeyedState::<String, u64>::restore(3, None).expect("empty");
        state.insert("a".to_owned(), 2);
        state.insert("b".to_owned(), 40);
        let mut bytes = Vec::new();
        state.save(&mut bytes).expect("encodes");
        let back = KeyedState::<String, u64>::restore(3, Some(&bytes)).expect("decodes");
        assert_eq!(*back, *state);
        assert_eq!(back.node(), 3);
    }

    #[test]
    fn a_state_of_another_type_is_an_error_not_a_wrong_state() {
        let mut state = KeyedState::<String, u64>::restore(0, None).expect("empty");
        state.insert("a".to_owned(), 2);
        let mut bytes = Vec::new();
        state.save(&mut bytes).expect("encodes");
        assert!(KeyedState::<u64, String>::restore(0, Some(&bytes)).is_err());
    }

    #[test]
    fn changes_replayed_in_order_rebuild_the_state_of_their_partitions() {
        let mut state = KeyedState::<u64, u64>::restore(1, None).expect("empty");
        state.track_changes();
        *state.entry(1).or_insert(0) += 5;
        state.insert(2, 7);
        let mut changes = Vec::new();
        state.take_changes(2, &mut changes).expect("encodes");
        state.remove(&2);
        state.take_changes(2, &mut changes).expect("encodes");
        assert!(state.take_changes(2, &mut Vec::new()).is_ok());
        let mut again = KeyedState::<u64, u64>::restore(1, None).expect("empty");
        for (_, change) in &changes {
            again.apply_change(change).expect("decodes");
        }
        assert_eq!(*again, *state);
        // Only the keys of the partitions kept stay.
        let mut kept = KeyedState::<u64, u64>::restore(1, None).expect("empty");
        kept.insert(1, 1);
        kept.insert(2, 2);
        kept.keep_partitions(&[partition_of(&1u64, 2)], 2);
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key(&1) || partition_of(&1u64, 2) == partition_of(&2u64, 2));
    }
}
