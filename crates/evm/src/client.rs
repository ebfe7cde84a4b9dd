//! The client API: one block executed in parallel from what an Ethereum client holds (any
//! `revm::DatabaseRef` as the pre-state, alloy-evm's `EvmEnv` and `EthBlockExecutionCtx` for
//! the block, alloy's recovered transactions, a chain specification implementing alloy-evm's
//! `EthExecutorSpec`), with a client's results out: alloy receipts, gas figures, the EIP-7685
//! requests, and the state changes as revm's `EvmState`, which `revm::database::State::commit`
//! merges as it merges a sequential executor's.
//!
//! The order is alloy-evm's `EthBlockExecutor`'s: the pre-execution system calls (EIP-2935's
//! block hashes, EIP-4788's beacon root) through alloy-evm's own `SystemCaller`, the
//! transactions on Block-STM over the pre-state and those calls' writes, then the requests
//! (EIP-6110 deposits parsed from the receipts, the EIP-7002 and EIP-7251 system calls), then
//! the balance increments (withdrawals, block and ommer rewards, alloy-evm's
//! `post_block_balance_increments`). The DAO fork's irregular state change runs before the
//! transactions of its block, as geth runs it (the blockchain tests' gas figures require it).

use crate::bal::{BalBuilder, BlockAccessList};
use crate::bal_driven::AccessListError;
use crate::chain::into_receipt_envelopes;
use crate::database::DatabaseStorage;
use crate::state::{AccountBasic, AccountState, BalanceCredit, EvmKey, EvmValue, SlotValue};
use crate::vm::{EvmError, EvmReceipt, EvmTx, EvmVm};
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip7685::Requests;
use alloy_evm::block::state_changes::post_block_balance_increments;
use alloy_evm::block::{BlockExecutionError, SystemCaller};
use alloy_evm::eth::dao_fork::{DAO_HARDFORK_ACCOUNTS, DAO_HARDFORK_BENEFICIARY};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_evm::eth::{EthBlockExecutionCtx, eip6110};
use alloy_evm::precompiles::PrecompilesMap;
use alloy_evm::{EthEvm, EthEvmFactory, EvmEnv, EvmFactory};
use alloy_hardforks::EthereumHardfork;
use alloy_primitives::map::{AddressMap, HashMap};
use alloy_primitives::{Address, U256};
use blockstm_executor::{
    BlockError, BlockExecutor, Config, Delta, ParallelExecutor, SequentialExecutor, Stats, Storage,
};
use revm::context_interface::Transaction;
use revm::database::states::bundle_state::BundleRetention;
use revm::database::{State, WrapDatabaseRef};
use revm::database_interface::DatabaseRef;
use revm::inspector::NoOpInspector;
use revm::primitives::hardfork::SpecId;
use revm::state::bal::{Bal, BlockAccessIndex};
use revm::state::{Account, AccountInfo, AccountStatus, EvmState, EvmStorageSlot, TransactionId};
use std::fmt;
use std::ops::ControlFlow;

/// A block as a client hands it over: its environment (chain id, fork, block fields) as
/// alloy-evm builds it (`EvmEnv::for_eth_block`), its execution context (parent hash, parent
/// beacon root, ommers, withdrawals), and its transactions with their senders recovered.
#[derive(Debug)]
pub struct BlockInput<'a> {
    /// The environment: `cfg_env` (chain id, fork, the client's settings) and `block_env`.
    pub env: EvmEnv,
    /// The execution context, as alloy-evm's block executor takes it.
    pub ctx: EthBlockExecutionCtx<'a>,
    /// The transactions, in block order.
    pub transactions: &'a [Recovered<TxEnvelope>],
}

/// What executing a block produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct BlockExecution {
    /// One receipt per transaction (type, status, cumulative gas, logs), as alloy-evm's
    /// receipt builder makes them.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Gas used by the transactions.
    pub gas_used: u64,
    /// Blob gas used by the transactions (EIP-4844).
    pub blob_gas_used: u64,
    /// The EIP-7685 requests (empty before Prague).
    pub requests: Requests,
    /// Every account the block changed (system calls, transactions, requests, withdrawals and
    /// rewards), as revm's journal hands state to `State::commit`: touched, created (storage
    /// cleared earlier in the block) or self-destructed, with each changed slot's value before
    /// the block and after it.
    pub state: EvmState,
    /// What the parallel executor did.
    pub stats: Stats,
    /// The block-level access list (EIP-7928), when asked for
    /// ([`ExecuteOptions::with_block_access_list`]).
    pub block_access_list: Option<BlockAccessList>,
}

