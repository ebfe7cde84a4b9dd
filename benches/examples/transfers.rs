//! The main job for now: a built-in block of 10 000 peer-to-peer transfers over 1 000
//! accounts, run sequentially and in parallel side by side; prints both times and the ratio.
//!
//! `cargo run --release --example transfers [-- THREADS]` (default: one thread per core).

use blockstm::{Config, ParallelExecutor, SequentialExecutor};
use blockstm_workloads::measure::compare;
use blockstm_workloads::{WorkVm, Workload};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let config = match std::env::args().nth(1) {
        None => Config::default(),
        Some(arg) => match arg
            .parse::<usize>()
            .map_err(|e| e.to_string())
            .and_then(|t| Config::new(t).map_err(|e| e.to_string()))
        {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: invalid thread count {arg:?}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let vm = WorkVm::calibrated(Duration::from_micros(10));
    let block = Workload::P2p { accounts: 1_000 }.generate(10_000, 42);
    let (storage, txns) = (block.storage, block.txns);
    let c =
        compare(&SequentialExecutor::new(vm), &ParallelExecutor::new(vm, config), &storage, &txns, 11, || {})
            .expect("measured");
    println!("block: 10 000 transfers over 1 000 accounts, about 10 us of VM work each");
    println!(
        "threads: {} (machine has {} cores)",
        config.threads(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!("sequential: {:.2} ms (median of 11)", c.seq.median * 1e3);
    println!("parallel:   {:.2} ms (median of 11)", c.par.median * 1e3);
    println!(
        "speedup:    {:.2}x (per-run range {:.2}x..{:.2}x)",
        c.speedup.median, c.speedup.min, c.speedup.max
    );
    let n = txns.len() as f64;
    println!(
        "executions/txn {:.3}, validations/txn {:.3}",
        c.stats.executions as f64 / n,
        c.stats.validations as f64 / n
    );
    ExitCode::SUCCESS
}
