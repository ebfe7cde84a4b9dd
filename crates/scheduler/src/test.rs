use super::*;

/// A worker taking one task at a time, as the paper's scheduler does.
fn one() -> Worker {
    Worker::new(0, 1, 0)
}

/// Finishing an execution with no new location, no final reads and no continuation.
const PLAIN: FinishExecution =
    FinishExecution { wrote_new_location: false, final_reads: false, continue_with_waiter: false };
/// Finishing an execution that wrote a new location.
const NEW_LOCATION: FinishExecution = FinishExecution { wrote_new_location: true, ..PLAIN };

/// Finishing an execution that read only final values.
fn final_reads(wrote_new_location: bool) -> FinishExecution {
    FinishExecution { wrote_new_location, final_reads: true, ..PLAIN }
}

/// Finishes `version` on a one-task worker; returns the validation to run now.
fn finish(s: &Scheduler, version: Version, how: FinishExecution) -> Option<Task> {
    s.finish_execution(&mut one(), version, how).unwrap().validation
}

/// Finishing an execution and continuing with the lowest waiter.
fn continuing() -> FinishExecution {
    FinishExecution { continue_with_waiter: true, ..PLAIN }
}

fn v(txn_idx: TxnIndex, incarnation: Incarnation) -> Version {
    Version::new(txn_idx, incarnation)
}

/// The next execution task; `next_task` may first try validations, which wait at a
/// transaction that is still executing.
fn exec(s: &Scheduler) -> Version {
    for _ in 0..4 {
        match s.next_task(&mut one()) {
            Some(Task::Execute(version)) => return version,
            None => continue,
            other => panic!("expected an execution task, got {other:?}"),
        }
    }
    panic!("no execution task");
}

/// The next validation task; claims may first pass over transactions that are committed.
fn validate(s: &Scheduler) -> (Version, Wave) {
    for _ in 0..4 {
        match s.next_task(&mut one()) {
            Some(Task::Validate { version, wave }) => return (version, wave),
            None => continue,
            other => panic!("expected a validation task, got {other:?}"),
        }
    }
    panic!("no validation task");
}

/// Runs the block's remaining tasks single-threaded with every validation passing.
fn drain(s: &Scheduler) {
    let mut task = s.next_task(&mut one());
    for _ in 0..10_000 {
        task = match task {
            Some(Task::Execute(version)) => finish(s, version, PLAIN),
            Some(Task::Validate { version, wave }) => {
                s.finish_validation(&mut one(), version, wave);
                None
            }
            None => {
                if s.idle_complete() {
                    return;
                }
                s.next_task(&mut one())
            }
        };
    }
    panic!("scheduler did not go idle");
}

fn commit_all(s: &Scheduler) -> Vec<Version> {
    let mut guard = s.try_lock_commit().expect("commit lock is free");
    std::iter::from_fn(|| guard.try_commit_next()).collect()
}

#[test]
fn pack_and_unpack_are_inverse_and_increment_only_the_index() {
    for (wave, idx) in [(0, 0), (1, 5), (7, MAX_TXNS), (u32::MAX, 3)] {
        assert_eq!(unpack(pack(wave, idx)), (wave, idx));
    }
    assert_eq!(unpack(pack(3, 9) + 1), (3, 10));
}

#[test]
fn fresh_transactions_execute_in_order_with_incarnation_zero() {
    let s = Scheduler::new(3, 10);
    assert_eq!(exec(&s), v(0, 0));
    assert_eq!(s.status(0), (0, TxnStatus::Executing));
    assert_eq!(s.status(1), (0, TxnStatus::ReadyToExecute));
}

#[test]
fn finish_execution_marks_executed_and_validation_follows() {
    let s = Scheduler::new(2, 10);
    let version = exec(&s);
    // validation_idx waits at 0 while it executes: finishing claims 0's validation.
    assert_eq!(finish(&s, version, NEW_LOCATION), Some(Task::Validate { version, wave: 0 }));
    assert_eq!(s.status(0), (0, TxnStatus::Executed));
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (0, 1));
}

