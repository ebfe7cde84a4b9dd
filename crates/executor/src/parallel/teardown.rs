//! The end of a block: its result, the final state taken out of the multi-version memory
//! (in parts, on the leaving workers, for large blocks), and the sequential finish after the
//! livelock guard or the adaptive rule stopped the parallel run.

use super::{Block, End, FinalState, Sink};
use crate::sequential::{BaseError, BaseState, run_sequential};
use crate::{BlockError, BlockOutput, BlockResult, CommitHook, Fallback, Storage, StorageError, Vm};
use blockstm_mvmemory::{Delta, InvariantError, MvMemory, MvRead, TxnIndex, merge_runs};
use blockstm_scheduler::HaltReason;

/// Blocks from this many transactions take their final state apart on all their threads
/// ([`Block::take_state`]); below, spawning the threads costs more than it saves.
const PARALLEL_TEARDOWN_TXNS: usize = 4096;

/// The slots for the parts of the final state of a block of `num_txns` on `threads` workers:
/// one per worker for a large block, none for a small one.
pub(super) fn state_parts<T>(threads: usize, num_txns: usize) -> Box<[blockstm_sync::Mutex<Option<T>>]> {
    if threads > 1 && num_txns >= PARALLEL_TEARDOWN_TXNS {
        (0..threads).map(|_| blockstm_sync::Mutex::new(None)).collect()
    } else {
        Box::new([])
    }
}

impl<VM, S, H> Block<'_, VM, S, H>
where
    VM: Vm,
    S: Storage<VM::Key, VM::Value>,
    H: CommitHook<VM::Output> + Send + ?Sized,
{
    /// Part `part` of [`Self::parts`] of the final state below `committed`, taken out of the
    /// multi-version memory, with its share of the per-transaction slots freed.
    fn take_part(&self, committed: TxnIndex, part: usize) -> Result<FinalState<VM>, InvariantError> {
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
    pub(super) fn take_part_on_exit(&self, part: usize) {
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
    /// On one thread after the workers, the snapshot's sort and the freeing of the versions and
    /// read sets were a fifth of a large block's time (`blockstm bench -w eth-native`).
    fn take_state(&self, committed: TxnIndex) -> Result<FinalState<VM>, BlockError<VM::Error>> {
        let internal = |e: InvariantError| BlockError::Internal(e.to_string());
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
        Ok(merge_runs(runs))
    }

    /// Turns the finished run into the block's result, falling back to sequential execution if
    /// the livelock guard fired.
    ///
    /// Call once, after every worker returned (it takes the outputs out of the sink).
    pub(super) fn finish(&self, threads: usize) -> BlockResult<VM> {
        let mut stats = self.counters.stats(threads);
        let halt_reason = self.scheduler.halt_reason();
        let mut sink = self.sink.lock();
        let Sink { outputs, hook, end, measured } = &mut *sink;
        stats.measured_parallelism = measured.map(|m| m.parallelism);
        let chose_sequential = measured.is_some_and(|m| m.sequential);
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
            MvRead::NotFound => self.storage.read(key).map_err(|e| BaseError::Storage(StorageError::new(e))),
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
