//! blockstm: execute a block of transactions in parallel with Block-STM and get exactly what
//! sequential execution returns.
//!
//! This crate re-exports the public API of the workspace:
//!
//! - the executor API at the top level ([`Vm`], [`TxnView`], [`Storage`], [`CommitHook`],
//!   [`ParallelExecutor`], [`SequentialExecutor`], [`BlockExecutor`], [`Config`],
//!   [`BlockOutput`], [`BlockError`], [`Stats`]);
//! - the building blocks as modules ([`mvmemory`], [`scheduler`], [`validator`]) for those who
//!   assemble their own executor or test against them.
//!
//! Start with the [`Vm`] trait and `docs/design.md` in the repository.
#![doc = "\n# Examples\n"]
#![doc = "```"]
#![doc = include_str!("../../executor/examples/counter.rs")]
#![doc = "```"]

pub use blockstm_executor::*;

/// Multi-version memory (see [`blockstm_mvmemory`]).
pub mod mvmemory {
    pub use blockstm_mvmemory::*;
}

/// The collaborative scheduler (see [`blockstm_scheduler`]).
pub mod scheduler {
    pub use blockstm_scheduler::*;
}

/// Read-set capture and validation (see [`blockstm_validator`]).
pub mod validator {
    pub use blockstm_validator::*;
}

/// The README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
