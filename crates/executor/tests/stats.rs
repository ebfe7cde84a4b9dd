//! Statistics say what happened: independent transactions run once each; dependent ones abort
//! or wait.

use blockstm_executor::{
    ADAPTIVE_MIN_PARALLELISM, ADAPTIVE_MIN_TXNS, ADAPTIVE_WINDOW, BlockExecutor, Config, Fallback,
    ParallelExecutor, SequentialExecutor,
};
use blockstm_testkit::*;

#[test]
fn one_thread_commits_every_transaction_without_validation() {
    // With one worker, each transaction starts once everything below it is committed.
    let txns: Vec<Tx> =
        (0..300u32).map(|i| Tx { ops: vec![Op::Increment(i % 7), Op::Read(i % 5)] }).collect();
    let out = ParallelExecutor::new(TestVm, Config::new(1).unwrap().with_adaptive(false))
        .execute_block(&storage(7), &txns)
        .unwrap();
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
        let out = ParallelExecutor::new(TestVm, Config::new(threads).unwrap().with_adaptive(false))
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

#[test]
fn dependent_chain_records_aborts_or_waits() {
    let txns = vec![(); 50];
    let storage = std::collections::HashMap::<u32, u64>::new();
    let out = ParallelExecutor::new(HeldChainVm::new(None), Config::new(2).unwrap())
        .execute_block(&storage, &txns)
        .unwrap();
    let expected =
        SequentialExecutor::new(HeldChainVm::released(None)).execute_block(&storage, &txns).unwrap();
    assert_eq!(out.outputs, expected.outputs);
    assert_eq!(out.state, expected.state);
    assert!(out.stats.executions > 50, "{:?}", out.stats);
    assert!(out.stats.aborts + out.stats.dependency_waits > 0, "{:?}", out.stats);
}

#[test]
fn adaptive_one_thread_runs_the_sequential_baseline() {
    let txns: Vec<Tx> =
        (0..300u32).map(|i| Tx { ops: vec![Op::Increment(i % 7), Op::Read(i % 5)] }).collect();
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage(7), &txns);
    let (actual, out) = run(&ParallelExecutor::new(TestVm, Config::new(1).unwrap()), &storage(7), &txns);
    assert_eq!(actual, expected);
    let stats = out.unwrap().stats;
    assert_eq!(stats.fallback, Some(Fallback::SingleThread));
    assert_eq!((stats.executions, stats.validations), (300, 0));
}

#[test]
fn adaptive_rule_finishes_a_block_sequentially_when_parallelism_is_below_one() {
    // Transactions that do no work: the executor's own cost dwarfs them, so the run commits far
    // more slowly than one thread would execute them (measured parallelism near 0.1) and the
    // rule hands the rest of the block to the sequential path.
    let txns: Vec<Tx> = (0..1000u32).map(|i| Tx { ops: vec![Op::Increment(i % 3)] }).collect();
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage(3), &txns);
    for threads in [2, 4] {
        let (actual, out) =
            run(&ParallelExecutor::new(TestVm, Config::new(threads).unwrap()), &storage(3), &txns);
        assert_eq!(actual, expected);
        let stats = out.unwrap().stats;
        assert_eq!(stats.fallback, Some(Fallback::LowParallelism), "{stats:?}");
        // The window is the ADAPTIVE_WINDOW commits after the last worker started.
        assert!(stats.fallback_from.is_some_and(|from| (ADAPTIVE_WINDOW..1000).contains(&from)), "{stats:?}");
        assert!(stats.measured_parallelism.is_some_and(|p| p < ADAPTIVE_MIN_PARALLELISM));
    }
}

#[test]
fn adaptive_rule_keeps_results_identical_whatever_it_chooses() {
    quiet_test_vm_panics();
    // Large blocks (the rule only measures blocks of ADAPTIVE_MIN_TXNS or more): a chain, a hot
    // key and independent transactions, each with some work.
    let n = 4 * ADAPTIVE_MIN_TXNS as u32;
    let blocks: Vec<Vec<Tx>> = vec![
        (0..n)
            .map(|i| Tx { ops: vec![Op::Read(i.saturating_sub(1)), Op::Work(100), Op::Write(i, 1)] })
            .collect(),
        (0..n).map(|_| Tx { ops: vec![Op::Work(100), Op::Increment(0)] }).collect(),
        (0..n).map(|i| Tx { ops: vec![Op::Read(i), Op::Work(100), Op::Increment(i)] }).collect(),
    ];
    for txns in &blocks {
        let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage(n), txns);
        for threads in [2, 3, 8] {
            let (actual, out) =
                run(&ParallelExecutor::new(TestVm, Config::new(threads).unwrap()), &storage(n), txns);
            assert_eq!(actual, expected);
            let stats = out.unwrap().stats;
            // The window is the ADAPTIVE_WINDOW commits after the last worker started; with
            // more threads than cores a late thread may leave too few commits to measure.
            assert!(threads > 2 || stats.measured_parallelism.is_some(), "{stats:?}");
            assert!(stats.measured_parallelism.is_some() || !stats.fell_back(), "{stats:?}");
            if stats.fell_back() {
                assert!(stats.fallback_from.is_some_and(|from| from >= ADAPTIVE_WINDOW), "{stats:?}");
            }
        }
    }
}
