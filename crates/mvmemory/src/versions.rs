//! The versions of one location: an ordered list of entries, one per writing transaction.

use crate::{Delta, Incarnation, InvariantError, MvRead, TxnIndex, Version, apply_deltas};
use smallvec::SmallVec;

/// One transaction's entry at a location.
#[derive(Debug)]
pub(crate) enum Entry<V, D> {
    Value {
        incarnation: Incarnation,
        value: V,
    },
    /// Deltas the incarnation applied without reading the location, in the order it applied them.
    /// Boxed: an inline delta (16 bytes for [`Add`](crate::Add), 40 for an EVM credit) made every entry,
    /// and so every location's map bucket, that much larger for the few locations that take
    /// deltas; for `u64` values the bucket went from 112 to 64 bytes, one cache line.
    Deltas {
        incarnation: Incarnation,
        deltas: Box<[D]>,
    },
    Estimate,
}

impl<V, D> Entry<V, D> {
    pub(crate) fn incarnation(&self) -> Option<Incarnation> {
        match self {
            Entry::Value { incarnation, .. } | Entry::Deltas { incarnation, .. } => Some(*incarnation),
            Entry::Estimate => None,
        }
    }

    /// The error for this entry of transaction `j` found below snapshot point `below` when it
    /// is not a full value (everything there is committed, so it must be one).
    pub(crate) fn unfinished(&self, j: TxnIndex, below: TxnIndex) -> InvariantError {
        let left = if matches!(self, Entry::Estimate) { "an ESTIMATE" } else { "unmaterialised deltas" };
        InvariantError(format!("transaction {j} below the snapshot point {below} left {left}"))
    }
}

/// The versions of one location: entries sorted by writing transaction.
///
/// A sorted inline vector rather than a `BTreeMap`: most locations have one writer in a block,
/// which then costs no allocation, and a hot location's entries arrive roughly in block order,
/// so inserts land at or near the end. A `BTreeMap` (a node allocation per location and a tree
/// walk per read) cost about a fifth of the executor's time on independent transfers with no
/// VM work (`cargo run --release --example overhead`). One entry inline, not two: the list sits in the location map's bucket,
/// and a block of EVM transfers creates two locations per transaction (a second inline entry
/// of an account value made every bucket ~110 bytes larger).
#[derive(Debug)]
pub(crate) struct VersionList<V, D> {
    pub(crate) entries: SmallVec<[(TxnIndex, Entry<V, D>); 1]>,
}

impl<V, D> Default for VersionList<V, D> {
    fn default() -> Self {
        Self { entries: SmallVec::new() }
    }
}

impl<V: Clone, D: Clone> VersionList<V, D> {
    /// Position of `txn_idx`, or where it would be inserted.
    #[inline]
    pub(crate) fn search(&self, txn_idx: TxnIndex) -> Result<usize, usize> {
        // Fast path: appends in block order.
        match self.entries.last() {
            None => Err(0),
            Some((last, _)) if *last < txn_idx => Err(self.entries.len()),
            _ => self.entries.binary_search_by_key(&txn_idx, |(j, _)| *j),
        }
    }

    /// The entry of the highest transaction below `txn_idx`.
    #[inline]
    pub(crate) fn below(&self, txn_idx: TxnIndex) -> Option<(TxnIndex, &Entry<V, D>)> {
        let end = self.entries.partition_point(|(j, _)| *j < txn_idx);
        end.checked_sub(1).map(|i| (self.entries[i].0, &self.entries[i].1))
    }

    /// What a read by `txn_idx` sees: the highest entry below it and, if that is a delta, every
    /// delta down to the nearest full value or `ESTIMATE`.
    #[inline]
    pub(crate) fn read(&self, txn_idx: TxnIndex) -> MvRead<V, D> {
        let end = self.entries.partition_point(|(j, _)| *j < txn_idx);
        let mut deltas: SmallVec<[D; 2]> = SmallVec::new();
        let mut base = None;
        for (j, entry) in self.entries[..end].iter().rev() {
            match entry {
                Entry::Value { incarnation, value } => {
                    let version = Version::new(*j, *incarnation);
                    if deltas.is_empty() {
                        return MvRead::Value { version, value: value.clone() };
                    }
                    base = Some((version, value.clone()));
                    break;
                }
                // Resolving through an ESTIMATE would use a value about to change: wait for it.
                Entry::Estimate => return MvRead::Estimate { blocking: *j },
                // Collected top-down, reversed below.
                Entry::Deltas { deltas: own, .. } => deltas.extend(own.iter().rev().cloned()),
            }
        }
        if deltas.is_empty() {
            return MvRead::NotFound;
        }
        deltas.reverse();
        MvRead::Deltas { base, deltas }
    }

