//! Fault injection: a VM that panics or errors on chosen executions, in speculative and in
//! final incarnations. The result is identical to sequential execution with the same faults,
//! or the error sequential execution reports; never a hang, never a lost transaction.

use blockstm_executor::{BlockError, BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use blockstm_testkit::*;
use std::ops::ControlFlow;
use std::time::Duration;

fn config(threads: usize) -> Config {
    Config::new(threads).unwrap().with_watchdog(Duration::from_secs(60))
}

/// Runs with a hook that records every committed output.
fn run_recording<E: BlockExecutor<FaultyVm>>(executor: &E, case: &Case) -> (Comparable, Vec<TxOut>) {
    let mut committed = Vec::new();
    let mut hook = |_: usize, out: &TxOut| {
        committed.push(out.clone());
        if out.end_block { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    let result = executor
        .execute_block_with_hook(&case.storage, &case.txns, &mut hook)
        .map(|out| (out.outputs, out.state, out.ended_early));
    (result, committed)
}

/// Faults on every attempt of a transaction: they hit the final incarnation, so the block must
/// fail exactly as sequential execution fails.
#[test]
fn faults_in_final_incarnations_give_the_sequential_error() {
    quiet_test_vm_panics();
    let mut rng = Rng::new(7);
    let mut errors = 0;
    for seed in 0..300 {
        let case = random_case(seed);
        let txn = rng.below(case.txns.len() as u64) as usize;
        let fault = if rng.chance(0.5) { Fault::Panic } else { Fault::Error };
        let plan = FaultPlan { faults: (0..1000).map(|attempt| (txn, attempt, fault)).collect() };
        let (expected, _) =
            run_recording(&SequentialExecutor::new(FaultyVm::new(plan.clone(), case.txns.len())), &case);
        for threads in [2, 4, 16] {
            let vm = FaultyVm::new(plan.clone(), case.txns.len());
            let (actual, _) = run_recording(&ParallelExecutor::new(vm, config(threads)), &case);
            assert_eq!(
                actual, expected,
                "seed {seed}, fault {fault:?} on transaction {txn}, {threads} threads"
            );
        }
        errors += usize::from(expected.is_err());
    }
    assert!(errors > 100, "the faults should end most blocks: {errors} of 300");
}

/// Faults on chosen (transaction, attempt) pairs, including re-executions only a parallel run
/// makes. A fault in an incarnation that turned out to be speculation must not change the
/// result; one in the committed incarnation fails the block at that transaction. Either way
/// every transaction before the failure committed with the fault-free output.
#[test]
fn faults_in_speculative_incarnations_do_not_change_the_result() {
    quiet_test_vm_panics();
    let mut rng = Rng::new(11);
    let (mut unchanged, mut failed) = (0, 0);
    for seed in 0..300 {
        let case = random_case(seed);
        let n = case.txns.len();
        let plan = FaultPlan {
            faults: (0..rng.range(1, 8))
                .map(|_| {
                    let fault = if rng.chance(0.5) { Fault::Panic } else { Fault::Error };
                    (rng.below(n as u64) as usize, rng.range(0, 3) as usize, fault)
                })
                .collect(),
        };
        let (fault_free, fault_free_commits) =
            run_recording(&SequentialExecutor::new(FaultyVm::new(FaultPlan::default(), n)), &case);
        for threads in [2, 4, 16] {
            let vm = FaultyVm::new(plan.clone(), n);
            let executor = ParallelExecutor::new(vm, config(threads));
            let (actual, commits) = run_recording(&executor, &case);
            match &actual {
                Ok(_) if actual == fault_free => unchanged += 1,
                Err(BlockError::Vm { txn_idx, .. } | BlockError::Panic { txn_idx, .. })
                    if plan
                        .faults
                        .iter()
                        .any(|(t, a, _)| t == txn_idx && *a < executor.vm().attempts(*txn_idx)) =>
                {
                    // Failed at a transaction whose injected fault actually fired; everything
                    // before it committed with the fault-free outputs, nothing was lost.
                    assert_eq!(commits.len(), *txn_idx, "seed {seed}: commits before the failure");
                    assert_eq!(commits[..], fault_free_commits[..*txn_idx], "seed {seed}");
                    failed += 1;
                }
                // The block failed before reaching any injected fault, as sequentially.
                Err(_) if actual == fault_free => unchanged += 1,
                _ => panic!(
                    "seed {seed}, plan {plan:?}, {threads} threads:\n{actual:?}\nfault-free: {fault_free:?}"
                ),
            }
        }
    }
    assert!(
        unchanged > 0 && failed > 0,
        "both outcomes should occur: unchanged {unchanged}, failed {failed}"
    );
}
