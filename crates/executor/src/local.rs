//! Per-execution lookups: the transaction's own writes and its captured reads.
//!
//! [`WriteSet`] is public: it is the one definition of how a transaction's own writes and
//! deltas behave (a read after a delta, a delta after a write), for both executors and for any
//! other view (a profiler, a tracer) that must see what they see.
//!
//! Most transactions touch a handful of locations, where a linear scan of an inline array beats
//! hashing. Past [`INDEX_FROM`] entries a hash index is built, so a transaction touching
//! thousands of locations stays linear overall instead of quadratic.

use ahash::RandomState;
use blockstm_mvmemory::{Delta, Write, apply_deltas};
use smallvec::{SmallVec, smallvec};
use std::collections::HashMap;
use std::hash::Hash;

/// Entries kept before a hash index is built.
const INDEX_FROM: usize = 16;

/// Finds positions of keys stored elsewhere (in a vector the caller owns).
#[derive(Debug)]
pub(crate) struct KeyIndex<K> {
    map: Option<HashMap<K, usize, RandomState>>,
}

impl<K: Eq + Hash + Clone> KeyIndex<K> {
    pub(crate) fn new() -> Self {
        Self { map: None }
    }

    /// Position of `key` among `keys`.
    #[inline]
    pub(crate) fn find<'a>(&self, key: &K, mut keys: impl Iterator<Item = &'a K>) -> Option<usize>
    where
        K: 'a,
    {
        match &self.map {
            Some(map) => map.get(key).copied(),
            None => keys.position(|k| k == key),
        }
    }

    /// `keys` just grew by one entry, the last.
    #[inline]
    pub(crate) fn pushed<'a>(&mut self, keys: impl ExactSizeIterator<Item = &'a K>)
    where
        K: 'a,
    {
        let len = keys.len();
        match &mut self.map {
            Some(map) => {
                let key = keys.last().expect("an entry was pushed");
                map.insert(key.clone(), len - 1);
            }
            None if len > INDEX_FROM => {
                self.map = Some(keys.enumerate().map(|(i, k)| (k.clone(), i)).collect());
            }
            None => {}
        }
    }
}

/// A transaction's writes, one entry per key (a value or the deltas applied to it), in
/// first-write order.
#[derive(Debug)]
pub struct WriteSet<K, V, D> {
    entries: SmallVec<[(K, Write<V, D>); 4]>,
    index: KeyIndex<K>,
}

impl<K: Eq + Hash + Clone, V: Clone, D: Delta<V>> Default for WriteSet<K, V, D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Clone, D: Delta<V>> WriteSet<K, V, D> {
    /// No writes.
    pub fn new() -> Self {
        Self { entries: SmallVec::new(), index: KeyIndex::new() }
    }

    /// The transaction's write of `key`, if any.
    #[inline]
    pub fn get(&self, key: &K) -> Option<&Write<V, D>> {
        let i = self.index.find(key, self.entries.iter().map(|(k, _)| k))?;
        Some(&self.entries[i].1)
    }

    #[inline]
    fn set(&mut self, key: K, write: Write<V, D>) {
        match self.index.find(&key, self.entries.iter().map(|(k, _)| k)) {
            Some(i) => self.entries[i].1 = write,
            None => {
                self.entries.push((key, write));
                self.index.pushed(self.entries.iter().map(|(k, _)| k));
            }
        }
    }

    /// Writes `value` to `key` (replacing deltas or an earlier value).
    #[inline]
    pub fn insert(&mut self, key: K, value: V) {
        self.set(key, Write::Value(value));
    }

    /// Adds a delta: kept pending on top of earlier deltas (or of nothing), applied at once on
    /// a written value. The error gives the key back with the failed application's message.
    #[inline]
    pub fn apply_delta(&mut self, key: K, delta: D) -> Result<(), (K, String)> {
        match self.index.find(&key, self.entries.iter().map(|(k, _)| k)) {
            Some(i) => match &mut self.entries[i].1 {
                Write::Deltas(deltas) => deltas.push(delta),
                Write::Value(value) => match apply_deltas(Some(&*value), &[delta]) {
                    Ok(applied) => *value = applied,
                    Err(message) => return Err((key, message)),
                },
            },
            None => self.set(key, Write::Deltas(smallvec![delta])),
        }
        Ok(())
    }

    /// What the transaction's own writes say about a read of `key`.
    #[inline]
    pub fn own(&self, key: &K) -> Own<V, D> {
        match self.get(key) {
            Some(Write::Value(value)) => Own::Value(value.clone()),
            Some(Write::Deltas(deltas)) => Own::Deltas(deltas.clone()),
            None => Own::None,
        }
    }

    /// A read of `key`, on which the transaction applied `deltas`, found `below` under them:
    /// the deltas apply now and their result becomes the transaction's write of `key`. The
    /// error is the failed application's message.
    pub fn settle(&mut self, key: &K, deltas: &[D], below: Option<V>) -> Result<Option<V>, String> {
        let value = apply_deltas(below.as_ref(), deltas)?;
        self.insert(key.clone(), value.clone());
        Ok(Some(value))
    }

    /// Whether any entry is (still) deltas.
    pub fn has_deltas(&self) -> bool {
        self.entries.iter().any(|(_, write)| matches!(write, Write::Deltas(_)))
    }
}

impl<K, V, D> IntoIterator for WriteSet<K, V, D> {
    type Item = (K, Write<V, D>);
    type IntoIter = smallvec::IntoIter<[(K, Write<V, D>); 4]>;

    /// The writes in first-write order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// A transaction's own write of a location, as a read sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Own<V, D> {
    /// It wrote this value.
    Value(V),
    /// It applied these deltas without reading: the value below is needed.
    Deltas(SmallVec<[D; 1]>),
    /// It did not write the location.
    None,
}

/// Why an execution stopped serving reads, beyond a blocked read.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Storage failed.
    Storage(crate::StorageError),
    /// The transaction's own deltas failed to apply (`key` as text).
    Delta { key: String, message: String },
    /// Deltas of lower transactions failed to resolve: this execution cannot be the final one.
    Doomed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_set_overwrites_and_finds_past_the_index_threshold() {
        let mut writes: WriteSet<u32, u32, blockstm_mvmemory::NoDelta> = WriteSet::new();
        for round in 0..2u32 {
            for k in 0..100u32 {
                writes.insert(k, k + round);
            }
        }
        for k in 0..100u32 {
            assert_eq!(writes.get(&k), Some(&Write::Value(k + 1)));
        }
        assert_eq!(writes.get(&100), None);
        let all: Vec<_> = writes.into_iter().collect();
        assert_eq!(all.len(), 100);
        assert_eq!(all[7], (7, Write::Value(8)), "first-write order, last value");
    }

    #[test]
    fn deltas_stay_pending_until_a_value_is_written_under_them() {
        use blockstm_mvmemory::Add;
        let mut writes: WriteSet<u32, u64, Add> = WriteSet::new();
        writes.apply_delta(1, Add(2)).unwrap();
        writes.apply_delta(1, Add(-1)).unwrap();
        assert_eq!(writes.get(&1), Some(&Write::Deltas(smallvec![Add(2), Add(-1)])));
        writes.insert(1, 10);
        writes.apply_delta(1, Add(5)).unwrap();
        assert_eq!(writes.get(&1), Some(&Write::Value(15)));
        assert_eq!(writes.apply_delta(1, Add(-16)), Err((1, "15 + -16 does not fit in u64".into())));
        assert_eq!(writes.get(&1), Some(&Write::Value(15)), "a failed delta changes nothing");
    }
}
