//! Statistics say what happened: independent transactions run once each; dependent ones abort
//! or wait.

use blockstm_executor::tuning::{ADAPTIVE_MIN_PARALLELISM, ADAPTIVE_MIN_TXNS, ADAPTIVE_WINDOW};
use blockstm_executor::{BlockExecutor, Config, Fallback, ParallelExecutor, SequentialExecutor};
use blockstm_testkit::*;

#[test]
fn one_thread_commits_every_transaction_without_validation() {
    // With one worker, each transaction starts once everything below it is committed.
    let txns: Vec<Tx> =
        (0..300u32).map(|i| Tx { hint: None, ops: vec![Op::Increment(i % 7), Op::Read(i % 5)] }).collect();
    let out = ParallelExecutor::new(TestVm, Config::new(1).unwrap().with_adaptive(false))
        .execute_block(&storage(7), &txns)
        .unwrap();
    assert_eq!(out.stats.executions, 300);
    assert_eq!(out.stats.final_executions, 300);
    assert_eq!(out.stats.validations, 0);
}

#[test]
fn independent_transactions_execute_exactly_once() {
    let txns: Vec<Tx> = (0..500u32)
        .map(|i| Tx { hint: None, ops: vec![Op::Read(i), Op::Work(10), Op::Increment(i)] })
        .collect();
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
        (0..300u32).map(|i| Tx { hint: None, ops: vec![Op::Increment(i % 7), Op::Read(i % 5)] }).collect();
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
    let txns: Vec<Tx> = (0..1000u32).map(|i| Tx { hint: None, ops: vec![Op::Increment(i % 3)] }).collect();
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
            .map(|i| Tx {
                hint: None,
                ops: vec![Op::Read(i.saturating_sub(1)), Op::Work(100), Op::Write(i, 1)],
            })
            .collect(),
        (0..n).map(|_| Tx { hint: None, ops: vec![Op::Work(100), Op::Increment(0)] }).collect(),
        (0..n).map(|i| Tx { hint: None, ops: vec![Op::Read(i), Op::Work(100), Op::Increment(i)] }).collect(),
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

#[test]
fn dependency_hints_take_effect_on_a_chain() {
    // Each transaction reads the previous one's write. Hinted with that transaction, a first
    // execution waits for it instead of running early: every transaction executes once and
    // nothing aborts. Without hints the same block aborts or waits on ESTIMATEs.
    let n = 300u32;
    let chain = |hinted: bool| -> Vec<Tx> {
        (0..n)
            .map(|i| Tx {
                hint: (hinted && i > 0).then(|| i as usize - 1),
                ops: vec![Op::Read(i.saturating_sub(1)), Op::Work(2000), Op::Write(i, 1)],
            })
            .collect()
    };
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage(n), &chain(false));
    let (mut hint_waits, mut unhinted_conflicts) = (0, 0);
    for threads in [2, 4, 8].repeat(5) {
        let config = Config::new(threads).unwrap().with_adaptive(false);
        let (actual, out) = run(&ParallelExecutor::new(TestVm, config), &storage(n), &chain(true));
        assert_eq!(actual, expected);
        let stats = out.unwrap().stats;
        assert_eq!((stats.executions, stats.aborts), (n as usize, 0), "{stats:?}");
        // Whether a worker reaches a hinted transaction before its hint finished depends on the
        // OS scheduler (tests share the cores); over fifteen runs some must.
        hint_waits += stats.hint_waits;

        let (actual, out) = run(&ParallelExecutor::new(TestVm, config), &storage(n), &chain(false));
        assert_eq!(actual, expected);
        let stats = out.unwrap().stats;
        assert_eq!(stats.hint_waits, 0, "{stats:?}");
        unhinted_conflicts += stats.aborts + stats.dependency_waits;
    }
    assert!(hint_waits > 0, "no first execution waited for its hint in fifteen runs");
    assert!(unhinted_conflicts > 0, "the unhinted chain never aborted or waited in fifteen runs");
}

#[test]
fn small_blocks_cheap_blocks_and_hinted_chains_run_sequentially_when_adaptive() {
    let n = 200u32;
    let block = |hint: &dyn Fn(u32) -> Option<usize>| -> Vec<Tx> {
        (0..n)
            .map(|i| Tx { hint: hint(i), ops: vec![Op::Read(i % 13), Op::Work(20), Op::Increment(i)] })
            .collect()
    };
    let chain = block(&|i| (i > 0).then(|| i as usize - 1));
    // Two chains of 100 (parallelism 2) and no hints: both run on Block-STM.
    let two_chains = block(&|i| (i > 1).then(|| i as usize - 2));
    let unhinted = block(&|_| None);
    let storage = storage(n);
    let stats_of = |config: Config, txns: &[Tx]| {
        let (expected, _) = run(&SequentialExecutor::new(TestVm), &storage, txns);
        let (actual, out) = run(&ParallelExecutor::new(TestVm, config), &storage, txns);
        assert_eq!(actual, expected);
        out.unwrap().stats
    };
    let config = Config::new(4).unwrap();
    assert_eq!(stats_of(config, &chain).fallback, Some(Fallback::HintedChain));
    assert_eq!(stats_of(config.with_adaptive(false), &chain).fallback, None);
    // Nine transactions in ten form one hinted chain (200 / 180 = 1.11 by count); each tenth
    // is off the chain. When those are heavy, the chain is a small part of the block by cost
    // estimate and the block runs on Block-STM; when they are as light, it does not.
    let weighted = |heavy: u32| -> Vec<Tx> {
        let off_chain = |i: u32| i % 10 == 9;
        (0..n)
            .map(|i| {
                let previous = (0..i).rev().find(|&j| !off_chain(j)).map(|j| j as usize);
                let (hint, rounds) = if off_chain(i) { (None, heavy) } else { (previous, 20) };
                Tx { hint, ops: vec![Op::Read(i % 13), Op::Work(rounds), Op::Increment(i)] }
            })
            .collect()
    };
    assert_eq!(stats_of(config, &weighted(2000)).fallback, None);
    assert_eq!(stats_of(config, &weighted(20)).fallback, Some(Fallback::HintedChain));
    assert_eq!(stats_of(config, &two_chains).fallback, None);
    assert_eq!(stats_of(config, &unhinted).fallback, None);
    let small = config.with_min_parallel_txns(n as usize + 1);
    let stats = stats_of(small, &unhinted);
    assert_eq!(
        (stats.fallback, stats.fallback_from, stats.validations),
        (Some(Fallback::SmallBlock), Some(0), 0)
    );
    assert_eq!(stats_of(config.with_min_parallel_txns(n as usize), &unhinted).fallback, None);
    // TestVm's estimate: 23 per transaction here (three operations, 20 rounds of work). The
    // rule comes before the hints: the hinted chain is cheap first.
    for txns in [&unhinted, &chain] {
        let stats = stats_of(config.with_min_mean_cost(24), txns);
        assert_eq!(
            (stats.fallback, stats.fallback_from, stats.validations),
            (Some(Fallback::CheapTransactions), Some(0), 0)
        );
        assert_eq!(stats_of(config.with_min_mean_cost(24).with_adaptive(false), txns).fallback, None);
    }
    assert_eq!(stats_of(config.with_min_mean_cost(23), &unhinted).fallback, None);
}
