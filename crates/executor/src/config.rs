//! Executor configuration.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

/// Default [`Config::max_incarnations`]: a transaction aborted this often is in a livelock
/// that finishing the block sequentially ends.
pub const DEFAULT_MAX_INCARNATIONS: u32 = 256;

/// The largest claim of execution indices when [`Config::with_batch`] is not set.
pub const AUTO_BATCH: usize = 16;

/// How the parallel executor runs a block.
///
/// ```
/// use blockstm_executor::{Config, ConfigError};
///
/// let config = Config::new(8)?.with_max_incarnations(100).with_adaptive(false);
/// assert_eq!(config.threads(), 8);
/// assert_eq!(Config::new(0), Err(ConfigError::ZeroThreads));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    threads: NonZeroUsize,
    max_incarnations: u32,
    watchdog: Option<Duration>,
    adaptive: bool,
    min_parallel_txns: usize,
    min_mean_cost: u64,
    batch: Option<NonZeroUsize>,
    batch_calm_txns: usize,
}

impl Config {
    /// `threads` worker threads (the calling thread is one of them). Blocks with fewer
    /// transactions than threads use one thread per transaction.
    pub fn new(threads: usize) -> Result<Self, ConfigError> {
        let threads = NonZeroUsize::new(threads).ok_or(ConfigError::ZeroThreads)?;
        Ok(Self {
            threads,
            max_incarnations: DEFAULT_MAX_INCARNATIONS,
            watchdog: None,
            adaptive: true,
            min_parallel_txns: 0,
            min_mean_cost: 0,
            batch: None,
            batch_calm_txns: blockstm_scheduler::CALM_TXNS,
        })
    }

    /// Livelock guard: a transaction may run at most `max_incarnations` incarnations. When one
    /// would need more, the parallel run stops and the rest of the block runs sequentially after
    /// the committed prefix (same result; [`Stats::fallback_from`](crate::Stats::fallback_from)
    /// says so). 1 falls back at the first abort; 0 is taken as 1 (every transaction runs at
    /// least once).
    pub fn with_max_incarnations(self, max_incarnations: u32) -> Self {
        Self { max_incarnations: max_incarnations.max(1), ..self }
    }

    /// Watchdog: if the block is not finished after `limit` and a worker finds nothing to do,
    /// the block fails with [`BlockError::Internal`](crate::BlockError::Internal) carrying a dump
    /// of the scheduler's state, instead of waiting forever. A safety net against bugs in
    /// blockstm (the stress suite runs with it); off by default, since a slow VM is not a bug.
    pub fn with_watchdog(self, limit: Duration) -> Self {
        Self { watchdog: Some(limit), ..self }
    }

    /// Adaptive choice of the sequential path (on by default):
    ///
    /// - with one worker thread the block runs on the sequential baseline (one worker overlaps
    ///   nothing, so the Block-STM machinery could only cost);
    /// - in a block of at least [`ADAPTIVE_MIN_TXNS`](crate::tuning::ADAPTIVE_MIN_TXNS) transactions, once
    ///   [`ADAPTIVE_WINDOW`](crate::tuning::ADAPTIVE_WINDOW) have committed since the last worker thread
    ///   started, the run compares itself with sequential execution: if those transactions times
    ///   their mean execution time (waits excluded), over the time elapsed since that start, is
    ///   below [`ADAPTIVE_MIN_PARALLELISM`](crate::tuning::ADAPTIVE_MIN_PARALLELISM) (1.1), the parallel
    ///   run is not clearly faster than one thread would be (a dependency chain, a single hot
    ///   location), and the rest of the block runs sequentially from the committed prefix;
    /// - a block with fewer than [`min_parallel_txns`](Self::with_min_parallel_txns)
    ///   transactions runs on the sequential baseline;
    /// - when the VM gives a [cost estimate](crate::Vm::cost_estimate), a block whose
    ///   transactions cost less than [`min_mean_cost`](Self::with_min_mean_cost) each on
    ///   average runs on the sequential baseline;
    /// - when the VM gives [dependency hints](crate::Vm::dependency_hints), a block whose hints
    ///   chain so many transactions that the block's transactions over the longest chain is
    ///   below [`HINTED_MIN_PARALLELISM`](crate::tuning::HINTED_MIN_PARALLELISM) (one sender paying
    ///   everybody) runs on the sequential baseline, unless the VM's
    ///   [cost estimates](crate::Vm::cost_estimate) put the block's cost over the chain's at
    ///   or above that bound (a chain of cheap transfers beside a few heavy calls).
    ///
    /// The result is the same either way; [`Stats::fallback`](crate::Stats::fallback) says what
    /// happened. Off, every block runs entirely on Block-STM (tests use this to exercise it).
    pub fn with_adaptive(self, adaptive: bool) -> Self {
        Self { adaptive, ..self }
    }

