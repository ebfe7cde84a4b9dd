//! Synthetic workloads for benchmarking blockstm, and the oracle bound.
//!
//! - [`WorkVm`]: a VM whose transactions do a configurable amount of real work (rounds of a
//!   64-bit mixing function the optimiser cannot remove), calibrated to a time per transaction.
//! - [`Workload`]: seeded, deterministic generators of the standard blocks: the Block-STM
//!   paper's peer-to-peer transfers over N accounts, fully independent transfers, one hot
//!   counter, a dependency chain, and transfers that all credit one fee account.
//! - [`measure`]: the side-by-side, interleaved comparison of two executors on one block.
//! - [`oracle`]: the physical limit of a block (`docs/benchmarks.md`, "The oracle bound"):
//!   total work, critical path and list-scheduling makespan from a profiled sequential run.

pub mod measure;
pub mod oracle;
mod vm;
mod workload;

pub use vm::{FEE, Fee, WorkTx, WorkVm, work};
pub use workload::{Block, FEE_ACCOUNT, UnknownWorkload, Workload};
