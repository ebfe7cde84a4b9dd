//! Bad input and failing transactions: clear errors naming the transaction, never a panic
//! escaping or a hang; speculative failures do not fail the block.

use blockstm_executor::{
    BlockError, BlockExecutor, Config, ConfigError, Fallback, ParallelExecutor, SequentialExecutor, TxnView,
    Vm,
};
use blockstm_testkit::*;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

fn executors() -> Vec<ParallelExecutor<TestVm>> {
    [1, 2, 4, 8, 16].into_iter().map(|t| ParallelExecutor::new(TestVm, Config::new(t).unwrap())).collect()
}

#[test]
fn zero_threads_is_a_configuration_error() {
    assert_eq!(Config::new(0), Err(ConfigError::ZeroThreads));
    // No re-execution at all is what a limit of one means already.
    assert_eq!(Config::new(1).unwrap().with_max_incarnations(0).max_incarnations(), 1);
    assert_eq!(ConfigError::ZeroThreads.to_string(), "thread count must be at least 1, got 0");
}

#[test]
fn more_threads_than_transactions_is_capped() {
    let txns = vec![Tx { hint: None, ops: vec![Op::Increment(0)] }; 3];
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
            Tx { ops, hint: None }
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

#[test]
fn speculative_errors_and_panics_do_not_fail_the_block() {
    quiet_test_vm_panics();
    // Transaction 1's first incarnation sees location 0 unset (see HeldChainVm) and fails or
    // panics; only a speculative execution can, so the block must succeed.
    for fault in [Fault::Error, Fault::Panic] {
        let expected = SequentialExecutor::new(HeldChainVm::released(Some(fault)))
            .execute_block(&HashMap::new(), &[(); 4]);
        let out = ParallelExecutor::new(HeldChainVm::new(Some(fault)), Config::new(2).unwrap())
            .execute_block(&HashMap::new(), &[(); 4])
            .unwrap();
        assert_eq!(out.outputs, vec![1, 2, 3, 4]);
        assert_eq!(
            (&out.outputs, &out.state),
            (&expected.as_ref().unwrap().outputs, &expected.as_ref().unwrap().state)
        );
        assert!(out.stats.executions > 4, "transaction 1 ran speculatively first: {:?}", out.stats);
    }
}

#[test]
fn storage_failure_in_final_incarnation_fails_the_block() {
    let mut storage = storage(10);
    storage.failing = Some(9);
    let txns: Vec<Tx> = (0..10).map(|i| Tx { hint: None, ops: vec![Op::Increment(i)] }).collect();
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage, &txns);
    let Err(BlockError::Storage { txn_idx: 9, error }) = &expected else {
        panic!("expected a storage failure at 9, got {expected:?}");
    };
    assert_eq!(error.to_string(), "location 9 is unreadable");
    // The storage's own error is the source, as its own type.
    assert_eq!(error.downcast_ref::<StorageFailure>().map(|failure| failure.0), Some(9));
    let block_error = expected.as_ref().unwrap_err();
    let source = std::error::Error::source(block_error).expect("the storage error is the source");
    assert_eq!(source.to_string(), "location 9 is unreadable");
    for executor in executors() {
        assert_eq!(run(&executor, &storage, &txns).0, expected);
    }
}

#[test]
fn commit_hook_ends_the_block_and_sees_outputs_in_order() {
    let txns: Vec<Tx> = (0..200u32)
        .map(|i| Tx { hint: None, ops: vec![Op::Increment(i % 3), Op::Write(100 + i, 1)] })
        .collect();
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
    let txns = vec![Tx { hint: None, ops: vec![Op::Increment(0)] }; 10];
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

#[test]
fn livelock_guard_falls_back_to_sequential_with_the_same_result() {
    // Transaction 1's first incarnation reads stale data on every run (see HeldChainVm), so with a
    // limit of one incarnation the guard fires every time.
    let txns = vec![(); 300];
    let expected =
        SequentialExecutor::new(HeldChainVm::released(None)).execute_block(&HashMap::new(), &txns).unwrap();
    for threads in [2, 4, 8, 16] {
        let vm = HeldChainVm::new(None);
        let config = Config::new(threads).unwrap().with_max_incarnations(1);
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
    type Delta = blockstm_executor::NoDelta;

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
