//! Bad input and failing transactions: clear errors naming the transaction, never a panic
//! escaping or a hang; speculative failures do not fail the block.
// The mock VMs below use a std atomic for a test handshake between transactions; it is not
// part of the algorithm, so the sync-shim rule does not apply.
#![allow(clippy::disallowed_types)]

use blockstm_executor::{
    BlockError, BlockExecutor, Config, ConfigError, Fallback, Halt, ParallelExecutor, SequentialExecutor,
    TxnView, Vm,
};
use blockstm_testkit::*;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn executors() -> Vec<ParallelExecutor<TestVm>> {
    [1, 2, 4, 8, 16].into_iter().map(|t| ParallelExecutor::new(TestVm, Config::new(t).unwrap())).collect()
}

#[test]
fn zero_threads_is_a_configuration_error() {
    assert_eq!(Config::new(0), Err(ConfigError::ZeroThreads));
    assert_eq!(Config::new(1).unwrap().with_max_incarnations(0), Err(ConfigError::ZeroIncarnations));
    assert_eq!(ConfigError::ZeroThreads.to_string(), "thread count must be at least 1, got 0");
}

#[test]
fn more_threads_than_transactions_is_capped() {
    let txns = vec![Tx { ops: vec![Op::Increment(0)] }; 3];
    let out =
        ParallelExecutor::new(TestVm, Config::new(64).unwrap()).execute_block(&storage(1), &txns).unwrap();
    assert_eq!(out.stats.threads, 3);
    assert_eq!(out.state, vec![(0, 3)]);
}

#[test]
fn empty_block_is_empty() {
    let out = ParallelExecutor::new(TestVm, Config::new(4).unwrap()).execute_block(&storage(1), &[]).unwrap();
    assert!(out.outputs.is_empty() && out.state.is_empty());
}

fn failing_block(panic: bool) -> Vec<Tx> {
    // Transaction 5 always fails (modulus 1); the others increment a shared key.
    (0..20)
        .map(|i| {
            let mut ops = vec![Op::Increment(0), Op::Work(50)];
            if i == 5 {
                ops.push(Op::FailIf { modulus: 1, panic });
            }
            Tx { ops }
        })
        .collect()
}

#[test]
fn vm_error_in_final_incarnation_fails_the_block_naming_the_transaction() {
    let txns = failing_block(false);
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage(1), &txns);
    assert!(
        matches!(expected, Err(BlockError::Vm { txn_idx: 5, error: TestError::Failed { .. } })),
        "{expected:?}"
    );
    for executor in executors() {
        assert_eq!(run(&executor, &storage(1), &txns).0, expected);
    }
}

#[test]
fn vm_panic_in_final_incarnation_fails_the_block_with_the_message() {
    quiet_test_vm_panics();
    let txns = failing_block(true);
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage(1), &txns);
    match &expected {
        Err(BlockError::Panic { txn_idx: 5, message }) => assert!(message.starts_with(PANIC_PREFIX)),
        other => panic!("{other:?}"),
    }
    assert!(expected.as_ref().unwrap_err().to_string().contains("transaction 5 panicked"));
    for executor in executors() {
        assert_eq!(run(&executor, &storage(1), &txns).0, expected);
    }
}

/// Transaction 1 panics (or errors) when it sees location 0 unset, which only a speculative
/// execution can: transaction 0 sets it, and holds its execution until transaction 1 has
/// started, so the speculative failure happens on every run.
struct SpeculativeFailureVm {
    started_1: AtomicBool,
    panic: bool,
}

impl Vm for SpeculativeFailureVm {
    type Key = u32;
    type Value = u64;
    type Transaction = ();
    type Output = u64;
    type Error = TestError;

    fn execute<V: TxnView<u32, u64>>(&self, txn_idx: usize, _: &(), view: &mut V) -> Result<u64, TestError> {
        match txn_idx {
            0 => {
                wait_until(|| self.started_1.load(Ordering::SeqCst), Duration::from_secs(20));
                view.write(0, 42);
                Ok(0)
            }
            1 => {
                self.started_1.store(true, Ordering::SeqCst);
                match view.read(&0).map_err(|_: Halt| TestError::Halted)? {
                    Some(v) => Ok(v),
                    None if self.panic => panic!("{PANIC_PREFIX}: speculative"),
                    None => Err(TestError::Failed { acc: 0 }),
                }
            }
            _ => Ok(1),
        }
    }
}

#[test]
fn speculative_errors_and_panics_do_not_fail_the_block() {
    quiet_test_vm_panics();
    for panic in [false, true] {
        let vm = SpeculativeFailureVm { started_1: AtomicBool::new(false), panic };
        let out = ParallelExecutor::new(vm, Config::new(2).unwrap())
            .execute_block(&HashMap::new(), &[(); 4])
            .unwrap();
        assert_eq!(out.outputs, vec![0, 42, 1, 1]);
        assert_eq!(out.state, vec![(0, 42)]);
        assert!(out.stats.executions > 4, "transaction 1 ran speculatively first: {:?}", out.stats);
    }
}

#[test]
fn storage_failure_in_final_incarnation_fails_the_block() {
    let mut storage = storage(10);
    storage.failing = Some(9);
    let txns: Vec<Tx> = (0..10).map(|i| Tx { ops: vec![Op::Increment(i)] }).collect();
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage, &txns);
    assert_eq!(expected, Err(BlockError::Storage { txn_idx: 9, message: "location 9 is unreadable".into() }));
    for executor in executors() {
        assert_eq!(run(&executor, &storage, &txns).0, expected);
    }
}