#[test]
fn never_validates_a_transaction_that_has_not_executed() {
    let s = Scheduler::new(2, 10);
    let v0 = exec(&s); // execution_idx = 1, validation_idx = 0 → validation is tried first
    // Transaction 0 is still executing: the validation scan waits at it and the caller gets
    // the next execution instead.
    assert_eq!(s.next_task(&mut one()), Some(Task::Execute(v(1, 0))));
    assert_eq!(s.next_task(&mut one()), None, "nothing left to execute, 0 and 1 are executing");
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (0, 0), "not passed");
    // 1 finishing first cannot be validated yet (0 below it has not executed).
    assert_eq!(finish(&s, v(1, 0), PLAIN), None);
    assert_eq!(s.next_task(&mut one()), None);
    // 0 finishing claims its own validation; then the scan reaches 1.
    let task = finish(&s, v0, PLAIN);
    assert_eq!(task, Some(Task::Validate { version: v(0, 0), wave: 0 }));
    assert_eq!(s.next_task(&mut one()), Some(Task::Validate { version: v(1, 0), wave: 0 }));
}

/// Executes, validates and re-executes transaction 0 of a 3-transaction block so that its
/// second incarnation is executing while `validation_idx` is past 1 (1 and 2 validated in the
/// wave its abort started). Returns that incarnation.
fn reexecute_0_below_validated(s: &Scheduler) -> Version {
    let versions: Vec<_> = (0..3).map(|_| exec(s)).collect();
    for &version in &versions {
        let task = finish(s, version, PLAIN);
        assert_eq!(task, Some(Task::Validate { version, wave: 0 }), "each claims its validation");
    }
    s.finish_validation(&mut one(), versions[1], 0);
    s.finish_validation(&mut one(), versions[2], 0);
    assert!(s.try_validation_abort(&mut one(), versions[0]));
    let again = s.finish_abort(&mut one(), versions[0]).unwrap();
    assert_eq!(again, Some(Task::Execute(v(0, 1))));
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (1, 1));
    for txn_idx in [1, 2] {
        let (version, wave) = validate(s);
        assert_eq!((version, wave), (v(txn_idx, 0), 1));
        s.finish_validation(&mut one(), version, wave);
    }
    v(0, 1)
}

#[test]
fn new_location_below_validation_idx_starts_a_wave() {
    let s = Scheduler::new(3, 10);
    let v0 = reexecute_0_below_validated(&s);
    // 0 writes a location its first incarnation did not while validation_idx is 3: a new
    // wave from 1, and 0 validates itself in it.
    assert_eq!(finish(&s, v0, NEW_LOCATION), Some(Task::Validate { version: v0, wave: 2 }));
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (2, 1));
    s.finish_validation(&mut one(), v0, 2);
    // 1's validation of wave 1 predates 0's write: 0 commits, 1 must wait for wave 2.
    assert_eq!(commit_all(&s), vec![v0]);
    let (again, wave) = validate(&s);
    assert_eq!((again, wave), (v(1, 0), 2));
    s.finish_validation(&mut one(), again, wave);
    assert_eq!(commit_all(&s), vec![v(1, 0)]);
}

#[test]
fn same_locations_below_validation_idx_validate_directly() {
    let s = Scheduler::new(3, 10);
    let v0 = reexecute_0_below_validated(&s);
    // Same locations as the first incarnation: no new wave, 0 validates itself in wave 1.
    assert_eq!(finish(&s, v0, PLAIN), Some(Task::Validate { version: v0, wave: 1 }));
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (1, 3));
}

#[test]
fn exactly_one_validator_aborts_an_incarnation() {
    let s = Scheduler::new(2, 10);
    let version = exec(&s);
    s.finish_execution(&mut one(), version, PLAIN).unwrap();
    assert!(s.try_validation_abort(&mut one(), version));
    assert!(!s.try_validation_abort(&mut one(), version), "second abort of the same incarnation");
    assert_eq!(s.status(0), (0, TxnStatus::Aborting));
    assert!(!s.try_validation_abort(&mut one(), v(0, 1)), "wrong incarnation");
}

