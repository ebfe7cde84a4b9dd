//! The Block-STM parallel executor: worker threads, the worker loop, the view that captures
//! reads, the rolling commit, and the sequential fallback.

use crate::local::{Failure, KeyIndex, Own, WriteSet};
use crate::outcome::{Outcome, panic_message};
use crate::sequential::{BaseError, BaseState, run_sequential, sequential_block};
use crate::{
    BlockError, BlockExecutor, BlockOutput, BlockResult, CommitHook, Config, Fallback, Halt, Stats, Storage,
    TxnView, Vm,
};
use blockstm_mvmemory::{Delta, MaterializeError, MvMemory, MvRead, TxnIndex, Version as MvVersionId};
use blockstm_scheduler::{CommitGuard, FollowUp, HaltReason, MAX_TXNS, Scheduler, Task, Version, Worker};
use blockstm_sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use blockstm_sync::{Backoff, Mutex, SpinMutex};
use blockstm_validator::{ReadOrigin, ReadSet, resolve_deltas, validate};
use smallvec::SmallVec;
use std::fmt;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Commits after which the adaptive rule measures the run (see [`Config::with_adaptive`]).
pub const ADAPTIVE_WINDOW: usize = 256;

/// Measured parallelism below which the adaptive rule finishes a block sequentially (see
/// [`Config::with_adaptive`]). Above 1 on purpose: the measurement counts VM time only, so the
/// executor's own costs and the switch itself make a run that is barely ahead during the window
/// end up behind (measured: p2p transfers over 2 accounts measure 1.00 to 1.09 and end at
/// 0.94x to 0.97x of sequential on Block-STM; over 10 accounts, 1.15 to 1.19 and 1.05x).
pub const ADAPTIVE_MIN_PARALLELISM: f64 = 1.1;

/// The adaptive rule runs a block sequentially when its transactions over the longest chain of
/// [dependency hints](crate::Vm::dependency_hints) are below this, and so is its estimated
/// cost over the chain's (when the VM gives [cost estimates](crate::Vm::cost_estimate)): the
/// hints alone show that no schedule can be much faster than one thread (a block where one
/// exchange wallet pays everybody has 1.0 to 1.1 both ways; the mainnet corpus has five such
/// blocks, docs/benchmarks.md). The cost matters when the chain is many cheap transactions
/// beside a few heavy ones: mainnet block 13217637 is 934 deposits to one wallet out of 1 100
/// transactions (1.18 by count) but 1.84 by gas limit, and runs at 1.38x on Block-STM.
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

/// Smallest block the adaptive rule measures: below it the rest of the block after the window
/// would be too short for switching to pay off.
pub const ADAPTIVE_MIN_TXNS: usize = 2 * ADAPTIVE_WINDOW;

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
    fn plan(&self, threads: usize, txns: &[VM::Transaction]) -> Result<Vec<Option<TxnIndex>>, Fallback> {
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
            return Ok(BlockOutput {
                outputs: Vec::new(),
                state: Vec::new(),
                ended_early: false,
                stats: Stats { threads, ..Stats::default() },
            });
        }

        let hints = match self.plan(threads, txns) {
            Ok(hints) => hints,
            Err(reason) => {
                tracing::debug!(?reason, "adaptive rule: sequential block");
                let stats =
                    Stats { threads, fallback: Some(reason), fallback_from: Some(0), ..Stats::default() };
                return sequential_block(&self.vm, storage, txns, hook, stats);
            }
        };
        let adaptive = (self.config.adaptive() && num_txns >= ADAPTIVE_MIN_TXNS).then(Warmup::new);
        let block = Block {
            vm: &self.vm,
            storage,
            txns,
            hints,
            mv: MvMemory::new(num_txns),
            last: (0..num_txns).map(|_| SpinMutex::new(LastExecution::default())).collect(),
            scheduler: Scheduler::new(num_txns, self.config.max_incarnations()),
            max_batch: self.config.batch(),
            batch_calm_txns: self.config.batch_calm_txns(),
            sink: Mutex::new(Sink { outputs: Vec::with_capacity(num_txns), hook, end: None, measured: None }),
            deadline: self.config.watchdog().map(|limit| (std::time::Instant::now() + limit, limit)),
            adaptive,
            counters: Counters::default(),
            parts: if threads > 1 && num_txns >= PARALLEL_TEARDOWN_TXNS {
                (0..threads).map(|_| Mutex::new(None)).collect()
            } else {
                Box::new([])
            },
        };
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

