//! Per-execution lookups: the transaction's own writes and its captured reads.
//!
//! Most transactions touch a handful of locations, where a linear scan of an inline array beats
//! hashing. Past [`INDEX_FROM`] entries a hash index is built, so a transaction touching
//! thousands of locations stays linear overall instead of quadratic.

use ahash::RandomState;
use smallvec::SmallVec;
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

/// A transaction's writes, one entry per key, in first-write order.
#[derive(Debug)]
pub(crate) struct WriteSet<K, V> {
    entries: SmallVec<[(K, V); 4]>,
    index: KeyIndex<K>,
}

impl<K: Eq + Hash + Clone, V> WriteSet<K, V> {
    pub(crate) fn new() -> Self {
        Self { entries: SmallVec::new(), index: KeyIndex::new() }
    }

    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let i = self.index.find(key, self.entries.iter().map(|(k, _)| k))?;
        Some(&self.entries[i].1)
    }

    #[inline]
    pub(crate) fn insert(&mut self, key: K, value: V) {
        match self.index.find(&key, self.entries.iter().map(|(k, _)| k)) {
            Some(i) => self.entries[i].1 = value,
            None => {
                self.entries.push((key, value));
                self.index.pushed(self.entries.iter().map(|(k, _)| k));
            }
        }
    }

    pub(crate) fn into_iter(self) -> impl Iterator<Item = (K, V)> {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_set_overwrites_and_finds_past_the_index_threshold() {
        let mut writes = WriteSet::new();
        for round in 0..2u32 {
            for k in 0..100u32 {
                writes.insert(k, k + round);
            }
        }
        for k in 0..100u32 {
            assert_eq!(writes.get(&k), Some(&(k + 1)));
        }
        assert_eq!(writes.get(&100), None);
        let all: Vec<_> = writes.into_iter().collect();
        assert_eq!(all.len(), 100);
        assert_eq!(all[7], (7, 8), "first-write order, last value");
    }
}
