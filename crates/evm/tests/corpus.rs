//! The mainnet corpus: every block, sequentially and in parallel at 1, 2, 4 and 8 threads,
//! on Block-STM (the adaptive choice of the sequential path off) matches its header (gas used, logs bloom, from Byzantium the receipts root), and the parallel
//! receipts and post-state equal the sequential ones.
//!
//! Needs `BLOCKSTM_ETH_FIXTURES` (CI sets it to `../shared/fixtures/ethereum-mainnet`); without it
//! the test says it was skipped.

use blockstm_evm::{EthBlock, EvmReceipt, Fixtures};
use blockstm_executor::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};

fn fixtures() -> Option<Fixtures> {
    match Fixtures::from_env() {
        None => {
            eprintln!("corpus test skipped: set BLOCKSTM_ETH_FIXTURES to the mainnet fixture directory");
            None
        }
        Some(fixtures) => Some(fixtures.unwrap_or_else(|e| panic!("{e}"))),
    }
}

/// The first receipt where `actual` differs from `expected`, described.
fn first_difference(expected: &[EvmReceipt], actual: &[EvmReceipt]) -> Option<String> {
    if let Some(i) = (0..expected.len().min(actual.len())).find(|&i| expected[i] != actual[i]) {
        return Some(format!("receipt {i}: expected {:?}, got {:?}", expected[i], actual[i]));
    }
    (expected.len() != actual.len())
        .then(|| format!("{} receipts, expected {}", actual.len(), expected.len()))
}

fn check_block(block: &EthBlock) -> Result<(), String> {
    let number = block.header.number;
    let vm = block.vm();
    let seq = SequentialExecutor::new(vm.clone())
        .execute_block(&block.pre_state, &block.txns)
        .map_err(|e| format!("block {number}, sequential: {e}"))?;
    block.check_header(&seq.outputs).map_err(|e| format!("block {number}, sequential: {e}"))?;
    let seq_post = block.post_state(&seq.state)?;
    for threads in [1, 2, 4, 8] {
        let par = ParallelExecutor::new(vm.clone(), Config::new(threads).unwrap().with_adaptive(false))
            .execute_block(&block.pre_state, &block.txns)
            .map_err(|e| format!("block {number}, {threads} threads: {e}"))?;
        if let Some(diff) = first_difference(&seq.outputs, &par.outputs) {
            return Err(format!("block {number}, {threads} threads: {diff}"));
        }
        block.check_header(&par.outputs).map_err(|e| format!("block {number}, {threads} threads: {e}"))?;
        if par.state != seq.state || block.post_state(&par.state)? != seq_post {
            return Err(format!("block {number}, {threads} threads: post-state differs from sequential"));
        }
    }
    Ok(())
}

#[test]
fn every_corpus_block_matches_its_header_sequentially_and_in_parallel() {
    let Some(fixtures) = fixtures() else { return };
    let numbers = fixtures.block_numbers().unwrap_or_else(|e| panic!("{e}"));
    assert!(!numbers.is_empty(), "no blocks in {}", fixtures.dir().display());
    let mut failures = Vec::new();
    let mut txns = 0;
    for &number in &numbers {
        let block = fixtures.load(number).unwrap_or_else(|e| panic!("{e}"));
        txns += block.txns.len();
        if let Err(e) = check_block(&block) {
            failures.push(e);
        }
    }
    eprintln!("{} blocks, {txns} transactions; {} failed", numbers.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} blocks failed:\n{}",
        failures.len(),
        numbers.len(),
        failures.join("\n")
    );
}