/// Blocks from this many transactions take their final state apart on all their threads
/// ([`Block::take_state`]); below, spawning the threads costs more than it saves.
const PARALLEL_TEARDOWN_TXNS: usize = 4096;

/// Statistics counters. `Relaxed` everywhere: they are statistics only, read after the workers
/// are joined (the join orders every increment before the read). Workers count in a
/// [`LocalCounts`] and add it here once when they leave: incrementing shared counters on every
/// execution made both cores fight over their cache line (measured: 1.2 % of a 2-thread run at
/// 5 us per transaction spent on that one increment).
#[derive(Debug, Default)]
struct Counters {
    executions: AtomicUsize,
    validations: AtomicUsize,
    final_executions: AtomicUsize,
    aborts: AtomicUsize,
    dependency_waits: AtomicUsize,
    hint_waits: AtomicUsize,
}

/// One worker's statistics, added to [`Counters`] when it leaves.
#[derive(Debug, Default)]
struct LocalCounts {
    executions: usize,
    validations: usize,
    final_executions: usize,
    aborts: usize,
    dependency_waits: usize,
    hint_waits: usize,
}

impl Counters {
    fn add(&self, local: &LocalCounts) {
        self.executions.fetch_add(local.executions, Ordering::Relaxed);
        self.validations.fetch_add(local.validations, Ordering::Relaxed);
        self.final_executions.fetch_add(local.final_executions, Ordering::Relaxed);
        self.aborts.fetch_add(local.aborts, Ordering::Relaxed);
        self.dependency_waits.fetch_add(local.dependency_waits, Ordering::Relaxed);
        self.hint_waits.fetch_add(local.hint_waits, Ordering::Relaxed);
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
    /// The adaptive rule's measurement, and whether it chose to finish sequentially.
    measured: Option<(f64, bool)>,
}

/// What the latest executed incarnation of a transaction left for validation and commit.
///
/// Written by the executing thread before `finish_execution` publishes the incarnation as
/// EXECUTED (the scheduler's status lock orders this write before any validation or commit of
/// it); read under this lock by validators, taken by the committer. One mutex per transaction
/// rather than a lock-free cell: it is written once per execution and read about once, and the
/// `arc-swap` cell it replaced cost 12 % of the executor's time in its `store`.
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
type StatePart<VM> = Mutex<Option<Result<FinalState<VM>, blockstm_mvmemory::InvariantError>>>;

type LastSlot<VM> =
    SpinMutex<LastExecution<<VM as Vm>::Key, <VM as Vm>::Value, <VM as Vm>::Output, <VM as Vm>::Error>>;

/// The shared state of one block's execution.
struct Block<'a, VM: Vm, S, H: ?Sized> {
    vm: &'a VM,
    storage: &'a S,
    txns: &'a [VM::Transaction],
    /// [`Vm::dependency_hints`] after [`valid_hints`]: empty, or one entry per transaction,
    /// each lower than its transaction.
    hints: Vec<Option<TxnIndex>>,
    mv: MvMemory<VM::Key, VM::Value, VM::Delta>,
    /// Per transaction, its latest executed incarnation's read set and outcome.
    last: Box<[LastSlot<VM>]>,
    scheduler: Scheduler,
    /// The largest claim of execution indices ([`Worker`], [`Config::batch`]).
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

/// Measurements of the adaptive rule's warm-up window. Relaxed everywhere: statistics read by
/// the committer; an execution counted a little late only shifts the estimate.
///
/// The window starts when the *last* worker starts, not when the block does: on a busy machine
/// a thread may start a millisecond late, which at a few microseconds per transaction is most
/// of a 256-transaction window, and the rule would then blame the block for the missing
/// worker. The window is the next [`ADAPTIVE_WINDOW`] commits after that.
#[derive(Debug)]
struct Warmup {
    /// Set once the rule has decided; executions stop timing themselves then.
    decided: AtomicBool,
    /// Total VM time of executions during the window, waits excluded, in nanoseconds.
    exec_nanos: AtomicU64,
    /// Executions timed.
    execs: AtomicUsize,
    /// When the latest worker started and how many transactions were committed then. Locked
    /// once per worker and once by the committer when it decides.
    window_start: Mutex<(std::time::Instant, usize)>,
}

impl Warmup {
    fn new() -> Self {
        Self {
            decided: AtomicBool::new(false),
            exec_nanos: AtomicU64::new(0),
            execs: AtomicUsize::new(0),
            window_start: Mutex::new((std::time::Instant::now(), 0)),
        }
    }