#[test]
fn finish_abort_readies_next_incarnation_and_revalidates_above() {
    let s = Scheduler::new(3, 10);
    let versions: Vec<_> = (0..3).map(|_| exec(&s)).collect(); // validation_idx = 0
    // Each finishes while the scan waits at it, and claims its own validation.
    for &version in &versions {
        assert_eq!(finish(&s, version, PLAIN), Some(Task::Validate { version, wave: 0 }));
    }
    s.finish_validation(&mut one(), v(0, 0), 0);
    s.finish_validation(&mut one(), v(2, 0), 0);
    // The validation of 1 fails.
    assert!(s.try_validation_abort(&mut one(), v(1, 0)));
    let task = s.finish_abort(&mut one(), v(1, 0)).unwrap();
    assert_eq!(task, Some(Task::Execute(v(1, 1))), "execution_idx is past 1: re-execute now");
    assert_eq!(s.status(1), (1, TxnStatus::Executing));
    // Validation restarts above 1 in a new wave.
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (1, 2));
    let (val2, wave) = validate(&s);
    assert_eq!((val2, wave), (v(2, 0), 1));
}

#[test]
fn abort_above_validation_idx_starts_a_wave() {
    let s = Scheduler::new(4, 10);
    let versions: Vec<_> = (0..4).map(|_| exec(&s)).collect(); // validation_idx = 3
    for &version in &versions[..3] {
        if let Some(Task::Validate { version, wave }) = finish(&s, version, PLAIN) {
            s.finish_validation(&mut one(), version, wave);
        }
    }
    assert!(s.try_validation_abort(&mut one(), v(0, 0)));
    assert_eq!(s.finish_abort(&mut one(), v(0, 0)).unwrap(), Some(Task::Execute(v(0, 1))));
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (1, 1));
    // 1 and 2 were validated in wave 0, before 0 was aborted: neither may commit until 0's
    // next incarnation is in and they were validated again.
    assert!(commit_all(&s).is_empty());
}

#[test]
fn add_dependency_waits_and_is_resumed_by_the_blocker() {
    let s = Scheduler::new(3, 10);
    let v0 = exec(&s);
    let v1 = exec(&s);
    assert!(s.add_dependency(&mut one(), v1.txn_idx, v0.txn_idx).unwrap());
    assert_eq!(s.status(1), (0, TxnStatus::Aborting));
    assert_eq!(exec(&s), v(2, 0));
    let direct = finish(&s, v0, PLAIN);
    assert_eq!(direct, Some(Task::Validate { version: v0, wave: 0 }));
    assert_eq!(s.status(1), (1, TxnStatus::ReadyToExecute), "resumed with a new incarnation");
    assert_eq!(s.idx.execution_idx.load(Ordering::SeqCst), 1, "execution index pulled back");
    assert_eq!(exec(&s), v(1, 1));
}

#[test]
fn the_worker_finishing_a_blocker_continues_with_its_lowest_waiter() {
    let s = Scheduler::new(4, 10);
    let v0 = exec(&s);
    let v1 = exec(&s);
    let v2 = exec(&s);
    assert!(s.add_dependency(&mut one(), v2.txn_idx, v0.txn_idx).unwrap());
    assert!(s.add_dependency(&mut one(), v1.txn_idx, v0.txn_idx).unwrap());
    let follow_up = s.finish_execution(&mut one(), v0, continuing()).unwrap();
    assert_eq!(follow_up.validation, Some(Task::Validate { version: v0, wave: 0 }));
    assert_eq!(follow_up.resumed, Some(v(1, 1)), "the lowest waiter, in its next incarnation");
    assert_eq!(s.status(1), (1, TxnStatus::Executing), "claimed: no other worker can take it");
    assert_eq!(s.status(2), (1, TxnStatus::ReadyToExecute), "the other waiter is resumed for anyone");
    assert_eq!(s.idx.execution_idx.load(Ordering::SeqCst), 2, "pulled back to the other waiter only");
    assert_eq!(exec(&s), v(2, 1));
    assert_eq!(exec(&s), v(3, 0));
    // The claimed execution is a task in flight: the block is not complete without it.
    s.finish_validation(&mut one(), v0, 0);
    for version in [v(2, 1), v(3, 0)] {
        let validation = finish(&s, version, PLAIN);
        assert!(!s.idle_complete(), "transaction 1 still executes");
        if let Some(Task::Validate { version, wave }) = validation {
            s.finish_validation(&mut one(), version, wave);
        }
    }
    assert_eq!(s.next_task(&mut one()), None, "the validation scan waits at 1, every index is handed out");
    let Some(Task::Validate { version, wave }) = finish(&s, v(1, 1), PLAIN) else {
        panic!("the scan waits at 1: its validation is the finisher's");
    };
    s.finish_validation(&mut one(), version, wave);
    drain(&s);
    assert!(s.idle_complete());
    assert_eq!(commit_all(&s), vec![v(0, 0), v(1, 1), v(2, 1), v(3, 0)]);
}

