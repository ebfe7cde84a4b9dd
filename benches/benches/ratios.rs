//! Side-by-side ratios of the parallel executor against the sequential baseline (issue 2's
//! targets). Run with `cargo bench -p blockstm-benches --bench ratios`.
//!
//! Prints, per scenario, the median sequential and parallel times and the median and range of
//! the per-pair speedups of interleaved runs.

use blockstm::{Config, ParallelExecutor, SequentialExecutor};
use blockstm_benches::{BenchVm, accounts, chain, compare, independent, transfers};
use std::time::Duration;

/// Name, pre-state, block, thread counts.
type Scenario =
    (&'static str, std::collections::HashMap<u32, u64>, Vec<blockstm_benches::BenchTx>, Vec<usize>);

fn main() {
    let runs: usize = std::env::var("BLOCKSTM_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(31);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let vm = BenchVm::calibrated(Duration::from_micros(10));
    println!(
        "machine: {cores} cores; VM work: {} hashing rounds (about 10 us) per transaction; {runs} interleaved runs each",
        vm.rounds
    );
    println!(
        "{:<36} {:>3} {:>10} {:>10} {:>8} {:>17} {:>9} {:>8}",
        "scenario", "P", "seq ms", "par ms", "speedup", "range", "exec/txn", "val/txn"
    );

    let scenarios: Vec<Scenario> = vec![
        ("independent, 10 000 txns", accounts(20_000), independent(10_000), vec![1, 2]),
        ("p2p transfers, 10 000 accounts", accounts(10_000), transfers(10_000, 10_000, 7), vec![1, 2]),
        ("p2p transfers, 100 accounts", accounts(100), transfers(10_000, 100, 7), vec![2]),
        ("p2p transfers, 2 accounts", accounts(2), transfers(10_000, 2, 7), vec![2]),
        ("dependent chain, 10 000 txns", accounts(1), chain(10_000), vec![1, 2]),
    ];
    let sequential = SequentialExecutor::new(vm);
    // BLOCKSTM_BENCH_FILTER=text runs only the scenarios whose name contains it.
    let filter = std::env::var("BLOCKSTM_BENCH_FILTER").unwrap_or_default();
    for (name, storage, txns, threads) in scenarios.iter().filter(|s| s.0.contains(filter.as_str())) {
        for &p in threads {
            let parallel = ParallelExecutor::new(vm, Config::new(p).expect("threads > 0"));
            let c = compare(&sequential, &parallel, storage, txns, runs);
            println!(
                "{name:<36} {p:>3} {:>10.2} {:>10.2} {:>7.3}x {:>7.3}x..{:>6.3}x {:>9.3} {:>8.3}",
                c.seq.median * 1e3,
                c.par.median * 1e3,
                c.speedup.median,
                c.speedup.min,
                c.speedup.max,
                c.exec_per_txn,
                c.val_per_txn
            );
        }
    }
}
