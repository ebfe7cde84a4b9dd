//! alloy-evm's block-executor traits on Block-STM: [`BlockStmExecutorFactory`] is a
//! `BlockExecutorFactory` a reth-style `ConfigureEvm` can hold in place of alloy-evm's
//! `EthBlockExecutorFactory`; its [`BlockStmExecutor`] runs `execute_block` on Block-STM and
//! commits the result into the executor's state database (revm's `State`, for a client), so
//! what follows (the bundle, the state root, persistence) works unchanged. Every other method
//! (`apply_pre_execution_changes`, the per-transaction methods a block builder calls,
//! `finish`) is alloy-evm's `EthBlockExecutor`'s, sequential.
//!
//! # Reading a state that is not `Sync`
//!
//! The executor's database is any `Database + DatabaseCommit` (`&mut State<..>`): it is read
//! through `&mut`, and may not be `Send`. So the calling thread keeps it and serves the reads:
//! the block runs on a scoped thread (one worker, the others started by the parallel
//! executor), and a read that misses the shared cache is sent to the calling thread over a
//! channel and answered from the database, once per location. Before the workers start, the
//! calling thread loads what every transaction is known to read (its sender, its recipient
//! with its code, the block's beneficiary) into that cache. Block hashes are served the same
//! way, when a transaction executes `BLOCKHASH`. Both sides poll a little before they park.
//!
//! The hand-off costs: every first read of a location crosses threads. On the mainnet corpus
//! at two threads (2-core AMD EPYC VM) this path takes about 1.8x the time of alloy-evm's
//! sequential executor, where [`execute_block`](crate::execute_block) over a `Sync` database
//! takes about 0.87x of it (`cargo run --release -p blockstm-evm --example client_paths`). A
//! client whose state can be read from several threads gets the speed through
//! `execute_block`; this executor is for code bound to alloy-evm's traits over any database.
//!
//! # Block-level access lists (EIP-7928)
//!
//! A block builder recording the block's access list in revm's `State`
//! (`State::with_bal_builder`) calls [`BlockStmExecutor::execute_block_indexed`], which commits
//! each transaction's changes at its block access index: the `State`'s builder then records the
//! list the sequential executor records, byte for byte.
//!
//! A validator given the block's list calls [`BlockStmExecutor::execute_block_from_access_list`]:
//! the transactions execute from the list, all at once, every location the list names loaded
//! into the shared cache before the workers start (no read crosses threads then), and the list
//! the block makes, system calls and `finish`'s changes included, must be the given one.
//!
//! # When a block runs sequentially instead
//!
//! - An inspector other than `NoOpInspector`: tracing sees every transaction, as it would.
//! - Precompiles other than the fork's own (the parallel VM runs the fork's).
//! - Amsterdam's two-dimensional gas (EIP-8037), which the parallel path does not account.
//! - A block that fails on Block-STM (an invalid transaction, a database error, a gas limit
//!   above what the block leaves): nothing was committed, and the block is executed again
//!   sequentially, so the error is alloy-evm's own, with the transaction's hash.

use crate::bal::{BalBuilder, BlockAccessList, TxAccesses};
use crate::bal_driven::{checked_list, from_access_list, one_thread, same_list};
use crate::chain::into_receipt_envelopes;
use crate::client::{CommitSteps, GasAllowance, TransactionsRun, evm_state};
use crate::database::DatabaseStorage;
use crate::state::{EvmKey, EvmValue};
use crate::vm::{BlockHashes, EvmReceipt, EvmTx, EvmVm, TxJournal};
use ahash::RandomState;
use alloy_consensus::{ReceiptEnvelope, Transaction as _, TxEnvelope};
use alloy_evm::block::state::BalIndexedDatabase;
use alloy_evm::block::{
    BlockExecutionError, BlockExecutionResult, BlockExecutor, BlockExecutorFactory, ExecutableTx, GasOutput,
    StateDB,
};
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_evm::eth::{EthBlockExecutionCtx, EthBlockExecutor, EthEvmContext, EthTxResult};
use alloy_evm::precompiles::PrecompilesMap;
use alloy_evm::{EthEvm, EthEvmFactory, Evm, EvmEnv, EvmFactory, RecoveredTx};
use alloy_primitives::{Address, B256, U256};
use blockstm_executor::{BlockExecutor as _, Config, ParallelExecutor, Storage};
use blockstm_sync::atomic::{AtomicU64, Ordering};
use blockstm_sync::{Backoff, SpinMutex};
use revm::Inspector;
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::context::result::HaltReason;
use revm::database::State;
use revm::database_interface::{Database, DatabaseRef};
use revm::handler::EthPrecompiles;
use revm::inspector::NoOpInspector;
use revm::primitives::{StorageKey, StorageValue};
use revm::state::bal::{Bal, BlockAccessIndex};
use revm::state::{Account, AccountInfo, TransactionId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, mpsc};

