//! The machine's own parallel ceiling for EVM work: a gigagas block's transactions (every sender
//! distinct, so its halves are independent) run by the sequential baseline on one thread, against
//! its two halves run by two sequential baselines at once on two threads, sharing nothing but the
//! read-only pre-state. No executor machinery is involved, so the ratio is what the cores, caches
//! and memory of this machine allow for this work: the bound any parallel executor's speedup on
//! the block is measured against here.
//!
//! `cargo run --release -p blockstm-evm --example ceiling_evm -- [eth-native|eth-erc20|eth-amm] [ROUNDS]`
//!
//! Rounds alternate the one-thread and the two-thread run; the ratio is reported per round
//! (median and range), as the CLI reports its speedups.
use blockstm_evm::Gigagas;
use blockstm_executor::{BlockExecutor, SequentialExecutor};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workload = args.get(1).map_or("eth-erc20", String::as_str);
    let rounds = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(9usize).max(1);
    let gigagas: Gigagas = workload.parse().unwrap_or_else(|e| panic!("{e}"));
    if gigagas == Gigagas::Amm {
        // AMM swaps share their pools: the halves would not be independent.
        eprintln!("note: eth-amm's halves share pools; the two-thread run does different work");
    }
    blockstm_evm::warm_up().expect("the KZG setup loads");
    let block = gigagas.block(1_000_000_000, 42);
    let sequential = SequentialExecutor::new(block.vm());
    let (first, second) = block.txns.split_at(block.txns.len() / 2);
    let run = |txns| sequential.execute_block(&block.pre_state, txns).expect("block runs");

    let mut one = Vec::with_capacity(rounds);
    let mut two = Vec::with_capacity(rounds);
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(run(&block.txns));
        let t1 = start.elapsed();
        let start = Instant::now();
        std::thread::scope(|s| {
            let other = s.spawn(|| std::hint::black_box(run(second)));
            std::hint::black_box(run(first));
            other.join().expect("the second half runs");
        });
        let t2 = start.elapsed();
        one.push(t1);
        two.push(t2);
        ratios.push(t1.as_secs_f64() / t2.as_secs_f64());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    ratios.sort_by(f64::total_cmp);
    println!(
        "{workload}: {} txns; one thread {:?}, two threads on the halves {:?}; ratio median {:.3}x (range {:.3}x..{:.3}x) over {rounds} rounds",
        block.txns.len(),
        median(&mut one),
        median(&mut two),
        ratios[rounds / 2],
        ratios[0],
        ratios[rounds - 1],
    );
}
