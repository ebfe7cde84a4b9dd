//! The sequential baseline: the same VM over the same storage, in block order, with none of the
//! Block-STM machinery. It is both the reference the parallel executor must match and the
//! baseline its speed is measured against, so it is kept lean: one hash map of the block's
//! writes, no read capture, no versions.

use crate::local::Failure;
use crate::outcome::{Outcome, panic_message};
use crate::view::{LayeredView, ReadBelow};
use crate::{
    BlockError, BlockExecutor, BlockOutput, BlockResult, CommitHook, Halt, Stats, Storage, StorageError, Vm,
};
use ahash::RandomState;
use blockstm_mvmemory::{ResolveError, TxnIndex};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Executes blocks one transaction after another on the calling thread.
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
/// use blockstm_executor::{BlockExecutor, SequentialExecutor};
/// use std::collections::HashMap;
///
/// let storage: HashMap<u8, u64> = HashMap::new();
/// let out = SequentialExecutor::new(Inc).execute_block(&storage, &[1, 1, 2]).unwrap();
/// assert_eq!(out.outputs, vec![1, 2, 1]);
/// assert_eq!(out.state, vec![(1, 2), (2, 1)]);
/// ```
#[derive(Debug)]
pub struct SequentialExecutor<VM> {
    vm: VM,
}

impl<VM: Vm> SequentialExecutor<VM> {
    /// A sequential executor for `vm`.
    pub fn new(vm: VM) -> Self {
        Self { vm }
    }

    /// The VM.
    pub fn vm(&self) -> &VM {
        &self.vm
    }
}

impl<VM: Vm> BlockExecutor<VM> for SequentialExecutor<VM> {
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
        sequential_block(&self.vm, storage, txns, hook, Stats { threads: 1, ..Stats::default() })
    }
}

/// A whole block on the sequential path over `storage`, with `stats` as the starting point.
pub(crate) fn sequential_block<VM, S, H>(
    vm: &VM,
    storage: &S,
    txns: &[VM::Transaction],
    hook: &mut H,
    mut stats: Stats,
) -> BlockResult<VM>
where
    VM: Vm,
    S: Storage<VM::Key, VM::Value>,
    H: CommitHook<VM::Output> + ?Sized,
{
    let run = run_sequential(vm, &StorageBase(storage), txns, 0, hook, &mut stats)?;
    let mut state: Vec<_> = run.writes.into_iter().collect();
    state.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(BlockOutput { outputs: run.outputs, state, ended_early: run.ended_early, stats })
}

/// Why a base-state read failed.
#[derive(Debug)]
pub(crate) enum BaseError {
    Storage(StorageError),
    Internal(String),
}

/// The state a sequential run starts from.
pub(crate) trait BaseState<K, V> {
    fn read(&self, key: &K) -> Result<Option<V>, BaseError>;
}

/// Storage as the base state.
pub(crate) struct StorageBase<'a, S>(pub(crate) &'a S);

impl<K, V, S: Storage<K, V>> BaseState<K, V> for StorageBase<'_, S> {
    #[inline]
    fn read(&self, key: &K) -> Result<Option<V>, BaseError> {
        self.0.read(key).map_err(|e| BaseError::Storage(StorageError::new(e)))
    }
}

/// What a sequential run produced.
pub(crate) struct SequentialRun<K, V, O> {
    pub(crate) outputs: Vec<O>,
    /// Final value of every location the run wrote (unordered).
    pub(crate) writes: HashMap<K, V, RandomState>,
    pub(crate) ended_early: bool,
}

type SequentialResult<VM> = Result<
    SequentialRun<<VM as Vm>::Key, <VM as Vm>::Value, <VM as Vm>::Output>,
    BlockError<<VM as Vm>::Error>,
>;

/// Executes `txns[start..]` in order over `base`, calling `hook` after each.
pub(crate) fn run_sequential<VM, B, H>(
    vm: &VM,
    base: &B,
    txns: &[VM::Transaction],
    start: TxnIndex,
    hook: &mut H,
    stats: &mut Stats,
) -> SequentialResult<VM>
where
    VM: Vm,
    B: BaseState<VM::Key, VM::Value>,
    H: CommitHook<VM::Output> + ?Sized,
{
    let mut run = SequentialRun {
        outputs: Vec::with_capacity(txns.len() - start),
        writes: HashMap::with_hasher(RandomState::new()),
        ended_early: false,
    };
    for (txn_idx, txn) in txns.iter().enumerate().skip(start) {
        let mut view = LayeredView::new(SequentialBelow { base, block: &run.writes, failure: None });
        // AssertUnwindSafe: after a panic only the view's plain data (its failure) is looked at.
        let result = catch_unwind(AssertUnwindSafe(|| vm.execute(txn_idx, txn, &mut view)));
        stats.executions += 1;
        let failure = match view.below.failure.take() {
            Some(SequentialFailure::Base(BaseError::Internal(message))) => {
                return Err(BlockError::Internal(message));
            }
            Some(SequentialFailure::Base(BaseError::Storage(error))) => Some(Failure::Storage(error)),
            Some(SequentialFailure::Delta { key, message }) => Some(Failure::Delta { key, message }),
            None => None,
        };
        let output = Outcome::of(result, failure).into_result(txn_idx)?;
        // The transaction's deltas apply now, in its write order, on what the transactions
        // before it left: exactly what the parallel executor does when it commits it.
        for (key, write) in view.writes {
            let below = || match run.writes.get(&key) {
                Some(value) => Ok(Some(value.clone())),
                None => base.read(&key),
            };
            let value = write.resolve(below).map_err(|error| match error {
                ResolveError::Below(BaseError::Storage(error)) => BlockError::Storage { txn_idx, error },
                ResolveError::Below(BaseError::Internal(message)) => BlockError::Internal(message),
                ResolveError::Delta(message) => {
                    BlockError::Delta { txn_idx, key: format!("{key:?}"), message }
                }
            })?;
            run.writes.insert(key, value);
        }
        let flow = catch_unwind(AssertUnwindSafe(|| hook.on_commit(txn_idx, &output)))
            .map_err(|payload| BlockError::HookPanic { txn_idx, message: panic_message(payload.as_ref()) })?;
        run.outputs.push(output);
        if flow == ControlFlow::Break(()) {
            run.ended_early = true;
            break;
        }
    }
    Ok(run)
}

/// Why a sequential view stopped serving reads.
enum SequentialFailure {
    Base(BaseError),
    Delta { key: String, message: String },
}

/// What a transaction of a sequential run finds below its own writes: the block's writes so
/// far, then the base state.
struct SequentialBelow<'a, K, V, B> {
    base: &'a B,
    block: &'a HashMap<K, V, RandomState>,
    failure: Option<SequentialFailure>,
}

impl<K, V, B> ReadBelow<K, V> for SequentialBelow<'_, K, V, B>
where
    K: Eq + Hash + Debug,
    V: Clone,
    B: BaseState<K, V>,
{
    #[inline]
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if let Some(value) = self.block.get(key) {
            return Ok(Some(value.clone()));
        }
        self.base.read(key).map_err(|failure| {
            self.failure = Some(SequentialFailure::Base(failure));
            Halt(())
        })
    }

    fn delta_failed(&mut self, key: &K, message: String) {
        self.failure = Some(SequentialFailure::Delta { key: format!("{key:?}"), message });
    }

    #[inline]
    fn halted(&self) -> bool {
        self.failure.is_some()
    }
}