/// How [`execute_block_with`] runs a block: on Block-STM or sequentially, and whether it builds
/// the block's access list.
#[derive(Clone, Copy, Debug)]
pub struct ExecuteOptions {
    parallel: Option<Config>,
    block_access_list: bool,
}

impl ExecuteOptions {
    /// On Block-STM with `config`.
    pub fn parallel(config: Config) -> Self {
        Self { parallel: Some(config), block_access_list: false }
    }

    /// On blockstm's sequential executor.
    pub fn sequential() -> Self {
        Self { parallel: None, block_access_list: false }
    }

    /// Also building the block-level access list (EIP-7928) from the execution, as a block
    /// builder needs it: each transaction's accesses are kept by the execution that commits,
    /// so the list costs no second pass over the state.
    pub fn with_block_access_list(mut self) -> Self {
        self.block_access_list = true;
        self
    }
}

/// Why a block could not be executed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// A transaction failed the block: invalid (it names the transaction and the rule), a
    /// database error met by it (kept as the source), or an executor failure.
    Block(BlockError<EvmError>),
    /// A system call or post-block change failed (alloy-evm's error, the database's inside).
    System(BlockExecutionError),
    /// Transaction `txn_idx`'s gas limit exceeds what the transactions before it left of the
    /// block's gas limit: the block is invalid.
    BlockGasExceeded {
        /// The transaction.
        txn_idx: usize,
        /// Its gas limit.
        gas_limit: u64,
    },
    /// The block's access list is malformed or is not the block's
    /// ([`execute_block_from_access_list`](crate::execute_block_from_access_list)).
    AccessList(AccessListError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Block(e) => e.fmt(f),
            ClientError::System(e) => write!(f, "system call or post-block change: {e}"),
            ClientError::BlockGasExceeded { txn_idx, gas_limit } => write!(
                f,
                "transaction {txn_idx}: gas limit {gas_limit} above what the block's gas limit leaves"
            ),
            ClientError::AccessList(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Block(e) => Some(e),
            ClientError::System(e) => Some(e),
            ClientError::BlockGasExceeded { .. } => None,
            ClientError::AccessList(e) => Some(e),
        }
    }
}

impl From<BlockError<EvmError>> for ClientError {
    fn from(e: BlockError<EvmError>) -> Self {
        ClientError::Block(e)
    }
}

impl From<AccessListError> for ClientError {
    fn from(e: AccessListError) -> Self {
        ClientError::AccessList(e)
    }
}

impl From<BlockExecutionError> for ClientError {
    fn from(e: BlockExecutionError) -> Self {
        ClientError::System(e)
    }
}

/// Executes `block` on Block-STM with `config` over the pre-state `db`, under `chain`'s fork
/// schedule, deposit contract and rewards. The result is the sequential executor's, bit for
/// bit, at every thread count.
pub fn execute_block<DB, C>(
    db: &DB,
    chain: &C,
    block: BlockInput<'_>,
    config: Config,
) -> Result<BlockExecution, ClientError>
where
    DB: DatabaseRef + Sync + fmt::Debug,
    C: EthExecutorSpec,
{
    execute_block_with(db, chain, block, ExecuteOptions::parallel(config))
}

/// [`execute_block`] on blockstm's sequential executor: the transactions one after another on
/// the calling thread, with no Block-STM bookkeeping (the baseline its figures are measured
/// against; `stats` reports one thread).
pub fn execute_block_sequential<DB, C>(
    db: &DB,
    chain: &C,
    block: BlockInput<'_>,
) -> Result<BlockExecution, ClientError>
where
    DB: DatabaseRef + Sync + fmt::Debug,
    C: EthExecutorSpec,
{
    execute_block_with(db, chain, block, ExecuteOptions::sequential())
}

