//! loom model of the scheduler alone.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p blockstm-scheduler --lib loom`
//! (bounded by `preemption_bound`, see `docs/design.md`, "Model checking").
//!
//! Workers drive a miniature block through the real scheduler. Transaction `i` "reads" the
//! value transaction `i - 1` last recorded and "writes" its own location (a new value per
//! incarnation, so a re-execution changes what readers above see); an aborted transaction's
//! location becomes an ESTIMATE and readers wait through `add_dependency`, as in the executor,
//! and the worker that finishes the blocker continues with the lowest waiter
//! (`FinishExecution::continue_with_waiter`) unless it holds one already. Each worker drives the
//! scheduler through its own [`Worker`]: claims of one index (the paper's scheduler), or
//! batched claims of up to two with no calm stretch, so that claims batch from the start,
//! first incarnations leave their validation to the scan and validations wait for their
//! owner. Checked in every explored interleaving:
//! - an incarnation is executed at most once;
//! - transactions commit in block order, each with its latest incarnation, whose read is the
//!   final value below it (so it was validated after the last change that could invalidate it);
//! - completion (`idle_complete` / everything committed) is never seen while work remains.
// Test bookkeeping counts iterations with a plain std atomic, outside the model (one per
// model: tests run concurrently).
#![allow(clippy::disallowed_types)]

use super::*;
use blockstm_sync::Arc;
use loom::thread;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

/// A location's content: `0` never written, `n + 1` written by incarnation `n`, `ESTIMATE`.
const ESTIMATE: usize = usize::MAX;

struct Model {
    s: Scheduler,
    /// The largest claim ([`Worker::new`]).
    batch: usize,
    /// The value at each transaction's location.
    memory: Vec<Mutex<usize>>,
    /// What the latest execution of each transaction read (the value below it).
    reads: Vec<Mutex<usize>>,
    executed: Mutex<Vec<Version>>,
    commits: Mutex<Vec<Version>>,
}

impl Model {
    fn new(n: usize, batch: usize) -> Self {
        Self {
            s: Scheduler::new(n, 100),
            batch,
            memory: (0..n).map(|_| Mutex::new(0)).collect(),
            reads: (0..n).map(|_| Mutex::new(0)).collect(),
            executed: Mutex::new(Vec::new()),
            commits: Mutex::new(Vec::new()),
        }
    }

    fn read_below(&self, txn: usize) -> Result<usize, usize> {
        if txn == 0 {
            return Ok(0);
        }
        match *self.memory[txn - 1].lock() {
            ESTIMATE => Err(txn - 1),
            value => Ok(value),
        }
    }

    /// Executes `version` as the executor does: with `continuing` (the worker holds no resumed
    /// transaction) the lowest waiter may come back claimed for this worker.
    fn execute(&self, w: &mut Worker, version: Version, continuing: bool) -> FollowUp {
        {
            let mut executed = self.executed.lock();
            assert!(!executed.contains(&version), "{version:?} executed twice");
            executed.push(version);
        }
        let txn = version.txn_idx;
        loop {
            match self.read_below(txn) {
                Ok(value) => {
                    *self.reads[txn].lock() = value;
                    let new = {
                        let mut slot = self.memory[txn].lock();
                        let new = *slot == 0;
                        *slot = version.incarnation as usize + 1;
                        new
                    };
                    return self
                        .s
                        .finish_execution(
                            w,
                            version,
                            FinishExecution {
                                wrote_new_location: new,
                                continue_with_waiter: continuing,
                                ..Default::default()
                            },
                        )
                        .unwrap();
                }
                Err(blocking) => {
                    if self.s.add_dependency(w, txn, blocking).unwrap() {
                        return FollowUp::default();
                    }
                }
            }
        }
    }

    fn validate(&self, w: &mut Worker, version: Version, wave: Wave) -> Option<Task> {
        let txn = version.txn_idx;
        let read = *self.reads[txn].lock();
        if self.read_below(txn) == Ok(read) {
            self.s.finish_validation(w, version, wave);
            return None;
        }
        if !self.s.try_validation_abort(w, version) {
            return None;
        }
        *self.memory[txn].lock() = ESTIMATE;
        self.s.finish_abort(w, version).unwrap()
    }

