//! The differential property test: random blocks, sequential against parallel at many thread
//! counts, identical outputs, final state and error.

use blockstm_executor::{BlockError, Config, ParallelExecutor, SequentialExecutor};
use blockstm_testkit::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

const THREADS: [usize; 6] = [1, 2, 3, 4, 8, 16];

/// The thread counts at which each block also runs with an accumulator ([`AccumulatingVm`]).
const ACCUMULATOR_THREADS: [usize; 3] = [1, 2, 8];

/// Key pools of every size from 1 to 1000, weighted toward small (contended) ones.
fn key_pool() -> impl Strategy<Value = u32> {
    prop_oneof![1..=4u32, 5..=32u32, 33..=1000u32]
}

/// Which deltas a block draws: none (a quarter of the blocks), only positive ones (half), or
/// amounts that may be negative and underflow, ending the block with a delta error (a quarter).
#[derive(Clone, Copy, Debug)]
enum Deltas {
    None,
    Positive,
    Risky,
}

fn deltas() -> impl Strategy<Value = Deltas> {
    prop_oneof![1 => Just(Deltas::None), 2 => Just(Deltas::Positive), 1 => Just(Deltas::Risky)]
}

fn op(keys: u32, faults: bool, deltas: Deltas) -> impl Strategy<Value = Op> {
    let k = move || 0..keys;
    let fault_weight = if faults { 2 } else { 0 };
    let (delta_weight, amounts) = match deltas {
        Deltas::None => (0, 1..=1i64),
        Deltas::Positive => (12, 1..=1000),
        Deltas::Risky => (12, -1000..=2000),
    };
    prop_oneof![
        40 => k().prop_map(Op::Read),
        8 => (k(), k()).prop_map(|(a, b)| Op::ReadEither(a, b)),
        30 => (k(), any::<u64>()).prop_map(|(key, salt)| Op::Write(key, salt)),
        8 => (k(), k(), any::<u64>()).prop_map(|(a, b, salt)| Op::WriteEither(a, b, salt)),
        10 => k().prop_map(Op::Increment),
        delta_weight => (k(), amounts.clone()).prop_map(|(key, amount)| Op::Delta(key, amount)),
        delta_weight / 4 => (k(), k(), amounts).prop_map(|(a, b, amount)| Op::DeltaEither(a, b, amount)),
        fault_weight => (1..=40u64, any::<bool>()).prop_map(|(modulus, panic)| Op::FailIf { modulus, panic }),
        1 => (1..=64u64).prop_map(|modulus| Op::EndIf { modulus }),
        2 => (0..200u32).prop_map(Op::Work),
    ]
}

/// A transaction: 0 to 8 reads and 0 to 8 writes or deltas (plus the odd fault or end marker),
/// in a random order.
fn tx(keys: u32, faults: bool, deltas: Deltas) -> impl Strategy<Value = Tx> {
    proptest::collection::vec(op(keys, faults, deltas), 0..=16).prop_map(|ops| Tx { ops, hint: None })
}

#[derive(Debug, Clone)]
struct Case {
    storage: TestStorage,
    txns: Vec<Tx>,
    /// The largest claim of execution indices, with no calm stretch ([`batched`]).
    batch: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (key_pool(), any::<bool>(), prop::option::weighted(0.1, any::<u32>()), deltas())
        .prop_flat_map(|(keys, faults, failing, deltas)| {
            let mut storage = storage(keys);
            storage.failing = failing.map(|k| k % keys);
            (
                Just(storage),
                proptest::collection::vec(tx(keys, faults, deltas), 1..=300),
                prop::sample::select(&BATCHES[..]),
            )
        })
        .prop_map(|(storage, txns, batch)| Case { storage, txns, batch })
}

fn check(case: &Case, max_incarnations: Option<u32>) -> Result<(), TestCaseError> {
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &case.storage, &case.txns);
    for threads in THREADS {
        // Adaptive choice off: every thread count, 1 included, runs Block-STM itself.
        let mut config = batched(Config::new(threads).unwrap().with_adaptive(false), case.batch);
        if let Some(max) = max_incarnations {
            config = config.with_max_incarnations(max);
        }
        let (actual, _) = run(&ParallelExecutor::new(TestVm, config), &case.storage, &case.txns);
        prop_assert_eq!(&actual, &expected, "threads = {}, batch = {}", threads, case.batch);
        // The location most deltas go to kept per transaction, as the EVM keeps its fee
        // recipient: the same results.
        if ACCUMULATOR_THREADS.contains(&threads) {
            let vm = AccumulatingVm(delta_hotspot(&case.txns));
            let (actual, _) = run(&ParallelExecutor::new(vm, config), &case.storage, &case.txns);
            prop_assert_eq!(&actual, &expected, "{:?}, threads = {}, batch = {}", vm, threads, case.batch);
        }
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
    #![proptest_config(proptest_config(2700))]

    /// 2,700 random blocks (about 2,000 of them with deltas), each run sequentially and at 1,
    /// 2, 3, 4, 8 and 16 threads, and at 1, 2 and 8 with the block's most delta-written
    /// location as the accumulator.
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

/// The generated blocks do exercise deltas: over seeded blocks, some with deltas succeed, some
/// fail on a delta (underflow) in sequential execution, some read locations that lower
/// transactions applied deltas to; all match at several thread counts.
#[test]
fn delta_blocks_cover_success_failure_and_resolved_reads() {
    quiet_test_vm_panics();
    let (mut succeeded, mut delta_errors, mut resolved_reads) = (0, 0, 0);
    for seed in 0..300 {
        let case = random_case(seed);
        let has_delta = |tx: &Tx| tx.ops.iter().any(|op| matches!(op, Op::Delta(..) | Op::DeltaEither(..)));
        if !case.txns.iter().any(has_delta) {
            continue;
        }
        let configs = [2, 4, 8].map(|threads| block_stm_config(threads, 256, None));
        if let Err(divergence) = check_case(&case, &configs) {
            panic!("{divergence}");
        }
        match run(&SequentialExecutor::new(TestVm), &case.storage, &case.txns).0 {
            Ok(_) => succeeded += 1,
            Err(BlockError::Delta { .. }) => delta_errors += 1,
            Err(_) => {}
        }
        // A read of a key that an earlier transaction applied a delta to.
        let mut delta_keys = std::collections::HashSet::new();
        for tx in &case.txns {
            for op in &tx.ops {
                match *op {
                    Op::Read(k) | Op::Increment(k) if delta_keys.contains(&k) => resolved_reads += 1,
                    Op::Delta(k, _) => {
                        delta_keys.insert(k);
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(succeeded >= 40, "only {succeeded} delta blocks succeeded");
    assert!(delta_errors >= 5, "only {delta_errors} delta blocks failed on a delta");
    assert!(resolved_reads >= 1000, "only {resolved_reads} reads of delta locations");
}
