//! The loader of the Ethereum mainnet fixture format (`../shared/fixtures/ethereum-mainnet`):
//!
//! - `blocks/<number>/block.json`: the `eth_getBlockByNumber(number, true)` result;
//! - `blocks/<number>/pre_state.json`: `{address: {balance, nonce, code_hash?, storage}}`;
//! - `bytecodes.json`: `{code_hash: "0x<code>"}`;
//! - `block_hashes.json`: `{number: hash}` for `BLOCKHASH`.
//!
//! Every failure names the file and, for malformed content, the JSON path of the field.

use crate::chain::{BlockHeader, EthBlock, Withdrawal};
use crate::state::{AccountBasic, AccountState, EvmKey, EvmValue, SlotValue};
use crate::vm::EvmTx;
use alloy_primitives::{Address, B256, Bloom, Bytes, U256};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::context_interface::transaction::{AccessList, AccessListItem};
use revm::primitives::{KECCAK_EMPTY, TxKind};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable naming the fixture directory for the tests and the CLI.
pub const FIXTURES_ENV: &str = "BLOCKSTM_ETH_FIXTURES";

/// A fixture that cannot be used: the file, the field (a JSON path, empty when the whole file
/// is at fault) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureError {
    /// The file.
    pub file: PathBuf,
    /// The JSON path of the field at fault (`transactions[3].gas`), or empty.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: field `{}`: {}", self.file.display(), self.field, self.message)
        }
    }
}

impl std::error::Error for FixtureError {}

pub(crate) fn error(file: &Path, field: impl Into<String>, message: impl Into<String>) -> FixtureError {
    FixtureError { file: file.to_owned(), field: field.into(), message: message.into() }
}

