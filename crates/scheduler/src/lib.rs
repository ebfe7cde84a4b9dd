//! The collaborative scheduler of Block-STM, with a rolling commit.
//!
//! The scheduler knows nothing of keys or values: it hands out tasks ("execute incarnation
//! `(i, n)`", "validate incarnation `(i, n)`"), tracks the status of every transaction, parks
//! transactions that read an `ESTIMATE` until their blocker finishes, and decides when each
//! transaction is final (committed), in block order, while the block still runs.
//!
//! # Per-transaction state machine
//!
//! Each transaction has, under its own status lock, an incarnation number and a status:
//!
//! ```text
//!                         try_incarnate
//!   READY_TO_EXECUTE(n) ----------------> EXECUTING(n) ----finish_execution----> EXECUTED(n)
//!          ^                                   |                                  |    |
//!          |                 read an ESTIMATE of j: add_dependency(i, j)          |    | try_commit_next
//!          |                                   v                  try_validation_abort  v
//!          +---- resume (j finished) ---- ABORTING(n) <-----------------------------+  COMMITTED(n)
//!          |          n := n + 1               |
//!          +------ finish_abort, n := n + 1 ---+
//! ```
//!
//! | transition | who makes it |
//! |---|---|
//! | `READY(n) → EXECUTING(n)` | the thread that wins [`Scheduler::next_task`] or `finish_abort` for `i` |
//! | `EXECUTING(n) → EXECUTED(n)` | the thread executing `(i, n)`, in [`Scheduler::finish_execution`] |
//! | `EXECUTING(n) → ABORTING(n)` | the thread executing `(i, n)`, in [`Scheduler::add_dependency`] |
//! | `ABORTING(n) → READY(n+1)` | the thread finishing `j` (resume), or the validator that aborted `(i, n)` |
//! | `ABORTING(n) → EXECUTING(n+1)` | the thread finishing `j`, for the lowest transaction waiting for `j`, in [`Scheduler::finish_execution_continuing`] (the two steps above in one critical section) |
//! | `EXECUTED(n) → ABORTING(n)` | the one validator whose [`Scheduler::try_validation_abort`] wins |
//! | `EXECUTED(n) → COMMITTED(n)` | the thread holding the commit lock, in block order |
//!
//! Invariants: an incarnation executes at most once; only `EXECUTED` transactions are handed out
//! for validation; `COMMITTED` is final (never aborted, never re-validated).
//!
//! # Validation waves and the rolling commit
//!
//! `validation_idx` is packed with a *wave* number (see [`pack`]). Every time it is decreased
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
//! transaction that waited for its dependency hint: on mainnet blocks with long same-sender
//! chains that was four to five validations per transaction (228 for the 49 of block
//! 1796867; now 29). Waiting only delays validations, and a validation created later reads
//! newer memory, so the commit rule above is unchanged.
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

use blockstm_sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use blockstm_sync::{CachePadded, Mutex, MutexGuard, SpinMutex, SpinWait};
use std::fmt;

/// Position of a transaction in its block (same as `blockstm_mvmemory::TxnIndex`).
pub type TxnIndex = usize;
/// Incarnation number (same as `blockstm_mvmemory::Incarnation`).
pub type Incarnation = u32;
/// Validation wave: how many times `validation_idx` was decreased before a validation was made.
pub type Wave = u32;

/// An incarnation of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The transaction.
    pub txn_idx: TxnIndex,
    /// Its incarnation.
    pub incarnation: Incarnation,
}

impl Version {
    /// Incarnation `incarnation` of transaction `txn_idx`.
    pub const fn new(txn_idx: TxnIndex, incarnation: Incarnation) -> Self {
        Self { txn_idx, incarnation }
    }
}

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

