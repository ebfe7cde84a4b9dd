//! Deltas (commutative writes): the cases the random blocks reach only rarely, pinned down.

use blockstm_executor::{BlockError, BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use blockstm_testkit::*;
use std::collections::HashMap;

const THREADS: [usize; 5] = [1, 2, 3, 4, 8];

fn parallel(threads: usize) -> ParallelExecutor<TestVm> {
    ParallelExecutor::new(TestVm, Config::new(threads).unwrap().with_adaptive(false))
}

/// Runs the block sequentially and at every thread count; all must agree. Returns the
/// sequential result.
fn agree(storage: &TestStorage, txns: &[Tx]) -> Comparable {
    let (expected, _) = run(&SequentialExecutor::new(TestVm), storage, txns);
    let accumulating = AccumulatingVm(delta_hotspot(txns));
    for threads in THREADS {
        for _ in 0..20 {
            let (actual, _) = run(&parallel(threads), storage, txns);
            assert_eq!(actual, expected, "threads = {threads}");
            // Its most delta-written location kept per transaction: the same.
            let config = Config::new(threads).unwrap().with_adaptive(false);
            let (actual, _) = run(&ParallelExecutor::new(accumulating, config), storage, txns);
            assert_eq!(actual, expected, "{accumulating:?}, threads = {threads}");
        }
    }
    expected
}

fn store(values: &[(Key, Value)]) -> TestStorage {
    TestStorage { values: values.iter().copied().collect::<HashMap<_, _>>(), failing: None }
}

#[test]
fn deltas_only_transactions_never_abort_each_other() {
    // Every transaction bumps the same counter: no reads, so nothing to invalidate.
    let txns: Vec<Tx> =
        (0..2000).map(|_| Tx { hint: None, ops: vec![Op::Work(50), Op::Delta(0, 3)] }).collect();
    let storage = store(&[(0, 10)]);
    let expected = agree(&storage, &txns);
    assert_eq!(expected.unwrap().1, vec![(0, 10 + 3 * 2000)]);
    for threads in [2, 4, 8] {
        let out = parallel(threads).execute_block(&storage, &txns).unwrap();
        assert_eq!(out.stats.executions, 2000, "threads = {threads}: {:?}", out.stats);
        assert_eq!(out.stats.aborts, 0);
        assert_eq!(out.stats.dependency_waits, 0);
    }
}

#[test]
fn readers_of_a_delta_location_see_the_exact_value() {
    // Counter 0 starts absent; every fifth transaction reads it (its output hashes the value).
    let txns: Vec<Tx> = (0..600)
        .map(|i| {
            let mut ops = vec![Op::Work(20), Op::Delta(0, 1 + i % 3)];
            if i % 5 == 0 {
                ops.push(Op::Read(0));
            }
            Tx { ops, hint: None }
        })
        .collect();
    let expected = agree(&store(&[]), &txns).unwrap();
    let total: i64 = (0..600).map(|i| 1 + i % 3).sum();
    assert_eq!(expected.1, vec![(0, total as u64)]);
}

#[test]
fn a_delta_failing_at_commit_is_the_sequential_error() {
    // Transaction 2's delta underflows on what 0 and 1 left (5 + 3 - 9 < 0).
    let txns = vec![
        Tx { hint: None, ops: vec![Op::Delta(4, 5)] },
        Tx { hint: None, ops: vec![Op::Delta(4, 3), Op::Write(1, 7)] },
        Tx { hint: None, ops: vec![Op::Work(30), Op::Delta(4, -9)] },
        Tx { hint: None, ops: vec![Op::Read(4)] },
    ];
    let expected = agree(&store(&[]), &txns);
    assert_eq!(
        expected.unwrap_err(),
        BlockError::Delta { txn_idx: 2, key: "4".into(), message: "8 + -9 does not fit in u64".into() }
    );
}

#[test]
fn deltas_of_one_transaction_apply_in_its_order() {
    // On 400: +500 then -800 gives 100; the other order would underflow.
    let txns = vec![
        Tx { hint: None, ops: vec![Op::Delta(1, 500), Op::Delta(1, -800)] },
        Tx { hint: None, ops: vec![Op::Read(1)] },
    ];
    let expected = agree(&store(&[(1, 400)]), &txns).unwrap();
    assert_eq!(expected.1, vec![(1, 100)]);
    // And a read after its own deltas resolves them on the value below (then writes it).
    let txns = vec![
        Tx { hint: None, ops: vec![Op::Delta(1, 1)] },
        Tx { hint: None, ops: vec![Op::Delta(1, 10), Op::Read(1), Op::Delta(1, 100)] },
        Tx { hint: None, ops: vec![Op::Delta(1, -1000)] },
    ];
    let expected = agree(&store(&[(1, 400)]), &txns);
    assert_eq!(
        expected.unwrap_err(),
        BlockError::Delta { txn_idx: 2, key: "1".into(), message: "511 + -1000 does not fit in u64".into() }
    );
    // A delta on the transaction's own written value applies at once; failing there is the
    // transaction's error.
    let txns = vec![
        Tx { hint: None, ops: vec![Op::Read(3)] },
        Tx { hint: None, ops: vec![Op::Increment(3), Op::Delta(3, -5)] },
    ];
    let expected = agree(&store(&[(3, 2)]), &txns);
    assert_eq!(
        expected.unwrap_err(),
        BlockError::Delta { txn_idx: 1, key: "3".into(), message: "3 + -5 does not fit in u64".into() }
    );
}

#[test]
fn a_read_through_a_failing_delta_is_retried_when_a_lower_write_fixes_it() {
    // Transaction 0 works long, then writes a large value to 9. Meanwhile 1 subtracts 500 from
    // 9 (absent: it fails on top of storage) and 2 reads 9 through that failing delta. Once 0
    // writes, the delta applies and 2 must re-read: its doomed execution must not commit.
    let txns = vec![
        Tx { hint: None, ops: vec![Op::Work(3_000_000), Op::Write(9, 1)] },
        Tx { hint: None, ops: vec![Op::Delta(9, -500)] },
        Tx { hint: None, ops: vec![Op::Read(9)] },
    ];
    let expected = agree(&store(&[]), &txns);
    assert!(expected.is_ok(), "{expected:?}");
}

#[test]
fn the_commit_hook_ending_the_block_keeps_materialised_deltas_up_to_it() {
    let txns: Vec<Tx> = (0..200)
        .map(|i| {
            let mut ops = vec![Op::Delta(0, 2), Op::Delta(1 + i % 3, 1)];
            if i == 120 {
                ops.push(Op::EndIf { modulus: 1 });
            }
            Tx { ops, hint: None }
        })
        .collect();
    let (outputs, state, ended_early) = agree(&store(&[]), &txns).unwrap();
    assert!(ended_early);
    assert_eq!(outputs.len(), 121);
    assert_eq!(state, vec![(0, 242), (1, 41), (2, 40), (3, 40)]);
}