/// A `BlockExecutorFactory` whose executors run whole blocks on Block-STM (see the module
/// docs): alloy-evm's `EthBlockExecutorFactory` with alloy's receipts, over `EthEvmFactory`,
/// under the chain specification `Spec`.
#[derive(Clone, Debug)]
pub struct BlockStmExecutorFactory<Spec> {
    spec: Spec,
    config: Config,
    evm_factory: EthEvmFactory,
    receipt_builder: AlloyReceiptBuilder,
    counts: Arc<Counts>,
}

/// How many blocks the executors of a factory (and its clones) ran on each path. Counters
/// only: relaxed increments, read when the caller wants them.
#[derive(Debug, Default)]
struct Counts {
    parallel: AtomicU64,
    sequential: AtomicU64,
}

/// What a [`BlockStmExecutorFactory`]'s executors did with the blocks given to
/// `execute_block`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathCounts {
    /// Blocks executed on Block-STM.
    pub parallel: u64,
    /// Blocks executed sequentially (see the module docs for when).
    pub sequential: u64,
}

impl<Spec> BlockStmExecutorFactory<Spec> {
    /// Executors under `spec` that run blocks on Block-STM with `config`.
    pub fn new(spec: Spec, config: Config) -> Self {
        Self {
            spec,
            config,
            evm_factory: EthEvmFactory::default(),
            receipt_builder: AlloyReceiptBuilder::default(),
            counts: Arc::default(),
        }
    }

    /// The chain specification.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// How many blocks this factory's executors (and its clones') ran on each path.
    pub fn path_counts(&self) -> PathCounts {
        PathCounts {
            parallel: self.counts.parallel.load(Ordering::Relaxed),
            sequential: self.counts.sequential.load(Ordering::Relaxed),
        }
    }
}

impl<Spec: EthExecutorSpec + 'static> BlockExecutorFactory for BlockStmExecutorFactory<Spec> {
    type EvmFactory = EthEvmFactory;
    type ExecutionCtx<'a> = EthBlockExecutionCtx<'a>;
    type Transaction = TxEnvelope;
    type Receipt = ReceiptEnvelope;
    type TxExecutionResult = EthTxResult<HaltReason, alloy_consensus::TxType>;
    type Executor<'a, DB: StateDB, I: Inspector<EthEvmContext<DB>>> = BlockStmExecutor<'a, DB, I, Spec>;

    fn evm_factory(&self) -> &EthEvmFactory {
        &self.evm_factory
    }

    fn create_executor<'a, DB, I>(
        &'a self,
        evm: EthEvm<DB, I, PrecompilesMap>,
        ctx: EthBlockExecutionCtx<'a>,
    ) -> BlockStmExecutor<'a, DB, I, Spec>
    where
        DB: StateDB,
        I: Inspector<EthEvmContext<DB>>,
    {
        BlockStmExecutor {
            inner: EthBlockExecutor::new(evm, ctx, &self.spec, &self.receipt_builder),
            config: self.config,
            counts: &self.counts,
        }
    }
}

/// The EVM of the factory's executors.
type ExecutorEvm<DB, I> = EthEvm<DB, I, PrecompilesMap>;

/// alloy-evm's executor as the factory's executors wrap it.
type Inner<'a, DB, I, Spec> =
    EthBlockExecutor<'a, EthEvm<DB, I, PrecompilesMap>, &'a Spec, &'a AlloyReceiptBuilder>;

/// The executor of [`BlockStmExecutorFactory`]: alloy-evm's `EthBlockExecutor` (its public
/// fields and every method but `execute_block`), with `execute_block` on Block-STM.
pub struct BlockStmExecutor<'a, DB: alloy_evm::Database, I, Spec> {
    /// alloy-evm's executor, holding the EVM, its database and the block's receipts.
    pub inner: Inner<'a, DB, I, Spec>,
    config: Config,
    counts: &'a Counts,
}

