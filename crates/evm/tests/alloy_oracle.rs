//! An independent oracle: alloy-evm's sequential `EthBlockExecutor` over revm's `State`, the
//! block executor Ethereum clients run today. Every mainnet corpus block, parsed on its own
//! with alloy's RPC types (`Fixtures::load_client`), executed by it and by blockstm's parallel executor at 1, 2, 4 and 8
//! threads: the receipts (type, status, cumulative gas, logs), the gas used and the post-block
//! state (every account and slot either side changed, the block reward and withdrawals
//! included) must be the same.
//!
//! The corpus holds only its ommers' hashes: neither side can pay an ommer's beneficiary, and
//! the oracle, given no ommer headers, pays no inclusion bonus, so a block with ommers has its
//! beneficiary's balance left out of the comparison.
//!
//! Each block also goes through `BlockStmExecutorFactory`, driven as a client validating a block
//! drives alloy-evm's executor (EVM from the factory over revm's `State`, `execute_block`, the
//! bundle taken from the `State`).
//!
//! Our side runs on the inputs a client has: the same revm database (`DatabaseStorage`), the
//! `EvmEnv` alloy-evm built (`EvmVm::from_env`) and the recovered transactions
//! (`EvmTx::from_recovered`), and must give what the fixture loader's inputs give.
//!
//! Needs `BLOCKSTM_ETH_FIXTURES`; without it the test says it was skipped.

use alloy_consensus::ReceiptEnvelope;
use alloy_evm::eth::spec::EthSpec;
use alloy_primitives::{Address, U256};
use blockstm_evm::{
    BlockInput, BlockStmExecutorFactory, ClientBlock, DatabaseStorage, EthBlock, EvmKey, EvmReceipt, EvmTx,
    EvmValue, EvmVm, Fixtures, execute_block,
};
use blockstm_executor::{BlockExecutor as _, Config, ParallelExecutor};
use revm::database::BundleState;
use std::collections::BTreeMap;

/// What the oracle produced: per receipt (type, success, cumulative gas, logs), and the bundle.
struct Oracle {
    receipts: Vec<(u8, bool, u64, Vec<alloy_primitives::Log>)>,
    envelopes: Vec<ReceiptEnvelope>,
    gas_used: u64,
    bundle: BundleState,
}

fn oracle(client: &ClientBlock) -> Result<Oracle, String> {
    let number = client.header.number;
    let BlockInput { env, ctx, transactions } = client.input();
    let result =
        blockstm_evm::oracle::alloy_evm_block(&client.db, &EthSpec::mainnet(), env, ctx, transactions)
            .map_err(|e| format!("block {number}, oracle: {e}"))?;
    let receipts = result
        .receipts
        .iter()
        .map(|r| (r.tx_type() as u8, r.status(), r.cumulative_gas_used(), r.logs().to_vec()))
        .collect();
    Ok(Oracle { receipts, envelopes: result.receipts, gas_used: result.gas_used, bundle: result.bundle })
}

/// The first difference between the oracle's results and ours, described.
fn compare(
    block: &EthBlock,
    oracle: &Oracle,
    receipts: &[EvmReceipt],
    post: &BTreeMap<EvmKey, EvmValue>,
) -> Option<String> {
    let mut cumulative = 0;
    for (i, (receipt, expected)) in receipts.iter().zip(&oracle.receipts).enumerate() {
        cumulative += receipt.gas_used;
        let actual = (receipt.tx_type, receipt.success, cumulative, receipt.logs.clone());
        if &actual != expected {
            return Some(format!("receipt {i}: oracle {expected:?}, ours {actual:?}"));
        }
    }
    if receipts.len() != oracle.receipts.len() || cumulative != oracle.gas_used {
        return Some(format!(
            "{} receipts and {cumulative} gas, the oracle {} and {}",
            receipts.len(),
            oracle.receipts.len(),
            oracle.gas_used
        ));
    }
    let skip_balance: Option<Address> = (block.header.ommers > 0).then_some(block.header.beneficiary);
    for (address, account) in &oracle.bundle.state {
        let ours = match post.get(&EvmKey::Account(*address)) {
            Some(EvmValue::Account(a)) => a.info.as_ref().map(|i| (i.balance, i.nonce, i.code_hash)),
            _ => None,
        };
        let mut expected = account.info.as_ref().map(|i| (i.balance, i.nonce, i.code_hash));
        let mut ours = ours;
        if skip_balance == Some(*address) {
            expected = expected.map(|(_, n, c)| (U256::ZERO, n, c));
            ours = ours.map(|(_, n, c)| (U256::ZERO, n, c));
        }
        if ours != expected {
            return Some(format!("account {address}: oracle {expected:?}, ours {ours:?}"));
        }
        for (slot, value) in &account.storage {
            let ours = match post.get(&EvmKey::Storage(*address, *slot)) {
                Some(EvmValue::Storage(v)) => v.value,
                _ => U256::ZERO,
            };
            if ours != value.present_value {
                return Some(format!(
                    "slot {slot} of {address}: oracle {}, ours {ours}",
                    value.present_value
                ));
            }
        }
    }
    // What we changed that the oracle did not: must be the value before the block.
    for (key, value) in post {
        let (address, slot) = match key {
            EvmKey::Account(a) => (*a, None),
            EvmKey::Storage(a, s) => (*a, Some(*s)),
        };
        let in_bundle = oracle.bundle.state.get(&address).is_some_and(|a| match slot {
            None => true,
            Some(s) => a.storage.contains_key(&s) || a.was_destroyed(),
        });
        // An account that does not exist, whatever its storage epoch, is the same as none.
        let absent = |v: Option<&EvmValue>| match v {
            None => true,
            Some(EvmValue::Account(a)) => a.info.is_none(),
            Some(EvmValue::Storage(_)) => false,
        };
        let unchanged = block.pre_state.get(key) == Some(value)
            || (absent(Some(value)) && absent(block.pre_state.get(key)));
        if !in_bundle && !unchanged {
            return Some(format!("{key:?}: ours {value:?}, unchanged by the oracle"));
        }
    }
    None
}

