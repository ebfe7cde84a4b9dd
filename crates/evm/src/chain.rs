//! A mainnet block: its header, fork rules, receipts checks, and the changes applied after the
//! transactions (block rewards, withdrawals).

use crate::state::{AccountState, BalanceCredit, EvmKey, EvmValue};
use crate::vm::{EvmReceipt, EvmTx, EvmVm};
use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom};
use alloy_evm::EvmEnv;
use alloy_primitives::{Address, B256, Bloom, U256};
use blockstm_executor::Delta;
use revm::context::{BlockEnv, CfgEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::primitives::hardfork::SpecId;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// Ethereum mainnet's chain id.
pub const MAINNET_CHAIN_ID: u64 = 1;

/// The header fields execution uses or is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Block number.
    pub number: u64,
    /// The fee recipient (`miner`).
    pub beneficiary: Address,
    /// Unix time, seconds.
    pub timestamp: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Gas used by all transactions (checked).
    pub gas_used: u64,
    /// EIP-1559 base fee, from London on.
    pub base_fee: Option<u64>,
    /// Proof-of-work difficulty (0 after the merge).
    pub difficulty: U256,
    /// `mixHash`: `PREVRANDAO` after the merge.
    pub mix_hash: Option<B256>,
    /// The bloom of all receipt logs (checked).
    pub logs_bloom: Bloom,
    /// The receipts trie root (checked from Byzantium on).
    pub receipts_root: B256,
    /// EIP-4844 excess blob gas, from Cancun on.
    pub excess_blob_gas: Option<u64>,
    /// Number of ommers (uncles) included.
    pub ommers: usize,
}

impl BlockHeader {
    /// The header of a post-merge block built in code (synthetic blocks, tests): block
    /// `number` at `timestamp` (which picks the fork), fee recipient `0xbebe..be`, the given gas
    /// limit and base fee, no blob gas used before; the checked fields (gas used, bloom,
    /// receipts root) are zero, as nothing checks such a block against them.
    pub fn synthetic(number: u64, timestamp: u64, gas_limit: u64, base_fee: u64) -> Self {
        Self {
            number,
            beneficiary: Address::repeat_byte(0xbe),
            timestamp,
            gas_limit,
            gas_used: 0,
            base_fee: Some(base_fee),
            difficulty: U256::ZERO,
            mix_hash: Some(B256::ZERO),
            logs_bloom: Bloom::ZERO,
            receipts_root: B256::ZERO,
            excess_blob_gas: Some(0),
            ommers: 0,
        }
    }
}

/// A validator withdrawal (Shanghai on), credited after the transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    /// The recipient.
    pub address: Address,
    /// The amount in gwei.
    pub gwei: u64,
}

/// The pre-state of a block: every account and slot it reads.
pub type PreState = HashMap<EvmKey, EvmValue, ahash::RandomState>;

/// A mainnet block ready to execute: header, transactions, withdrawals and pre-state.
#[derive(Clone, Debug)]
pub struct EthBlock {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in block order.
    pub txns: Vec<EvmTx>,
    /// The withdrawals.
    pub withdrawals: Vec<Withdrawal>,
    /// The state the block reads, as of before it.
    pub pre_state: PreState,
    pub(crate) block_hashes: Arc<HashMap<u64, B256>>,
    /// The fork, when it is not mainnet's at this block ([`EthBlock::with_spec`]).
    pub(crate) spec: Option<SpecId>,
    /// The included ommers' numbers and beneficiaries, when known ([`EthBlock::with_ommers`]).
    pub(crate) ommers: Vec<(u64, Address)>,
}

/// The mainnet fork in force at a block.
pub fn spec_at(number: u64, timestamp: u64) -> SpecId {
    const BY_NUMBER: [(u64, SpecId); 8] = [
        (15_537_394, SpecId::MERGE),
        (12_965_000, SpecId::LONDON),
        (12_244_000, SpecId::BERLIN),
        (9_069_000, SpecId::ISTANBUL),
        (7_280_000, SpecId::PETERSBURG),
        (4_370_000, SpecId::BYZANTIUM),
        (2_675_000, SpecId::SPURIOUS_DRAGON),
        (2_463_000, SpecId::TANGERINE),
    ];
    if number >= 15_537_394 {
        return match timestamp {
            t if t >= 1_764_798_551 => SpecId::OSAKA,
            t if t >= 1_746_612_311 => SpecId::PRAGUE,
            t if t >= 1_710_338_135 => SpecId::CANCUN,
            t if t >= 1_681_338_455 => SpecId::SHANGHAI,
            _ => SpecId::MERGE,
        };
    }
    BY_NUMBER
        .iter()
        .find(|(first, _)| number >= *first)
        .map(|(_, spec)| *spec)
        .unwrap_or(if number >= 1_150_000 { SpecId::HOMESTEAD } else { SpecId::FRONTIER })
}