impl<DB: alloy_evm::Database, I, Spec> fmt::Debug for BlockStmExecutor<'_, DB, I, Spec> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockStmExecutor").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<'a, DB, I, Spec> BlockExecutor for BlockStmExecutor<'a, DB, I, Spec>
where
    DB: StateDB,
    I: Inspector<EthEvmContext<DB>>,
    Spec: EthExecutorSpec,
{
    type Transaction = TxEnvelope;
    type Receipt = ReceiptEnvelope;
    type Evm = EthEvm<DB, I, PrecompilesMap>;
    type Result = EthTxResult<HaltReason, alloy_consensus::TxType>;

    fn apply_pre_execution_changes(&mut self) -> Result<(), BlockExecutionError> {
        self.inner.apply_pre_execution_changes()
    }

    fn execute_transaction_without_commit(
        &mut self,
        tx: impl ExecutableTx<Self>,
    ) -> Result<Self::Result, BlockExecutionError> {
        let (env, tx) = tx.into_parts();
        self.inner.execute_transaction_without_commit((env, tx))
    }

    fn commit_transaction(&mut self, output: Self::Result) -> GasOutput {
        self.inner.commit_transaction(output)
    }

    fn finish(self) -> Result<(Self::Evm, BlockExecutionResult<ReceiptEnvelope>), BlockExecutionError> {
        self.inner.finish()
    }

    fn evm_mut(&mut self) -> &mut Self::Evm {
        self.inner.evm_mut()
    }

    fn evm(&self) -> &Self::Evm {
        self.inner.evm()
    }

    fn receipts(&self) -> &[ReceiptEnvelope] {
        self.inner.receipts()
    }

    /// The pre-execution changes, the transactions on Block-STM (committed into the
    /// database at once), then `finish`; sequentially when the module docs say so.
    fn execute_block(
        mut self,
        transactions: impl IntoIterator<Item = impl ExecutableTx<Self>>,
    ) -> Result<BlockExecutionResult<ReceiptEnvelope>, BlockExecutionError> {
        self.inner.apply_pre_execution_changes()?;
        let txns: Vec<_> = transactions.into_iter().map(|tx| tx.into_parts()).collect();
        if !self.transactions_in_parallel(&txns, Commit::Merged)? {
            for (env, tx) in txns {
                self.inner.execute_transaction((env, tx))?;
            }
        }
        self.inner.finish().map(|(_, result)| result)
    }
}

impl<DB, I, Spec> BlockStmExecutor<'_, DB, I, Spec>
where
    DB: StateDB,
    I: Inspector<EthEvmContext<DB>>,
    Spec: EthExecutorSpec,
{
    /// `txns` on Block-STM, committed as `commit` says, if the parallel path applies and the
    /// block does not fail on it: `Ok(true)`; `Ok(false)` if nothing was committed. Counts
    /// the path.
    fn transactions_in_parallel<T: RecoveredTx<TxEnvelope>>(
        &mut self,
        txns: &[(TxEnv, T)],
        commit: Commit<DB>,
    ) -> Result<bool, BlockExecutionError> {
        let parallel = !txns.is_empty()
            && parallel_path_applies(&self.inner.evm)
            && execute_in_parallel(&mut self.inner, txns, self.config, commit)?;
        let path = if parallel { &self.counts.parallel } else { &self.counts.sequential };
        path.fetch_add(1, Ordering::Relaxed);
        Ok(parallel)
    }
}

impl<DB, I, Spec> BlockStmExecutor<'_, DB, I, Spec>
where
    DB: StateDB + BalIndexedDatabase,
    I: Inspector<EthEvmContext<DB>>,
    Spec: EthExecutorSpec,
{
    /// [`execute_block`](BlockExecutor::execute_block) with every change committed at its
    /// block access index (EIP-7928), as a client building a block's access list drives
    /// alloy-evm's executor: the pre-execution changes at index 0, transaction `i` at `i + 1`
    /// (as `execute_transaction_with_index` commits it), `finish`'s changes at `n + 1`.
    ///
    /// Over revm's `State` recording an access list (`State::with_bal_builder`),
    /// `take_built_bal` then returns the block's list: the one the sequential executor
    /// records, byte for byte. The transactions run on Block-STM; each one's journal state
    /// is then committed in block order on the calling thread, as the sequential executor
    /// commits it (so this costs more than `execute_block`'s one commit of the block's
    /// changes). Returns the EVM, as `finish` does: alloy-evm's block-access-list index is set
    /// on a database the EVM owns (`State`, not `&mut State`), which the caller takes back
    /// from it.
    pub fn execute_block_indexed(
        mut self,
        transactions: impl IntoIterator<Item = impl ExecutableTx<Self>>,
    ) -> Result<(ExecutorEvm<DB, I>, BlockExecutionResult<ReceiptEnvelope>), BlockExecutionError> {
        self.inner.evm.db_mut().set_bal_index(0);
        self.inner.apply_pre_execution_changes()?;
        let txns: Vec<_> = transactions.into_iter().map(|tx| tx.into_parts()).collect();
        if !self
            .transactions_in_parallel(&txns, Commit::Indexed(<DB as BalIndexedDatabase>::set_bal_index))?
        {
            for (index, (env, tx)) in txns.into_iter().enumerate() {
                self.inner.execute_transaction_with_index((env, tx), index)?;
            }
        }
        let post = self.inner.receipts.len() as u64 + 1;
        self.inner.evm.db_mut().set_bal_index(post);
        self.inner.finish()
    }
}

