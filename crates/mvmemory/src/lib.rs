//! Multi-version memory for Block-STM.
//!
//! # What it holds
//!
//! For every location (the VM's key type `K`, compared by `Eq`, never by a hash of it) an ordered
//! map `txn_idx -> entry`, where an entry is either the value written by some incarnation of that
//! transaction or an [`ESTIMATE`](MvRead::Estimate) marker left behind when the incarnation was
//! aborted. A read by transaction `i` returns the entry of the highest `j < i`: the value
//! sequential execution would see if every transaction below `i` were final.
//!
//! The hash of a key picks a shard and the bucket in the shard's table; inside a shard keys are
//! compared in full, so a crafted hash collision costs time, never correctness.
//!
//! # Operations
//!
//! - [`MvMemory::read`] / [`MvMemory::read_version`]: the entry below a transaction.
//! - [`MvMemory::record`]: publish an incarnation's writes, drop the entries its previous
//!   incarnation wrote and this one did not, and report whether it wrote a location the previous
//!   incarnation had not (the scheduler then re-validates every higher transaction).
//! - [`MvMemory::convert_writes_to_estimates`]: after an abort, turn the transaction's entries
//!   into `ESTIMATE` so readers wait for its next incarnation instead of reading doomed values.
//! - [`MvMemory::snapshot`]: after the block, the final value of every written location, sorted
//!   by key.
//!
//! # Deltas
//!
//! An entry may also be a list of [`Delta`]s (commutative updates such as "add 5") that the
//! transaction applied without reading the location. A read below which the nearest entries are
//! deltas returns them with the nearest full value under them ([`MvRead::Deltas`]); the caller
//! resolves them in block order ([`apply_deltas`]), reading storage when no full value is below.
//! [`MvMemory::materialize`] turns a committed transaction's deltas into a full value, so
//! committed entries are always values and a resolution never walks past the commit point.
//!
//! # Lock order
//!
//! `last_writes[txn]` → shard lock. A shard lock is held only while one location is looked up,
//! inserted, read or changed; no code holds two shard locks at once. Locations have no lock of
//! their own: one lock per access instead of a shard read lock and a location lock made a read
//! one locked read-modify-write pair instead of two, on lines the other cores also write.
//!
//! # Examples
//!
//! ```
//! use blockstm_mvmemory::{MvMemory, MvRead, Version};
//!
//! let mv: MvMemory<&str, u64> = MvMemory::new(3);
//! assert!(mv.record(Version::new(0, 0), vec![("alice", 10)]));
//! assert_eq!(mv.read(&"alice", 2), MvRead::Value { version: Version::new(0, 0), value: 10 });
//! mv.convert_writes_to_estimates(0);
//! assert_eq!(mv.read(&"alice", 2), MvRead::Estimate { blocking: 0 });
//! assert_eq!(mv.read(&"alice", 0), MvRead::NotFound);
//! ```

mod accumulator;
mod delta;
mod snapshot;
mod table;
mod versions;

pub use delta::{Add, AddOverflow, Delta, NoDelta, apply_deltas};

use accumulator::Accumulator;
use ahash::RandomState;
use blockstm_sync::{CachePadded, SpinMutex};
use smallvec::SmallVec;
use std::fmt;
use std::hash::Hash;
use table::Table;
use versions::{Entry, Location, Materialized, VersionList};

pub use snapshot::merge_runs;

/// Position of a transaction in its block.
pub type TxnIndex = usize;

/// How many times a transaction has been (re-)started: 0 for the first execution.
pub type Incarnation = u32;

/// One incarnation of one transaction: the version of every value it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// The writing transaction.
    pub txn_idx: TxnIndex,
    /// Its incarnation.
    pub incarnation: Incarnation,
}

impl Version {
    /// The version of incarnation `incarnation` of transaction `txn_idx`.
    pub const fn new(txn_idx: TxnIndex, incarnation: Incarnation) -> Self {
        Self { txn_idx, incarnation }
    }
}

/// What a read of the multi-version memory found below a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvRead<V, D = NoDelta> {
    /// The nearest lower transaction wrote `value` in `version`.
    Value {
        /// Who wrote it.
        version: Version,
        /// The value.
        value: V,
    },
    /// The nearest lower writer was aborted; its next incarnation will likely write here again.
    /// The reader must wait for `blocking` (or re-execute later).
    Estimate {
        /// The aborted writer.
        blocking: TxnIndex,
    },
    /// No lower transaction wrote the location: read the base state (storage).
    NotFound,
    /// The nearest lower writers applied deltas: the value is `deltas` applied in order on top
    /// of `base` (or, when `base` is `None`, on top of storage).
    Deltas {
        /// The nearest full value below the deltas, with its version.
        base: Option<(Version, V)>,
        /// The deltas above it, lowest transaction first.
        deltas: SmallVec<[D; 2]>,
    },
}