/// The proof-of-work block reward of a fork (0 from the merge on).
pub fn block_reward(spec: SpecId) -> U256 {
    let ether = U256::from(10).pow(U256::from(18));
    if spec.is_enabled_in(SpecId::MERGE) {
        U256::ZERO
    } else if spec.is_enabled_in(SpecId::PETERSBURG) {
        ether * U256::from(2)
    } else if spec.is_enabled_in(SpecId::BYZANTIUM) {
        ether * U256::from(3)
    } else {
        ether * U256::from(5)
    }
}

/// How a block's receipts differ from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderMismatch {
    /// Total gas used.
    GasUsed {
        /// The header's.
        expected: u64,
        /// The receipts'.
        actual: u64,
    },
    /// The bloom of all logs.
    LogsBloom {
        /// The header's.
        expected: Box<Bloom>,
        /// The receipts'.
        actual: Box<Bloom>,
    },
    /// The receipts trie root.
    ReceiptsRoot {
        /// The header's.
        expected: B256,
        /// The receipts'.
        actual: B256,
    },
}

impl fmt::Display for HeaderMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderMismatch::GasUsed { expected, actual } => {
                write!(f, "gas used {actual}, the header says {expected}")
            }
            HeaderMismatch::LogsBloom { expected, actual } => {
                write!(f, "logs bloom {actual}, the header says {expected}")
            }
            HeaderMismatch::ReceiptsRoot { expected, actual } => {
                write!(f, "receipts root {actual}, the header says {expected}")
            }
        }
    }
}

impl std::error::Error for HeaderMismatch {}

impl EthBlock {
    /// A block built in code (a synthetic block, a test): no `BLOCKHASH` history (the
    /// opcode fails the transaction with a missing-state error).
    pub fn new(
        header: BlockHeader,
        txns: Vec<EvmTx>,
        withdrawals: Vec<Withdrawal>,
        pre_state: PreState,
    ) -> Self {
        Self {
            header,
            txns,
            withdrawals,
            pre_state,
            block_hashes: Arc::default(),
            spec: None,
            ommers: Vec::new(),
        }
    }

    /// This block under `spec` instead of mainnet's fork at its number and timestamp (a test
    /// chain with its own schedule).
    pub fn with_spec(self, spec: SpecId) -> Self {
        Self { spec: Some(spec), ..self }
    }

    /// This block with its ommers' numbers and beneficiaries, which [`post_state`](Self::post_state)
    /// rewards (before the merge). `header.ommers` should be their count.
    pub fn with_ommers(self, ommers: Vec<(u64, Address)>) -> Self {
        Self { ommers, ..self }
    }

    /// The block's environment as alloy-evm's `EvmEnv`: mainnet's chain id, the fork, and the
    /// header's fields (`PREVRANDAO` from the merge on, the blob gas price from Cancun on).
    pub fn evm_env(&self) -> EvmEnv {
        let spec = self.spec();
        let header = &self.header;
        let blob_excess_gas_and_price = if spec.is_enabled_in(SpecId::CANCUN) {
            Some(BlobExcessGasAndPrice::new_with_spec(header.excess_blob_gas.unwrap_or(0), spec))
        } else {
            None
        };
        let block_env = BlockEnv {
            number: U256::from(header.number),
            beneficiary: header.beneficiary,
            timestamp: U256::from(header.timestamp),
            gas_limit: header.gas_limit,
            basefee: header.base_fee.unwrap_or(0),
            difficulty: header.difficulty,
            prevrandao: if spec.is_enabled_in(SpecId::MERGE) { header.mix_hash } else { None },
            blob_excess_gas_and_price,
            ..BlockEnv::default()
        };
        let mut cfg_env = CfgEnv::new_with_spec(spec);
        cfg_env.chain_id = MAINNET_CHAIN_ID;
        EvmEnv { cfg_env, block_env }
    }

    /// The block hashes `BLOCKHASH` reads (number to hash).
    pub fn block_hashes(&self) -> &HashMap<u64, B256> {
        &self.block_hashes
    }

    /// This block with `hashes` (block number to hash) for `BLOCKHASH`.
    pub fn with_block_hashes(self, hashes: Arc<HashMap<u64, B256>>) -> Self {
        Self { block_hashes: hashes, ..self }
    }

    /// The fork in force: mainnet's at the block's number and timestamp, unless
    /// [`with_spec`](Self::with_spec) set another.
    pub fn spec(&self) -> SpecId {
        self.spec.unwrap_or_else(|| spec_at(self.header.number, self.header.timestamp))
    }

    /// The VM that executes this block's transactions.
    pub fn vm(&self) -> EvmVm {
        EvmVm::new(self)
    }

    /// The receipts trie root of `receipts` (meaningful from Byzantium on, when receipts hold a
    /// status instead of an intermediate state root).
    pub fn receipts_root(receipts: &[EvmReceipt]) -> B256 {
        alloy_consensus::proofs::calculate_receipt_root(&receipt_envelopes(receipts))
    }

    /// Checks `receipts` (of every transaction, in order) against the header: gas used, logs
    /// bloom, and from Byzantium on the receipts root.
    pub fn check_header(&self, receipts: &[EvmReceipt]) -> Result<(), HeaderMismatch> {
        self.check_receipts(&receipt_envelopes(receipts))
    }