impl<DB, I, Spec> BlockStmExecutor<'_, DB, I, Spec>
where
    DB: StateDB,
    I: Inspector<EthEvmContext<DB>>,
    Spec: EthExecutorSpec,
{
    /// [`execute_block`](BlockExecutor::execute_block) for a block that comes with its
    /// access list (EIP-7928), as a validator receives it: the transactions execute from the
    /// list, all at once (see [`execute_block_from_access_list`](crate::execute_block_from_access_list)),
    /// and the list the block makes, system calls, withdrawals and rewards included, must be
    /// `list` exactly.
    ///
    /// A list that is malformed, holds invalid code, or differs from the block's fails the
    /// block with a validation error holding an [`AccessListError`](crate::AccessListError)
    /// (see [`in_block_error`](crate::AccessListError::in_block_error)) that names the first
    /// location where they part and the transaction of its index. Whatever the list says, the changes committed are the ones
    /// alloy-evm's sequential execution makes: a wrong list costs re-executions and then fails
    /// the block, never a wrong state.
    ///
    /// Where the parallel path does not apply (see the module docs), and for a block on one
    /// thread (as [`Config`]'s adaptive rules decide it), the transactions run on alloy-evm's
    /// executor, their entries recorded from its journal states, and the list is checked all
    /// the same. As with alloy-evm's `execute_block`, a block that fails leaves in the
    /// database what it committed before the failure: pre-execution changes, and for a list
    /// found wrong, the whole block's.
    pub fn execute_block_from_access_list(
        mut self,
        transactions: impl IntoIterator<Item = impl ExecutableTx<Self>>,
        list: &BlockAccessList,
    ) -> Result<BlockExecutionResult<ReceiptEnvelope>, BlockExecutionError> {
        let txns: Vec<_> = transactions.into_iter().map(|tx| tx.into_parts()).collect();
        let n = txns.len();
        let overlay = !txns.is_empty()
            && parallel_path_applies(&self.inner.evm)
            && !one_thread(txns.iter().map(|(env, _)| env.gas_limit), self.config);
        let bal = checked_list(list, n, overlay)?;

        let pre = self.system_entries(0, SystemStep::Pre)?;
        self.inner.apply_pre_execution_changes()?;
        let beneficiary = self.inner.evm.block().beneficiary;
        let balance = self.inner.evm.db_mut().basic(beneficiary).map_err(BlockExecutionError::other)?;
        let built = BalBuilder::new(pre, beneficiary, balance.map_or(U256::ZERO, |info| info.balance));
        let mut built = match self.transactions_from_list(&txns, bal.as_ref(), &built)? {
            Some(built) => built,
            None => {
                let mut built = built;
                for (txn_idx, (env, tx)) in txns.into_iter().enumerate() {
                    let output = self.inner.execute_transaction_without_commit((env, tx))?;
                    // The journal's state holds the fee already (revm's handler credits it).
                    let state = output.result.state.clone();
                    built.transaction(txn_idx, &TxAccesses::record(state, beneficiary, U256::ZERO));
                    self.inner.commit_transaction(output);
                }
                built
            }
        };
        // The receipts lent to alloy-evm's `finish` on the throwaway `State`, and back.
        let mut receipts = std::mem::take(&mut self.inner.receipts);
        built.extend(self.system_entries(n as u64 + 1, SystemStep::Post(&mut receipts))?);
        self.inner.receipts = receipts;
        let (_, result) = self.inner.finish()?;
        same_list(&built.finish(), list, n)?;
        Ok(result)
    }

    /// `txns` executed from `bal` (the list in revm's form, if the list-driven path applies),
    /// their changes committed and their entries appended to a copy of `built`, if the block
    /// does not fail on that path; `None` if nothing was committed. Counts the path.
    fn transactions_from_list<T: RecoveredTx<TxEnvelope>>(
        &mut self,
        txns: &[(TxEnv, T)],
        bal: Option<&Bal>,
        built: &BalBuilder,
    ) -> Result<Option<BalBuilder>, BlockExecutionError> {
        let mut done = None;
        if let Some(bal) = bal {
            let evm_txns: Vec<EvmTx> = txns.iter().map(|(env, _)| EvmTx(env.clone())).collect();
            let env = evm_env(&self.inner.evm);
            let threads = self.config.threads();
            if let Some((run, built)) =
                run_from_list(self.inner.evm.db_mut(), env, &evm_txns, bal, threads, built.clone())
            {
                record_run(&mut self.inner, txns, run, Commit::Merged)?;
                done = Some(built);
            }
        }
        let path = if done.is_some() { &self.counts.parallel } else { &self.counts.sequential };
        path.fetch_add(1, Ordering::Relaxed);
        Ok(done)
    }

    /// The access-list entries at block access `index` of `step` (alloy-evm's own code for
    /// the changes before or after the transactions), recorded by revm's builder on a
    /// `State` over the executor's database that is then dropped: the database is left as
    /// it was, for the executor to make the same changes.
    fn system_entries(&mut self, index: u64, step: SystemStep<'_>) -> Result<Bal, BlockExecutionError> {
        let env = evm_env(&self.inner.evm);
        let (ctx, spec, receipt_builder) =
            (self.inner.ctx.clone(), self.inner.spec, self.inner.receipt_builder);
        let direct = Direct(RefCell::new(self.inner.evm.db_mut()));
        let mut state = State::builder().with_database_ref(&direct).with_bal_builder().build();
        state.set_bal_index(BlockAccessIndex::new(index));
        {
            let evm = EthEvmFactory::default().create_evm(&mut state, env);
            let mut executor = EthBlockExecutor::new(evm, ctx, spec, receipt_builder);
            match step {
                SystemStep::Pre => executor.apply_pre_execution_changes()?,
                SystemStep::Post(receipts) => {
                    executor.receipts = std::mem::take(receipts);
                    *receipts = executor.finish()?.1.receipts;
                }
            }
        }
        Ok(state.take_built_bal().unwrap_or_default())
    }
}

