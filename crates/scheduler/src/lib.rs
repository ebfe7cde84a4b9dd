//! The collaborative scheduler of Block-STM, with a rolling commit.
//!
//! The scheduler knows nothing of keys or values: it hands out tasks ("execute incarnation
//! `(i, n)`", "validate incarnation `(i, n)`"), tracks the status of every transaction (the
//! state machine is documented on [`TxnStatus`]), parks transactions that read an `ESTIMATE`
//! until their blocker finishes, and decides when each transaction is final (committed), in
//! block order, while the block still runs.
//!
//! # The API, one entry point per transition
//!
//! Each worker thread owns a [`Worker`] and passes it to every call that starts or ends a task:
//!
//! | call | transition | the task |
//! |---|---|---|
//! | [`Scheduler::next_task`] | `READY → EXECUTING`, or claims a validation | starts |
//! | [`Scheduler::finish_execution`] ([`FinishExecution`]) | `EXECUTING → EXECUTED` | ends or becomes its validation |
//! | [`Scheduler::add_dependency`] | `EXECUTING → ABORTING` (waits for a lower transaction) | ends |
//! | [`Scheduler::finish_validation`] | records the validated wave | ends |
//! | [`Scheduler::try_validation_abort`] | `EXECUTED → ABORTING`, for one caller | ends if another won |
//! | [`Scheduler::finish_abort`] | `ABORTING → READY` | ends or becomes the re-execution |
//! | [`CommitGuard::try_commit_next`] | `EXECUTED → COMMITTED` | (no task) |
//!
//! A call that finds a transaction in a status the protocol rules out (a bug, or a schedule
//! nobody thought of) returns an [`InvariantError`] instead of going on: the executor ends the
//! block with an internal error, in release builds too.
//!
//! # Validation waves and the rolling commit
//!
//! `validation_idx` is packed with a *wave* number (one atomic word, so one read gives both). Every time it is decreased
//! (a transaction wrote a new location, or was aborted), the wave grows by one, and the
//! transaction that caused the decrease remembers the new wave in its `max_triggered_wave`.
//! A validation task carries the wave it was created in, and a successful validation of the
//! current incarnation records the highest such wave in `validated_wave`.
//!
//! Every change that can invalidate a read of transaction `k` comes from some `j < k` and is
//! followed by a decrease of `validation_idx` to at most `j + 1 <= k`, or happens while
//! `validation_idx <= j`, i.e. before any validation of `k` in the current wave was created. A
//! validation created in wave `w` reads the memory after the change that started wave `w`.
//! Hence, with `commit_wave = max(max_triggered_wave of 0..=k)`, transaction `k` is final once
//! all of `0..k` are committed, it is `EXECUTED(n)` and a validation of `(k, n)` created in a wave
//! `>= commit_wave` succeeded. That is the rule of [`CommitGuard::try_commit_next`].
//! `max_triggered_wave` is written under the status lock in the same critical section that makes
//! the transaction `EXECUTED` or `READY`, so no committer can pass `j` before it sees the wave
//! that `j` triggered.
//!
//! The scan of `validation_idx` never passes a transaction that has not executed its current
//! incarnation: it waits there (claims are a compare-and-swap under the status lock of the
//! transaction claimed, which must be `EXECUTED`, or need no validation), and the thread that
//! finishes that execution claims its validation and moves the scan on. The paper's scan
//! passes it instead; every transaction above that it then validates must be validated again
//! when the one below writes a location for the first time, which is every time for a
//! transaction that waited for its dependency hint (on blocks with long same-sender chains,
//! several validations per transaction). Waiting only delays validations, and a validation
//! created later reads newer memory, so the commit rule above is unchanged.
//!
//! # Lock order
//!
//! `commit cursor` → `status(k)`; `status(j)` → `status(i)` for `j < i` in `add_dependency`;
//! never two status locks at once otherwise. The atomics below are never waited on while a lock
//! is held, only read or changed.
//!
//! # Memory ordering
//!
//! `execution_idx`, `validation_idx`, `decrease_cnt` and `num_active_tasks` use `SeqCst`: the
//! completion check ([`Scheduler::idle_complete`]) reasons about one total order of their
//! changes, exactly as the paper's `check_done` does. They are read-modify-writes on x86 anyway,
//! where `SeqCst` costs nothing extra. Counting an active task happens *before* claiming an index,
//! so a thread that sees "no index left and no active task" cannot miss a task being claimed.
//! A batched worker ([`Worker`]) publishes the end of its tasks late (at its next claim, or when
//! it finds nothing to do), never early, so the count is never below the tasks in flight.
//! `conflicts` is `Relaxed`: it only sizes claims.
//! The status of a transaction and everything published with it (its writes, read set and
//! output, stored before `finish_execution`) are ordered by the status lock.
//! `committed` and `halted` are release stores read with acquire loads: a thread that sees the
//! block done or halted sees the commits that made it so.

