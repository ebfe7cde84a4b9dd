//! The Block-STM executor: plug in a VM, execute a block in parallel, get exactly what
//! sequential execution returns.
//!
//! # Pieces
//!
//! - [`Vm`], [`TxnView`], [`Storage`], [`CommitHook`]: what a client implements or passes.
//! - [`ParallelExecutor`]: Block-STM over plain worker threads, with a rolling commit, the
//!   commit hook, error and panic handling, and a livelock guard that finishes the block
//!   sequentially.
//! - [`SequentialExecutor`]: the baseline with the same interface ([`BlockExecutor`]) and none of
//!   the machinery.
//! - [`BlockOutput`], [`BlockError`], [`Stats`]: the result.
//! - [`LayeredView`] over a [`ReadBelow`], with a [`WriteSet`]: the read path both executors
//!   share (own writes, then deltas settled on the value below, then the value below), for
//!   views of one's own that must see what they see.
//! - [`tuning`]: the defaults and thresholds behind [`Config`], each with its reason.
//!
//! # The contract
//!
//! For every block, storage, hook and configuration, [`ParallelExecutor`] returns what
//! [`SequentialExecutor`] returns: the same outputs in block order, the same final state
//! (sorted by key), the same error. Only [`Stats`] differ. This holds as long as the VM is
//! deterministic (its writes, output and error are a function of the values it read) and the
//! hook is a function of the outputs it is given.
//!
//! # Errors and panics
//!
//! An error or panic in an incarnation that read stale data is speculation and is discarded.
//! One in the incarnation that commits ends the block with [`BlockError`] naming the
//! transaction. Panics in the VM and the hook are caught: no thread is left running, no lock
//! poisoned. Panics still go through the process's panic hook (which prints them by default);
//! a client that expects panicking transactions may want to install a quieter hook.
//!
//! # Tracing
//!
//! The block runs in an `info` span `blockstm_block` (with `txns` and `threads`); aborts,
//! dependency waits and the livelock fallback are `debug` events. Without a subscriber they
//! cost a relaxed load each.
#![doc = "\n# Examples\n"]
#![doc = "```"]
#![doc = include_str!("../examples/counter.rs")]
#![doc = "```"]

mod config;
mod local;
mod outcome;
mod parallel;
mod result;
mod sequential;
#[cfg(feature = "stress")]
pub mod stress;
mod view;
mod vm;

pub use blockstm_mvmemory::{Add, AddOverflow, Delta, Incarnation, NoDelta, TxnIndex};
pub use blockstm_mvmemory::{ResolveError, Write, apply_deltas};
pub use config::{Config, ConfigError};
pub use local::{Own, WriteSet};
pub use parallel::ParallelExecutor;
pub use result::{BlockError, BlockOutput, Fallback, Stats, StorageError};
pub use sequential::SequentialExecutor;
pub use view::{LayeredView, ReadBelow};
pub use vm::{CommitHook, Halt, NoHook, Storage, TxnView, Vm};

/// The executor's tuning constants: the defaults behind [`Config`] and the thresholds of the
/// adaptive rule ([`Config::with_adaptive`]), each with the reason for its value.
pub mod tuning {
    pub use crate::config::{AUTO_BATCH, DEFAULT_MAX_INCARNATIONS};
    pub use crate::parallel::{
        ADAPTIVE_MIN_PARALLELISM, ADAPTIVE_MIN_TXNS, ADAPTIVE_WINDOW, HINTED_MIN_PARALLELISM,
    };
    pub use blockstm_scheduler::CALM_TXNS;
}

/// The block output of a VM.
pub type VmBlockOutput<VM> = BlockOutput<<VM as Vm>::Key, <VM as Vm>::Value, <VM as Vm>::Output>;

/// What executing a block with a VM returns.
pub type BlockResult<VM> = Result<VmBlockOutput<VM>, BlockError<<VM as Vm>::Error>>;

/// Executes whole blocks. Implemented by [`ParallelExecutor`] and [`SequentialExecutor`], so a
/// client (or a test) can switch between them.
pub trait BlockExecutor<VM: Vm> {
    /// Executes `txns` over `storage`, calling `hook` for each committed transaction in block
    /// order.
    fn execute_block_with_hook<S, H>(
        &self,
        storage: &S,
        txns: &[VM::Transaction],
        hook: &mut H,
    ) -> BlockResult<VM>
    where
        S: Storage<VM::Key, VM::Value>,
        H: CommitHook<VM::Output> + Send;

    /// Executes `txns` over `storage`.
    fn execute_block<S>(
        &self,
        storage: &S,
        txns: &[VM::Transaction],
    ) -> Result<VmBlockOutput<VM>, BlockError<VM::Error>>
    where
        S: Storage<VM::Key, VM::Value>,
    {
        self.execute_block_with_hook(storage, txns, &mut NoHook)
    }
}
