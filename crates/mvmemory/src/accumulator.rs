//! The accumulator: one location that most transactions of a block apply deltas to (an EVM
//! block's fee recipient, credited by every transaction), with each transaction's deltas kept
//! in a slot of its own instead of in the location's version list.
//!
//! # Why
//!
//! In the version list every transaction's delta is an insert under the location's shard lock
//! while it executes and a second lock when it commits, all on one cache line that both cores
//! write, and the list grows by an entry per transaction. Here a transaction's deltas go to its
//! own slot, which no other writer touches; the version list keeps only full values: those of
//! transactions that wrote the location outright, and the value each committed transaction's
//! deltas gave ([`MvMemory::materialize`], in block order, by the committing thread alone).
//!
//! # Reads
//!
//! A read below `i` takes the highest list entry below `i`, at `w` (a value, or an `ESTIMATE`
//! that ends the read as usual), then the slots of `w + 1 .. i` in order: deltas are collected,
//! an `ESTIMATE` (an aborted transaction's deltas) ends the read. Every committed transaction's
//! deltas are a value in the list, so the scan covers the transactions between the commit
//! point and the reader, and reads of the location are rare (a transaction that pays a fee
//! does not read the recipient). A slot still empty because its transaction has not run is
//! read as no delta, as a location an unexecuted transaction will write is read around: when
//! the transaction records deltas there for the first time, `record_writes` reports a new
//! location and the scheduler re-validates every transaction above it.
//!
//! # Lock order
//!
//! `last_writes[txn]` → slot, and `last_writes[txn]` → shard lock; materialising a committed
//! transaction holds its slot while it takes the shard lock (slot → shard, the only nesting of
//! the two). A read takes the shard lock, releases it, then takes the slots one at a time. No
//! code holds a shard lock while it takes a slot, or two slots.

use crate::versions::Entry;
use crate::{Incarnation, MvRead, TxnIndex, Version};
use blockstm_sync::SpinMutex;
use smallvec::SmallVec;

/// One transaction's deltas to the accumulator.
#[derive(Debug)]
pub(crate) enum Slot<D> {
    /// Its latest recorded incarnation applied no delta there (or it has not run yet).
    Empty,
    /// Its latest recorded incarnation applied these, in order.
    Deltas { incarnation: Incarnation, deltas: Box<[D]> },
    /// That incarnation was aborted; readers wait for the next.
    Estimate,
}

/// The accumulator's key and its per-transaction slots.
#[derive(Debug)]
pub(crate) struct Accumulator<K, D> {
    pub(crate) key: K,
    /// The key's hash (by the memory's hasher): most keys differ from it there.
    pub(crate) hash: u64,
    slots: Box<[SpinMutex<Slot<D>>]>,
}

impl<K, D: Clone> Accumulator<K, D> {
    pub(crate) fn new(key: K, hash: u64, num_txns: usize) -> Self {
        Self { key, hash, slots: (0..num_txns).map(|_| SpinMutex::new(Slot::Empty)).collect() }
    }

    /// Records the deltas of `incarnation` of `txn_idx`; true if its previous incarnation had
    /// none there (a new location for the scheduler).
    pub(crate) fn record(&self, txn_idx: TxnIndex, incarnation: Incarnation, deltas: Box<[D]>) -> bool {
        let previous =
            std::mem::replace(&mut *self.slots[txn_idx].lock(), Slot::Deltas { incarnation, deltas });
        matches!(previous, Slot::Empty)
    }

    /// Empties the slot of `txn_idx` (its latest incarnation applied no delta here).
    pub(crate) fn clear(&self, txn_idx: TxnIndex) {
        *self.slots[txn_idx].lock() = Slot::Empty;
    }

    /// Marks the deltas of `txn_idx`, if any, as an `ESTIMATE`.
    pub(crate) fn convert_to_estimate(&self, txn_idx: TxnIndex) {
        let mut slot = self.slots[txn_idx].lock();
        if matches!(*slot, Slot::Deltas { .. }) {
            *slot = Slot::Estimate;
        }
    }

    /// `f` on the deltas of `txn_idx` and the incarnation that applied them, under the slot's
    /// lock, if its slot holds any.
    pub(crate) fn with_deltas<R>(
        &self,
        txn_idx: TxnIndex,
        f: impl FnOnce(Incarnation, &[D]) -> R,
    ) -> Option<R> {
        match &*self.slots[txn_idx].lock() {
            Slot::Deltas { incarnation, deltas } => Some(f(*incarnation, deltas)),
            Slot::Empty | Slot::Estimate => None,
        }
    }

    /// Where a read's slot scan starts and the value under it, given the list's highest entry
    /// below the reader (taken under the shard lock); or the read's answer, an `ESTIMATE`.
    pub(crate) fn start<V: Clone>(below: Option<(TxnIndex, &Entry<V, D>)>) -> Result<Start<V>, MvRead<V, D>> {
        match below {
            Some((w, Entry::Value { incarnation, value })) => {
                Ok((w + 1, Some((Version::new(w, *incarnation), value.clone()))))
            }
            Some((w, Entry::Estimate)) => Err(MvRead::Estimate { blocking: w }),
            // Never there: `record_writes` keeps this key's deltas in the slots. Waiting is
            // always safe (the reader waits for `w` or re-executes), so that is the answer.
            Some((w, Entry::Deltas { .. })) => Err(MvRead::Estimate { blocking: w }),
            None => Ok((0, None)),
        }
    }

    /// What a read by `txn_idx` sees on top of `start` (see the module docs). Takes the slots
    /// one at a time, with no shard lock held.
    pub(crate) fn read<V>(&self, (start, base): Start<V>, txn_idx: TxnIndex) -> MvRead<V, D> {
        let mut deltas: SmallVec<[D; 2]> = SmallVec::new();
        for j in start..txn_idx {
            match &*self.slots[j].lock() {
                Slot::Empty => {}
                Slot::Deltas { deltas: own, .. } => deltas.extend(own.iter().cloned()),
                Slot::Estimate => return MvRead::Estimate { blocking: j },
            }
        }
        match base {
            _ if !deltas.is_empty() => MvRead::Deltas { base, deltas },
            Some((version, value)) => MvRead::Value { version, value },
            None => MvRead::NotFound,
        }
    }
}

/// Where an accumulator read's slot scan starts, and the full value under it (`None`: storage).
pub(crate) type Start<V> = (TxnIndex, Option<(Version, V)>);