/// The changes around a block's transactions, as alloy-evm's executor makes them.
enum SystemStep<'r> {
    /// Before the transactions (`apply_pre_execution_changes`).
    Pre,
    /// After the transactions with these receipts (`finish`), handed back after it.
    Post(&'r mut Vec<ReceiptEnvelope>),
}

/// How the transactions' changes go into the executor's database.
enum Commit<DB> {
    /// The block's changes at once.
    Merged,
    /// Each transaction's journal state in turn, after setting the database's block access
    /// index to the transaction's with the function given.
    Indexed(fn(&mut DB, u64)),
}

/// Commits a transaction's `journal` state into `db` as the sequential executor commits it:
/// with its fee credited to `beneficiary` (loaded as the transactions before left it when the
/// transaction did not load it), as revm's handler credits it in the journal.
fn commit_journal<DB: StateDB>(
    db: &mut DB,
    beneficiary: Address,
    journal: TxJournal,
) -> Result<(), BlockExecutionError> {
    let TxJournal { mut state, fee } = journal;
    let account = match state.entry(beneficiary) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => {
            let before = db.basic(beneficiary).map_err(BlockExecutionError::other)?;
            entry.insert(before.map_or_else(|| Account::new_not_existing(TransactionId::ZERO), Account::from))
        }
    };
    account.info.balance = account.info.balance.saturating_add(fee);
    account.mark_touch();
    db.commit(state);
    Ok(())
}

/// Whether the parallel VM executes what `evm` would: no inspector, the fork's own
/// precompiles, no two-dimensional gas.
fn parallel_path_applies<DB, I>(evm: &EthEvm<DB, I, PrecompilesMap>) -> bool
where
    DB: alloy_evm::Database,
    I: Inspector<EthEvmContext<DB>>,
{
    let own = EthPrecompiles::new(evm.cfg_env().spec).precompiles;
    let theirs = evm.precompiles();
    std::any::type_name::<I>() == std::any::type_name::<NoOpInspector>()
        && !evm.cfg_env().enable_amsterdam_eip8037
        && own.len() == theirs.addresses().count()
        && own.addresses().all(|a| theirs.get(a).is_some())
}