/// [`MvRead`] without the value: what validation compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MvVersion {
    /// Written by this version.
    Version(Version),
    /// An `ESTIMATE` of this transaction.
    Estimate(TxnIndex),
    /// Not written below: storage.
    NotFound,
    /// The nearest lower writer applied deltas (its value must be resolved).
    Deltas,
}

/// An invariant of Block-STM did not hold: of the multi-version memory, or of the scheduler's
/// protocol (which uses this type too). Reaching it is a bug (in the caller or here); it is
/// reported as a value so that a block fails cleanly instead of panicking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantError(pub String);

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block-STM invariant violated: {}", self.0)
    }
}

impl std::error::Error for InvariantError {}

/// What an incarnation wrote to one location: a full value or deltas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write<V, D> {
    /// The new value.
    Value(V),
    /// Deltas applied without reading, in order (at least one).
    Deltas(SmallVec<[D; 1]>),
}

impl<V, D: Delta<V>> Write<V, D> {
    /// The value this write leaves on top of the value below it, which `below` gives (asked
    /// only for deltas).
    pub fn resolve<E>(self, below: impl FnOnce() -> Result<Option<V>, E>) -> Result<V, ResolveError<E>> {
        match self {
            Write::Value(value) => Ok(value),
            Write::Deltas(deltas) => {
                let base = below().map_err(ResolveError::Below)?;
                apply_deltas(base.as_ref(), &deltas).map_err(ResolveError::Delta)
            }
        }
    }
}

/// Why [`Write::resolve`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError<E> {
    /// Reading the value below failed.
    Below(E),
    /// Applying the deltas failed (the message of [`apply_deltas`]).
    Delta(String),
}

/// One shard: its locations, under one lock. Padded to its own cache line: neighbouring
/// shards are taken by different threads.
type Shard<K, V, D> = CachePadded<SpinMutex<Table<Location<K, V, D>>>>;

/// Why [`MvMemory::materialize`] could not turn a transaction's deltas into a value.
#[derive(Debug, PartialEq, Eq)]
pub enum MaterializeError<K, E> {
    /// Applying the deltas to the value below failed (the message of [`apply_deltas`]).
    Delta {
        /// The location.
        key: K,
        /// Why.
        message: String,
    },
    /// Reading the base value from storage failed.
    Storage {
        /// The location.
        key: K,
        /// The storage's error.
        error: E,
    },
    /// An entry below the transaction is not a full value (the caller did not commit in order).
    Invariant(InvariantError),
}

/// Where a key's shard is taken from its hash: `(hash >> SHARD_SHIFT) & (SHARDS - 1)`.
const SHARD_SHIFT: u32 = 40;

/// Number of shards. A power of two so the shard is a mask of the hash. 64 shards keep the
/// chance that two of the (at most a few dozen) concurrently running transactions touch the same
/// shard lock at once small, while a block's memory costs only 64 empty maps to create.
const SHARDS: usize = 64;

/// A hasher for shard selection and the shard maps. Randomly seeded per memory, so no input can
/// be crafted against it; under loom fixed, because a model must behave the same in every
/// iteration it replays (a different shard per iteration breaks loom's replay).
fn hasher() -> RandomState {
    #[cfg(not(loom))]
    {
        RandomState::new()
    }
    #[cfg(loom)]
    {
        RandomState::with_seeds(1, 2, 3, 4)
    }
}

/// The multi-version data structure of Block-STM. See the [crate docs](crate).
pub struct MvMemory<K, V, D = NoDelta> {
    hasher: RandomState,
    shards: Box<[Shard<K, V, D>]>,
    /// Per transaction, the locations its latest recorded incarnation wrote. Only the thread
    /// executing or aborting that transaction touches it, and the scheduler's status lock orders
    /// those, so the mutex is never contended; it exists so the structure is `Sync` without
    /// `unsafe`.
    last_writes: Box<[SpinMutex<SmallVec<[K; 2]>>]>,
    /// The location whose deltas are kept per transaction, if the block has one (see the
    /// `accumulator` module).
    accumulator: Option<Accumulator<K, D>>,
}

