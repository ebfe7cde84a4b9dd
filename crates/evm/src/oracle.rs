//! The independent oracle of the EVM tests: alloy-evm's sequential `EthBlockExecutor` over
//! revm's `State`, the block executor Ethereum clients run today, and the comparison of its
//! result with the client API's ([`execute_block`](crate::execute_block)).

use crate::chain::PreState;
use crate::factory::BlockStmExecutorFactory;
use crate::state::{AccountState, EvmKey, EvmValue};
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{ReceiptEnvelope, SignableTransaction, TxEnvelope};
use alloy_eip7928::BlockAccessList;
use alloy_eips::eip7685::Requests;
use alloy_evm::block::{BlockExecutionError, BlockExecutionResult, BlockExecutor, BlockExecutorFactory};
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_evm::eth::{EthBlockExecutionCtx, EthBlockExecutor};
use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory};
use alloy_primitives::{Address, B256, Signature, U256};
use revm::DatabaseCommit;
use revm::database::states::bundle_state::BundleRetention;
use revm::database::{BundleState, CacheDB, EmptyDB, State};
use revm::database_interface::DatabaseRef;
use revm::state::EvmState;
use revm::state::bal::BlockAccessIndex;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Debug;

/// What alloy-evm's block executor produced.
#[derive(Debug)]
pub struct OracleBlock {
    /// The receipts.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Gas used by the transactions.
    pub gas_used: u64,
    /// Blob gas used by the transactions.
    pub blob_gas_used: u64,
    /// The EIP-7685 requests.
    pub requests: Requests,
    /// The state changes, merged as a client merges them.
    pub bundle: BundleState,
}

/// `state` (a fixture's or a test chain's) in revm's in-memory database, with the chain's
/// block `hashes`: the pre-state as a client's database holds it.
pub fn cache_db(state: &PreState, hashes: &HashMap<u64, B256>) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::default());
    for (key, value) in state {
        if let (EvmKey::Account(address), EvmValue::Account(AccountState { info: Some(info), .. })) =
            (key, value)
        {
            db.insert_account_info(*address, info.to_revm());
        }
    }
    // After the accounts: a slot of an account the database does not hold would load it.
    for (key, value) in state {
        if let (EvmKey::Storage(address, slot), EvmValue::Storage(value)) = (key, value) {
            let Ok(()) = db.insert_account_storage(*address, *slot, value.value);
        }
    }
    for (number, hash) in hashes {
        db.cache.block_hashes.insert(U256::from(*number), *hash);
    }
    db
}

/// The block executed by alloy-evm's `EthBlockExecutor` (pre-execution changes, the
/// transactions, `finish`) over `db` in revm's `State`.
pub fn alloy_evm_block<DB, C>(
    db: &DB,
    chain: &C,
    env: EvmEnv,
    ctx: EthBlockExecutionCtx<'_>,
    transactions: &[Recovered<TxEnvelope>],
) -> Result<OracleBlock, BlockExecutionError>
where
    DB: DatabaseRef + Debug,
    C: EthExecutorSpec,
{
    let mut state = State::builder().with_database_ref(db).with_bundle_update().build();
    let evm = EthEvmFactory::default().create_evm(&mut state, env);
    let executor = EthBlockExecutor::new(evm, ctx, chain, AlloyReceiptBuilder::default());
    let result = executor.execute_block(transactions.iter())?;
    Ok(OracleBlock::new(result, state))
}

/// The block-level access list revm's sequential builder records for the block, executed by
/// alloy-evm's `EthBlockExecutor` over revm's `State` as a client building blocks drives it:
/// the pre-execution changes at index 0, each transaction at its index
/// (`execute_transaction_with_index`), the post-execution changes at the index after the last.
pub fn alloy_evm_block_access_list<DB, C>(
    db: &DB,
    chain: &C,
    env: EvmEnv,
    ctx: EthBlockExecutionCtx<'_>,
    transactions: &[Recovered<TxEnvelope>],
) -> Result<BlockAccessList, BlockExecutionError>
where
    DB: DatabaseRef + Debug,
    C: EthExecutorSpec,
{
    alloy_evm_block_indexed(db, chain, env, ctx, transactions, true)?
        .ok_or_else(|| BlockExecutionError::msg("revm's access-list builder was not on"))
}