/// What a worker runs after finishing an execution, from
/// [`Scheduler::finish_execution_continuing`]: the validation first (it is cheap, and once it
/// passes the finished transaction can commit, so the resumed one may find everything below it
/// committed and need no validation), then the resumed execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// The validation of the finished incarnation, when it is the caller's to run.
    pub validation: Option<Task>,
    /// The lowest transaction that waited for the finished one, `EXECUTING` this incarnation
    /// for the caller.
    pub resumed: Option<Version>,
}

/// Status of a transaction. See the [crate docs](crate) for the state machine.
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
    /// The worker that claimed the current incarnation ([`Worker::id`]): with batched claims,
    /// the scan of `validation_idx` leaves its validation to that worker while executions
    /// remain (see [`Worker`]).
    owner: u16,
}

#[derive(Debug)]
struct CommitCursor {
    /// The next transaction to commit.
    next: TxnIndex,
    /// `max(max_triggered_wave)` over transactions `0..=next` seen so far.
    wave: Wave,
}

/// Default indices handed out with no conflict in sight before a worker's claims grow past
/// one transaction (see [`Worker`]). Measured on the bench workloads at two threads: with
/// growth after a single clean claim, the hot counter, the fee account and p2p over 2
/// accounts ran 10-30 % slower than with claims of one; from 256 they are within noise.
pub const CALM_TXNS: usize = 256;

/// No worker: the owner of a transaction claimed through the one-task-at-a-time API.
const NO_OWNER: u16 = u16::MAX;

/// One worker thread's side of the scheduler: its identity, its claim on a run of consecutive
/// execution indices, and the task-count decrements it has not published yet. Owned by the
/// worker, never shared; pass the same one to every call the worker makes.
///
/// With a batch of 1 the scheduler is the paper's: every claim takes one index, every task
/// ends with its own decrement of the shared count. With a batch of `k > 1`:
///
/// - **Claims.** An execution claim takes `k` consecutive indices in one fetch-and-add of
///   `execution_idx` and counts `k` tasks at once. The worker then runs them in order, each
///   through the same `READY → EXECUTING` transition under its status lock as a single claim
///   (an index the execution index came back to may have been claimed by another worker
///   meanwhile: the status decides, and the loser passes it).
/// - **Validations.** A first incarnation (`n = 0`) finishes without looking at
///   `validation_idx`. The index cannot be above a transaction that never executed (it only
///   passes `EXECUTED` or `COMMITTED` ones), so no new wave is needed, and the scan claims the
///   validation later. While executions remain, the scan leaves a transaction's validation to
///   the worker that executed it: that worker's cache holds its status, read set and writes.
///   When none remain, anyone validates anything, so nothing waits for a busy owner for good.
/// - **Size.** Claims take one index until `calm_txns` indices were handed out with no
///   conflict anywhere in the block (an abort, or a transaction parked on another) seen by the
///   worker; then each claim doubles the size, up to the maximum, and the next conflict it
///   sees brings it back to one. A batch runs ahead of the validations below it, so on a
///   contended block its transactions read stale values and run twice (measured: hot counter
///   1.33x at a batch of 1, 0.79x at a fixed 4; growing after one clean claim still lost
///   0.89x): there claims stay at one and the scheduler is the paper's. Blocks smaller than
///   `calm_txns` never batch.
/// - **Counts.** A finished task's decrement of `num_active_tasks` stays with the worker and
///   is paid by its next claim (a claim that can reuse it counts nothing new), or published
///   when the worker finds no task. The shared count is then never below the tasks really
///   active, so the completion check ([`Scheduler::idle_complete`]) can be late, never early.
///
/// Why: with one index per claim neighbouring transactions alternate between the cores, and
/// each one's status, result slot and validation, the shared indices and the commit cursor
/// all move between caches once per transaction. In a batch they move once per batch.
#[derive(Debug)]
pub struct Worker {
    id: u16,
    /// Indices per claim now: 1 until `calm_txns` indices were handed out since the latest
    /// conflict this worker saw, then doubling with each claim, up to `max_batch`.
    batch: usize,
    max_batch: usize,
    calm_txns: usize,
    /// [`Scheduler`]'s conflict count when this worker last claimed.
    conflicts_seen: usize,
    /// `execution_idx` at this worker's first claim after it saw the latest conflict.
    calm_from: TxnIndex,
    /// The claimed indices not run yet: `next..end`.
    next: TxnIndex,
    end: TxnIndex,
    /// Finished tasks not yet subtracted from `num_active_tasks`.
    released: usize,
}

