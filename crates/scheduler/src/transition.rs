//! The transitions that end a task: finishing an execution, waiting for a dependency, the
//! outcome of a validation, and an abort (see [`TxnStatus`] for the state machine).

use crate::{
    FINAL_WAVE, FinishExecution, FollowUp, InvariantError, Scheduler, Task, TxnIndex, TxnState, TxnStatus,
    Version, Wave, Worker, pack, unpack,
};
use blockstm_sync::atomic::Ordering;

impl Scheduler {
    /// `(txn_idx, incarnation)` finished and its writes are recorded (`EXECUTING → EXECUTED`),
    /// for worker `w`, the one that executed it. Resumes the transactions waiting for it (with
    /// [`FinishExecution::continue_with_waiter`], the lowest of them for the caller). Returns
    /// what the caller runs next: the validation of this incarnation if it is the caller's to
    /// run now, and the resumed transaction. With batched claims a first incarnation leaves its
    /// validation to the scan (see [`Worker`]).
    pub fn finish_execution(
        &self,
        w: &mut Worker,
        version: Version,
        how: FinishExecution,
    ) -> Result<FollowUp, InvariantError> {
        let Version { txn_idx, incarnation } = version;
        let (task, dependents) = {
            let mut st = self.txns[txn_idx].lock();
            st.expect(version, TxnStatus::Executing, "finish_execution")?;
            st.status = TxnStatus::Executed;
            if how.final_reads {
                st.validated_wave = Some(FINAL_WAVE);
            }
            let task = if w.batched() && incarnation == 0 {
                // `validation_idx` only passes executed transactions, so it is at or below this
                // one, which never executed before: no validation above it exists in this wave
                // and none is owed, and the scan will claim this one's (see [`Worker`]).
                None
            } else {
                self.own_validation(&mut st, version, how)
            };
            (task, std::mem::take(&mut st.dependents))
        };
        let resumed = if how.continue_with_waiter {
            self.resume_claiming_lowest(w, dependents)?
        } else {
            self.resume(&dependents)?;
            None
        };
        // The caller's task (this execution) carries over to its validation; the resumed
        // execution was counted when it was claimed.
        if task.is_none() {
            self.end_tasks(w, 1);
        }
        Ok(FollowUp { validation: task, resumed })
    }