/// `txns` on Block-STM over the executor's database, committed into it with the receipts and
/// gas figures recorded in `inner`: `Ok(true)`. `Ok(false)` if the block failed on Block-STM
/// (nothing committed: the caller executes it sequentially for alloy-evm's own error).
fn execute_in_parallel<DB, I, Spec, T>(
    inner: &mut Inner<'_, DB, I, Spec>,
    txns: &[(TxEnv, T)],
    config: Config,
    commit: Commit<DB>,
) -> Result<bool, BlockExecutionError>
where
    DB: StateDB,
    I: Inspector<EthEvmContext<DB>>,
    Spec: EthExecutorSpec,
    T: RecoveredTx<TxEnvelope>,
{
    let evm_txns: Vec<EvmTx> = txns.iter().map(|(env, _)| EvmTx(env.clone())).collect();
    let journals = matches!(commit, Commit::Indexed(_));
    let env = evm_env(&inner.evm);
    let Some(run) = run(inner.evm.db_mut(), env, &evm_txns, config, journals) else {
        return Ok(false);
    };
    record_run(inner, txns, run, commit)?;
    Ok(true)
}

/// The environment of `evm`'s block.
fn evm_env<DB, I>(evm: &ExecutorEvm<DB, I>) -> EvmEnv
where
    DB: alloy_evm::Database,
    I: Inspector<EthEvmContext<DB>>,
{
    EvmEnv { cfg_env: evm.cfg_env().clone(), block_env: evm.block().clone() }
}

/// The transactions `txns` ran as `run`: their changes committed into the executor's database
/// as `commit` says, their receipts and gas figures recorded in `inner`.
fn record_run<DB, I, Spec, T>(
    inner: &mut Inner<'_, DB, I, Spec>,
    txns: &[(TxEnv, T)],
    run: TransactionsRun,
    commit: Commit<DB>,
) -> Result<(), BlockExecutionError>
where
    DB: StateDB,
    I: Inspector<EthEvmContext<DB>>,
    Spec: EthExecutorSpec,
    T: RecoveredTx<TxEnvelope>,
{
    let TransactionsRun { mut outputs, state: changes, .. } = run;
    let block = inner.evm.block();
    let cancun = inner.spec.is_cancun_active_at_timestamp(block.timestamp.saturating_to());
    let beneficiary = block.beneficiary;
    let db = inner.evm.db_mut();
    match commit {
        Commit::Merged => {
            let state = {
                let direct = Direct(RefCell::new(&mut *db));
                let mut storage = DatabaseStorage::new(&direct);
                storage.extend(changes);
                evm_state(&storage).map_err(BlockExecutionError::other)?
            };
            db.commit(state);
        }
        Commit::Indexed(set_index) => {
            for (txn_idx, receipt) in outputs.iter_mut().enumerate() {
                let journal = receipt.journal.take().ok_or_else(|| {
                    BlockExecutionError::msg(format!("transaction {txn_idx}: its journal state was not kept"))
                })?;
                set_index(db, txn_idx as u64 + 1);
                commit_journal(db, beneficiary, *journal)?;
            }
        }
    }
    inner.cumulative_tx_gas_used = outputs.iter().map(|r| r.gas_used).sum();
    inner.receipts = into_receipt_envelopes(outputs);
    inner.block_regular_gas_used = inner.cumulative_tx_gas_used;
    if cancun {
        inner.blob_gas_used = txns.iter().filter_map(|(_, tx)| tx.tx().blob_gas_used()).sum();
    }
    Ok(())
}

