//! The Ethereum VM on blockstm: [revm](https://github.com/bluealloy/revm) 43 behind the
//! executor's [`Vm`](blockstm_executor::Vm) interface, a loader for real mainnet blocks with
//! their pre-state, and the checks against each block's header (gas used, logs bloom, receipts
//! root).
//!
//! # Pieces
//!
//! - [`EvmKey`], [`EvmValue`]: the state as the multi-version memory holds it (account basics,
//!   storage slots with storage epochs for self-destruct); [`BalanceCredit`]: the delta that
//!   pays fees to the beneficiary without a conflict.
//! - [`EvmVm`]: executes one transaction with revm against the executor's view.
//! - [`Fixtures`]: the mainnet fixture directory; [`EthBlock`]: a loaded block, its fork
//!   ([`spec_at`]), header checks, and the state after rewards and withdrawals.
//! - [`ethtests`]: the runner of the Ethereum community's blockchain tests (state roots
//!   included) on every executor.
//! - [`warm_up`]: loads up front what revm loads on first use (the KZG trusted setup), so the
//!   first block with a blob proof does not pay ~3 s for it.
//!
//! # Examples
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

mod chain;
mod client;
mod database;
pub mod ethtests;
mod fixture;
mod gigagas;
mod state;
mod vm;
mod warm;

pub use chain::{
    BlockHeader, EthBlock, HeaderMismatch, MAINNET_CHAIN_ID, PreState, Withdrawal, block_reward, spec_at,
};
pub use client::{BlockExecution, BlockInput, ClientError, execute_block};
pub use database::DatabaseStorage;
pub use fixture::{FIXTURES_ENV, FixtureError, Fixtures};
pub use gigagas::{AMM_POOLS, ERC20_TOKENS, Gigagas, UnknownGigagas};
pub use revm::primitives::hardfork::SpecId;
pub use state::{AccountBasic, AccountState, BalanceCredit, CreditError, EvmKey, EvmValue, SlotValue};
pub use vm::{EvmError, EvmReceipt, EvmTx, EvmVm};
pub use warm::{WarmUpError, warm_up};