/// [`execute_block`] or [`execute_block_sequential`] as `options` say, building the block's
/// access list if they ask for it (the DAO fork's irregular change, made before the
/// transactions here, is then listed at index 0).
pub fn execute_block_with<DB, C>(
    db: &DB,
    chain: &C,
    block: BlockInput<'_>,
    options: ExecuteOptions,
) -> Result<BlockExecution, ClientError>
where
    DB: DatabaseRef + Sync + fmt::Debug,
    C: EthExecutorSpec,
{
    run_block(db, chain, block, options.block_access_list, |storage, vm, txns, steps| {
        let mut hook = |i, receipt: &EvmReceipt| steps.on_commit(i, receipt);
        let out = match options.parallel {
            Some(config) => {
                ParallelExecutor::new(vm, config).execute_block_with_hook(storage, txns, &mut hook)
            }
            None => SequentialExecutor::new(vm).execute_block_with_hook(storage, txns, &mut hook),
        }?;
        Ok(TransactionsRun { outputs: out.outputs, state: out.state, stats: out.stats })
    })
}

/// What the transactions of a block left: a receipt each, the final value of every location
/// they wrote, and how they were run.
pub(crate) struct TransactionsRun {
    pub(crate) outputs: Vec<EvmReceipt>,
    pub(crate) state: Vec<(EvmKey, EvmValue)>,
    pub(crate) stats: Stats,
}

/// The VM the transactions of a block run on: reading block hashes through the database.
pub(crate) type BlockVm<'s, 'db, DB> = EvmVm<&'s DatabaseStorage<&'db DB>>;