/// `txns` on Block-STM over `db` in the block `env`, reads served from this thread: the
/// receipts and the final value of every location written, or `None` if the block failed.
/// With `journals`, each receipt also keeps its transaction's journal state.
fn run<DB: Database>(
    db: &mut DB,
    env: EvmEnv,
    txns: &[EvmTx],
    config: Config,
    journals: bool,
) -> Option<TransactionsRun> {
    let gas_limits: Vec<u64> = txns.iter().map(|tx| tx.0.gas_limit).collect();
    let mut allowance = GasAllowance::new(env.block_env.gas_limit, &gas_limits);
    let known = known_accounts(env.block_env.beneficiary, txns).map(EvmKey::Account);
    let result = serving(db, known, |storage| {
        let vm = EvmVm::from_env(env, storage);
        let vm = if journals { vm.keeping_journals() } else { vm };
        ParallelExecutor::new(vm, config).execute_block_with_hook(
            storage,
            txns,
            &mut |i, receipt: &EvmReceipt| allowance.on_commit(i, receipt),
        )
    });
    match result {
        Some(Ok(out)) if allowance.exceeded.is_none() => {
            Some(TransactionsRun { outputs: out.outputs, state: out.state, stats: out.stats })
        }
        // A failure of the block, or a panic of the executor itself (it contains the VM's).
        _ => None,
    }
}

/// `txns` executed from the block's access list `bal` over `db` in the block `env`, reads
/// served from this thread, each transaction's entries appended to `built`: the receipts and
/// the final value of every location written with the list the block made, or `None` if the
/// block failed.
///
/// The list names every account and slot the block touches: all are loaded before the work
/// starts, so the workers read without a round trip to this thread (only a location the
/// list leaves out, which makes the block fail its comparison, is served during the work).
fn run_from_list<DB: Database>(
    db: &mut DB,
    env: EvmEnv,
    txns: &[EvmTx],
    bal: &Bal,
    threads: usize,
    built: BalBuilder,
) -> Option<(TransactionsRun, BalBuilder)> {
    let gas_limits: Vec<u64> = txns.iter().map(|tx| tx.0.gas_limit).collect();
    let mut steps = CommitSteps::new(GasAllowance::new(env.block_env.gas_limit, &gas_limits), Some(built));
    let listed = bal.accounts.iter().flat_map(|(&address, account)| {
        let slots = account.storage.storage.keys().map(move |&slot| EvmKey::Storage(address, slot));
        std::iter::once(EvmKey::Account(address)).chain(slots)
    });
    let known = known_accounts(env.block_env.beneficiary, txns).map(EvmKey::Account);
    let result = serving(db, known.chain(listed), |storage| {
        let vm = EvmVm::from_env(env, storage).recording_accesses();
        from_access_list(storage, &vm, txns, bal, threads, &mut steps)
    });
    match (result, steps.into_bal()) {
        (Some(Ok(out)), Some(built)) => Some((out, built)),
        // A failure of the block, or a panic outside the transactions.
        _ => None,
    }
}

/// The accounts every transaction of `txns` reads (its sender, its recipient) and the
/// block's `beneficiary`.
fn known_accounts(beneficiary: Address, txns: &[EvmTx]) -> impl Iterator<Item = Address> + '_ {
    let known = txns.iter().flat_map(|tx| [Some(tx.0.caller), tx.0.kind.to().copied()]);
    known.flatten().chain([beneficiary])
}

/// What `work` returns, run on a scoped thread over `db`'s state while this thread serves
/// its reads (see the module docs): `None` if a read before the work failed or the work
/// panicked. The locations `known` are loaded before the work starts, without a round trip.
fn serving<DB: Database, R: Send>(
    db: &mut DB,
    known: impl Iterator<Item = EvmKey>,
    work: impl FnOnce(&Served<DB::Error>) -> R + Send,
) -> Option<R> {
    let direct = Direct(RefCell::new(db));
    let base = DatabaseStorage::new(&direct);
    let (requests, served) = mpsc::channel();
    let storage = Served::new(requests);
    for key in known {
        let value = base.get(&key).ok()?;
        storage.insert(key, value);
    }
    let result = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            // Moved in: the channel closes, and the loop below ends, when the work returns.
            let storage = storage;
            work(&storage)
        });
        while let Ok(request) = receive(&served) {
            // An answer no one waits for any more (the block failed) is dropped.
            match request {
                Request::Read(key, reply) => drop(reply.send(base.get(&key))),
                Request::BlockHash(number, reply) => drop(reply.send(direct.block_hash_ref(number))),
            }
        }
        worker.join()
    });
    result.ok()
}

/// Snoozes (spins, then yields) before blocking on `channel`.
const SNOOZES: usize = 512;

/// The next message on `channel`, or `Err` once every sender is gone. Requests come in bursts
/// and an answer within microseconds, so both sides poll a little (spinning, then yielding
/// to the workers) before they park: a park and a wake-up cost tens of microseconds on a VM,
/// per read.
fn receive<T>(channel: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
    let backoff = Backoff::new();
    for _ in 0..SNOOZES {
        match channel.try_recv() {
            Ok(message) => return Ok(message),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) => backoff.snooze(),
        }
    }
    channel.recv()
}