/// `client`'s block through [`execute_block`], its state committed into revm's `State` over
/// the same database: the first difference from the oracle's receipts, gas and bundle.
fn through_client_api(client: &ClientBlock, oracle: &Oracle, config: Config) -> Option<String> {
    let out = match execute_block(&client.db, &EthSpec::mainnet(), client.input(), config) {
        Ok(out) => out,
        Err(e) => return Some(e.to_string()),
    };
    if out.receipts != oracle.envelopes || out.gas_used != oracle.gas_used {
        return Some(format!("receipts or gas used ({} against {}) differ", out.gas_used, oracle.gas_used));
    }
    let ours = blockstm_evm::oracle::committed(&client.db, out.state);
    blockstm_evm::oracle::bundle_difference(&client.db, &oracle.bundle, &ours)
}

/// `client`'s block through [`BlockStmExecutorFactory`], driven as a client validating a
/// block drives alloy-evm's executor: the first difference from the oracle.
fn through_factory(client: &ClientBlock, oracle: &Oracle, config: Config) -> Option<String> {
    let BlockInput { env, ctx, transactions } = client.input();
    let factory = BlockStmExecutorFactory::new(EthSpec::mainnet(), config);
    let ours = match blockstm_evm::oracle::through_factory(&factory, &client.db, env, ctx, transactions) {
        Ok(ours) => ours,
        Err(e) => return Some(e.to_string()),
    };
    if ours.receipts != oracle.envelopes || ours.gas_used != oracle.gas_used {
        return Some(format!("receipts or gas used ({} against {}) differ", ours.gas_used, oracle.gas_used));
    }
    // Every block with transactions ran on Block-STM, not on the sequential fallback.
    let parallel = u64::from(!client.transactions.is_empty());
    if factory.path_counts().parallel != parallel {
        return Some(format!("ran on {:?}", factory.path_counts()));
    }
    blockstm_evm::oracle::bundle_difference(&client.db, &oracle.bundle, &ours.bundle)
}

#[test]
fn every_corpus_block_matches_alloy_evms_block_executor() {
    let Some(fixtures) = Fixtures::from_env() else {
        eprintln!("oracle test skipped: set BLOCKSTM_ETH_FIXTURES to the mainnet fixture directory");
        return;
    };
    let fixtures = fixtures.unwrap_or_else(|e| panic!("{e}"));
    let numbers = fixtures.block_numbers().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for &number in &numbers {
        let block = fixtures.load(number).unwrap_or_else(|e| panic!("{e}"));
        let client = fixtures.load_client(&block).unwrap_or_else(|e| panic!("{e}"));
        let expected = match oracle(&client) {
            Ok(expected) => expected,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        // The client's inputs: the revm database, alloy-evm's environment, alloy's transactions.
        let storage = DatabaseStorage::new(&client.db);
        let vm = EvmVm::from_env(client.env.clone(), &storage);
        let txns: Vec<EvmTx> = client.transactions.iter().map(EvmTx::from_recovered).collect();
        for threads in [1, 2, 4, 8] {
            let config = Config::new(threads).unwrap();
            let ours = ParallelExecutor::new(vm.clone(), config)
                .execute_block(&storage, &txns)
                .unwrap_or_else(|e| panic!("block {number}, {threads} threads: {e}"));
            // The fixture's own inputs give the same.
            let fixture = ParallelExecutor::new(block.vm(), config)
                .execute_block(&block.pre_state, &block.txns)
                .unwrap_or_else(|e| panic!("block {number}, {threads} threads: {e}"));
            if (&fixture.outputs, &fixture.state) != (&ours.outputs, &ours.state) {
                failures.push(format!(
                    "block {number}, {threads} threads: the fixture's inputs and the client's differ"
                ));
                break;
            }
            let post = block.post_state(&ours.state).unwrap_or_else(|e| panic!("block {number}: {e}"));
            if let Some(difference) = compare(&block, &expected, &ours.outputs, &post) {
                failures.push(format!("block {number}, {threads} threads: {difference}"));
                break;
            }
            // The whole block through the client API, merged into a `State` as a client does.
            if let Some(difference) = through_client_api(&client, &expected, config) {
                failures.push(format!("block {number}, {threads} threads, client API: {difference}"));
                break;
            }
            // And through the alloy-evm block-executor factory, as a client's `ConfigureEvm`.
            if let Some(difference) = through_factory(&client, &expected, config) {
                failures.push(format!("block {number}, {threads} threads, executor factory: {difference}"));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} blocks differ:\n{}",
        failures.len(),
        numbers.len(),
        failures.join("\n")
    );
}