/// `block` over `db`: the changes before the transactions, the transactions as `transactions`
/// runs them (over the state the changes before left, on a VM recording accesses if
/// `build_bal`, with the block's gas allowance to enforce), the changes after them; with the
/// block's access list if `build_bal`.
pub(crate) fn run_block<DB, C, F>(
    db: &DB,
    chain: &C,
    block: BlockInput<'_>,
    build_bal: bool,
    transactions_run: F,
) -> Result<BlockExecution, ClientError>
where
    DB: DatabaseRef + Sync + fmt::Debug,
    C: EthExecutorSpec,
    F: for<'s> FnOnce(
        &'s DatabaseStorage<&DB>,
        BlockVm<'s, '_, DB>,
        &[EvmTx],
        &mut CommitSteps<'_>,
    ) -> Result<TransactionsRun, ClientError>,
{
    let BlockInput { env, ctx, transactions } = block;
    let number: u64 = env.block_env.number.saturating_to();
    let mut storage = DatabaseStorage::new(db);
    let post_index = transactions.len() as u64 + 1;

    // Before the transactions.
    let mut pre_bal = Bal::new();
    if chain.ethereum_fork_activation(EthereumHardfork::Dao).transitions_at_block(number) {
        let writes = dao_fork_writes(&storage)?;
        if build_bal {
            for (key, value) in &writes {
                if let (EvmKey::Account(address), EvmValue::Account(now)) = (key, value) {
                    let before = storage.basic_ref(*address).map_err(BlockExecutionError::other)?;
                    let mut account =
                        before.map_or_else(|| Account::new_not_existing(TransactionId::ZERO), Account::from);
                    account.info = now.info.as_ref().map(AccountBasic::to_revm).unwrap_or_default();
                    account.mark_touch();
                    pre_bal.update_account(BlockAccessIndex::PRE_EXECUTION, *address, &account);
                }
            }
        }
        storage.extend(writes);
    }
    let built = system_calls(&mut storage, &env, build_bal.then_some(0), |evm| {
        let mut caller = SystemCaller::new(chain);
        caller.apply_blockhashes_contract_call(ctx.parent_hash, evm)?;
        caller.apply_beacon_root_contract_call(ctx.parent_beacon_block_root, evm)
    })?;
    let mut bal = build_bal
        .then(|| -> Result<BalBuilder, BlockExecutionError> {
            let beneficiary = env.block_env.beneficiary;
            let before = storage.basic_ref(beneficiary).map_err(BlockExecutionError::other)?;
            let balance = before.map_or(U256::ZERO, |info| info.balance);
            let mut bal = BalBuilder::new(pre_bal, beneficiary, balance);
            bal.extend(built.unwrap_or_default());
            Ok(bal)
        })
        .transpose()?;

    // The transactions.
    let mut vm = EvmVm::from_env(env.clone(), &storage);
    if build_bal {
        vm = vm.recording_accesses();
    }
    let txns: Vec<EvmTx> = transactions.iter().map(EvmTx::from_recovered).collect();
    let gas_limits: Vec<u64> = txns.iter().map(|tx| tx.0.gas_limit).collect();
    let mut steps = CommitSteps::new(GasAllowance::new(env.block_env.gas_limit, &gas_limits), bal.take());
    let out = transactions_run(&storage, vm, &txns, &mut steps)?;
    if let Some(txn_idx) = steps.allowance.exceeded {
        return Err(ClientError::BlockGasExceeded { txn_idx, gas_limit: gas_limits[txn_idx] });
    }
    if let Some(txn_idx) = steps.unrecorded {
        let message = format!("transaction {txn_idx}: its accesses were not recorded");
        return Err(BlockExecutionError::msg(message).into());
    }
    let mut bal = steps.bal;
    let gas_used = out.outputs.iter().map(|r| r.gas_used).sum();
    let receipts = into_receipt_envelopes(out.outputs);
    let blob_gas_used = txns.iter().map(|tx| tx.0.total_blob_gas()).sum();
    storage.extend(out.state);

    // After them.
    let timestamp: u64 = env.block_env.timestamp.saturating_to();
    let mut requests = Requests::default();
    if chain.is_prague_active_at_timestamp(timestamp) {
        let deposits =
            eip6110::parse_deposits_from_receipts(chain, &receipts).map_err(BlockExecutionError::from)?;
        if !deposits.is_empty() {
            requests.push_request_with_type(eip6110::DEPOSIT_REQUEST_TYPE, deposits);
        }
        let built = system_calls(&mut storage, &env, build_bal.then_some(post_index), |evm| {
            SystemCaller::new(chain).append_post_execution_changes(evm, &mut requests)
        })?;
        if let (Some(bal), Some(built)) = (&mut bal, built) {
            bal.extend(built);
        }
    }
    let increments =
        post_block_balance_increments(chain, &env.block_env, ctx.ommers, ctx.withdrawals.as_deref());
    let clear_empty = env.cfg_env.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    for (address, amount) in increments {
        if let Some(bal) = &mut bal {
            let before = storage.basic_ref(address).map_err(BlockExecutionError::other)?;
            bal.post_credit(post_index, address, before, U256::from(amount));
        }
        credit(&mut storage, address, U256::from(amount), clear_empty)?;
    }

    let state = evm_state(&storage).map_err(BlockExecutionError::other)?;
    let block_access_list = bal.map(BalBuilder::finish);
    Ok(BlockExecution {
        receipts,
        gas_used,
        blob_gas_used,
        requests,
        state,
        stats: out.stats,
        block_access_list,
    })
}

/// Runs system calls (`calls`, through alloy-evm's `SystemCaller`) on the state `storage`
/// holds, and adds what they wrote to its changes. With `bal_index`, also returns their
/// entries of the block's access list at that index, as revm's builder records them.
fn system_calls<DB, F>(
    storage: &mut DatabaseStorage<&DB>,
    env: &EvmEnv,
    bal_index: Option<u64>,
    calls: F,
) -> Result<Option<Bal>, ClientError>
where
    DB: DatabaseRef + Sync + fmt::Debug,
    F: FnOnce(
        &mut EthEvm<&mut State<WrapDatabaseRef<&DatabaseStorage<&DB>>>, NoOpInspector, PrecompilesMap>,
    ) -> Result<(), BlockExecutionError>,
{
    let (bundle, built) = {
        let mut state = State::builder()
            .with_database_ref(&*storage)
            .with_bundle_update()
            .with_bal_builder_if(bal_index.is_some())
            .build();
        if let Some(index) = bal_index {
            state.set_bal_index(BlockAccessIndex::new(index));
        }
        let mut evm = EthEvmFactory::default().create_evm(&mut state, env.clone());
        calls(&mut evm)?;
        drop(evm);
        state.merge_transitions(BundleRetention::PlainState);
        (state.take_bundle(), state.take_built_bal())
    };
    let mut writes = Vec::new();
    for (address, account) in bundle.state {
        let epoch = storage.epoch(address).map_err(BlockExecutionError::other)?;
        let info = match account.info {
            Some(info) => Some(storage.basic_with_code(info).map_err(BlockExecutionError::other)?),
            None => None,
        };
        writes
            .push((EvmKey::Account(address), EvmValue::Account(AccountState { info, storage_epoch: epoch })));
        for (slot, value) in account.storage {
            let value = SlotValue { value: value.present_value, epoch };
            writes.push((EvmKey::Storage(address, slot), EvmValue::Storage(value)));
        }
    }
    storage.extend(writes);
    Ok(built)
}

