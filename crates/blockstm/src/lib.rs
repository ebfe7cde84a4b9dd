//! blockstm: execute a block of transactions in parallel with Block-STM and get exactly what
//! sequential execution returns.
//!
//! This crate is the public API a client links against:
//!
//! - what a client implements or passes: [`Vm`] (with [`TxnView`], [`Halt`] and, for
//!   commutative updates, [`Delta`] / [`Add`] / [`NoDelta`]), [`Storage`] (with
//!   [`StorageError`]) and [`CommitHook`] ([`NoHook`]);
//! - the executors: [`ParallelExecutor`] (Block-STM) and [`SequentialExecutor`] (the
//!   baseline), both [`BlockExecutor`]s, configured by [`Config`];
//! - the result: [`BlockOutput`] with its [`Stats`] and [`Fallback`], or a [`BlockError`];
//! - for views of one's own (a tracer, a profiler) that must see what the executors see:
//!   [`LayeredView`] over a [`ReadBelow`], with a transaction's [`WriteSet`].
//!
//! The building blocks (multi-version memory, scheduler, validator) are crates of their own
//! (`blockstm-mvmemory`, `blockstm-scheduler`, `blockstm-validator`), and the executor's
//! tuning constants are in `blockstm_executor::tuning`.
//!
//! Start with the [`Vm`] trait and `docs/design.md` in the repository.
#![doc = "\n# Examples\n"]
#![doc = "```"]
#![doc = include_str!("../../executor/examples/counter.rs")]
#![doc = "```"]

pub use blockstm_executor::{
    Add, AddOverflow, BlockError, BlockExecutor, BlockOutput, BlockResult, CommitHook, Config, ConfigError,
    Delta, Fallback, Halt, Incarnation, LayeredView, NoDelta, NoHook, Own, ParallelExecutor, ReadBelow,
    ResolveError, SequentialExecutor, Stats, Storage, StorageError, TxnIndex, TxnView, Vm, VmBlockOutput,
    Write, WriteSet,
};

/// The README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
