//! The table side of a stream-table join: the latest value per key of a keyed stream.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem::size_of;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::operator::Checkpointed;
use super::snapshot;
use crate::codec::CodecError;

/// The latest value per key of a keyed stream (a changelog: `Some(value)` sets a key,
/// `None`, a tombstone, deletes it), which a stream joins against: Kafka Streams' `KTable`.
///
/// A stream record is enriched with the table as it stands when the record is processed
/// (processing order, as in Kafka Streams without versioned tables): `(K, (L, Option<V>))`,
/// `None` when the key has no value. An inner stream-table join is that, filtered on `Some`.
///
/// ```
/// use dataflow::time::Table;
///
/// let mut customers = Table::new();
/// customers.apply("c1", Some("Ada"));
/// customers.apply("c2", Some("Grace"));
/// customers.apply("c2", None); // tombstone
/// assert_eq!(customers.enrich("c1", 30), ("c1", (30, Some("Ada"))));
/// assert_eq!(customers.enrich("c2", 45), ("c2", (45, None)));
/// assert_eq!(customers.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Table<K, V> {
    rows: HashMap<K, V>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq, V> Table<K, V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one change: `Some(value)` sets `key`, `None` deletes it. Returns the value it
    /// replaced.
    pub fn apply(&mut self, key: K, value: Option<V>) -> Option<V> {
        match value {
            Some(value) => self.rows.insert(key, value),
            None => self.rows.remove(&key),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.rows.get(key)
    }

    /// A stream record of `key` with the table's value of it, if any.
    pub fn enrich<L>(&self, key: K, left: L) -> (K, (L, Option<V>))
    where
        V: Clone,
    {
        let right = self.rows.get(&key).cloned();
        (key, (left, right))
    }

    /// The number of keys with a value.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// An estimate of the table's size in bytes: keys and values themselves, not what they
    /// own on the heap.
    pub fn state_bytes(&self) -> usize {
        self.rows.capacity() * (size_of::<(K, V)>() + 1)
    }
}

impl<K, V> Checkpointed for Table<K, V>
where
    K: Hash + Eq + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let rows: Vec<(&K, &V)> = self.rows.iter().collect();
        snapshot::save(&rows, out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let rows: Vec<(K, V)> = snapshot::restore(bytes)?;
        self.rows = rows.into_iter().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_value_wins_and_a_tombstone_deletes() {
        let mut t = Table::new();
        assert_eq!(t.apply(1u32, Some("a")), None);
        assert_eq!(t.apply(1, Some("b")), Some("a"));
        assert_eq!(t.get(&1), Some(&"b"));
        assert_eq!(t.apply(1, None), Some("b"));
        assert_eq!(t.apply(1, None), None, "deleting a missing key is a no-op");
        assert!(t.is_empty());
        assert_eq!(t.enrich(1, 'x'), (1, ('x', None)));
    }

    #[test]
    fn a_saved_table_comes_back_whole() {
        let mut t = Table::new();
        for k in 0..100u32 {
            t.apply(k, Some(format!("v{k}")));
        }
        t.apply(7, None);
        let mut bytes = Vec::new();
        t.save(&mut bytes).expect("encodes");
        let mut back = Table::<u32, String>::new();
        back.restore(&bytes).expect("decodes");
        assert_eq!(back.rows, t.rows);
        let mut wrong = Table::<String, u32>::new();
        assert!(wrong.restore(&bytes).is_err());
    }
}
