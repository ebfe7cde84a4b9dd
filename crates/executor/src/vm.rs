//! The interface a client implements to plug in its VM, and the traits the executor takes.

use blockstm_mvmemory::{Delta, NoDelta, TxnIndex};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::{self, Debug, Display};
use std::hash::{BuildHasher, Hash};
use std::ops::ControlFlow;

/// A virtual machine that executes one transaction at a time against a [`TxnView`].
///
/// The VM never touches shared state: every read goes through the view (which serves the
/// transaction's own writes first, then the writes of lower transactions, then storage) and
/// every write is recorded by it. Execution must be deterministic: the same reads must give the
/// same writes, output and error. An execution may be speculative and see a state that
/// sequential execution never would; whatever it returns or panics with is then discarded.
///
/// # Stopping on a blocked read
///
/// [`TxnView::read`] returns `Err(Halt)` when the value cannot be known yet (a lower transaction
/// is being re-executed) or storage failed. The VM should return promptly, typically by
/// propagating it with `?` (hence `Error: From<Halt>`). The executor remembers the halt on its
/// own, so a VM that swallows it is still correct, only slower.
///
/// # Deltas
///
/// A VM may update a location without reading it through [`TxnView::apply_delta`] (credit a
/// fee, bump a counter): transactions that only apply deltas to a location do not conflict over
/// it. `Delta` says how one applies to a `Value` and how that fails; [`Add`](crate::Add) adds a
/// signed amount to an integer. A VM without deltas sets `type Delta = NoDelta;`.
///
/// # Examples
///
/// ```
/// use blockstm_executor::{Halt, NoDelta, TxnView, Vm};
///
/// /// Moves `amount` from one account to another; fails on insufficient balance.
/// struct Transfers;
/// struct Transfer { from: u32, to: u32, amount: u64 }
/// #[derive(Debug, PartialEq)]
/// enum TransferError { Halted, Insufficient }
/// impl From<Halt> for TransferError {
///     fn from(_: Halt) -> Self { TransferError::Halted }
/// }
///
/// impl Vm for Transfers {
///     type Key = u32;
///     type Value = u64;
///     type Transaction = Transfer;
///     type Output = u64; // the sender's new balance
///     type Error = TransferError;
///     type Delta = NoDelta;
///
///     fn execute<V: TxnView<u32, u64>>(&self, _idx: usize, tx: &Transfer, view: &mut V)
///         -> Result<u64, TransferError>
///     {
///         let from = view.read(&tx.from)?.unwrap_or(0);
///         let left = from.checked_sub(tx.amount).ok_or(TransferError::Insufficient)?;
///         let to = view.read(&tx.to)?.unwrap_or(0);
///         view.write(tx.from, left);
///         view.write(tx.to, to + tx.amount);
///         Ok(left)
///     }
/// }
/// ```
pub trait Vm: Sync {
    /// A location of the state (an account, a storage slot). Compared in full, never by hash.
    type Key: Clone + Eq + Hash + Ord + Send + Sync + Debug;
    /// The value at a location. Cloned on every read: make it cheap to clone (wrap large values
    /// in an `Arc`). Compared only to validate reads of deltas.
    type Value: Clone + PartialEq + Send + Sync + Debug;
    /// A transaction of the block.
    type Transaction: Sync;
    /// What executing a transaction returns (a receipt).
    type Output: Send + Debug;
    /// A transaction that cannot be executed. If the incarnation that sequential execution
    /// would run returns it, the block fails with [`BlockError::Vm`](crate::BlockError::Vm).
    type Error: From<Halt> + Send + Debug;
    /// A commutative update of a `Value` ([`NoDelta`] if the VM uses none).
    type Delta: Delta<Self::Value>;

    /// Executes transaction `txn_idx` of the block.
    fn execute<V: TxnView<Self::Key, Self::Value, Self::Delta>>(
        &self,
        txn_idx: TxnIndex,
        txn: &Self::Transaction,
        view: &mut V,
    ) -> Result<Self::Output, Self::Error>;

    /// Optional hints, asked once per block by the parallel executor: for each transaction, a
    /// lower transaction it probably depends on (in the EVM, the previous transaction of the
    /// same sender: the nonce makes them a chain). The first execution of a hinted transaction
    /// starts only once its hint has executed, instead of running at once on stale data and
    /// being aborted. A wrong or missing hint costs time, never correctness; hints that are not
    /// lower than their transaction are ignored.
    ///
    /// Returns one entry per transaction, or an empty vector for no hints (the default).
    fn dependency_hints(&self, txns: &[Self::Transaction]) -> Vec<Option<TxnIndex>> {
        let _ = txns;
        Vec::new()
    }