mod claim;
mod commit;
mod transition;
mod worker;

pub use blockstm_mvmemory::{Incarnation, InvariantError, TxnIndex, Version};
pub use commit::CommitGuard;
pub use worker::{CALM_TXNS, Worker};

use blockstm_sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use blockstm_sync::{CachePadded, Mutex, SpinMutex, SpinWait};
use commit::CommitCursor;
use std::fmt;
use worker::NO_OWNER;

/// Validation wave: how many times `validation_idx` was decreased before a validation was made.
pub type Wave = u32;

/// Work handed to a worker thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Execute this incarnation.
    Execute(Version),
    /// Validate this (executed) incarnation.
    Validate {
        /// The incarnation to validate.
        version: Version,
        /// The wave the validation was created in.
        wave: Wave,
    },
}

/// How an execution ended, for [`Scheduler::finish_execution`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FinishExecution {
    /// The incarnation wrote a location its previous incarnation did not (from the
    /// multi-version memory's `record`): the transactions above must be validated again.
    pub wrote_new_location: bool,
    /// The incarnation started when [`Scheduler::all_below_committed`] held, so it read only
    /// final values: it is validated for good, needs no validation task and may commit at once.
    pub final_reads: bool,
    /// Hand the caller the lowest transaction that waited for this one, already `EXECUTING`
    /// its next incarnation ([`FollowUp::resumed`]). A transaction that waited for `i` reads
    /// what `i` wrote, and in a chain (one sender's transactions) so does every link after it:
    /// continuing on the thread that ran `i` keeps the chain on one core, where it finds the
    /// previous link's state in cache, while the other workers take the rest of the block.
    /// The other waiters are resumed through the execution index.
    pub continue_with_waiter: bool,
}

/// What a worker runs after finishing an execution, from [`Scheduler::finish_execution`]: the
/// validation first (it is cheap, and once it passes the finished transaction can commit, so
/// the resumed one may find everything below it committed and need no validation), then the
/// resumed execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// The validation of the finished incarnation, when it is the caller's to run.
    pub validation: Option<Task>,
    /// The lowest transaction that waited for the finished one, `EXECUTING` this incarnation
    /// for the caller (only with [`FinishExecution::continue_with_waiter`]).
    pub resumed: Option<Version>,
}

