//! Side-by-side ratios of the parallel executor against the sequential baseline (independent
//! transactions and a chain, 10 us of VM work). Run with `cargo bench -p blockstm-benches --bench ratios`.
//!
//! Prints, per scenario, the median sequential and parallel times and the median and range of
//! the per-pair speedups of interleaved runs. `BLOCKSTM_BENCH_RUNS` sets the number of pairs,
//! `BLOCKSTM_BENCH_FILTER` selects scenarios by name, `BLOCKSTM_ADAPTIVE=0` turns the adaptive
//! choice of the sequential path off.

use blockstm::{Config, ParallelExecutor, SequentialExecutor};
use blockstm_workloads::measure::compare;
use blockstm_workloads::{WorkVm, Workload};
use std::time::Duration;

fn main() {
    let runs: usize = std::env::var("BLOCKSTM_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(31);
    let adaptive = std::env::var("BLOCKSTM_ADAPTIVE").map_or(true, |v| v != "0");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let vm = WorkVm::calibrated(Duration::from_micros(10));
    println!(
        "machine: {cores} cores; VM work: {} hashing rounds (about 10 us) per transaction; {runs} interleaved runs each; adaptive {adaptive}",
        vm.rounds
    );
    println!(
        "{:<36} {:>3} {:>10} {:>10} {:>8} {:>17} {:>9} {:>8}",
        "scenario", "P", "seq ms", "par ms", "speedup", "range", "exec/txn", "val/txn"
    );
    let scenarios = [
        ("independent, 10 000 txns", Workload::Independent, vec![1, 2]),
        ("p2p transfers, 10 000 accounts", Workload::P2p { accounts: 10_000 }, vec![1, 2]),
        ("p2p transfers, 100 accounts", Workload::P2p { accounts: 100 }, vec![2]),
        ("p2p transfers, 2 accounts", Workload::P2p { accounts: 2 }, vec![2]),
        ("dependent chain, 10 000 txns", Workload::Chain, vec![1, 2]),
    ];
    let filter = std::env::var("BLOCKSTM_BENCH_FILTER").unwrap_or_default();
    let sequential = SequentialExecutor::new(vm);
    for (name, workload, threads) in scenarios.iter().filter(|s| s.0.contains(filter.as_str())) {
        let block = workload.generate(10_000, 7);
        for &p in threads {
            let config = Config::new(p).expect("threads > 0").with_adaptive(adaptive);
            let parallel = ParallelExecutor::new(vm, config);
            let c =
                compare(&sequential, &parallel, &block.storage, &block.txns, runs, || {}).expect("measured");
            let n = block.txns.len() as f64;
            println!(
                "{name:<36} {p:>3} {:>10.2} {:>10.2} {:>7.3}x {:>7.3}x..{:>6.3}x {:>9.3} {:>8.3}",
                c.seq.median * 1e3,
                c.par.median * 1e3,
                c.speedup.median,
                c.speedup.min,
                c.speedup.max,
                c.stats.executions as f64 / n,
                c.stats.validations as f64 / n
            );
        }
    }
}