#[test]
fn a_final_execution_continues_without_a_validation_and_no_waiter_claims_nothing() {
    let s = Scheduler::new(2, 10);
    let v0 = exec(&s);
    let v1 = exec(&s);
    assert!(s.add_dependency(&mut one(), v1.txn_idx, v0.txn_idx).unwrap());
    assert!(s.all_below_committed(0));
    let follow_up = s
        .finish_execution(
            &mut one(),
            v0,
            FinishExecution { final_reads: true, continue_with_waiter: true, ..Default::default() },
        )
        .unwrap();
    assert_eq!(follow_up, FollowUp { validation: None, resumed: Some(v(1, 1)) });
    assert_eq!(commit_all(&s), vec![v(0, 0)], "final: commits without a validation");
    let follow_up = s
        .finish_execution(
            &mut one(),
            v(1, 1),
            FinishExecution { final_reads: true, continue_with_waiter: true, ..Default::default() },
        )
        .unwrap();
    assert_eq!(follow_up, FollowUp::default());
    assert!(s.idle_complete());
    assert_eq!(commit_all(&s), vec![v(1, 1)]);
}

#[test]
fn a_waiter_past_the_incarnation_limit_is_not_claimed() {
    let s = Scheduler::new(2, 1);
    let v0 = exec(&s);
    let v1 = exec(&s);
    assert!(s.add_dependency(&mut one(), v1.txn_idx, v0.txn_idx).unwrap());
    let follow_up = s.finish_execution(&mut one(), v0, continuing()).unwrap();
    assert_eq!(follow_up.resumed, None);
    assert!(s.is_halted());
    assert_eq!(s.halt_reason(), Some(HaltReason::Livelock { txn_idx: 1 }));
}

#[test]
fn add_dependency_on_an_executed_blocker_retries_at_once() {
    let s = Scheduler::new(2, 10);
    let v0 = exec(&s);
    let v1 = exec(&s);
    s.finish_execution(&mut one(), v0, PLAIN).unwrap();
    assert!(!s.add_dependency(&mut one(), v1.txn_idx, 0).unwrap());
    assert_eq!(s.status(1), (0, TxnStatus::Executing), "caller keeps the incarnation");
}

#[test]
fn commit_is_in_block_order_and_needs_a_validation() {
    let s = Scheduler::new(3, 10);
    let versions: Vec<_> = (0..3).map(|_| exec(&s)).collect(); // validation_idx = 0
    // Finish 2 and 1 first; nothing is validated or committed before 0.
    assert_eq!(finish(&s, versions[2], PLAIN), None);
    assert_eq!(finish(&s, versions[1], PLAIN), None);
    assert!(commit_all(&s).is_empty());
    let direct0 = finish(&s, versions[0], PLAIN);
    assert!(commit_all(&s).is_empty(), "0 executed but not validated");
    assert_eq!(direct0, Some(Task::Validate { version: v(0, 0), wave: 0 }));
    s.finish_validation(&mut one(), v(0, 0), 0);
    let (val1, wave) = validate(&s);
    assert_eq!((val1, wave), (v(1, 0), 0));
    s.finish_validation(&mut one(), val1, wave);
    assert_eq!(commit_all(&s), versions[..2].to_vec(), "2 is not validated yet");
    drain(&s);
    assert_eq!(commit_all(&s), vec![v(2, 0)]);
    assert!(s.is_done());
    assert_eq!(s.status(1), (0, TxnStatus::Committed));
    assert!(!s.try_validation_abort(&mut one(), v(1, 0)), "committed transactions cannot be aborted");
}

