//! The differential property test: random blocks, sequential against parallel at many thread
//! counts, identical outputs, final state and error.

use blockstm_executor::{Config, ParallelExecutor, SequentialExecutor};
use blockstm_testkit::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

const THREADS: [usize; 6] = [1, 2, 3, 4, 8, 16];

/// Key pools of every size from 1 to 1000, weighted toward small (contended) ones.
fn key_pool() -> impl Strategy<Value = u32> {
    prop_oneof![1..=4u32, 5..=32u32, 33..=1000u32]
}

fn op(keys: u32, faults: bool) -> impl Strategy<Value = Op> {
    let k = move || 0..keys;
    let fault_weight = if faults { 2 } else { 0 };
    prop_oneof![
        40 => k().prop_map(Op::Read),
        8 => (k(), k()).prop_map(|(a, b)| Op::ReadEither(a, b)),
        30 => (k(), any::<u64>()).prop_map(|(key, salt)| Op::Write(key, salt)),
        8 => (k(), k(), any::<u64>()).prop_map(|(a, b, salt)| Op::WriteEither(a, b, salt)),
        10 => k().prop_map(Op::Increment),
        fault_weight => (1..=40u64, any::<bool>()).prop_map(|(modulus, panic)| Op::FailIf { modulus, panic }),
        1 => (1..=64u64).prop_map(|modulus| Op::EndIf { modulus }),
        2 => (0..200u32).prop_map(Op::Work),
    ]
}

/// A transaction: 0 to 8 reads and 0 to 8 writes (plus the odd fault or end marker), in a
/// random order.
fn tx(keys: u32, faults: bool) -> impl Strategy<Value = Tx> {
    proptest::collection::vec(op(keys, faults), 0..=16).prop_map(|ops| Tx { ops })
}

#[derive(Debug, Clone)]
struct Case {
    storage: TestStorage,
    txns: Vec<Tx>,
}

fn case() -> impl Strategy<Value = Case> {
    (key_pool(), any::<bool>(), prop::option::weighted(0.1, any::<u32>()))
        .prop_flat_map(|(keys, faults, failing)| {
            let mut storage = storage(keys);
            storage.failing = failing.map(|k| k % keys);
            (Just(storage), proptest::collection::vec(tx(keys, faults), 1..=300))
        })
        .prop_map(|(storage, txns)| Case { storage, txns })
}

fn check(case: &Case, max_incarnations: Option<u32>) -> Result<(), TestCaseError> {
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &case.storage, &case.txns);
    for threads in THREADS {
        // Adaptive choice off: every thread count, 1 included, runs Block-STM itself.
        let mut config = Config::new(threads).unwrap().with_adaptive(false);
        if let Some(max) = max_incarnations {
            config = config.with_max_incarnations(max).unwrap();
        }
        let (actual, _) = run(&ParallelExecutor::new(TestVm, config), &case.storage, &case.txns);
        prop_assert_eq!(&actual, &expected, "threads = {}", threads);
    }
    Ok(())
}

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(2000))]

    /// 2,000 random blocks, each run sequentially and at 1, 2, 3, 4, 8 and 16 threads.
    #[test]
    fn parallel_matches_sequential(case in case()) {
        quiet_test_vm_panics();
        check(&case, None)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(300))]

    /// The livelock guard set so low that most contended blocks finish on the sequential
    /// fallback after a partly committed parallel run: still identical.
    #[test]
    fn sequential_fallback_matches_sequential(case in case()) {
        quiet_test_vm_panics();
        check(&case, Some(1))?;
    }
}