impl<K, V, D> fmt::Debug for MvMemory<K, V, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MvMemory").field("txns", &self.last_writes.len()).finish_non_exhaustive()
    }
}

impl<K, V, D> MvMemory<K, V, D>
where
    K: Eq + Hash + Clone,
    V: Clone,
    D: Delta<V>,
{
    /// Memory for a block of `num_txns` transactions.
    pub fn new(num_txns: usize) -> Self {
        Self::with_accumulator(num_txns, None)
    }

    /// Memory for a block of `num_txns` transactions in which `accumulator`, if given, is a
    /// location most transactions apply deltas to (an EVM block's fee recipient). Its deltas are
    /// kept per transaction rather than in its version list, so the transactions crediting it
    /// share no lock or cache line; reads of it cost a scan of the transactions between the
    /// commit point and the reader. Results are the same either way.
    pub fn with_accumulator(num_txns: usize, accumulator: Option<K>) -> Self {
        let hasher = hasher();
        let accumulator = accumulator.map(|key| {
            let hash = hasher.hash_one(&key);
            Accumulator::new(key, hash, num_txns)
        });
        Self {
            accumulator,
            hasher,
            shards: (0..SHARDS)
                // Room for about two locations per transaction up front (a transfer creates its
                // sender's and its recipient's): growing moves every location and showed in
                // profiles of large blocks. Room not yet used is address space only; the index
                // is zeroed memory, eight bytes per slot.
                .map(|_| CachePadded::new(SpinMutex::new(Table::with_capacity(2 * num_txns / SHARDS))))
                .collect(),
            last_writes: (0..num_txns).map(|_| SpinMutex::new(SmallVec::new())).collect(),
        }
    }

    /// Number of transactions this memory was made for.
    pub fn num_txns(&self) -> usize {
        self.last_writes.len()
    }

    /// The hash of `key` and its shard. One hash serves both: the shard takes bits the table
    /// does not use for small tables (it takes the low bits for the bucket and the top seven
    /// for the control byte).
    #[inline]
    fn shard(&self, key: &K) -> (u64, &Shard<K, V, D>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[(hash >> SHARD_SHIFT) as usize & (SHARDS - 1)])
    }

    /// Runs `f` on the versions of `key`, if the location was ever written.
    #[inline]
    fn with_versions<R>(&self, key: &K, f: impl FnOnce(&mut VersionList<V, D>) -> R) -> Option<R> {
        let (hash, shard) = self.shard(key);
        let mut shard = shard.lock();
        let location = shard.find_mut(hash, |location| location.key == *key).ok()?;
        Some(f(&mut location.versions))
    }

    /// The entry of the highest transaction below `txn_idx` that wrote `key`, with its value
    /// (or, for deltas, everything needed to resolve them).
    ///
    /// When no transaction wrote `key` yet, the place the shard's next new location will take
    /// is prefetched for writing: a transaction usually reads what it writes, and the VM's work
    /// in between hides the miss that the write would otherwise pay (see the `table` module).
    #[inline]
    pub fn read(&self, key: &K, txn_idx: TxnIndex) -> MvRead<V, D> {
        let (hash, shard) = self.shard(key);
        if let Some(accumulator) = self.accumulator_at(hash, key) {
            let start = {
                let shard = shard.lock();
                let location = shard.find(hash, |location| location.key == *key);
                Accumulator::<K, D>::start(location.and_then(|location| location.versions.below(txn_idx)))
            };
            return match start {
                Ok(start) => accumulator.read(start, txn_idx),
                Err(read) => read,
            };
        }
        let mut shard = shard.lock();
        if let Some(location) = shard.find(hash, |location| location.key == *key) {
            return location.versions.read(txn_idx);
        }
        shard.prefetch_next();
        MvRead::NotFound
    }

    /// Like [`read`](Self::read) without cloning the value: what validation needs.
    #[inline]
    pub fn read_version(&self, key: &K, txn_idx: TxnIndex) -> MvVersion {
        let (hash, shard) = self.shard(key);
        if self.accumulator_at(hash, key).is_some() {
            // Rare (a transaction reading the fee recipient), and the slots must be read too.
            return match self.read(key, txn_idx) {
                MvRead::Value { version, .. } => MvVersion::Version(version),
                MvRead::Estimate { blocking } => MvVersion::Estimate(blocking),
                MvRead::NotFound => MvVersion::NotFound,
                MvRead::Deltas { .. } => MvVersion::Deltas,
            };
        }
        let shard = shard.lock();
        match shard.find(hash, |location| location.key == *key).and_then(|l| l.versions.below(txn_idx)) {
            Some((j, Entry::Value { incarnation, .. })) => MvVersion::Version(Version::new(j, *incarnation)),
            Some((_, Entry::Deltas { .. })) => MvVersion::Deltas,
            Some((j, Entry::Estimate)) => MvVersion::Estimate(j),
            None => MvVersion::NotFound,
        }
    }

    /// The accumulator, if `key` is its key (off the read path: without the hash to compare
    /// first).
    #[inline]
    fn accumulator_is(&self, key: &K) -> Option<&Accumulator<K, D>> {
        self.accumulator.as_ref().filter(|accumulator| accumulator.key == *key)
    }

    /// The accumulator, if `key` (of hash `hash`) is its key.
    #[inline]
    fn accumulator_at(&self, hash: u64, key: &K) -> Option<&Accumulator<K, D>> {
        self.accumulator.as_ref().filter(|accumulator| accumulator.hash == hash && accumulator.key == *key)
    }

    /// Runs `f` on the versions of `key`, created empty if the location was never written.
    fn with_versions_or_new<R>(&self, key: &K, f: impl FnOnce(&mut VersionList<V, D>) -> R) -> R {
        let (hash, shard) = self.shard(key);
        let mut shard = shard.lock();
        match shard.find_mut(hash, |location| location.key == *key) {
            Ok(location) => f(&mut location.versions),
            Err(vacant) => {
                let mut versions = VersionList::default();
                let result = f(&mut versions);
                let rehash = |location: &Location<K, V, D>| self.hasher.hash_one(&location.key);
                shard.insert(vacant, hash, Location { key: key.clone(), versions }, rehash);
                result
            }
        }
    }

    /// Inserts `entry` for `txn_idx` at `key`; true if the transaction had no entry there.
    fn insert(&self, key: &K, txn_idx: TxnIndex, entry: Entry<V, D>) -> bool {
        let (hash, shard) = self.shard(key);
        let mut shard = shard.lock();
        match shard.find_mut(hash, |location| location.key == *key) {
            Ok(location) => location.versions.insert(txn_idx, entry),
            Err(vacant) => {
                let versions = VersionList { entries: smallvec::smallvec![(txn_idx, entry)] };
                let rehash = |location: &Location<K, V, D>| self.hasher.hash_one(&location.key);
                shard.insert(vacant, hash, Location { key: key.clone(), versions }, rehash);
                true
            }
        }
    }

    /// Publishes the writes of incarnation `version` and removes the entries the transaction's
    /// previous incarnation wrote that this one did not.
    ///
    /// Returns `wrote_new_location`: true if this incarnation wrote a location that the previous
    /// recorded incarnation of the same transaction did not write. Readers above may then have
    /// read around a value that now exists, so the scheduler must re-validate them.
    ///
    /// A key written twice keeps the last value. Full values only: see
    /// [`record_writes`](Self::record_writes) for deltas.
    pub fn record(&self, version: Version, writes: impl IntoIterator<Item = (K, V)>) -> bool {
        self.record_writes(version, writes.into_iter().map(|(key, value)| (key, Write::Value(value))))
    }

    /// [`record`](Self::record) for writes that may be deltas. Each key must appear once.
    pub fn record_writes(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (K, Write<V, D>)>,
    ) -> bool {
        let Version { txn_idx, incarnation } = version;
        let mut last_writes = self.last_writes[txn_idx].lock();
        let mut wrote_new_location = false;
        let mut keys = SmallVec::with_capacity(last_writes.len());
        let mut accumulated = false;
        for (key, write) in writes {
            let entry = match write {
                Write::Value(value) => Entry::Value { incarnation, value },
                Write::Deltas(deltas) => {
                    let deltas = deltas.into_boxed_slice();
                    match self.accumulator_is(&key) {
                        Some(accumulator) => {
                            wrote_new_location |= accumulator.record(txn_idx, incarnation, deltas);
                            accumulated = true;
                            keys.push(key);
                            continue;
                        }
                        _ => Entry::Deltas { incarnation, deltas },
                    }
                }
            };
            wrote_new_location |= self.insert(&key, txn_idx, entry);
            keys.push(key);
        }
        // Every location this incarnation wrote now holds an entry of `incarnation`; any other
        // entry of this transaction is a leftover (value, deltas or ESTIMATE) of an earlier
        // incarnation, and so are its deltas to the accumulator if this one applied none.
        for key in last_writes.iter() {
            if !accumulated && let Some(accumulator) = self.accumulator_is(key) {
                accumulator.clear(txn_idx);
            }
            self.with_versions(key, |versions| {
                let current = versions.get(txn_idx).and_then(Entry::incarnation) == Some(incarnation);
                if !current {
                    versions.remove(txn_idx);
                }
            });
        }
        *last_writes = keys;
        wrote_new_location
    }

    /// Turns the deltas of committed transaction `txn_idx` into full values: each applied on the
    /// value below it (read from `storage` when no lower transaction wrote the location).
    /// Locations are taken in write order and the first failure is returned, as a sequential
    /// run applying the same deltas at the end of the transaction would meet it.
    ///
    /// Call it in block order, once every lower transaction is committed and materialised, so
    /// the entry below is a full value. Readers may run meanwhile: the value replaces deltas
    /// that resolve to it. The entries below it at those locations are dropped: only reads at or
    /// below `txn_idx` could see them, and those transactions are final. (A validation of a
    /// committed transaction still in flight may then fail; the scheduler ignores it.)
    pub fn materialize<E>(
        &self,
        txn_idx: TxnIndex,
        mut storage: impl FnMut(&K) -> Result<Option<V>, E>,
    ) -> Result<(), MaterializeError<K, E>> {
        let last_writes = self.last_writes[txn_idx].lock();
        for key in last_writes.iter() {
            // The accumulator's deltas, kept in the transaction's slot, become a value in the
            // list, applied under the slot's lock (no copy of them); a full value it wrote is
            // there already.
            let accumulator = self.accumulator_is(key);
            // Storage is read outside the shard lock (and the slot's), and only when no value is
            // below; nothing below a committed transaction changes, so it stays the value below.
            let mut from_storage = None;
            loop {
                let step = match accumulator {
                    Some(accumulator) => {
                        let step = accumulator.with_deltas(txn_idx, |incarnation, deltas| {
                            self.with_versions_or_new(key, |versions| {
                                versions.materialize_deltas(
                                    txn_idx,
                                    incarnation,
                                    deltas,
                                    from_storage.as_ref(),
                                )
                            })
                        });
                        match step {
                            Some(step) => Some(step),
                            None => break,
                        }
                    }
                    None => self
                        .with_versions(key, |versions| versions.materialize(txn_idx, from_storage.as_ref())),
                };
                match step {
                    Some(Materialized::Done) => break,
                    Some(Materialized::NeedsStorage) => {
                        let value = storage(key)
                            .map_err(|error| MaterializeError::Storage { key: key.clone(), error })?;
                        from_storage = Some(value);
                    }
                    Some(Materialized::Failed(message)) => {
                        return Err(MaterializeError::Delta { key: key.clone(), message });
                    }
                    Some(Materialized::NotAValueBelow(j)) => {
                        return Err(MaterializeError::Invariant(InvariantError(format!(
                            "materialising transaction {txn_idx}: entry of {j} below it is not a value"
                        ))));
                    }
                    None => {
                        return Err(MaterializeError::Invariant(InvariantError(format!(
                            "materialising transaction {txn_idx}: a written location is missing"
                        ))));
                    }
                }
            }
        }
        Ok(())
    }

    /// Marks every location the transaction's latest recorded incarnation wrote as `ESTIMATE`.
    pub fn convert_writes_to_estimates(&self, txn_idx: TxnIndex) {
        let last_writes = self.last_writes[txn_idx].lock();
        for key in last_writes.iter() {
            if let Some(accumulator) = self.accumulator_is(key) {
                accumulator.convert_to_estimate(txn_idx);
            }
            self.with_versions(key, |versions| {
                if let Some(entry) = versions.get_mut(txn_idx) {
                    *entry = Entry::Estimate;
                }
            });
        }
    }

    /// The locations the latest recorded incarnation of `txn_idx` wrote.
    pub fn last_written_locations(&self, txn_idx: TxnIndex) -> Vec<K> {
        self.last_writes[txn_idx].lock().to_vec()
    }
}

#[cfg(test)]
mod test;

#[cfg(all(test, loom))]
mod loom_test;
