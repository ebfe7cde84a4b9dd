//! The adaptive rule: when a block runs on the sequential path instead of Block-STM.
//!
//! Before the block ([`ParallelExecutor::plan`]): one thread, a small block, cheap
//! transactions, or dependency hints that chain most of the block. During the block
//! ([`Warmup`]): the parallelism measured over a warm-up window of commits. The rules and
//! their defaults are described on [`Config::with_adaptive`](crate::Config::with_adaptive).

use super::ParallelExecutor;
use crate::sequential::sequential_block;
use crate::{BlockResult, CommitHook, Fallback, Stats, Storage, Vm};
use blockstm_mvmemory::TxnIndex;
use blockstm_sync::Mutex;
use blockstm_sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Commits after which the adaptive rule measures the run (see [`Config::with_adaptive`](crate::Config::with_adaptive)).
pub const ADAPTIVE_WINDOW: usize = 256;

/// Smallest block the adaptive rule measures: below it the rest of the block after the window
/// would be too short for switching to pay off.
pub const ADAPTIVE_MIN_TXNS: usize = 2 * ADAPTIVE_WINDOW;

/// Measured parallelism below which the adaptive rule finishes a block sequentially (see
/// [`Config::with_adaptive`](crate::Config::with_adaptive)). Above 1 on purpose: the measurement counts VM time only, so the
/// executor's own costs and the switch itself make a run that is barely ahead during the window
/// end up behind (`blockstm bench -w p2p-2,p2p-10 --no-adaptive` shows such blocks measuring
/// just above 1 and finishing slower than sequential).
pub const ADAPTIVE_MIN_PARALLELISM: f64 = 1.1;

/// The adaptive rule runs a block sequentially when its transactions over the longest chain of
/// [dependency hints](crate::Vm::dependency_hints) are below this, and so is its estimated
/// cost over the chain's (when the VM gives [cost estimates](crate::Vm::cost_estimate)): the
/// hints alone show that no schedule can be much faster than one thread (a block where one
/// exchange wallet pays everybody has 1.0 to 1.1 both ways). The cost matters when the chain
/// is many cheap transactions beside a few heavy ones, which can still run well in parallel.
pub const HINTED_MIN_PARALLELISM: f64 = 1.25;

/// The VM's hints as the executor uses them: none if there is not one entry per transaction,
/// and hints that are not lower than their transaction dropped.
fn valid_hints(mut hints: Vec<Option<TxnIndex>>, num_txns: usize) -> Vec<Option<TxnIndex>> {
    if hints.len() != num_txns {
        return Vec::new();
    }
    for (i, hint) in hints.iter_mut().enumerate() {
        *hint = hint.filter(|&h| h < i);
    }
    hints
}

/// The block's total weight over the weight of its longest chain of (valid) hints, each
/// transaction weighing `weight(i)`: an upper bound on the speedup any schedule that respects
/// the hints could reach. Infinite without hints or with a chain of weight 0.
fn hinted_parallelism(hints: &[Option<TxnIndex>], weight: impl Fn(TxnIndex) -> u64) -> f64 {
    let mut depth = vec![0u64; hints.len()];
    let mut total = 0u64;
    for (i, hint) in hints.iter().enumerate() {
        let w = weight(i);
        total = total.saturating_add(w);
        depth[i] = w.saturating_add(hint.map_or(0, |h| depth[h]));
    }
    let chain = depth.into_iter().max().unwrap_or(0);
    if chain == 0 { f64::INFINITY } else { total as f64 / chain as f64 }
}

impl<VM: Vm> ParallelExecutor<VM> {
    /// Whether the VM's cost estimate per transaction is below the configured minimum.
    fn cheap_transactions(&self, txns: &[VM::Transaction]) -> bool {
        let min = self.config.min_mean_cost();
        min > 0 && self.vm.cost_estimate(txns).is_some_and(|cost| (cost / txns.len().max(1) as u64) < min)
    }

    /// Whether the hints chain the block below [`HINTED_MIN_PARALLELISM`] by transaction count
    /// and, when the VM estimates each transaction's cost, by cost too.
    fn hints_chain_block(&self, txns: &[VM::Transaction], hints: &[Option<TxnIndex>]) -> bool {
        if hinted_parallelism(hints, |_| 1) >= HINTED_MIN_PARALLELISM {
            return false;
        }
        // Asked per transaction only for the few blocks the count already flags.
        let costs: Option<Vec<u64>> =
            txns.iter().map(|txn| self.vm.cost_estimate(std::slice::from_ref(txn))).collect();
        costs.is_none_or(|costs| hinted_parallelism(hints, |i| costs[i]) < HINTED_MIN_PARALLELISM)
    }

    /// The dependency hints for the parallel run, or why the adaptive rule runs the whole block
    /// on the sequential baseline. The rules that need no hints come first: a block they send
    /// to the sequential path does not pay for the hints.
    pub(super) fn plan(
        &self,
        threads: usize,
        txns: &[VM::Transaction],
    ) -> Result<Vec<Option<TxnIndex>>, Fallback> {
        let adaptive = self.config.adaptive();
        if adaptive {
            if threads == 1 {
                // One worker overlaps nothing: the sequential baseline is the fastest way.
                return Err(Fallback::SingleThread);
            }
            if txns.len() < self.config.min_parallel_txns() {
                return Err(Fallback::SmallBlock);
            }
            if self.cheap_transactions(txns) {
                return Err(Fallback::CheapTransactions);
            }
        }
        // Hints are not asked for a block that runs on one thread anyway.
        if threads == 1 {
            return Ok(Vec::new());
        }
        let hints = valid_hints(self.vm.dependency_hints(txns), txns.len());
        if adaptive && self.hints_chain_block(txns, &hints) {
            return Err(Fallback::HintedChain);
        }
        Ok(hints)
    }

