//! The Block-STM parallel executor.
//!
//! [`ParallelExecutor`] plans a block (the adaptive rule may send it to the sequential path),
//! then runs it on plain worker threads that share one [`Block`]:
//!
//! - [`worker`]: the worker loop, executing and validating the tasks the scheduler hands out;
//! - [`view`]: what an incarnation reads below its own writes (the multi-version memory, then
//!   storage), captured for validation;
//! - [`commit`]: the rolling commit, in block order, with the commit hook and deltas;
//! - [`adaptive`]: the rules that choose the sequential path, before the block and after its
//!   warm-up window;
//! - [`teardown`]: the block's result, its final state taken out of the multi-version memory,
//!   and the sequential finish after a fallback.

mod adaptive;
mod commit;
mod teardown;
mod view;
mod worker;

pub use adaptive::{ADAPTIVE_MIN_PARALLELISM, ADAPTIVE_MIN_TXNS, ADAPTIVE_WINDOW, HINTED_MIN_PARALLELISM};

use crate::outcome::Outcome;
use crate::{BlockError, BlockExecutor, BlockOutput, BlockResult, CommitHook, Config, Stats, Storage, Vm};
use adaptive::{Measured, Warmup};
use blockstm_mvmemory::{InvariantError, MvMemory, TxnIndex};
use blockstm_scheduler::{MAX_TXNS, Scheduler};
use blockstm_sync::{Mutex, SpinMutex};
use blockstm_validator::ReadSet;
use std::fmt;
use worker::Counters;

/// Executes blocks with Block-STM on plain worker threads.
///
/// The calling thread is one of the workers; the others are scoped `std` threads started for
/// the block and joined before it returns. They are plain threads on purpose: a worker may wait
/// for another's transaction, which must never happen inside a work-stealing pool (see
/// `docs/design.md`).
///
/// ```
/// # use blockstm_executor::{Halt, TxnView, Vm};
/// # struct Inc;
/// # #[derive(Debug)] struct E;
/// # impl From<Halt> for E { fn from(_: Halt) -> Self { E } }
/// # impl Vm for Inc {
/// #     type Key = u8; type Value = u64; type Transaction = u8; type Output = u64; type Error = E;
/// #     type Delta = blockstm_executor::NoDelta;
/// #     fn execute<V: TxnView<u8, u64>>(&self, _: usize, key: &u8, view: &mut V) -> Result<u64, E> {
/// #         let n = view.read(key)?.unwrap_or(0) + 1;
/// #         view.write(*key, n);
/// #         Ok(n)
/// #     }
/// # }
/// use blockstm_executor::{BlockExecutor, Config, ParallelExecutor};
/// use std::collections::HashMap;
///
/// let storage: HashMap<u8, u64> = HashMap::new();
/// let executor = ParallelExecutor::new(Inc, Config::new(4).unwrap());
/// let out = executor.execute_block(&storage, &[1, 1, 2, 1]).unwrap();
/// assert_eq!(out.outputs, vec![1, 2, 1, 3]);
/// assert_eq!(out.state, vec![(1, 3), (2, 1)]);
/// ```
#[derive(Debug)]
pub struct ParallelExecutor<VM> {
    vm: VM,
    config: Config,
}

impl<VM: Vm> ParallelExecutor<VM> {
    /// A parallel executor for `vm`.
    pub fn new(vm: VM, config: Config) -> Self {
        Self { vm, config }
    }

    /// The VM.
    pub fn vm(&self) -> &VM {
        &self.vm
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl<VM: Vm> BlockExecutor<VM> for ParallelExecutor<VM> {
    fn execute_block_with_hook<S, H>(
        &self,
        storage: &S,
        txns: &[VM::Transaction],
        hook: &mut H,
    ) -> BlockResult<VM>
    where
        S: Storage<VM::Key, VM::Value>,
        H: CommitHook<VM::Output> + Send,
    {
        let num_txns = txns.len();
        if num_txns > MAX_TXNS {
            return Err(BlockError::TooManyTransactions { count: num_txns, max: MAX_TXNS });
        }
        let threads = self.config.threads().min(num_txns).max(1);
        let span = tracing::info_span!("blockstm_block", txns = num_txns, threads);
        let _entered = span.enter();
        if num_txns == 0 {
            let stats = Stats { threads, ..Stats::default() };
            return Ok(BlockOutput { outputs: Vec::new(), state: Vec::new(), ended_early: false, stats });
        }
        let hints = match self.plan(threads, txns) {
            Ok(hints) => hints,
            Err(reason) => return self.sequential(storage, txns, hook, threads, reason),
        };
        let block = Block::new(&self.vm, storage, txns, hints, &self.config, threads, hook);
        std::thread::scope(|scope| {
            for id in 1..threads {
                let block = &block;
                let span = &span;
                scope.spawn(move || {
                    let _entered = span.enter();
                    block.worker(id);
                });
            }
            block.worker(0);
        });
        block.finish(threads)
    }
}

/// How the commit sequence ended before the block did.
#[derive(Debug)]
enum End<E> {
    /// The hook ended the block after the last output.
    Hook,
    /// The block failed.
    Error(BlockError<E>),
}

/// Where committed outputs go, in block order. Only the holder of the scheduler's commit lock
/// touches it (lock order: commit lock → sink), so its mutex is never contended.
struct Sink<'h, O, E, H: ?Sized> {
    outputs: Vec<O>,
    hook: &'h mut H,
    end: Option<End<E>>,
    /// The adaptive rule's measurement, once its window closed.
    measured: Option<Measured>,
}

impl<O, E, H: ?Sized> Sink<'_, O, E, H> {
    /// Whether the commit sequence is over: the block ended, or the adaptive rule chose to
    /// finish it sequentially.
    fn closed(&self) -> bool {
        self.end.is_some() || self.measured.is_some_and(|m| m.sequential)
    }
}