#[test]
fn a_validation_of_an_old_incarnation_does_not_count() {
    let s = Scheduler::new(1, 10);
    let v0 = exec(&s);
    s.finish_execution(&mut one(), v0, PLAIN).unwrap();
    assert!(s.try_validation_abort(&mut one(), v0));
    let again = match s.finish_abort(&mut one(), v0).unwrap() {
        Some(Task::Execute(again)) => again,
        other => panic!("{other:?}"),
    };
    s.finish_execution(&mut one(), again, PLAIN).unwrap();
    s.finish_validation(&mut one(), v0, 5); // a stale validation task of incarnation 0 finishing late
    assert!(commit_all(&s).is_empty());
}

#[test]
fn only_one_thread_holds_the_commit_lock() {
    let s = Scheduler::new(1, 10);
    let guard = s.try_lock_commit();
    assert!(guard.is_some());
    assert!(s.try_lock_commit().is_none());
}

#[test]
fn idle_complete_only_when_all_work_is_done() {
    let s = Scheduler::new(2, 10);
    assert!(!s.idle_complete());
    let v0 = exec(&s);
    assert!(!s.idle_complete());
    let validation = finish(&s, v0, PLAIN);
    assert!(!s.idle_complete(), "the validation of 0 is a task in flight");
    assert_eq!(validation, Some(Task::Validate { version: v0, wave: 0 }));
    s.finish_validation(&mut one(), v0, 0);
    drain(&s);
    assert!(s.idle_complete());
    assert_eq!(commit_all(&s).len(), 2);
}

#[test]
fn livelock_guard_halts_when_incarnations_reach_the_limit() {
    let s = Scheduler::new(2, 2);
    let first = exec(&s);
    s.finish_execution(&mut one(), first, PLAIN).unwrap();
    assert!(s.try_validation_abort(&mut one(), first));
    let second = match s.finish_abort(&mut one(), first).unwrap() {
        Some(Task::Execute(second)) => second,
        other => panic!("{other:?}"),
    };
    assert_eq!(second, v(0, 1));
    assert_eq!(s.halt_reason(), None, "incarnation 1 of at most 2 is fine");
    s.finish_execution(&mut one(), second, PLAIN).unwrap();
    assert!(s.try_validation_abort(&mut one(), second));
    assert_eq!(s.finish_abort(&mut one(), second).unwrap(), None, "no third incarnation is handed out");
    assert_eq!(s.halt_reason(), Some(HaltReason::Livelock { txn_idx: 0 }));
    assert!(s.is_done());
    assert_eq!(s.next_task(&mut one()), None);
}

#[test]
fn halt_stops_task_hand_out() {
    let s = Scheduler::new(4, 10);
    exec(&s);
    s.halt();
    assert_eq!(s.next_task(&mut one()), None);
    assert!(s.is_done());
    assert_eq!(s.halt_reason(), Some(HaltReason::Requested));
}

#[test]
fn an_execution_that_read_only_committed_values_commits_without_validation() {
    let s = Scheduler::new(2, 10);
    assert!(s.all_below_committed(0));
    assert!(!s.all_below_committed(1));
    let v0 = exec(&s);
    assert_eq!(finish(&s, v0, final_reads(true)), None, "no validation task");
    assert_eq!(commit_all(&s), vec![v0]);
    assert!(s.all_below_committed(1));
    let v1 = exec(&s);
    assert_eq!(finish(&s, v1, final_reads(false)), None);
    assert_eq!(s.next_task(&mut one()), None, "a final incarnation is never handed out for validation");
    assert_eq!(commit_all(&s), vec![v1]);
    assert!(s.is_done());
}

