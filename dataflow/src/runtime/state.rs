//! Keyed state: the running aggregates of `count`, `fold` and `reduce` (and, later, windows),
//! kept where a checkpoint can copy them and a restart can give them back.
//!
//! A task holds one [`KeyedState`] per stateful node of its segment, for the partition it
//! reads. Generated code reads and updates it like a `HashMap` (it dereferences to one); the
//! task encodes it into each checkpoint and decodes it from the last one when it starts.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError};

/// The state of one node in one task: a value per key.
pub struct KeyedState<K, V> {
    node: usize,
    map: HashMap<K, V>,
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
                let entries: Vec<(K, V)> = codec(bytes.len()).decode(bytes)?;
                entries.into_iter().collect()
            }
            None => HashMap::new(),
        };
        Ok(Self { node, map })
    }
}

/// The codec of saved states: bincode, with a limit no smaller than what was saved.
fn codec(len: usize) -> Codec {
    Codec::bincode().max_bytes(len.max(1 << 20))
}

impl<K, V> Deref for KeyedState<K, V> {
    type Target = HashMap<K, V>;

    #[inline(always)]
    fn deref(&self) -> &HashMap<K, V> {
        &self.map
    }
}

impl<K, V> DerefMut for KeyedState<K, V> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut HashMap<K, V> {
        &mut self.map
    }
}

/// What a checkpoint copies: a node's state, encoded.
pub trait Snapshot: Send {
    /// The node whose state it is.
    fn node(&self) -> usize;

    /// Encodes the whole state into `out`.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;
}

impl<K, V> Snapshot for KeyedState<K, V>
where
    K: Serialize + Send,
    V: Serialize + Send,
{
    fn node(&self) -> usize {
        self.node
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let entries: Vec<(&K, &V)> = self.map.iter().collect();
        Codec::bincode().max_bytes(usize::MAX).encode(&entries, out)
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
}
