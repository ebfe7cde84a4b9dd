//! Synthetic workloads and the side-by-side timing loop used by the benchmarks and the
//! `transfers` example.
//!
//! The VM does real work per transaction (rounds of a 64-bit mixing function the optimiser
//! cannot remove), calibrated to a target time so that the executor's overhead shows against
//! a known cost.

use blockstm::{BlockExecutor, Halt, TxnView, Vm};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A transaction of the synthetic workloads.
#[derive(Clone, Copy, Debug)]
pub enum BenchTx {
    /// Moves `amount` from `from` to `to` (skipped if the balance is short).
    Transfer {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// Amount.
        amount: u64,
    },
    /// Reads a counter, works with its value, writes it back plus one: a transaction that
    /// depends on every earlier one touching the counter, for its whole duration.
    Increment {
        /// The counter.
        key: u32,
    },
}

/// The VM's error: only a halted read.
#[derive(Debug)]
pub struct BenchHalt;

impl From<Halt> for BenchHalt {
    fn from(_: Halt) -> Self {
        BenchHalt
    }
}

/// A VM spending `rounds` rounds of hashing per transaction.
#[derive(Clone, Copy, Debug)]
pub struct BenchVm {
    /// Hashing rounds per transaction.
    pub rounds: u32,
}

/// One round of work: the splitmix64 finaliser.
#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `rounds` dependent rounds of hashing.
#[inline]
pub fn work(seed: u64, rounds: u32) -> u64 {
    let mut x = seed;
    for _ in 0..rounds {
        x = mix(x);
    }
    std::hint::black_box(x)
}

impl BenchVm {
    /// A VM whose transactions take about `per_txn` of CPU time on this machine.
    pub fn calibrated(per_txn: Duration) -> Self {
        const PROBE: u32 = 2_000_000;
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            work(1, PROBE);
            best = best.min(start.elapsed());
        }
        let rounds = (per_txn.as_secs_f64() / best.as_secs_f64() * f64::from(PROBE)).round();
        Self { rounds: rounds.clamp(1.0, f64::from(u32::MAX)) as u32 }
    }
}

impl Vm for BenchVm {
    type Key = u32;
    type Value = u64;
    type Transaction = BenchTx;
    type Output = u64;
    type Error = BenchHalt;

    fn execute<V: TxnView<u32, u64>>(
        &self,
        _txn_idx: usize,
        tx: &BenchTx,
        view: &mut V,
    ) -> Result<u64, BenchHalt> {
        match *tx {
            BenchTx::Transfer { from, to, amount } => {
                let from_balance = view.read(&from)?.unwrap_or(0);
                let to_balance = view.read(&to)?.unwrap_or(0);
                let check = work(from_balance ^ to_balance, self.rounds);
                if from_balance >= amount && from != to {
                    view.write(from, from_balance - amount);
                    view.write(to, to_balance + amount);
                }
                Ok(check)
            }
            BenchTx::Increment { key } => {
                let n = view.read(&key)?.unwrap_or(0);
                let check = work(n, self.rounds);
                view.write(key, n + 1);
                Ok(check)
            }
        }
    }
}

/// Accounts `0..accounts`, each with a large balance.
pub fn accounts(accounts: u32) -> HashMap<u32, u64> {
    (0..accounts).map(|a| (a, 1_000_000_000)).collect()
}

/// `txns` transfers between distinct pairs: no two transactions touch the same account.
pub fn independent(txns: u32) -> Vec<BenchTx> {
    (0..txns).map(|i| BenchTx::Transfer { from: 2 * i, to: 2 * i + 1, amount: 1 }).collect()
}

/// `txns` increments of one counter: every transaction depends on the previous one.
pub fn chain(txns: u32) -> Vec<BenchTx> {
    vec![BenchTx::Increment { key: 0 }; txns as usize]
}

/// `txns` transfers between random pairs of `accounts` accounts (seeded, deterministic).
pub fn transfers(txns: u32, accounts: u32, seed: u64) -> Vec<BenchTx> {
    let mut state = seed;
    let mut next = move || {
        state = mix(state);
        state
    };
    (0..txns)
        .map(|_| {
            let from = (next() % u64::from(accounts)) as u32;
            let to = (next() % u64::from(accounts)) as u32;
            BenchTx::Transfer { from, to, amount: 1 + next() % 100 }
        })
        .collect()
}

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
    txns: &[BenchTx],
    runs: usize,
) -> Comparison
where
    S: BlockExecutor<BenchVm>,
    P: BlockExecutor<BenchVm>,
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
