//! The Ethereum VM on blockstm: [revm](https://github.com/bluealloy/revm) 43 behind the
//! executor's [`Vm`](blockstm_executor::Vm) interface, the client API that executes a block
//! from what an Ethereum client holds, a loader for real mainnet blocks with their pre-state,
//! and the runner of the community's blockchain tests.
//!
//! # Pieces
//!
//! - [`execute_block`]: one block from a client's `revm::DatabaseRef`, alloy-evm's `EvmEnv`
//!   and `EthBlockExecutionCtx`, alloy's recovered transactions and a chain specification
//!   (alloy-evm's `EthExecutorSpec`) to alloy receipts, gas figures, requests and revm's
//!   `EvmState`; [`execute_block_sequential`]: the same on the sequential executor;
//!   [`DatabaseStorage`]: a client's database as the executor's pre-state.
//! - Block-level access lists (EIP-7928): [`execute_block_with`] with
//!   [`ExecuteOptions::with_block_access_list`] builds a block's list from Block-STM's
//!   committed executions (a block builder's job); [`execute_block_from_access_list`] executes a
//!   block from its list, every transaction at once, and rejects a list that is not the
//!   block's ([`AccessListError`]) (a validator's job).
//! - [`BlockStmExecutorFactory`]: alloy-evm's `BlockExecutorFactory` whose executors run
//!   `execute_block` on Block-STM over the executor's own `State` (for a `ConfigureEvm`), build
//!   a block's access list in that `State` ([`BlockStmExecutor::execute_block_indexed`]) and
//!   execute a block from its list ([`BlockStmExecutor::execute_block_from_access_list`]).
//! - [`EvmKey`], [`EvmValue`]: the state as the multi-version memory holds it (account basics,
//!   storage slots with storage epochs for self-destruct); [`BalanceCredit`]: the delta that
//!   pays fees to the beneficiary without a conflict.
//! - [`EvmVm`]: executes one transaction with revm against the executor's view, reading block
//!   hashes from a [`BlockHashes`] source.
//! - [`Fixtures`]: the mainnet fixture directory; [`EthBlock`]: a loaded block, its fork
//!   ([`spec_at`]), header checks, and the state after rewards and withdrawals;
//!   [`ClientBlock`]: the same block as a client holds it, the client API's inputs.
//! - [`ethtests`]: the runner of the Ethereum community's blockchain tests (state roots
//!   included) on every executor.
//! - [`warm_up`]: loads up front what revm loads on first use (the KZG trusted setup), so the
//!   first block with a blob proof does not pay ~3 s for it.
//!
//! # Examples
//!
//! A block of one transfer, from revm's in-memory database, on two threads:
//!
//! ```
//! use alloy_consensus::transaction::Recovered;
//! use alloy_consensus::{Signed, TxEnvelope, TxLegacy};
//! use alloy_evm::EvmEnv;
//! use alloy_evm::eth::{EthBlockExecutionCtx, spec::EthSpec};
//! use alloy_primitives::{Address, B256, Signature, TxKind, U256};
//! use blockstm_evm::{BlockInput, SpecId, execute_block};
//! use blockstm_executor::Config;
//! use revm::database::{CacheDB, EmptyDB};
//! use revm::state::AccountInfo;
//!
//! let (alice, bob) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb0));
//! let mut db = CacheDB::new(EmptyDB::default());
//! db.insert_account_info(alice, AccountInfo::from_balance(U256::from(10u64.pow(18))));
//!
//! // The client's block: its environment, its context, its transactions (senders recovered).
//! let mut env: EvmEnv = EvmEnv::default();
//! env.cfg_env.spec = SpecId::SHANGHAI;
//! env.block_env.number = U256::from(17_100_000);
//! env.block_env.timestamp = U256::from(1_682_000_000);
//! env.block_env.gas_limit = 30_000_000;
//! let ctx = EthBlockExecutionCtx {
//!     parent_hash: B256::ZERO,
//!     parent_beacon_block_root: None,
//!     ommers: &[],
//!     withdrawals: None,
//!     extra_data: Default::default(),
//!     tx_count_hint: None,
//!     slot_number: None,
//! };
//! let transfer = TxLegacy {
//!     chain_id: Some(1),
//!     gas_price: 1_000_000_000,
//!     gas_limit: 21_000,
//!     to: TxKind::Call(bob),
//!     value: U256::from(5),
//!     ..Default::default()
//! };
//! let signed = Signed::new_unchecked(transfer, Signature::test_signature(), B256::ZERO);
//! let txns = [Recovered::new_unchecked(TxEnvelope::Legacy(signed), alice)];
//!
//! let block = BlockInput { env, ctx, transactions: &txns };
//! let out = execute_block(&db, &EthSpec::mainnet(), block, Config::new(2)?)?;
//! assert_eq!(out.gas_used, 21_000);
//! assert_eq!(out.state[&bob].info.balance, U256::from(5));
//! // `out.state` is what `revm::database::State::commit` takes; `out.receipts` are alloy's.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A mainnet block of the fixture corpus, checked against its header:
//!
//! ```no_run
//! use blockstm_evm::Fixtures;
//! use blockstm_executor::{BlockExecutor, Config, ParallelExecutor};
//!
//! let fixtures = Fixtures::open("../shared/fixtures/ethereum-mainnet")?;
//! let block = fixtures.load(19_934_116)?;
//! let executor = ParallelExecutor::new(block.vm(), Config::new(2)?);
//! let txns: Vec<_> = block.txns.clone();
//! let output = executor.execute_block(&block.pre_state, &txns)?;
//! block.check_header(&output.outputs)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Blocks with fewer transactions run on the sequential path when the EVM is executed by
/// `blockstm eth` (`Config::with_min_parallel_txns`): the mainnet corpus blocks below 20
/// transactions run slower in parallel at two threads, the larger ones gain
/// (`blockstm eth --fixtures DIR --threads 2 --no-adaptive`).
pub const MIN_PARALLEL_TXNS: usize = 20;