/// Status of a transaction's current incarnation: the per-transaction state machine.
///
/// Each transaction has, under its own status lock, an incarnation number `n` and a status:
///
/// ```text
///                         try_incarnate
///   READY_TO_EXECUTE(n) ----------------> EXECUTING(n) ----finish_execution----> EXECUTED(n)
///          ^                                   |                                  |    |
///          |                 read an ESTIMATE of j: add_dependency(i, j)          |    | try_commit_next
///          |                                   v                  try_validation_abort  v
///          +---- resume (j finished) ---- ABORTING(n) <-----------------------------+  COMMITTED(n)
///          |          n := n + 1               |
///          +------ finish_abort, n := n + 1 ---+
/// ```
///
/// | transition | who makes it |
/// |---|---|
/// | `READY(n) → EXECUTING(n)` | the worker whose [`Scheduler::next_task`] claims `i`, or the validator in [`Scheduler::finish_abort`] |
/// | `EXECUTING(n) → EXECUTED(n)` | the worker executing `(i, n)`, in [`Scheduler::finish_execution`] |
/// | `EXECUTING(n) → ABORTING(n)` | the worker executing `(i, n)`, in [`Scheduler::add_dependency`] |
/// | `ABORTING(n) → READY(n+1)` | the worker finishing `j` (resume), or the validator that aborted `(i, n)` |
/// | `ABORTING(n) → EXECUTING(n+1)` | the worker finishing `j`, for the lowest transaction waiting for `j`, with [`FinishExecution::continue_with_waiter`] (the two steps above in one critical section) |
/// | `EXECUTED(n) → ABORTING(n)` | the one validator whose [`Scheduler::try_validation_abort`] wins |
/// | `EXECUTED(n) → COMMITTED(n)` | the holder of the commit lock, in block order ([`CommitGuard::try_commit_next`]) |
///
/// Invariants: an incarnation executes at most once; only `EXECUTED` transactions are handed out
/// for validation; `COMMITTED` is final (never aborted, never re-validated). A transition asked
/// of a transaction in any other status is an [`InvariantError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// Waiting to execute its current incarnation.
    ReadyToExecute,
    /// Its current incarnation is executing.
    Executing,
    /// Its current incarnation finished and its writes are recorded.
    Executed,
    /// Its current incarnation was aborted; the next one is not ready yet.
    Aborting,
    /// Final: its current incarnation is the one sequential execution would run.
    Committed,
}

/// Why the scheduler stopped handing out work before every transaction committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HaltReason {
    /// The executor asked (the block ended early or failed at a committed transaction).
    Requested,
    /// A transaction reached the incarnation limit: the executor should finish sequentially.
    Livelock {
        /// The transaction that reached the limit.
        txn_idx: TxnIndex,
    },
}

/// Bits of the packed `validation_idx` word that hold the index; the wave is above them.
const IDX_BITS: u32 = 32;
/// Mask of the index part of the packed word.
const IDX_MASK: u64 = (1 << IDX_BITS) - 1;

/// `validated_wave` of an incarnation that read only committed values: it satisfies the commit
/// rule in every wave and is never handed out for validation. (Waves count decreases of
/// `validation_idx`; no block makes four billion of them.)
const FINAL_WAVE: Wave = Wave::MAX;

/// The largest block the scheduler accepts: indices must fit the packed word with room for the
/// few fetch-and-increments per thread that may overshoot the block size.
pub const MAX_TXNS: usize = (u32::MAX / 2) as usize;

/// Packs a wave and an index into one word, so one atomic read gives both and one
/// compare-and-swap claims an index within a wave.
#[inline]
const fn pack(wave: Wave, idx: TxnIndex) -> u64 {
    ((wave as u64) << IDX_BITS) | (idx as u64 & IDX_MASK)
}

/// Inverse of [`pack`].
#[inline]
const fn unpack(word: u64) -> (Wave, TxnIndex) {
    ((word >> IDX_BITS) as Wave, (word & IDX_MASK) as TxnIndex)
}

/// One transaction's entry in the state machine ([`TxnStatus`]), under its status lock.
#[derive(Debug)]
struct TxnState {
    incarnation: Incarnation,
    status: TxnStatus,
    /// The highest wave this transaction started by decreasing `validation_idx`.
    max_triggered_wave: Wave,
    /// The highest wave of a successful validation of the current incarnation.
    validated_wave: Option<Wave>,
    /// Transactions waiting for this one to finish executing. Under the same lock as the
    /// status, so "not executed yet, so wait" and "executed, so resume the waiters" exclude
    /// each other without a second lock.
    dependents: Vec<TxnIndex>,
    /// The worker that claimed the current incarnation ([`Worker`]): with batched claims, the
    /// scan of `validation_idx` leaves its validation to that worker while executions remain.
    owner: u16,
}