/// What the latest executed incarnation of a transaction left for validation and commit.
///
/// Written by the executing thread before `finish_execution` publishes the incarnation as
/// EXECUTED (the scheduler's status lock orders this write before any validation or commit of
/// it); read under this lock by validators, taken by the committer. One mutex per transaction
/// rather than a lock-free cell: it is written once per execution and read about once, and a
/// lock-free swap cell cost more than the lock (docs/design.md, "Rejected designs").
///
/// Lock order: `last(i)` → shard → location (a validation holds it while re-reading).
#[derive(Debug)]
struct LastExecution<K, V, O, E> {
    incarnation: u32,
    reads: ReadSet<K, V>,
    outcome: Option<Outcome<O, E>>,
    /// Whether the recorded writes include deltas (to materialise at commit). Kept here, where
    /// the committer looks anyway, so a transaction without deltas costs the commit nothing more.
    has_deltas: bool,
}

impl<K, V, O, E> Default for LastExecution<K, V, O, E> {
    fn default() -> Self {
        Self { incarnation: 0, reads: ReadSet::new(), outcome: None, has_deltas: false }
    }
}

/// A block's final state: written locations and values, sorted by key.
type FinalState<VM> = Vec<(<VM as Vm>::Key, <VM as Vm>::Value)>;

/// One part of a fully committed block's final state, taken apart by a leaving worker.
type StatePart<VM> = Mutex<Option<Result<FinalState<VM>, InvariantError>>>;

type LastSlot<VM> =
    SpinMutex<LastExecution<<VM as Vm>::Key, <VM as Vm>::Value, <VM as Vm>::Output, <VM as Vm>::Error>>;

/// The shared state of one block's execution.
struct Block<'a, VM: Vm, S, H: ?Sized> {
    vm: &'a VM,
    storage: &'a S,
    txns: &'a [VM::Transaction],
    /// [`Vm::dependency_hints`] after `valid_hints`: empty, or one entry per transaction, each
    /// lower than its transaction.
    hints: Vec<Option<TxnIndex>>,
    mv: MvMemory<VM::Key, VM::Value, VM::Delta>,
    /// Per transaction, its latest executed incarnation's read set and outcome.
    last: Box<[LastSlot<VM>]>,
    scheduler: Scheduler,
    /// The largest claim of execution indices ([`Config::batch`]).
    max_batch: usize,
    /// Indices handed out with no conflict in sight before claims grow
    /// ([`Config::batch_calm_txns`]).
    batch_calm_txns: usize,
    sink: Mutex<Sink<'a, VM::Output, VM::Error, H>>,
    counters: Counters,
    /// Watchdog: when the block must be finished, and the configured limit.
    deadline: Option<(std::time::Instant, std::time::Duration)>,
    /// The adaptive rule's measurements, if it applies to this block.
    adaptive: Option<Warmup>,
    /// One slot per worker for its part of the final state, for a block taken apart in parts
    /// (see [`Block::take_state`]); empty otherwise.
    parts: Box<[StatePart<VM>]>,
}

impl<VM: Vm, S, H: ?Sized> fmt::Debug for Block<'_, VM, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block").field("scheduler", &self.scheduler).finish_non_exhaustive()
    }
}

impl<'a, VM: Vm, S, H: ?Sized> Block<'a, VM, S, H> {
    /// The state of a block of `txns` about to run on `threads` workers.
    fn new(
        vm: &'a VM,
        storage: &'a S,
        txns: &'a [VM::Transaction],
        hints: Vec<Option<TxnIndex>>,
        config: &Config,
        threads: usize,
        hook: &'a mut H,
    ) -> Self {
        let num_txns = txns.len();
        Self {
            vm,
            storage,
            txns,
            hints,
            mv: MvMemory::with_accumulator(num_txns, vm.accumulator()),
            last: (0..num_txns).map(|_| SpinMutex::new(LastExecution::default())).collect(),
            scheduler: Scheduler::new(num_txns, config.max_incarnations()),
            max_batch: config.batch(),
            batch_calm_txns: config.batch_calm_txns(),
            sink: Mutex::new(Sink { outputs: Vec::with_capacity(num_txns), hook, end: None, measured: None }),
            counters: Counters::default(),
            deadline: config.watchdog().map(|limit| (std::time::Instant::now() + limit, limit)),
            adaptive: (config.adaptive() && num_txns >= ADAPTIVE_MIN_TXNS).then(Warmup::new),
            parts: teardown::state_parts(threads, num_txns),
        }
    }
}

#[cfg(all(test, loom))]
mod loom_test;