    /// [`check_header`](Self::check_header) for alloy's receipts (the client API's).
    pub fn check_receipts(&self, receipts: &[ReceiptEnvelope]) -> Result<(), HeaderMismatch> {
        let actual = receipts.last().map_or(0, |r| r.cumulative_gas_used());
        if actual != self.header.gas_used {
            return Err(HeaderMismatch::GasUsed { expected: self.header.gas_used, actual });
        }
        let bloom = receipts.iter().fold(Bloom::ZERO, |bloom, r| bloom | r.logs_bloom());
        if bloom != self.header.logs_bloom {
            return Err(HeaderMismatch::LogsBloom {
                expected: Box::new(self.header.logs_bloom),
                actual: Box::new(bloom),
            });
        }
        if self.spec().is_enabled_in(SpecId::BYZANTIUM) {
            let root = alloy_consensus::proofs::calculate_receipt_root(receipts);
            if root != self.header.receipts_root {
                return Err(HeaderMismatch::ReceiptsRoot {
                    expected: self.header.receipts_root,
                    actual: root,
                });
            }
        }
        Ok(())
    }

    /// The state after the block: the pre-state, the transactions' `changes` (a block result's
    /// `state`), then the block reward (proof of work: the base reward plus 1/32 of it per
    /// included ommer), the ommers' own rewards (`(8 + ommer - block) / 8` of the base reward to
    /// each ommer's beneficiary, when [`with_ommers`](Self::with_ommers) named them; the mainnet
    /// fixture holds only their hashes) and the withdrawals.
    ///
    /// Accounts that do not exist map to `AccountState { info: None, .. }`; slots cleared by a
    /// self-destruct are left out.
    pub fn post_state(&self, changes: &[(EvmKey, EvmValue)]) -> Result<BTreeMap<EvmKey, EvmValue>, String> {
        let mut state: BTreeMap<EvmKey, EvmValue> =
            self.pre_state.iter().map(|(k, v)| (*k, v.clone())).collect();
        state.extend(changes.iter().cloned());
        let clear_empty = self.spec().is_enabled_in(SpecId::SPURIOUS_DRAGON);
        let mut credit = |address: Address, amount: U256| -> Result<(), String> {
            let key = EvmKey::Account(address);
            let value = BalanceCredit { amount, clear_empty }
                .apply(state.get(&key))
                .map_err(|e| format!("crediting {address}: {e}"))?;
            state.insert(key, value);
            Ok(())
        };
        let reward = block_reward(self.spec());
        if !reward.is_zero() {
            let ommers = U256::from(self.header.ommers);
            credit(self.header.beneficiary, reward + reward / U256::from(32) * ommers)?;
            for &(number, beneficiary) in &self.ommers {
                let share = (8 + number).saturating_sub(self.header.number);
                credit(beneficiary, reward * U256::from(share) / U256::from(8))?;
            }
        }
        for w in &self.withdrawals {
            if w.gwei > 0 {
                credit(w.address, U256::from(w.gwei) * U256::from(1_000_000_000u64))?;
            }
        }
        // Drop the slots whose account's storage was cleared after they were written.
        let epochs: HashMap<Address, u32> = state
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (EvmKey::Account(a), EvmValue::Account(AccountState { storage_epoch, .. })) => {
                    Some((*a, *storage_epoch))
                }
                _ => None,
            })
            .collect();
        state.retain(|k, v| match (k, v) {
            (EvmKey::Storage(a, _), EvmValue::Storage(slot)) => {
                epochs.get(a).copied().unwrap_or(0) == slot.epoch
            }
            _ => true,
        });
        Ok(state)
    }
}

/// The receipts of `receipts` (each transaction's, in block order) as alloy's envelopes, with
/// their cumulative gas, as alloy-evm's receipt builder makes them.
pub(crate) fn receipt_envelopes(receipts: &[EvmReceipt]) -> Vec<ReceiptEnvelope> {
    into_receipt_envelopes(receipts.iter().cloned())
}

/// [`receipt_envelopes`] of receipts no longer needed: their logs moved, not cloned.
pub(crate) fn into_receipt_envelopes(receipts: impl IntoIterator<Item = EvmReceipt>) -> Vec<ReceiptEnvelope> {
    let mut cumulative_gas_used = 0;
    receipts
        .into_iter()
        .map(|r| {
            cumulative_gas_used += r.gas_used;
            let receipt =
                Receipt { status: Eip658Value::Eip658(r.success), cumulative_gas_used, logs: r.logs };
            let with_bloom = ReceiptWithBloom { logs_bloom: r.logs_bloom, receipt };
            match r.tx_type {
                1 => ReceiptEnvelope::Eip2930(with_bloom),
                2 => ReceiptEnvelope::Eip1559(with_bloom),
                3 => ReceiptEnvelope::Eip4844(with_bloom),
                4 => ReceiptEnvelope::Eip7702(with_bloom),
                _ => ReceiptEnvelope::Legacy(with_bloom),
            }
        })
        .collect()
}
