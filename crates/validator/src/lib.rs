//! Read-set capture and validation for Block-STM.
//!
//! While an incarnation runs, every location it reads from outside its own writes is captured
//! with where the value came from: a [`Version`] in the multi-version memory, or the base state
//! ([`ReadOrigin::Storage`]). Validating the incarnation re-reads each location's *version* (not
//! its value) below the transaction and compares: versions only ever name one immutable value,
//! so equal versions mean equal values. An `ESTIMATE` where a value was read, or any other
//! version, fails validation.
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
//! assert_eq!(validate(&reads, &mv, 2), Validation::Valid);
//!
//! // Transaction 1 now writes location 9: the read from storage is stale.
//! mv.record(Version::new(1, 0), vec![(9, 7)]);
//! assert_eq!(validate(&reads, &mv, 2), Validation::Changed { read: 1 });
//! ```

use blockstm_mvmemory::{MvMemory, MvVersion, TxnIndex, Version};
use smallvec::SmallVec;
use std::hash::Hash;

/// Reads kept inline in a [`ReadSet`] before it spills to the heap.
pub const INLINE_READS: usize = 8;

/// Where a captured read took its value from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOrigin {
    /// No lower transaction had written the location: the base state.
    Storage,
    /// The value written by this incarnation.
    Version(Version),
}

impl ReadOrigin {
    /// Whether the multi-version memory still shows this origin.
    #[inline]
    fn matches(self, now: MvVersion) -> bool {
        match (self, now) {
            (ReadOrigin::Storage, MvVersion::NotFound) => true,
            (ReadOrigin::Version(then), MvVersion::Version(now)) => then == now,
            _ => false,
        }
    }
}

/// The reads of one incarnation, in the order they were first made, one per location.
#[derive(Clone, Debug, Default)]
pub struct ReadSet<K> {
    reads: SmallVec<[(K, ReadOrigin); INLINE_READS]>,
}

impl<K> ReadSet<K> {
    /// An empty read set.
    pub fn new() -> Self {
        Self { reads: SmallVec::new() }
    }

    /// Captures a read of `key`. The caller captures each location once per incarnation (later
    /// reads of it are served from the first), so the set holds no duplicates.
    #[inline]
    pub fn push(&mut self, key: K, origin: ReadOrigin) {
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
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &(K, ReadOrigin)> {
        self.reads.iter()
    }

    /// The key of read number `i`.
    #[inline]
    pub fn key(&self, i: usize) -> &K {
        &self.reads[i].0
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
/// Stops at the first failing read.
pub fn validate<K, V>(read_set: &ReadSet<K>, mv: &MvMemory<K, V>, txn_idx: TxnIndex) -> Validation
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    for (i, (key, origin)) in read_set.iter().enumerate() {
        let now = mv.read_version(key, txn_idx);
        if !origin.matches(now) {
            return match now {
                MvVersion::Estimate(blocking) => Validation::Estimate { read: i, blocking },
                _ => Validation::Changed { read: i },
            };
        }
    }
    Validation::Valid
}

#[cfg(test)]
mod test;