#[test]
fn commit_hook_ends_the_block_and_sees_outputs_in_order() {
    let txns: Vec<Tx> =
        (0..200u32).map(|i| Tx { ops: vec![Op::Increment(i % 3), Op::Write(100 + i, 1)] }).collect();
    for executor in executors() {
        let mut seen = Vec::new();
        let mut hook = |i: usize, out: &TxOut| {
            seen.push((i, out.acc));
            if i == 120 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        };
        let out = executor.execute_block_with_hook(&storage(3), &txns, &mut hook).unwrap();
        assert!(out.ended_early);
        assert_eq!(out.outputs.len(), 121);
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (0..=120).collect::<Vec<_>>());
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            out.outputs.iter().map(|o| o.acc).collect::<Vec<_>>()
        );
        // Only the writes of transactions 0..=120 are in the state.
        assert_eq!(out.state.len(), 3 + 121);
        assert!(out.state.iter().all(|(k, _)| *k < 100 + 121));
    }
}

#[test]
fn commit_hook_panic_is_an_error() {
    let txns = vec![Tx { ops: vec![Op::Increment(0)] }; 10];
    for executor in executors() {
        let mut hook = |i: usize, _: &TxOut| -> ControlFlow<()> {
            if i == 3 {
                panic!("{PANIC_PREFIX}: hook");
            }
            ControlFlow::Continue(())
        };
        quiet_test_vm_panics();
        let err = executor.execute_block_with_hook(&storage(1), &txns, &mut hook).unwrap_err();
        assert!(matches!(err, BlockError::HookPanic { txn_idx: 3, .. }), "{err:?}");
    }
}

/// Transaction 0 holds its execution until transaction 1 has started, so transaction 1's first
/// incarnation reads location 0 before transaction 0 writes it and must be aborted: with a limit
/// of one incarnation the livelock guard fires on every run with two or more workers.
struct ForcedAbortVm {
    started_1: AtomicBool,
}

impl Vm for ForcedAbortVm {
    type Key = u32;
    type Value = u64;
    type Transaction = ();
    type Output = u64;
    type Error = TestError;

    fn execute<V: TxnView<u32, u64>>(&self, txn_idx: usize, _: &(), view: &mut V) -> Result<u64, TestError> {
        match txn_idx {
            0 => wait_until(|| self.started_1.load(Ordering::SeqCst), Duration::from_secs(20)),
            1 => self.started_1.store(true, Ordering::SeqCst),
            _ => {}
        }
        let key = (txn_idx % 2) as u32;
        let value = view.read(&0).map_err(|_: Halt| TestError::Halted)?.unwrap_or(0) + txn_idx as u64;
        view.write(key, value);
        Ok(value)
    }
}

#[test]
fn livelock_guard_falls_back_to_sequential_with_the_same_result() {
    let txns = vec![(); 300];
    let expected = SequentialExecutor::new(ForcedAbortVm { started_1: AtomicBool::new(true) })
        .execute_block(&HashMap::new(), &txns)
        .unwrap();
    for threads in [2, 4, 8, 16] {
        let vm = ForcedAbortVm { started_1: AtomicBool::new(false) };
        let config = Config::new(threads).unwrap().with_max_incarnations(1).unwrap();
        let out = ParallelExecutor::new(vm, config).execute_block(&HashMap::new(), &txns).unwrap();
        assert_eq!((&out.outputs, &out.state), (&expected.outputs, &expected.state), "threads = {threads}");
        assert_eq!(out.stats.fallback, Some(Fallback::Livelock), "threads = {threads}: {:?}", out.stats);
        assert!(out.stats.fallback_from.is_some_and(|from| from <= 1), "{:?}", out.stats);
    }
}

#[test]
fn error_display_names_the_transaction() {
    let e: BlockError<TestError> = BlockError::Vm { txn_idx: 7, error: TestError::Failed { acc: 1 } };
    assert_eq!(e.to_string(), "transaction 7 failed: Failed { acc: 1 }");
    assert_eq!(e.txn_idx(), Some(7));
}

/// Transaction 0 is slow; everything else is instant.
struct SlowFirstVm;

impl Vm for SlowFirstVm {
    type Key = u32;
    type Value = u64;
    type Transaction = ();
    type Output = u64;
    type Error = TestError;

    fn execute<V: TxnView<u32, u64>>(&self, txn_idx: usize, _: &(), view: &mut V) -> Result<u64, TestError> {
        if txn_idx == 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        view.write(txn_idx as u32, 1);
        Ok(1)
    }
}

#[test]
fn watchdog_fails_a_block_that_outlives_it_with_the_scheduler_state() {
    let executor =
        ParallelExecutor::new(SlowFirstVm, Config::new(2).unwrap().with_watchdog(Duration::from_millis(50)));
    let err = executor.execute_block(&HashMap::new(), &[(); 8]).unwrap_err();
    let BlockError::Internal(message) = err else { panic!("expected the watchdog, got {err:?}") };
    assert!(message.starts_with("watchdog: block not finished after 50ms"), "{message}");
    assert!(
        message.contains("transactions from the commit point:\n  0: incarnation 0 Executing"),
        "{message}"
    );
    // Without the watchdog the same block simply finishes.
    let out =
        ParallelExecutor::new(SlowFirstVm, Config::new(2).unwrap()).execute_block(&HashMap::new(), &[(); 8]);
    assert_eq!(out.unwrap().outputs.len(), 8);
}