/// Reads and parses one JSON file, naming the field a malformed file fails on.
pub(crate) fn read_json<T: DeserializeOwned>(file: &Path) -> Result<T, FixtureError> {
    let bytes = std::fs::read(file).map_err(|e| error(file, "", format!("cannot read: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        error(file, field, e.into_inner().to_string())
    })?;
    de.end().map_err(|e| error(file, "", e.to_string()))?;
    Ok(value)
}

/// A fixture directory: the shared code and block hashes, and the blocks.
#[derive(Debug)]
pub struct Fixtures {
    dir: PathBuf,
    codes: HashMap<B256, Bytes>,
    block_hashes: Arc<HashMap<u64, B256>>,
}

impl Fixtures {
    /// Opens the directory `dir`, reading `bytecodes.json` and `block_hashes.json`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, FixtureError> {
        let dir = dir.as_ref().to_owned();
        if !dir.is_dir() {
            return Err(error(&dir, "", "not a directory"));
        }
        let codes: HashMap<B256, Bytes> = read_json(&dir.join("bytecodes.json"))?;
        let hashes: HashMap<u64, B256> = read_json(&dir.join("block_hashes.json"))?;
        Ok(Self { dir, codes, block_hashes: Arc::new(hashes) })
    }

    /// The directory named by [`FIXTURES_ENV`], if the variable is set.
    pub fn from_env() -> Option<Result<Self, FixtureError>> {
        let dir = std::env::var_os(FIXTURES_ENV)?;
        Some(Self::open(dir))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The numbers of the blocks in `blocks/`, ascending.
    pub fn block_numbers(&self) -> Result<Vec<u64>, FixtureError> {
        let blocks = self.dir.join("blocks");
        let entries =
            std::fs::read_dir(&blocks).map_err(|e| error(&blocks, "", format!("cannot list: {e}")))?;
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| error(&blocks, "", format!("cannot list: {e}")))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let number = name
                .parse()
                .map_err(|_| error(&entry.path(), "", "a block directory must be named by its number"))?;
            numbers.push(number);
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Loads block `number`: its header, transactions and pre-state.
    pub fn load(&self, number: u64) -> Result<EthBlock, FixtureError> {
        let dir = self.dir.join("blocks").join(number.to_string());
        let block_file = dir.join("block.json");
        let rpc: RpcBlock = read_json(&block_file)?;
        if rpc.number != number {
            return Err(error(
                &block_file,
                "number",
                format!("{} in the directory of block {number}", rpc.number),
            ));
        }
        let txns = rpc
            .transactions
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                tx.to_env()
                    .map_err(|(field, msg)| error(&block_file, format!("transactions[{i}].{field}"), msg))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state_file = dir.join("pre_state.json");
        let accounts: HashMap<Address, PreAccount> = read_json(&state_file)?;
        let pre_state = self.pre_state(&state_file, accounts)?;
        let header = BlockHeader {
            number: rpc.number,
            beneficiary: rpc.miner,
            timestamp: rpc.timestamp,
            gas_limit: rpc.gas_limit,
            gas_used: rpc.gas_used,
            base_fee: rpc.base_fee_per_gas,
            difficulty: rpc.difficulty,
            mix_hash: rpc.mix_hash,
            logs_bloom: rpc.logs_bloom,
            receipts_root: rpc.receipts_root,
            excess_blob_gas: rpc.excess_blob_gas,
            ommers: rpc.uncles.len(),
        };
        let withdrawals = rpc
            .withdrawals
            .unwrap_or_default()
            .into_iter()
            .map(|w| Withdrawal { address: w.address, gwei: w.amount })
            .collect();
        Ok(EthBlock::new(header, txns, withdrawals, pre_state)
            .with_block_hashes(Arc::clone(&self.block_hashes)))
    }

    fn pre_state(
        &self,
        file: &Path,
        accounts: HashMap<Address, PreAccount>,
    ) -> Result<HashMap<EvmKey, EvmValue, ahash::RandomState>, FixtureError> {
        let mut state = HashMap::default();
        let mut analysed: HashMap<B256, Bytecode> = HashMap::new();
        for (address, account) in accounts {
            let code_hash = account.code_hash.unwrap_or(KECCAK_EMPTY);
            let code = if code_hash == KECCAK_EMPTY {
                None
            } else if let Some(code) = analysed.get(&code_hash) {
                Some(code.clone())
            } else {
                let field = format!("{address:#x}.code_hash");
                let raw = self.codes.get(&code_hash).ok_or_else(|| {
                    error(file, &field, format!("no code for hash {code_hash} in bytecodes.json"))
                })?;
                let code = Bytecode::new_raw_checked(raw.clone())
                    .map_err(|e| error(file, &field, format!("code {code_hash} cannot be decoded: {e}")))?;
                analysed.insert(code_hash, code.clone());
                Some(code)
            };
            let info = AccountBasic { balance: account.balance, nonce: account.nonce, code_hash, code };
            let value = AccountState { info: Some(info), storage_epoch: 0 };
            state.insert(EvmKey::Account(address), EvmValue::Account(value));
            for (slot, value) in account.storage {
                state
                    .insert(EvmKey::Storage(address, slot), EvmValue::Storage(SlotValue { value, epoch: 0 }));
            }
        }
        Ok(state)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcBlock {
    #[serde(with = "alloy_serde::quantity")]
    number: u64,
    miner: Address,
    #[serde(with = "alloy_serde::quantity")]
    timestamp: u64,
    #[serde(with = "alloy_serde::quantity")]
    gas_limit: u64,
    #[serde(with = "alloy_serde::quantity")]
    gas_used: u64,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    base_fee_per_gas: Option<u64>,
    difficulty: U256,
    #[serde(default)]
    mix_hash: Option<B256>,
    logs_bloom: Bloom,
    receipts_root: B256,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    excess_blob_gas: Option<u64>,
    #[serde(default)]
    uncles: Vec<B256>,
    transactions: Vec<RpcTx>,
    #[serde(default)]
    withdrawals: Option<Vec<RpcWithdrawal>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcWithdrawal {
    address: Address,
    #[serde(with = "alloy_serde::quantity")]
    amount: u64,
}

/// A transaction as JSON-RPC gives it, or as the blockchain tests write it (`sender`,
/// `gasLimit`, `data`, and `to` empty for a creation).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcTx {
    #[serde(rename = "type", default, with = "alloy_serde::quantity::opt")]
    tx_type: Option<u8>,
    /// Absent in a test transaction whose signature does not recover.
    #[serde(alias = "sender", default)]
    from: Option<Address>,
    #[serde(default, deserialize_with = "address_or_empty")]
    to: Option<Address>,
    value: U256,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    gas_price: Option<u128>,
    #[serde(alias = "gasLimit", with = "alloy_serde::quantity")]
    gas: u64,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    max_fee_per_gas: Option<u128>,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    max_priority_fee_per_gas: Option<u128>,
    #[serde(alias = "data")]
    input: Bytes,
    #[serde(with = "alloy_serde::quantity")]
    nonce: u64,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    chain_id: Option<u64>,
    #[serde(default)]
    access_list: Vec<RpcAccessListItem>,
    #[serde(default)]
    blob_versioned_hashes: Vec<B256>,
    #[serde(default, with = "alloy_serde::quantity::opt")]
    max_fee_per_blob_gas: Option<u128>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcAccessListItem {
    address: Address,
    storage_keys: Vec<B256>,
}

/// `to`: an address, or null or an empty string for a contract creation.
fn address_or_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Address>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl RpcTx {
    /// The sender, when the JSON names it.
    pub(crate) fn sender(&self) -> Option<Address> {
        self.from
    }

    /// Sets the sender (recovered from the signature).
    pub(crate) fn set_sender(&mut self, sender: Address) {
        self.from = Some(sender);
    }

    /// The transaction as revm takes it; on failure the field at fault and why.
    pub(crate) fn to_env(&self) -> Result<EvmTx, (&'static str, String)> {
        let tx_type = self.tx_type.unwrap_or(0);
        let missing = |field: &'static str| (field, format!("missing in a type {tx_type} transaction"));
        let (gas_price, gas_priority_fee) = match tx_type {
            0 | 1 => (self.gas_price.ok_or_else(|| missing("gasPrice"))?, None),
            2..=4 => (
                self.max_fee_per_gas.ok_or_else(|| missing("maxFeePerGas"))?,
                Some(self.max_priority_fee_per_gas.ok_or_else(|| missing("maxPriorityFeePerGas"))?),
            ),
            other => return Err(("type", format!("unsupported transaction type {other}"))),
        };
        let max_fee_per_blob_gas = match tx_type {
            3 => self.max_fee_per_blob_gas.ok_or_else(|| missing("maxFeePerBlobGas"))?,
            _ => 0,
        };
        let access_list = AccessList(
            self.access_list
                .iter()
                .map(|item| AccessListItem { address: item.address, storage_keys: item.storage_keys.clone() })
                .collect(),
        );
        Ok(EvmTx(TxEnv {
            tx_type,
            caller: self
                .from
                .ok_or_else(|| ("from", "no sender (the signature does not recover)".to_owned()))?,
            gas_limit: self.gas,
            gas_price,
            kind: self.to.map_or(TxKind::Create, TxKind::Call),
            value: self.value,
            data: self.input.clone(),
            nonce: self.nonce,
            chain_id: self.chain_id,
            access_list,
            gas_priority_fee,
            blob_hashes: self.blob_versioned_hashes.clone(),
            max_fee_per_blob_gas,
            ..TxEnv::default()
        }))
    }
}

#[derive(Deserialize)]
struct PreAccount {
    balance: U256,
    nonce: u64,
    #[serde(default)]
    code_hash: Option<B256>,
    #[serde(default)]
    storage: HashMap<U256, U256>,
}