    /// A worker starts: the window restarts from here.
    fn worker_started(&self, committed: usize) {
        let now = std::time::Instant::now();
        let mut start = self.window_start.lock();
        if now > start.0 {
            *start = (now, committed);
        }
    }
}

impl<VM: Vm, S, H: ?Sized> fmt::Debug for Block<'_, VM, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block").field("scheduler", &self.scheduler).finish_non_exhaustive()
    }
}

impl<VM, S, H> Block<'_, VM, S, H>
where
    VM: Vm,
    S: Storage<VM::Key, VM::Value>,
    H: CommitHook<VM::Output> + Send + ?Sized,
{
    /// Worker number `id` (0 is the calling thread): takes tasks until the block is committed
    /// or halted, then takes its part of a committed block's final state apart.
    fn worker(&self, id: usize) {
        // A panic here would be a bug in blockstm (VM and hook panics are caught closer to
        // them). Catch it so it ends the block with an error instead of unwinding to the caller.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
            self.worker_loop(id);
            self.take_part_on_exit(id);
        })) {
            self.fail_internal(format!("worker panicked: {}", panic_message(payload.as_ref())));
        }
    }

    fn worker_loop(&self, id: usize) {
        if let Some(warmup) = &self.adaptive {
            warmup.worker_started(self.scheduler.committed());
        }
        let mut counts = LocalCounts::default();
        self.work(&mut Worker::new(id, self.max_batch, self.batch_calm_txns), &mut counts);
        self.counters.add(&counts);
    }

    fn work(&self, w: &mut Worker, counts: &mut LocalCounts) {
        let backoff = Backoff::new();
        let mut task = None;
        // A transaction that waited for one this worker executed, claimed for this worker
        // ([`Scheduler::finish_execution_continuing`]); run after the task in hand. At most one:
        // an execution finished while one is held resumes its waiters for any worker.
        let mut resumed: Option<Version> = None;
        // Between tasks only the halt flag is polled; whether everything committed is checked
        // when there is no task (a fully committed block hands out none).
        while !self.scheduler.is_halted() {
            #[cfg(feature = "stress")]
            crate::stress::point();
            task = match task
                .take()
                .or_else(|| resumed.take().map(Task::Execute))
                .or_else(|| self.scheduler.next_task_for(w))
            {
                Some(Task::Execute(version)) => {
                    let follow_up = self.execute(w, version, resumed.is_none(), counts);
                    if follow_up.resumed.is_some() {
                        resumed = follow_up.resumed;
                    }
                    follow_up.validation
                }
                Some(Task::Validate { version, wave }) => self.validate(w, version, wave, counts),
                None => {
                    self.try_commit();
                    if self.scheduler.is_done() {
                        break;
                    }
                    if self.scheduler.idle_complete() {
                        self.final_commit();
                        break;
                    }
                    if let Some((deadline, limit)) = self.deadline
                        && std::time::Instant::now() > deadline
                    {
                        self.fail_internal(format!(
                            "watchdog: block not finished after {limit:?}; {}",
                            self.scheduler.dump()
                        ));
                        break;
                    }
                    backoff.snooze();
                    continue;
                }
            };
            backoff.reset();
        }
    }

    /// Executes an incarnation; returns what to run next, if anything. With `continuing`, the
    /// lowest transaction that waited for this one may come back claimed for the caller.
    fn execute(
        &self,
        w: &mut Worker,
        version: Version,
        continuing: bool,
        counts: &mut LocalCounts,
    ) -> FollowUp {
        let txn_idx = version.txn_idx;
        // A hinted first incarnation waits for its hint to finish executing, exactly as if its
        // first read had hit an ESTIMATE of it (same transition, EXECUTING → ABORTING; it is
        // resumed as incarnation 1, so it waits at most once). It has read and written nothing.
        if version.incarnation == 0
            && let Some(&Some(hint)) = self.hints.get(txn_idx)
            && self.scheduler.add_dependency_for(w, txn_idx, hint)
        {
            counts.hint_waits += 1;
            tracing::debug!(txn_idx, hint, "hinted dependency wait");
            return FollowUp::default();
        }
        loop {
            // Checked before the first read: if everything below is committed, every value this
            // incarnation reads is final and it needs no validation.
            let final_reads = self.scheduler.all_below_committed(txn_idx);
            #[cfg(feature = "stress")]
            crate::stress::point();
            // The result slot is cold (one per transaction of the block); fetching it now hides
            // the miss behind the VM's work instead of paying it at the slot lock's release.
            // (Measured on gigagas native transfers: ~2 % at P = 1 and 2; the same hint for the
            // multi-version memory's per-transaction key list measured within noise.)
            blockstm_sync::prefetch_for_write(&self.last[txn_idx]);
            let mut view = ParallelView::new(&self.mv, &self.scheduler, self.storage, txn_idx);
            let timed = self.adaptive.as_ref().filter(|w| !w.decided.load(Ordering::Relaxed));
            let start = timed.map(|_| std::time::Instant::now());
            // AssertUnwindSafe: after a panic only the view's captured reads and halt cause are
            // used, plain data that a panic cannot leave half-written.
            let result =
                catch_unwind(AssertUnwindSafe(|| self.vm.execute(txn_idx, &self.txns[txn_idx], &mut view)));
            if let (Some(warmup), Some(start)) = (timed, start) {
                let busy = start.elapsed().saturating_sub(view.waited);
                warmup.exec_nanos.fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
                warmup.execs.fetch_add(1, Ordering::Relaxed);
            }
            counts.executions += 1;
            counts.dependency_waits += view.waits;
            let failure = match view.halt.take() {
                Some(ViewHalt::Blocked(blocking)) => {
                    // (The read that hit the ESTIMATE is already counted in `view.waits`.)
                    if self.scheduler.add_dependency_for(w, txn_idx, blocking) {
                        tracing::debug!(
                            txn_idx,
                            incarnation = version.incarnation,
                            blocking,
                            "dependency wait"
                        );
                        return FollowUp::default();
                    }
                    // The blocker finished meanwhile: run the same incarnation again.
                    continue;
                }
                Some(ViewHalt::Failed(failure)) => Some(failure),
                None => None,
            };
            let outcome = Outcome::of(result, failure);
            // A failed incarnation publishes no writes: if it is final the block ends there,
            // and if it was speculation its reads will fail validation.
            let writes = outcome.is_output().then_some(view.writes);
            let has_deltas = writes.as_ref().is_some_and(WriteSet::has_deltas);
            *self.last[txn_idx].lock() = LastExecution {
                incarnation: version.incarnation,
                reads: view.reads,
                outcome: Some(outcome),
                has_deltas,
            };
            let wrote_new_location = self.mv.record_writes(
                MvVersionId::new(txn_idx, version.incarnation),
                writes.into_iter().flat_map(WriteSet::into_iter),
            );
            let follow_up =
                self.scheduler.finish_execution_for(w, version, wrote_new_location, final_reads, continuing);
            if final_reads {
                counts.final_executions += 1;
                self.try_commit();
            }
            return follow_up;
        }
    }

    /// Validates an incarnation; returns the re-execution if it was aborted and is ours to run.
    fn validate(
        &self,
        w: &mut Worker,
        version: Version,
        wave: u32,
        counts: &mut LocalCounts,
    ) -> Option<Task> {
        let txn_idx = version.txn_idx;
        // The slot may already hold a newer incarnation's reads; the scheduler then ignores this
        // result (it checks the incarnation), so validating them is harmless.
        let validation =
            validate(&self.last[txn_idx].lock().reads, &self.mv, txn_idx, |key| self.storage.read(key));
        #[cfg(feature = "stress")]
        crate::stress::point();
        counts.validations += 1;
        if validation.is_valid() {
            self.scheduler.finish_validation_for(w, version, wave);
            // Only a successful validation can let the commit advance.
            self.try_commit();
            return None;
        }
        if !self.scheduler.try_validation_abort(version) {
            self.scheduler.finish_failed_validation_for(w);
            return None;
        }
        counts.aborts += 1;
        tracing::debug!(txn_idx, incarnation = version.incarnation, ?validation, "abort");
        self.mv.convert_writes_to_estimates(txn_idx);
        self.scheduler.finish_abort_for(w, version)
    }

    /// Commits whatever is final, if no other thread is committing.
    #[inline]
    fn try_commit(&self) {
        if let Some(mut guard) = self.scheduler.try_lock_commit() {
            self.commit(&mut guard);
        }
    }

    /// The scheduler is idle: everything must be committable now. Anything else is a bug,
    /// reported as an error rather than a hang.
    fn final_commit(&self) {
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

    fn commit(&self, guard: &mut CommitGuard<'_>) {
        let mut sink = self.sink.lock();
        while sink.end.is_none() && !matches!(sink.measured, Some((_, true))) {
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
                    let found = incarnation;
                    sink.end = Some(End::Error(BlockError::Internal(format!(
                        "committing {version:?} but the stored outcome is of incarnation {found:?}"
                    ))));
                    break;
                }
            };
            if let Some(warmup) = &self.adaptive
                && sink.measured.is_none()
                // (No window can end earlier: skips the lock on the first commits.)
                && txn_idx + 1 >= ADAPTIVE_WINDOW
                && let (window_start, committed_then) = *warmup.window_start.lock()
                && txn_idx + 1 >= committed_then + ADAPTIVE_WINDOW
            {
                warmup.decided.store(true, Ordering::Relaxed);
                let execs = warmup.execs.load(Ordering::Relaxed).max(1);
                let mean = warmup.exec_nanos.load(Ordering::Relaxed) as f64 / execs as f64;
                let elapsed = window_start.elapsed().as_nanos().max(1) as f64;
                let parallelism = (txn_idx + 1 - committed_then) as f64 * mean / elapsed;
                let sequential = parallelism < ADAPTIVE_MIN_PARALLELISM;
                sink.measured = Some((parallelism, sequential));
                if sequential {
                    tracing::debug!(parallelism, "adaptive rule: finishing sequentially");
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
                BlockError::Storage { txn_idx, message: error.to_string() }
            }
            MaterializeError::Invariant(error) => BlockError::Internal(error.to_string()),
        })
    }

    fn fail_internal(&self, message: String) {
        let mut sink = self.sink.lock();
        if !matches!(sink.end, Some(End::Error(_))) {
            sink.end = Some(End::Error(BlockError::Internal(message)));
        }
        drop(sink);
        self.scheduler.halt();
    }

    /// Part `part` of [`Self::parts`] of the final state below `committed`, taken out of the
    /// multi-version memory, with its share of the per-transaction slots freed.
    fn take_part(
        &self,
        committed: TxnIndex,
        part: usize,
    ) -> Result<FinalState<VM>, blockstm_mvmemory::InvariantError> {
        let parts = self.parts.len();
        let chunk = self.last.len().div_ceil(parts);
        for slot in self.last.iter().skip(part * chunk).take(chunk) {
            drop(std::mem::take(&mut *slot.lock()));
        }
        self.mv.take_snapshot_part(committed, part, parts)
    }

    /// A leaving worker of a block taken apart in parts takes its part, if every transaction
    /// is committed: the workers are on their way out anyway, and doing it here costs no thread
    /// start. Under the commit lock the count is final and every commit fully processed (the
    /// committer holds it while it materialises deltas and calls the hook). What can still run
    /// then is a validation of a committed transaction, which reads the memory and a read-set
    /// slot under their locks and whose result the scheduler ignores.
    fn take_part_on_exit(&self, part: usize) {
        let Some(slot) = self.parts.get(part) else { return };
        let all = self.txns.len();
        if self.scheduler.lock_commit().committed() == all {
            *slot.lock() = Some(self.take_part(all, part));
        }
    }

    /// The final state below `committed`, taken out of the multi-version memory, and the
    /// block's per-transaction slots freed. A large block is taken apart in [`Self::parts`]
    /// (each sorts and frees a share; the sorted parts are merged): by the leaving workers if
    /// the block committed in full, else here on as many threads. Only once the workers are gone
    /// and nothing else will read the memory.
    ///
    /// Measured on a block of 47 619 EVM transfers at two threads: the snapshot's sort and the
    /// freeing of the versions and read sets, on one thread after the workers, were a fifth of
    /// the block's time.
    fn take_state(&self, committed: TxnIndex) -> Result<FinalState<VM>, BlockError<VM::Error>> {
        let internal = |e: blockstm_mvmemory::InvariantError| BlockError::Internal(e.to_string());
        if self.parts.is_empty() {
            // One part is the whole sorted state; the slots are freed with the block.
            return self.mv.take_snapshot_part(committed, 0, 1).map_err(internal);
        }
        // Parts the workers took are of the whole block (they take them only then, and then
        // `committed` is all of it); the others are taken now, one per thread.
        let mut runs: Vec<_> = self.parts.iter().map(|slot| slot.lock().take()).collect();
        let missing: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].is_none()).collect();
        std::thread::scope(|scope| {
            let others: Vec<_> = missing
                .iter()
                .skip(1)
                .map(|&i| (i, scope.spawn(move || self.take_part(committed, i))))
                .collect();
            if let Some(&first) = missing.first() {
                runs[first] = Some(self.take_part(committed, first));
            }
            for (i, handle) in others {
                runs[i] = Some(handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
        let runs = runs.into_iter().flatten().collect::<Result<Vec<_>, _>>().map_err(internal)?;
        Ok(blockstm_mvmemory::merge_runs(runs))
    }

    /// Turns the finished run into the block's result, falling back to sequential execution if
    /// the livelock guard fired.
    ///
    /// Call once, after every worker returned (it takes the outputs out of the sink).
    fn finish(&self, threads: usize) -> BlockResult<VM> {
        let mut stats = Stats {
            threads,
            executions: self.counters.executions.value(),
            validations: self.counters.validations.value(),
            final_executions: self.counters.final_executions.value(),
            aborts: self.counters.aborts.value(),
            dependency_waits: self.counters.dependency_waits.value(),
            hint_waits: self.counters.hint_waits.value(),
            fallback_from: None,
            fallback: None,
            measured_parallelism: None,
        };
        let halt_reason = self.scheduler.halt_reason();
        let mut sink = self.sink.lock();
        let Sink { outputs, hook, end, measured } = &mut *sink;
        stats.measured_parallelism = measured.map(|(parallelism, _)| parallelism);
        let chose_sequential = matches!(measured, Some((_, true)));
        let mut outputs = std::mem::take(outputs);
        let committed = outputs.len();
        match end.take() {
            Some(End::Error(error)) => return Err(error),
            Some(End::Hook) => {
                let state = self.take_state(committed)?;
                return Ok(BlockOutput { outputs, state, ended_early: true, stats });
            }
            None => {}
        }
        if committed == self.txns.len() {
            let state = self.take_state(committed)?;
            return Ok(BlockOutput { outputs, state, ended_early: false, stats });
        }
        let reason = match halt_reason {
            _ if chose_sequential => Fallback::LowParallelism,
            Some(HaltReason::Livelock { txn_idx }) => {
                tracing::debug!(
                    trigger = txn_idx,
                    from = committed,
                    "livelock guard: finishing sequentially"
                );
                Fallback::Livelock
            }
            _ => {
                return Err(BlockError::Internal(format!(
                    "workers stopped with {committed} of {} transactions committed ({halt_reason:?})",
                    self.txns.len()
                )));
            }
        };
        // The committed prefix is final; run the rest in order on top of it.
        stats.fallback_from = Some(committed);
        stats.fallback = Some(reason);
        let base = CommittedBase { mv: &self.mv, below: committed, storage: self.storage };
        let run = run_sequential(self.vm, &base, self.txns, committed, &mut **hook, &mut stats)?;
        outputs.extend(run.outputs);
        // The sequential part's writes win over the committed prefix's; then one sort, as the
        // sequential baseline does (instead of building a BTreeMap of both).
        let prefix = self.mv.snapshot(committed).map_err(|e| BlockError::Internal(e.to_string()))?;
        let mut writes = run.writes;
        let mut state: Vec<_> = prefix.into_iter().filter(|(key, _)| !writes.contains_key(key)).collect();
        state.extend(writes.drain());
        state.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(BlockOutput { outputs, state, ended_early: run.ended_early, stats })
    }
}

/// Reads a statistics counter once the workers are done.
trait CounterValue {
    fn value(&self) -> usize;
}

impl CounterValue for AtomicUsize {
    fn value(&self) -> usize {
        // Relaxed: the workers were joined, which orders all their increments before this.
        self.load(Ordering::Relaxed)
    }
}

/// The state after the committed prefix: the final writes of transactions below `below` in the
/// multi-version memory, then storage.
struct CommittedBase<'a, K, V, D, S> {
    mv: &'a MvMemory<K, V, D>,
    below: TxnIndex,
    storage: &'a S,
}

impl<K, V, D, S> BaseState<K, V> for CommittedBase<'_, K, V, D, S>
where
    K: Eq + std::hash::Hash + Clone,
    V: Clone,
    D: Delta<V>,
    S: Storage<K, V>,
{
    fn read(&self, key: &K) -> Result<Option<V>, BaseError> {
        match self.mv.read(key, self.below) {
            MvRead::Value { value, .. } => Ok(Some(value)),
            MvRead::NotFound => self.storage.read(key).map_err(|e| BaseError::Storage(e.to_string())),
            MvRead::Estimate { blocking } => Err(BaseError::Internal(format!(
                "committed transaction {blocking} left an ESTIMATE at the fallback point {}",
                self.below
            ))),
            MvRead::Deltas { .. } => Err(BaseError::Internal(format!(
                "a committed transaction left unmaterialised deltas below the fallback point {}",
                self.below
            ))),
        }
    }
}

/// Why a parallel view stopped serving reads.
#[derive(Debug)]
enum ViewHalt {
    /// Read an `ESTIMATE` of this transaction.
    Blocked(TxnIndex),
    /// Storage failed, a delta failed, or a resolution did.
    Failed(Failure),
}

/// One incarnation's view: own writes, then captured reads, then the multi-version memory,
/// then storage. Captures every read that left the transaction.
struct ParallelView<'a, K, V, D, S> {
    mv: &'a MvMemory<K, V, D>,
    scheduler: &'a Scheduler,
    storage: &'a S,
    txn_idx: TxnIndex,
    writes: WriteSet<K, V, D>,
    reads: ReadSet<K, V>,
    /// The value of each captured read, by position in `reads`, so a repeated read returns the
    /// same value even if a lower transaction has written meanwhile.
    read_values: SmallVec<[Option<V>; blockstm_validator::INLINE_READS]>,
    read_index: KeyIndex<K>,
    halt: Option<ViewHalt>,
    /// Times this execution waited for an executing lower transaction.
    waits: usize,
    /// Time spent in those waits (measured only when a wait happens).
    waited: std::time::Duration,
}

