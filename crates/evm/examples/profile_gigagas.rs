//! Profiling helper: runs one gigagas block's parallel executor repeatedly (Block-STM only, the
//! adaptive choice of the sequential path off).
//! `cargo run --release -p blockstm-evm --example profile_gigagas -- THREADS eth-native REPEATS`
//! (THREADS = 0 runs the sequential baseline)
//! (or a mainnet block: `THREADS 3356896 REPEATS`, fixtures from `BLOCKSTM_ETH_FIXTURES`;
//! `BLOCKSTM_BATCH=N` sets the largest claim per worker, `Config::with_batch`)
use blockstm_evm::{Fixtures, Gigagas};
use blockstm_executor::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};

/// The allocator the CLI measures with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let workload = args.get(2).map_or("eth-native", String::as_str);
    let repeats = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(20usize).max(1);
    blockstm_evm::warm_up().expect("the KZG setup loads");
    let block = match workload.parse::<u64>() {
        Ok(number) => Fixtures::from_env()
            .expect("BLOCKSTM_ETH_FIXTURES is set")
            .and_then(|fixtures| fixtures.load(number))
            .unwrap_or_else(|e| panic!("{e}")),
        Err(_) => workload.parse::<Gigagas>().unwrap_or_else(|e| panic!("{e}")).block(1_000_000_000, 42),
    };
    // THREADS = 0: the sequential baseline, for comparing profiles.
    let executor: Box<dyn Fn() -> _> = if threads == 0 {
        let sequential = SequentialExecutor::new(block.vm());
        Box::new(move || sequential.execute_block(&block.pre_state, &block.txns))
    } else {
        let mut config = Config::new(threads).expect("threads > 0").with_adaptive(false);
        if let Some(batch) = std::env::var("BLOCKSTM_BATCH").ok().and_then(|v| v.parse().ok()) {
            config = config.with_batch(batch);
        }
        let parallel = ParallelExecutor::new(block.vm(), config);
        Box::new(move || parallel.execute_block(&block.pre_state, &block.txns))
    };
    let mut times = Vec::with_capacity(repeats);
    for round in 0..repeats {
        let start = std::time::Instant::now();
        let out = executor().expect("block runs");
        times.push(start.elapsed());
        if round + 1 == repeats {
            println!("{:?}", out.stats);
        }
        std::hint::black_box(out);
    }
    times.sort_unstable();
    println!("median {:?} (min {:?}, max {:?})", times[repeats / 2], times[0], times[repeats - 1]);
}
