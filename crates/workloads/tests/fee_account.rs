//! Fee-account blocks with deltas, where some transactions read the fee account's exact
//! balance: identical to sequential execution at every thread count.

use blockstm_executor::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use blockstm_workloads::{FEE, FEE_ACCOUNT, Fee, WorkTx, WorkVm, Workload};

/// The fee-account-delta block with every `every`-th transaction replaced by a read of the fee
/// account's balance (its output is a function of the exact value).
fn block_with_observers(txns: usize, every: usize) -> (blockstm_workloads::Block, usize) {
    let mut block = Workload::FeeAccountDelta.generate(txns, 11);
    let mut observers = 0;
    for (i, tx) in block.txns.iter_mut().enumerate() {
        if i % every == every - 1 {
            *tx = WorkTx::Observe { key: FEE_ACCOUNT };
            observers += 1;
        }
    }
    (block, observers)
}

#[test]
fn observers_of_the_fee_account_see_its_exact_balance() {
    let vm = WorkVm { rounds: 200 };
    for every in [2, 7, 50] {
        let (block, observers) = block_with_observers(2_000, every);
        let expected = SequentialExecutor::new(vm).execute_block(&block.storage, &block.txns).unwrap();
        let payers = (block.txns.len() - observers) as u64;
        assert!(expected.state.contains(&(FEE_ACCOUNT, payers * FEE)), "every fee credited once");
        for threads in [1, 2, 3, 4, 8, 16] {
            let config = Config::new(threads).unwrap().with_adaptive(false);
            for _ in 0..3 {
                let actual =
                    ParallelExecutor::new(vm, config).execute_block(&block.storage, &block.txns).unwrap();
                assert_eq!(actual.outputs, expected.outputs, "every = {every}, threads = {threads}");
                assert_eq!(actual.state, expected.state, "every = {every}, threads = {threads}");
            }
        }
    }
}

#[test]
fn crediting_by_delta_makes_transfers_independent_of_the_fee_account() {
    let vm = WorkVm { rounds: 500 };
    let block = Workload::FeeAccountDelta.generate(3_000, 5);
    assert!(block.txns.iter().all(|tx| matches!(tx, WorkTx::Transfer { fee: Fee::Delta(FEE_ACCOUNT), .. })));
    let config = Config::new(4).unwrap().with_adaptive(false);
    let out = ParallelExecutor::new(vm, config).execute_block(&block.storage, &block.txns).unwrap();
    let expected = SequentialExecutor::new(vm).execute_block(&block.storage, &block.txns).unwrap();
    assert_eq!((out.outputs, out.state), (expected.outputs, expected.state));
    // Conflicts left are between transfers sharing an account (10 000 of them), not the fee.
    assert!(out.stats.executions < 3_000 + 300, "{:?}", out.stats);
}