/// The DAO fork's irregular state change (EIP-779) over `state`, as writes: every DAO
/// account's balance moved to the refund contract, each account (and the contract) existing
/// afterwards, as geth and alloy-evm leave them before EIP-161.
pub(crate) fn dao_fork_writes<S: Storage<EvmKey, EvmValue>>(
    state: &S,
) -> Result<Vec<(EvmKey, EvmValue)>, BlockExecutionError> {
    let mut drained = U256::ZERO;
    let mut writes = Vec::with_capacity(DAO_HARDFORK_ACCOUNTS.len() + 1);
    for address in DAO_HARDFORK_ACCOUNTS {
        let key = EvmKey::Account(address);
        let mut account = match state.read(&key).map_err(BlockExecutionError::other)? {
            Some(EvmValue::Account(account)) => account,
            _ => AccountState::default(),
        };
        let info = account.info.get_or_insert_with(|| AccountBasic::with_balance(U256::ZERO));
        drained += std::mem::take(&mut info.balance);
        writes.push((key, EvmValue::Account(account)));
    }
    let refund = EvmKey::Account(DAO_HARDFORK_BENEFICIARY);
    let current = state.read(&refund).map_err(BlockExecutionError::other)?;
    let credited = BalanceCredit { amount: drained, clear_empty: false }
        .apply(current.as_ref())
        .map_err(BlockExecutionError::other)?;
    writes.push((refund, credited));
    Ok(writes)
}

/// `amount` credited to `address` (created if absent; removed if left empty under EIP-161).
fn credit<DB: DatabaseRef + Sync>(
    storage: &mut DatabaseStorage<&DB>,
    address: Address,
    amount: U256,
    clear_empty: bool,
) -> Result<(), BlockExecutionError> {
    let key = EvmKey::Account(address);
    let current = storage.read(&key).map_err(BlockExecutionError::other)?;
    let credited =
        BalanceCredit { amount, clear_empty }.apply(current.as_ref()).map_err(BlockExecutionError::other)?;
    storage.extend([(key, credited)]);
    Ok(())
}