impl<'a, K, V, D, S> ParallelView<'a, K, V, D, S>
where
    K: Eq + std::hash::Hash + Clone,
    V: Clone,
    D: Delta<V>,
    S: Storage<K, V>,
{
    fn new(mv: &'a MvMemory<K, V, D>, scheduler: &'a Scheduler, storage: &'a S, txn_idx: TxnIndex) -> Self {
        Self {
            mv,
            scheduler,
            storage,
            txn_idx,
            writes: WriteSet::new(),
            reads: ReadSet::new(),
            read_values: SmallVec::new(),
            read_index: KeyIndex::new(),
            halt: None,
            waits: 0,
            waited: std::time::Duration::ZERO,
        }
    }

    #[inline]
    fn capture(&mut self, key: &K, origin: ReadOrigin<V>, value: Option<V>) {
        self.reads.push(key.clone(), origin);
        self.read_values.push(value);
        self.read_index.pushed(self.reads.iter().map(|(k, _)| k));
    }

    /// Stops the execution with `failure`.
    fn fail<T>(&mut self, failure: Failure) -> Result<T, Halt> {
        self.halt = Some(ViewHalt::Failed(failure));
        Err(Halt(()))
    }

    /// The value below this transaction (captured), deltas of lower transactions resolved.
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if let Some(i) = self.read_index.find(key, self.reads.iter().map(|(k, _)| k)) {
            return Ok(self.read_values[i].clone());
        }
        loop {
            return match self.mv.read(key, self.txn_idx) {
                MvRead::Value { version, value } => {
                    self.capture(key, ReadOrigin::Version(version), Some(value.clone()));
                    Ok(Some(value))
                }
                MvRead::Estimate { blocking } => {
                    // The writer was aborted. If it is re-executing right now, its new value is
                    // moments away: wait for it and read again rather than abort this
                    // execution (on a dependency chain this keeps the next transaction from
                    // racing ahead through the rest of the block). No lock is held here.
                    self.waits += 1;
                    let start = std::time::Instant::now();
                    let finished = self.scheduler.wait_while_executing(blocking);
                    self.waited += start.elapsed();
                    if finished {
                        continue;
                    }
                    self.halt = Some(ViewHalt::Blocked(blocking));
                    Err(Halt(()))
                }
                MvRead::NotFound => match self.storage.read(key) {
                    Ok(value) => {
                        self.capture(key, ReadOrigin::Storage, value.clone());
                        Ok(value)
                    }
                    Err(error) => {
                        // Captured too: if a lower transaction later writes this location, the
                        // failure was speculation and validation will say so.
                        self.capture(key, ReadOrigin::Storage, None);
                        self.fail(Failure::Storage(error.to_string()))
                    }
                },
                MvRead::Deltas { base, deltas } => {
                    match resolve_deltas(base, &deltas, || self.storage.read(key)) {
                        Some(value) => {
                            self.capture(
                                key,
                                ReadOrigin::Resolved(Box::new(value.clone())),
                                Some(value.clone()),
                            );
                            Ok(Some(value))
                        }
                        None => {
                            // A lower transaction's delta fails (or storage under it does): that
                            // transaction ends the block when it commits, unless it changes,
                            // which validation of this read detects.
                            self.capture(key, ReadOrigin::Unresolvable, None);
                            self.fail(Failure::Doomed)
                        }
                    }
                }
            };
        }
    }
}

