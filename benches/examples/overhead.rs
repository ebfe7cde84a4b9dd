//! Measures the executor's own cost per transaction: the VM does no work.
//! `cargo run --release --example overhead [-- THREADS]` (`BLOCKSTM_ADAPTIVE=0`: adaptive rule off)
use blockstm::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use blockstm_workloads::{WorkVm, Workload};
use std::time::Instant;

fn main() {
    let only: Option<usize> = std::env::args().nth(1).and_then(|a| a.parse().ok());
    let vm = WorkVm { rounds: 0 };
    // As in profile_one: `BLOCKSTM_ADAPTIVE=0` measures Block-STM itself, not the fallback.
    let adaptive = std::env::var("BLOCKSTM_ADAPTIVE").map_or(true, |v| v != "0");
    for (name, blockstm_workloads::Block { storage, txns }) in [
        ("independent", Workload::Independent.generate(10_000, 7)),
        ("chain", Workload::Chain.generate(10_000, 7)),
    ] {
        let time = |f: &dyn Fn()| {
            let mut v: Vec<f64> = (0..15)
                .map(|_| {
                    let s = Instant::now();
                    f();
                    s.elapsed().as_secs_f64() * 1e9 / txns.len() as f64
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v[7]
        };
        let seq = SequentialExecutor::new(vm);
        let s = time(&|| drop(seq.execute_block(&storage, &txns)));
        let mut line = format!("{name}: ns/txn sequential {s:.0}");
        for threads in [1, 2, 4] {
            if only.is_some_and(|o| o != threads) {
                continue;
            }
            let par =
                ParallelExecutor::new(vm, Config::new(threads).expect("threads > 0").with_adaptive(adaptive));
            let p = time(&|| drop(par.execute_block(&storage, &txns)));
            line += &format!("  parallel({threads}) {p:.0}");
        }
        println!("{line}");
    }
}
