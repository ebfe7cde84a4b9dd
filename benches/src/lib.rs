//! The side-by-side timing loop used by the `ratios` bench and the examples. The workloads and
//! their VM live in `blockstm-workloads`.

use blockstm::BlockExecutor;
use blockstm_workloads::WorkVm;
use std::collections::HashMap;
use std::time::Instant;

pub use blockstm_workloads::{WorkTx, Workload};

/// Median and spread of a measurement.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summary of `values` (not empty).
    pub fn of(values: &mut [f64]) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Self { median, min: values[0], max: values[n - 1] }
    }
}

/// A side-by-side comparison of two executors on one block.
#[derive(Clone, Copy, Debug)]
pub struct Comparison {
    /// Sequential times, seconds.
    pub seq: Summary,
    /// Parallel times, seconds.
    pub par: Summary,
    /// Per-pair ratios `seq / par` of interleaved runs.
    pub speedup: Summary,
    /// Executions per transaction in the last parallel run.
    pub exec_per_txn: f64,
    /// Validations per transaction in the last parallel run.
    pub val_per_txn: f64,
}

/// Runs `sequential` and `parallel` on the same block `runs` times, interleaved (the order
/// alternates each round), after checking once that both give the same result and warming up.
/// Times cover `execute_block` only: state is prepared, and thread start-up is included in the
/// parallel time (the executor starts its workers per block).
pub fn compare<S, P>(
    sequential: &S,
    parallel: &P,
    storage: &HashMap<u32, u64>,
    txns: &[WorkTx],
    runs: usize,
) -> Comparison
where
    S: BlockExecutor<WorkVm>,
    P: BlockExecutor<WorkVm>,
{
    let expected = sequential.execute_block(storage, txns).expect("sequential run");
    let actual = parallel.execute_block(storage, txns).expect("parallel run");
    assert_eq!(expected.outputs, actual.outputs, "parallel outputs differ from sequential");
    assert_eq!(expected.state, actual.state, "parallel state differs from sequential");

    let (mut seq, mut par, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = actual.stats;
    for round in 0..runs {
        let time_seq = || {
            let start = Instant::now();
            let out = sequential.execute_block(storage, txns);
            let elapsed = start.elapsed().as_secs_f64();
            drop(out);
            elapsed
        };
        let mut time_par = || {
            let start = Instant::now();
            let out = parallel.execute_block(storage, txns).expect("parallel run");
            let elapsed = start.elapsed().as_secs_f64();
            last = out.stats;
            elapsed
        };
        let (s, p) = if round % 2 == 0 {
            let s = time_seq();
            (s, time_par())
        } else {
            let p = time_par();
            (time_seq(), p)
        };
        seq.push(s);
        par.push(p);
        ratio.push(s / p);
    }
    let n = txns.len() as f64;
    Comparison {
        seq: Summary::of(&mut seq),
        par: Summary::of(&mut par),
        speedup: Summary::of(&mut ratio),
        exec_per_txn: last.executions as f64 / n,
        val_per_txn: last.validations as f64 / n,
    }
}
