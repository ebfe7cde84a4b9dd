//! A VM for differential tests: transactions are small programs whose reads, writes, errors,
//! panics and block endings depend on the values they read, so a re-execution over other values
//! behaves differently.
#![allow(missing_docs)]

use blockstm_executor::{
    Add, BlockError, BlockExecutor, Halt, Storage, TxnIndex, TxnView, Vm, VmBlockOutput,
};
use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Once;

pub type Key = u32;
pub type Value = u64;

/// One step of a transaction. `acc` is a running hash of everything read so far.
#[derive(Clone, Debug)]
pub enum Op {
    /// Read a location into `acc`.
    Read(Key),
    /// Read `a` if `acc` is even, else `b`.
    ReadEither(Key, Key),
    /// Write `mix(acc, salt)` to a location.
    Write(Key, u64),
    /// Write `mix(acc, salt)` to `a` if `acc` is even, else to `b`.
    WriteEither(Key, Key, u64),
    /// Add 1 to a location (read-modify-write).
    Increment(Key),
    /// Apply a delta adding `amount` (fails below zero or past `u64::MAX`).
    Delta(Key, i64),
    /// Apply a delta of `amount` to `a` if `acc` is even, else to `b`.
    DeltaEither(Key, Key, i64),
    /// Fail when `acc.is_multiple_of(modulus)`.
    FailIf { modulus: u64, panic: bool },
    /// Mark the output "end of block" when `acc.is_multiple_of(modulus)`.
    EndIf { modulus: u64 },
    /// Spin for this many rounds of hashing (simulated VM work).
    Work(u32),
}

#[derive(Clone, Debug, Default)]
pub struct Tx {
    pub ops: Vec<Op>,
    /// The dependency hint `TestVm` gives for this transaction (may be wrong, or not lower).
    pub hint: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOut {
    pub acc: u64,
    pub end_block: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestError {
    Halted,
    Failed { acc: u64 },
}

impl From<Halt> for TestError {
    fn from(_: Halt) -> Self {
        TestError::Halted
    }
}

pub fn mix(a: u64, b: u64) -> u64 {
    // splitmix64 finaliser of a combination: deterministic, well spread.
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Spins `rounds` rounds of hashing that the optimiser cannot remove.
pub fn work(seed: u64, rounds: u32) -> u64 {
    let mut x = seed;
    for i in 0..rounds {
        x = mix(x, u64::from(i));
    }
    std::hint::black_box(x)
}

#[derive(Clone, Copy, Debug, Default)]
pub struct TestVm;

pub const PANIC_PREFIX: &str = "test-vm panic";

impl Vm for TestVm {
    type Key = Key;
    type Value = Value;
    type Transaction = Tx;
    type Output = TxOut;
    type Error = TestError;
    type Delta = Add;

    /// One per operation plus the rounds of `Work`.
    fn cost_estimate(&self, txns: &[Tx]) -> Option<u64> {
        let op = |op: &Op| if let Op::Work(rounds) = op { 1 + u64::from(*rounds) } else { 1 };
        Some(txns.iter().flat_map(|tx| &tx.ops).map(op).sum())
    }

    fn dependency_hints(&self, txns: &[Tx]) -> Vec<Option<TxnIndex>> {
        if txns.iter().all(|tx| tx.hint.is_none()) {
            return Vec::new();
        }
        txns.iter().map(|tx| tx.hint).collect()
    }

    fn execute<V: TxnView<Key, Value, Add>>(
        &self,
        txn_idx: usize,
        tx: &Tx,
        view: &mut V,
    ) -> Result<TxOut, TestError> {
        let mut acc = mix(txn_idx as u64, 1);
        let mut end_block = false;
        for op in &tx.ops {
            match *op {
                Op::Read(k) => acc = mix(acc, view.read(&k)?.unwrap_or(7)),
                Op::ReadEither(a, b) => {
                    let k = if acc.is_multiple_of(2) { a } else { b };
                    acc = mix(acc, view.read(&k)?.unwrap_or(7));
                }
                Op::Write(k, salt) => view.write(k, mix(acc, salt)),
                Op::WriteEither(a, b, salt) => {
                    view.write(if acc.is_multiple_of(2) { a } else { b }, mix(acc, salt))
                }
                Op::Increment(k) => {
                    let n = view.read(&k)?.unwrap_or(0) + 1;
                    acc = mix(acc, n);
                    view.write(k, n);
                }
                Op::Delta(k, amount) => view.apply_delta(k, Add(i128::from(amount)))?,
                Op::DeltaEither(a, b, amount) => {
                    let k = if acc.is_multiple_of(2) { a } else { b };
                    view.apply_delta(k, Add(i128::from(amount)))?;
                }
                Op::FailIf { modulus, panic } => {
                    if acc.is_multiple_of(modulus) {
                        if panic {
                            panic!("{PANIC_PREFIX} at acc {acc}");
                        }
                        return Err(TestError::Failed { acc });
                    }
                }
                Op::EndIf { modulus } => end_block |= acc.is_multiple_of(modulus),
                Op::Work(rounds) => acc = mix(acc, work(acc, rounds)),
            }
        }
        Ok(TxOut { acc, end_block })
    }
}

/// [`TestVm`] with one location as the block's accumulator ([`Vm::accumulator`]): the same
/// transactions and results, the location's deltas kept per transaction by the parallel
/// executor.
#[derive(Clone, Copy, Debug)]
pub struct AccumulatingVm(pub Key);

impl Vm for AccumulatingVm {
    type Key = Key;
    type Value = Value;
    type Transaction = Tx;
    type Output = TxOut;
    type Error = TestError;
    type Delta = Add;

    fn cost_estimate(&self, txns: &[Tx]) -> Option<u64> {
        TestVm.cost_estimate(txns)
    }

    fn dependency_hints(&self, txns: &[Tx]) -> Vec<Option<TxnIndex>> {
        TestVm.dependency_hints(txns)
    }

    fn accumulator(&self) -> Option<Key> {
        Some(self.0)
    }

    fn execute<V: TxnView<Key, Value, Add>>(
        &self,
        txn_idx: usize,
        tx: &Tx,
        view: &mut V,
    ) -> Result<TxOut, TestError> {
        TestVm.execute(txn_idx, tx, view)
    }
}

/// The location the most delta operations of `txns` name (the lowest on a tie; 0 if none):
/// the accumulator a VM would declare for the block.
pub fn delta_hotspot(txns: &[Tx]) -> Key {
    let mut counts: HashMap<Key, usize> = HashMap::new();
    for op in txns.iter().flat_map(|tx| &tx.ops) {
        match *op {
            Op::Delta(k, _) => *counts.entry(k).or_default() += 1,
            Op::DeltaEither(a, b, _) => {
                *counts.entry(a).or_default() += 1;
                *counts.entry(b).or_default() += 1;
            }
            _ => {}
        }
    }
    counts.into_iter().max_by_key(|&(k, n)| (n, std::cmp::Reverse(k))).map_or(0, |(k, _)| k)
}

/// Storage with optional failing locations.
#[derive(Clone, Debug, Default)]
pub struct TestStorage {
    pub values: HashMap<Key, Value>,
    pub failing: Option<Key>,
}

#[derive(Debug)]
pub struct StorageFailure(pub Key);

impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "location {} is unreadable", self.0)
    }
}

