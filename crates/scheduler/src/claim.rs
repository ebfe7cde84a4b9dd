//! Task claims: the next execution or validation for a worker ([`Scheduler::next_task`]).

use crate::worker::NO_OWNER;
use crate::{FINAL_WAVE, Scheduler, Task, TxnIndex, TxnStatus, Version, Worker, pack, unpack};
use blockstm_sync::atomic::Ordering;

impl Scheduler {
    /// The next task for worker `w`: an index it already claimed, else the next validation if
    /// it is below the next execution, else a new execution claim ([`Worker`] describes the
    /// batched claims). `None` means no task right now (not that the block is done: see
    /// [`Self::is_done`]); the worker's pending decrements of the task count are then
    /// published, so the completion check can see it idle.
    pub fn next_task(&self, w: &mut Worker) -> Option<Task> {
        let task = self.next_task_inner(w);
        if task.is_none() && w.released > 0 {
            self.idx.num_active_tasks.fetch_sub(std::mem::take(&mut w.released), Ordering::SeqCst);
        }
        task
    }

    fn next_task_inner(&self, w: &mut Worker) -> Option<Task> {
        if self.halted.load(Ordering::Acquire) {
            return None;
        }
        if let Some(task) = self.next_claimed(w) {
            return Some(task);
        }
        let (_, validation_idx) = unpack(self.idx.validation_idx.load(Ordering::SeqCst));
        if validation_idx < self.idx.execution_idx.load(Ordering::SeqCst)
            && let Some(task) = self.next_version_to_validate(w)
        {
            return Some(task);
        }
        // No validation to do (or the scan waits at a transaction still executing, the common
        // case with as many workers as ready transactions): take an execution rather than
        // report "no task", which would send the worker through its idle path.
        self.next_version_to_execute(w)
    }

    /// Counts one task for `w` before it claims one: reuses a finished task's pending
    /// decrement if there is one, else adds to the shared count.
    pub(crate) fn count_task(&self, w: &mut Worker) {
        if w.released > 0 {
            w.released -= 1;
        } else {
            self.idx.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Ends `tasks` of `w`'s tasks: at once without batching, else when `w` next claims or
    /// finds nothing to do (see [`Worker`]).
    pub(crate) fn end_tasks(&self, w: &mut Worker, tasks: usize) {
        if w.batched() {
            w.released += tasks;
        } else {
            self.idx.num_active_tasks.fetch_sub(tasks, Ordering::SeqCst);
        }
    }

    /// The next index of `w`'s claim that is still ready, made `EXECUTING` for `w`. Each
    /// claimed index was counted as a task when claimed; one that is no longer ready (the
    /// execution index came back to it and another worker took it) ends its task here.
    fn next_claimed(&self, w: &mut Worker) -> Option<Task> {
        while w.next < w.end {
            let idx = w.next;
            w.next += 1;
            if let Some(version) = self.try_incarnate(idx, w.id) {
                return Some(Task::Execute(version));
            }
            self.end_tasks(w, 1);
        }
        None
    }

    fn next_version_to_execute(&self, w: &mut Worker) -> Option<Task> {
        let at = self.idx.execution_idx.load(Ordering::SeqCst);
        if at >= self.num_txns {
            return None;
        }
        if w.max_batch > 1 {
            let conflicts = self.conflicts.load(Ordering::Relaxed);
            if conflicts != w.conflicts_seen {
                (w.batch, w.conflicts_seen, w.calm_from) = (1, conflicts, at);
            } else if at >= w.calm_from + w.calm_txns {
                w.batch = (w.batch * 2).min(w.max_batch);
            }
        }
        // Count the tasks before claiming the indices (see "Memory ordering" above), netting out
        // the worker's pending decrements: the count never drops below the active tasks.
        let batch = w.batch;
        let released = std::mem::take(&mut w.released);
        if batch > released {
            self.idx.num_active_tasks.fetch_add(batch - released, Ordering::SeqCst);
        } else if released > batch {
            self.idx.num_active_tasks.fetch_sub(released - batch, Ordering::SeqCst);
        }
        let first = self.idx.execution_idx.fetch_add(batch, Ordering::SeqCst);
        let (next, end) = (first.min(self.num_txns), (first + batch).min(self.num_txns));
        // Indices past the block were counted too: nothing to run there.
        self.end_tasks(w, batch - (end - next));
        (w.next, w.end) = (next, end);
        self.next_claimed(w)
    }

    /// Claims the validation at `validation_idx`, passing transactions that need none. Never
    /// passes a transaction that has not executed its current incarnation: the index waits
    /// there, and [`Self::finish_execution`] claims that validation when it finishes. A
    /// validation of a higher transaction made before then would have to be repeated (the
    /// transaction below writes afterwards and starts a new wave), which on blocks whose
    /// hinted or aborted transactions run late cost several validations per transaction.
    /// With batched claims it also waits at a transaction another worker executed while
    /// executions remain (see [`Worker`]).
    fn next_version_to_validate(&self, w: &mut Worker) -> Option<Task> {
        let mut word = self.idx.validation_idx.load(Ordering::SeqCst);
        loop {
            let (wave, idx) = unpack(word);
            if idx >= self.num_txns {
                return None;
            }
            let st = self.txns[idx].lock();
            let validate = match st.status {
                TxnStatus::Executed => st.validated_wave != Some(FINAL_WAVE),
                // Final already: nothing to validate, pass it.
                TxnStatus::Committed => false,
                // Not executed yet: wait here (see above). Nothing is claimed, so nothing is
                // counted (two changes of the shared line saved in the common case with as many
                // workers as ready transactions).
                TxnStatus::ReadyToExecute | TxnStatus::Executing | TxnStatus::Aborting => return None,
            };
            if validate
                && w.batched()
                && st.owner != w.id
                && st.owner != NO_OWNER
                && self.idx.execution_idx.load(Ordering::SeqCst) < self.num_txns
            {
                // Its executor validates it, from its own cache; this worker executes.
                return None;
            }
            // Count the task before claiming the index (see "Memory ordering" above).
            self.count_task(w);
            // The claim. Under the status lock, so the status seen is the one claimed.
            let claimed = self.idx.validation_idx.compare_exchange_weak(
                word,
                pack(wave, idx + 1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            match claimed {
                Ok(_) if validate => {
                    return Some(Task::Validate { version: Version::new(idx, st.incarnation), wave });
                }
                Ok(_) => word = pack(wave, idx + 1),
                Err(actual) => word = actual,
            }
            drop(st);
            self.end_tasks(w, 1);
        }
    }

    /// `READY(n) → EXECUTING(n)` for worker `owner` if the transaction is ready. Does not touch
    /// the task count.
    pub(crate) fn try_incarnate(&self, idx: TxnIndex, owner: u16) -> Option<Version> {
        if idx >= self.num_txns {
            return None;
        }
        let mut st = self.txns[idx].lock();
        if st.status == TxnStatus::ReadyToExecute {
            st.status = TxnStatus::Executing;
            st.owner = owner;
            Some(Version::new(idx, st.incarnation))
        } else {
            None
        }
    }
}