#[test]
fn a_final_incarnation_still_starts_a_wave_for_the_transactions_above() {
    let s = Scheduler::new(3, 10);
    let v0 = reexecute_0_below_validated(&s);
    // 0's second incarnation read only committed values (nothing is below it), and finishes
    // with a new location: 1 must be validated again before it commits.
    assert_eq!(finish(&s, v0, final_reads(true)), None);
    assert_eq!(commit_all(&s), vec![v0]);
    let (again, wave) = validate(&s);
    assert_eq!((again, wave), (v(1, 0), 2));
    s.finish_validation(&mut one(), again, wave);
    assert_eq!(commit_all(&s), vec![v(1, 0)]);
}

#[test]
fn the_validation_scan_passes_transactions_that_need_no_validation() {
    let s = Scheduler::new(3, 10);
    let v0 = exec(&s);
    // 0 read only committed values: it claims nothing and moves the waiting scan past it.
    assert_eq!(finish(&s, v0, final_reads(false)), None);
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (0, 1));
    assert_eq!(commit_all(&s), vec![v0]);
    let v1 = exec(&s);
    let v2 = exec(&s);
    assert_eq!(finish(&s, v2, PLAIN), None, "1 below it has not executed");
    assert_eq!(finish(&s, v1, PLAIN), Some(Task::Validate { version: v1, wave: 0 }));
    assert_eq!(s.next_task(&mut one()), Some(Task::Validate { version: v2, wave: 0 }));
    // A scan lowered onto a committed transaction passes it.
    s.finish_validation(&mut one(), v1, 0);
    assert_eq!(commit_all(&s), vec![v1]);
    s.idx.validation_idx.store(pack(1, 0), Ordering::SeqCst);
    s.finish_validation(&mut one(), v2, 0);
    assert_eq!(s.next_task(&mut one()), Some(Task::Validate { version: v2, wave: 1 }), "0 and 1 passed");
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (1, 3));
}

/// Finishes `version` for `w` with no new location, no final reads and no continuation.
fn finish_for(s: &Scheduler, w: &mut Worker, version: Version) -> Option<Task> {
    s.finish_execution(w, version, NEW_LOCATION).unwrap().validation
}

#[test]
fn batched_claims_run_consecutive_indices_and_their_executor_validates_them() {
    let s = Scheduler::new(8, 10);
    let (w0, w1) = (&mut Worker::new(0, 4, 0), &mut Worker::new(1, 4, 0));
    // No calm stretch: the first claim already doubles, to 2.
    assert_eq!(s.next_task(w0), Some(Task::Execute(v(0, 0))));
    assert_eq!(w0.batch(), 2);
    assert_eq!(s.next_task(w1), Some(Task::Execute(v(2, 0))), "w1's claim starts above w0's");
    // A first incarnation leaves its validation to the scan, even with the scan right at it.
    assert_eq!(finish_for(&s, w0, v(0, 0)), None);
    assert_eq!(unpack(s.idx.validation_idx.load(Ordering::SeqCst)), (0, 0));
    assert_eq!(s.next_task(w0), Some(Task::Execute(v(1, 0))), "the rest of w0's claim first");
    assert_eq!(finish_for(&s, w1, v(2, 0)), None);
    assert_eq!(s.next_task(w1), Some(Task::Execute(v(3, 0))));
    assert_eq!(finish_for(&s, w1, v(3, 0)), None);
    // 0 is w0's and executions remain: w1 takes a new claim (now 4 wide) instead.
    assert_eq!(s.next_task(w1), Some(Task::Execute(v(4, 0))));
    assert_eq!(w1.batch(), 4);
    assert_eq!(finish_for(&s, w0, v(1, 0)), None);
    for txn in [0, 1] {
        assert_eq!(s.next_task(w0), Some(Task::Validate { version: v(txn, 0), wave: 0 }));
        s.finish_validation(w0, v(txn, 0), 0);
    }
    // 2 and 3 are w1's, and every index is claimed now: anyone validates anything.
    assert_eq!(s.next_task(w0), Some(Task::Validate { version: v(2, 0), wave: 0 }));
    s.finish_validation(w0, v(2, 0), 0);
    assert_eq!(commit_all(&s), vec![v(0, 0), v(1, 0), v(2, 0)]);
}