    /// Optional: an estimate of the work of `txns` before they run, in a unit of the VM's
    /// choosing (the EVM's: the transactions' gas limits). It should be additive: the estimate
    /// of a block is the sum of its transactions' estimates.
    ///
    /// The adaptive rule asks it for the whole block when
    /// [`Config::with_min_mean_cost`](crate::Config::with_min_mean_cost) is set (a block whose
    /// estimate per transaction is below that minimum runs sequentially), and for each
    /// transaction alone when the [dependency hints](Self::dependency_hints) chain most of the
    /// block by count, to weigh the chain (see
    /// [`HINTED_MIN_PARALLELISM`](crate::tuning::HINTED_MIN_PARALLELISM)). `None` (the default): no
    /// estimate, those rules go by transaction count or do not apply.
    fn cost_estimate(&self, txns: &[Self::Transaction]) -> Option<u64> {
        let _ = txns;
        None
    }

    /// Optional: the one location of the block that most transactions apply deltas to (an EVM
    /// block's fee recipient, credited by every transaction). The parallel executor keeps each
    /// transaction's deltas to it apart, in a slot of the transaction's own, instead of one
    /// version entry per transaction under one lock that every core writes; a read of it sums
    /// the slots between the commit point and the reader, so it suits a location that is
    /// rarely read. Results are identical either way. `None` (the default): no such location.
    fn accumulator(&self) -> Option<Self::Key> {
        None
    }
}

/// The state as one transaction sees it.
pub trait TxnView<K, V, D = NoDelta> {
    /// The value at `key` (`None` if absent): the transaction's own latest write, else the
    /// latest write of a lower transaction, else storage. Repeated reads of a location return
    /// the same value within one execution.
    fn read(&mut self, key: &K) -> Result<Option<V>, Halt>;

    /// Sets `key` to `value` for this transaction and, once it commits, for the block.
    fn write(&mut self, key: K, value: V);

    /// Updates `key` by `delta` without reading it. The delta is applied in block order on the
    /// value the lower transactions left, when the transaction commits (or when this transaction
    /// reads the location, which then counts as a read); a failure to apply it ends the block
    /// with [`BlockError::Delta`](crate::BlockError::Delta), as it would sequentially.
    ///
    /// After a [`write`](Self::write) of `key` the delta applies to the written value at once;
    /// `Err(Halt)` if that fails (the block then fails at this transaction if it is final).
    fn apply_delta(&mut self, key: K, delta: D) -> Result<(), Halt>;
}

/// The value of a read cannot be provided now: stop executing and return (see [`Vm`]).
///
/// Views other than the executor's (a profiler, a tracer) may return it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Halt(pub(crate) ());

impl Halt {
    /// A halt.
    pub const fn new() -> Self {
        Halt(())
    }
}

impl Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("execution halted by the executor (blocked read or storage failure)")
    }
}

impl std::error::Error for Halt {}

/// The state before the block (the base state), read-only and shared by all threads.
pub trait Storage<K, V>: Sync {
    /// A failure to read. A failure met by the incarnation that sequential execution would run
    /// fails the block with [`BlockError::Storage`](crate::BlockError::Storage), whose
    /// [`source`](std::error::Error::source) it is.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The value at `key` before the block, `None` if absent.
    fn read(&self, key: &K) -> Result<Option<V>, Self::Error>;
}

impl<K, V, S> Storage<K, V> for HashMap<K, V, S>
where
    K: Eq + Hash + Sync,
    V: Clone + Sync,
    S: BuildHasher + Sync,
{
    type Error = Infallible;

    fn read(&self, key: &K) -> Result<Option<V>, Infallible> {
        Ok(self.get(key).cloned())
    }
}

impl<K, V> Storage<K, V> for BTreeMap<K, V>
where
    K: Ord + Sync,
    V: Clone + Sync,
{
    type Error = Infallible;

    fn read(&self, key: &K) -> Result<Option<V>, Infallible> {
        Ok(self.get(key).cloned())
    }
}

/// Called once per committed transaction, in block order, with its final output.
///
/// Returning [`ControlFlow::Break`] ends the block after this transaction (how a block gas
/// limit is enforced): the result then holds the transactions up to and including it. In a
/// parallel run the hook is called from whichever worker commits, one call at a time.
pub trait CommitHook<O> {
    /// Sees the final output of transaction `txn_idx`.
    fn on_commit(&mut self, txn_idx: TxnIndex, output: &O) -> ControlFlow<()>;
}

impl<O, F> CommitHook<O> for F
where
    F: FnMut(TxnIndex, &O) -> ControlFlow<()>,
{
    fn on_commit(&mut self, txn_idx: TxnIndex, output: &O) -> ControlFlow<()> {
        self(txn_idx, output)
    }
}

/// A hook that never ends the block.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

impl<O> CommitHook<O> for NoHook {
    fn on_commit(&mut self, _: TxnIndex, _: &O) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}
