//! What an incarnation finds below its own writes in a parallel run: the multi-version
//! memory, then storage, every read captured for validation.

use crate::local::{Failure, KeyIndex};
use crate::view::ReadBelow;
use crate::{Halt, Storage, StorageError};
use blockstm_mvmemory::{Delta, MvMemory, MvRead, TxnIndex};
use blockstm_scheduler::Scheduler;
use blockstm_validator::{INLINE_READS, ReadOrigin, ReadSet, resolve_deltas};
use smallvec::SmallVec;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Why a parallel view stopped serving reads.
#[derive(Debug)]
pub(super) enum ViewHalt {
    /// Read an `ESTIMATE` of this transaction.
    Blocked(TxnIndex),
    /// Storage failed, a delta failed, or a resolution did.
    Failed(Failure),
}

/// Below one incarnation's own writes: its captured reads, then the multi-version memory, then
/// storage. Captures every read that leaves the transaction.
pub(super) struct ParallelBelow<'a, K, V, D, S> {
    mv: &'a MvMemory<K, V, D>,
    scheduler: &'a Scheduler,
    storage: &'a S,
    txn_idx: TxnIndex,
    /// Every read that left the transaction, with the version it saw.
    pub(super) reads: ReadSet<K, V>,
    /// The value of each captured read, by position in `reads`, so a repeated read returns the
    /// same value even if a lower transaction has written meanwhile.
    read_values: SmallVec<[Option<V>; INLINE_READS]>,
    read_index: KeyIndex<K>,
    /// Why the view stopped serving reads, if it did.
    pub(super) halt: Option<ViewHalt>,
    /// Times this execution waited for an executing lower transaction.
    pub(super) waits: usize,
    /// Time spent in those waits (measured only when a wait happens).
    pub(super) waited: Duration,
}

impl<'a, K, V, D, S> ParallelBelow<'a, K, V, D, S>
where
    K: Eq + Hash + Clone,
    V: Clone,
    D: Delta<V>,
    S: Storage<K, V>,
{
    pub(super) fn new(
        mv: &'a MvMemory<K, V, D>,
        scheduler: &'a Scheduler,
        storage: &'a S,
        txn_idx: TxnIndex,
    ) -> Self {
        Self {
            mv,
            scheduler,
            storage,
            txn_idx,
            reads: ReadSet::new(),
            read_values: SmallVec::new(),
            read_index: KeyIndex::new(),
            halt: None,
            waits: 0,
            waited: Duration::ZERO,
        }
    }

    #[inline]
    fn capture(&mut self, key: &K, origin: ReadOrigin<V>, value: Option<V>) {
        self.reads.push(key.clone(), origin);
        self.read_values.push(value);
        self.read_index.pushed(self.reads.iter().map(|(k, _)| k));
    }

    /// Stops the execution with `failure`.
    fn fail<T>(&mut self, failure: Failure) -> Result<T, Halt> {
        self.halt = Some(ViewHalt::Failed(failure));
        Err(Halt(()))
    }
}

impl<K, V, D, S> ReadBelow<K, V> for ParallelBelow<'_, K, V, D, S>
where
    K: Eq + Hash + Clone + Debug,
    V: Clone,
    D: Delta<V>,
    S: Storage<K, V>,
{
    /// The value below this transaction (captured), deltas of lower transactions resolved.
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if let Some(i) = self.read_index.find(key, self.reads.iter().map(|(k, _)| k)) {
            return Ok(self.read_values[i].clone());
        }
        loop {
            return match self.mv.read(key, self.txn_idx) {
                MvRead::Value { version, value } => {
                    self.capture(key, ReadOrigin::Version(version), Some(value.clone()));
                    Ok(Some(value))
                }
                MvRead::Estimate { blocking } => {
                    // The writer was aborted. If it is re-executing right now, its new value is
                    // moments away: wait for it and read again rather than abort this
                    // execution (on a dependency chain this keeps the next transaction from
                    // racing ahead through the rest of the block). No lock is held here.
                    self.waits += 1;
                    let start = Instant::now();
                    let finished = self.scheduler.wait_while_executing(blocking);
                    self.waited += start.elapsed();
                    if finished {
                        continue;
                    }
                    self.halt = Some(ViewHalt::Blocked(blocking));
                    Err(Halt(()))
                }
                MvRead::NotFound => match self.storage.read(key) {
                    Ok(value) => {
                        self.capture(key, ReadOrigin::Storage, value.clone());
                        Ok(value)
                    }
                    Err(error) => {
                        // Captured too: if a lower transaction later writes this location, the
                        // failure was speculation and validation will say so.
                        self.capture(key, ReadOrigin::Storage, None);
                        self.fail(Failure::Storage(StorageError::new(error)))
                    }
                },
                MvRead::Deltas { base, deltas } => {
                    match resolve_deltas(base, &deltas, || self.storage.read(key)) {
                        Some(value) => {
                            self.capture(
                                key,
                                ReadOrigin::Resolved(Box::new(value.clone())),
                                Some(value.clone()),
                            );
                            Ok(Some(value))
                        }
                        None => {
                            // A lower transaction's delta fails (or storage under it does): that
                            // transaction ends the block when it commits, unless it changes,
                            // which validation of this read detects.
                            self.capture(key, ReadOrigin::Unresolvable, None);
                            self.fail(Failure::Doomed)
                        }
                    }
                }
            };
        }
    }

    fn delta_failed(&mut self, key: &K, message: String) {
        self.halt = Some(ViewHalt::Failed(Failure::Delta { key: format!("{key:?}"), message }));
    }

    #[inline]
    fn halted(&self) -> bool {
        self.halt.is_some()
    }
}