/// A `Database` read through `&self` (`DatabaseRef`), on the thread that owns it.
struct Direct<'a, DB>(RefCell<&'a mut DB>);

impl<DB> fmt::Debug for Direct<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct").finish_non_exhaustive()
    }
}

impl<DB: Database> DatabaseRef for Direct<'_, DB> {
    type Error = DB::Error;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DB::Error> {
        self.0.borrow_mut().basic(address)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DB::Error> {
        self.0.borrow_mut().code_by_hash(code_hash)
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, DB::Error> {
        self.0.borrow_mut().storage(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DB::Error> {
        self.0.borrow_mut().block_hash(number)
    }
}

/// A read sent to the thread that owns the database, with where to answer it.
enum Request<E> {
    /// The value at a location.
    Read(EvmKey, mpsc::SyncSender<Result<Option<EvmValue>, E>>),
    /// The hash of a block (`BLOCKHASH`).
    BlockHash(u64, mpsc::SyncSender<Result<B256, E>>),
}

const SHARDS: usize = 16;

/// The executor's pre-state when the database stays on the calling thread: a cache of what
/// was read, sharded by location, and the channel of the reads it misses.
struct Served<E> {
    requests: mpsc::Sender<Request<E>>,
    // Lock order: one lock at a time (a shard or the hashes), never held across the channel.
    shards: [SpinMutex<HashMap<EvmKey, Option<EvmValue>, RandomState>>; SHARDS],
    hashes: SpinMutex<HashMap<u64, B256, RandomState>>,
}

impl<E> fmt::Debug for Served<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Served").finish_non_exhaustive()
    }
}

impl<E> Served<E> {
    fn new(requests: mpsc::Sender<Request<E>>) -> Self {
        Self {
            requests,
            shards: std::array::from_fn(|_| SpinMutex::new(HashMap::with_hasher(RandomState::new()))),
            hashes: SpinMutex::new(HashMap::with_hasher(RandomState::new())),
        }
    }

    /// The shard of `key`, from a byte of it rather than a second hash (the map hashes it
    /// again): addresses and most slots are keccak outputs already, and the slot's low byte
    /// spreads a contract's small slot numbers over the shards.
    fn shard(&self, key: &EvmKey) -> &SpinMutex<HashMap<EvmKey, Option<EvmValue>, RandomState>> {
        let byte = match key {
            EvmKey::Account(address) => address[19],
            EvmKey::Storage(address, slot) => address[19] ^ slot.byte(0),
        };
        &self.shards[usize::from(byte) % SHARDS]
    }

    fn insert(&self, key: EvmKey, value: Option<EvmValue>) {
        self.shard(&key).lock().insert(key, value);
    }
}

/// Why a read could not be served.
#[derive(Debug)]
pub(crate) enum ServeError<E> {
    /// The database failed.
    Database(E),
    /// The thread serving reads is gone (it ends only after the block).
    Gone,
}

impl<E: fmt::Display> fmt::Display for ServeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Database(e) => e.fmt(f),
            ServeError::Gone => f.write_str("the thread serving the database's reads is gone"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ServeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Database(e) => Some(e),
            ServeError::Gone => None,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> Storage<EvmKey, EvmValue> for Served<E> {
    type Error = ServeError<E>;

    fn read(&self, key: &EvmKey) -> Result<Option<EvmValue>, ServeError<E>> {
        if let Some(value) = self.shard(key).lock().get(key) {
            return Ok(value.clone());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests.send(Request::Read(*key, reply)).map_err(|_| ServeError::Gone)?;
        let value = receive(&answer).map_err(|_| ServeError::Gone)?.map_err(ServeError::Database)?;
        self.insert(*key, value.clone());
        Ok(value)
    }
}

impl<E: std::error::Error + Send + Sync> BlockHashes for Served<E> {
    fn block_hash(&self, number: u64) -> Result<Option<B256>, String> {
        if let Some(hash) = self.hashes.lock().get(&number) {
            return Ok(Some(*hash));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || ServeError::<E>::Gone.to_string();
        self.requests.send(Request::BlockHash(number, reply)).map_err(|_| gone())?;
        let hash = receive(&answer).map_err(|_| gone())?.map_err(|e| e.to_string())?;
        self.hashes.lock().insert(number, hash);
        Ok(Some(hash))
    }
}