    #[inline]
    pub(crate) fn get(&self, txn_idx: TxnIndex) -> Option<&Entry<V, D>> {
        self.search(txn_idx).ok().map(|i| &self.entries[i].1)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, txn_idx: TxnIndex) -> Option<&mut Entry<V, D>> {
        self.search(txn_idx).ok().map(|i| &mut self.entries[i].1)
    }

    /// Sets the entry of `txn_idx`; true if it had none.
    #[inline]
    pub(crate) fn insert(&mut self, txn_idx: TxnIndex, entry: Entry<V, D>) -> bool {
        match self.search(txn_idx) {
            Ok(i) => {
                self.entries[i].1 = entry;
                false
            }
            Err(i) => {
                self.entries.insert(i, (txn_idx, entry));
                true
            }
        }
    }

    /// Replaces the deltas of committed `txn_idx` by the value they give on the value below it
    /// (`storage`: the storage value, once read, for when nothing is below).
    pub(crate) fn materialize(&mut self, txn_idx: TxnIndex, storage: Option<&Option<V>>) -> Materialized
    where
        D: Delta<V>,
    {
        let Some(Entry::Deltas { incarnation, deltas }) = self.get(txn_idx) else {
            return Materialized::Done;
        };
        let incarnation = *incarnation;
        match self.value_of_deltas(txn_idx, deltas, storage) {
            Ok(value) => self.commit_value(txn_idx, incarnation, value),
            Err(step) => step,
        }
    }

    /// [`materialize`](Self::materialize) for deltas kept outside the list (an accumulator's):
    /// sets the entry of committed `txn_idx` to the value `deltas`, applied by its incarnation
    /// `incarnation`, give on the value below it.
    pub(crate) fn materialize_deltas(
        &mut self,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        deltas: &[D],
        storage: Option<&Option<V>>,
    ) -> Materialized
    where
        D: Delta<V>,
    {
        match self.value_of_deltas(txn_idx, deltas, storage) {
            Ok(value) => self.commit_value(txn_idx, incarnation, value),
            Err(step) => step,
        }
    }

    /// The value `deltas` of `txn_idx` give on the full value below it, or what stops them.
    fn value_of_deltas(
        &self,
        txn_idx: TxnIndex,
        deltas: &[D],
        storage: Option<&Option<V>>,
    ) -> Result<V, Materialized>
    where
        D: Delta<V>,
    {
        let base = match (self.below(txn_idx), storage) {
            (Some((_, Entry::Value { value, .. })), _) => Some(value),
            (Some((j, _)), _) => return Err(Materialized::NotAValueBelow(j)),
            (None, Some(value)) => value.as_ref(),
            (None, None) => return Err(Materialized::NeedsStorage),
        };
        apply_deltas(base, deltas).map_err(Materialized::Failed)
    }

    /// Sets the committed value of `txn_idx` and prunes below it.
    fn commit_value(&mut self, txn_idx: TxnIndex, incarnation: Incarnation, value: V) -> Materialized {
        self.insert(txn_idx, Entry::Value { incarnation, value });
        // Everything below is committed and now hidden by this value from every reader that can
        // still come (all above it): drop it, so a location bumped by every transaction keeps a
        // short list instead of one entry per transaction of the block.
        self.prune_below(txn_idx);
        Materialized::Done
    }

    /// Drops the entries below `txn_idx` once they are at least as many as the rest. Draining
    /// moves every later entry to the front, and on a location every transaction writes (the
    /// fee recipient's deltas) execution runs ahead of commit by hundreds of entries: draining
    /// at every commit cost a copy of all of them per transaction, under the shard's lock.
    /// Waiting until the dead prefix outweighs the live part makes each entry move O(1) times
    /// (amortised), at most doubling the list. Entries below a committed value are never read
    /// (every reader to come is above it), so keeping them a while changes no result.
    pub(crate) fn prune_below(&mut self, txn_idx: TxnIndex) {
        let end = self.entries.partition_point(|(j, _)| *j < txn_idx);
        if end >= self.entries.len() - end {
            self.entries.drain(..end);
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, txn_idx: TxnIndex) {
        if let Ok(i) = self.search(txn_idx) {
            self.entries.remove(i);
        }
    }
}

/// One written location: its key and its versions.
#[derive(Debug)]
pub(crate) struct Location<K, V, D> {
    pub(crate) key: K,
    pub(crate) versions: VersionList<V, D>,
}

/// What [`VersionList::materialize`] did.
pub(crate) enum Materialized {
    /// Deltas replaced by their value (or there were none).
    Done,
    /// Nothing is below: call again with the storage value.
    NeedsStorage,
    /// Applying the deltas failed, with this message.
    Failed(String),
    /// The entry of this transaction below is not a value.
    NotAValueBelow(TxnIndex),
}