    /// The whole block on the sequential baseline, as [`Self::plan`] chose for `reason`.
    pub(super) fn sequential<S, H>(
        &self,
        storage: &S,
        txns: &[VM::Transaction],
        hook: &mut H,
        threads: usize,
        reason: Fallback,
    ) -> BlockResult<VM>
    where
        S: Storage<VM::Key, VM::Value>,
        H: CommitHook<VM::Output> + ?Sized,
    {
        tracing::debug!(?reason, "adaptive rule: sequential block");
        let stats = Stats { threads, fallback: Some(reason), fallback_from: Some(0), ..Stats::default() };
        sequential_block(&self.vm, storage, txns, hook, stats)
    }
}

/// The adaptive rule's verdict at the end of its window.
#[derive(Clone, Copy, Debug)]
pub(super) struct Measured {
    /// Transactions committed in the window times their mean execution time, over the time
    /// the window took.
    pub(super) parallelism: f64,
    /// Below [`ADAPTIVE_MIN_PARALLELISM`]: the rest of the block runs sequentially.
    pub(super) sequential: bool,
}

/// Measurements of the adaptive rule's warm-up window. Relaxed everywhere: statistics read by
/// the committer; an execution counted a little late only shifts the estimate.
///
/// The window starts when the *last* worker starts, not when the block does: on a busy machine
/// a thread may start a millisecond late, which at a few microseconds per transaction is most
/// of a 256-transaction window, and the rule would then blame the block for the missing
/// worker. The window is the next [`ADAPTIVE_WINDOW`] commits after that.
#[derive(Debug)]
pub(super) struct Warmup {
    /// Set once the rule has decided; executions stop timing themselves then.
    decided: AtomicBool,
    /// Total VM time of executions during the window, waits excluded, in nanoseconds.
    exec_nanos: AtomicU64,
    /// Executions timed.
    execs: AtomicUsize,
    /// When the latest worker started and how many transactions were committed then. Locked
    /// once per worker and once by the committer when it decides.
    window_start: Mutex<(Instant, usize)>,
}

impl Warmup {
    pub(super) fn new() -> Self {
        Self {
            decided: AtomicBool::new(false),
            exec_nanos: AtomicU64::new(0),
            execs: AtomicUsize::new(0),
            window_start: Mutex::new((Instant::now(), 0)),
        }
    }

    /// A worker starts: the window restarts from here.
    pub(super) fn worker_started(&self, committed: usize) {
        let now = Instant::now();
        let mut start = self.window_start.lock();
        if now > start.0 {
            *start = (now, committed);
        }
    }

    /// The start of an execution to time, while the window is open.
    pub(super) fn timer(&self) -> Option<(&Self, Instant)> {
        (!self.decided.load(Ordering::Relaxed)).then(|| (self, Instant::now()))
    }

    /// An execution timed from [`Self::timer`] spent `busy` in the VM.
    pub(super) fn record(&self, busy: Duration) {
        self.exec_nanos.fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
        self.execs.fetch_add(1, Ordering::Relaxed);
    }

    /// Called by the committer after it committed `txn_idx`: the verdict if that commit closes
    /// the window.
    pub(super) fn measure(&self, txn_idx: TxnIndex) -> Option<Measured> {
        // No window can end earlier: skips the lock on the first commits.
        if txn_idx + 1 < ADAPTIVE_WINDOW {
            return None;
        }
        let (window_start, committed_then) = *self.window_start.lock();
        if txn_idx + 1 < committed_then + ADAPTIVE_WINDOW {
            return None;
        }
        self.decided.store(true, Ordering::Relaxed);
        let execs = self.execs.load(Ordering::Relaxed).max(1);
        let mean = self.exec_nanos.load(Ordering::Relaxed) as f64 / execs as f64;
        let elapsed = window_start.elapsed().as_nanos().max(1) as f64;
        let parallelism = (txn_idx + 1 - committed_then) as f64 * mean / elapsed;
        Some(Measured { parallelism, sequential: parallelism < ADAPTIVE_MIN_PARALLELISM })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_that_are_not_lower_are_dropped_and_a_wrong_length_means_none() {
        assert_eq!(
            valid_hints(vec![Some(0), Some(0), Some(5), Some(1)], 4),
            vec![None, Some(0), None, Some(1)]
        );
        assert!(valid_hints(vec![None, Some(0)], 3).is_empty());
    }

    #[test]
    fn hinted_parallelism_is_total_weight_over_the_heaviest_chain() {
        // 0 <- 1 <- 2, and 3 alone: 4 transactions over a chain of 3.
        let hints = [None, Some(0), Some(1), None];
        assert_eq!(hinted_parallelism(&hints, |_| 1), 4.0 / 3.0);
        // Weighted: the lone transaction is heavy, so the chain is short by cost.
        assert_eq!(hinted_parallelism(&hints, |i| if i == 3 { 9 } else { 1 }), 12.0 / 9.0);
        assert_eq!(hinted_parallelism(&[], |_| 1), f64::INFINITY);
    }
}
