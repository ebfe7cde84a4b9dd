//! The worker loop: take a task, execute or validate it, run what follows, commit what is
//! final, and leave when the block is committed or halted.

use super::view::{ParallelBelow, ViewHalt};
use super::{Block, LastExecution};
use crate::local::WriteSet;
use crate::outcome::{Outcome, panic_message};
use crate::view::LayeredView;
use crate::{CommitHook, Stats, Storage, Vm};
use blockstm_mvmemory::{InvariantError, Version};
use blockstm_scheduler::{FinishExecution, FollowUp, Task, Wave, Worker};
use blockstm_sync::Backoff;
use blockstm_sync::atomic::{AtomicUsize, Ordering};
use blockstm_validator::validate;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Statistics counters. `Relaxed` everywhere: they are statistics only, read after the workers
/// are joined (the join orders every increment before the read). Workers count in a
/// [`LocalCounts`] and add it here once when they leave: incrementing shared counters on every
/// execution made both cores fight over their cache line.
#[derive(Debug, Default)]
pub(super) struct Counters {
    executions: AtomicUsize,
    validations: AtomicUsize,
    final_executions: AtomicUsize,
    aborts: AtomicUsize,
    dependency_waits: AtomicUsize,
    hint_waits: AtomicUsize,
}

/// One worker's statistics, added to [`Counters`] when it leaves.
#[derive(Debug, Default)]
struct LocalCounts {
    executions: usize,
    validations: usize,
    final_executions: usize,
    aborts: usize,
    dependency_waits: usize,
    hint_waits: usize,
}

impl Counters {
    fn add(&self, local: &LocalCounts) {
        self.executions.fetch_add(local.executions, Ordering::Relaxed);
        self.validations.fetch_add(local.validations, Ordering::Relaxed);
        self.final_executions.fetch_add(local.final_executions, Ordering::Relaxed);
        self.aborts.fetch_add(local.aborts, Ordering::Relaxed);
        self.dependency_waits.fetch_add(local.dependency_waits, Ordering::Relaxed);
        self.hint_waits.fetch_add(local.hint_waits, Ordering::Relaxed);
    }

    /// The block's statistics, once the workers are joined (the join orders every increment
    /// before these loads).
    pub(super) fn stats(&self, threads: usize) -> Stats {
        let value = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
        Stats {
            threads,
            executions: value(&self.executions),
            validations: value(&self.validations),
            final_executions: value(&self.final_executions),
            aborts: value(&self.aborts),
            dependency_waits: value(&self.dependency_waits),
            hint_waits: value(&self.hint_waits),
            ..Stats::default()
        }
    }
}