    fn commit(&self, guard: &mut CommitGuard<'_>) {
        while let Some(version) = guard.try_commit_next() {
            let txn = version.txn_idx;
            let mut commits = self.commits.lock();
            assert_eq!(commits.len(), txn, "commit out of block order");
            assert_eq!(
                *self.memory[txn].lock(),
                version.incarnation as usize + 1,
                "{version:?} is not the latest incarnation"
            );
            assert_eq!(
                self.read_below(txn),
                Ok(*self.reads[txn].lock()),
                "{version:?} committed with a stale read"
            );
            commits.push(version);
        }
    }

    fn worker(&self, id: usize) {
        let w = &mut Worker::new(id, self.batch, 0);
        let mut task = None;
        let mut resumed: Option<Version> = None;
        let mut idle_spins = 0;
        while !self.s.is_done() {
            task = match task
                .take()
                .or_else(|| resumed.take().map(Task::Execute))
                .or_else(|| self.s.next_task(w))
            {
                Some(Task::Execute(version)) => {
                    let follow_up = self.execute(w, version, resumed.is_none());
                    if follow_up.resumed.is_some() {
                        resumed = follow_up.resumed;
                    }
                    follow_up.validation
                }
                Some(Task::Validate { version, wave }) => self.validate(w, version, wave),
                None => {
                    if let Some(mut guard) = self.s.try_lock_commit() {
                        self.commit(&mut guard);
                    }
                    if self.s.is_done() {
                        break;
                    }
                    if self.s.idle_complete() {
                        // Completion: nothing may be left to do, everything must commit.
                        let mut guard = self.s.lock_commit();
                        self.commit(&mut guard);
                        assert!(self.s.is_done(), "idle but not all committed: {}", self.s.dump());
                        break;
                    }
                    idle_spins += 1;
                    assert!(idle_spins < 2000, "worker spun without progress: {}", self.s.dump());
                    thread::yield_now();
                    continue;
                }
            };
        }
    }

    fn check_final(&self, n: usize) {
        assert_eq!(self.commits.lock().len(), n);
        for txn in 0..n {
            assert_eq!(self.s.status(txn).1, TxnStatus::Committed);
        }
    }
}

fn run_model(threads: usize, txns: usize, batch: usize, preemption_bound: usize) {
    let iterations = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let start = std::time::Instant::now();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    // Idle workers spin (yielding) while others progress; each spin is a branch.
    builder.max_branches = 100_000;
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let model = Arc::new(Model::new(txns, batch));
        let handles: Vec<_> = (1..threads)
            .map(|id| {
                let model = Arc::clone(&model);
                thread::spawn(move || model.worker(id))
            })
            .collect();
        model.worker(0);
        for handle in handles {
            handle.join().expect("worker");
        }
        model.check_final(txns);
    });
    println!(
        "scheduler model: {threads} threads, {txns} transactions, batch {batch}, preemption bound {preemption_bound}: \
         {} interleavings in {:.1?}",
        iterations.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed()
    );
}

#[test]
fn loom_scheduler_two_threads_three_transactions() {
    run_model(2, 3, 1, 2);
}

#[test]
fn loom_scheduler_three_threads_two_transactions() {
    run_model(3, 2, 1, 1);
}

#[test]
fn loom_scheduler_two_threads_two_transactions_deeper() {
    run_model(2, 2, 1, 3);
}

#[test]
fn loom_scheduler_batched_two_threads_three_transactions() {
    run_model(2, 3, 2, 2);
}

#[test]
fn loom_scheduler_batched_two_threads_four_transactions() {
    // Two claims of two: the second worker's claim starts above the first one's.
    run_model(2, 4, 2, 1);
}

#[test]
fn loom_scheduler_batched_three_threads_three_transactions() {
    run_model(3, 3, 2, 1);
}
