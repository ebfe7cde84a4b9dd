//! The differential check: sequential against parallel on one block.

use crate::generate::Case;
use crate::vm::{AccumulatingVm, Comparable, Key, TestVm, delta_hotspot, run};
use blockstm_executor::{Config, ParallelExecutor, SequentialExecutor, Stats};
use std::fmt;
use std::time::Duration;

/// A parallel run that did not return what sequential execution returned.
#[derive(Debug)]
pub struct Divergence {
    /// Seed of the block ([`random_case`](crate::random_case)).
    pub seed: u64,
    /// Worker threads of the parallel run.
    pub threads: usize,
    /// Livelock-guard setting of the parallel run.
    pub max_incarnations: u32,
    /// Whether the adaptive choice of the sequential path was on.
    pub adaptive: bool,
    /// The accumulator of the parallel run's VM ([`AccumulatingVm`]), if it had one.
    pub accumulator: Option<Key>,
    /// What sequential execution returned.
    pub expected: Comparable,
    /// What the parallel run returned.
    pub actual: Comparable,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "divergence: seed {} threads {} max_incarnations {} adaptive {} accumulator {:?}\nexpected: {:?}\nactual:   {:?}",
            self.seed,
            self.threads,
            self.max_incarnations,
            self.adaptive,
            self.accumulator,
            self.expected,
            self.actual
        )
    }
}

/// Runs `case` in parallel with `config` (and the block-ending hook).
pub fn run_case(case: &Case, config: Config) -> (Comparable, Option<Stats>) {
    let (result, out) = run(&ParallelExecutor::new(TestVm, config), &case.storage, &case.txns);
    (result, out.map(|o| o.stats))
}

/// Runs `case` sequentially and in parallel with each of `configs`, each twice: on [`TestVm`]
/// and on [`AccumulatingVm`] with the block's most delta-written location as the accumulator;
/// the first divergence, if any. A watchdog in the configs turns a hang into an error carrying
/// the scheduler's state.
pub fn check_case(case: &Case, configs: &[Config]) -> Result<(), Box<Divergence>> {
    let (expected, _) = run(&SequentialExecutor::new(TestVm), &case.storage, &case.txns);
    let accumulating = AccumulatingVm(delta_hotspot(&case.txns));
    for config in configs {
        let plain = run_case(case, *config).0;
        let with_accumulator =
            run(&ParallelExecutor::new(accumulating, *config), &case.storage, &case.txns).0;
        for (actual, accumulator) in [(plain, None), (with_accumulator, Some(accumulating.0))] {
            if actual != expected {
                return Err(Box::new(Divergence {
                    seed: case.seed,
                    threads: config.threads(),
                    max_incarnations: config.max_incarnations(),
                    adaptive: config.adaptive(),
                    accumulator,
                    expected,
                    actual,
                }));
            }
        }
    }
    Ok(())
}

/// Largest claims the randomized suites pick from ([`batched`]).
pub const BATCHES: [usize; 4] = [1, 2, 4, 16];

/// `config` with claims of up to `batch` transactions and no calm stretch, so that claims
/// batch even on the small, contended blocks the suites generate.
pub fn batched(config: Config, batch: usize) -> Config {
    config.with_batch(batch).with_batch_calm_txns(0)
}

/// A configuration that exercises Block-STM itself (adaptive choice off) with a watchdog.
pub fn block_stm_config(threads: usize, max_incarnations: u32, watchdog: Option<Duration>) -> Config {
    let config = Config::new(threads)
        .expect("threads > 0")
        .with_max_incarnations(max_incarnations)
        .with_adaptive(false);
    match watchdog {
        Some(limit) => config.with_watchdog(limit),
        None => config,
    }
}