impl Worker {
    /// Worker `id` (distinct per thread of a block), claiming up to `max_batch` execution
    /// indices at a time once `calm_txns` were handed out with no conflict in sight (see
    /// above; [`CALM_TXNS`] is the measured default). A `max_batch` of 1 is the paper's
    /// scheduler.
    pub fn new(id: usize, max_batch: usize, calm_txns: usize) -> Self {
        let id = u16::try_from(id).unwrap_or(NO_OWNER - 1).min(NO_OWNER - 1);
        let max_batch = max_batch.max(1);
        Self {
            id,
            batch: 1,
            max_batch,
            calm_txns,
            conflicts_seen: 0,
            calm_from: 0,
            next: 0,
            end: 0,
            released: 0,
        }
    }

    /// A caller that takes one task at a time and owns no transaction: what the methods
    /// without a worker argument use.
    fn single() -> Self {
        Self { id: NO_OWNER, ..Self::new(0, 1, 0) }
    }

    /// Indices the next execution claim takes, unless a conflict happens first.
    pub fn batch(&self) -> usize {
        self.batch
    }

    fn batched(&self) -> bool {
        self.batch > 1
    }
}

/// Why the scheduler stopped handing out work before every transaction committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltReason {
    /// The executor asked (the block ended early or failed at a committed transaction).
    Requested,
    /// A transaction reached the incarnation limit: the executor should finish sequentially.
    Livelock {
        /// The transaction that reached the limit.
        txn_idx: TxnIndex,
    },
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
    /// Not padded: padding each status to a cache line (neighbouring transactions often run on
    /// different threads) measured no gain on 2 cores, 1.65x against 1.74x unpadded on
    /// independent transfers, within noise, for 2.5x the memory. See docs/design.md, "Padding".
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

    /// The next task, preferring the lower of the next validation and the next execution.
    /// `None` means no task right now (not that the block is done: see [`Self::is_done`]).
    /// One task at a time, owned by no worker; workers use [`Self::next_task_for`].
    pub fn next_task(&self) -> Option<Task> {
        self.next_task_for(&mut Worker::single())
    }

    /// The next task for worker `w`: an index it already claimed, else the next validation if
    /// it is below the next execution, else a new execution claim ([`Worker`] describes the
    /// batched claims). `None` means no task right now; the worker's pending decrements of the
    /// task count are then published, so the completion check can see it idle.
    pub fn next_task_for(&self, w: &mut Worker) -> Option<Task> {
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
    fn count_task(&self, w: &mut Worker) {
        if w.released > 0 {
            w.released -= 1;
        } else {
            self.idx.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Ends `tasks` of `w`'s tasks: at once without batching, else when `w` next claims or
    /// finds nothing to do (see [`Worker`]).
    fn end_tasks(&self, w: &mut Worker, tasks: usize) {
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
                // workers as ready transactions; not measurable on 2 cores).
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
    fn try_incarnate(&self, idx: TxnIndex, owner: u16) -> Option<Version> {
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

    /// `ABORTING(n) → READY(n+1)`, under the caller's status lock. Trips the livelock guard when
    /// the incarnation limit is passed.
    fn make_ready(&self, txn_idx: TxnIndex, st: &mut TxnState) {
        debug_assert_eq!(st.status, TxnStatus::Aborting);
        st.incarnation += 1;
        st.status = TxnStatus::ReadyToExecute;
        st.validated_wave = None;
        if st.incarnation >= self.max_incarnations {
            self.livelock.lock().get_or_insert(txn_idx);
            self.halt();
        }
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

    /// Transaction `txn_idx`, executing, read an `ESTIMATE` of `blocking`. Returns true if it
    /// now waits (`EXECUTING → ABORTING`; it is resumed when `blocking` finishes executing, and
    /// the caller's task is over), false if `blocking` already finished, in which case the
    /// caller re-executes the same incarnation at once.
    pub fn add_dependency(&self, txn_idx: TxnIndex, blocking: TxnIndex) -> bool {
        self.add_dependency_for(&mut Worker::single(), txn_idx, blocking)
    }

    /// [`Self::add_dependency`] for worker `w`, the one executing `txn_idx`.
    pub fn add_dependency_for(&self, w: &mut Worker, txn_idx: TxnIndex, blocking: TxnIndex) -> bool {
        debug_assert!(blocking < txn_idx);
        // Lock order: status(blocking) → status(txn_idx), the lower index first. Holding the
        // blocker's lock while registering means its finish_execution (which sets EXECUTED and
        // takes the dependents under that lock) either happened before, and we retry, or
        // happens after, and resumes us.
        let mut blocker = self.txns[blocking].lock();
        if matches!(blocker.status, TxnStatus::Executed | TxnStatus::Committed) {
            return false;
        }
        {
            let mut st = self.txns[txn_idx].lock();
            debug_assert_eq!(st.status, TxnStatus::Executing);
            st.status = TxnStatus::Aborting;
        }
        blocker.dependents.push(txn_idx);
        drop(blocker);
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        self.end_tasks(w, 1);
        true
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
    /// validation: finish it with [`Self::finish_execution_final`].
    ///
    /// Acquire (in `committed`): pairs with the release store of the commit, so the caller's
    /// later reads see every write of the committed transactions.
    #[inline]
    pub fn all_below_committed(&self, txn_idx: TxnIndex) -> bool {
        self.committed() == txn_idx
    }

    /// `(txn_idx, incarnation)` finished and its writes are recorded (`EXECUTING → EXECUTED`).
    /// Resumes the transactions waiting for it. Returns the validation of this incarnation if
    /// the caller should do it now.
    ///
    /// Every transaction that waited for this one is made ready for whichever worker claims it
    /// through the execution index (the paper's resume); see
    /// [`Self::finish_execution_continuing`] for the variant that keeps one for the caller.
    pub fn finish_execution(&self, version: Version, wrote_new_location: bool) -> Option<Task> {
        self.finish_execution_for(&mut Worker::single(), version, wrote_new_location, false, false).validation
    }

    /// Like [`Self::finish_execution`] for an incarnation that started when
    /// [`Self::all_below_committed`] held: it is marked validated for good (`FINAL_WAVE`),
    /// needs no validation task, and may commit at once.
    pub fn finish_execution_final(&self, version: Version, wrote_new_location: bool) -> Option<Task> {
        self.finish_execution_for(&mut Worker::single(), version, wrote_new_location, true, false).validation
    }

    /// [`Self::finish_execution`] (or, with `final_reads`, [`Self::finish_execution_final`])
    /// that hands the caller the lowest transaction that waited for this one, already
    /// `EXECUTING` its next incarnation, besides the validation to run.
    ///
    /// Why: a transaction that waited for `i` reads what `i` wrote, and in a chain (one sender's
    /// transactions, each hinted to the previous one) so does every link after it. Resumed
    /// through the execution index, the next link went to whichever worker asked first, so
    /// the links alternated between the cores and each one fetched the previous link's state
    /// from the other core's cache: on block 1796867 (27 links of ~7.5 us sequentially) a
    /// link took ~12 us at two threads. Continuing on the thread that ran `i` keeps the chain
    /// on one core while the other workers take the rest of the block, the schedule the
    /// oracle bound assumes (measured: ~10 us a link, against 7.8 us at one thread; the idle
    /// worker's spinning costs the rest, docs/benchmarks.md "Session 10"). The other waiters
    /// are resumed through the execution index.
    pub fn finish_execution_continuing(
        &self,
        version: Version,
        wrote_new_location: bool,
        final_reads: bool,
    ) -> FollowUp {
        self.finish_execution_for(&mut Worker::single(), version, wrote_new_location, final_reads, true)
    }

    /// The three above for worker `w`, the one that executed `version`: `final_reads` as in
    /// [`Self::finish_execution_final`], `continue_with_dependent` as in
    /// [`Self::finish_execution_continuing`]. With batched claims a first incarnation leaves
    /// its validation to the scan (see [`Worker`]).
    pub fn finish_execution_for(
        &self,
        w: &mut Worker,
        version: Version,
        wrote_new_location: bool,
        final_reads: bool,
        continue_with_dependent: bool,
    ) -> FollowUp {
        let Version { txn_idx, incarnation } = version;
        let (task, dependents) = {
            let mut st = self.txns[txn_idx].lock();
            debug_assert_eq!((st.incarnation, st.status), (incarnation, TxnStatus::Executing));
            st.status = TxnStatus::Executed;
            if final_reads {
                st.validated_wave = Some(FINAL_WAVE);
            }
            let task = if w.batched() && incarnation == 0 {
                // `validation_idx` only passes executed transactions, so it is at or below this
                // one, which never executed before: no validation above it exists in this wave
                // and none is owed, and the scan will claim this one's (see [`Worker`]).
                None
            } else {
                self.own_validation(&mut st, version, wrote_new_location, final_reads)
            };
            (task, std::mem::take(&mut st.dependents))
        };
        let resumed = if continue_with_dependent {
            self.resume_claiming_lowest(w, dependents)
        } else {
            self.resume(&dependents);
            None
        };
        // The caller's task (this execution) carries over to its validation; the resumed
        // execution was counted when it was claimed.
        if task.is_none() {
            self.end_tasks(w, 1);
        }
        FollowUp { validation: task, resumed }
    }

    /// Under `version`'s status lock, just made `EXECUTED`: claims its validation from the
    /// scan if the scan waits at it, starts a new wave for the transactions above if it wrote
    /// a new location after the scan passed it, and returns the validation the caller runs now
    /// (none if `final_reads`, or if the scan is still below it and will come for it).
    fn own_validation(
        &self,
        st: &mut TxnState,
        version: Version,
        wrote_new_location: bool,
        final_reads: bool,
    ) -> Option<Task> {
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
            (!final_reads).then_some(Task::Validate { version, wave })
        } else if validation_idx > txn_idx {
            if wrote_new_location
                // Higher transactions may have read around a location that now exists:
                // re-validate them, in a new wave this transaction answers for. From
                // `txn_idx + 1`, not `txn_idx` (the paper's choice): this transaction's own
                // validation is the task returned here, which saves the round trip through
                // the shared index, its claim and its task count (measured: ~3 % of a
                // two-thread run of independent transfers). It carries the new wave: it is
                // created after the decrease, so it reads the memory the wave stands for.
                && let Some(new_wave) = self.decrease_validation_idx(txn_idx + 1)
            {
                st.max_triggered_wave = st.max_triggered_wave.max(new_wave);
                wave = new_wave;
            }
            (!final_reads).then_some(Task::Validate { version, wave })
        } else {
            None
        }
    }

    fn resume(&self, dependents: &[TxnIndex]) {
        for &dep in dependents {
            let mut st = self.txns[dep].lock();
            self.make_ready(dep, &mut st);
        }
        if let Some(&min) = dependents.iter().min() {
            self.decrease_execution_idx(min);
        }
    }

    /// [`Self::resume`], except that the lowest dependent goes straight from `ABORTING(n)` to
    /// `EXECUTING(n+1)` for the caller, under its status lock, so no other worker ever sees it
    /// ready; the execution index need not come back for it. Its task is counted first (see
    /// "Memory ordering"). Not claimed when its resume tripped the livelock guard.
    fn resume_claiming_lowest(&self, w: &mut Worker, mut dependents: Vec<TxnIndex>) -> Option<Version> {
        let lowest = dependents.iter().enumerate().min_by_key(|&(_, &dep)| dep).map(|(i, _)| i)?;
        let claimed = dependents.swap_remove(lowest);
        self.resume(&dependents);
        self.count_task(w);
        let mut st = self.txns[claimed].lock();
        self.make_ready(claimed, &mut st);
        if self.is_halted() {
            // Leave it ready (the block is ending anyway) and give the count back.
            drop(st);
            self.end_tasks(w, 1);
            self.decrease_execution_idx(claimed);
            return None;
        }
        st.status = TxnStatus::Executing;
        st.owner = w.id;
        Some(Version::new(claimed, st.incarnation))
    }

    /// A validation of `version` failed. Returns true for exactly one caller per incarnation
    /// (`EXECUTED(n) → ABORTING(n)`); that caller must turn the incarnation's writes into
    /// `ESTIMATE`s and then call [`Self::finish_abort`].
    pub fn try_validation_abort(&self, version: Version) -> bool {
        let mut st = self.txns[version.txn_idx].lock();
        if st.incarnation == version.incarnation && st.status == TxnStatus::Executed {
            st.status = TxnStatus::Aborting;
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// A validation of `version` created in `wave` succeeded; the task is over.
    pub fn finish_validation(&self, version: Version, wave: Wave) {
        self.finish_validation_for(&mut Worker::single(), version, wave);
    }

    /// [`Self::finish_validation`] for worker `w`, the validator.
    pub fn finish_validation_for(&self, w: &mut Worker, version: Version, wave: Wave) {
        {
            let mut st = self.txns[version.txn_idx].lock();
            if st.incarnation == version.incarnation && st.status == TxnStatus::Executed {
                st.validated_wave = Some(st.validated_wave.map_or(wave, |w| w.max(wave)));
            }
        }
        self.end_tasks(w, 1);
    }

    /// A validation of `version` failed but another thread aborted it (or it moved on); the
    /// task is over.
    pub fn finish_failed_validation(&self) {
        self.finish_failed_validation_for(&mut Worker::single());
    }

    /// [`Self::finish_failed_validation`] for worker `w`, the validator.
    pub fn finish_failed_validation_for(&self, w: &mut Worker) {
        self.end_tasks(w, 1);
    }

    /// The caller won [`Self::try_validation_abort`] for `version` and turned its writes into
    /// `ESTIMATE`s. Makes the next incarnation ready (`ABORTING(n) → READY(n+1)`), schedules
    /// re-validation of every higher transaction, and returns the re-execution if the caller
    /// should do it now.
    pub fn finish_abort(&self, version: Version) -> Option<Task> {
        self.finish_abort_for(&mut Worker::single(), version)
    }

    /// [`Self::finish_abort`] for worker `w`, the validator that aborted `version`.
    pub fn finish_abort_for(&self, w: &mut Worker, version: Version) -> Option<Task> {
        let txn_idx = version.txn_idx;
        {
            // Under the status lock, so that no thread can re-execute and commit this
            // transaction before its triggered wave is recorded (see the crate docs).
            let mut st = self.txns[txn_idx].lock();
            debug_assert_eq!((st.incarnation, st.status), (version.incarnation, TxnStatus::Aborting));
            self.make_ready(txn_idx, &mut st);
            if let Some(new_wave) = self.decrease_validation_idx(txn_idx + 1) {
                st.max_triggered_wave = st.max_triggered_wave.max(new_wave);
            }
        }
        if self.idx.execution_idx.load(Ordering::SeqCst) > txn_idx
            && !self.halted.load(Ordering::Acquire)
            && let Some(next) = self.try_incarnate(txn_idx, w.id)
        {
            return Some(Task::Execute(next));
        }
        self.end_tasks(w, 1);
        None
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

#[cfg(test)]
mod test;

#[cfg(all(test, loom))]
mod loom_test;
