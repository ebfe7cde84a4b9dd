//! Test support for blockstm: the differential test VM, a seeded random block generator with hot
//! keys, a fault-injecting VM, and the checker that runs a block sequentially and in parallel
//! and reports any divergence with what is needed to replay it.
//!
//! Used by the executor's tests, the stress suite and the `soak` runner
//! (`cargo run --release -p blockstm-testkit --bin soak`).

mod check;
mod faults;
mod generate;
mod vm;

pub use check::{Divergence, block_stm_config, check_case, run_case};
pub use faults::{Fault, FaultPlan, FaultyVm};
pub use generate::{Case, Rng, random_case};
pub use vm::*;