impl std::error::Error for StorageFailure {}

impl Storage<Key, Value> for TestStorage {
    type Error = StorageFailure;

    fn read(&self, key: &Key) -> Result<Option<Value>, StorageFailure> {
        if self.failing == Some(*key) {
            return Err(StorageFailure(*key));
        }
        Ok(self.values.get(key).copied())
    }
}

/// Storage with every third key absent.
pub fn storage(keys: u32) -> TestStorage {
    TestStorage {
        values: (0..keys).filter(|k| k % 3 != 0).map(|k| (k, u64::from(k) * 1000)).collect(),
        failing: None,
    }
}

/// What must be identical between executors.
pub type Comparable = Result<(Vec<TxOut>, Vec<(Key, Value)>, bool), BlockError<TestError>>;

/// Runs a block with the "end block" hook and keeps what must match.
pub fn run<VM, E>(executor: &E, storage: &TestStorage, txns: &[Tx]) -> (Comparable, Option<VmBlockOutput<VM>>)
where
    VM: Vm<Key = Key, Value = Value, Transaction = Tx, Output = TxOut, Error = TestError, Delta = Add>,
    E: BlockExecutor<VM>,
{
    let mut hook = |_: usize, out: &TxOut| {
        if out.end_block { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    match executor.execute_block_with_hook(storage, txns, &mut hook) {
        Ok(out) => (Ok((out.outputs.clone(), out.state.clone(), out.ended_early)), Some(out)),
        Err(e) => (Err(e), None),
    }
}

/// Keeps the test output readable: speculative panics of the test VM are expected.
pub fn quiet_test_vm_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !message.starts_with(PANIC_PREFIX) {
                default(info);
            }
        }));
    });
}