impl<VM, S, H> Block<'_, VM, S, H>
where
    VM: Vm,
    S: Storage<VM::Key, VM::Value>,
    H: CommitHook<VM::Output> + Send + ?Sized,
{
    /// Worker number `id` (0 is the calling thread): takes tasks until the block is committed
    /// or halted, then takes its part of a committed block's final state apart.
    pub(super) fn worker(&self, id: usize) {
        // A panic here would be a bug in blockstm (VM and hook panics are caught closer to
        // them). Catch it so it ends the block with an error instead of unwinding to the caller.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
            self.worker_loop(id);
            self.take_part_on_exit(id);
        })) {
            self.fail_internal(format!("worker panicked: {}", panic_message(payload.as_ref())));
        }
    }

    fn worker_loop(&self, id: usize) {
        if let Some(warmup) = &self.adaptive {
            warmup.worker_started(self.scheduler.committed());
        }
        let mut counts = LocalCounts::default();
        let mut w = Worker::new(id, self.max_batch, self.batch_calm_txns);
        if let Err(error) = self.work(&mut w, &mut counts) {
            self.fail_internal(format!("{error}; {}", self.scheduler.dump()));
        }
        self.counters.add(&counts);
    }

    fn work(&self, w: &mut Worker, counts: &mut LocalCounts) -> Result<(), InvariantError> {
        let backoff = Backoff::new();
        let mut task = None;
        // A transaction that waited for one this worker executed, claimed for this worker
        // ([`FinishExecution::continue_with_waiter`]); run after the task in hand. At most one:
        // an execution finished while one is held resumes its waiters for any worker.
        let mut resumed: Option<Version> = None;
        // Between tasks only the halt flag is polled; whether everything committed is checked
        // when there is no task (a fully committed block hands out none).
        while !self.scheduler.is_halted() {
            #[cfg(feature = "stress")]
            crate::stress::point();
            task = match task
                .take()
                .or_else(|| resumed.take().map(Task::Execute))
                .or_else(|| self.scheduler.next_task(w))
            {
                Some(Task::Execute(version)) => {
                    let follow_up = self.execute(w, version, resumed.is_none(), counts)?;
                    if follow_up.resumed.is_some() {
                        resumed = follow_up.resumed;
                    }
                    follow_up.validation
                }
                Some(Task::Validate { version, wave }) => self.validate(w, version, wave, counts)?,
                None => {
                    self.try_commit();
                    if self.scheduler.is_done() {
                        break;
                    }
                    if self.scheduler.idle_complete() {
                        self.final_commit();
                        break;
                    }
                    if let Some((deadline, limit)) = self.deadline
                        && std::time::Instant::now() > deadline
                    {
                        self.fail_internal(format!(
                            "watchdog: block not finished after {limit:?}; {}",
                            self.scheduler.dump()
                        ));
                        break;
                    }
                    backoff.snooze();
                    continue;
                }
            };
            backoff.reset();
        }
        Ok(())
    }

    /// Executes an incarnation; returns what to run next, if anything. With `continuing`, the
    /// lowest transaction that waited for this one may come back claimed for the caller.
    fn execute(
        &self,
        w: &mut Worker,
        version: Version,
        continuing: bool,
        counts: &mut LocalCounts,
    ) -> Result<FollowUp, InvariantError> {
        let txn_idx = version.txn_idx;
        // A hinted first incarnation waits for its hint to finish executing, exactly as if its
        // first read had hit an ESTIMATE of it (same transition, EXECUTING → ABORTING; it is
        // resumed as incarnation 1, so it waits at most once). It has read and written nothing.
        if version.incarnation == 0
            && let Some(&Some(hint)) = self.hints.get(txn_idx)
            && self.scheduler.add_dependency(w, txn_idx, hint)?
        {
            counts.hint_waits += 1;
            tracing::debug!(txn_idx, hint, "hinted dependency wait");
            return Ok(FollowUp::default());
        }
        loop {
            // Checked before the first read: if everything below is committed, every value this
            // incarnation reads is final and it needs no validation.
            let final_reads = self.scheduler.all_below_committed(txn_idx);
            #[cfg(feature = "stress")]
            crate::stress::point();
            // The result slot is cold (one per transaction of the block); fetching it now hides
            // the miss behind the VM's work instead of paying it at the slot lock's release.
            blockstm_sync::prefetch_for_write(&self.last[txn_idx]);
            let mut view =
                LayeredView::new(ParallelBelow::new(&self.mv, &self.scheduler, self.storage, txn_idx));
            let timer = self.adaptive.as_ref().and_then(|warmup| warmup.timer());
            // AssertUnwindSafe: after a panic only the view's captured reads and halt cause are
            // used, plain data that a panic cannot leave half-written.
            let result =
                catch_unwind(AssertUnwindSafe(|| self.vm.execute(txn_idx, &self.txns[txn_idx], &mut view)));
            if let Some((warmup, start)) = timer {
                warmup.record(start.elapsed().saturating_sub(view.below.waited));
            }
            counts.executions += 1;
            counts.dependency_waits += view.below.waits;
            let failure = match view.below.halt.take() {
                Some(ViewHalt::Blocked(blocking)) => {
                    // (The read that hit the ESTIMATE is already counted in `waits`.)
                    if self.scheduler.add_dependency(w, txn_idx, blocking)? {
                        tracing::debug!(
                            txn_idx,
                            incarnation = version.incarnation,
                            blocking,
                            "dependency wait"
                        );
                        return Ok(FollowUp::default());
                    }
                    // The blocker finished meanwhile: run the same incarnation again.
                    continue;
                }
                Some(ViewHalt::Failed(failure)) => Some(failure),
                None => None,
            };
            let outcome = Outcome::of(result, failure);
            // A failed incarnation publishes no writes: if it is final the block ends there,
            // and if it was speculation its reads will fail validation.
            let writes = outcome.is_output().then_some(view.writes);
            let has_deltas = writes.as_ref().is_some_and(WriteSet::has_deltas);
            *self.last[txn_idx].lock() = LastExecution {
                incarnation: version.incarnation,
                reads: view.below.reads,
                outcome: Some(outcome),
                has_deltas,
            };
            let wrote_new_location =
                self.mv.record_writes(version, writes.into_iter().flat_map(WriteSet::into_iter));
            let how = FinishExecution { wrote_new_location, final_reads, continue_with_waiter: continuing };
            let follow_up = self.scheduler.finish_execution(w, version, how)?;
            if final_reads {
                counts.final_executions += 1;
                self.try_commit();
            }
            return Ok(follow_up);
        }
    }

    /// Validates an incarnation; returns the re-execution if it was aborted and is ours to run.
    fn validate(
        &self,
        w: &mut Worker,
        version: Version,
        wave: Wave,
        counts: &mut LocalCounts,
    ) -> Result<Option<Task>, InvariantError> {
        let txn_idx = version.txn_idx;
        // The slot may already hold a newer incarnation's reads; the scheduler then ignores this
        // result (it checks the incarnation), so validating them is harmless.
        let validation =
            validate(&self.last[txn_idx].lock().reads, &self.mv, txn_idx, |key| self.storage.read(key));
        #[cfg(feature = "stress")]
        crate::stress::point();
        counts.validations += 1;
        if validation.is_valid() {
            self.scheduler.finish_validation(w, version, wave);
            // Only a successful validation can let the commit advance.
            self.try_commit();
            return Ok(None);
        }
        if !self.scheduler.try_validation_abort(w, version) {
            return Ok(None);
        }
        counts.aborts += 1;
        tracing::debug!(txn_idx, incarnation = version.incarnation, ?validation, "abort");
        self.mv.convert_writes_to_estimates(txn_idx);
        self.scheduler.finish_abort(w, version)
    }
}