/// The block executed as in [`alloy_evm_block_access_list`], with revm's access-list builder
/// on if `build_list` (its list returned), off if not: the two sequential runs whose
/// difference is what building the list costs revm's own executor.
pub fn alloy_evm_block_indexed<DB, C>(
    db: &DB,
    chain: &C,
    env: EvmEnv,
    ctx: EthBlockExecutionCtx<'_>,
    transactions: &[Recovered<TxEnvelope>],
    build_list: bool,
) -> Result<Option<BlockAccessList>, BlockExecutionError>
where
    DB: DatabaseRef + Debug,
    C: EthExecutorSpec,
{
    let state =
        State::builder().with_database_ref(db).with_bundle_update().with_bal_builder_if(build_list).build();
    let evm = EthEvmFactory::default().create_evm(state, env);
    let mut executor = EthBlockExecutor::new(evm, ctx, chain, AlloyReceiptBuilder::default());
    executor.apply_pre_execution_changes()?;
    for (index, tx) in transactions.iter().enumerate() {
        executor.execute_transaction_with_index(tx, index)?;
    }
    executor.evm_mut().db_mut().set_bal_index(BlockAccessIndex::new(transactions.len() as u64 + 1));
    let (mut evm, _) = executor.finish()?;
    Ok(evm.db_mut().take_built_alloy_bal())
}

impl OracleBlock {
    /// `result` with the bundle of the `state` it was executed over, merged as a client
    /// merges it.
    fn new<DB: revm::Database>(result: BlockExecutionResult<ReceiptEnvelope>, mut state: State<DB>) -> Self {
        state.merge_transitions(BundleRetention::Reverts);
        OracleBlock {
            receipts: result.receipts,
            gas_used: result.gas_used,
            blob_gas_used: result.blob_gas_used,
            requests: result.requests,
            bundle: state.take_bundle(),
        }
    }
}

/// The block executed by `factory`'s executor as a client validating a block drives it:
/// an EVM from the factory's EVM factory over revm's `State` on `db`, the executor, its
/// `execute_block` (pre-execution changes, the transactions, `finish`), then the bundle taken
/// from the `State`.
pub fn through_factory<F, DB>(
    factory: &F,
    db: &DB,
    env: EvmEnv,
    ctx: EthBlockExecutionCtx<'_>,
    transactions: &[Recovered<TxEnvelope>],
) -> Result<OracleBlock, BlockExecutionError>
where
    F: for<'a> BlockExecutorFactory<
            EvmFactory = EthEvmFactory,
            ExecutionCtx<'a> = EthBlockExecutionCtx<'a>,
            Transaction = TxEnvelope,
            Receipt = ReceiptEnvelope,
        >,
    DB: DatabaseRef + Debug,
{
    let mut state = State::builder().with_database_ref(db).with_bundle_update().build();
    let evm = factory.evm_factory().create_evm(&mut state, env);
    let result = factory.create_executor(evm, ctx).execute_block(transactions.iter())?;
    Ok(OracleBlock::new(result, state))
}

/// The block executed by `factory`'s executor as a client building the block's access list
/// drives it: over revm's `State` recording the list, owned by the EVM (alloy-evm sets the
/// list's index on a `State`, not on `&mut State`), with
/// [`execute_block_indexed`](crate::BlockStmExecutor::execute_block_indexed); the result and
/// the list the `State` recorded.
pub fn through_factory_with_access_list<C, DB>(
    factory: &BlockStmExecutorFactory<C>,
    db: &DB,
    env: EvmEnv,
    ctx: EthBlockExecutionCtx<'_>,
    transactions: &[Recovered<TxEnvelope>],
) -> Result<(OracleBlock, BlockAccessList), BlockExecutionError>
where
    C: EthExecutorSpec + 'static,
    DB: DatabaseRef + Debug,
{
    let state = State::builder().with_database_ref(db).with_bundle_update().with_bal_builder().build();
    let evm = factory.evm_factory().create_evm(state, env);
    let (evm, result) = factory.create_executor(evm, ctx).execute_block_indexed(transactions.iter())?;
    let mut state = evm.into_db();
    let list = state
        .take_built_alloy_bal()
        .ok_or_else(|| BlockExecutionError::msg("revm's access-list builder was not on"))?;
    Ok((OracleBlock::new(result, state), list))
}

/// The block executed by `factory`'s executor as a client validating a block that carries
/// its access list drives it: over revm's `State` on `db`, with
/// [`execute_block_from_access_list`](crate::BlockStmExecutor::execute_block_from_access_list).
pub fn through_factory_from_access_list<C, DB>(
    factory: &BlockStmExecutorFactory<C>,
    db: &DB,
    env: EvmEnv,
    ctx: EthBlockExecutionCtx<'_>,
    transactions: &[Recovered<TxEnvelope>],
    list: &BlockAccessList,
) -> Result<OracleBlock, BlockExecutionError>
where
    C: EthExecutorSpec + 'static,
    DB: DatabaseRef + Debug,
{
    let mut state = State::builder().with_database_ref(db).with_bundle_update().build();
    let evm = factory.evm_factory().create_evm(&mut state, env);
    let result =
        factory.create_executor(evm, ctx).execute_block_from_access_list(transactions.iter(), list)?;
    Ok(OracleBlock::new(result, state))
}