    /// Under `version`'s status lock, just made `EXECUTED`: claims its validation from the
    /// scan if the scan waits at it, starts a new wave for the transactions above if it wrote
    /// a new location after the scan passed it, and returns the validation the caller runs now
    /// (none if its reads are final, or if the scan is still below it and will come for it).
    fn own_validation(&self, st: &mut TxnState, version: Version, how: FinishExecution) -> Option<Task> {
        let txn_idx = version.txn_idx;
        let (mut wave, mut validation_idx) = unpack(self.idx.validation_idx.load(Ordering::SeqCst));
        // The scan of `validation_idx` waits at a transaction that has not executed: claim
        // this validation from it. Nothing above was validated in this wave yet, so new
        // locations need no new wave.
        while validation_idx == txn_idx {
            match self.idx.validation_idx.compare_exchange_weak(
                pack(wave, txn_idx),
                pack(wave, txn_idx + 1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(actual) => (wave, validation_idx) = unpack(actual),
            }
        }
        // Past this transaction, the scan of `validation_idx` will not come back for it: the
        // caller validates it now (unless it needs none).
        if validation_idx == txn_idx {
            (!how.final_reads).then_some(Task::Validate { version, wave })
        } else if validation_idx > txn_idx {
            if how.wrote_new_location
                // Higher transactions may have read around a location that now exists:
                // re-validate them, in a new wave this transaction answers for. From
                // `txn_idx + 1`, not `txn_idx` (the paper's choice): this transaction's own
                // validation is the task returned here, which saves the round trip through
                // the shared index, its claim and its task count. It carries the new wave: it
                // is created after the decrease, so it reads the memory the wave stands for.
                && let Some(new_wave) = self.decrease_validation_idx(txn_idx + 1)
            {
                st.max_triggered_wave = st.max_triggered_wave.max(new_wave);
                wave = new_wave;
            }
            (!how.final_reads).then_some(Task::Validate { version, wave })
        } else {
            None
        }
    }

    /// `ABORTING(n) → READY(n+1)` for every transaction that waited, and the execution index
    /// back to the lowest of them.
    fn resume(&self, dependents: &[TxnIndex]) -> Result<(), InvariantError> {
        for &dep in dependents {
            let mut st = self.txns[dep].lock();
            self.make_ready(dep, &mut st)?;
        }
        if let Some(&min) = dependents.iter().min() {
            self.decrease_execution_idx(min);
        }
        Ok(())
    }

    /// [`Self::resume`], except that the lowest dependent goes straight from `ABORTING(n)` to
    /// `EXECUTING(n+1)` for the caller, under its status lock, so no other worker ever sees it
    /// ready; the execution index need not come back for it. Its task is counted first (see
    /// "Memory ordering" in the crate docs). Not claimed when its resume tripped the livelock
    /// guard.
    fn resume_claiming_lowest(
        &self,
        w: &mut Worker,
        mut dependents: Vec<TxnIndex>,
    ) -> Result<Option<Version>, InvariantError> {
        let Some(lowest) = dependents.iter().enumerate().min_by_key(|&(_, &dep)| dep).map(|(i, _)| i) else {
            return Ok(None);
        };
        let claimed = dependents.swap_remove(lowest);
        self.resume(&dependents)?;
        self.count_task(w);
        let mut st = self.txns[claimed].lock();
        if let Err(error) = self.make_ready(claimed, &mut st) {
            drop(st);
            self.end_tasks(w, 1);
            return Err(error);
        }
        if self.is_halted() {
            // Leave it ready (the block is ending anyway) and give the count back.
            drop(st);
            self.end_tasks(w, 1);
            self.decrease_execution_idx(claimed);
            return Ok(None);
        }
        st.status = TxnStatus::Executing;
        st.owner = w.id;
        Ok(Some(Version::new(claimed, st.incarnation)))
    }

    /// `ABORTING(n) → READY(n+1)`, under the caller's status lock. Trips the livelock guard when
    /// the incarnation limit is passed.
    fn make_ready(&self, txn_idx: TxnIndex, st: &mut TxnState) -> Result<(), InvariantError> {
        st.expect(Version::new(txn_idx, st.incarnation), TxnStatus::Aborting, "a resume")?;
        st.incarnation += 1;
        st.status = TxnStatus::ReadyToExecute;
        st.validated_wave = None;
        if st.incarnation >= self.max_incarnations {
            self.livelock.lock().get_or_insert(txn_idx);
            self.halt();
        }
        Ok(())
    }

    fn decrease_execution_idx(&self, target: TxnIndex) {
        if self.idx.execution_idx.fetch_min(target, Ordering::SeqCst) > target {
            self.idx.decrease_cnt.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Lowers `validation_idx` to `target` in a new wave; returns the wave, or `None` if the
    /// index was already at or below `target`.
    fn decrease_validation_idx(&self, target: TxnIndex) -> Option<Wave> {
        let mut current = self.idx.validation_idx.load(Ordering::SeqCst);
        loop {
            let (wave, idx) = unpack(current);
            if idx <= target {
                return None;
            }
            // A block would need four billion decreases to wrap the wave.
            let new_wave = wave.wrapping_add(1);
            match self.idx.validation_idx.compare_exchange_weak(
                current,
                pack(new_wave, target),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    self.idx.decrease_cnt.fetch_add(1, Ordering::SeqCst);
                    return Some(new_wave);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Transaction `txn_idx`, executing on worker `w`, read an `ESTIMATE` of `blocking`.
    /// Returns true if it now waits (`EXECUTING → ABORTING`; it is resumed when `blocking`
    /// finishes executing, and the caller's task is over), false if `blocking` already
    /// finished, in which case the caller re-executes the same incarnation at once.
    pub fn add_dependency(
        &self,
        w: &mut Worker,
        txn_idx: TxnIndex,
        blocking: TxnIndex,
    ) -> Result<bool, InvariantError> {
        if blocking >= txn_idx {
            return Err(InvariantError(format!(
                "transaction {txn_idx} would wait for transaction {blocking}, which is not below it"
            )));
        }
        // Lock order: status(blocking) → status(txn_idx), the lower index first. Holding the
        // blocker's lock while registering means its finish_execution (which sets EXECUTED and
        // takes the dependents under that lock) either happened before, and we retry, or
        // happens after, and resumes us.
        let mut blocker = self.txns[blocking].lock();
        if matches!(blocker.status, TxnStatus::Executed | TxnStatus::Committed) {
            return Ok(false);
        }
        {
            let mut st = self.txns[txn_idx].lock();
            st.expect(Version::new(txn_idx, st.incarnation), TxnStatus::Executing, "add_dependency")?;
            st.status = TxnStatus::Aborting;
        }
        blocker.dependents.push(txn_idx);
        drop(blocker);
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        self.end_tasks(w, 1);
        Ok(true)
    }

    /// A validation of `version` created in `wave` succeeded; worker `w`'s task is over.
    pub fn finish_validation(&self, w: &mut Worker, version: Version, wave: Wave) {
        {
            let mut st = self.txns[version.txn_idx].lock();
            if st.incarnation == version.incarnation && st.status == TxnStatus::Executed {
                st.validated_wave = Some(st.validated_wave.map_or(wave, |w| w.max(wave)));
            }
        }
        self.end_tasks(w, 1);
    }

    /// A validation of `version`, run by worker `w`, failed. Returns true for exactly one caller
    /// per incarnation (`EXECUTED(n) → ABORTING(n)`); that caller must turn the incarnation's
    /// writes into `ESTIMATE`s and then call [`Self::finish_abort`]. For the others (another
    /// validator aborted it, or it moved on) the task is over.
    pub fn try_validation_abort(&self, w: &mut Worker, version: Version) -> bool {
        {
            let mut st = self.txns[version.txn_idx].lock();
            if st.incarnation == version.incarnation && st.status == TxnStatus::Executed {
                st.status = TxnStatus::Aborting;
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        self.end_tasks(w, 1);
        false
    }

    /// Worker `w` won [`Self::try_validation_abort`] for `version` and turned its writes into
    /// `ESTIMATE`s. Makes the next incarnation ready (`ABORTING(n) → READY(n+1)`), schedules
    /// re-validation of every higher transaction, and returns the re-execution if the caller
    /// should do it now.
    pub fn finish_abort(&self, w: &mut Worker, version: Version) -> Result<Option<Task>, InvariantError> {
        let txn_idx = version.txn_idx;
        {
            // Under the status lock, so that no thread can re-execute and commit this
            // transaction before its triggered wave is recorded (see the crate docs).
            let mut st = self.txns[txn_idx].lock();
            st.expect(version, TxnStatus::Aborting, "finish_abort")?;
            self.make_ready(txn_idx, &mut st)?;
            if let Some(new_wave) = self.decrease_validation_idx(txn_idx + 1) {
                st.max_triggered_wave = st.max_triggered_wave.max(new_wave);
            }
        }
        if self.idx.execution_idx.load(Ordering::SeqCst) > txn_idx
            && !self.halted.load(Ordering::Acquire)
            && let Some(next) = self.try_incarnate(txn_idx, w.id)
        {
            return Ok(Some(Task::Execute(next)));
        }
        self.end_tasks(w, 1);
        Ok(None)
    }
}
