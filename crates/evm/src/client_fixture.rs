//! A mainnet corpus block as a client holds it, for the client API: its pre-state in revm's
//! in-memory database, its header and transactions as alloy parses the `eth_getBlockByNumber`
//! result, and the environment alloy-evm builds from that header.

use crate::chain::EthBlock;
use crate::client::BlockInput;
use crate::fixture::{Fixtures, error, read_json};
use crate::{FixtureError, MAINNET_CHAIN_ID};
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::eip4895::Withdrawals;
use alloy_eips::eip7840::BlobParams;
use alloy_evm::EvmEnv;
use alloy_evm::eth::EthBlockExecutionCtx;
use alloy_evm::eth::spec::EthSpec;
use alloy_rpc_types_eth::{Block, BlockTransactions};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use std::borrow::Cow;

/// A corpus block with the inputs of [`execute_block`](crate::execute_block): revm's
/// `CacheDB` holding the fixture's pre-state and block hashes, alloy's header, withdrawals and
/// recovered transactions, and the `EvmEnv` alloy-evm builds for the header on mainnet.
///
/// The fixture holds only its ommers' hashes, so the context names no ommers: the state after
/// a block with ommers lacks their inclusion rewards (the header checks do not cover state).
#[derive(Debug)]
pub struct ClientBlock {
    /// The pre-state and the block hashes.
    pub db: CacheDB<EmptyDB>,
    /// The header.
    pub header: Header,
    /// The block's environment, as alloy-evm builds it.
    pub env: EvmEnv,
    /// The withdrawals (from Shanghai on).
    pub withdrawals: Option<Withdrawals>,
    /// The transactions, senders recovered.
    pub transactions: Vec<Recovered<TxEnvelope>>,
}

impl ClientBlock {
    /// The block as [`execute_block`](crate::execute_block) takes it.
    pub fn input(&self) -> BlockInput<'_> {
        let ctx = EthBlockExecutionCtx {
            parent_hash: self.header.parent_hash,
            parent_beacon_block_root: self.header.parent_beacon_block_root,
            ommers: &[],
            withdrawals: self.withdrawals.as_ref().map(|w| Cow::Borrowed(w.as_slice())),
            extra_data: self.header.extra_data.clone(),
            tx_count_hint: Some(self.transactions.len()),
            slot_number: None,
        };
        BlockInput { env: self.env.clone(), ctx, transactions: &self.transactions }
    }
}

impl Fixtures {
    /// The corpus block `block` (loaded by [`load`](Self::load)) as a client holds it: its
    /// `block.json` parsed again, by alloy's RPC types, with its senders as the RPC result
    /// gives them.
    pub fn load_client(&self, block: &EthBlock) -> Result<ClientBlock, FixtureError> {
        let number = block.header.number;
        let file = self.dir().join("blocks").join(number.to_string()).join("block.json");
        let rpc: Block = read_json(&file)?;
        let BlockTransactions::Full(txns) = rpc.transactions else {
            return Err(error(&file, "transactions", "hashes only: the bodies are needed"));
        };
        let transactions = txns.into_iter().map(|tx| tx.into_recovered()).collect();
        let header = rpc.header.inner;
        let blob_params = match block.spec() {
            spec if spec.is_enabled_in(SpecId::OSAKA) => Some(BlobParams::osaka()),
            spec if spec.is_enabled_in(SpecId::PRAGUE) => Some(BlobParams::prague()),
            _ => Some(BlobParams::cancun()),
        };
        let env = EvmEnv::for_eth_block(&header, EthSpec::mainnet(), MAINNET_CHAIN_ID, blob_params);
        let db = crate::oracle::cache_db(&block.pre_state, block.block_hashes());
        Ok(ClientBlock { db, header, env, withdrawals: rpc.withdrawals, transactions })
    }
}
