//! Test support for blockstm: the differential test VM, a seeded random block generator with hot
//! keys, a fault-injecting VM, and the checker that runs a block sequentially and in parallel
//! and reports any divergence with what is needed to replay it.
//!
//! Used by the executor's tests, the stress suite and the `soak` runner
//! (`cargo run --release -p blockstm-testkit --bin soak`).

mod check;
mod faults;
mod generate;
mod held;
mod vm;

pub use check::{BATCHES, Divergence, batched, block_stm_config, check_case, run_case};
pub use faults::{Fault, FaultPlan, FaultyVm};
pub use generate::{Case, Rng, random_case};
pub use held::HeldChainVm;
pub use vm::*;

/// Waits (yielding) until `done()` holds or `limit` passes: the handshake tests use to force a
/// schedule, such as holding transaction 0 until transaction 1 has started. The limit keeps a
/// test from hanging when the schedule cannot happen (one worker thread).
pub fn wait_until(done: impl Fn() -> bool, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while !done() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
}