impl TxnState {
    /// The caller expects incarnation `version.incarnation` in `expected`; anything else is a
    /// broken protocol, reported as an error.
    fn expect(&self, version: Version, expected: TxnStatus, transition: &str) -> Result<(), InvariantError> {
        if (self.incarnation, self.status) == (version.incarnation, expected) {
            Ok(())
        } else {
            Err(InvariantError(format!(
                "{transition} of {version:?} expects {expected:?}, found incarnation {} {:?}",
                self.incarnation, self.status
            )))
        }
    }
}

/// The shared indices and task count, on one cache line: every task claim reads both indices
/// and changes the count and one index, so on separate lines each claim pulled three lines
/// from the other core.
#[derive(Debug)]
struct Indices {
    execution_idx: AtomicUsize,
    /// `pack(wave, idx)`.
    validation_idx: AtomicU64,
    decrease_cnt: AtomicUsize,
    num_active_tasks: AtomicUsize,
}

/// The Block-STM scheduler for one block. See the [crate docs](crate).
pub struct Scheduler {
    num_txns: usize,
    max_incarnations: Incarnation,
    idx: CachePadded<Indices>,
    committed: CachePadded<AtomicUsize>,
    halted: CachePadded<AtomicBool>,
    /// Aborts plus transactions parked on another: read at every batched claim, written only
    /// on a conflict, so on a block without conflicts its line stays in both caches.
    /// `Relaxed`: it only sizes claims.
    conflicts: CachePadded<AtomicUsize>,
    livelock: Mutex<Option<TxnIndex>>,
    /// Not padded to a cache line each: see docs/design.md, "Padding".
    txns: Box<[SpinMutex<TxnState>]>,
    commit: Mutex<CommitCursor>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (wave, vidx) = unpack(self.idx.validation_idx.load(Ordering::SeqCst));
        f.debug_struct("Scheduler")
            .field("num_txns", &self.num_txns)
            .field("execution_idx", &self.idx.execution_idx.load(Ordering::SeqCst))
            .field("validation_idx", &vidx)
            .field("wave", &wave)
            .field("num_active_tasks", &self.idx.num_active_tasks.load(Ordering::SeqCst))
            .field("committed", &self.committed.load(Ordering::Acquire))
            .field("halted", &self.halted.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler for `num_txns` transactions (at most [`MAX_TXNS`]). A transaction about to
    /// start incarnation number `max_incarnations` (its `max_incarnations + 1`-th execution
    /// attempt) halts the block with [`HaltReason::Livelock`]; 1 means the first abort halts.
    pub fn new(num_txns: usize, max_incarnations: Incarnation) -> Self {
        assert!(num_txns <= MAX_TXNS, "block of {num_txns} transactions exceeds MAX_TXNS");
        Self {
            num_txns,
            max_incarnations,
            idx: CachePadded::new(Indices {
                execution_idx: AtomicUsize::new(0),
                validation_idx: AtomicU64::new(pack(0, 0)),
                decrease_cnt: AtomicUsize::new(0),
                num_active_tasks: AtomicUsize::new(0),
            }),
            committed: CachePadded::new(AtomicUsize::new(0)),
            halted: CachePadded::new(AtomicBool::new(false)),
            conflicts: CachePadded::new(AtomicUsize::new(0)),
            livelock: Mutex::new(None),
            txns: (0..num_txns)
                .map(|_| {
                    SpinMutex::new(TxnState {
                        incarnation: 0,
                        status: TxnStatus::ReadyToExecute,
                        max_triggered_wave: 0,
                        validated_wave: None,
                        dependents: Vec::new(),
                        owner: NO_OWNER,
                    })
                })
                .collect(),
            commit: Mutex::new(CommitCursor { next: 0, wave: 0 }),
        }
    }

    /// Number of transactions in the block.
    pub fn num_txns(&self) -> usize {
        self.num_txns
    }

    /// The current incarnation and status of a transaction (for tests and diagnostics).
    pub fn status(&self, txn_idx: TxnIndex) -> (Incarnation, TxnStatus) {
        let st = self.txns[txn_idx].lock();
        (st.incarnation, st.status)
    }

    /// Number of committed transactions.
    pub fn committed(&self) -> usize {
        // Acquire: pairs with the release store in `try_commit_next`.
        self.committed.load(Ordering::Acquire)
    }

    /// A readable dump of the scheduler and of the transactions around the commit point, for
    /// watchdog and invariant-violation reports.
    pub fn dump(&self) -> String {
        let committed = self.committed();
        let mut out = format!("{self:?}; transactions from the commit point:");
        for idx in committed..self.num_txns.min(committed + 16) {
            let st = self.txns[idx].lock();
            out += &format!(
                "\n  {idx}: incarnation {} {:?}, max_triggered_wave {}, validated_wave {:?}, waiting {:?}",
                st.incarnation, st.status, st.max_triggered_wave, st.validated_wave, st.dependents
            );
        }
        out
    }

    /// Whether workers should stop: every transaction committed, or the block was halted.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.halted.load(Ordering::Acquire) || self.committed() == self.num_txns
    }

