//! The rolling commit: whoever holds the scheduler's commit lock commits every final
//! transaction in block order, materialises its deltas, hands its output to the hook, and
//! lets the adaptive rule measure the run.

use super::{Block, End};
use crate::outcome::panic_message;
use crate::{BlockError, CommitHook, Storage, StorageError, Vm};
use blockstm_mvmemory::{MaterializeError, TxnIndex};
use blockstm_scheduler::CommitGuard;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

impl<VM, S, H> Block<'_, VM, S, H>
where
    VM: Vm,
    S: Storage<VM::Key, VM::Value>,
    H: CommitHook<VM::Output> + Send + ?Sized,
{
    /// Commits whatever is final, if no other thread is committing.
    #[inline]
    pub(super) fn try_commit(&self) {
        if let Some(mut guard) = self.scheduler.try_lock_commit() {
            self.commit(&mut guard);
        }
    }

    /// The scheduler is idle: everything must be committable now. Anything else is a bug,
    /// reported as an error rather than a hang.
    pub(super) fn final_commit(&self) {
        let mut guard = self.scheduler.lock_commit();
        self.commit(&mut guard);
        if !self.scheduler.is_done() {
            let next = guard.committed();
            drop(guard);
            self.fail_internal(format!(
                "scheduler idle but transaction {next} cannot commit; {}",
                self.scheduler.dump()
            ));
        }
    }

    /// Commits in block order until the next transaction is not final or the commit sequence
    /// closes (the block ended, or the adaptive rule chose the sequential path); then, if it
    /// closed, halts the scheduler.
    fn commit(&self, guard: &mut CommitGuard<'_>) {
        let mut sink = self.sink.lock();
        while !sink.closed() {
            let Some(version) = guard.try_commit_next() else {
                return;
            };
            let txn_idx = version.txn_idx;
            let (stored, has_deltas) = {
                let mut last = self.last[txn_idx].lock();
                ((last.incarnation, last.outcome.take()), last.has_deltas)
            };
            let outcome = match stored {
                (incarnation, Some(outcome)) if incarnation == version.incarnation => outcome,
                (incarnation, _) => {
                    sink.end = Some(End::Error(BlockError::Internal(format!(
                        "committing {version:?} but the stored outcome is of incarnation {incarnation}"
                    ))));
                    break;
                }
            };
            if let Some(warmup) = &self.adaptive
                && sink.measured.is_none()
                && let Some(measured) = warmup.measure(txn_idx)
            {
                sink.measured = Some(measured);
                if measured.sequential {
                    tracing::debug!(measured.parallelism, "adaptive rule: finishing sequentially");
                }
            }
            // The transaction's deltas become values now, on top of the committed prefix: where
            // a sequential run applies them, with the same failures.
            let outcome = match outcome.into_result(txn_idx) {
                Ok(output) if has_deltas => self.materialize(txn_idx).map(|()| output),
                Ok(output) => Ok(output),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(output) => {
                    let flow = catch_unwind(AssertUnwindSafe(|| sink.hook.on_commit(txn_idx, &output)));
                    sink.outputs.push(output);
                    match flow {
                        Ok(ControlFlow::Continue(())) => {}
                        Ok(ControlFlow::Break(())) => sink.end = Some(End::Hook),
                        Err(payload) => {
                            let message = panic_message(payload.as_ref());
                            sink.end = Some(End::Error(BlockError::HookPanic { txn_idx, message }));
                        }
                    }
                }
                Err(error) => sink.end = Some(End::Error(error)),
            }
        }
        // The block ended at a committed transaction: nothing above it matters any more.
        self.scheduler.halt();
    }

    /// Materialises the deltas of transaction `txn_idx`, which was just committed.
    fn materialize(&self, txn_idx: TxnIndex) -> Result<(), BlockError<VM::Error>> {
        self.mv.materialize(txn_idx, |key| self.storage.read(key)).map_err(|error| match error {
            MaterializeError::Delta { key, message } => {
                BlockError::Delta { txn_idx, key: format!("{key:?}"), message }
            }
            MaterializeError::Storage { error, .. } => {
                BlockError::Storage { txn_idx, error: StorageError::new(error) }
            }
            MaterializeError::Invariant(error) => BlockError::Internal(error.to_string()),
        })
    }

    /// Ends the block with an internal error (unless it already failed) and halts it.
    pub(super) fn fail_internal(&self, message: String) {
        let mut sink = self.sink.lock();
        if !matches!(sink.end, Some(End::Error(_))) {
            sink.end = Some(End::Error(BlockError::Internal(message)));
        }
        drop(sink);
        self.scheduler.halt();
    }
}