/// Blocks whose transactions' gas limits average below this run on the sequential path when
/// the EVM is executed by `blockstm eth` and `blockstm bench`
/// (`Config::with_min_mean_cost`, with [`EvmVm`]'s cost estimate: the sum of the gas limits).
/// About two plain transfers' worth: a block of mostly transfers gains little or nothing on two
/// threads, where Block-STM's own work per transaction is about as much as the VM's; every
/// corpus block that gains has more than 90 000 (`blockstm eth --fixtures DIR --threads 2
/// --no-adaptive`). The native-transfer gigagas block is sent to the sequential path too, though
/// Block-STM alone gains a little on it: docs/design.md says why that is the better of the
/// adaptive rule's answers for it today.
pub const MIN_MEAN_GAS_LIMIT: u64 = 50_000;

/// `config` with the EVM's measured adaptive rules: [`MIN_PARALLEL_TXNS`] and
/// [`MIN_MEAN_GAS_LIMIT`] (what `blockstm eth` and `blockstm bench` run the EVM with).
pub fn adaptive_rules(config: blockstm_executor::Config) -> blockstm_executor::Config {
    config.with_min_parallel_txns(MIN_PARALLEL_TXNS).with_min_mean_cost(MIN_MEAN_GAS_LIMIT)
}

mod bal;
mod bal_driven;
mod chain;
mod client;
mod client_fixture;
mod database;
pub mod ethtests;
mod factory;
mod fixture;
mod gigagas;
pub mod oracle;
mod state;
mod vm;
mod warm;

pub use bal::{BalDiff, BlockAccessList, TxAccesses, block_access_list_hash, block_access_list_rlp};
pub use bal_driven::{AccessListError, execute_block_from_access_list};
pub use chain::{
    BlockHeader, EthBlock, HeaderMismatch, MAINNET_CHAIN_ID, PreState, Withdrawal, block_reward, spec_at,
};
pub use client::{
    BlockExecution, BlockInput, ClientError, ExecuteOptions, execute_block, execute_block_sequential,
    execute_block_with,
};
pub use client_fixture::ClientBlock;
pub use database::DatabaseStorage;
pub use factory::{BlockStmExecutor, BlockStmExecutorFactory, PathCounts};
pub use fixture::{FIXTURES_ENV, FixtureError, Fixtures};
pub use gigagas::{AMM_POOLS, ERC20_TOKENS, Gigagas, UnknownGigagas};
pub use revm::primitives::hardfork::SpecId;
pub use state::{AccountBasic, AccountState, BalanceCredit, CreditError, EvmKey, EvmValue, SlotValue};
pub use vm::{BlockHashes, EvmError, EvmReceipt, EvmTx, EvmVm, TxJournal};
pub use warm::{WarmUpError, warm_up};
