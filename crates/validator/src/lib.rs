//! Read-set capture and validation for Block-STM.
//!
//! While an incarnation runs, every location it reads from outside its own writes is captured
//! with where the value came from: a [`Version`] in the multi-version memory, or the base state
//! ([`ReadOrigin::Storage`]). Validating the incarnation re-reads each location's *version* (not
//! its value) below the transaction and compares: versions only ever name one immutable value,
//! so equal versions mean equal values. An `ESTIMATE` where a value was read, or any other
//! version, fails validation.
//!
//! A read that resolved [deltas](blockstm_mvmemory::Delta) is validated *by value* instead:
//! the deltas below it may be rewritten by re-executions that apply the same amounts (new
//! versions, same value), and a delta-heavy location would otherwise fail validation on every
//! such change. Its validation resolves the location again and compares the value
//! ([`ReadOrigin::Resolved`]); a resolution that failed (a delta overflowed, storage failed) is
//! valid only while it still fails ([`ReadOrigin::Unresolvable`]).
//!
//! Small read sets are the common case (a transfer reads a handful of locations), so a
//! [`ReadSet`] keeps its first [`INLINE_READS`] reads inline without allocating.
//!
//! # Examples
//!
//! ```
//! use blockstm_mvmemory::{MvMemory, Version};
//! use blockstm_validator::{ReadOrigin, ReadSet, Validation, validate};
//!
//! let mv: MvMemory<u32, u64> = MvMemory::new(3);
//! mv.record(Version::new(0, 0), vec![(1, 100)]);
//!
//! // Transaction 2 read location 1 written by transaction 0, and location 9 from storage.
//! let mut reads = ReadSet::new();
//! reads.push(1, ReadOrigin::Version(Version::new(0, 0)));
//! reads.push(9, ReadOrigin::Storage);
//! let storage = |_: &u32| Ok::<_, ()>(None);
//! assert_eq!(validate(&reads, &mv, 2, storage), Validation::Valid);
//!
//! // Transaction 1 now writes location 9: the read from storage is stale.
//! mv.record(Version::new(1, 0), vec![(9, 7)]);
//! assert_eq!(validate(&reads, &mv, 2, storage), Validation::Changed { read: 1 });
//! ```

use blockstm_mvmemory::{Delta, MvMemory, MvRead, MvVersion, TxnIndex, Version, apply_deltas};
use smallvec::SmallVec;
use std::hash::Hash;

/// Reads kept inline in a [`ReadSet`] before it spills to the heap. Every transaction's last
/// read set lives in the executor's per-transaction slots, so the inline room is memory each
/// transaction of the block pays for, read or not: with 8 inline reads of the EVM's locations
/// a slot was 1.2 KiB (62 MB, page-faulted in, for a block of 47 000 transfers). Four covers a
/// transfer (sender, recipient and a balance each) without allocating.
pub const INLINE_READS: usize = 4;

/// Where a captured read took its value from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOrigin<V> {
    /// No lower transaction had written the location: the base state.
    Storage,
    /// The value written by this incarnation.
    Version(Version),
    /// Deltas resolved to this value (validated by value). Boxed: rare, and a value can be
    /// large, while every other origin is a few words and a read set holds many.
    Resolved(Box<V>),
    /// Resolving deltas failed: a delta did not apply, or storage under them failed. The
    /// incarnation cannot be the final one (the lower transaction whose delta fails ends the
    /// block first); it stays valid only while the resolution still fails.
    Unresolvable,
}

impl<V> ReadOrigin<V> {
    /// Whether the multi-version memory still shows this origin (for the two origins compared
    /// by version).
    #[inline]
    fn matches_version(&self, now: MvVersion) -> bool {
        match (self, now) {
            (ReadOrigin::Storage, MvVersion::NotFound) => true,
            (ReadOrigin::Version(then), MvVersion::Version(now)) => *then == now,
            _ => false,
        }
    }
}

/// The reads of one incarnation, in the order they were first made, one per location.
#[derive(Clone, Debug)]
pub struct ReadSet<K, V> {
    reads: SmallVec<[(K, ReadOrigin<V>); INLINE_READS]>,
}

impl<K, V> Default for ReadSet<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> ReadSet<K, V> {
    /// An empty read set.
    pub fn new() -> Self {
        Self { reads: SmallVec::new() }
    }

    /// Captures a read of `key`. The caller captures each location once per incarnation (later
    /// reads of it are served from the first), so the set holds no duplicates.
    #[inline]
    pub fn push(&mut self, key: K, origin: ReadOrigin<V>) {
        self.reads.push((key, origin));
    }

