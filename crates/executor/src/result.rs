//! What executing a block returns.

use blockstm_mvmemory::TxnIndex;
use std::error::Error;
use std::fmt::{self, Debug, Display};
use std::sync::Arc;

/// The result of a block that did not fail.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BlockOutput<K, V, O> {
    /// The output of every executed transaction, in block order. Shorter than the block when the
    /// commit hook ended it early.
    pub outputs: Vec<O>,
    /// The final value of every location written by those transactions, sorted by key.
    pub state: Vec<(K, V)>,
    /// Whether the commit hook ended the block after the last output.
    pub ended_early: bool,
    /// How the block was executed.
    pub stats: Stats,
}

/// Counters of one block execution. They describe the run, not the result: they differ between
/// runs of the same block.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads used (after capping to the number of transactions).
    pub threads: usize,
    /// VM executions, including aborted and re-run ones.
    pub executions: usize,
    /// Validations of read sets.
    pub validations: usize,
    /// Executions that started with every lower transaction committed: they read only final
    /// values, so they were committed without a validation.
    pub final_executions: usize,
    /// Incarnations aborted by a failed validation.
    pub aborts: usize,
    /// Reads that hit an `ESTIMATE` of a lower transaction: the execution either waited for
    /// that transaction to finish re-executing, or stopped and was resumed after it.
    pub dependency_waits: usize,
    /// First executions that waited for the transaction named by
    /// [`Vm::dependency_hints`](crate::Vm::dependency_hints) to finish executing.
    pub hint_waits: usize,
    /// Set when the transactions from this index on were executed sequentially (see
    /// [`Stats::fallback`] for why), after the parallel run committed those below it.
    pub fallback_from: Option<TxnIndex>,
    /// Why part of the block ran sequentially, if it did.
    pub fallback: Option<Fallback>,
    /// The parallelism the run achieved over its warm-up window (see
    /// [`Config::with_adaptive`](crate::Config::with_adaptive)): transactions committed times their
    /// mean execution time, over the elapsed time. Above 1 the parallel run was ahead of a
    /// sequential one. `None` when the block was too small to measure or adaptivity is off.
    pub measured_parallelism: Option<f64>,
}

/// Why (part of) a block ran on the sequential path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// One worker thread: the block ran on the sequential baseline from the start.
    SingleThread,
    /// After the warm-up window the parallel run was committing more slowly than one thread
    /// executing the same transactions back to back would.
    LowParallelism,
    /// The livelock guard: a transaction reached the incarnation limit.
    Livelock,
    /// The block is smaller than [`Config::with_min_parallel_txns`](crate::Config::with_min_parallel_txns).
    SmallBlock,
    /// The VM's dependency hints chain too much of the block to run it in parallel (see
    /// [`HINTED_MIN_PARALLELISM`](crate::tuning::HINTED_MIN_PARALLELISM)).
    HintedChain,
    /// The VM's [cost estimate](crate::Vm::cost_estimate) per transaction is below
    /// [`Config::with_min_mean_cost`](crate::Config::with_min_mean_cost).
    CheapTransactions,
}

impl Stats {
    /// Whether the block finished on the sequential fallback.
    pub fn fell_back(&self) -> bool {
        self.fallback_from.is_some()
    }
}

/// Why a block failed. The same block gives the same error sequentially and in parallel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError<E> {
    /// The VM returned an error for a transaction.
    Vm {
        /// The failing transaction.
        txn_idx: TxnIndex,
        /// The VM's error.
        error: E,
    },
    /// The VM panicked while executing a transaction.
    Panic {
        /// The transaction.
        txn_idx: TxnIndex,
        /// The panic message.
        message: String,
    },
    /// Storage failed to read a location the transaction needed. The storage's own error is
    /// the [`source`](Error::source).
    Storage {
        /// The transaction.
        txn_idx: TxnIndex,
        /// The storage's error.
        error: StorageError,
    },
    /// A delta the transaction applied failed when applied in block order (an overflow), at
    /// commit or when the transaction read the location.
    Delta {
        /// The transaction.
        txn_idx: TxnIndex,
        /// The location, as `Debug` text.
        key: String,
        /// The delta's error, as text.
        message: String,
    },
    /// The commit hook panicked on a transaction's output.
    HookPanic {
        /// The transaction whose output the hook was given.
        txn_idx: TxnIndex,
        /// The panic message.
        message: String,
    },
    /// The block is larger than the executor supports.
    TooManyTransactions {
        /// Transactions in the block.
        count: usize,
        /// The largest supported block.
        max: usize,
    },
    /// An internal invariant did not hold (a bug in blockstm). The block's result is unknown.
    Internal(String),
}

impl<E> BlockError<E> {
    /// The transaction the error is about, if any.
    pub fn txn_idx(&self) -> Option<TxnIndex> {
        match self {
            BlockError::Vm { txn_idx, .. }
            | BlockError::Panic { txn_idx, .. }
            | BlockError::Storage { txn_idx, .. }
            | BlockError::Delta { txn_idx, .. }
            | BlockError::HookPanic { txn_idx, .. } => Some(*txn_idx),
            BlockError::TooManyTransactions { .. } | BlockError::Internal(_) => None,
        }
    }
}

impl<E: Debug> Display for BlockError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Vm { txn_idx, error } => {
                write!(f, "transaction {txn_idx} failed: {error:?}")
            }
            BlockError::Panic { txn_idx, message } => {
                write!(f, "transaction {txn_idx} panicked: {message}")
            }
            BlockError::Storage { txn_idx, error } => {
                write!(f, "storage failed while executing transaction {txn_idx}: {error}")
            }
            BlockError::Delta { txn_idx, key, message } => {
                write!(f, "a delta of transaction {txn_idx} to {key} failed: {message}")
            }
            BlockError::HookPanic { txn_idx, message } => {
                write!(f, "commit hook panicked on transaction {txn_idx}: {message}")
            }
            BlockError::TooManyTransactions { count, max } => {
                write!(f, "block of {count} transactions exceeds the maximum of {max}")
            }
            BlockError::Internal(message) => write!(f, "internal error in blockstm: {message}"),
        }
    }
}

impl<E: Debug> Error for BlockError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BlockError::Storage { error, .. } => Some(error.get_ref()),
            _ => None,
        }
    }
}

/// A failure of [`Storage`](crate::Storage), kept whole: [`BlockError::Storage`] gives it back
/// as its [`source`](Error::source), so a client can downcast it to its own error type.
/// Cheap to clone (shared). Two are equal when their messages are: the same storage failing
/// on the same location gives equal errors sequentially and in parallel.
#[derive(Clone)]
pub struct StorageError {
    message: Arc<str>,
    error: Arc<dyn Error + Send + Sync>,
}

impl StorageError {
    /// Wraps a storage's error.
    pub fn new<E: Error + Send + Sync + 'static>(error: E) -> Self {
        Self { message: error.to_string().into(), error: Arc::new(error) }
    }

    /// The storage's error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The storage's error as its own type, if it is a `T`.
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        self.error.downcast_ref()
    }
}

impl Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StorageError").field(&self.message).finish()
    }
}

impl Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for StorageError {}
