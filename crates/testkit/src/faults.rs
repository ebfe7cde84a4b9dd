//! Fault injection: a VM that panics or errors on chosen executions.
//!
//! The VM cannot see its incarnation number, so a fault is keyed by `(transaction, attempt)`,
//! where `attempt` counts this VM's executions of the transaction (0 for the first). A fault on
//! attempt 0 hits the only execution sequential execution makes; a fault on a later attempt can
//! only hit a re-execution.

use crate::vm::{Key, TestError, TestVm, Tx, TxOut, Value};
use blockstm_executor::{Add, TxnView, Vm};
use blockstm_sync::atomic::{AtomicUsize, Ordering};

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Return `TestError::Failed { acc: u64::MAX }`.
    Error,
    /// Panic with a message starting with [`PANIC_PREFIX`](crate::PANIC_PREFIX).
    Panic,
}

/// Faults by `(transaction, attempt)`.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// The faults.
    pub faults: Vec<(usize, usize, Fault)>,
}

impl FaultPlan {
    fn fault(&self, txn_idx: usize, attempt: usize) -> Option<Fault> {
        self.faults.iter().find(|(t, a, _)| *t == txn_idx && *a == attempt).map(|f| f.2)
    }
}

/// [`TestVm`] with faults injected by a [`FaultPlan`].
#[derive(Debug)]
pub struct FaultyVm {
    plan: FaultPlan,
    attempts: Box<[AtomicUsize]>,
}

impl FaultyVm {
    /// Faults from `plan` for a block of `num_txns` transactions.
    pub fn new(plan: FaultPlan, num_txns: usize) -> Self {
        Self { plan, attempts: (0..num_txns).map(|_| AtomicUsize::new(0)).collect() }
    }

    /// How many times transaction `txn_idx` was executed.
    pub fn attempts(&self, txn_idx: usize) -> usize {
        self.attempts[txn_idx].load(Ordering::Relaxed)
    }
}

impl Vm for FaultyVm {
    type Key = Key;
    type Value = Value;
    type Transaction = Tx;
    type Output = TxOut;
    type Error = TestError;
    type Delta = Add;

    fn execute<V: TxnView<Key, Value, Add>>(
        &self,
        txn_idx: usize,
        tx: &Tx,
        view: &mut V,
    ) -> Result<TxOut, TestError> {
        // Relaxed: only counts; the test reads it after the block.
        let attempt = self.attempts[txn_idx].fetch_add(1, Ordering::Relaxed);
        match self.plan.fault(txn_idx, attempt) {
            Some(Fault::Error) => Err(TestError::Failed { acc: u64::MAX }),
            // The message names the transaction only: a fault on every attempt must behave the
            // same on each, as a deterministic VM does.
            Some(Fault::Panic) => panic!("{} injected in transaction {txn_idx}", crate::PANIC_PREFIX),
            None => TestVm.execute(txn_idx, tx, view),
        }
    }
}
