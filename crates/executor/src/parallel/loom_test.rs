//! loom model of the whole parallel executor.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p blockstm-executor --lib loom`.
//!
//! Two workers run the real worker loop (`Block::worker`) over a block of three transactions
//! with read-write conflicts, through the real multi-version memory, validator and scheduler,
//! and a small VM. In every explored interleaving the result must equal sequential execution.
// Test bookkeeping counts iterations with a plain std atomic, outside the model (one per
// model: tests run concurrently).
#![allow(clippy::disallowed_types)]

use super::*;
use crate::{BlockExecutor, Halt, NoHook, SequentialExecutor, TxnView};
use blockstm_sync::Arc;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

/// `Add { read, write }`: `write := read + 1` (a missing location reads as 0); with `fee`, then
/// a fee of 1 credited to that location as a delta, the location being the block's accumulator
/// (its deltas kept per transaction).
#[derive(Clone, Copy)]
struct AddVm {
    fee: Option<u8>,
}

#[derive(Debug)]
struct AddError;

impl From<Halt> for AddError {
    fn from(_: Halt) -> Self {
        AddError
    }
}

impl Vm for AddVm {
    type Key = u8;
    type Value = u64;
    type Transaction = (u8, u8);
    type Output = u64;
    type Error = AddError;
    type Delta = crate::Add;

    fn execute<V: TxnView<u8, u64, crate::Add>>(
        &self,
        _: TxnIndex,
        &(read, write): &(u8, u8),
        view: &mut V,
    ) -> Result<u64, AddError> {
        let value = view.read(&read)?.unwrap_or(0) + 1;
        view.write(write, value);
        if let Some(recipient) = self.fee {
            view.apply_delta(recipient, crate::Add(1))?;
        }
        Ok(value)
    }

    fn accumulator(&self) -> Option<u8> {
        self.fee
    }
}

const FEE_RECIPIENT: u8 = 9;

fn run_model(txns: &'static [(u8, u8)], batch: usize, preemption_bound: usize) {
    run_model_of(AddVm { fee: None }, txns, batch, preemption_bound);
}

fn run_model_of(vm: AddVm, txns: &'static [(u8, u8)], batch: usize, preemption_bound: usize) {
    let iterations = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let storage: &'static HashMap<u8, u64> = Box::leak(Box::new(HashMap::from([(0, 10)])));
    let expected = SequentialExecutor::new(vm).execute_block(storage, txns).expect("sequential");
    let start = std::time::Instant::now();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    // Idle workers spin (yielding) while the other progresses; each spin is a branch.
    builder.max_branches = 100_000;
    let (outputs, state) = (expected.outputs.clone(), expected.state.clone());
    let vm: &'static AddVm = Box::leak(Box::new(vm));
    // Block-STM itself (no adaptive rule), claims of `batch` from the start.
    let config = Config::new(2)
        .expect("two threads")
        .with_adaptive(false)
        .with_max_incarnations(100)
        .with_batch(batch)
        .with_batch_calm_txns(0);
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        let hook: &'static mut NoHook = Box::leak(Box::new(NoHook));
        let block = Arc::new(Block::new(vm, storage, txns, Vec::new(), &config, 2, hook));
        let other = {
            let block = Arc::clone(&block);
            loom::thread::spawn(move || block.worker(1))
        };
        block.worker(0);
        other.join().expect("worker");
        let out = block.finish(2).expect("parallel result");
        assert_eq!(out.outputs, outputs);
        assert_eq!(out.state, state);
    });
    println!(
        "executor model: 2 threads, {} transactions, batch {batch}, preemption bound {preemption_bound}: {} interleavings in {:.1?}",
        txns.len(),
        iterations.load(StdOrdering::Relaxed),
        start.elapsed()
    );
}

#[test]
fn loom_executor_three_conflicting_transactions() {
    // 1 reads what 0 writes, 2 reads what 1 writes and overwrites what 0 wrote.
    run_model(&[(0, 1), (1, 2), (2, 1)], 1, 2);
}

#[test]
fn loom_executor_three_conflicting_transactions_batched() {
    // The same block with claims of two transactions: the second worker's first claim starts
    // at 2, and validations wait for the worker that executed them.
    run_model(&[(0, 1), (1, 2), (2, 1)], 2, 2);
}

#[test]
fn loom_executor_fees_to_an_accumulator_and_a_reader_of_it() {
    // Every transaction credits location 9 a fee (kept per transaction); 1 reads what 0 wrote,
    // 2 reads location 9 (the fees of 0 and 1).
    run_model_of(AddVm { fee: Some(FEE_RECIPIENT) }, &[(0, 1), (1, 2), (FEE_RECIPIENT, 3)], 1, 2);
}
