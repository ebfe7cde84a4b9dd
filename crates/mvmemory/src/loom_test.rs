//! loom model of the multi-version memory.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p blockstm-mvmemory --lib loom`.
//!
//! Concurrent `record`, `convert_writes_to_estimates` and `read` on shared locations. Values are
//! pairs `(incarnation, incarnation)` tagged by their writer, so a reader can check it saw a
//! whole value that matches the version reported with it, an ESTIMATE, or nothing, never a mix,
//! and that it never sees its own or a higher transaction's entry.
// Test bookkeeping counts iterations with a plain std atomic, outside the model (one per
// model: tests run concurrently).
#![allow(clippy::disallowed_types)]

use super::*;
use blockstm_sync::Arc;
use loom::thread;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering};

type Pair = (u64, u64);

fn value(txn: TxnIndex, incarnation: Incarnation) -> Pair {
    let v = (txn as u64) * 100 + u64::from(incarnation);
    (v, v)
}

fn check_read(read: MvRead<Pair>, reader: TxnIndex) {
    match read {
        MvRead::Value { version, value: (a, b) } => {
            assert_eq!(a, b, "torn value");
            assert!(version.txn_idx < reader, "read an entry at or above the reader");
            assert_eq!(
                (a, b),
                value(version.txn_idx, version.incarnation),
                "value does not match its version"
            );
        }
        MvRead::Estimate { blocking } => assert!(blocking < reader),
        MvRead::NotFound => {}
        MvRead::Deltas { deltas, .. } => match deltas[0] {},
    }
}

fn run(name: &str, preemption_bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let iterations = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let start = std::time::Instant::now();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "mvmemory model {name}, preemption bound {preemption_bound}: {} interleavings in {:.1?}",
        iterations.load(Ordering::Relaxed),
        start.elapsed()
    );
}

#[test]
fn loom_mvmemory_record_estimate_read() {
    run("record/estimate/read", 3, || {
        let mv: Arc<MvMemory<u8, Pair>> = Arc::new(MvMemory::new(3));
        // Transaction 1: incarnation 0 writes locations 1 and 2, is aborted, incarnation 1
        // writes location 1 only.
        let writer = {
            let mv = Arc::clone(&mv);
            thread::spawn(move || {
                assert!(mv.record(Version::new(1, 0), vec![(1, value(1, 0)), (2, value(1, 0))]));
                mv.convert_writes_to_estimates(1);
                assert!(!mv.record(Version::new(1, 1), vec![(1, value(1, 1))]));
            })
        };
        // Transaction 0 writes location 1 concurrently.
        let low = {
            let mv = Arc::clone(&mv);
            thread::spawn(move || {
                mv.record(Version::new(0, 0), vec![(1, value(0, 0))]);
            })
        };
        // Transaction 2 reads both locations meanwhile.
        for key in [1, 2, 1] {
            check_read(mv.read(&key, 2), 2);
        }
        writer.join().unwrap();
        low.join().unwrap();
        // Final state: location 1 by (1, 1), location 2 removed.
        assert_eq!(mv.read(&1, 2), MvRead::Value { version: Version::new(1, 1), value: value(1, 1) });
        assert_eq!(mv.read(&2, 2), MvRead::NotFound);
        assert_eq!(mv.snapshot(2).unwrap(), vec![(1, value(1, 1))]);
    });
}

#[test]
fn loom_mvmemory_concurrent_first_writes_to_one_location() {
    // Two transactions create the same location at once (the shard write-lock path).
    run("concurrent creation", 3, || {
        let mv: Arc<MvMemory<u8, Pair>> = Arc::new(MvMemory::new(3));
        let handles: Vec<_> = [0usize, 1]
            .into_iter()
            .map(|txn| {
                let mv = Arc::clone(&mv);
                thread::spawn(move || {
                    assert!(mv.record(Version::new(txn, 0), vec![(7, value(txn, 0))]));
                })
            })
            .collect();
        check_read(mv.read(&7, 2), 2);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(mv.read(&7, 2), MvRead::Value { version: Version::new(1, 0), value: value(1, 0) });
        assert_eq!(mv.read(&7, 1), MvRead::Value { version: Version::new(0, 0), value: value(0, 0) });
    });
}

/// The value a read by transaction 2 resolves to, storage holding nothing.
fn resolve_below_2(read: MvRead<u64, Add>) -> Option<u64> {
    match read {
        MvRead::Value { value, .. } => Some(value),
        MvRead::NotFound | MvRead::Estimate { .. } => None,
        MvRead::Deltas { base, deltas } => {
            Some(apply_deltas(base.as_ref().map(|(_, v)| v), &deltas).expect("additions fit"))
        }
    }
}

/// Transaction 0 writes 100 to location 1; transaction 1 adds 5, is aborted, adds 7 instead;
/// transaction 2 reads meanwhile, then reads while the committer materialises 0 and 1. With
/// `accumulator`, location 1's deltas are kept in per-transaction slots.
fn delta_model(name: &str, accumulator: Option<u8>) {
    run(name, 3, move || {
        let mv: Arc<MvMemory<u8, u64, Add>> = Arc::new(MvMemory::with_accumulator(3, accumulator));
        let adder = {
            let mv = Arc::clone(&mv);
            thread::spawn(move || {
                let delta = |amount| vec![(1, Write::Deltas(smallvec::smallvec![Add(amount)]))];
                assert!(mv.record_writes(Version::new(1, 0), delta(5)));
                mv.convert_writes_to_estimates(1);
                assert!(!mv.record_writes(Version::new(1, 1), delta(7)));
            })
        };
        let low = {
            let mv = Arc::clone(&mv);
            thread::spawn(move || {
                mv.record(Version::new(0, 0), vec![(1, 100)]);
            })
        };
        // Only whole states: nothing, 100, one of the two deltas on nothing or on 100, or the
        // ESTIMATE between them.
        let seen = resolve_below_2(mv.read(&1, 2));
        assert!(matches!(seen, None | Some(100 | 5 | 7 | 105 | 107)), "resolved to {seen:?}");
        adder.join().unwrap();
        low.join().unwrap();

        let reader = {
            let mv = Arc::clone(&mv);
            thread::spawn(move || resolve_below_2(mv.read(&1, 2)))
        };
        let no_storage = |_: &u8| Ok::<Option<u64>, ()>(None);
        mv.materialize(0, no_storage).unwrap();
        mv.materialize(1, no_storage).unwrap();
        // Before, during or after materialising: the same value.
        assert_eq!(reader.join().unwrap(), Some(107));
        assert_eq!(mv.read(&1, 2), MvRead::Value { version: Version::new(1, 1), value: 107 });
    });
}

#[test]
fn loom_mvmemory_delta_entries() {
    delta_model("deltas", None);
}

#[test]
fn loom_mvmemory_accumulator_slots() {
    delta_model("accumulator", Some(1));
}
