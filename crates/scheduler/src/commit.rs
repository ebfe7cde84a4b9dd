//! The rolling commit: the commit lock and the rule that makes a transaction final.

use crate::{Scheduler, TxnIndex, TxnStatus, Version, Wave};
use blockstm_sync::MutexGuard;
use blockstm_sync::atomic::Ordering;
use std::fmt;

/// The commit lock's state.
#[derive(Debug)]
pub(crate) struct CommitCursor {
    /// The next transaction to commit.
    pub(crate) next: TxnIndex,
    /// `max(max_triggered_wave)` over transactions `0..=next` seen so far.
    pub(crate) wave: Wave,
}

impl Scheduler {
    /// The commit lock, if free. Commits happen in block order by whoever holds it.
    pub fn try_lock_commit(&self) -> Option<CommitGuard<'_>> {
        self.commit.try_lock().map(|cursor| CommitGuard { scheduler: self, cursor })
    }

    /// The commit lock, waiting for it.
    pub fn lock_commit(&self) -> CommitGuard<'_> {
        CommitGuard { scheduler: self, cursor: self.commit.lock() }
    }
}

/// Holder of the commit lock. See [`Scheduler::try_lock_commit`].
pub struct CommitGuard<'a> {
    scheduler: &'a Scheduler,
    cursor: MutexGuard<'a, CommitCursor>,
}

impl fmt::Debug for CommitGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitGuard").field("next", &self.cursor.next).finish()
    }
}

impl CommitGuard<'_> {
    /// Commits the next transaction in block order if it is final (`EXECUTED(n) →
    /// COMMITTED(n)`), returning its committed incarnation. See "Validation waves" in the crate
    /// docs for the rule.
    pub fn try_commit_next(&mut self) -> Option<Version> {
        let idx = self.cursor.next;
        if idx >= self.scheduler.num_txns {
            return None;
        }
        let mut st = self.scheduler.txns[idx].lock();
        if st.status != TxnStatus::Executed {
            return None;
        }
        self.cursor.wave = self.cursor.wave.max(st.max_triggered_wave);
        match st.validated_wave {
            Some(validated) if validated >= self.cursor.wave => {
                st.status = TxnStatus::Committed;
                let version = Version::new(idx, st.incarnation);
                drop(st);
                self.cursor.next = idx + 1;
                // Release: pairs with the acquire load in `Scheduler::committed`.
                self.scheduler.committed.store(idx + 1, Ordering::Release);
                Some(version)
            }
            _ => None,
        }
    }

    /// Number of committed transactions.
    pub fn committed(&self) -> usize {
        self.cursor.next
    }
}
