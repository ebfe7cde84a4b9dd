//! The blockchain-test JSON format, as the files hold it (see the fixtures' README).

use crate::chain::BlockHeader;
use crate::fixture::RpcTx;
use alloy_primitives::{Address, B256, Bloom, Bytes, U256};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One test case: a pre-state, a chain of blocks, and the expected post-state.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TestCase {
    pub(crate) network: String,
    pub(crate) pre: BTreeMap<Address, TestAccount>,
    pub(crate) genesis_block_header: TestHeader,
    pub(crate) blocks: Vec<TestBlock>,
    #[serde(default)]
    pub(crate) post_state: Option<BTreeMap<Address, TestAccount>>,
    #[serde(default)]
    pub(crate) post_state_hash: Option<B256>,
    pub(crate) lastblockhash: B256,
}

/// An account of `pre` or `postState`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct TestAccount {
    pub(crate) balance: U256,
    #[serde(with = "alloy_serde::quantity")]
    pub(crate) nonce: u64,
    pub(crate) code: Bytes,
    #[serde(default)]
    pub(crate) storage: BTreeMap<U256, U256>,
}

/// A block header (`genesisBlockHeader`, `blockHeader`, `uncleHeaders[]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TestHeader {
    pub(crate) parent_hash: B256,
    pub(crate) coinbase: Address,
    pub(crate) state_root: B256,
    pub(crate) receipt_trie: B256,
    pub(crate) bloom: Bloom,
    pub(crate) difficulty: U256,
    #[serde(with = "alloy_serde::quantity")]
    pub(crate) number: u64,
    #[serde(with = "alloy_serde::quantity")]
    pub(crate) gas_limit: u64,
    #[serde(with = "alloy_serde::quantity")]
    pub(crate) gas_used: u64,
    #[serde(with = "alloy_serde::quantity")]
    pub(crate) timestamp: u64,
    pub(crate) mix_hash: B256,
    pub(crate) hash: B256,
    pub(crate) transactions_trie: B256,
    pub(crate) uncle_hash: B256,
    pub(crate) extra_data: Bytes,
    #[serde(default)]
    pub(crate) withdrawals_root: Option<B256>,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    pub(crate) base_fee_per_gas: Option<u64>,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    pub(crate) blob_gas_used: Option<u64>,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    pub(crate) excess_blob_gas: Option<u64>,
    #[serde(default)]
    pub(crate) parent_beacon_block_root: Option<B256>,
}

impl TestHeader {
    /// The fields execution uses and the checked ones, for a block with `ommers` ommers.
    pub(crate) fn to_block_header(&self, ommers: usize) -> BlockHeader {
        BlockHeader {
            number: self.number,
            beneficiary: self.coinbase,
            timestamp: self.timestamp,
            gas_limit: self.gas_limit,
            gas_used: self.gas_used,
            base_fee: self.base_fee_per_gas,
            difficulty: self.difficulty,
            mix_hash: Some(self.mix_hash),
            logs_bloom: self.bloom,
            receipts_root: self.receipt_trie,
            excess_blob_gas: self.excess_blob_gas,
            ommers,
        }
    }
}

/// One block of `blocks[]`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TestBlock {
    /// The whole block, RLP-encoded.
    #[serde(default)]
    pub(crate) rlp: Bytes,
    #[serde(default)]
    pub(crate) block_header: Option<TestHeader>,
    /// What a block that must be rejected holds, when the filler could decode it ([`DecodedBlock`];
    /// kept as JSON: its fields may be out of range, which is why it must be rejected).
    #[serde(default, rename = "rlp_decoded")]
    pub(crate) rlp_decoded: Option<serde_json::Value>,
    #[serde(flatten)]
    pub(crate) body: TestBody,
    #[serde(default)]
    pub(crate) expect_exception: Option<String>,
}

/// `rlp_decoded`: what a block that must be rejected holds, when it decodes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DecodedBlock {
    pub(crate) block_header: TestHeader,
    #[serde(flatten)]
    pub(crate) body: TestBody,
}

/// What a block carries besides its header.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TestBody {
    #[serde(default)]
    pub(crate) transactions: Vec<RpcTx>,
    #[serde(default)]
    pub(crate) uncle_headers: Vec<TestHeader>,
    #[serde(default)]
    pub(crate) withdrawals: Option<Vec<TestWithdrawal>>,
}

/// A withdrawal (Shanghai on).
#[derive(Clone, Copy, Debug, Deserialize)]
pub(crate) struct TestWithdrawal {
    pub(crate) address: Address,
    #[serde(with = "alloy_serde::quantity")]
    pub(crate) amount: u64,
}
