//! The EVM-level differential test: large blocks merged from the blockchain tests' own
//! transactions (`blockstm_evm::ethtests::merged_block`: many cases' pre-states merged, their
//! transactions concatenated with renumbered nonces), full of real conflicts on real bytecode,
//! must give identical receipts and state sequentially and in parallel at 2 to 32 threads.
//!
//! Needs `BLOCKSTM_ETH_TESTS`; `BLOCKSTM_ETH_DIFF_BLOCKS` sets the number of blocks (200 by
//! default). A divergence names the seed; `blockstm eth-diff --replay SEED` re-checks it.

use blockstm_evm::SpecId;
use blockstm_evm::ethtests::{self, ETH_TESTS_ENV};
use blockstm_executor::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use std::path::PathBuf;

#[test]
fn merged_blocks_agree_at_2_to_32_threads() {
    let Some(dir) = std::env::var_os(ETH_TESTS_ENV).map(PathBuf::from) else {
        eprintln!("EVM differential skipped: set {ETH_TESTS_ENV} to the ethereum-tests fixture directory");
        return;
    };
    let blocks: u64 =
        std::env::var("BLOCKSTM_ETH_DIFF_BLOCKS").ok().and_then(|b| b.parse().ok()).unwrap_or(200);
    blockstm_evm::warm_up().expect("KZG setup");
    let files = ethtests::source_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    let sources =
        ethtests::sources(&files, SpecId::CANCUN, ethtests::DIFF_MAX_GAS).unwrap_or_else(|e| panic!("{e}"));
    assert!(sources.len() > 1000, "only {} source cases", sources.len());
    let (mut txns, mut built) = (0, 0);
    for seed in 0..blocks {
        let block =
            ethtests::merged_block(&sources, seed, ethtests::DIFF_MIN_TXNS).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            block.txns.len() >= ethtests::DIFF_MIN_TXNS,
            "seed {seed}: {} transactions",
            block.txns.len()
        );
        built += 1;
        txns += block.txns.len();
        let vm = block.vm();
        let expected =
            SequentialExecutor::new(vm.clone()).execute_block(&block.pre_state, &block.txns).unwrap();
        for (i, threads) in [2, 3, 4, 8, 16, 32].into_iter().enumerate() {
            // Block-STM itself at every count; the adaptive rule and claims of one in turn.
            let config = Config::new(threads).unwrap().with_adaptive(i % 3 == 1).with_batch(if i % 2 == 0 {
                0
            } else {
                1
            });
            let actual = ParallelExecutor::new(vm.clone(), config)
                .execute_block(&block.pre_state, &block.txns)
                .unwrap();
            assert!(
                actual.outputs == expected.outputs && actual.state == expected.state,
                "seed {seed}: the parallel executor at {threads} threads differs from the sequential one \
                 (replay: blockstm eth-diff --replay {seed} --threads {threads})"
            );
        }
    }
    eprintln!("EVM differential: {built} merged blocks, {txns} transactions, identical at 2 to 32 threads");
}
