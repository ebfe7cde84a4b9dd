//! Blocks large enough that the final state is taken apart on all threads (each sorts and
//! frees a part of the multi-version memory; the parts are merged): identical to sequential
//! execution, whole and when the commit hook ends the block early, at 2, 3 and 4 threads.

use blockstm_executor::{Config, ParallelExecutor, SequentialExecutor};
use blockstm_testkit::*;

/// `n` transactions over 3 000 keys: reads, writes, increments and deltas that depend on what
/// was read, so the final state mixes values, deltas and untouched keys. With `end_at`, the
/// transaction at that index ends the block.
fn block(n: u32, end_at: Option<u32>) -> Vec<Tx> {
    let mut rng = Rng::new(u64::from(n));
    (0..n)
        .map(|i| {
            let mut key = || rng.below(3000) as Key;
            let mut ops =
                vec![Op::Read(key()), Op::WriteEither(key(), key(), u64::from(i)), Op::Increment(key())];
            ops.push(Op::Delta(key(), 3));
            if end_at == Some(i) {
                ops.push(Op::EndIf { modulus: 1 });
            }
            Tx { hint: None, ops }
        })
        .collect()
}

#[test]
fn large_blocks_match_sequential_whole_and_ended_early() {
    let storage = storage(3000);
    for (n, end_at) in [(6000, None), (5000, Some(4500))] {
        let txns = block(n, end_at);
        let (expected, out) = run(&SequentialExecutor::new(TestVm), &storage, &txns);
        let out = out.expect("the block succeeds");
        assert_eq!(out.ended_early, end_at.is_some());
        assert!(out.state.len() > 2500, "most keys written: {}", out.state.len());
        for threads in [2, 3, 4] {
            let executor = ParallelExecutor::new(TestVm, Config::new(threads).unwrap().with_adaptive(false));
            let (actual, _) = run(&executor, &storage, &txns);
            assert_eq!(actual, expected, "{n} txns, {threads} threads");
        }
    }
}
