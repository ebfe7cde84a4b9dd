//! One worker thread's side of the scheduler: its claims and its pending task counts.

use crate::TxnIndex;

/// Default indices handed out with no conflict in sight before a worker's claims grow past
/// one transaction (see [`Worker`]). Below this, contended workloads (a hot counter, a fee
/// account, transfers over two accounts) run slower than with claims of one; from here they
/// are within noise (`blockstm bench -w hot-counter,fee-account,p2p-2 --batch 1` against the
/// default).
pub const CALM_TXNS: usize = 256;

/// No worker: the owner of a transaction no worker has claimed yet.
pub(crate) const NO_OWNER: u16 = u16::MAX;

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
///   contended block its transactions read stale values and run twice: there claims stay at
///   one and the scheduler is the paper's. Blocks smaller than `calm_txns` never batch.
/// - **Counts.** A finished task's decrement of `num_active_tasks` stays with the worker and
///   is paid by its next claim (a claim that can reuse it counts nothing new), or published
///   when the worker finds no task. The shared count is then never below the tasks really
///   active, so the completion check ([`Scheduler::idle_complete`](crate::Scheduler::idle_complete)) can be late, never early.
///
/// Why: with one index per claim neighbouring transactions alternate between the cores, and
/// each one's status, result slot and validation, the shared indices and the commit cursor
/// all move between caches once per transaction. In a batch they move once per batch.
#[derive(Debug)]
pub struct Worker {
    pub(crate) id: u16,
    /// Indices per claim now: 1 until `calm_txns` indices were handed out since the latest
    /// conflict this worker saw, then doubling with each claim, up to `max_batch`.
    pub(crate) batch: usize,
    pub(crate) max_batch: usize,
    pub(crate) calm_txns: usize,
    /// [`Scheduler`](crate::Scheduler)'s conflict count when this worker last claimed.
    pub(crate) conflicts_seen: usize,
    /// `execution_idx` at this worker's first claim after it saw the latest conflict.
    pub(crate) calm_from: TxnIndex,
    /// The claimed indices not run yet: `next..end`.
    pub(crate) next: TxnIndex,
    pub(crate) end: TxnIndex,
    /// Finished tasks not yet subtracted from `num_active_tasks`.
    pub(crate) released: usize,
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

    /// Indices the next execution claim takes, unless a conflict happens first.
    pub fn batch(&self) -> usize {
        self.batch
    }

    pub(crate) fn batched(&self) -> bool {
        self.batch > 1
    }
}
