//! Statistics say what happened: independent transactions run once each; dependent ones abort
//! or wait.
// The mock VMs below use a std atomic for a test handshake between transactions; it is not
// part of the algorithm, so the sync-shim rule does not apply.
#![allow(clippy::disallowed_types)]

use blockstm_executor::{BlockExecutor, Config, Halt, ParallelExecutor, SequentialExecutor, TxnView, Vm};
use blockstm_testkit::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn one_thread_commits_every_transaction_without_validation() {
    // With one worker, each transaction starts once everything below it is committed.
    let txns: Vec<Tx> =
        (0..300u32).map(|i| Tx { ops: vec![Op::Increment(i % 7), Op::Read(i % 5)] }).collect();
    let out =
        ParallelExecutor::new(TestVm, Config::new(1).unwrap()).execute_block(&storage(7), &txns).unwrap();
    assert_eq!(out.stats.executions, 300);
    assert_eq!(out.stats.final_executions, 300);
    assert_eq!(out.stats.validations, 0);
}

#[test]
fn independent_transactions_execute_exactly_once() {
    let txns: Vec<Tx> =
        (0..500u32).map(|i| Tx { ops: vec![Op::Read(i), Op::Work(10), Op::Increment(i)] }).collect();
    let storage = storage(500);
    for threads in [1, 2, 4, 8] {
        let out = ParallelExecutor::new(TestVm, Config::new(threads).unwrap())
            .execute_block(&storage, &txns)
            .unwrap();
        assert_eq!(out.stats.executions, 500, "threads = {threads}");
        assert_eq!(out.stats.aborts, 0);
        assert_eq!(out.stats.dependency_waits, 0);
        assert!(
            out.stats.validations + out.stats.final_executions >= 500,
            "each transaction is validated, or read only committed values: {:?}",
            out.stats
        );
        assert!(!out.stats.fell_back());
        assert_eq!(out.stats.threads, threads);
    }
}

/// A chain where transaction `i` reads what `i - 1` wrote. Transaction 0 holds its execution
/// until transaction 1 has started, so transaction 1's first incarnation reads the value from
/// before transaction 0 (whatever the OS scheduler does): an abort or a wait must follow.
struct ChainVm {
    started_1: AtomicBool,
}

impl Vm for ChainVm {
    type Key = u32;
    type Value = u64;
    type Transaction = ();
    type Output = u64;
    type Error = TestError;

    fn execute<V: TxnView<u32, u64>>(&self, txn_idx: usize, _: &(), view: &mut V) -> Result<u64, TestError> {
        let i = txn_idx as u32;
        if i == 1 {
            self.started_1.store(true, Ordering::SeqCst);
        }
        if i == 0 {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !self.started_1.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
        let prev =
            if i == 0 { 0 } else { view.read(&(i - 1)).map_err(|_: Halt| TestError::Halted)?.unwrap_or(0) };
        view.write(i, prev + 1);
        Ok(prev + 1)
    }
}

#[test]
fn dependent_chain_records_aborts_or_waits() {
    let txns = vec![(); 50];
    let storage = std::collections::HashMap::<u32, u64>::new();
    let out = ParallelExecutor::new(ChainVm { started_1: AtomicBool::new(false) }, Config::new(2).unwrap())
        .execute_block(&storage, &txns)
        .unwrap();
    let expected = SequentialExecutor::new(ChainVm { started_1: AtomicBool::new(true) })
        .execute_block(&storage, &txns)
        .unwrap();
    assert_eq!(out.outputs, expected.outputs);
    assert_eq!(out.state, expected.state);
    assert!(out.stats.executions > 50, "{:?}", out.stats);
    assert!(out.stats.aborts + out.stats.dependency_waits > 0, "{:?}", out.stats);
}