/// The changes `storage` holds over its database, as revm's `EvmState`: each account with its
/// value before the block as the original, touched, and created (its storage cleared in the
/// block) or self-destructed (absent at the end); each slot written in the account's current
/// storage epoch with its value before the block and after.
pub(crate) fn evm_state<DB: DatabaseRef>(storage: &DatabaseStorage<DB>) -> Result<EvmState, DB::Error> {
    // Two passes over the changes, no grouping: the accounts written, then the slots (an
    // account only its slots were written to is unchanged: its value now is its value before).
    // `epochs` holds what the slots' pass needs beyond that: the storage epoch of an account
    // whose epoch is not 0, `None` for one whose slots are all gone (absent at the end).
    let mut state: EvmState =
        HashMap::with_capacity_and_hasher(storage.changes().len() / 2, Default::default());
    let mut epochs: AddressMap<Option<u32>> = AddressMap::default();
    for (key, value) in storage.changes() {
        let (EvmKey::Account(address), EvmValue::Account(now)) = (key, value) else { continue };
        let before = storage.db().basic_ref(*address)?;
        let mut account = match before {
            // Moved in: `Account::from` keeps a copy as the original.
            Some(info) => Account::from(info),
            None if now.info.is_none() => {
                epochs.insert(*address, None);
                continue;
            }
            None => {
                let mut account = Account::default();
                account.status |= AccountStatus::LoadedAsNotExisting;
                account
            }
        };
        account.mark_touch();
        match &now.info {
            None => {
                account.info = AccountInfo::default();
                account.mark_selfdestruct();
                epochs.insert(*address, None);
            }
            Some(info) => {
                account.info = info.to_revm();
                if now.storage_epoch > 0 {
                    account.mark_created();
                    epochs.insert(*address, Some(now.storage_epoch));
                }
            }
        }
        state.insert(*address, account);
    }
    for (key, value) in storage.changes() {
        let (EvmKey::Storage(address, slot), EvmValue::Storage(value)) = (key, value) else { continue };
        let epoch = if epochs.is_empty() { Some(0) } else { epochs.get(address).copied().unwrap_or(Some(0)) };
        if epoch != Some(value.epoch) {
            // Written in an earlier epoch (cleared since), or the account is gone.
            continue;
        }
        let account = match state.entry(*address) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                // Only slots written: the account is as before the block (it exists, as
                // something wrote its storage in epoch 0).
                let Some(info) = storage.db().basic_ref(*address)? else { continue };
                let mut account = Account::from(info);
                account.mark_touch();
                entry.insert(account)
            }
        };
        // A created account's storage started empty in the block.
        let original =
            if value.epoch > 0 { U256::ZERO } else { storage.db().storage_ref(*address, *slot)? };
        account
            .storage
            .insert(*slot, EvmStorageSlot::new_changed(original, value.value, TransactionId::ZERO));
    }
    Ok(state)
}

/// What is done with each transaction as it commits, in block order (the executor's commit
/// hook, on whichever thread commits): the block's gas allowance enforced, and the
/// transaction's entries added to the block's access list if one is built (so the list is
/// built while the other workers execute, not after the block).
pub(crate) struct CommitSteps<'a> {
    pub(crate) allowance: GasAllowance<'a>,
    bal: Option<BalBuilder>,
    /// A transaction whose receipt came without its accesses (a VM not recording them).
    unrecorded: Option<usize>,
}

impl<'a> CommitSteps<'a> {
    /// The steps of a block: `allowance` enforced, and each transaction's entries added to
    /// `bal` if one is given.
    pub(crate) fn new(allowance: GasAllowance<'a>, bal: Option<BalBuilder>) -> Self {
        Self { allowance, bal, unrecorded: None }
    }

    /// The access list built, if the block ran to its end: none if the gas allowance was
    /// exceeded or a transaction came without its accesses.
    pub(crate) fn into_bal(self) -> Option<BalBuilder> {
        match (self.allowance.exceeded, self.unrecorded) {
            (None, None) => self.bal,
            _ => None,
        }
    }

    pub(crate) fn on_commit(&mut self, txn_idx: usize, receipt: &EvmReceipt) -> ControlFlow<()> {
        if let Some(bal) = &mut self.bal {
            match receipt.accesses.as_deref() {
                Some(accesses) => bal.transaction(txn_idx, accesses),
                None => {
                    self.unrecorded = Some(txn_idx);
                    return ControlFlow::Break(());
                }
            }
        }
        self.allowance.on_commit(txn_idx, receipt)
    }
}

/// The commit hook that enforces the block's gas: a transaction whose gas limit exceeds what
/// the transactions before it left of the block's gas limit invalidates the block.
pub(crate) struct GasAllowance<'a> {
    left: u64,
    gas_limits: &'a [u64],
    pub(crate) exceeded: Option<usize>,
}

impl<'a> GasAllowance<'a> {
    pub(crate) fn new(block_gas_limit: u64, gas_limits: &'a [u64]) -> Self {
        Self { left: block_gas_limit, gas_limits, exceeded: None }
    }

    pub(crate) fn on_commit(&mut self, txn_idx: usize, receipt: &EvmReceipt) -> ControlFlow<()> {
        if self.gas_limits[txn_idx] > self.left {
            self.exceeded = Some(txn_idx);
            return ControlFlow::Break(());
        }
        self.left -= receipt.gas_used.min(self.left);
        ControlFlow::Continue(())
    }
}