/// `changes` (the client API's [`BlockExecution::state`](crate::BlockExecution::state))
/// committed into revm's `State` over `db`, as a client commits them.
pub fn committed<DB: DatabaseRef + Debug>(db: &DB, changes: EvmState) -> BundleState {
    let mut state = State::builder().with_database_ref(db).with_bundle_update().build();
    state.commit(changes);
    state.merge_transitions(BundleRetention::PlainState);
    state.take_bundle()
}

/// The first account or slot whose value after the block differs between two bundles over
/// `db` (what a bundle leaves out is `db`'s value, or zero for a slot of a destroyed account),
/// described; `None` if the states are the same.
pub fn bundle_difference<DB: DatabaseRef>(
    db: &DB,
    expected: &BundleState,
    actual: &BundleState,
) -> Option<String>
where
    DB::Error: Debug,
{
    let account = |bundle: &BundleState, address: &Address| match bundle.state.get(address) {
        Some(account) => account.info.as_ref().map(|i| (i.balance, i.nonce, i.code_hash)),
        None => db.basic_ref(*address).ok().flatten().map(|i| (i.balance, i.nonce, i.code_hash)),
    };
    let slot = |bundle: &BundleState, address: &Address, slot: &U256| match bundle.state.get(address) {
        Some(account) if account.storage.contains_key(slot) => Some(account.storage[slot].present_value),
        Some(account) if account.was_destroyed() => Some(U256::ZERO),
        _ => db.storage_ref(*address, *slot).ok(),
    };
    for address in expected.state.keys().chain(actual.state.keys()) {
        let (want, got) = (account(expected, address), account(actual, address));
        if want != got {
            return Some(format!("account {address}: expected {want:?}, got {got:?}"));
        }
        let slots = [expected, actual].into_iter().filter_map(|b| b.state.get(address));
        for key in slots.flat_map(|a| a.storage.keys()) {
            let (want, got) = (slot(expected, address, key), slot(actual, address, key));
            if want != got {
                return Some(format!("slot {key} of {address}: expected {want:?}, got {got:?}"));
            }
        }
    }
    None
}

/// `txns` (EIP-1559 transactions, the gigagas blocks' kind) as alloy's recovered envelopes,
/// for executors that take a client's transactions. The signature is a placeholder: a
/// recovered transaction carries its sender, and nothing checks it again.
pub fn eip1559_envelopes(txns: &[crate::EvmTx]) -> Result<Vec<Recovered<TxEnvelope>>, String> {
    txns.iter()
        .enumerate()
        .map(|(i, crate::EvmTx(tx))| {
            if tx.tx_type != 2 {
                return Err(format!("transaction {i} has type {}, not EIP-1559", tx.tx_type));
            }
            let signed = alloy_consensus::TxEip1559 {
                chain_id: tx.chain_id.unwrap_or_default(),
                nonce: tx.nonce,
                gas_limit: tx.gas_limit,
                max_fee_per_gas: tx.gas_price,
                max_priority_fee_per_gas: tx.gas_priority_fee.unwrap_or_default(),
                to: tx.kind,
                value: tx.value,
                access_list: tx.access_list.clone(),
                input: tx.data.clone(),
            }
            .into_signed(Signature::test_signature());
            Ok(Recovered::new_unchecked(TxEnvelope::from(signed), tx.caller))
        })
        .collect()
}

/// A synthetic block (the gigagas blocks: no parent, no withdrawals) on alloy-evm's sequential
/// block executor over revm's `State` on `db`: what a client runs today, for the benchmarks.
pub fn alloy_evm_synthetic<DB: DatabaseRef + Debug>(
    db: &DB,
    env: EvmEnv,
    transactions: &[Recovered<TxEnvelope>],
) -> Result<OracleBlock, BlockExecutionError> {
    let ctx = EthBlockExecutionCtx {
        parent_hash: B256::ZERO,
        parent_beacon_block_root: Some(B256::ZERO),
        ommers: &[],
        withdrawals: Some(Cow::Borrowed(&[])),
        extra_data: Default::default(),
        tx_count_hint: Some(transactions.len()),
        slot_number: None,
    };
    alloy_evm_block(db, &alloy_evm::eth::spec::EthSpec::mainnet(), env, ctx, transactions)
}
