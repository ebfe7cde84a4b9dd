//! The synthetic gigagas blocks (native, ERC-20, AMM): every transaction succeeds (so the
//! contracts' storage was laid out where the compiled code looks), emits the logs its contract
//! promises, uses the gas the block was sized by, and Block-STM at 1, 2, 4 and 8 threads
//! returns the sequential receipts and state, under Osaka's rules.

use alloy_primitives::{U256, keccak256};
use blockstm_evm::{EthBlock, EvmKey, EvmReceipt, EvmValue, Gigagas};
use blockstm_executor::{BlockExecutor, BlockOutput, Config, ParallelExecutor, SequentialExecutor};

/// Small blocks: the shape of the gigagas ones, at test speed.
const TEST_GAS: u64 = 30_000_000;

fn sequential(block: &EthBlock) -> BlockOutput<EvmKey, EvmValue, EvmReceipt> {
    SequentialExecutor::new(block.vm()).execute_block(&block.pre_state, &block.txns).unwrap()
}

fn check_receipts(kind: Gigagas, block: &EthBlock, receipts: &[EvmReceipt]) {
    assert_eq!(receipts.len(), block.txns.len());
    let transfer = keccak256("Transfer(address,address,uint256)");
    let swap = keccak256("Swap(address,bool,uint256,uint256,address)");
    for (i, (r, tx)) in receipts.iter().zip(&block.txns).enumerate() {
        assert!(r.success, "{kind}: transaction {i} failed: {r:?}");
        let topics: Vec<_> = r.logs.iter().map(|l| l.topics()[0]).collect();
        match kind {
            Gigagas::Native => assert!(topics.is_empty() && r.gas_used == 21_000, "{kind} {i}: {r:?}"),
            Gigagas::Erc20 => {
                assert_eq!(topics, [transfer], "{kind} {i}");
                // Transfer(from = the sender, to, value = the amount in the call data).
                let log = &r.logs[0];
                assert_eq!(log.topics()[1], tx.0.caller.into_word(), "{kind} {i}: from");
                assert_eq!(log.data.data[..], tx.0.data[36..68], "{kind} {i}: value");
            }
            Gigagas::Amm => assert_eq!(topics, [transfer, transfer, swap], "{kind} {i}"),
        }
    }
}

#[test]
fn gigagas_blocks_succeed_and_parallel_equals_sequential() {
    for kind in Gigagas::ALL {
        let block = kind.block(TEST_GAS, 7);
        assert_eq!(block.vm().spec(), blockstm_evm::SpecId::OSAKA, "{kind}: the latest fork's rules");
        let seq = sequential(&block);
        check_receipts(kind, &block, &seq.outputs);
        let gas: u64 = seq.outputs.iter().map(|r| r.gas_used).sum();
        assert!(
            gas.abs_diff(TEST_GAS) * 20 <= TEST_GAS,
            "{kind}: {gas} gas for a {TEST_GAS} gas block ({} txns)",
            block.txns.len()
        );
        let seq_post = block.post_state(&seq.state).unwrap();
        for threads in [1, 2, 4, 8] {
            let par = ParallelExecutor::new(block.vm(), Config::new(threads).unwrap().with_adaptive(false))
                .execute_block(&block.pre_state, &block.txns)
                .unwrap();
            assert!(par.outputs == seq.outputs, "{kind}, {threads} threads: receipts differ");
            assert!(par.state == seq.state, "{kind}, {threads} threads: state differs");
            assert_eq!(block.post_state(&par.state).unwrap(), seq_post, "{kind}, {threads} threads");
        }
    }
}

#[test]
fn gigagas_blocks_are_deterministic_per_seed_and_differ_across_seeds() {
    for kind in Gigagas::ALL {
        let a = kind.block(2_000_000, 1);
        let b = kind.block(2_000_000, 1);
        let c = kind.block(2_000_000, 2);
        assert_eq!(a.txns, b.txns, "{kind}");
        assert_eq!(a.pre_state, b.pre_state, "{kind}");
        assert_ne!(a.txns, c.txns, "{kind}");
    }
}

#[test]
fn amm_swaps_move_the_pool_reserves() {
    // One pool's reserves slot after the block differs from before: the swaps really trade.
    let block = Gigagas::Amm.block(TEST_GAS, 3);
    let seq = sequential(&block);
    let reserves = seq
        .state
        .iter()
        .filter(|(k, _)| matches!(*k, EvmKey::Storage(_, slot) if slot == U256::from(2)))
        .count();
    assert_eq!(reserves, blockstm_evm::AMM_POOLS, "every pool's reserves change");
}

#[test]
fn workload_names_parse() {
    for kind in Gigagas::ALL {
        assert_eq!(kind.name().parse::<Gigagas>().unwrap(), kind);
    }
    let err = "eth-nft".parse::<Gigagas>().unwrap_err().to_string();
    assert!(err.contains("eth-nft") && err.contains("eth-erc20"), "{err}");
}
