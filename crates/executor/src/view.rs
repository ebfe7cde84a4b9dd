//! The read path every view shares: a transaction's own writes first, then deltas it applied
//! settled on the value below, then the value below itself.
//!
//! [`LayeredView`] is that path, written once. What lies below a transaction differs between
//! views, and is a [`ReadBelow`]: the parallel executor reads the multi-version memory and
//! captures each read for validation, the sequential executor reads the block's writes so far
//! and then the base state, and a profiler (the oracle bound's recorder) records the locations.

use crate::{Delta, Halt, Own, TxnView, WriteSet};
use std::fmt::Debug;
use std::hash::Hash;

/// What a view finds below a transaction's own writes, and where it keeps its failures.
pub trait ReadBelow<K, V> {
    /// The value of `key` before the transaction: what lower transactions left, else the base
    /// state. `Err(Halt)` stops the execution; the implementation remembers why.
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt>;

    /// The transaction's own delta to `key` failed to apply with `message`: remember it, so
    /// that [`halted`](Self::halted) holds from now on.
    fn delta_failed(&mut self, key: &K, message: String);

    /// Whether an earlier read or delta stopped the execution: every later read and delta
    /// then returns `Err(Halt)` at once.
    fn halted(&self) -> bool;
}

/// A transaction's view of the state: its own writes ([`WriteSet`]) over what is below it.
#[derive(Debug)]
pub struct LayeredView<K, V, D, B> {
    /// The transaction's writes and deltas, in first-write order.
    pub writes: WriteSet<K, V, D>,
    /// What lies below them.
    pub below: B,
}

impl<K: Eq + Hash + Clone, V: Clone, D: Delta<V>, B> LayeredView<K, V, D, B> {
    /// A view with no writes yet over `below`.
    pub fn new(below: B) -> Self {
        Self { writes: WriteSet::new(), below }
    }
}

impl<K, V, D, B> TxnView<K, V, D> for LayeredView<K, V, D, B>
where
    K: Eq + Hash + Clone + Debug,
    V: Clone,
    D: Delta<V>,
    B: ReadBelow<K, V>,
{
    #[inline]
    fn read(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if self.below.halted() {
            return Err(Halt(()));
        }
        match self.writes.own(key) {
            Own::Value(value) => Ok(Some(value)),
            // Reading a location this transaction applied deltas to: a real read of the value
            // below, then the deltas, which become a plain write.
            Own::Deltas(deltas) => {
                let below = self.below.read_below(key)?;
                self.writes.settle(key, &deltas, below).map_err(|message| {
                    self.below.delta_failed(key, message);
                    Halt(())
                })
            }
            Own::None => self.below.read_below(key),
        }
    }

    #[inline]
    fn write(&mut self, key: K, value: V) {
        self.writes.insert(key, value);
    }

    #[inline]
    fn apply_delta(&mut self, key: K, delta: D) -> Result<(), Halt> {
        if self.below.halted() {
            return Err(Halt(()));
        }
        self.writes.apply_delta(key, delta).map_err(|(key, message)| {
            self.below.delta_failed(&key, message);
            Halt(())
        })
    }
}