    /// The adaptive choice runs blocks of fewer than `txns` transactions on the sequential
    /// baseline (0, the default, never): below some size, starting and coordinating threads
    /// costs more than they save. The size depends on the VM's cost per transaction; measure it
    /// (the EVM's is `blockstm_evm::MIN_PARALLEL_TXNS`, set with `blockstm_evm::adaptive_rules`).
    pub fn with_min_parallel_txns(self, txns: usize) -> Self {
        Self { min_parallel_txns: txns, ..self }
    }

    /// See [`with_min_parallel_txns`](Self::with_min_parallel_txns).
    pub fn min_parallel_txns(&self) -> usize {
        self.min_parallel_txns
    }

    /// The adaptive choice runs a block on the sequential baseline when the VM's
    /// [cost estimate](crate::Vm::cost_estimate) of it, divided by its transactions, is below
    /// `cost` (0, the default, never; a VM without estimates is never affected): each
    /// transaction then costs so little that the executor's own work per transaction takes
    /// what the threads would gain. In the VM's unit; measure it (the EVM's, in gas, is
    /// `blockstm_evm::MIN_MEAN_GAS_LIMIT`).
    pub fn with_min_mean_cost(self, cost: u64) -> Self {
        Self { min_mean_cost: cost, ..self }
    }

    /// See [`with_min_mean_cost`](Self::with_min_mean_cost).
    pub fn min_mean_cost(&self) -> u64 {
        self.min_mean_cost
    }

    /// Each worker claims up to `batch` consecutive transactions at a time (0, the default,
    /// means [`AUTO_BATCH`](crate::tuning::AUTO_BATCH)). It runs them in order, then validates them itself, so their state
    /// stays in its core's cache and the scheduler's shared lines move once per claim instead
    /// of once per transaction. Claims start at one transaction, double while the block runs
    /// without conflicts and fall back to one at any abort or dependency wait, so contended
    /// blocks run the paper's scheduler. 1 always claims one.
    pub fn with_batch(self, batch: usize) -> Self {
        Self { batch: NonZeroUsize::new(batch), ..self }
    }

    /// The largest claim, [`with_batch`](Self::with_batch).
    pub fn batch(&self) -> usize {
        self.batch.map_or(AUTO_BATCH, NonZeroUsize::get)
    }

    /// Claims grow past one transaction only after `txns` were handed out with no conflict in
    /// sight ([`CALM_TXNS`](crate::tuning::CALM_TXNS) by default, so blocks smaller than that never
    /// batch). Tests set 0 to exercise batched claims on small blocks.
    pub fn with_batch_calm_txns(self, txns: usize) -> Self {
        Self { batch_calm_txns: txns, ..self }
    }

    /// See [`with_batch_calm_txns`](Self::with_batch_calm_txns).
    pub fn batch_calm_txns(&self) -> usize {
        self.batch_calm_txns
    }

    /// Whether the adaptive choice is on.
    pub fn adaptive(&self) -> bool {
        self.adaptive
    }

    /// The watchdog's limit, if set.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads.get()
    }

    /// The livelock guard's limit.
    pub fn max_incarnations(&self) -> u32 {
        self.max_incarnations
    }
}

impl Default for Config {
    /// One thread per available core.
    fn default() -> Self {
        let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Self { threads, ..Self::new(1).expect("one thread is a valid configuration") }
    }
}

/// A configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A thread count of zero.
    ZeroThreads,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroThreads => f.write_str("thread count must be at least 1, got 0"),
        }
    }
}

impl std::error::Error for ConfigError {}
