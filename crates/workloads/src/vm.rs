//! The benchmark VM.

use blockstm_executor::{Add, Halt, TxnView, Vm};
use std::time::{Duration, Instant};

/// A transaction of the synthetic workloads. Keys are accounts or counters (`u32`), values
/// balances (`u64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkTx {
    /// Moves `amount` from `from` to `to` (skipped when the balance is short or `from == to`),
    /// working with the balances it read; then pays [`FEE`] as `fee` says.
    Transfer {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// Amount.
        amount: u64,
        /// Where the fee goes.
        fee: Fee,
    },
    /// Works (independently of the state), then adds 1 to a counter: a read-modify-write, or a
    /// delta when `by_delta`.
    Increment {
        /// The counter.
        key: u32,
        /// Whether the increment is a delta (no read).
        by_delta: bool,
    },
    /// Reads a location and returns its exact value (an observer of a fee account).
    Observe {
        /// The location.
        key: u32,
    },
    /// Reads `read`, works with its value, writes `write`: each link of a chain depends on the
    /// previous one for its whole duration.
    Link {
        /// Read location.
        read: u32,
        /// Written location.
        write: u32,
    },
}

/// How a transfer pays its fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fee {
    /// No fee.
    None,
    /// Credited to this account with a read-modify-write at the end of the transaction, as a
    /// fee payment is: every transfer then conflicts over the account.
    Write(u32),
    /// Credited to this account with a delta: transfers do not conflict over it.
    Delta(u32),
}

impl Fee {
    fn charged(self) -> u64 {
        if self == Fee::None { 0 } else { FEE }
    }
}

/// The VM's only error: a halted read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkHalt;

impl From<Halt> for WorkHalt {
    fn from(_: Halt) -> Self {
        WorkHalt
    }
}

/// A VM spending `rounds` rounds of hashing per transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkVm {
    /// Hashing rounds per transaction.
    pub rounds: u32,
}

/// The fee of every transfer in the fee-account workload.
pub const FEE: u64 = 1;

/// One round of work: the splitmix64 finaliser.
#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `rounds` dependent rounds of hashing starting from `seed`.
#[inline]
pub fn work(seed: u64, rounds: u32) -> u64 {
    let mut x = seed;
    for _ in 0..rounds {
        x = mix(x);
    }
    std::hint::black_box(x)
}

impl WorkVm {
    /// A VM whose transactions take about `per_txn` of CPU time on this machine (measured: the
    /// best of five timings of a long run of rounds).
    pub fn calibrated(per_txn: Duration) -> Self {
        const PROBE: u32 = 2_000_000;
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            work(1, PROBE);
            best = best.min(start.elapsed());
        }
        let rounds = (per_txn.as_secs_f64() / best.as_secs_f64() * f64::from(PROBE)).round();
        Self { rounds: rounds.clamp(0.0, f64::from(u32::MAX)) as u32 }
    }
}

impl Vm for WorkVm {
    type Key = u32;
    type Value = u64;
    type Transaction = WorkTx;
    type Output = u64;
    type Error = WorkHalt;
    type Delta = Add;

    /// The fee account: in `fee-account-delta` every transaction credits it a delta, as every
    /// EVM transaction credits the block's beneficiary, and the executor keeps those per
    /// transaction as it does the EVM's.
    fn accumulator(&self) -> Option<u32> {
        Some(crate::FEE_ACCOUNT)
    }

    fn execute<V: TxnView<u32, u64, Add>>(
        &self,
        _txn_idx: usize,
        tx: &WorkTx,
        view: &mut V,
    ) -> Result<u64, WorkHalt> {
        match *tx {
            WorkTx::Transfer { from, to, amount, fee } => {
                let from_balance = view.read(&from)?.unwrap_or(0);
                let to_balance = view.read(&to)?.unwrap_or(0);
                let check = work(from_balance ^ to_balance.rotate_left(17), self.rounds);
                if from != to && from_balance >= amount + FEE {
                    view.write(from, from_balance - amount - fee.charged());
                    view.write(to, to_balance + amount);
                }
                match fee {
                    Fee::None => {}
                    Fee::Write(account) => {
                        let fees = view.read(&account)?.unwrap_or(0);
                        view.write(account, fees + FEE);
                    }
                    Fee::Delta(account) => view.apply_delta(account, Add(i128::from(FEE)))?,
                }
                Ok(check)
            }
            WorkTx::Increment { key, by_delta: false } => {
                let check = work(u64::from(key), self.rounds);
                let n = view.read(&key)?.unwrap_or(0);
                view.write(key, n + 1);
                Ok(check ^ n)
            }
            WorkTx::Increment { key, by_delta: true } => {
                let check = work(u64::from(key), self.rounds);
                view.apply_delta(key, Add(1))?;
                Ok(check)
            }
            WorkTx::Observe { key } => {
                let value = view.read(&key)?.unwrap_or(0);
                Ok(work(value, self.rounds) ^ value)
            }
            WorkTx::Link { read, write } => {
                let value = view.read(&read)?.unwrap_or(0);
                let check = work(value, self.rounds);
                view.write(write, value + 1);
                Ok(check)
            }
        }
    }
}
