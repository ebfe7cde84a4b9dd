//! The block's final state: the value of every written location below the commit point,
//! sorted by key, taken whole or in parts on several threads.

use crate::versions::{Entry, Location};
use crate::{Delta, InvariantError, MvMemory, TxnIndex};
use std::hash::Hash;

impl<K, V, D> MvMemory<K, V, D>
where
    K: Eq + Hash + Clone,
    V: Clone,
    D: Delta<V>,
{
    /// The final value of every location written by a transaction below `below`, sorted by key.
    ///
    /// Call it once the transactions below `below` are committed (final): an `ESTIMATE` there is
    /// an invariant violation and is returned as an error.
    pub fn snapshot(&self, below: TxnIndex) -> Result<Vec<(K, V)>, InvariantError>
    where
        K: Ord,
    {
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            keys.reserve(shard.len());
            values.reserve(shard.len());
            for Location { key, versions } in shard.iter() {
                match versions.below(below) {
                    Some((_, Entry::Value { value, .. })) => {
                        keys.push((key.clone(), values.len()));
                        values.push(Some(value.clone()));
                    }
                    Some((j, entry)) => return Err(entry.unfinished(j, below)),
                    None => {}
                }
            }
        }
        // Shards iterate in the order their locations were first written, which changes with
        // the schedule (and the shards with the hash seed): sort so the caller sees the same
        // order on every run.
        Ok(sorted_by_key(keys, values))
    }

    /// Part `part` of `parts` of [`snapshot`](Self::snapshot), taken out of the memory: the
    /// shards `s` with `s % parts == part` are emptied, their final values moved (not cloned)
    /// into the returned run, sorted by key, and everything else they held freed, by the
    /// calling thread. The runs of all parts, merged by [`merge_runs`], are the snapshot.
    ///
    /// For the end of a block, when nothing reads the memory any more: `parts` threads can
    /// each take a part, so the final sort and the freeing of a large block's versions run in
    /// parallel instead of after the workers, on one thread. Reads and writes of the emptied
    /// shards afterwards see a memory that never held those locations.
    pub fn take_snapshot_part(
        &self,
        below: TxnIndex,
        part: usize,
        parts: usize,
    ) -> Result<Vec<(K, V)>, InvariantError>
    where
        K: Ord,
    {
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for shard in self.shards.iter().skip(part).step_by(parts.max(1)) {
            let table = std::mem::take(&mut *shard.lock());
            keys.reserve(table.len());
            values.reserve(table.len());
            for Location { key, mut versions } in table {
                let end = versions.entries.partition_point(|(j, _)| *j < below);
                let Some(last) = end.checked_sub(1) else { continue };
                match versions.entries.swap_remove(last) {
                    (_, Entry::Value { value, .. }) => {
                        keys.push((key, values.len()));
                        values.push(Some(value));
                    }
                    (j, entry) => return Err(entry.unfinished(j, below)),
                }
            }
        }
        // Keys are distinct (each shard map holds a key once, shards partition the keys).
        Ok(sorted_by_key(keys, values))
    }
}

/// `(key, values[i])` for every `(key, i)` of `keys`, sorted by key (distinct keys, so the
/// unstable sort is deterministic). Keys and values apart: moving small (key, index) pairs in
/// the sort, then each value once into place, is cheaper than sorting (key, value) pairs when
/// values are large (an EVM account: a 150-byte pair).
fn sorted_by_key<K: Ord, V>(mut keys: Vec<(K, usize)>, mut values: Vec<Option<V>>) -> Vec<(K, V)> {
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    keys.into_iter().map(|(key, i)| (key, values[i].take().expect("each value is taken once"))).collect()
}

/// Merges runs sorted by key, with no key in two runs, into one sorted vector.
///
/// The runs are appended to the first and stably sorted: the standard library's stable sort
/// finds the sorted runs and merges them without a branch per entry, which is faster than
/// repeatedly taking the smallest head or a two-way merge of peeked iterators.
pub fn merge_runs<K: Ord, V>(runs: Vec<Vec<(K, V)>>) -> Vec<(K, V)> {
    let mut runs = runs.into_iter();
    let Some(mut out) = runs.next() else { return Vec::new() };
    if runs.len() == 0 {
        return out;
    }
    out.reserve(runs.as_slice().iter().map(Vec::len).sum());
    for mut run in runs {
        out.append(&mut run);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