impl<K, V, D, S> TxnView<K, V, D> for ParallelView<'_, K, V, D, S>
where
    K: Eq + std::hash::Hash + Clone + fmt::Debug,
    V: Clone,
    D: Delta<V>,
    S: Storage<K, V>,
{
    fn read(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if self.halt.is_some() {
            return Err(Halt(()));
        }
        match self.writes.own(key) {
            Own::Value(value) => Ok(Some(value)),
            // Reading a location this transaction applied deltas to: a real read of the value
            // below, then the deltas, which become a plain write.
            Own::Deltas(deltas) => {
                let below = self.read_below(key)?;
                self.writes
                    .settle(key, &deltas, below)
                    .or_else(|message| self.fail(Failure::Delta { key: format!("{key:?}"), message }))
            }
            Own::None => self.read_below(key),
        }
    }

    #[inline]
    fn write(&mut self, key: K, value: V) {
        self.writes.insert(key, value);
    }

    #[inline]
    fn apply_delta(&mut self, key: K, delta: D) -> Result<(), Halt> {
        if self.halt.is_some() {
            return Err(Halt(()));
        }
        match self.writes.apply_delta(key, delta) {
            Ok(()) => Ok(()),
            Err((key, message)) => self.fail(Failure::Delta { key: format!("{key:?}"), message }),
        }
    }
}

#[cfg(all(test, loom))]
#[path = "parallel_loom.rs"]
mod loom_test;