    /// Whether the block was halted (cheaper than [`Self::is_done`]: the flag is written once,
    /// while `committed` changes on every commit, so workers poll this one between tasks).
    #[inline]
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Stops handing out tasks; workers finish what they hold and leave.
    pub fn halt(&self) {
        // Release: pairs with the acquire load in `is_done`; nothing else depends on it.
        self.halted.store(true, Ordering::Release);
    }

    /// Why the scheduler halted, if it did.
    pub fn halt_reason(&self) -> Option<HaltReason> {
        if let Some(txn_idx) = *self.livelock.lock() {
            return Some(HaltReason::Livelock { txn_idx });
        }
        self.halted.load(Ordering::Acquire).then_some(HaltReason::Requested)
    }

    /// Waits while `txn_idx` is executing (its ESTIMATE is about to be replaced), and tells
    /// whether it then finished executing: if so, the caller re-reads instead of aborting.
    ///
    /// Only an executing transaction is waited for, never a ready one: a thread waits only for a
    /// strictly lower transaction that another thread is running, so every chain of waits ends
    /// at a thread that is not waiting, and nothing deadlocks. A halted block stops the wait.
    pub fn wait_while_executing(&self, txn_idx: TxnIndex) -> bool {
        let mut wait = SpinWait::new();
        loop {
            match self.txns[txn_idx].lock().status {
                TxnStatus::Executed | TxnStatus::Committed => return true,
                TxnStatus::Executing if !self.halted.load(Ordering::Acquire) => {}
                _ => return false,
            }
            wait.wait();
        }
    }

    /// Whether every transaction below `txn_idx` is committed. An incarnation that starts
    /// executing after this returned true reads only final values, so it can never fail
    /// validation: finish it with [`FinishExecution::final_reads`].
    ///
    /// Acquire (in `committed`): pairs with the release store of the commit, so the caller's
    /// later reads see every write of the committed transactions.
    #[inline]
    pub fn all_below_committed(&self, txn_idx: TxnIndex) -> bool {
        self.committed() == txn_idx
    }

    /// The paper's completion check: no index left to hand out, no task in flight, and no
    /// decrease of an index while this was being checked. Once true it stays true, and every
    /// transaction is then committable. The executor uses it to detect an invariant violation
    /// (idle but not all committed) instead of spinning forever.
    pub fn idle_complete(&self) -> bool {
        let observed = self.idx.decrease_cnt.load(Ordering::SeqCst);
        let (_, validation_idx) = unpack(self.idx.validation_idx.load(Ordering::SeqCst));
        let execution_idx = self.idx.execution_idx.load(Ordering::SeqCst);
        execution_idx.min(validation_idx) >= self.num_txns
            && self.idx.num_active_tasks.load(Ordering::SeqCst) == 0
            && observed == self.idx.decrease_cnt.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod test;

#[cfg(all(test, loom))]
mod loom_test;
