//! Profiling helper: runs one scenario's parallel executor repeatedly.
//! `cargo run --release --example profile_one -- THREADS WORKLOAD REPEATS [WORK_US] [TXNS]`
//! (TXNS: transactions per block, 10 000 by default); prints the
//! last block's statistics and the median and minimum block time. THREADS = 0 runs the
//! sequential baseline instead, for comparing profiles.
//! (`BLOCKSTM_ADAPTIVE=0` turns the adaptive choice of the sequential path off;
//! `BLOCKSTM_BATCH=N` sets the largest claim per worker, `Config::with_batch`.)
use blockstm::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use blockstm_workloads::{WorkVm, Workload};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let workload = args.get(2).map_or("independent", String::as_str);
    let repeats = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(20);
    let work_us: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10);
    let txns_per_block: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let vm = WorkVm::calibrated(Duration::from_micros(work_us));
    let workload: Workload = workload.parse().unwrap_or_else(|e| panic!("{e}"));
    let blockstm_workloads::Block { storage, txns } = workload.generate(txns_per_block, 7);
    let adaptive = std::env::var("BLOCKSTM_ADAPTIVE").map_or(true, |v| v != "0");
    let executor: Box<dyn Fn() -> _> = if threads == 0 {
        let sequential = SequentialExecutor::new(vm);
        Box::new(move || sequential.execute_block(&storage, &txns))
    } else {
        let mut config = Config::new(threads).expect("threads > 0").with_adaptive(adaptive);
        if let Some(batch) = std::env::var("BLOCKSTM_BATCH").ok().and_then(|v| v.parse().ok()) {
            config = config.with_batch(batch);
        }
        let parallel = ParallelExecutor::new(vm, config);
        Box::new(move || parallel.execute_block(&storage, &txns))
    };
    let mut times = Vec::with_capacity(repeats);
    for round in 0..repeats {
        let start = std::time::Instant::now();
        let out = executor().expect("block runs");
        times.push(start.elapsed());
        if round + 1 == repeats {
            println!("{:?} in {:?}", out.stats, start.elapsed());
        }
        std::hint::black_box(out);
    }
    times.sort();
    if let (Some(min), Some(median)) = (times.first(), times.get(times.len() / 2)) {
        println!("median {median:?}, min {min:?} over {repeats} blocks");
    }
}
