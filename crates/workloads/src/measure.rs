//! Side-by-side measurement: the sequential baseline and a parallel executor on the same block,
//! interleaved, medians and spread (see `docs/benchmarks.md`). Used by `blockstm bench` and the
//! `ratios` bench, so both measure the same way.

use blockstm_executor::{BlockExecutor, Stats, Storage, Vm};
use std::time::Instant;

/// Median and spread of a measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summary of `values` (not empty; sorts them).
    pub fn of(values: &mut [f64]) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Self { median, min: values[0], max: values[n - 1] }
    }
}

/// A side-by-side comparison of two executors on one block.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Sequential times, seconds.
    pub seq: Summary,
    /// Parallel times, seconds.
    pub par: Summary,
    /// Per-pair ratios `seq / par` of the interleaved runs.
    pub speedup: Summary,
    /// Statistics of the last parallel run.
    pub stats: Stats,
}

/// Runs `sequential` and `parallel` on the same block `pairs` times (at least 1), interleaved
/// (the order alternates each pair), after checking once, untimed, that both return the same
/// outputs and state. Times cover `execute_block` only: the state is prepared, and the parallel
/// time includes starting its worker threads. `on_pair` is called after each pair (progress).
pub fn compare<VM, S, A, B>(
    sequential: &A,
    parallel: &B,
    storage: &S,
    txns: &[VM::Transaction],
    pairs: usize,
    on_pair: impl FnMut(),
) -> Result<Comparison, String>
where
    VM: Vm,
    VM::Output: PartialEq,
    VM::Value: PartialEq,
    S: Storage<VM::Key, VM::Value>,
    A: BlockExecutor<VM>,
    B: BlockExecutor<VM>,
{
    compare_with_baseline(sequential, parallel, storage, txns, pairs, None, on_pair).map(|(c, _)| c)
}

/// A third executor of the same block, timed in the same rounds as a [`compare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// Its times, seconds.
    pub time: Summary,
    /// Per-round ratios of its time over the parallel time.
    pub speedup: Summary,
}

/// [`compare`], with `baseline` (if given: another executor of the same block, timing itself
/// in seconds, such as alloy-evm's, the one a client runs today) run in every round just
/// before the parallel run, and its figures.
pub fn compare_with_baseline<VM, S, A, B>(
    sequential: &A,
    parallel: &B,
    storage: &S,
    txns: &[VM::Transaction],
    pairs: usize,
    baseline: Option<&mut (dyn FnMut() -> Result<f64, String> + '_)>,
    on_pair: impl FnMut(),
) -> Result<(Comparison, Option<Baseline>), String>
where
    VM: Vm,
    VM::Output: PartialEq,
    VM::Value: PartialEq,
    S: Storage<VM::Key, VM::Value>,
    A: BlockExecutor<VM>,
    B: BlockExecutor<VM>,
{
    let expected =
        sequential.execute_block(storage, txns).map_err(|e| format!("sequential run failed: {e}"))?;
    let actual = parallel.execute_block(storage, txns).map_err(|e| format!("parallel run failed: {e}"))?;
    if expected.outputs != actual.outputs || expected.state != actual.state {
        return Err("the parallel result differs from the sequential one".into());
    }
    interleave_with_baseline(
        || {
            let start = Instant::now();
            let out = sequential.execute_block(storage, txns);
            let elapsed = start.elapsed().as_secs_f64();
            drop(out);
            Ok(elapsed)
        },
        || {
            let start = Instant::now();
            let out =
                parallel.execute_block(storage, txns).map_err(|e| format!("parallel run failed: {e}"))?;
            let elapsed = start.elapsed().as_secs_f64();
            Ok((elapsed, out.stats))
        },
        baseline,
        pairs,
        on_pair,
    )
}

/// The measurement of [`compare`] over any two timed runs: `time_seq` and `time_par` (each
/// returning its time in seconds, the parallel one with its statistics) `pairs` times (at
/// least 1), interleaved, the order alternating each pair; `on_pair` after each pair.
pub fn interleave(
    time_seq: impl FnMut() -> Result<f64, String>,
    time_par: impl FnMut() -> Result<(f64, Stats), String>,
    pairs: usize,
    on_pair: impl FnMut(),
) -> Result<Comparison, String> {
    interleave_with_baseline(time_seq, time_par, None, pairs, on_pair).map(|(c, _)| c)
}

/// [`interleave`], with `baseline` (if given: a third run timing itself in seconds) run in
/// every pair just before the parallel run, and its figures.
pub fn interleave_with_baseline(
    mut time_seq: impl FnMut() -> Result<f64, String>,
    mut time_par: impl FnMut() -> Result<(f64, Stats), String>,
    mut baseline: Option<&mut (dyn FnMut() -> Result<f64, String> + '_)>,
    pairs: usize,
    mut on_pair: impl FnMut(),
) -> Result<(Comparison, Option<Baseline>), String> {
    let (mut seq, mut par, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut base, mut base_ratio) = (Vec::new(), Vec::new());
    let mut stats = None;
    let mut time_par = || -> Result<(f64, Stats), String> {
        let b = baseline.as_mut().map(|time| time()).transpose()?;
        let (p, st) = time_par()?;
        if let Some(b) = b {
            base.push(b);
            base_ratio.push(b / p);
        }
        Ok((p, st))
    };
    for pair in 0..pairs.max(1) {
        let (s, (p, st)) = if pair % 2 == 0 {
            let s = time_seq()?;
            (s, time_par()?)
        } else {
            let p = time_par()?;
            (time_seq()?, p)
        };
        seq.push(s);
        par.push(p);
        ratio.push(s / p);
        stats = Some(st);
        on_pair();
    }
    let comparison = Comparison {
        seq: Summary::of(&mut seq),
        par: Summary::of(&mut par),
        speedup: Summary::of(&mut ratio),
        stats: stats.expect("at least one pair"),
    };
    let baseline = (!base.is_empty())
        .then(|| Baseline { time: Summary::of(&mut base), speedup: Summary::of(&mut base_ratio) });
    Ok((comparison, baseline))
}

/// `N` timed runs, `rounds` times each (at least once), in rotating order: round `r` starts with
/// run `r mod N`, so no run always follows the same one (a cache or frequency effect of one
/// run falls on each in turn). `time(k)` runs run `k` and returns its time; `on_round` after
/// each round. Each run's times, in round order (pair them up by position for per-round
/// ratios).
pub fn rotate<const N: usize>(
    rounds: usize,
    mut time: impl FnMut(usize) -> Result<f64, String>,
    mut on_round: impl FnMut(),
) -> Result<[Vec<f64>; N], String> {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds.max(1)));
    for round in 0..rounds.max(1) {
        for k in 0..N {
            let run = (k + round) % N;
            times[run].push(time(run)?);
        }
        on_round();
    }
    Ok(times)
}

/// The per-round ratios `a[i] / b[i]` of two runs' times from [`rotate`], summarised.
pub fn ratio(a: &[f64], b: &[f64]) -> Summary {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    Summary::of(&mut ratios)
}
