//! Randomized-schedule stress suite (feature `stress`): thousands of seeded random blocks with
//! hot keys, 16 to 32 workers on whatever cores the machine has, random yields and spins
//! injected in the worker loop, and a watchdog that turns a hang into a failure carrying the
//! scheduler's state. Each block must equal sequential execution.
//!
//! `cargo test --release -p blockstm-executor --features stress --test stress`
//! (`BLOCKSTM_STRESS_BLOCKS` changes the number of blocks, default 5 000;
//! `BLOCKSTM_STRESS_SEED` the first seed).

use blockstm_executor::stress::set_yield_permille;
use blockstm_testkit::{
    BATCHES, Rng, batched, block_stm_config, check_case, quiet_test_vm_panics, random_case,
};
use std::time::{Duration, Instant};

#[test]
fn random_blocks_with_many_threads_and_injected_yields() {
    quiet_test_vm_panics();
    let blocks: u64 =
        std::env::var("BLOCKSTM_STRESS_BLOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let first: u64 =
        std::env::var("BLOCKSTM_STRESS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED);
    let mut pick = Rng::new(first);
    let start = Instant::now();
    let mut threads_used = [0u64; 33];
    for seed in first..first + blocks {
        set_yield_permille(pick.range(0, 200) as u32);
        let threads = [16, 24, 32][pick.below(3) as usize];
        let max_incarnations = if pick.chance(0.1) { pick.range(1, 3) as u32 } else { 256 };
        let case = random_case(seed);
        let batch = BATCHES[pick.below(BATCHES.len() as u64) as usize];
        let config =
            batched(block_stm_config(threads, max_incarnations, Some(Duration::from_secs(60))), batch);
        if let Err(divergence) = check_case(&case, &[config]) {
            set_yield_permille(0);
            panic!(
                "{divergence}\nreplay: cargo run --release -p blockstm-testkit --bin soak -- --replay {seed} --threads {threads} --max-incarnations {max_incarnations} --batch {batch}"
            );
        }
        threads_used[threads] += 1;
    }
    set_yield_permille(0);
    println!(
        "stress: {blocks} random blocks identical to sequential (16 threads: {}, 24: {}, 32: {}) in {:.1?}",
        threads_used[16],
        threads_used[24],
        threads_used[32],
        start.elapsed()
    );
}
