//! Large blocks built from the suite's own transactions, for the EVM-level differential test:
//! the `pre` states of many one-block cases of one fork merged (the first value wins where
//! they clash), their transactions concatenated, each sender's nonces renumbered from its
//! merged pre-state nonce, the block's gas limit raised to fit them all. Most cases share
//! senders and contract addresses, so these blocks are full of real conflicts on real bytecode.

use super::model::TestCase;
use super::rules::Fork;
use super::run::store_beacon_root;
use super::world;
use crate::SpecId;
use crate::chain::{BlockHeader, EthBlock, PreState};
use crate::fixture::{FixtureError, read_json};
use crate::state::{AccountState, EvmKey, EvmValue};
use crate::vm::EvmTx;
use alloy_primitives::{Address, B256};
use blockstm_executor::{BlockError, BlockExecutor, SequentialExecutor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One source case: its pre-state, its block's header and its transactions.
#[derive(Clone, Debug)]
pub struct Source {
    pre: PreState,
    header: BlockHeader,
    parent_beacon_root: Option<B256>,
    genesis_hash: B256,
    txns: Vec<EvmTx>,
}

/// The one-block cases of `fork` in `files` whose block is valid, holds at least one
/// transaction with a known sender, and used at most `max_gas` (heavy cases would make the
/// merged blocks slow without adding conflicts); each transaction's gas limit is capped at
/// `max_gas` too.
pub fn sources(files: &[PathBuf], fork: SpecId, max_gas: u64) -> Result<Vec<Source>, FixtureError> {
    let mut out = Vec::new();
    for path in files {
        let cases: BTreeMap<String, TestCase> = read_json(path)?;
        for case in cases.values() {
            if Fork::parse(&case.network) != Ok(Fork::Fixed(fork)) || case.blocks.len() != 1 {
                continue;
            }
            let block = &case.blocks[0];
            let Some(header) = &block.block_header else { continue };
            if block.expect_exception.is_some()
                || block.body.transactions.is_empty()
                || header.gas_used > max_gas
            {
                continue;
            }
            let Ok(txns) = block
                .body
                .transactions
                .iter()
                .map(|tx| {
                    let mut tx = tx.to_env().map_err(|_| ())?;
                    // In the merged state a transaction may take another path than in its own
                    // case (a contract or balance from another case): bounded, it stays cheap.
                    tx.0.gas_limit = tx.0.gas_limit.min(max_gas);
                    Ok::<_, ()>(tx)
                })
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let Ok(pre) = world::from_test(&case.pre) else { continue };
            out.push(Source {
                pre,
                header: header.to_block_header(0),
                parent_beacon_root: header.parent_beacon_block_root,
                genesis_hash: header.parent_hash,
                txns,
            });
        }
    }
    Ok(out)
}

/// A splitmix64 stream: the same seed picks the same sources.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A merged block of at least `min_txns` transactions from `sources`, chosen by `seed`: the
/// first source's header (gas limit raised; the lowest base fee and excess blob gas of the
/// sources), the merged pre-states, the concatenated transactions with renumbered nonces. A
/// transaction the sequential executor rejects (a balance the transactions before it spent)
/// ends the block there if enough come before it; otherwise it and its sender's later
/// transactions are dropped and the nonces renumbered again. The same seed builds the same
/// block.
pub fn merged_block(sources: &[Source], seed: u64, min_txns: usize) -> Result<EthBlock, String> {
    if sources.is_empty() {
        return Err("no source cases".into());
    }
    let mut rng = Rng(seed);
    let first = &sources[(rng.next() % sources.len() as u64) as usize];
    let mut pre = PreState::default();
    let mut txns = Vec::new();
    let mut header = first.header.clone();
    loop {
        while txns.len() < 2 * min_txns {
            let source = &sources[(rng.next() % sources.len() as u64) as usize];
            for (key, value) in &source.pre {
                pre.entry(*key).or_insert_with(|| value.clone());
            }
            txns.extend(source.txns.iter().cloned());
            // The lowest base fee and blob gas price of the sources: each transaction's fee
            // caps were enough for its own block, so they are for this one.
            header.base_fee = header.base_fee.min(source.header.base_fee);
            header.excess_blob_gas = header.excess_blob_gas.min(source.header.excess_blob_gas);
        }
        header.gas_limit =
            txns.iter().map(|tx: &EvmTx| tx.0.gas_limit).fold(first.header.gas_limit, u64::saturating_add);
        let header = header.clone();
        let mut state = pre.clone();
        if let Some(root) = first.parent_beacon_root {
            store_beacon_root(&mut state, header.timestamp, root)?;
        }
        let hashes = Arc::new(HashMap::from([(header.number.saturating_sub(1), first.genesis_hash)]));
        renumber(&state, &mut txns);
        let block = EthBlock::new(header, txns.clone(), Vec::new(), state)
            .with_spec(SpecId::CANCUN)
            .with_block_hashes(hashes);
        match SequentialExecutor::new(block.vm()).execute_block(&block.pre_state, &block.txns) {
            Ok(_) => return Ok(block),
            Err(BlockError::Vm { txn_idx, .. }) if txn_idx >= min_txns => {
                // The transactions before it are a valid block of the size asked for.
                let mut block = block;
                block.txns.truncate(txn_idx);
                return Ok(block);
            }
            Err(BlockError::Vm { txn_idx, .. }) => {
                let sender = txns[txn_idx].0.caller;
                let mut i = 0;
                txns.retain(|tx| {
                    i += 1;
                    i <= txn_idx || tx.0.caller != sender
                });
            }
            Err(error) => return Err(format!("seed {seed}: {error}")),
        }
    }
}

/// Each sender's nonces in block order, from its nonce in `state`.
fn renumber(state: &PreState, txns: &mut [EvmTx]) {
    let mut next: HashMap<Address, u64> = HashMap::new();
    for tx in txns {
        let caller = tx.0.caller;
        let nonce = next.entry(caller).or_insert_with(|| match state.get(&EvmKey::Account(caller)) {
            Some(EvmValue::Account(AccountState { info: Some(info), .. })) => info.nonce,
            _ => 0,
        });
        tx.0.nonce = *nonce;
        *nonce += 1;
    }
}

/// The one-block test files of `dir`, for [`sources`].
pub fn source_files(dir: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    super::test_files(dir, Some("GeneralStateTests"))
}