    /// Number of captured reads.
    #[inline]
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether nothing was read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// The captured reads in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &(K, ReadOrigin<V>)> {
        self.reads.iter()
    }

    /// The key of read number `i`.
    #[inline]
    pub fn key(&self, i: usize) -> &K {
        &self.reads[i].0
    }

    /// Replaces the origin of the latest read (a resolution captured before it ran).
    #[inline]
    pub fn set_last_origin(&mut self, origin: ReadOrigin<V>) {
        if let Some(last) = self.reads.last_mut() {
            last.1 = origin;
        }
    }
}

/// The outcome of validating a read set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Every read would return the same value now.
    Valid,
    /// Read number `read` now hits an `ESTIMATE` of transaction `blocking`.
    Estimate {
        /// Position of the failing read in the read set.
        read: usize,
        /// The aborted writer.
        blocking: TxnIndex,
    },
    /// Read number `read` would now see another version (or storage instead of a version, or
    /// the reverse).
    Changed {
        /// Position of the failing read in the read set.
        read: usize,
    },
}

impl Validation {
    /// Whether the read set is still valid.
    #[inline]
    pub fn is_valid(self) -> bool {
        self == Validation::Valid
    }
}

/// Validates the read set of transaction `txn_idx` against the current multi-version memory.
///
/// `storage` reads the base state; it is called only to re-resolve reads of deltas that have no
/// full value below them (an `Err` counts as a failed resolution). Stops at the first failing
/// read.
pub fn validate<K, V, D, E>(
    read_set: &ReadSet<K, V>,
    mv: &MvMemory<K, V, D>,
    txn_idx: TxnIndex,
    mut storage: impl FnMut(&K) -> Result<Option<V>, E>,
) -> Validation
where
    K: Eq + Hash + Clone,
    V: Clone + PartialEq,
    D: Delta<V>,
{
    for (i, (key, origin)) in read_set.iter().enumerate() {
        let valid = match origin {
            ReadOrigin::Storage | ReadOrigin::Version(_) => {
                let now = mv.read_version(key, txn_idx);
                if let MvVersion::Estimate(blocking) = now {
                    return Validation::Estimate { read: i, blocking };
                }
                origin.matches_version(now)
            }
            ReadOrigin::Resolved(_) | ReadOrigin::Unresolvable => {
                match resolve(mv, key, txn_idx, &mut storage) {
                    Resolution::Estimate(blocking) => return Validation::Estimate { read: i, blocking },
                    Resolution::Value(now) => {
                        matches!(origin, ReadOrigin::Resolved(then) if now.as_ref() == Some(&**then))
                    }
                    Resolution::DeltasFailed => matches!(origin, ReadOrigin::Unresolvable),
                    // The re-execution would meet the storage failure itself, not a doomed delta.
                    Resolution::StorageFailed => false,
                }
            }
        };
        if !valid {
            return Validation::Changed { read: i };
        }
    }
    Validation::Valid
}

/// What a read of a location by a transaction gives now, deltas resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution<V> {
    /// The value (`None`: absent).
    Value(Option<V>),
    /// The nearest lower entry, or one under the deltas, is an `ESTIMATE` of this transaction.
    Estimate(TxnIndex),
    /// Deltas are below and applying them (or reading the storage value under them) failed.
    DeltasFailed,
    /// No lower transaction wrote the location and storage failed.
    StorageFailed,
}

/// Resolves what `txn_idx` reads at `key`: the multi-version memory, deltas applied, storage
/// under them.
pub fn resolve<K, V, D, E>(
    mv: &MvMemory<K, V, D>,
    key: &K,
    txn_idx: TxnIndex,
    storage: &mut impl FnMut(&K) -> Result<Option<V>, E>,
) -> Resolution<V>
where
    K: Eq + Hash + Clone,
    V: Clone,
    D: Delta<V>,
{
    match mv.read(key, txn_idx) {
        MvRead::Value { value, .. } => Resolution::Value(Some(value)),
        MvRead::Estimate { blocking } => Resolution::Estimate(blocking),
        MvRead::NotFound => storage(key).map_or(Resolution::StorageFailed, Resolution::Value),
        MvRead::Deltas { base, deltas } => resolve_deltas(base, &deltas, || storage(key))
            .map_or(Resolution::DeltasFailed, |v| Resolution::Value(Some(v))),
    }
}

/// The value `deltas` give on top of `base`, or on top of the storage value (`storage`) when no
/// full value is below them: what a read of [`MvRead::Deltas`] sees and its validation
/// recomputes. `None` if storage or a delta fails.
pub fn resolve_deltas<V, D: Delta<V>, E>(
    base: Option<(Version, V)>,
    deltas: &[D],
    storage: impl FnOnce() -> Result<Option<V>, E>,
) -> Option<V> {
    let base = match base {
        Some((_, value)) => Some(value),
        None => storage().ok()?,
    };
    apply_deltas(base.as_ref(), deltas).ok()
}

#[cfg(test)]
mod test;