/// Runs `w`'s tasks, passing every validation, until `count` executions have started;
/// returns the claim size in force at each one.
fn claim_sizes(s: &Scheduler, w: &mut Worker, count: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut task = s.next_task(w);
    while sizes.len() < count {
        task = match task {
            Some(Task::Execute(version)) => {
                sizes.push(w.batch());
                s.finish_execution(w, version, NEW_LOCATION).unwrap().validation
            }
            Some(Task::Validate { version, wave }) => {
                s.finish_validation(w, version, wave);
                None
            }
            None => s.next_task(w),
        };
    }
    sizes
}

#[test]
fn batched_claims_wait_for_calm_and_fall_back_to_one_at_a_conflict() {
    let s = Scheduler::new(40, 10);
    let w = &mut Worker::new(0, 8, 4);
    // One index per claim until 4 were handed out, then 2, 4 and 8 wide.
    assert_eq!(claim_sizes(&s, w, 12), [1, 1, 1, 1, 2, 2, 4, 4, 4, 4, 8, 8]);
    // A conflict (11 is aborted): the claim in hand runs out, then claims are one wide again
    // until 4 more indices were handed out.
    assert!(s.try_validation_abort(&mut one(), v(11, 0)));
    assert_eq!(s.finish_abort(w, v(11, 0)).unwrap(), Some(Task::Execute(v(11, 1))));
    // (The scan is below 11, at the start of the claim: it validates 11 later.)
    assert_eq!(finish_for(&s, w, v(11, 1)), None);
    assert_eq!(claim_sizes(&s, w, 6 + 6), [8, 8, 8, 8, 8, 8, 1, 1, 1, 1, 2, 2]);
}

#[test]
fn batched_task_counts_keep_the_completion_check_late_never_early() {
    let s = Scheduler::new(6, 10);
    let w = &mut Worker::new(0, 4, 0);
    assert_eq!(s.next_task(w), Some(Task::Execute(v(0, 0))));
    assert_eq!(finish_for(&s, w, v(0, 0)), None);
    // Every index is handed out (claims of 2 then 4) while 1 is still only claimed.
    assert!(!s.idle_complete(), "an index claimed but not run is a task");
    drain_for(&s, w);
    assert!(s.idle_complete());
    assert_eq!(commit_all(&s).len(), 6);
}

/// [`drain`] for a worker: runs its remaining tasks with every validation passing.
fn drain_for(s: &Scheduler, w: &mut Worker) {
    let mut task = s.next_task(w);
    for _ in 0..10_000 {
        task = match task {
            Some(Task::Execute(version)) => finish_for(s, w, version),
            Some(Task::Validate { version, wave }) => {
                s.finish_validation(w, version, wave);
                None
            }
            None if s.idle_complete() => return,
            None => s.next_task(w),
        };
    }
    panic!("scheduler did not go idle");
}

#[test]
fn a_transition_from_the_wrong_status_is_an_error_not_a_panic() {
    let s = Scheduler::new(3, 100);
    let w = &mut one();
    let v0 = exec(&s);
    // Not executing: incarnation 1 never started, and 1 was never claimed.
    let error = s.finish_execution(w, v(0, 1), PLAIN).unwrap_err();
    assert!(error.0.contains("finish_execution of"), "{error}");
    assert!(s.finish_execution(w, v(1, 0), PLAIN).is_err());
    // Not aborting.
    assert!(s.finish_abort(w, v0).is_err());
    // A wait for a transaction that is not below.
    assert!(s.add_dependency(w, 0, 0).is_err());
    assert!(s.add_dependency(w, 0, 2).is_err());
    // The failed calls changed nothing: the execution still finishes.
    assert_eq!(s.status(0), (0, TxnStatus::Executing));
    assert!(s.finish_execution(w, v0, PLAIN).is_ok());
    assert_eq!(s.status(0), (0, TxnStatus::Executed));
}
